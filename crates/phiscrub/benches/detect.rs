//! The detect stage alone: CenterFace over the fixture portrait scaled to a few photo sizes,
//! with and without the turned passes; PP-OCR text detection over the rendered chart page and
//! barcode location over the rendered wristband at 2 and 12 MP; and the whole scrub (decode,
//! detect, cover, encode, verify) of 12 MP JPEGs, faces only and every detector. Needs the
//! ONNX Runtime library (`scripts/fetch-onnxruntime`); without it the bench says so and
//! measures nothing.
//!
//! cargo bench --bench detect

#![allow(clippy::print_stdout, clippy::print_stderr)] // a bench or test reports to its runner

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use image::imageops::FilterType;
use phiscrub::detect::{Categories, Engine, EngineConfig, FaceParams};
use phiscrub::{Options, Scrubber};

fn fixture(path: &str, width: u32, height: u32) -> image::RgbImage {
    let path = format!("{}/../../fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    let img = image::open(&path).expect("fixture").to_rgb8();
    image::imageops::resize(&img, width, height, FilterType::Triangle)
}

fn portrait(width: u32, height: u32) -> image::RgbImage {
    fixture("faces/astronaut_eileen_collins.png", width, height)
}

fn jpeg(img: &image::RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(img)
        .unwrap();
    out
}

/// An engine for `categories`, faces searched upright only or in all four turns.
fn engine(categories: Categories, turns: bool) -> Option<Engine> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    match Engine::load(EngineConfig {
        intra_threads: threads,
        categories,
        face: FaceParams {
            turns,
            ..FaceParams::default()
        },
        ..EngineConfig::default()
    }) {
        Ok(e) => Some(e),
        Err(e) => {
            eprintln!("detect bench skipped: {e}");
            None
        }
    }
}

fn only(face: bool, text: bool, barcode: bool) -> Categories {
    Categories {
        face,
        text,
        barcode,
    }
}

fn bench(c: &mut Criterion) {
    let faces = only(true, false, false);
    let (Some(upright), Some(turned)) = (engine(faces, false), engine(faces, true)) else {
        return;
    };
    let mut g = c.benchmark_group("detect_faces");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for (name, w, h) in [
        ("0.3MP", 640, 480),
        ("2MP", 1632, 1224),
        ("12MP", 4032, 3024),
    ] {
        let img = portrait(w, h);
        g.throughput(Throughput::Elements(u64::from(w * h)));
        g.bench_with_input(BenchmarkId::new("upright", name), &img, |b, img| {
            b.iter(|| upright.detect(img, &phiscrub::Deadline::none()).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("four_turns", name), &img, |b, img| {
            b.iter(|| turned.detect(img, &phiscrub::Deadline::none()).unwrap())
        });
    }
    g.finish();

    let (Some(text), Some(codes)) = (
        engine(only(false, true, false), false),
        engine(only(false, false, true), false),
    ) else {
        return;
    };
    let mut g = c.benchmark_group("detect_text_and_codes");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for (name, scale) in [("2MP", 1.0f32), ("12MP", 2.45)] {
        // The chart page is 1240 x 1754 (2.2 MP); the wristband photo 1600 x 1000, shown at
        // the same pixel counts.
        let (cw, ch) = ((1240.0 * scale) as u32, (1754.0 * scale) as u32);
        let chart = fixture("clinical/chart.jpg", cw, ch);
        g.throughput(Throughput::Elements(u64::from(cw * ch)));
        g.bench_with_input(BenchmarkId::new("text", name), &chart, |b, img| {
            b.iter(|| text.detect(img, &phiscrub::Deadline::none()).unwrap())
        });
        let (ww, wh) = ((1865.0 * scale) as u32, (1166.0 * scale) as u32);
        let band = fixture("clinical/wristband.jpg", ww, wh);
        g.throughput(Throughput::Elements(u64::from(ww * wh)));
        g.bench_with_input(BenchmarkId::new("barcode", name), &band, |b, img| {
            b.iter(|| codes.detect(img, &phiscrub::Deadline::none()).unwrap())
        });
    }
    g.finish();

    let all = engine(Categories::default(), true).expect("loaded above");
    let faces_only = Scrubber::new(Options::default(), Arc::new(turned));
    let everything = Scrubber::new(Options::default(), Arc::new(all));
    let mut g = c.benchmark_group("scrub");
    g.sample_size(10).measurement_time(Duration::from_secs(60));
    let portrait = jpeg(&portrait(4032, 3024));
    g.throughput(Throughput::Bytes(portrait.len() as u64));
    g.bench_function("faces_only/12MP_portrait", |b| {
        b.iter(|| faces_only.scrub(&portrait).unwrap())
    });
    for (name, w, h) in [("2MP", 1865, 1166), ("12MP", 4568, 2855)] {
        let band = jpeg(&fixture("clinical/wristband.jpg", w, h));
        g.throughput(Throughput::Bytes(band.len() as u64));
        g.bench_function(format!("all_detectors/{name}_wristband"), |b| {
            b.iter(|| everything.scrub(&band).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
