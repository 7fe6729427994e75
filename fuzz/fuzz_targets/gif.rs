//! The GIF walker: scan and verify never panic, a GIF that verifies scans clean, and a
//! re-rendered GIF (a metadata-only scrub) verifies and is a fixed point.
#![no_main]

use phiscrub::formats::{self, Format};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = formats::scan(Format::Gif, data, &phiscrub_fuzz::limits()) {
        if formats::verify(Format::Gif, data, s.width, s.height).is_ok() {
            assert!(
                s.found.is_empty(),
                "a GIF that verifies holds {:?}",
                s.found
            );
        }
    }
    if data.starts_with(b"GIF") {
        phiscrub_fuzz::scrub(data);
    }
});
