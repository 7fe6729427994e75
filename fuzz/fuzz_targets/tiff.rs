//! The TIFF walker: scan never panics, and a TIFF re-rendered to PNG verifies and is a
//! fixed point.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = phiscrub::formats::scan(phiscrub::Format::Tiff, data, &phiscrub_fuzz::limits());
    if data.starts_with(b"II*\0") || data.starts_with(b"MM\0*") {
        phiscrub_fuzz::scrub(data);
    }
});
