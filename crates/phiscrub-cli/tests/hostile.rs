//! Hostile input through the library: truncations, bit flips and spliced garbage applied to
//! every fixture must never panic, and whatever is returned as scrubbed must still pass the
//! walkers' verification and carry none of the fixtures' identifying text.

mod common;

use std::fs;

use phiscrub::{formats, Format, Options, Scrubber};
use proptest::prelude::*;

/// The fixtures, read once for all cases.
fn fixtures_bytes() -> &'static [(String, Vec<u8>)] {
    static ALL: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        common::files(&common::fixtures())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e != "txt"))
            .map(|p| (p.display().to_string(), fs::read(&p).unwrap()))
            .filter(|(_, b)| !b.is_empty())
            .collect()
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Splice(usize, Vec<u8>),
    SetLength(usize),
}

fn apply(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut v = bytes.to_vec();
    let at = |i: usize| i % v.len().max(1);
    match m {
        Mutation::Truncate(n) => v.truncate(at(*n)),
        Mutation::Flip(_, _) | Mutation::SetLength(_) if v.len() < 4 => {}
        Mutation::Flip(i, x) => {
            let i = at(*i);
            v[i] ^= x | 1;
        }
        Mutation::Splice(i, g) => {
            let i = at(*i);
            v.splice(i..i, g.iter().copied());
        }
        // Overwrite what may be a length field with a huge value.
        Mutation::SetLength(i) => {
            let i = at(*i).min(v.len().saturating_sub(4));
            v[i..i + 4].copy_from_slice(&[0x7F, 0xFF, 0xFF, 0xF0]);
        }
    }
    v
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..64)
        )
            .prop_map(|(i, g)| Mutation::Splice(i, g)),
        any::<usize>().prop_map(Mutation::SetLength),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_fixtures_never_panic_and_never_yield_unverified_output(
        which in any::<usize>(),
        muts in proptest::collection::vec(mutation(), 1..4),
    ) {
        let all = fixtures_bytes();
        let (name, bytes) = &all[which % all.len()];
        let mut input = bytes.clone();
        for m in &muts {
            input = apply(&input, m);
        }
        let scrubber = Scrubber::metadata_only(Options::default());
        let _ = scrubber.inspect(&input);
        if let Ok(out) = scrubber.scrub(&input) {
            let f = Format::sniff(&out.bytes).expect("output has a known format");
            formats::verify(f, &out.bytes, out.report.width, out.report.height)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            for s in ["Jane Example", "PhiscrubTestCam", "http://ns.adobe.com"] {
                prop_assert!(!out.bytes.windows(s.len()).any(|w| w == s.as_bytes()), "{} kept {}", name, s);
            }
        }
    }
}
