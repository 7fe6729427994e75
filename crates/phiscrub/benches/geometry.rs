//! Text boxes from DBNet's probability map, our way against `imageproc`'s (image-rs, MIT),
//! on a 960 x 960 map with 120 text lines at angles, as DBNet draws them:
//! - components: our flood fill that keeps each row's extreme pixels
//!   (`text::each_component`) against `imageproc::region_labelling::connected_components`
//!   (8-connected) plus one pass over its label image for the same extremes;
//! - rectangles: our rotating calipers on float pixel centres (`geometry::min_area_rect`)
//!   against `imageproc::geometry::min_area_rect`, which takes and returns integer points
//!   (here doubled coordinates, so that pixel centres stay exact).
//!
//! No ONNX Runtime is needed. cargo bench --bench geometry

use criterion::{criterion_group, criterion_main, Criterion};
use image::{GrayImage, Luma};
use imageproc::point::Point;
use imageproc::region_labelling::{connected_components, Connectivity};
use phiscrub::detect::{geometry, text};

const SIDE: usize = 960;

/// A mask of 120 text lines of 8 to 40 px height and 60 to 400 px length, at angles up to
/// 20 degrees, from a fixed seed.
fn mask() -> Vec<bool> {
    let mut bits = vec![false; SIDE * SIDE];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |lo: f32, hi: f32| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        lo + (seed % 10_000) as f32 / 10_000.0 * (hi - lo)
    };
    for _ in 0..120 {
        let (cx, cy) = (next(40.0, 920.0), next(40.0, 920.0));
        let (len, tall, angle) = (next(60.0, 400.0), next(8.0, 40.0), next(-0.35, 0.35));
        let (c, s) = (angle.cos(), angle.sin());
        let reach = (len.hypot(tall) / 2.0) as i64 + 1;
        for y in (cy as i64 - reach).max(0)..(cy as i64 + reach).min(SIDE as i64) {
            for x in (cx as i64 - reach).max(0)..(cx as i64 + reach).min(SIDE as i64) {
                let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                if (dx * c + dy * s).abs() <= len / 2.0 && (-dx * s + dy * c).abs() <= tall / 2.0 {
                    bits[y as usize * SIDE + x as usize] = true;
                }
            }
        }
    }
    bits
}

/// Each component's row extremes through `imageproc`'s label image, in doubled integer
/// coordinates (2x + 1 is the centre of pixel x).
fn imageproc_outlines(bits: &[bool]) -> Vec<Vec<Point<i32>>> {
    let img = GrayImage::from_fn(SIDE as u32, SIDE as u32, |x, y| {
        Luma([u8::from(bits[y as usize * SIDE + x as usize]) * 255])
    });
    let labels = connected_components(&img, Connectivity::Eight, Luma([0u8]));
    let mut rows: Vec<Vec<(i32, i32, i32)>> = Vec::new();
    for (x, y, l) in labels.enumerate_pixels() {
        let l = l.0[0] as usize;
        if l == 0 {
            continue;
        }
        if rows.len() < l {
            rows.resize(l, Vec::new());
        }
        let r = &mut rows[l - 1];
        let (x, y) = (x as i32, y as i32);
        match r.last_mut() {
            Some(last) if last.0 == y => {
                last.1 = last.1.min(x);
                last.2 = last.2.max(x);
            }
            _ => r.push((y, x, x)),
        }
    }
    rows.iter()
        .map(|r| {
            r.iter()
                .flat_map(|&(y, lo, hi)| {
                    [
                        Point::new(2 * lo + 1, 2 * y + 1),
                        Point::new(2 * hi + 1, 2 * y + 1),
                    ]
                })
                .collect()
        })
        .collect()
}

fn ours_outlines(bits: &[bool]) -> Vec<Vec<[f32; 2]>> {
    let mut all = Vec::new();
    text::each_component(bits, SIDE, SIDE, |pts| all.push(pts.to_vec()));
    all
}

fn bench(c: &mut Criterion) {
    let bits = mask();
    let (ours, theirs) = (ours_outlines(&bits), imageproc_outlines(&bits));
    assert_eq!(ours.len(), theirs.len(), "both find the same components");
    let mut g = c.benchmark_group("text boxes, 960x960 map, 120 lines");
    g.sample_size(20);
    g.bench_function("components: phiscrub flood fill", |b| {
        b.iter(|| ours_outlines(std::hint::black_box(&bits)))
    });
    g.bench_function("components: imageproc labelling", |b| {
        b.iter(|| imageproc_outlines(std::hint::black_box(&bits)))
    });
    g.bench_function("min-area rectangles: phiscrub", |b| {
        b.iter(|| {
            ours.iter()
                .map(|p| geometry::min_area_rect(p))
                .collect::<Vec<_>>()
        })
    });
    g.bench_function("min-area rectangles: imageproc", |b| {
        b.iter(|| {
            theirs
                .iter()
                .map(|p| imageproc::geometry::min_area_rect(p))
                .collect::<Vec<_>>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
