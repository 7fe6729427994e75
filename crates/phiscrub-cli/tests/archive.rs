//! Archive runs on a batch queue: `--shard I/N` slices, the `--manifest` audit file, and
//! `--resume` after a killed run, checked on the outputs and manifest lines the real binary
//! leaves: every input done exactly once, nothing written twice.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{bin, copy_tree, files, fixtures};

/// A scratch copy of the fixture photos, clinical photos and broken files under `in/`.
fn archive() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("in");
    for sub in ["photos", "clinical", "bad"] {
        copy_tree(&fixtures().join(sub), &input.join(sub));
    }
    // The bomb is refused quickly but is not what this test is about.
    fs::remove_file(input.join("bad/bomb_100000x100000.png")).unwrap();
    (t, input)
}

fn lines(manifest: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(manifest)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn scrub(input: &Path, args: &[&str]) -> std::process::Output {
    bin().arg(input).args(args).arg("-j1").output().unwrap()
}

/// The images under `input` (not the JSON sidecars and notes, skipped as not images).
fn images(input: &Path) -> Vec<String> {
    files(input)
        .into_iter()
        .filter(|p| {
            p.extension()
                .is_some_and(|e| phiscrub::Format::is_image_extension(&e.to_string_lossy()))
        })
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

/// Checks that `records` name every image exactly once with a final status, and that the
/// outputs on disk are exactly the scrubbed records' outputs, each matching its sha256.
fn exactly_once(input: &Path, records: &[serde_json::Value]) {
    let mut by_input: BTreeMap<String, Vec<&serde_json::Value>> = BTreeMap::new();
    for r in records {
        by_input
            .entry(r["input"].as_str().unwrap().to_string())
            .or_default()
            .push(r);
    }
    for img in images(input) {
        let rs = by_input.get(&img).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(rs.len(), 1, "{img}: {rs:?}");
        let status = rs[0]["status"].as_str().unwrap();
        assert!(
            status == "scrubbed" || status == "failed",
            "{img}: {status}"
        );
    }
    let out_root = input.with_file_name("in-scrubbed");
    let written: Vec<PathBuf> = files(&out_root);
    let mut expected: Vec<PathBuf> = records
        .iter()
        .filter(|r| r["status"] == "scrubbed")
        .map(|r| PathBuf::from(r["output"].as_str().unwrap()))
        .collect();
    expected.sort();
    assert_eq!(
        written, expected,
        "outputs on disk and in the manifest differ"
    );
    for r in records.iter().filter(|r| r["status"] == "scrubbed") {
        let bytes = fs::read(r["output"].as_str().unwrap()).unwrap();
        assert_eq!(
            phiscrub::manifest::sha256_hex(&bytes),
            r["sha256_out"].as_str().unwrap()
        );
    }
}

#[test]
fn two_shards_and_a_resume_after_a_kill_cover_the_folder_exactly_once() {
    let (t, input) = archive();
    let m0 = t.path().join("shard0.jsonl");
    let m1 = t.path().join("shard1.jsonl");
    let out = scrub(
        &input,
        &["--shard", "0/2", "--manifest", m0.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "the broken files fail");
    let first = lines(&m0);

    // Shard 1 is killed once it has finished two files, then resumed.
    let mut child = bin()
        .arg(&input)
        .args(["--shard", "1/2", "-j1", "-q", "--manifest"])
        .arg(&m1)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let finished = |m: &Path| lines(m).iter().filter(|r| r["status"] != "skipped").count();
    while finished(&m1) < 2 {
        assert!(child.try_wait().unwrap().is_none(), "shard 1 ended early");
        assert!(started.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = finished(&m1);
    let resume_shard_1 = [
        "--shard",
        "1/2",
        "--manifest",
        m1.to_str().unwrap(),
        "--resume",
    ];
    let out = scrub(&input, &resume_shard_1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{before} file(s) already in")),
        "{stderr}"
    );
    let second = lines(&m1);
    assert!(finished(&m1) > before, "the resumed run did the rest");

    // The shards did not overlap, and between them every image has one record.
    let names = |rs: &[serde_json::Value]| -> Vec<String> {
        rs.iter()
            .map(|r| r["input"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(names(&first).iter().all(|n| !names(&second).contains(n)));
    let all: Vec<serde_json::Value> = first.into_iter().chain(second).collect();
    exactly_once(&input, &all);

    // The records hold the audit facts and no metadata values.
    let wristband = all
        .iter()
        .find(|r| r["input"].as_str().unwrap().ends_with("wristband.jpg"))
        .unwrap();
    assert_eq!(wristband["status"], "scrubbed");
    assert!(wristband["text"].as_u64().unwrap() >= 1);
    assert!(wristband["barcodes"].as_u64().unwrap() >= 1);
    assert_eq!(
        wristband["sha256_in"],
        phiscrub::manifest::sha256_hex(&fs::read(input.join("clinical/wristband.jpg")).unwrap())
    );
    assert_eq!(wristband["models"].as_object().unwrap().len(), 4);
    assert_eq!(wristband["version"], env!("CARGO_PKG_VERSION"));
    let truncated = all
        .iter()
        .find(|r| r["input"].as_str().unwrap().ends_with("truncated.jpg"))
        .unwrap();
    assert_eq!(truncated["status"], "failed");
    assert!(truncated["code"].is_string() && truncated["output"].is_null());
    let text = fs::read_to_string(&m0).unwrap() + &fs::read_to_string(&m1).unwrap();
    for leak in ["Jane Example", "PhiscrubTestCam", "SN-0042", "2026:03:14"] {
        assert!(!text.contains(leak), "the manifest holds {leak:?}");
    }

    // A third run over a finished manifest does nothing.
    let out = scrub(&input, &resume_shard_1);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(lines(&m1).len(), all.len() - lines(&m0).len());
}

#[test]
fn an_unrecorded_output_is_adopted_only_if_it_holds_this_runs_bytes() {
    let (t, input) = archive();
    let m = t.path().join("m.jsonl");
    scrub(
        &input,
        &["--metadata-only", "--manifest", m.to_str().unwrap()],
    );
    let records = lines(&m);
    // As if the run was killed after writing two outputs but before recording them, in the
    // middle of writing the second record.
    let text = fs::read_to_string(&m).unwrap();
    let kept: Vec<&str> = text.lines().collect();
    let cut = kept.len() - 2;
    let lost: Vec<&serde_json::Value> = records[cut..].iter().collect();
    assert!(lost.iter().all(|r| r["status"] == "scrubbed"), "{lost:?}");
    fs::write(
        &m,
        format!("{}\n{}", kept[..cut].join("\n"), &kept[cut][..10]),
    )
    .unwrap();
    let tampered = PathBuf::from(lost[1]["output"].as_str().unwrap());
    fs::write(&tampered, b"someone else's file").unwrap();

    let out = scrub(
        &input,
        &[
            "--metadata-only",
            "--manifest",
            m.to_str().unwrap(),
            "--resume",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("skipped: output exists"), "{stderr}");
    let after = lines(&m);
    assert_eq!(
        after.len(),
        cut + 2,
        "the cut line is gone, two records added"
    );
    assert_eq!(after[cut]["status"], "scrubbed");
    assert_eq!(after[cut]["sha256_out"], lost[0]["sha256_out"]);
    assert_eq!(after[cut + 1]["status"], "skipped");
    assert_eq!(fs::read(&tampered).unwrap(), b"someone else's file");
}

#[test]
fn shard_and_resume_arguments_are_checked() {
    let (t, input) = archive();
    let m = t.path().join("m.jsonl");
    for (args, says) in [
        (vec!["--shard", "2/2"], "below the count"),
        (vec!["--resume"], "--manifest"),
        (
            vec![
                "--manifest",
                m.to_str().unwrap(),
                "--resume",
                "--rename",
                "random",
            ],
            "--rename random",
        ),
    ] {
        let out = scrub(&input, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let photo = input.join("photos/wound_exif_xmp.webp");
    let out = scrub(&input, &["--manifest", photo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the manifest would replace"));
    fs::write(
        &m,
        "not a manifest\n{\"input\":\"a\",\"status\":\"scrubbed\"}\n",
    )
    .unwrap();
    let out = scrub(&input, &["--manifest", m.to_str().unwrap(), "--resume"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!input.with_file_name("in-scrubbed").exists());
}
