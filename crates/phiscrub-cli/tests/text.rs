//! Text redaction measured on what the user gets: the real binary covers text in real
//! scanned receipts with ground-truth line polygons (`../shared/data/text`, SROIE), and each
//! output is checked pixel by pixel for how much of every line it covers, and for pixels
//! outside the covered regions left as they were.

mod common;

use std::fs;

use serde_json::Value;

/// A line counts as redacted when this share of its polygon is covered.
const COVERED: f64 = 0.90;
/// Share of lines that must be redacted.
const REQUIRED: f64 = 0.90;

#[test]
fn text_lines_in_real_receipts_are_covered_and_nothing_else_changes() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let src = data.join("text");
    let run = common::scrub_copy(
        &src,
        &["--only", "text", "--fill-color", common::FILL, "-q"],
    );
    let (reports, out) = (&run.reports, &run.out);
    let (mut lines, mut covered, mut images) = (0u32, 0u32, 0u32);
    let mut misses = Vec::new();
    let (mut outside_sum, mut outside_px) = (0f64, 0u64);
    for entry in fs::read_dir(&src).unwrap() {
        let json = entry.unwrap().path();
        if json.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let v: Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
        let name = v["image"].as_str().unwrap();
        images += 1;
        let got = image::open(out.join(name)).unwrap().to_rgb8();
        let before = image::open(src.join(name)).unwrap().to_rgb8();
        assert_eq!(got.dimensions(), before.dimensions(), "{name}");
        let ignore = v["ignore"].as_array().unwrap();
        for (i, poly) in v["text"].as_array().unwrap().iter().enumerate() {
            if ignore[i].as_bool().unwrap() {
                continue;
            }
            lines += 1;
            let c = common::polygon_coverage(&got, &common::floats(poly));
            if c >= COVERED {
                covered += 1;
            } else {
                misses.push(format!("{name} line {i}: {:.0}%", c * 100.0));
            }
        }
        // Outside every covered box (and the JPEG blocks its edge touches), the output is
        // the input re-encoded at its own quality.
        let regions = common::region_boxes(&reports[name]);
        assert!(!regions.is_empty(), "{name}: no region covered");
        let (d, n) = common::diff_outside(&before, &got, &regions, 16);
        assert!(
            d < 4.0,
            "{name}: pixels outside the regions moved by {d:.2} on average"
        );
        outside_sum += d * n as f64;
        outside_px += n;
    }
    assert_eq!(images, 30);
    let share = f64::from(covered) / f64::from(lines);
    common::figure(&format!(
        "text: {covered}/{lines} receipt lines at least {:.0}% covered = {:.1}%; outside the \
         regions ({outside_px} px) pixels differ by {:.2} levels on average (re-encoding)",
        COVERED * 100.0,
        share * 100.0,
        outside_sum / outside_px.max(1) as f64
    ));
    common::misses(&misses);
    assert!(share >= REQUIRED, "{:.1}% of lines covered", share * 100.0);
}
