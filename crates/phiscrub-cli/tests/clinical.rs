//! End to end on the project's own rendered fixtures (`fixtures/clinical`, made by
//! `xtask/src/bin/make_clinical_fixtures.rs`): a wristband, a patient monitor and a chart page.
//! With every detector on, no pixel box of the ground truth (text lines and codes) survives,
//! and neither the report nor the messages carry any of the identifying values.

mod common;

use std::collections::BTreeMap;
use std::fs;

use serde_json::Value;

#[test]
fn no_ground_truth_box_survives_on_the_rendered_clinical_fixtures() {
    let src = common::fixtures().join("clinical");
    let run = common::scrub_copy(&src, &["--fill-color", common::FILL]);
    let (reports, out, stderr) = (&run.reports, &run.out, &run.stderr);
    let mut boxes = 0;
    for name in ["wristband", "monitor", "chart"] {
        let v: Value =
            serde_json::from_slice(&fs::read(src.join(format!("{name}.json"))).unwrap()).unwrap();
        let got = image::open(out.join(format!("{name}.jpg")))
            .unwrap()
            .to_rgb8();
        for key in ["text", "codes"] {
            for (i, poly) in v[key].as_array().unwrap().iter().enumerate() {
                let c = common::polygon_coverage(&got, &common::floats(poly));
                // Every pixel, bar JPEG's blurring of a few at the very edge of a cover.
                assert!(
                    c >= 0.99,
                    "{name} {key} {i}: only {:.1}% covered",
                    c * 100.0
                );
                boxes += 1;
            }
        }
        let r = &reports[&format!("{name}.jpg")];
        let cats: Vec<&str> = r["regions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["category"].as_str().unwrap())
            .collect();
        assert!(cats.contains(&"text"), "{name}: {cats:?}");
        if !v["codes"].as_array().unwrap().is_empty() {
            assert!(cats.contains(&"barcode"), "{name}: {cats:?}");
        }
    }
    assert_eq!(boxes, 30);
    // Names, record numbers and the codes' contents appear nowhere the user or a log sees.
    let report_text = fs::read_to_string(run.dir.path().join("report.jsonl")).unwrap();
    for secret in [
        "00482913", "DOE", "7730215", "SMITH", "5519027", "GARCIA", "MRN",
    ] {
        assert!(!report_text.contains(secret), "report holds {secret}");
        assert!(!stderr.contains(secret), "messages hold {secret}");
    }
    common::figure(&format!(
        "clinical fixtures: {boxes}/{boxes} ground-truth boxes covered"
    ));
}

/// Runs the binary on a copy of the clinical fixtures with `args`; returns (exit code,
/// stderr, report lines by file name).
fn run_on_fixtures(args: &[&str]) -> (Option<i32>, String, BTreeMap<String, Value>) {
    let r = common::run_copy(&common::fixtures().join("clinical"), args);
    (r.code, r.stderr, r.reports)
}

fn categories(r: &Value) -> Vec<String> {
    let mut c: Vec<String> = r["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["category"].as_str().unwrap().to_string())
        .collect();
    c.sort();
    c.dedup();
    c
}

#[test]
fn only_and_skip_choose_the_detectors_that_run() {
    let (code, err, r) = run_on_fixtures(&["--only", "barcode", "-q"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        r["wristband.jpg"]["detectors"],
        serde_json::json!(["rxing"])
    );
    assert_eq!(categories(&r["wristband.jpg"]), ["barcode"]);
    // The monitor shows no code: with text skipped, nothing on it is covered.
    assert_eq!(r["monitor.jpg"]["path"], "lossless");

    let (code, err, r) = run_on_fixtures(&["--skip", "text,barcode", "-q"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        r["chart.jpg"]["detectors"],
        serde_json::json!(["centerface", "yunet"])
    );
    assert!(!categories(&r["wristband.jpg"]).contains(&"text".to_string()));

    let (code, err, r) = run_on_fixtures(&["--skip", "face,text,barcode"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--metadata-only"), "{err}");
    assert!(r.is_empty());

    let (code, err, r) = run_on_fixtures(&["--only", "names"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("unknown category 'names' (face, text, barcode)"),
        "{err}"
    );
    assert!(r.is_empty());
}

#[test]
fn blurring_or_pixelating_text_warns_once_per_run() {
    for style in ["blur", "pixelate"] {
        let (code, err, r) = run_on_fixtures(&["--style", &format!("text={style}"), "-q"]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(err.matches("warning").count(), 1, "{err}");
        assert!(err.contains("Depix"), "{err}");
        let styles: Vec<&str> = r["monitor.jpg"]["regions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["style"].as_str().unwrap())
            .collect();
        assert!(styles.iter().all(|s| *s == style), "{styles:?}");
    }
    let (code, err, _) = run_on_fixtures(&["--style", "face=blur,barcode=pixelate", "-q"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn text_blocks_cover_neighbouring_lines_as_one() {
    let count = |args: &[&str]| {
        let (code, err, r) = run_on_fixtures(args);
        assert_eq!(code, Some(0), "{err}");
        r["chart.jpg"]["regions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["category"] == "text")
            .count()
    };
    let (blocks, lines) = (
        count(&["--only", "text", "-q"]),
        count(&["--only", "text", "--text-blocks", "off", "-q"]),
    );
    // The six note lines become one block, the label's three lines another.
    assert!(blocks + 6 <= lines, "{blocks} blocks, {lines} lines");
}
