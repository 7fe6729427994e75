//! Barcode redaction measured on what the user gets: the real binary covers the codes in
//! real photos (`../shared/data/barcodes`, ZXing's black-box set) and rxing, at full
//! resolution and trying hard, must read nothing from any output; pixels outside the covered
//! regions are unchanged (the photos are PNG, so exactly).

mod common;

use std::collections::BTreeMap;
use std::fs;

use rxing::common::HybridBinarizer;
use rxing::multi::{GenericMultipleBarcodeReader, MultipleBarcodeReader};
use rxing::{BinaryBitmap, DecodeHints, Luma8LuminanceSource};

/// Symbologies of every code rxing reads in `img`: whole image, full resolution, TryHarder,
/// several codes per image. Stronger than any single scan phiscrub runs.
fn readable(img: &image::GrayImage) -> Vec<String> {
    let (w, h) = img.dimensions();
    let luma = Luma8LuminanceSource::new(img.as_raw().clone(), w, h).unwrap();
    let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(luma));
    let hints = DecodeHints {
        TryHarder: Some(true),
        ..DecodeHints::default()
    };
    let mut reader = GenericMultipleBarcodeReader::new(rxing::MultiUseMultiFormatReader::default());
    reader
        .decode_multiple_with_hints(&mut bitmap, &hints)
        .unwrap_or_default()
        .iter()
        .map(|r| format!("{:?}", r.getBarcodeFormat()))
        .collect()
}

#[test]
fn no_code_can_be_read_from_any_output_and_nothing_else_changes() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let src = data.join("barcodes");
    let run = common::scrub_copy(&src, &["--only", "barcode", "-q"]);
    let (reports, out) = (&run.reports, &run.out);
    let (mut photos, mut readable_before, mut located) = (0, 0, 0);
    let mut still: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut misses = Vec::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "png") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        photos += 1;
        let before = image::open(&path).unwrap();
        let got = image::open(out.join(&name)).unwrap();
        let was = readable(&before.to_luma8());
        let now = readable(&got.to_luma8());
        let regions = common::region_boxes(&reports[&name]);
        if !was.is_empty() {
            readable_before += 1;
        }
        if regions.is_empty() {
            misses.push(format!(
                "{name}: none located (rxing read {was:?} from the input)"
            ));
        } else {
            located += 1;
        }
        if !now.is_empty() {
            still.insert(name.clone(), now);
        }
        // PNG in, PNG out: outside the covered boxes not one pixel may change.
        let (d, _) = common::diff_outside(&before.to_rgb8(), &got.to_rgb8(), &regions, 0);
        assert_eq!(d, 0.0, "{name}: pixels outside the covered regions changed");
        // The report names symbologies, never contents.
        let text = reports[&name].to_string();
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(path.with_extension("json")).unwrap()).unwrap();
        if let Some(payload) = json["expected_text"].as_str().filter(|t| t.len() >= 4) {
            assert!(
                !text.contains(payload.trim()),
                "{name}: report holds the decoded value"
            );
        }
    }
    assert_eq!(photos, 48);
    common::figure(&format!(
        "barcodes: {located}/{photos} photos had codes located and covered; rxing read \
         {readable_before} of the inputs and {} of the outputs",
        still.len()
    ));
    common::misses(&misses);
    assert!(still.is_empty(), "codes still readable: {still:?}");
    // Everything rxing itself can read in an input must have been found.
    assert!(
        located >= readable_before,
        "{located} located < {readable_before} readable"
    );
}
