//! Detection and redaction through the real binary, on a real public-domain portrait in
//! `fixtures/faces`: what the output pixels show, how runtime and model failures stop a run
//! before any file is touched, manual regions, styles and the report.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use image::{DynamicImage, GenericImageView, RgbImage};
use serde_json::Value;

const PORTRAIT: &str = "astronaut_eileen_collins.png";

/// The face box of the fixture portrait (x, y, w, h), from its JSON sidecar.
fn face_box() -> [u32; 4] {
    let v: Value = serde_json::from_slice(
        &fs::read(fixtures().join("faces/astronaut_eileen_collins.json")).unwrap(),
    )
    .unwrap();
    let b: Vec<u32> = v["faces"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    [b[0], b[1], b[2], b[3]]
}

/// A scratch folder holding a copy of the portrait; returns (scratch, copy).
fn portrait() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join(PORTRAIT);
    fs::copy(fixtures().join("faces").join(PORTRAIT), &p).unwrap();
    (t, p)
}

fn scrub(args: &[&str], input: &Path) -> std::process::Output {
    let o = bin().args(args).arg(input).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Runs `cmd`, which must stop the whole run (exit 2) before any output is written beside
/// `input`; returns its stderr.
fn stopped(cmd: &mut std::process::Command, input: &Path) -> String {
    let o = cmd.arg(input).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!input.parent().unwrap().join("scrubbed").exists());
    err
}

fn output_of(input: &Path) -> PathBuf {
    input.parent().unwrap().join("scrubbed").join(PORTRAIT)
}

fn share(img: &RgbImage, b: [u32; 4], pred: impl Fn([u8; 3]) -> bool) -> f64 {
    let [x, y, w, h] = b;
    let mut hit = 0;
    for yy in y..y + h {
        for xx in x..x + w {
            hit += u32::from(pred(img.get_pixel(xx, yy).0));
        }
    }
    f64::from(hit) / f64::from(w * h)
}

#[test]
fn a_real_face_is_covered_in_solid_black_and_nothing_else_changes() {
    let (_t, input) = portrait();
    scrub(&["-q"], &input);
    let before = image::open(&input).unwrap().to_rgb8();
    let after = image::open(output_of(&input)).unwrap().to_rgb8();
    assert_eq!(before.dimensions(), after.dimensions());
    let covered = share(&after, face_box(), |p| p == [0, 0, 0]);
    assert_eq!(covered, 1.0, "share of the face that is black");
    // Every pixel either is as before or is black, and the black area is one box around the
    // face (grown by its margins and merged over the passes that saw it), not the picture.
    let mut changed = 0u32;
    for (x, y, p) in after.enumerate_pixels() {
        if p != before.get_pixel(x, y) {
            assert_eq!(p.0, [0, 0, 0], "({x},{y}) changed to something else");
            changed += 1;
        }
    }
    let [_, _, w, h] = face_box();
    assert!(changed < 5 * w * h, "{changed} pixels changed");
}

#[test]
fn a_face_lying_on_its_side_is_covered_too() {
    let (t, input) = portrait();
    let turned = t.path().join("turned.png");
    image::open(&input)
        .unwrap()
        .rotate90()
        .save(&turned)
        .unwrap();
    scrub(&["-q"], &turned);
    let after = image::open(t.path().join("scrubbed/turned.png"))
        .unwrap()
        .to_rgb8();
    let [x, y, w, h] = face_box();
    let turned_box = [512 - y - h, x, h, w];
    assert_eq!(share(&after, turned_box, |p| p == [0, 0, 0]), 1.0);
}

#[test]
fn report_lists_each_region_with_box_score_detector_and_model_hash() {
    let (t, input) = portrait();
    let report = t.path().join("r.jsonl");
    scrub(&["-q", "--report", report.to_str().unwrap()], &input);
    let line: Value = serde_json::from_str(fs::read_to_string(&report).unwrap().trim()).unwrap();
    assert_eq!(
        line["detectors"],
        serde_json::json!(["centerface", "yunet", "ppocr_det", "ppocr_rec", "rxing"])
    );
    let regions = line["regions"].as_array().unwrap();
    assert_eq!(regions.len(), 1, "{line}");
    let r = &regions[0];
    assert_eq!(r["category"], "face");
    assert_eq!(r["style"], "fill");
    assert_eq!(r["detector"], "centerface");
    let manifest = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join("models/MANIFEST"),
    )
    .unwrap();
    let sha = r["model_sha256"].as_str().unwrap();
    assert!(manifest.contains(&format!("sha256 = \"{sha}\"")), "{sha}");
    assert!(r["score"].as_f64().unwrap() > 0.5);
    // The reported box is the black area in the output.
    let after = image::open(output_of(&input)).unwrap().to_rgb8();
    assert_eq!(
        share(&after, region_boxes(&line)[0], |p| p == [0, 0, 0]),
        1.0
    );
    assert_eq!(line["path"], "reencoded");
}

#[test]
fn fill_colour_pixelate_blur_and_ellipse_are_honoured() {
    let face = face_box();
    let (_t, input) = portrait();
    let before = image::open(&input).unwrap().to_rgb8();
    scrub(&["-q", "--fill-color", "00ff00"], &input);
    let green = image::open(output_of(&input)).unwrap().to_rgb8();
    assert_eq!(share(&green, face, |p| p == [0, 255, 0]), 1.0);

    for style in ["pixelate", "blur"] {
        let out = output_of(&input);
        fs::remove_dir_all(out.parent().unwrap()).unwrap();
        scrub(&["-q", "--style", &format!("face={style}")], &input);
        let after = image::open(&out).unwrap().to_rgb8();
        // The face no longer matches the original at pixel level...
        let mut distinct = std::collections::HashSet::new();
        let mut same = 0;
        let [x, y, w, h] = face;
        for yy in y..y + h {
            for xx in x..x + w {
                let p = after.get_pixel(xx, yy).0;
                distinct.insert(p);
                same += u32::from(p == before.get_pixel(xx, yy).0);
            }
        }
        assert!(same * 20 < w * h, "{style}: {same} pixels kept");
        if style == "pixelate" {
            // ...and a pixelated face holds only a coarse grid of colours.
            assert!(distinct.len() <= 64, "{style}: {} colours", distinct.len());
        }
    }

    let out = output_of(&input);
    fs::remove_dir_all(out.parent().unwrap()).unwrap();
    scrub(&["-q", "--shape", "ellipse"], &input);
    let ellipse = image::open(&out).unwrap().to_rgb8();
    let [x, y, w, h] = face;
    // The centre of the face is covered; the corner of the covered box is not.
    assert_eq!(ellipse.get_pixel(x + w / 2, y + h / 2).0, [0, 0, 0]);
    assert!(share(&ellipse, face, |p| p == [0, 0, 0]) > 0.75);
}

#[test]
fn manual_regions_are_covered_and_reported() {
    let (t, input) = portrait();
    let regions = t.path().join("regions.json");
    fs::write(
        &regions,
        format!(r#"{{"{PORTRAIT}": [[300, 340, 40, 30]]}}"#),
    )
    .unwrap();
    let report = t.path().join("r.jsonl");
    scrub(
        &[
            "-q",
            "--regions",
            regions.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
        &input,
    );
    let after = image::open(output_of(&input)).unwrap().to_rgb8();
    assert_eq!(share(&after, [300, 340, 40, 30], |p| p == [0, 0, 0]), 1.0);
    let line: Value = serde_json::from_str(fs::read_to_string(&report).unwrap().trim()).unwrap();
    let manual: Vec<&Value> = line["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["category"] == "manual")
        .collect();
    assert_eq!(manual.len(), 1);
    assert_eq!(manual[0]["box"], serde_json::json!([300, 340, 40, 30]));
}

#[test]
fn a_manual_region_outside_the_image_fails_that_file() {
    let (t, input) = portrait();
    let regions = t.path().join("regions.json");
    fs::write(
        &regions,
        format!(r#"{{"{PORTRAIT}": [[600, 10, 40, 30]]}}"#),
    )
    .unwrap();
    let o = bin()
        .args(["--regions", regions.to_str().unwrap()])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("lies outside the 512x512 image"), "{err}");
    assert!(!output_of(&input).exists());
}

/// Scrubs the portrait with `regions.json` holding `entry` for it; returns the exit code,
/// stderr and the report line (when the file was scrubbed).
fn with_regions(t: &Path, input: &Path, entry: &str) -> (Option<i32>, String, Option<Value>) {
    let regions = t.join("regions.json");
    fs::write(&regions, format!(r#"{{"{PORTRAIT}": {entry}}}"#)).unwrap();
    let report = t.join("r.jsonl");
    let _ = fs::remove_file(&report);
    let o = bin()
        .args(["-q", "--overwrite", "--regions", regions.to_str().unwrap()])
        .args(["--report", report.to_str().unwrap()])
        .arg(input)
        .output()
        .unwrap();
    let line = fs::read_to_string(&report)
        .ok()
        .and_then(|r| serde_json::from_str::<Value>(r.trim()).ok())
        .filter(|l| l["status"] == "scrubbed");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        line,
    )
}

#[test]
fn a_region_kept_by_id_is_left_uncovered_and_the_report_says_who_decided() {
    let (t, input) = portrait();
    let (code, err, first) = with_regions(t.path(), &input, "[]");
    assert_eq!(code, Some(0), "{err}");
    let first = first.unwrap();
    let face = &first["regions"][0];
    assert_eq!(face["category"], "face");
    let id = face["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("face-"), "{id}");
    let covered = image::open(output_of(&input)).unwrap().to_rgb8();
    assert!(share(&covered, face_box(), |p| p == [0, 0, 0]) > 0.9);

    // The same photo again gives the face the same id; keeping it uncovers it, while a box
    // drawn by hand is still covered.
    let entry = format!(
        r#"{{"cover": [[300, 340, 40, 30]], "keep": ["{}"]}}"#,
        id.to_uppercase()
    );
    let (code, err, line) = with_regions(t.path(), &input, &entry);
    assert_eq!(code, Some(0), "{err}");
    let line = line.unwrap();
    let kept = line["kept_by_user"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{line}");
    assert_eq!(kept[0]["id"], id.as_str());
    assert_eq!(kept[0]["category"], "face");
    assert!(
        kept[0]["style"].is_null(),
        "a kept region is not covered: {line}"
    );
    let cats: Vec<&str> = line["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["category"].as_str().unwrap())
        .collect();
    assert_eq!(cats, ["manual"]);
    let original = image::open(&input).unwrap().to_rgb8();
    let after = image::open(output_of(&input)).unwrap().to_rgb8();
    let [x, y, w, h] = face_box();
    for yy in y..y + h {
        for xx in x..x + w {
            assert_eq!(after.get_pixel(xx, yy), original.get_pixel(xx, yy));
        }
    }
    assert_eq!(share(&after, [300, 340, 40, 30], |p| p == [0, 0, 0]), 1.0);
}

#[test]
fn a_kept_id_the_photo_lacks_fails_that_file_and_a_malformed_one_stops_the_run() {
    let (t, input) = portrait();
    let (code, err, line) = with_regions(t.path(), &input, r#"{"keep": ["face-0-0-5-5"]}"#);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no region matching 'face-0-0-5-5'"), "{err}");
    assert!(line.is_none());
    assert!(!output_of(&input).exists());

    let (code, err, _) = with_regions(t.path(), &input, r#"{"keep": ["face-../../x"]}"#);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is not a region id"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!output_of(&input).exists());
}

#[test]
fn a_regions_file_naming_an_unknown_image_stops_the_run() {
    let (t, input) = portrait();
    let regions = t.path().join("regions.json");
    fs::write(&regions, r#"{"not_here.jpg": [[0, 0, 10, 10]]}"#).unwrap();
    let err = stopped(bin().args(["--regions", regions.to_str().unwrap()]), &input);
    assert!(err.contains("not_here.jpg"), "{err}");
}

#[test]
fn a_missing_onnx_runtime_stops_before_any_file_is_touched() {
    let (t, input) = portrait();
    let err = stopped(
        bin().args(["--ort-lib", "/nonexistent/libonnxruntime.so.1.32.0"]),
        &input,
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/nonexistent/libonnxruntime.so.1.32.0"),
        "{err}"
    );

    // The same through the environment variable, and with a file that is not a library.
    let fake = t.path().join("libonnxruntime.so.1.32.0");
    fs::write(&fake, b"not a shared library").unwrap();
    let err = stopped(bin().env("ORT_DYLIB_PATH", &fake), &input);
    assert!(err.contains("cannot load onnx runtime"), "{err}");
}

#[test]
fn a_model_that_does_not_match_its_manifest_stops_the_run() {
    let (t, input) = portrait();
    let models = t.path().join("models");
    fs::create_dir(&models).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("models");
    fs::copy(root.join("MANIFEST"), models.join("MANIFEST")).unwrap();
    let mut onnx = fs::read(root.join("centerface.onnx")).unwrap();
    let n = onnx.len();
    onnx[n / 2] ^= 0x40;
    fs::write(models.join("centerface.onnx"), onnx).unwrap();
    let err = stopped(bin().args(["--models", models.to_str().unwrap()]), &input);
    assert!(err.contains("does not match the manifest"), "{err}");
}

#[test]
fn verbose_says_which_runtime_and_model_were_used() {
    let (_t, input) = portrait();
    let o = scrub(&["-v", "-j", "2"], &input);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("libonnxruntime.so.1.32.0"), "{err}");
    assert!(err.contains("model centerface from embedded"), "{err}");
    // One file and two threads: one worker with two inference threads.
    assert!(err.contains("1 worker(s) x 2 inference thread(s)"), "{err}");
}

#[test]
fn metadata_only_leaves_pixels_alone_and_the_report_says_no_detector_ran() {
    let (t, input) = portrait();
    let report = t.path().join("r.jsonl");
    let o = scrub(
        &["--metadata-only", "--report", report.to_str().unwrap()],
        &input,
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("metadata only"));
    let before: DynamicImage = image::open(&input).unwrap();
    let after = image::open(output_of(&input)).unwrap();
    assert!(before.pixels().zip(after.pixels()).all(|(a, b)| a == b));
    let line: Value = serde_json::from_str(fs::read_to_string(&report).unwrap().trim()).unwrap();
    assert_eq!(line["detectors"], serde_json::json!([]));
    assert_eq!(line["path"], "lossless");
}

#[test]
fn a_covered_jpeg_keeps_its_quality_level() {
    let (t, input) = portrait();
    let jpg = t.path().join("portrait.jpg");
    let img = image::open(&input).unwrap().to_rgb8();
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 75)
        .encode_image(&img)
        .unwrap();
    fs::write(&jpg, &bytes).unwrap();
    scrub(&["-q"], &jpg);
    let out = fs::read(t.path().join("scrubbed/portrait.jpg")).unwrap();
    // exiftool's independent estimate of the quality, from the quantisation tables.
    let q = std::process::Command::new("exiftool")
        .args(["-s3", "-JPEGQualityEstimate", "-api", "RequestAll=3"])
        .arg(t.path().join("scrubbed/portrait.jpg"))
        .output()
        .unwrap();
    let q: u32 = String::from_utf8_lossy(&q.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert!((73..=77).contains(&q), "quality {q}");
    // Re-encoding at 75 instead of 90 keeps the file about as small as the source.
    assert!(
        out.len() < bytes.len() * 5 / 4,
        "{} vs {}",
        out.len(),
        bytes.len()
    );
    let decoded = image::load_from_memory(&out).unwrap().to_rgb8();
    assert!(share(&decoded, face_box(), |p| p.iter().all(|&c| c < 40)) > 0.99);
}

#[test]
fn a_face_in_a_still_gif_is_covered_and_it_stays_a_gif() {
    let (t, input) = portrait();
    let gif = t.path().join("portrait.gif");
    image::open(&input).unwrap().save(&gif).unwrap();
    scrub(&["-q"], &gif);
    let out = t.path().join("scrubbed/portrait.gif");
    assert!(fs::read(&out).unwrap().starts_with(b"GIF8"));
    let decoded = image::open(&out).unwrap().to_rgb8();
    // Palette quantisation may pick a near-black for the fill.
    assert!(share(&decoded, face_box(), |p| p.iter().all(|&c| c < 40)) > 0.99);
}

#[test]
fn an_animation_is_refused_with_detection_on_and_scrubbed_with_metadata_only() {
    let t = tempfile::tempdir().unwrap();
    let gif = t.path().join("anim.gif");
    {
        let mut enc = image::codecs::gif::GifEncoder::new(fs::File::create(&gif).unwrap());
        for v in [40u8, 200] {
            let frame = image::RgbaImage::from_pixel(16, 16, image::Rgba([v, v, v, 255]));
            enc.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    let o = bin().arg(&gif).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("anim.gif: ") && err.contains("every frame"),
        "{err}"
    );
    assert!(!t.path().join("scrubbed/anim.gif").exists());
    let o = bin().arg("--metadata-only").arg(&gif).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(t.path().join("scrubbed/anim.gif").exists());
}
