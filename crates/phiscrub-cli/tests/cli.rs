//! The real binary on the project's own fixtures: drag-and-drop layout, what survives in the
//! output (checked with exiftool, kamadak-exif and decoded pixels), bad input, reports.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use common::*;

/// Copies `fixtures/<name>` into a fresh scratch folder and returns (scratch, copy).
fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let dst = t.path().join(name);
    copy_tree(&fixtures().join(name), &dst);
    (t, dst)
}

fn os(p: &Path) -> &OsStr {
    p.as_os_str()
}

const IDENTIFYING: &[&str] = &[
    "Jane Example",
    "Dr Example",
    "PhiscrubTestCam",
    "Model Fictional",
    "SN-0042",
    "2026:03:14",
    "http://ns.adobe.com",
    "Photoshop 3.0",
    "ICC_PROFILE",
    "bed 4",
    "cropped-away",
];

#[test]
fn dropped_folder_is_scrubbed_into_a_sibling_and_originals_are_untouched() {
    let (t, photos) = scratch("photos");
    let before: Vec<(PathBuf, Vec<u8>)> = files(&photos)
        .into_iter()
        .map(|p| (p.clone(), fs::read(&p).unwrap()))
        .collect();
    let out = run(&[os(&photos)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("5 scrubbed, 1 skipped, 0 failed"),
        "{stdout}"
    );
    let outputs = files(&t.path().join("photos-scrubbed"));
    let names: Vec<_> = outputs
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "bedside_orientation_6.jpg",
            "chart_comment.gif",
            "ehr_screenshot_text_chunks.png",
            "ward_round_gps_xmp_trailer.jpg",
            "wound_exif_xmp.webp"
        ]
    );
    for (p, bytes) in before {
        assert_eq!(fs::read(&p).unwrap(), bytes, "{} was modified", p.display());
    }
    assert_eq!(files(&photos).len(), 6, "nothing added to the input folder");
}

#[test]
fn exiftool_finds_nothing_but_file_structure_in_fixture_outputs() {
    let (t, photos) = scratch("photos");
    assert_eq!(run(&[os(&photos)]).status.code(), Some(0));
    let outputs = files(&t.path().join("photos-scrubbed"));
    let left = exiftool_leftovers(&outputs);
    let orientation_only: Vec<_> = left
        .iter()
        .filter(|(p, _)| !p.ends_with("bedside_orientation_6.jpg"))
        .collect();
    assert!(
        orientation_only.is_empty(),
        "metadata survived: {orientation_only:#?}"
    );
    let bedside = &left[&t.path().join("photos-scrubbed/bedside_orientation_6.jpg")];
    assert_eq!(bedside, &["IFD0:Orientation=\"Rotate 90 CW\"".to_string()]);
}

#[test]
fn identifying_strings_are_gone_from_output_bytes() {
    let (t, photos) = scratch("photos");
    assert_eq!(run(&[os(&photos)]).status.code(), Some(0));
    for p in files(&photos)
        .iter()
        .filter(|p| p.extension() != Some(OsStr::new("txt")))
    {
        let input = fs::read(p).unwrap();
        assert!(
            IDENTIFYING
                .iter()
                .any(|s| input.windows(s.len()).any(|w| w == s.as_bytes())),
            "fixture {} should carry identifying text",
            p.display()
        );
    }
    for p in files(&t.path().join("photos-scrubbed")) {
        let bytes = fs::read(&p).unwrap();
        for s in IDENTIFYING {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{s:?} survived in {}",
                p.display()
            );
        }
    }
}

#[test]
fn lossless_outputs_decode_to_identical_pixels() {
    let (t, photos) = scratch("photos");
    assert_eq!(run(&[os(&photos)]).status.code(), Some(0));
    for name in [
        "ward_round_gps_xmp_trailer.jpg",
        "bedside_orientation_6.jpg",
        "ehr_screenshot_text_chunks.png",
        "wound_exif_xmp.webp",
    ] {
        let a = image::open(photos.join(name)).unwrap();
        let b = image::open(t.path().join("photos-scrubbed").join(name)).unwrap();
        assert_eq!(a.as_bytes(), b.as_bytes(), "{name} pixels changed");
        let (ia, ib) = (
            fs::read(photos.join(name)).unwrap(),
            fs::read(t.path().join("photos-scrubbed").join(name)).unwrap(),
        );
        assert!(ib.len() < ia.len(), "{name}: output should be smaller");
    }
}

#[test]
fn orientation_6_is_kept_as_the_only_exif_tag_on_the_lossless_path() {
    let (t, photos) = scratch("photos");
    assert_eq!(run(&[os(&photos)]).status.code(), Some(0));
    let out = t.path().join("photos-scrubbed/bedside_orientation_6.jpg");
    let fields = exif_fields(&out);
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert_eq!(fields[0].0, exif::Tag::Orientation);
    let shown = decode_as_displayed(&out);
    assert_eq!((shown.width(), shown.height()), (240, 320));
}

#[test]
fn orientation_6_is_baked_into_pixels_when_reencoding() {
    let (t, photos) = scratch("photos");
    let lossless = run(&[os(&photos), OsStr::new("-o"), os(&t.path().join("a"))]);
    assert_eq!(lossless.status.code(), Some(0));
    let re = run(&[
        os(&photos),
        OsStr::new("--reencode"),
        OsStr::new("-o"),
        os(&t.path().join("b")),
    ]);
    assert_eq!(re.status.code(), Some(0));
    let baked = t.path().join("b/photos/bedside_orientation_6.jpg");
    assert!(
        exif_fields(&baked).is_empty(),
        "re-encoded output keeps no EXIF at all"
    );
    let upright = decode_as_displayed(&t.path().join("a/photos/bedside_orientation_6.jpg"));
    let img = image::open(&baked).unwrap();
    let (best, score, runner_up) = best_orientation(&img, &upright);
    assert_eq!(
        best, 1,
        "baked pixels must already be upright (diff {score}, next {runner_up})"
    );
    assert!(
        score < 3.0 && runner_up > 4.0 * score,
        "{score} vs {runner_up}"
    );
    let left = exiftool_leftovers(&files(&t.path().join("b")));
    assert!(left.is_empty(), "{left:#?}");
}

#[test]
fn gif_comment_is_gone_and_every_pixel_survives_rerendering() {
    let (t, photos) = scratch("photos");
    assert_eq!(run(&[os(&photos)]).status.code(), Some(0));
    let a = image::open(photos.join("chart_comment.gif"))
        .unwrap()
        .to_rgba8();
    let b = image::open(t.path().join("photos-scrubbed/chart_comment.gif"))
        .unwrap()
        .to_rgba8();
    assert_eq!(a, b);
}

#[test]
fn bad_files_fail_with_one_line_each_and_the_batch_continues() {
    let (t, bad) = scratch("bad");
    fs::copy(
        fixtures().join("photos/chart_comment.gif"),
        bad.join("good.gif"),
    )
    .unwrap();
    let out = run(&[os(&bad)]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let expect = [
        (
            "bomb_100000x100000.png",
            "exceeds the 32768 pixel side limit",
        ),
        ("empty.jpg", "empty file"),
        ("ifd_loop.tiff", "TIFF"),
        ("text_named.png", "not a supported image"),
        ("truncated.jpg", "truncated JPEG (no EOI marker)"),
    ];
    assert_eq!(lines.len(), expect.len(), "{stderr}");
    for (name, reason) in expect {
        let line = lines
            .iter()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no error line for {name}: {stderr}"));
        assert!(line.starts_with(bad.join(name).to_str().unwrap()), "{line}");
        assert!(line.contains(reason), "{line}");
    }
    let written: Vec<_> = files(&t.path().join("bad-scrubbed"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(written, ["exif_ifd_loop.jpg", "good.gif"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 scrubbed, 0 skipped, 5 failed"));
}

#[test]
fn loose_files_go_to_a_scrubbed_folder_and_existing_outputs_are_not_overwritten() {
    let (t, photos) = scratch("photos");
    let input = photos.join("wound_exif_xmp.webp");
    assert_eq!(run(&[os(&input)]).status.code(), Some(0));
    let out = photos.join("scrubbed/wound_exif_xmp.webp");
    let first = fs::read(&out).unwrap();
    fs::write(&out, b"sentinel").unwrap();
    let again = run(&[os(&input)]);
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stderr).contains("output exists"));
    assert_eq!(fs::read(&out).unwrap(), b"sentinel");
    assert_eq!(
        run(&[os(&input), OsStr::new("--overwrite")]).status.code(),
        Some(0)
    );
    assert_eq!(fs::read(&out).unwrap(), first);
    drop(t);
}

#[test]
fn rename_random_and_index_drop_the_original_names() {
    let (t, photos) = scratch("photos");
    let r = run(&[
        os(&photos),
        OsStr::new("--rename"),
        OsStr::new("random"),
        OsStr::new("-o"),
        os(&t.path().join("r")),
    ]);
    assert_eq!(r.status.code(), Some(0));
    let names: Vec<String> = files(&t.path().join("r"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 5);
    for n in &names {
        let stem = n.split('.').next().unwrap();
        assert!(
            stem.len() == 16 && stem.chars().all(|c| c.is_ascii_hexdigit()),
            "{n}"
        );
    }
    let i = run(&[
        os(&photos),
        OsStr::new("--rename"),
        OsStr::new("index"),
        OsStr::new("-o"),
        os(&t.path().join("i")),
    ]);
    assert_eq!(i.status.code(), Some(0));
    let names: Vec<String> = files(&t.path().join("i"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["0001.jpg", "0002.gif", "0003.png", "0004.jpg", "0005.webp"]
    );
}

#[test]
fn report_lists_categories_and_sizes_but_never_values() {
    let (t, photos) = scratch("photos");
    let report = t.path().join("report.jsonl");
    assert_eq!(
        run(&[os(&photos), OsStr::new("--report"), os(&report)])
            .status
            .code(),
        Some(0)
    );
    let text = fs::read_to_string(&report).unwrap();
    for s in IDENTIFYING {
        assert!(!text.contains(s), "report leaks {s:?}");
    }
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    let ward = lines
        .iter()
        .find(|l| {
            l["input"]
                .as_str()
                .unwrap()
                .ends_with("ward_round_gps_xmp_trailer.jpg")
        })
        .unwrap();
    assert_eq!(ward["status"], "scrubbed");
    assert_eq!(ward["path"], "lossless");
    let cats: Vec<&str> = ward["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["category"].as_str().unwrap())
        .collect();
    assert_eq!(
        cats,
        ["exif", "xmp", "iptc", "comment", "trailer", "header"]
    );
    let input_len = fs::metadata(photos.join("ward_round_gps_xmp_trailer.jpg"))
        .unwrap()
        .len();
    let output_len = fs::metadata(ward["output"].as_str().unwrap())
        .unwrap()
        .len();
    assert_eq!(
        ward["metadata_bytes"].as_u64().unwrap(),
        input_len - output_len
    );
    let readme = lines
        .iter()
        .find(|l| l["input"].as_str().unwrap().ends_with("README.txt"))
        .unwrap();
    assert_eq!(readme["status"], "skipped");
}

#[test]
fn outputs_get_fresh_timestamps_and_ordinary_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let (t, photos) = scratch("photos");
    let input = photos.join("ward_round_gps_xmp_trailer.jpg");
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000); // 2001
    fs::File::options()
        .write(true)
        .open(&input)
        .unwrap()
        .set_modified(old)
        .unwrap();
    fs::set_permissions(&input, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(run(&[os(&input)]).status.code(), Some(0));
    let meta = fs::metadata(photos.join("scrubbed/ward_round_gps_xmp_trailer.jpg")).unwrap();
    assert!(
        meta.modified().unwrap()
            > std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000)
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    let leftovers: Vec<_> = fs::read_dir(photos.join("scrubbed"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
    drop(t);
}

#[test]
fn content_decides_the_format_not_the_extension() {
    let t = tempfile::tempdir().unwrap();
    let fake = t.path().join("screenshot.jpg");
    fs::copy(
        fixtures().join("photos/ehr_screenshot_text_chunks.png"),
        &fake,
    )
    .unwrap();
    assert_eq!(run(&[os(&fake)]).status.code(), Some(0));
    let out = t.path().join("scrubbed/screenshot.png");
    assert!(fs::read(&out).unwrap().starts_with(b"\x89PNG"));
}

#[test]
fn usage_errors_exit_with_status_2() {
    // Flags but nothing to scrub. (No arguments at all starts the review page: a
    // double-click; scripts/browser-test runs it that way.)
    let o = run(&[OsStr::new("-q")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no files or folders given"));
    assert_eq!(
        run(&[OsStr::new("--no-such-flag"), OsStr::new("x")])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&[OsStr::new("--jobs"), OsStr::new("0"), OsStr::new("x")])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn missing_input_is_a_per_file_failure() {
    let t = tempfile::tempdir().unwrap();
    let out = run(&[
        os(&t.path().join("nope.jpg")),
        os(&fixtures().join("photos/chart_comment.gif")),
        OsStr::new("-o"),
        os(t.path()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.jpg: no such file or directory"));
    assert!(t.path().join("chart_comment.gif").exists());
}

#[test]
fn inspect_names_what_is_present_without_values() {
    let f = fixtures().join("photos/ward_round_gps_xmp_trailer.jpg");
    let out = run(&[OsStr::new("inspect"), os(&f)]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "gps position: 5 tag(s)",
        "dates:",
        "serial numbers",
        "owner/artist",
        "exif thumbnail",
        "xmp: APP1 XMP",
        "iptc:",
        "comment: COM",
        "trailer:",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    for s in IDENTIFYING.iter().filter(|s| !s.starts_with("http")) {
        assert!(!text.contains(s), "inspect leaks {s:?}");
    }
    let json = run(&[OsStr::new("inspect"), OsStr::new("--json"), os(&f)]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["exif"]["gps_tags"], 5);
    assert_eq!(v["format"], "jpeg");
    let bad = run(&[
        OsStr::new("inspect"),
        os(&fixtures().join("bad/truncated.jpg")),
    ]);
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn non_utf8_file_names_are_scrubbed_and_reported() {
    use std::os::unix::ffi::OsStrExt;
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("in");
    fs::create_dir_all(&dir).unwrap();
    let odd = dir.join(OsStr::from_bytes(b"ward\xff4.gif"));
    fs::copy(fixtures().join("photos/chart_comment.gif"), &odd).unwrap();
    let report = t.path().join("r.jsonl");
    let out = run(&[os(&dir), OsStr::new("--report"), os(&report)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value =
        serde_json::from_str(fs::read_to_string(&report).unwrap().trim()).unwrap();
    assert_eq!(line["status"], "scrubbed");
    assert!(t
        .path()
        .join("in-scrubbed")
        .join(OsStr::from_bytes(b"ward\xff4.gif"))
        .exists());
}
