//! Writes the hostile files the tests use (tests/common/hostile.rs) into a folder, for
//! `scripts/bombs` to time and for `scripts/fuzz` to seed its corpora with: bombs, thin
//! strips and identifying text hidden in kept chunks. Nothing here is real patient data.
//!
//! Usage: cargo run --release -p xtask --bin make_hostile -- DIR [--small]
//! With `--small`, only the files under 64 KiB (fuzzing seeds).

#[allow(dead_code)]
#[path = "../../../crates/phiscrub-cli/tests/common/hostile.rs"]
mod hostile;

use std::fs;
use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: make_hostile DIR [--small]"));
    let small = args.next().as_deref() == Some("--small");
    fs::create_dir_all(&dir).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("thin_1x16.png".into(), hostile::noise_png(1, 16)),
        ("thin_8x200.png".into(), hostile::noise_png(8, 200)),
        ("thin_33x10000.png".into(), hostile::noise_png(33, 10_000)),
        (
            "gif_257_colours_12mp.gif".into(),
            hostile::gif_257_colours(),
        ),
        ("gif_canvas_14000.gif".into(), hostile::gif_huge_canvas()),
        ("gif_999_frames.gif".into(), hostile::gif_many_frames(999)),
        (
            "gif_600_frames_1mp.gif".into(),
            hostile::gif_over_animation_limit(),
        ),
        ("heif_grid_16000.heic".into(), hostile::heif_grid(16_000)),
        ("heif_grid_4.heic".into(), hostile::heif_grid(4)),
        (
            "jpeg_declaring_14000.jpg".into(),
            hostile::jpeg_declaring_14000(),
        ),
        (
            "tiff_text_tags.tif".into(),
            hostile::tiff_with_text_tags(hostile::PLANTED),
        ),
    ];
    if !small {
        files.push((
            "gif_399_frames_1mp.gif".into(),
            hostile::gif_full_frames(399),
        ));
        files.push((
            "jpeg_200mp_gradient.jpg".into(),
            hostile::jpeg_gradient(16_320, 12_240),
        ));
        files.push((
            "png_196mp_16bit_flat.png".into(),
            hostile::flat_png16(14_000, 14_000),
        ));
        files.push((
            "png_12mp_flat.png".into(),
            hostile::png(&image::DynamicImage::ImageRgb8(
                image::RgbImage::from_pixel(4000, 3000, image::Rgb([90, 140, 200])),
            )),
        ));
    }
    for (name, bytes) in hostile::png_hiding_places(hostile::PLANTED) {
        files.push((format!("{name}.png"), bytes));
    }
    for (name, bytes) in hostile::webp_hiding_places(hostile::PLANTED) {
        files.push((format!("{name}.webp"), bytes));
    }
    for (name, bytes) in hostile::jpeg_hiding_places(hostile::PLANTED) {
        files.push((format!("{name}.jpg"), bytes));
    }
    for (name, bytes) in files {
        if small && bytes.len() > 64 << 10 {
            continue;
        }
        fs::write(dir.join(&name), &bytes).unwrap();
        println!("{} ({} bytes)", dir.join(&name).display(), bytes.len());
    }
    if !small {
        // 300 MB that were never written: refused from its size.
        let f = fs::File::create(dir.join("file_300mb.jpg")).unwrap();
        f.set_len(300 << 20).unwrap();
        println!("{} (300 MiB, sparse)", dir.join("file_300mb.jpg").display());
    }
}
