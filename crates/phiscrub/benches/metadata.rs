//! Metadata-only scrubbing throughput: the lossless path on the bundled fixtures and, when
//! `../shared/data` is present, on the real camera JPEGs in it.

use std::fs;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use phiscrub::{Options, Scrubber};

fn load(dir: &Path, exts: &[&str]) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = walk(dir)
        .into_iter()
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    files.iter().map(|p| fs::read(p).unwrap()).collect()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn bench_set(c: &mut Criterion, name: &str, files: &[Vec<u8>]) {
    if files.is_empty() {
        return;
    }
    let scrubber = Scrubber::metadata_only(Options::default());
    let bytes: u64 = files.iter().map(|f| f.len() as u64).sum();
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function(format!("{} files", files.len()), |b| {
        b.iter(|| {
            for f in files {
                // Some files take the re-encode path (colour profile, orientation); all verify.
                std::hint::black_box(scrubber.scrub(f).unwrap());
            }
        })
    });
    g.finish();
}

fn metadata(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    bench_set(
        c,
        "fixtures_lossless",
        &load(&root.join("fixtures/photos"), &["jpg", "png", "webp"]),
    );
    let shared = root.join("../shared/data/metadata");
    let camera: Vec<_> = load(&shared.join("gps"), &["jpg"])
        .into_iter()
        .chain(load(&shared.join("camera"), &["jpg"]))
        .collect();
    bench_set(c, "camera_jpegs_lossless", &camera);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = metadata
}
criterion_main!(benches);
