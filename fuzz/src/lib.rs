//! What every fuzz target checks, beyond "does not panic": the properties that make a
//! walker's output safe to hand out.
//!
//! - `strip` output scans clean (nothing outside the allowlist), verifies, and is a fixed
//!   point: `strip(strip(x)) == strip(x)`.
//! - An input that `verify` accepts is already canonical: it scans clean and `strip`
//!   leaves it byte for byte unchanged, so nothing outside picture data can pass verify.
//! - A metadata-only scrub's output verifies, scans clean, and scrubbing it again changes
//!   nothing.

use phiscrub::formats::{self, exif, Format};
use phiscrub::{Limits, Options, Scrubber};

/// Limits small enough that the fuzzer spends its time on structure, not on decoding
/// large pictures; the same code paths run as with the defaults.
pub fn limits() -> Limits {
    Limits {
        max_pixels: 4_000_000,
        max_alloc: 256 << 20,
        max_animation_pixels: 16_000_000,
        timeout: Some(std::time::Duration::from_secs(5)),
        ..Limits::default()
    }
}

/// The checks for a container with a lossless path (JPEG, PNG, WebP).
pub fn lossless_walker(format: Format, data: &[u8]) {
    let limits = limits();
    let scanned = formats::scan(format, data, &limits);
    let orientation = match (&scanned, format) {
        (Ok(s), Format::Jpeg) => s.exif.as_deref().map(exif::orientation).unwrap_or(1),
        _ => 1,
    };
    if let Ok(s) = &scanned {
        if formats::verify(format, data, s.width, s.height).is_ok() {
            let again = formats::strip(format, data, orientation)
                .expect("a file that verifies can be stripped");
            assert!(again == data, "a file that verifies is not canonical");
        }
    }
    // Stripping is what the scrubber does to a file that scanned within the limits.
    if scanned.is_err() {
        return;
    }
    if let Ok(out) = formats::strip(format, data, 1) {
        let s = formats::scan(format, &out, &limits).expect("stripped output scans");
        assert!(
            s.found.is_empty(),
            "stripped output still holds {:?}",
            s.found
        );
        formats::verify(format, &out, s.width, s.height).expect("stripped output verifies");
        let twice = formats::strip(format, &out, 1).expect("stripped output strips");
        assert!(twice == out, "strip is not idempotent");
    }
}

/// The checks for a whole metadata-only scrub of any input.
pub fn scrub(data: &[u8]) {
    let scrubber = Scrubber::metadata_only(Options {
        limits: limits(),
        ..Options::default()
    });
    let _ = scrubber.inspect(data);
    let Ok(out) = scrubber.scrub(data) else {
        return;
    };
    let format = Format::sniff(&out.bytes).expect("output has a known format");
    formats::verify(format, &out.bytes, out.report.width, out.report.height)
        .expect("output verifies");
    let s = formats::scan(format, &out.bytes, &scrubber.options().limits).expect("output scans");
    // The one block phiscrub writes itself: Orientation alone, on the lossless JPEG path.
    let orientation_only = formats::jpeg::orientation_exif(1).len() as u64;
    let ours = |f: &formats::Found| f.name == "APP1 Exif" && f.bytes == orientation_only;
    assert!(s.found.iter().all(ours), "output still holds {:?}", s.found);
    let again = scrubber.scrub(&out.bytes).expect("output scrubs again");
    assert!(
        again.bytes == out.bytes,
        "scrubbing twice changes the output"
    );
}
