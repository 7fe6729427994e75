//! Helpers shared by the integration tests: running the real binary, copying inputs into a
//! scratch folder, and asking exiftool for a second opinion.
#![allow(dead_code)]

pub mod hostile;

use image::GenericImageView;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_phiscrub"))
}

pub fn run(args: &[&std::ffi::OsStr]) -> Output {
    bin().args(args).output().expect("phiscrub runs")
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("fixtures")
}

/// `../shared/data`, or `None` (with the reason printed) when it is absent.
pub fn shared_data() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("../shared/data");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "skipped: {} is absent (evaluation data lives beside the project)",
            p.display()
        );
        None
    }
}

/// Copies a folder tree into `dst`.
pub fn copy_tree(src: &Path, dst: &Path) {
    for e in walkdir::WalkDir::new(src) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(src).unwrap();
        let to = dst.join(rel);
        if e.file_type().is_dir() {
            fs::create_dir_all(&to).unwrap();
        } else {
            fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Every regular file under `dir`, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    v.sort();
    v
}

/// Tags exiftool may report on a scrubbed file: the file's own structure, nothing written by
/// a camera, phone or editor, one per line after the comments (shared with the browser test).
fn structure() -> impl Iterator<Item = &'static str> {
    include_str!("exiftool-structure.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Runs exiftool on `paths` and returns, per file, every tag that is neither file structure
/// nor exiftool's own bookkeeping. An empty map means exiftool found no metadata at all.
pub fn exiftool_leftovers(paths: &[PathBuf]) -> BTreeMap<PathBuf, Vec<String>> {
    let out = Command::new("exiftool")
        .args(["-j", "-a", "-G1", "-u", "-ee3", "-api", "RequestAll=3"])
        .args(paths)
        .output()
        .expect("exiftool is installed (libimage-exiftool-perl)");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("exiftool JSON");
    let mut map = BTreeMap::new();
    for obj in v.as_array().unwrap() {
        let file = PathBuf::from(obj["SourceFile"].as_str().unwrap());
        let left: Vec<String> = obj
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| {
                let group = k.split(':').next().unwrap_or("");
                let bookkeeping = matches!(group, "System" | "File" | "Composite")
                    || (group == "ExifTool" && !k.ends_with(":Warning") && !k.ends_with(":Error"));
                k.as_str() != "SourceFile" && !bookkeeping && !structure().any(|t| t == k.as_str())
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !left.is_empty() {
            map.insert(file, left);
        }
    }
    map
}

/// The EXIF fields kamadak-exif finds in a file (empty when it has no EXIF).
pub fn exif_fields(path: &Path) -> Vec<(exif::Tag, String)> {
    let f = fs::File::open(path).unwrap();
    match exif::Reader::new().read_from_container(&mut std::io::BufReader::new(f)) {
        Ok(e) => e
            .fields()
            .map(|f| (f.tag, f.display_value().to_string()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Decodes a file and applies the EXIF orientation it carries, as a viewer would.
pub fn decode_as_displayed(path: &Path) -> image::DynamicImage {
    let mut img = image::open(path).unwrap();
    let f = fs::File::open(path).unwrap();
    let o = exif::Reader::new()
        .read_from_container(&mut std::io::BufReader::new(f))
        .ok()
        .and_then(|e| {
            e.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?
                .value
                .get_uint(0)
        })
        .unwrap_or(1) as u8;
    img.apply_orientation(image::metadata::Orientation::from_exif(o).unwrap());
    img
}

/// Mean absolute difference per channel between two same-sized images.
pub fn mean_abs_diff(a: &image::DynamicImage, b: &image::DynamicImage) -> f64 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

/// Which of the 8 EXIF orientations, applied to `img`, best matches `reference`; with the
/// best and second-best differences, so tests can require a clear winner.
pub fn best_orientation(
    img: &image::DynamicImage,
    reference: &image::DynamicImage,
) -> (u8, f64, f64) {
    let mut scores: Vec<(f64, u8)> = (1..=8u8)
        .filter_map(|o| {
            let mut t = img.clone();
            t.apply_orientation(image::metadata::Orientation::from_exif(o).unwrap());
            (t.dimensions() == reference.dimensions()).then(|| (mean_abs_diff(&t, reference), o))
        })
        .collect();
    scores.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    (
        scores[0].1,
        scores[0].0,
        scores.get(1).map_or(f64::INFINITY, |s| s.0),
    )
}

/// The fill used by tests that measure coverage: magenta is rare in photos, unlike black.
pub const FILL: &str = "FF00FF";

/// Whether a decoded output pixel is the magenta fill. JPEG re-encoding moves a flat magenta
/// by a few levels; chroma subsampling only blurs the outermost pixels of a cover.
pub fn is_fill(p: &image::Rgb<u8>) -> bool {
    p.0[0] >= 200 && p.0[1] <= 70 && p.0[2] >= 200
}

/// Share of the pixels inside polygon `pts` (flat `[x1, y1, x2, y2, ...]`) that are fill.
pub fn polygon_coverage(out: &image::RgbImage, pts: &[f32]) -> f64 {
    let p: Vec<(f32, f32)> = pts.chunks(2).map(|q| (q[0], q[1])).collect();
    let lo = |i: usize| {
        p.iter()
            .map(|q| if i == 0 { q.0 } else { q.1 })
            .fold(f32::MAX, f32::min)
    };
    let hi = |i: usize| {
        p.iter()
            .map(|q| if i == 0 { q.0 } else { q.1 })
            .fold(f32::MIN, f32::max)
    };
    let (x0, y0) = (lo(0).max(0.0) as u32, lo(1).max(0.0) as u32);
    let x1 = (hi(0).ceil() as u32).min(out.width());
    let y1 = (hi(1).ceil() as u32).min(out.height());
    let (mut hit, mut n) = (0u64, 0u64);
    for y in y0..y1 {
        for x in x0..x1 {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            // Even-odd rule.
            let mut inside = false;
            for i in 0..p.len() {
                let (a, b) = (p[i], p[(i + 1) % p.len()]);
                if (a.1 > py) != (b.1 > py) && px < a.0 + (py - a.1) / (b.1 - a.1) * (b.0 - a.0) {
                    inside = !inside;
                }
            }
            if inside {
                n += 1;
                hit += u64::from(is_fill(out.get_pixel(x, y)));
            }
        }
    }
    hit as f64 / n.max(1) as f64
}

/// Prints a measured figure to stderr directly, past the test harness's capture, so the
/// figures show in every `cargo test` log, passing or not.
pub fn figure(line: &str) {
    use std::io::Write;
    // Not eprintln!: the harness captures that.
    let mut err = std::io::stderr();
    writeln!(err, "{line}").unwrap();
}

/// Prints what a measurement missed, when `PHISCRUB_TEST_VERBOSE` is set.
pub fn misses(list: &[String]) {
    if std::env::var_os("PHISCRUB_TEST_VERBOSE").is_some() {
        for m in list {
            figure(&format!("  missed {m}"));
        }
    }
}

/// Mean absolute difference per channel between `a` and `b` over the pixels outside every
/// box of `regions` (`[x, y, w, h]`, grown by `pad` on each side), and how many there were.
pub fn diff_outside(
    a: &image::RgbImage,
    b: &image::RgbImage,
    regions: &[[u32; 4]],
    pad: u32,
) -> (f64, u64) {
    let inside = |x: u32, y: u32| {
        regions.iter().any(|r| {
            x + pad >= r[0] && x < r[0] + r[2] + pad && y + pad >= r[1] && y < r[1] + r[3] + pad
        })
    };
    let (mut sum, mut n) = (0u64, 0u64);
    for (x, y, p) in a.enumerate_pixels() {
        if inside(x, y) {
            continue;
        }
        let q = b.get_pixel(x, y);
        sum +=
            p.0.iter()
                .zip(q.0)
                .map(|(s, t)| u64::from(s.abs_diff(t)))
                .sum::<u64>();
        n += 1;
    }
    (sum as f64 / (3 * n.max(1)) as f64, n)
}

/// The report lines of a `--report` file, by input file name.
pub fn report_by_name(path: &Path) -> BTreeMap<String, serde_json::Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let name = Path::new(v["input"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, v)
        })
        .collect()
}

/// The `box` of every covered region in a report line.
pub fn region_boxes(report: &serde_json::Value) -> Vec<[u32; 4]> {
    report["regions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let b: Vec<u32> = r["box"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_u64().unwrap() as u32)
                        .collect();
                    [b[0], b[1], b[2], b[3]]
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a run of the binary over a scratch copy of a folder left.
pub struct Run {
    /// The scratch folder (removed when dropped).
    pub dir: tempfile::TempDir,
    /// Where the outputs went (`in-scrubbed` beside the copy).
    pub out: PathBuf,
    /// Exit code.
    pub code: Option<i32>,
    /// Everything printed to stderr.
    pub stderr: String,
    /// The `--report` lines by input file name (empty when none was written).
    pub reports: BTreeMap<String, serde_json::Value>,
}

/// Copies folder `src` to a scratch `in/` and runs the binary on it with `args` and a report.
pub fn run_copy(src: &Path, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_tree(src, &input);
    let report = dir.path().join("report.jsonl");
    let o = bin()
        .arg(&input)
        .args(args)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let reports = if report.exists() {
        report_by_name(&report)
    } else {
        BTreeMap::new()
    };
    Run {
        out: dir.path().join("in-scrubbed"),
        dir,
        code: o.status.code(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        reports,
    }
}

/// Like [`run_copy`], for runs that must succeed.
pub fn scrub_copy(src: &Path, args: &[&str]) -> Run {
    let r = run_copy(src, args);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    r
}

/// A JSON array of numbers as `f32`s.
pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}
