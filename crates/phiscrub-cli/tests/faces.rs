//! Face redaction measured on what the user gets: the real binary runs over real photos with
//! ground-truth face boxes (`../shared/data/faces`), upright and turned by 90°, 180° and 270°,
//! and each output image is checked pixel by pixel for how much of every face it covers.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use image::{DynamicImage, RgbImage};
use serde_json::Value;

/// Faces at least this tall in the original must be found (the brief).
const MIN_FACE: u32 = 20;
/// A face counts as redacted when this share of its ground-truth box is covered.
const COVERED: f64 = 0.90;
/// Share of faces that must be redacted, for every turn.
const REQUIRED: f64 = 0.95;
/// Mean share of a photo that may be painted outside every ground-truth face box. The
/// boxes are tight (forehead to chin), so the margins that take in hair and ears count here.
const MAX_OUTSIDE: f64 = 0.12;

struct Truth {
    width: u32,
    height: u32,
    faces: Vec<[u32; 4]>,
    /// Faces WIDER marks invalid: painting them is not a false positive.
    ignore: Vec<[u32; 4]>,
}

fn truth(json: &Path) -> Truth {
    let v: Value = serde_json::from_slice(&fs::read(json).unwrap()).unwrap();
    let n = |k: &str| v[k].as_u64().unwrap() as u32;
    let boxes = |key: &str| -> Vec<[u32; 4]> {
        v[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|b| {
                        let b: Vec<u32> = b
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|x| x.as_f64().unwrap().round() as u32)
                            .collect();
                        [b[0], b[1], b[2], b[3]]
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    Truth {
        width: n("width"),
        height: n("height"),
        faces: boxes("faces"),
        ignore: boxes("faces_ignore"),
    }
}

/// A box of the upright image in the image turned clockwise by `deg`.
fn turn_box(b: [u32; 4], w: u32, h: u32, deg: u32) -> [u32; 4] {
    let [x, y, bw, bh] = b;
    match deg {
        0 => b,
        90 => [h - y - bh, x, bh, bw],
        180 => [w - x - bw, h - y - bh, bw, bh],
        270 => [y, w - x - bw, bh, bw],
        _ => unreachable!(),
    }
}

fn turn_image(img: &DynamicImage, deg: u32) -> DynamicImage {
    match deg {
        0 => img.clone(),
        90 => img.rotate90(),
        180 => img.rotate180(),
        270 => img.rotate270(),
        _ => unreachable!(),
    }
}

/// Share of the box's pixels that are fill in `out`.
fn coverage(out: &RgbImage, b: [u32; 4]) -> f64 {
    let [x, y, w, h] = b;
    let mut hit = 0u64;
    for yy in y..(y + h).min(out.height()) {
        for xx in x..(x + w).min(out.width()) {
            hit += u64::from(common::is_fill(out.get_pixel(xx, yy)));
        }
    }
    hit as f64 / (u64::from(w) * u64::from(h)).max(1) as f64
}

#[derive(Default)]
struct Tally {
    faces: u32,
    covered: u32,
    misses: Vec<String>,
    /// Sum over images of the share painted outside every ground-truth box.
    outside: f64,
    images: u32,
}

/// Share of `out`'s pixels that are fill outside every box in `boxes`.
fn outside_share<'a>(out: &RgbImage, boxes: impl Iterator<Item = &'a [u32; 4]>) -> f64 {
    let (w, h) = out.dimensions();
    let mut inside = vec![false; (w * h) as usize];
    for b in boxes {
        for y in b[1]..(b[1] + b[3]).min(h) {
            for x in b[0]..(b[0] + b[2]).min(w) {
                inside[(y * w + x) as usize] = true;
            }
        }
    }
    let painted = out
        .enumerate_pixels()
        .filter(|(x, y, p)| !inside[(y * w + x) as usize] && common::is_fill(p))
        .count();
    painted as f64 / f64::from(w * h)
}

#[test]
fn faces_in_real_photos_are_covered_upright_and_turned() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    fs::create_dir(&input).unwrap();
    // name in the input folder -> (ground truth in that image's frame)
    let mut expected: BTreeMap<String, (u32, Truth)> = BTreeMap::new();
    let mut sources: Vec<(std::path::PathBuf, Truth)> = Vec::new();
    for sub in ["faces", "faces/rotated"] {
        for json in common::files(&data.join(sub)) {
            if json.extension().is_some_and(|e| e == "json")
                && json.parent() == Some(&data.join(sub))
            {
                let t = truth(&json);
                let v: Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
                let img = json.with_file_name(v["image"].as_str().unwrap());
                sources.push((img, t));
            }
        }
    }
    assert!(sources.len() >= 90, "found {} images", sources.len());
    for (i, (img, t)) in sources.iter().enumerate() {
        // The stored file goes in as it is (the real JPEG bytes); turned copies are lossless PNG.
        let name = format!("{i:03}_0.{}", img.extension().unwrap().to_string_lossy());
        fs::copy(img, input.join(&name)).unwrap();
        let same = Truth {
            faces: t.faces.clone(),
            ignore: t.ignore.clone(),
            ..*t
        };
        expected.insert(name, (0, same));
        let decoded = image::open(img).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (t.width, t.height));
        for deg in [90, 180, 270] {
            let name = format!("{i:03}_{deg}.png");
            let turned = turn_image(&decoded, deg);
            let mut f = std::io::BufWriter::new(fs::File::create(input.join(&name)).unwrap());
            turned
                .write_with_encoder(image::codecs::png::PngEncoder::new_with_quality(
                    &mut f,
                    image::codecs::png::CompressionType::Fast,
                    image::codecs::png::FilterType::Sub,
                ))
                .unwrap();
            let turn = |v: &[[u32; 4]]| {
                v.iter()
                    .map(|&b| turn_box(b, t.width, t.height, deg))
                    .collect()
            };
            let (faces, ignore) = (turn(&t.faces), turn(&t.ignore));
            let (w, h) = if deg == 180 {
                (t.width, t.height)
            } else {
                (t.height, t.width)
            };
            expected.insert(
                name,
                (
                    deg,
                    Truth {
                        width: w,
                        height: h,
                        faces,
                        ignore,
                    },
                ),
            );
        }
    }

    let out = dir.path().join("in-scrubbed");
    let o = common::bin()
        .arg(&input)
        .args(["--only", "face", "--fill-color", common::FILL, "-q"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let mut tallies: BTreeMap<u32, Tally> = BTreeMap::new();
    for (name, (deg, t)) in &expected {
        let stem = Path::new(name).file_stem().unwrap().to_string_lossy();
        let ext = if name.ends_with(".png") { "png" } else { "jpg" };
        let path = out.join(format!("{stem}.{ext}"));
        let img = image::open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .to_rgb8();
        assert_eq!(img.dimensions(), (t.width, t.height), "{name}");
        let tally = tallies.entry(*deg).or_default();
        tally.outside += outside_share(&img, t.faces.iter().chain(&t.ignore));
        tally.images += 1;
        for &b in &t.faces {
            let tall = if deg % 180 == 0 { b[3] } else { b[2] };
            if tall < MIN_FACE {
                continue;
            }
            tally.faces += 1;
            let c = coverage(&img, b);
            if c >= COVERED {
                tally.covered += 1;
            } else {
                tally.misses.push(format!("{name} {b:?} {:.0}%", c * 100.0));
            }
        }
    }
    let mut failed = Vec::new();
    for (deg, t) in &tallies {
        let share = f64::from(t.covered) / f64::from(t.faces.max(1));
        let outside = t.outside / f64::from(t.images.max(1));
        common::figure(&format!(
            "faces: turned {deg:>3}°: {}/{} faces >= {MIN_FACE} px at least {:.0}% covered = {:.1}%; {:.1}% of each photo painted outside the faces",
            t.covered,
            t.faces,
            COVERED * 100.0,
            share * 100.0,
            outside * 100.0
        ));
        if outside > MAX_OUTSIDE {
            failed.push(format!(
                "{deg}°: {:.1}% painted outside faces",
                outside * 100.0
            ));
        }
        common::misses(&t.misses);
        if share < REQUIRED {
            failed.push(format!("{deg}°: {:.1}%", share * 100.0));
        }
    }
    assert!(
        failed.is_empty(),
        "below {:.0}%: {failed:?}",
        REQUIRED * 100.0
    );
}
