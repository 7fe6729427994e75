//! The detect stage alone: CenterFace over the fixture portrait scaled to a few photo sizes,
//! with and without the turned passes, and the whole scrub (decode, detect, cover, encode,
//! verify) of a 12 MP JPEG. Needs the ONNX Runtime library (`scripts/fetch-onnxruntime`);
//! without it the bench says so and measures nothing.
//!
//! cargo bench --bench detect

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use image::imageops::FilterType;
use phiscrub::detect::{Engine, EngineConfig, FaceParams};
use phiscrub::{Options, Scrubber};

fn portrait(width: u32, height: u32) -> image::RgbImage {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/faces/astronaut_eileen_collins.png"
    );
    let img = image::open(path).expect("fixture portrait").to_rgb8();
    image::imageops::resize(&img, width, height, FilterType::Triangle)
}

fn engine(turns: bool) -> Option<Engine> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    match Engine::load(EngineConfig {
        intra_threads: threads,
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

fn bench(c: &mut Criterion) {
    let (Some(upright), Some(turned)) = (engine(false), engine(true)) else {
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
            b.iter(|| upright.detect(img).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("four_turns", name), &img, |b, img| {
            b.iter(|| turned.detect(img).unwrap())
        });
    }
    g.finish();

    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&portrait(4032, 3024))
        .unwrap();
    let scrubber = Scrubber::new(Options::default(), Arc::new(turned));
    let mut g = c.benchmark_group("scrub_with_faces");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.throughput(Throughput::Bytes(jpeg.len() as u64));
    g.bench_function("12MP_jpeg", |b| b.iter(|| scrubber.scrub(&jpeg).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
