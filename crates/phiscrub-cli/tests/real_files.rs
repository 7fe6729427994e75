//! The real binary on real camera and phone files from `../shared/data/metadata` (skipped with
//! a printed reason when that folder is absent). Every assertion is on the output files: an
//! independent parser (exiftool, kamadak-exif) and decoded pixels.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use common::*;

/// Scrubs a copy of the metadata set once per test binary; returns (input copy, output root).
fn scrubbed() -> Option<&'static (PathBuf, PathBuf, serde_json::Value)> {
    static RUN: OnceLock<Option<(PathBuf, PathBuf, serde_json::Value)>> = OnceLock::new();
    RUN.get_or_init(|| {
        let data = shared_data()?;
        let dir = tempfile::tempdir().unwrap().keep();
        let input = dir.join("metadata");
        copy_tree(&data.join("metadata"), &input);
        let report = dir.join("report.jsonl");
        let out = run(&[
            input.as_os_str(),
            OsStr::new("--report"),
            report.as_os_str(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<serde_json::Value> = fs::read_to_string(&report)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        Some((
            input,
            dir.join("metadata-scrubbed"),
            serde_json::Value::Array(lines),
        ))
    })
    .as_ref()
}

#[test]
fn every_real_image_is_scrubbed_and_exiftool_finds_nothing_left() {
    let Some((input, out, _)) = scrubbed() else {
        return;
    };
    let images: Vec<_> = files(input)
        .into_iter()
        .filter(|p| {
            p.extension() != Some(OsStr::new("json")) && p.extension() != Some(OsStr::new("tsv"))
        })
        .collect();
    let outputs = files(out);
    assert_eq!(
        outputs.len(),
        images.len(),
        "one output per image: {outputs:#?}"
    );
    let left = exiftool_leftovers(&outputs);
    // Orientation is the one tag allowed, and only on losslessly scrubbed JPEGs.
    let bad: Vec<_> = left
        .iter()
        .filter(|(_, tags)| !(tags.len() == 1 && tags[0].starts_with("IFD0:Orientation=")))
        .collect();
    assert!(bad.is_empty(), "metadata survived: {bad:#?}");
    eprintln!(
        "exiftool second opinion: {} outputs, none with metadata beyond file structure",
        outputs.len()
    );
}

#[test]
fn gps_is_removed_from_every_photo_that_had_it() {
    let Some((input, out, _)) = scrubbed() else {
        return;
    };
    let mut checked = 0;
    for json in files(input)
        .into_iter()
        .filter(|p| p.extension() == Some(OsStr::new("json")))
    {
        let meta: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
        if meta["facts"]["gps_tag_count"].as_u64().unwrap_or(0) == 0 {
            continue;
        }
        let rel = json.strip_prefix(input).unwrap();
        let produced: Vec<_> = files(out)
            .into_iter()
            .filter(|p| p.strip_prefix(out).unwrap().with_extension("") == rel.with_extension(""))
            .collect();
        assert_eq!(produced.len(), 1, "{}", rel.display());
        let fields = exif_fields(&produced[0]);
        assert!(
            fields
                .iter()
                .all(|(t, _)| t.context() != exif::Context::Gps),
            "{}: {fields:?}",
            rel.display()
        );
        let bytes = fs::read(&produced[0]).unwrap();
        for needle in [&b"GPS"[..], b"NIKON", b"Apple", b"iPhone"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{}",
                rel.display()
            );
        }
        checked += 1;
    }
    eprintln!("{checked} photos had GPS; none kept it");
    assert!(
        checked >= 10,
        "9 Nikon GPS photos and one iPhone HEIC at least: {checked}"
    );
}

#[test]
fn orientations_1_to_8_all_display_upright() {
    let Some((_, out, _)) = scrubbed() else {
        return;
    };
    for shape in ["landscape", "portrait"] {
        let reference = decode_as_displayed(&out.join(format!("orientation/{shape}_1.jpg")));
        for n in 1..=8 {
            let path = out.join(format!("orientation/{shape}_{n}.jpg"));
            let shown = decode_as_displayed(&path);
            assert_eq!(shown.dimensions(), reference.dimensions(), "{shape}_{n}");
            let (best, score, next) = best_orientation(&shown, &reference);
            assert_eq!(
                best, 1,
                "{shape}_{n} is not upright (diff {score}, next {next})"
            );
            // The references differ by JPEG generations and a colour-profile conversion, so
            // the match is close, not exact; any wrong orientation is far worse.
            assert!(
                score < 12.0 && next > 2.0 * score,
                "{shape}_{n}: {score} vs {next}"
            );
        }
    }
}

#[test]
fn lossless_outputs_of_real_jpegs_decode_to_identical_pixels() {
    let Some((input, out, report)) = scrubbed() else {
        return;
    };
    let mut same = 0;
    for line in report.as_array().unwrap() {
        if line["path"] != "lossless" {
            continue;
        }
        let src = PathBuf::from(line["input"].as_str().unwrap());
        let dst = PathBuf::from(line["output"].as_str().unwrap());
        let rel = src.strip_prefix(input).unwrap();
        assert_eq!(dst, out.join(rel));
        match image::open(&src) {
            Ok(a) => {
                let b = image::open(&dst).unwrap();
                assert_eq!(a.as_bytes(), b.as_bytes(), "{}", rel.display());
                same += 1;
            }
            Err(e) => eprintln!(
                "{}: input does not decode here ({e}); bytes compared only",
                rel.display()
            ),
        }
    }
    eprintln!("{same} lossless outputs decode to pixels identical to their inputs");
    // Files where faces (or face-like texture) were covered are re-encoded; at least the
    // landscape, document and test-chart JPEGs must stay lossless.
    assert!(same >= 5, "{same}");
}

#[test]
fn heic_becomes_a_plain_jpeg_of_the_primary_image() {
    let Some((input, out, _)) = scrubbed() else {
        return;
    };
    for (name, json) in [
        ("IMG_5195", "IMG_5195.json"),
        ("samplefilehub", "samplefilehub.json"),
    ] {
        let meta: serde_json::Value =
            serde_json::from_slice(&fs::read(input.join("heic").join(json)).unwrap()).unwrap();
        let size = &meta["facts"]["stored_size"];
        let jpg = out.join("heic").join(format!("{name}.jpg"));
        let bytes = fs::read(&jpg).unwrap();
        assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF]), "{name}");
        assert!(
            !(0xE0..=0xEF).contains(&bytes[3]),
            "{name}: an APPn follows SOI"
        );
        assert!(
            !bytes.windows(4).any(|w| w == b"Exif" || w == b"ftyp"),
            "{name}"
        );
        let img = image::open(&jpg).unwrap();
        assert_eq!(
            (u64::from(img.width()), u64::from(img.height())),
            (size[0].as_u64().unwrap(), size[1].as_u64().unwrap()),
            "{name}"
        );
        assert!(exif_fields(&jpg).is_empty(), "{name}");
    }
}

#[test]
fn inspect_reports_gps_and_heic_items_on_real_files() {
    let Some(data) = shared_data() else { return };
    let out = run(&[
        OsStr::new("inspect"),
        OsStr::new("--json"),
        data.join("metadata/gps/DSCN0010.jpg").as_os_str(),
        data.join("metadata/heic/IMG_5195.HEIC").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines[0]["exif"]["gps_tags"].as_u64().unwrap() > 0);
    assert_eq!(lines[1]["exif"]["gps_tags"], 13);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("COOLPIX") && !text.contains("iPhone"),
        "no values in inspect"
    );
}

use image::GenericImageView;
