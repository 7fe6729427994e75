//! Tuning aid for text detection: runs the text detector with the given parameters over a
//! folder with ground-truth JSON sidecars (`../shared/data/text` layout) and prints the share
//! of text boxes at least 90% covered, the share of the image covered, the number of regions
//! and the time. `tests/text.rs` measures the real output pixels; this is the quick loop used
//! to choose `TextParams::default()`.
//!
//! `cargo run --release -p xtask --bin tune_text -- DIR [box_thresh=0.5] [unclip=1.6]`
//!     [min_text_model=10] [turns=0|1] [blocks=0|1] [scale=1.0] [rotate=0|90|180|270]
//!     [verbose=1]

use std::path::PathBuf;
use std::time::Instant;

use phiscrub::detect::{Categories, Engine, EngineConfig, TextParams};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: tune_text DIR [key=value...]"));
    let mut p = TextParams::default();
    let (mut verbose, mut scale, mut rotate) = (false, 1.0f32, 0i32);
    for kv in args {
        let (k, v) = kv.split_once('=').expect("key=value");
        match k {
            "thresh" => p.thresh = v.parse().unwrap(),
            "box_thresh" => p.box_thresh = v.parse().unwrap(),
            "unclip" => p.unclip = v.parse().unwrap(),
            "dilate" => p.dilate = v == "1",
            "min_text_model" => p.min_text_model = v.parse().unwrap(),
            "whole_side" => p.whole_side = v.parse().unwrap(),
            "whole_reach" => p.whole_reach = v.parse().unwrap(),
            "tile" => p.tile = v.parse().unwrap(),
            "turns" => p.turns = v == "1",
            "blocks" => p.blocks = v == "1",
            "margin" => p.margin = v.parse().unwrap(),
            "margin_px" => p.margin_px = v.parse().unwrap(),
            "read_score" => p.read_score = v.parse().unwrap(),
            "confirm" => p.confirm = v == "1",
            "scale" => scale = v.parse().unwrap(),
            "rotate" => rotate = v.parse().unwrap(),
            "verbose" => verbose = v == "1",
            _ => panic!("unknown key {k}"),
        }
    }
    let engine = Engine::load(EngineConfig {
        intra_threads: 2,
        categories: Categories {
            face: false,
            text: true,
            barcode: false,
        },
        text: p.clone(),
        models: std::env::var_os("PHISCRUB_MODELS").map(PathBuf::from),
        ..EngineConfig::default()
    })
    .unwrap();
    let (mut boxes, mut covered, mut regions) = (0, 0, 0);
    let (mut area, mut hidden) = (0u64, 0u64);
    let start = Instant::now();
    let mut jsons: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    jsons.sort();
    for json in jsons {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let Some(name) = v["image"].as_str() else {
            continue;
        };
        let mut img = image::open(dir.join(name)).unwrap().to_rgb8();
        let (w0, h0) = img.dimensions();
        if scale != 1.0 {
            img = image::imageops::resize(
                &img,
                (w0 as f32 * scale) as u32,
                (h0 as f32 * scale) as u32,
                image::imageops::FilterType::Triangle,
            );
        }
        let (img, map) = turn(&img, rotate as f32, (w0, h0));
        let found = engine.detect(&img, &phiscrub::Deadline::none()).unwrap();
        regions += found.regions.len();
        let (iw, ih) = img.dimensions();
        area += u64::from(iw) * u64::from(ih);
        for y in 0..ih {
            for x in 0..iw {
                if found.regions.iter().any(|r| r.covers(x, y)) {
                    hidden += 1;
                }
            }
        }
        let ignore = v["ignore"].as_array().unwrap();
        for (i, poly) in v["text"].as_array().unwrap().iter().enumerate() {
            if ignore[i].as_bool().unwrap() {
                continue;
            }
            let c: Vec<f32> = poly
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            let pts: Vec<(f32, f32)> = c.chunks(2).map(|q| map(q[0], q[1])).collect();
            boxes += 1;
            let (hit, n) = coverage(&pts, &found.regions, iw, ih);
            if n > 0 && hit * 10 >= n * 9 {
                covered += 1;
            } else if verbose {
                println!(
                    "{name}: box {i} {:.0}% covered",
                    100.0 * hit as f32 / n.max(1) as f32
                );
            }
        }
    }
    println!(
        "{params:?}\nscale {scale} rotate {rotate}: {covered}/{boxes} = {:.1}% of text boxes >= 90% covered; \
         {:.1}% of pixels covered; {regions} regions; {:.1} s",
        100.0 * covered as f32 / boxes as f32,
        100.0 * hidden as f64 / area as f64,
        start.elapsed().as_secs_f32(),
        params = p,
    );
}

/// Pixels of polygon `pts` covered by any region, and all its pixels.
fn coverage(
    pts: &[(f32, f32)],
    regions: &[phiscrub::detect::Region],
    w: u32,
    h: u32,
) -> (usize, usize) {
    let x0 = pts.iter().map(|p| p.0).fold(f32::MAX, f32::min).max(0.0) as u32;
    let x1 = (pts.iter().map(|p| p.0).fold(f32::MIN, f32::max).ceil() as u32).min(w);
    let y0 = pts.iter().map(|p| p.1).fold(f32::MAX, f32::min).max(0.0) as u32;
    let y1 = (pts.iter().map(|p| p.1).fold(f32::MIN, f32::max).ceil() as u32).min(h);
    let (mut hit, mut n) = (0, 0);
    for y in y0..y1 {
        for x in x0..x1 {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            // Even-odd rule.
            let mut inside = false;
            for i in 0..pts.len() {
                let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
                if (a.1 > py) != (b.1 > py) && px < a.0 + (py - a.1) / (b.1 - a.1) * (b.0 - a.0) {
                    inside = !inside;
                }
            }
            if inside {
                n += 1;
                if regions.iter().any(|r| r.covers(x, y)) {
                    hit += 1;
                }
            }
        }
    }
    (hit, n)
}

/// Turns `img` by `deg` degrees clockwise about its centre onto a white canvas just big
/// enough, and returns it with the map from original (`orig` size) coordinates into it.
fn turn(
    img: &image::RgbImage,
    deg: f32,
    orig: (u32, u32),
) -> (image::RgbImage, impl Fn(f32, f32) -> (f32, f32)) {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let (s, c) = deg.to_radians().sin_cos();
    let nw = (w * c.abs() + h * s.abs()).ceil();
    let nh = (w * s.abs() + h * c.abs()).ceil();
    let out = image::RgbImage::from_fn(nw as u32, nh as u32, |x, y| {
        let (dx, dy) = (x as f32 + 0.5 - nw / 2.0, y as f32 + 0.5 - nh / 2.0);
        let (sx, sy) = (dx * c + dy * s + w / 2.0, -dx * s + dy * c + h / 2.0);
        if sx >= 0.0 && sy >= 0.0 && sx < w && sy < h {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            image::Rgb([255, 255, 255])
        }
    });
    let (fx, fy) = (w / orig.0 as f32, h / orig.1 as f32);
    let map = move |x: f32, y: f32| {
        let (dx, dy) = (x * fx - w / 2.0, y * fy - h / 2.0);
        (dx * c - dy * s + nw / 2.0, dx * s + dy * c + nh / 2.0)
    };
    (out, map)
}
