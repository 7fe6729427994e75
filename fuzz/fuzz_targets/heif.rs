//! The HEIF walker (item limits from the file's own boxes, then libheif): scan never
//! panics, and a HEIF rendered to JPEG verifies and is a fixed point.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if phiscrub::Format::sniff(data) == Some(phiscrub::Format::Heif) {
        let _ = phiscrub::formats::scan(phiscrub::Format::Heif, data, &phiscrub_fuzz::limits());
        phiscrub_fuzz::scrub(data);
    }
});
