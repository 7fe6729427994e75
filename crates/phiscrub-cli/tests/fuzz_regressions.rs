//! Every input the fuzz targets ever failed on (`fuzz/regressions/TARGET/NAME`, named for
//! what went wrong), replayed through the same checks as the fuzz targets (`fuzz/src/lib.rs`)
//! on every `cargo test`, with no fuzzer needed.

#[allow(dead_code)]
#[path = "../../../fuzz/src/lib.rs"]
mod harness;

use std::fs;
use std::path::Path;

use phiscrub::Format;

#[test]
fn fuzz_regressions_pass_their_targets_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("fuzz/regressions");
    let mut replayed = 0;
    for target in fs::read_dir(&root).unwrap() {
        let target = target.unwrap().path();
        let name = target.file_name().unwrap().to_string_lossy().into_owned();
        for input in fs::read_dir(&target).unwrap() {
            let input = input.unwrap().path();
            let data = fs::read(&input).unwrap();
            eprintln!(
                "replaying {name}/{}",
                input.file_name().unwrap().to_string_lossy()
            );
            match name.as_str() {
                "jpeg" => harness::lossless_walker(Format::Jpeg, &data),
                "png" => harness::lossless_walker(Format::Png, &data),
                "webp" => harness::lossless_walker(Format::Webp, &data),
                _ => harness::scrub(&data),
            }
            replayed += 1;
        }
    }
    assert!(
        replayed >= 2,
        "the regressions folder holds the inputs found so far"
    );
}
