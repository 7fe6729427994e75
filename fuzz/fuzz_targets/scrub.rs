//! `Scrubber::scrub` with metadata only, on any bytes: the output verifies, holds nothing
//! outside the allowlist, and scrubbing it again changes nothing.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    phiscrub_fuzz::scrub(data);
});
