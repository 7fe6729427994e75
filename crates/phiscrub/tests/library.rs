//! The library API on images built in the test: orientation baked into PNG pixels, colour
//! profiles converted or dropped, and what the report says against what the bytes show.

use std::io::Cursor;

use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage};
use moxcms::{ColorProfile, Layout, TransformOptions};
use phiscrub::formats::{jpeg, png};
use phiscrub::report::Path;
use phiscrub::{Options, Scrubber};

fn encode(img: &DynamicImage, f: ImageFormat) -> Vec<u8> {
    let mut v = Vec::new();
    img.write_to(&mut Cursor::new(&mut v), f).unwrap();
    v
}

/// A JPEG APP2 ICC_PROFILE segment (profiles here are small enough for one segment).
fn icc_segment(icc: &[u8]) -> Vec<u8> {
    let mut p = b"ICC_PROFILE\0\x01\x01".to_vec();
    p.extend_from_slice(icc);
    jpeg::segment(0xE2, &p)
}

fn with_segment(jpeg: &[u8], seg: &[u8]) -> Vec<u8> {
    let mut v = jpeg[..2].to_vec();
    v.extend_from_slice(seg);
    v.extend_from_slice(&jpeg[2..]);
    v
}

fn pattern() -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(30, 20, |x, y| {
        Rgb([
            (x * 8) as u8,
            (y * 12) as u8,
            if x < 5 && y < 5 { 255 } else { 0 },
        ])
    }))
}

#[test]
fn png_orientation_6_is_baked_into_pixels_and_exif_dropped() {
    let png = encode(&pattern(), ImageFormat::Png);
    // The TIFF part of the minimal orientation block phiscrub itself writes for JPEG.
    let tiff = &jpeg::orientation_exif(6)[10..];
    let mut input = png[..33].to_vec();
    input.extend(png::chunk(b"eXIf", tiff));
    input.extend_from_slice(&png[33..]);
    let out = Scrubber::metadata_only(Options::default())
        .scrub(&input)
        .unwrap();
    assert_eq!(out.report.path, Path::Reencoded);
    assert!(!out.bytes.windows(4).any(|w| w == b"eXIf"));
    let img = image::load_from_memory(&out.bytes).unwrap();
    assert_eq!(img.dimensions(), (20, 30));
    assert_eq!(
        img.to_rgb8(),
        pattern().rotate90().to_rgb8(),
        "orientation 6 = rotate 90 clockwise"
    );
}

#[test]
fn display_p3_jpeg_is_converted_to_srgb_before_the_profile_is_dropped() {
    let colour = [200u8, 100, 50];
    let flat = DynamicImage::ImageRgb8(RgbImage::from_pixel(32, 32, Rgb(colour)));
    let p3 = ColorProfile::new_display_p3();
    let input = with_segment(
        &encode(&flat, ImageFormat::Jpeg),
        &icc_segment(&p3.encode().unwrap()),
    );
    let out = Scrubber::metadata_only(Options::default())
        .scrub(&input)
        .unwrap();
    assert_eq!(out.report.path, Path::Reencoded);
    assert!(!out.bytes.windows(11).any(|w| w == b"ICC_PROFILE"));
    // What a colour-managed viewer shows for the input, computed independently here.
    let stored = image::load_from_memory(&input)
        .unwrap()
        .to_rgb8()
        .get_pixel(16, 16)
        .0;
    let t = p3
        .create_transform_8bit(
            Layout::Rgb,
            &ColorProfile::new_srgb(),
            Layout::Rgb,
            TransformOptions::default(),
        )
        .unwrap();
    let mut want = [0u8; 3];
    t.transform(&stored, &mut want).unwrap();
    let got = image::load_from_memory(&out.bytes)
        .unwrap()
        .to_rgb8()
        .get_pixel(16, 16)
        .0;
    for c in 0..3 {
        assert!(
            got[c].abs_diff(want[c]) <= 3,
            "got {got:?}, want {want:?} (stored {stored:?})"
        );
    }
    assert!(
        got[0].abs_diff(stored[0]) > 10,
        "P3 orange must be more saturated in sRGB"
    );
}

#[test]
fn srgb_profile_is_dropped_losslessly() {
    let flat = pattern();
    let srgb = ColorProfile::new_srgb().encode().unwrap();
    let input = with_segment(&encode(&flat, ImageFormat::Jpeg), &icc_segment(&srgb));
    let out = Scrubber::metadata_only(Options::default())
        .scrub(&input)
        .unwrap();
    assert_eq!(out.report.path, Path::Lossless);
    assert_eq!(
        image::load_from_memory(&input).unwrap().as_bytes(),
        image::load_from_memory(&out.bytes).unwrap().as_bytes()
    );
    assert_eq!(
        out.report.metadata_bytes,
        (input.len() - out.bytes.len()) as u64
    );
}

#[test]
fn reencode_option_forces_the_reencode_path_and_still_verifies() {
    let input = encode(&pattern(), ImageFormat::WebP);
    let scrubber = Scrubber::metadata_only(Options {
        reencode: true,
        ..Options::default()
    });
    let out = scrubber.scrub(&input).unwrap();
    assert_eq!(out.report.path, Path::Reencoded);
    assert_eq!(
        image::load_from_memory(&out.bytes).unwrap().to_rgb8(),
        pattern().to_rgb8()
    );
}

#[test]
fn input_over_the_byte_limit_is_refused_before_parsing() {
    let input = encode(&pattern(), ImageFormat::Png);
    let mut options = Options::default();
    options.limits.max_input_bytes = 100;
    let e = Scrubber::metadata_only(options).scrub(&input).unwrap_err();
    assert_eq!(e.code(), "limits");
}
