//! Tuning aid for barcode location: runs the scans given (`SIDE` plus `t` for TryHarder or
//! `f` without, comma-separated) over a folder of barcode photos with JSON sidecars
//! (`../shared/data/barcodes` layout), and prints how many photos had their code located,
//! the time, and the photos missed. `tests/barcodes.rs` checks the real output.
//!
//! `cargo run --release -p xtask --bin tune_barcodes -- DIR [scans=1600t,4096f/1024] (SIDE[t|f][/TILE]) [rounds=3]`
//!     [scale=1.0]

use std::path::PathBuf;
use std::time::Instant;

use phiscrub::detect::barcode::{self, BarcodeParams, Scan};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .expect("usage: tune_barcodes DIR [key=value...]"),
    );
    let mut p = BarcodeParams::default();
    let mut scale = 1.0f32;
    for kv in args {
        let (k, v) = kv.split_once('=').expect("key=value");
        match k {
            "scans" => {
                p.scans = v
                    .split(',')
                    .map(|s| {
                        let (s, tile) = s.split_once('/').unwrap_or((s, "0"));
                        Scan {
                            long_side: s.trim_end_matches(['t', 'f']).parse().unwrap(),
                            try_harder: s.ends_with('t'),
                            tile: tile.parse().unwrap(),
                        }
                    })
                    .collect()
            }
            "rounds" => p.rounds = v.parse().unwrap(),
            "scale" => scale = v.parse().unwrap(),
            _ => panic!("unknown key {k}"),
        }
    }
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    pngs.sort();
    let (mut found, mut codes) = (0, 0);
    let mut missed = Vec::new();
    let mut spent = 0.0;
    for png in &pngs {
        let mut img = image::open(png).unwrap().to_luma8();
        if scale != 1.0 {
            let (w, h) = img.dimensions();
            img = image::imageops::resize(
                &img,
                (w as f32 * scale) as u32,
                (h as f32 * scale) as u32,
                image::imageops::FilterType::Triangle,
            );
        }
        let start = Instant::now();
        let located = barcode::locate(&img, &p, &phiscrub::Deadline::none()).unwrap();
        spent += start.elapsed().as_secs_f32();
        codes += located.len();
        if std::env::var_os("VERBOSE").is_some() {
            let f: Vec<String> = located
                .iter()
                .map(|c| {
                    format!(
                        "{}@{:.0},{:.0} {:.0}x{:.0}",
                        c.format, c.rect.c[0], c.rect.c[1], c.rect.w, c.rect.h
                    )
                })
                .collect();
            println!("{}: {}", png.display(), f.join("; "));
        }
        if located.is_empty() {
            missed.push(png.file_name().unwrap().to_string_lossy().into_owned());
        } else {
            found += 1;
        }
    }
    println!(
        "{:?} rounds {} scale {scale}: {found}/{} photos with a code located ({codes} codes), {spent:.2} s\nmissed: {}",
        p.scans,
        p.rounds,
        pngs.len(),
        missed.join(" ")
    );
}
