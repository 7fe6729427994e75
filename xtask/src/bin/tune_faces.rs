//! Tuning aid for face detection: runs the detector with the given parameters over a folder
//! with ground-truth JSON sidecars (`../shared/data/faces` layout) and prints the share of
//! faces >= 20 px tall whose box is at least 90% inside the union of covered regions, plus
//! the number of regions and the time. The integration test `tests/faces.rs` measures the
//! real output pixels; this is the quick loop used to choose `FaceParams::default()`.
//!
//! `cargo run --release -p xtask --bin tune_faces -- DIR [threshold=0.2] [min_face_model=20]`
//!     [margin=0.3,0.08] [whole_side=1024] [turns=0|1] [verbose=1]

use std::path::PathBuf;
use std::time::Instant;

use phiscrub::detect::{Engine, EngineConfig, FaceParams, Rect};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: tune_faces DIR [key=value...]"));
    let mut p = FaceParams {
        turns: false,
        ..FaceParams::default()
    };
    let mut verbose = false;
    for kv in args {
        let (k, v) = kv.split_once('=').expect("key=value");
        match k {
            "threshold" => p.threshold = v.parse().unwrap(),
            "review" => p.review_threshold = v.parse().unwrap(),
            "min_face_model" => p.min_face_model = v.parse().unwrap(),
            "min_face" => p.min_face = v.parse().unwrap(),
            "whole_side" => p.whole_side = v.parse().unwrap(),
            "tile" => p.tile = v.parse().unwrap(),
            "turns" => p.turns = v == "1",
            "margin" => {
                let m: Vec<f32> = v.split(',').map(|x| x.parse().unwrap()).collect();
                p.margin = [m[0], m[1]];
            }
            "verbose" => verbose = v == "1",
            _ => panic!("unknown key {k}"),
        }
    }
    let engine = Engine::load(EngineConfig {
        intra_threads: 2,
        face: p.clone(),
        ..EngineConfig::default()
    })
    .unwrap();
    let (mut faces, mut covered, mut regions) = (0, 0, 0);
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
        let img = image::open(dir.join(name)).unwrap().to_rgb8();
        let found = engine.detect(&img, &phiscrub::Deadline::none()).unwrap();
        regions += found.regions.len();
        for b in v["faces"].as_array().unwrap() {
            let b: Vec<f32> = b
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            if b[3] < 20.0 {
                continue;
            }
            faces += 1;
            let gt = Rect::xywh(b[0], b[1], b[2], b[3]);
            // Union coverage on a pixel grid of the box.
            let (mut hit, mut n) = (0, 0);
            for yy in 0..b[3] as u32 {
                for xx in 0..b[2] as u32 {
                    let (x, y) = (b[0] + xx as f32 + 0.5, b[1] + yy as f32 + 0.5);
                    n += 1;
                    if found
                        .regions
                        .iter()
                        .any(|r| r.rect.x0 <= x && x < r.rect.x1 && r.rect.y0 <= y && y < r.rect.y1)
                    {
                        hit += 1;
                    }
                }
            }
            let c = hit as f32 / n as f32;
            if c >= 0.9 {
                covered += 1;
            } else if verbose {
                let best = found
                    .regions
                    .iter()
                    .chain(found.review.iter())
                    .map(|r| (r.rect.iou(&gt), r.score.unwrap_or(0.0), r.rect))
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                println!("miss {name} {b:?} cover {:.0}% best {best:?}", c * 100.0);
            }
        }
    }
    println!(
        "{covered}/{faces} = {:.1}% covered, {regions} regions, {:.1} s",
        100.0 * covered as f64 / faces as f64,
        start.elapsed().as_secs_f64()
    );
}
