//! The Webp walker: scan, strip and verify (see the crate docs for what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    phiscrub_fuzz::lossless_walker(phiscrub::Format::Webp, data);
});
