//! Measures precision and recall together, on the same runs, in-process with one engine:
//! the quick loop used to choose the detectors' defaults (`FaceParams`, `TextParams`). The
//! integration tests measure the real binary's output pixels; this measures the regions the
//! engine hands back, which is what those pixels are painted from.
//!
//! ```text
//! `cargo run --release -p xtask --bin measure -- SET [DATA] [key=value...]`
//! ```
//!
//! SET is one of:
//! - `faces`: `DATA/faces` and `DATA/faces/rotated`, each photo as it is and turned by
//!   `turns=0,90,180,270`; faces only. Prints, per turn, the share of faces >= 20 px tall with
//!   90% of their box covered, and the mean share of each photo painted outside every
//!   ground-truth face box.
//! - `clinical`: `DATA/clinical`, every detector. Prints the mean share of lesion pixels
//!   painted, the photos losing more than 10% of their lesion, and the mean share painted.
//! - `metadata`: the JPEG and PNG photos under `DATA/metadata`, every detector. Prints the
//!   share of each photo painted.
//!
//! DATA defaults to `../shared/data`. Keys: `only=face,text,barcode`, `models=DIR` (another
//! models folder with its MANIFEST), `verbose=1`, and `face.*` / `text.*` for the detector
//! parameters of the same names (see the match below). `MEASURE_ELLIPSE=1` paints faces as
//! ellipses (`--shape ellipse`); `MEASURE_DUMP=1` prints every face region of the `faces` set
//! as `det NAME TURN W H X0 Y0 X1 Y1 SCORE`, the data the margins were fitted on.

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::{GrayImage, RgbImage};
use phiscrub::detect::{Categories, Detections, Engine, EngineConfig, RegionKind};
use serde_json::Value;

fn main() {
    let mut args = std::env::args().skip(1);
    let set = args
        .next()
        .expect("usage: measure SET [DATA] [key=value...]");
    let mut data = PathBuf::from("../shared/data");
    let mut config = EngineConfig {
        intra_threads: 2,
        ..EngineConfig::default()
    };
    let mut turns = vec![0u32, 90, 180, 270];
    let mut verbose = false;
    let mut only: Option<String> = None;
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            data = PathBuf::from(a);
            continue;
        };
        let f = || v.parse::<f32>().unwrap();
        match k {
            "turns" => turns = v.split(',').map(|d| d.parse().unwrap()).collect(),
            "only" => only = Some(v.to_string()),
            "models" => config.models = Some(PathBuf::from(v)),
            "verbose" => verbose = v == "1",
            "face.turns" => config.face.turns = v == "1",
            "face.whole_reach" => config.face.whole_reach = f(),
            "text.whole_reach" => config.text.whole_reach = f(),
            "face.threshold" => config.face.threshold = f(),
            "face.confident" => config.face.confident = f(),
            "face.confirm" => config.face.confirm = v == "1",
            "face.confirm_score" => config.face.confirm_score = f(),
            "face.confirm_min" => config.face.confirm_min = f(),
            "face.confirm_score_small" => config.face.confirm_score_small = f(),
            "face.confirm_small_alone" => config.face.confirm_small_alone = v == "1",
            "face.turned_side" => config.face.turned_side = v.parse().unwrap(),
            "face.turned_trigger" => config.face.turned_trigger = f(),
            "face.margin" => {
                let m: Vec<f32> = v.split(',').map(|x| x.parse().unwrap()).collect();
                config.face.margin = [m[0], m[1]];
            }
            "face.margin_scores" => {
                let m: Vec<f32> = v.split(',').map(|x| x.parse().unwrap()).collect();
                config.face.margin_scores = [m[0], m[1]];
            }
            "face.margin_small" => config.face.margin_small = f(),
            "face.small_face" => config.face.small_face = f(),
            "face.large_face" => config.face.large_face = f(),
            "text.confirm" => config.text.confirm = v == "1",
            "text.box_thresh" => config.text.box_thresh = f(),
            "text.blocks" => config.text.blocks = v == "1",
            _ => panic!("unknown key {k}"),
        }
    }
    let default_only = if set == "faces" {
        "face"
    } else {
        "face,text,barcode"
    };
    let mut cats = Categories {
        face: false,
        text: false,
        barcode: false,
    };
    for c in only.as_deref().unwrap_or(default_only).split(',') {
        cats.set(RegionKind::from_name(c).expect("category"), true);
    }
    config.categories = cats;
    let engine = Engine::load(config).unwrap();
    let start = Instant::now();
    match set.as_str() {
        "faces" => faces(&engine, &data, &turns, verbose),
        "clinical" => clinical(&engine, &data.join("clinical"), verbose),
        "metadata" => metadata(&engine, &data.join("metadata"), verbose),
        _ => panic!("unknown set {set}"),
    }
    println!("time {:.1} s", start.elapsed().as_secs_f64());
}

fn detect(engine: &Engine, img: &RgbImage) -> Detections {
    engine.detect(img, &phiscrub::Deadline::none()).unwrap()
}

/// Which pixels the regions paint.
fn painted(found: &Detections, w: u32, h: u32) -> GrayImage {
    let mut m = GrayImage::new(w, h);
    let how = phiscrub::redact::Redaction {
        shape: if std::env::var_os("MEASURE_ELLIPSE").is_some() {
            phiscrub::redact::Shape::Ellipse
        } else {
            phiscrub::redact::Shape::Box
        },
        ..Default::default()
    };
    for r in &found.regions {
        let b = r.rect;
        for y in b.y0.max(0.0) as u32..(b.y1.ceil() as u32).min(h) {
            for x in b.x0.max(0.0) as u32..(b.x1.ceil() as u32).min(w) {
                if how.covers(r, x, y) {
                    m.put_pixel(x, y, image::Luma([255]));
                }
            }
        }
    }
    m
}

/// Each region's category and score, for the verbose lines.
fn kinds(found: &Detections) -> Vec<String> {
    found
        .regions
        .iter()
        .map(|r| format!("{}:{:.2}", r.kind, r.score.unwrap_or(1.0)))
        .collect()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn sidecars(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

fn boxes(v: &Value) -> Vec<[u32; 4]> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|b| {
                    let b: Vec<u32> = b
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap().max(0.0).round() as u32)
                        .collect();
                    [b[0], b[1], b[2], b[3]]
                })
                .collect()
        })
        .unwrap_or_default()
}

fn turn_box(b: [u32; 4], w: u32, h: u32, deg: u32) -> [u32; 4] {
    let [x, y, bw, bh] = b;
    match deg {
        90 => [h.saturating_sub(y + bh), x, bh, bw],
        180 => [w.saturating_sub(x + bw), h.saturating_sub(y + bh), bw, bh],
        270 => [y, w.saturating_sub(x + bw), bh, bw],
        _ => b,
    }
}

fn faces(engine: &Engine, data: &Path, turns: &[u32], verbose: bool) {
    let mut photos = Vec::new();
    for sub in ["faces", "faces/rotated"] {
        photos.extend(sidecars(&data.join(sub)));
    }
    for &deg in turns {
        let (mut n, mut hit, mut outside, mut images) = (0, 0, 0.0, 0);
        let t0 = Instant::now();
        for js in &photos {
            let v = json(js);
            let Some(name) = v["image"].as_str() else {
                continue;
            };
            let img = image::open(js.with_file_name(name)).unwrap();
            let (w0, h0) = (img.width(), img.height());
            let img = match deg {
                90 => img.rotate90(),
                180 => img.rotate180(),
                270 => img.rotate270(),
                _ => img,
            }
            .to_rgb8();
            let (w, h) = img.dimensions();
            let found = detect(engine, &img);
            if std::env::var_os("MEASURE_DUMP").is_some() {
                for r in &found.regions {
                    let b = r.rect;
                    println!(
                        "det {name} {deg} {w} {h} {} {} {} {} {:.3}",
                        b.x0,
                        b.y0,
                        b.x1,
                        b.y1,
                        r.score.unwrap_or(1.0)
                    );
                }
            }
            let m = painted(&found, w, h);
            let mut truth = GrayImage::new(w, h);
            let all: Vec<[u32; 4]> = boxes(&v["faces"])
                .into_iter()
                .chain(boxes(&v["faces_ignore"]))
                .map(|b| turn_box(b, w0, h0, deg))
                .collect();
            for b in &all {
                for y in b[1]..(b[1] + b[3]).min(h) {
                    for x in b[0]..(b[0] + b[2]).min(w) {
                        truth.put_pixel(x, y, image::Luma([255]));
                    }
                }
            }
            for b in boxes(&v["faces"]) {
                let tall = b[3];
                let b = turn_box(b, w0, h0, deg);
                if tall < 20 {
                    continue;
                }
                n += 1;
                let (mut c, mut t) = (0u64, 0u64);
                for y in b[1]..(b[1] + b[3]).min(h) {
                    for x in b[0]..(b[0] + b[2]).min(w) {
                        t += 1;
                        c += u64::from(m.get_pixel(x, y).0[0] > 0);
                    }
                }
                if c as f64 >= 0.9 * t.max(1) as f64 {
                    hit += 1;
                } else if verbose {
                    println!(
                        "miss {name} {deg} {b:?} {:.0}%",
                        100.0 * c as f64 / t as f64
                    );
                }
            }
            let out = m
                .pixels()
                .zip(truth.pixels())
                .filter(|(a, b)| a.0[0] > 0 && b.0[0] == 0)
                .count() as f64
                / f64::from(w * h);
            if verbose && out > 0.15 {
                println!("outside {name} {deg}: {:.1}%", out * 100.0);
            }
            outside += out;
            images += 1;
        }
        println!(
            "faces turn {deg}: {hit}/{n} = {:.1}% covered; painted outside faces {:.1}% (mean of {images}); {:.1} s",
            100.0 * f64::from(hit) / f64::from(n),
            100.0 * outside / f64::from(images),
            t0.elapsed().as_secs_f64()
        );
    }
}

fn clinical(engine: &Engine, dir: &Path, verbose: bool) {
    let (mut sum, mut over, mut area, mut n) = (0.0, 0, 0.0, 0);
    for js in sidecars(dir) {
        let v = json(&js);
        let Some(name) = v["image"].as_str() else {
            continue;
        };
        let img = image::open(js.with_file_name(name)).unwrap().to_rgb8();
        let mask = image::open(js.with_file_name(v["mask"].as_str().unwrap()))
            .unwrap()
            .to_luma8();
        let (w, h) = img.dimensions();
        let found = detect(engine, &img);
        let m = painted(&found, w, h);
        let (mut lesion, mut lost, mut all) = (0u64, 0u64, 0u64);
        for (p, q) in m.pixels().zip(mask.pixels()) {
            let paint = p.0[0] > 0;
            all += u64::from(paint);
            if q.0[0] > 127 {
                lesion += 1;
                lost += u64::from(paint);
            }
        }
        let share = lost as f64 / lesion.max(1) as f64;
        sum += share;
        area += all as f64 / f64::from(w * h);
        n += 1;
        if share > 0.10 {
            over += 1;
        }
        if verbose && (share > 0.0 || !found.regions.is_empty()) {
            let kinds = kinds(&found);
            println!(
                "{name}: lesion {:.1}% painted, image {:.1}%, {kinds:?}, review {}",
                share * 100.0,
                100.0 * all as f64 / f64::from(w * h),
                found.review.len()
            );
        }
    }
    println!(
        "clinical: lesion painted {:.2}% on average; {over}/{n} photos lose more than 10%; {:.2}% of each photo painted on average",
        100.0 * sum / f64::from(n),
        100.0 * area / f64::from(n)
    );
}

fn metadata(engine: &Engine, dir: &Path, verbose: bool) {
    let mut shares = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
            {
                files.push(p);
            }
        }
    }
    files.sort();
    for p in files {
        let Ok(img) = image::open(&p) else {
            continue;
        };
        let img = img.to_rgb8();
        let (w, h) = img.dimensions();
        let found = detect(engine, &img);
        let m = painted(&found, w, h);
        let share = m.pixels().filter(|p| p.0[0] > 0).count() as f64 / f64::from(w * h);
        if verbose {
            let kinds = kinds(&found);
            println!(
                "{}: {:.1}% {kinds:?}",
                p.file_name().unwrap().to_string_lossy(),
                share * 100.0
            );
        }
        shares.push(share);
    }
    shares.sort_by(f64::total_cmp);
    let n = shares.len();
    println!(
        "metadata: {n} photos; painted median {:.1}%, mean {:.1}%, max {:.1}%, {} over 25%",
        100.0 * shares[n / 2],
        100.0 * shares.iter().sum::<f64>() / n as f64,
        100.0 * shares[n - 1],
        shares.iter().filter(|&&s| s > 0.25).count()
    );
}
