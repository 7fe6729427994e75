//! Scrubs one photo with the library: metadata always, and faces, text and codes when ONNX
//! Runtime can be found. Writes `OUTPUT` only when the whole scrub, detection and verification
//! succeeded, and prints what was removed and covered.
//!
//! `cargo run -p phiscrub --example scrub_one -- INPUT OUTPUT [--metadata-only]`

use std::process::ExitCode;
use std::sync::Arc;

use phiscrub::detect::{Engine, EngineConfig};
use phiscrub::{Options, Scrubber};

#[allow(clippy::print_stdout, clippy::print_stderr)] // an example program talks to its user
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, output) = match (args.first(), args.get(1)) {
        (Some(i), Some(o)) => (i, o),
        _ => {
            eprintln!("usage: scrub_one INPUT OUTPUT [--metadata-only]");
            return ExitCode::from(2);
        }
    };
    let scrubber = if args.iter().any(|a| a == "--metadata-only") {
        Scrubber::metadata_only(Options::default())
    } else {
        match Engine::load(EngineConfig::default()) {
            Ok(engine) => Scrubber::new(Options::default(), Arc::new(engine)),
            Err(e) => {
                eprintln!("cannot load the detectors: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let bytes = match std::fs::read(input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{input}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match scrubber.scrub(&bytes) {
        Ok(scrubbed) => {
            if let Err(e) = std::fs::write(output, &scrubbed.bytes) {
                eprintln!("{output}: {e}");
                return ExitCode::FAILURE;
            }
            let r = &scrubbed.report;
            println!(
                "{input}: {} bytes of metadata removed, {} region(s) covered{}",
                r.metadata_bytes,
                r.regions.len(),
                if r.needs_review { ", needs review" } else { "" }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Fail closed: nothing is written. `code()` is stable for programs to match on.
            eprintln!("{input}: {e} ({})", e.code());
            ExitCode::FAILURE
        }
    }
}
