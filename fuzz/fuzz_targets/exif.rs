//! EXIF reading: the summary and the orientation of any TIFF-structured block, never a
//! panic, and an orientation in 1..=8.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = phiscrub::formats::exif::summarize(data);
    let o = phiscrub::formats::exif::orientation(data);
    assert!((1..=8).contains(&o), "orientation {o}");
});
