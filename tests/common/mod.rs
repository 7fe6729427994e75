//! Helpers shared by the integration tests: running the real binary, copying inputs into a
//! scratch folder, and asking exiftool for a second opinion.
#![allow(dead_code)]

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
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// `../shared/data`, or `None` (with the reason printed) when it is absent.
pub fn shared_data() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
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
/// a camera, phone or editor. (`IFD0:Orientation`, which phiscrub keeps on the lossless JPEG
/// path, is deliberately not here: tests that expect it say so.)
const STRUCTURE: &[&str] = &[
    "PNG:ImageWidth",
    "PNG:ImageHeight",
    "PNG:BitDepth",
    "PNG:ColorType",
    "PNG:Compression",
    "PNG:Filter",
    "PNG:Interlace",
    "PNG:Palette",
    "PNG:Transparency",
    "PNG:AnimationFrames",
    "PNG:AnimationPlays",
    "GIF:GIFVersion",
    "GIF:ImageWidth",
    "GIF:ImageHeight",
    "GIF:HasColorMap",
    "GIF:ColorResolutionDepth",
    "GIF:BitsPerPixel",
    "GIF:BackgroundColor",
    "GIF:AnimationIterations",
    "GIF:FrameCount",
    "GIF:Duration",
    "GIF:TransparentColor",
    "RIFF:WebP_Flags",
    "RIFF:ImageWidth",
    "RIFF:ImageHeight",
    "RIFF:VP8Version",
    "RIFF:HorizontalScale",
    "RIFF:VerticalScale",
    "RIFF:AlphaPreprocessing",
    "RIFF:AlphaFiltering",
    "RIFF:AlphaCompression",
    "RIFF:BackgroundColor",
    "RIFF:AnimationLoopCount",
    "RIFF:Duration",
    "RIFF:FrameCount",
];

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
                k.as_str() != "SourceFile" && !bookkeeping && !STRUCTURE.contains(&k.as_str())
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
