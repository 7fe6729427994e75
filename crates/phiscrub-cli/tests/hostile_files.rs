//! The real binary on hostile and careless input, one test per class of defect: thin images
//! that hung the barcode search, decompression and CPU bombs, identifying text hidden in
//! chunks the allowlists keep, runs that would write over an original, FIFOs and links in a
//! dropped folder, control bytes in names and files, and batches killed half-way. Every file
//! is made here (`common::hostile`); tests assert on outcomes, exit codes and output bytes.
//! Runs are guarded by a generous wall-clock limit only so that a regression to a hang fails
//! the test instead of stalling CI.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::hostile::{self, PLANTED};
use common::*;

/// Runs the binary, killing it (and failing the test) if it is still running after `secs`.
fn run_bounded(args: &[&OsStr], secs: u64) -> Output {
    let mut child = bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > Duration::from_secs(secs) {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "phiscrub {args:?} was still running after {secs} s\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

/// Runs the binary on `input` with `args` and a report beside it; returns the output and
/// the report by file name.
fn run_with_report(
    input: &Path,
    args: &[&str],
    secs: u64,
) -> (
    Output,
    std::collections::BTreeMap<String, serde_json::Value>,
) {
    let report = input.with_file_name("report.jsonl");
    let mut a: Vec<&OsStr> = vec![input.as_os_str(), os("--report"), report.as_os_str()];
    a.extend(args.iter().map(OsStr::new));
    let out = run_bounded(&a, secs);
    let reports = report_by_name(&report);
    (out, reports)
}

/// Writes `files` into a fresh `in/` folder and runs the binary on it with `args` and a
/// report; returns the scratch folder, the output and the report by file name.
fn scrub_files(
    files: &[(&str, Vec<u8>)],
    args: &[&str],
    secs: u64,
) -> (
    tempfile::TempDir,
    Output,
    std::collections::BTreeMap<String, serde_json::Value>,
) {
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("in");
    fs::create_dir_all(&input).unwrap();
    for (name, bytes) in files {
        fs::write(input.join(name), bytes).unwrap();
    }
    let (out, reports) = run_with_report(&input, args, secs);
    (t, out, reports)
}

/// Fails the test, showing stderr, unless the run exited with status 0.
fn succeeded(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn status(r: &serde_json::Value) -> (&str, Option<&str>, &str) {
    (
        r["status"].as_str().unwrap(),
        r["code"].as_str(),
        r["reason"].as_str().unwrap_or(""),
    )
}

#[test]
fn thin_images_are_searched_for_codes_and_scrubbed() {
    let files = [
        ("strip_1x16.png", hostile::noise_png(1, 16)),
        ("strip_8x200.png", hostile::noise_png(8, 200)),
        ("strip_33x10000.png", hostile::noise_png(33, 10_000)),
        ("strip_10000x12.png", hostile::noise_png(10_000, 12)),
    ];
    let (_t, out, reports) = scrub_files(&files, &["--only", "barcode", "--timeout", "60"], 300);
    succeeded(&out);
    for (name, _) in &files {
        assert_eq!(status(&reports[*name]).0, "scrubbed", "{name}");
    }
}

#[test]
fn gif_bombs_are_rerendered_frame_for_frame_without_quantising() {
    let files = [
        ("colours_257_on_12mp.gif", hostile::gif_257_colours()),
        ("canvas_14000.gif", hostile::gif_huge_canvas()),
        ("frames_999.gif", hostile::gif_many_frames(999)),
    ];
    let (t, out, reports) = scrub_files(&files, &["--metadata-only", "--timeout", "60"], 300);
    succeeded(&out);
    for (name, bytes) in &files {
        assert_eq!(status(&reports[*name]).0, "scrubbed", "{name}");
        let written = fs::read(t.path().join("in-scrubbed").join(name)).unwrap();
        phiscrub::formats::verify(
            phiscrub::Format::Gif,
            &written,
            reports[*name]["width"].as_u64().unwrap() as u32,
            reports[*name]["height"].as_u64().unwrap() as u32,
        )
        .unwrap();
        // Every frame as a viewer composes it is unchanged (the 14 000 px canvas is only
        // compared frame by frame in the indexed form).
        let frames = |d: &[u8]| {
            let mut o = gif::DecodeOptions::new();
            o.set_color_output(gif::ColorOutput::RGBA);
            let mut dec = o.read_info(d).unwrap();
            let mut v = Vec::new();
            while let Some(f) = dec.read_next_frame().unwrap() {
                v.push((f.left, f.top, f.width, f.height, f.buffer.to_vec()));
            }
            v
        };
        assert!(frames(bytes) == frames(&written), "{name}: frames differ");
    }
}

#[test]
fn bombs_fail_from_their_headers_with_a_reason() {
    let files = [
        ("animation_600mp.gif", hostile::gif_over_animation_limit()),
        ("grid_16000_tiles.heic", hostile::heif_grid(16_000)),
        ("declares_14000.jpg", hostile::jpeg_declaring_14000()),
    ];
    let (t, out, reports) = scrub_files(&files, &["--timeout", "60"], 300);
    assert_eq!(out.status.code(), Some(1));
    let expect = [
        ("animation_600mp.gif", "limits", "animation limit"),
        ("grid_16000_tiles.heic", "limits", "item limit"),
        (
            "declares_14000.jpg",
            "malformed",
            "truncated JPEG (scan data ends",
        ),
    ];
    for (name, code, reason) in expect {
        let (s, c, r) = status(&reports[name]);
        assert_eq!((s, c), ("failed", Some(code)), "{name}: {r}");
        assert!(r.contains(reason), "{name}: {r}");
    }
    assert!(!t.path().join("in-scrubbed").exists(), "nothing is written");
}

#[test]
fn pictures_of_one_flat_colour_are_not_searched() {
    let flat = hostile::png(&image::DynamicImage::ImageRgb8(
        image::RgbImage::from_pixel(4000, 3000, image::Rgb([90, 140, 200])),
    ));
    let files = [
        ("flat_12mp.png", flat),
        ("flat_49mp_16bit.png", hostile::flat_png16(7000, 7000)),
    ];
    // Searched for faces, text and codes, each would take minutes on two cores.
    let (_t, out, reports) = scrub_files(&files, &["--timeout", "60"], 300);
    succeeded(&out);
    for (name, _) in &files {
        let r = &reports[*name];
        assert_eq!(status(r).0, "scrubbed", "{name}");
        assert_eq!(r["path"], "lossless", "{name}");
        assert_eq!(r["regions"].as_array().unwrap().len(), 0, "{name}");
    }
}

#[test]
fn only_what_differs_from_a_flat_background_is_searched() {
    // A 50-byte GIF whose 2 x 2 frame sits on a 14 000 x 14 000 canvas, and a portrait
    // pasted far from the corner of a large flat canvas: searched whole, each took minutes.
    let portrait = image::open(fixtures().join("faces/astronaut_eileen_collins.png"))
        .unwrap()
        .to_rgb8();
    let mut canvas = image::RgbImage::from_pixel(6000, 4000, image::Rgb([200, 200, 200]));
    image::imageops::replace(&mut canvas, &portrait, 4100, 2300);
    let files = [
        ("canvas_14000.gif", hostile::gif_huge_canvas()),
        (
            "portrait_on_canvas.png",
            hostile::png(&image::DynamicImage::ImageRgb8(canvas)),
        ),
    ];
    let (_t, out, reports) = scrub_files(&files, &["--timeout", "60"], 300);
    succeeded(&out);
    assert_eq!(status(&reports["canvas_14000.gif"]).0, "scrubbed");
    // The face is covered where it is in the whole picture, not in the searched box.
    let r = &reports["portrait_on_canvas.png"];
    let faces: Vec<[u32; 4]> = region_boxes(r)
        .into_iter()
        .zip(r["regions"].as_array().unwrap())
        .filter(|(_, g)| g["category"] == "face")
        .map(|(b, _)| b)
        .collect();
    let truth = fs::read_to_string(fixtures().join("faces/astronaut_eileen_collins.json")).unwrap();
    let truth: serde_json::Value = serde_json::from_str(&truth).unwrap();
    let f = &truth["faces"][0];
    let (fx, fy) = (
        4100 + f[0].as_u64().unwrap() as u32,
        2300 + f[1].as_u64().unwrap() as u32,
    );
    let (fw, fh) = (f[2].as_u64().unwrap() as u32, f[3].as_u64().unwrap() as u32);
    assert!(
        faces
            .iter()
            .any(|b| b[0] <= fx && b[1] <= fy && b[0] + b[2] >= fx + fw && b[1] + b[3] >= fy + fh),
        "the face at {fx},{fy} is not inside any of {faces:?}"
    );
}

#[test]
fn a_file_over_the_byte_limit_is_refused_from_its_size() {
    let t = tempfile::tempdir().unwrap();
    let big = t.path().join("big.jpg");
    let f = fs::File::create(&big).unwrap();
    f.set_len(300 << 20).unwrap(); // sparse: 300 MB that were never written
    drop(f);
    let report = t.path().join("r.jsonl");
    let out = run_bounded(
        &[
            big.as_os_str(),
            os("--metadata-only"),
            os("--report"),
            report.as_os_str(),
        ],
        60,
    );
    assert_eq!(out.status.code(), Some(1));
    let r = &report_by_name(&report)["big.jpg"];
    let (s, c, reason) = status(r);
    assert_eq!((s, c), ("failed", Some("limits")));
    // The size in the reason is the file's own, known before a byte was read.
    assert!(reason.contains("314572800 bytes"), "{reason}");
}

#[test]
fn a_file_past_its_deadline_fails_with_limits_and_the_batch_goes_on() {
    let portrait = fs::read(fixtures().join("faces/astronaut_eileen_collins.png")).unwrap();
    let files = [
        ("a.png", portrait.clone()),
        ("b.png", portrait),
        ("notes.txt", b"not an image".to_vec()),
    ];
    let (_t, out, reports) = scrub_files(&files, &["--only", "face", "--timeout", "0.001"], 300);
    assert_eq!(out.status.code(), Some(1));
    for name in ["a.png", "b.png"] {
        let (s, c, r) = status(&reports[name]);
        assert_eq!((s, c), ("failed", Some("limits")), "{name}: {r}");
        assert!(r.contains("per-file time limit"), "{r}");
    }
    assert_eq!(status(&reports["notes.txt"]).0, "skipped");
}

#[test]
fn text_hidden_in_kept_chunks_never_reaches_the_output() {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, bytes) in hostile::png_hiding_places(PLANTED) {
        files.push((format!("{name}.png"), bytes));
    }
    for (name, bytes) in hostile::webp_hiding_places(PLANTED) {
        files.push((format!("{name}.webp"), bytes));
    }
    for (name, bytes) in hostile::jpeg_hiding_places(PLANTED) {
        files.push((format!("{name}.jpg"), bytes));
    }
    files.push((
        "tiff_text_tags.tif".into(),
        hostile::tiff_with_text_tags(PLANTED),
    ));
    let named: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let (t, out, reports) = scrub_files(&named, &["--metadata-only"], 300);
    succeeded(&out);
    let mut outputs = Vec::new();
    for (name, input) in &files {
        let r = &reports[name.as_str()];
        assert_eq!(status(r).0, "scrubbed", "{name}");
        assert!(
            input
                .windows(PLANTED.len())
                .any(|w| w == PLANTED.as_bytes()),
            "{name}: the fixture should carry the text"
        );
        let output = PathBuf::from(r["output"].as_str().unwrap());
        let bytes = fs::read(&output).unwrap();
        assert!(
            !bytes
                .windows(PLANTED.len())
                .any(|w| w == PLANTED.as_bytes()),
            "{name}: the planted text survived"
        );
        // What a viewer shows is unchanged.
        let a = image::load_from_memory(input).unwrap().to_rgba8();
        let b = image::load_from_memory(&bytes).unwrap().to_rgba8();
        assert!(a == b, "{name}: pixels changed");
        outputs.push(output);
    }
    let left = exiftool_leftovers(&outputs);
    assert!(left.is_empty(), "{left:#?}");
    drop(t);
}

#[test]
fn a_wildcard_after_report_never_overwrites_the_first_photo() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a.jpg"), t.path().join("b.jpg"));
    let photo = hostile::jpeg(64, 48);
    fs::write(&a, &photo).unwrap();
    fs::write(&b, &photo).unwrap();
    // What `phiscrub --report *.jpg` becomes once the shell has expanded it.
    let out = run_bounded(&[os("--report"), a.as_os_str(), b.as_os_str()], 60);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a.jpg") && stderr.contains("not a phiscrub report"),
        "{stderr}"
    );
    assert_eq!(fs::read(&a).unwrap(), photo);
    assert!(!t.path().join("scrubbed").exists(), "nothing was written");
    // A report named after an input is refused the same way.
    let out = run_bounded(&[b.as_os_str(), os("--report"), b.as_os_str()], 60);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(fs::read(&b).unwrap(), photo);
}

#[test]
fn outputs_that_would_replace_an_input_are_refused_before_anything_is_written() {
    let t = tempfile::tempdir().unwrap();
    let ward = t.path().join("ward");
    fs::create_dir_all(&ward).unwrap();
    let photo = hostile::jpeg(64, 48);
    let a = ward.join("a.jpg");
    fs::write(&a, &photo).unwrap();
    fs::write(ward.join("b.jpg"), &photo).unwrap();
    // The output folder is the input's own folder.
    let out = run_bounded(
        &[a.as_os_str(), os("--overwrite"), os("-o"), ward.as_os_str()],
        60,
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A folder written into its parent lands on itself.
    let out = run_bounded(
        &[
            ward.as_os_str(),
            os("--overwrite"),
            os("-o"),
            t.path().as_os_str(),
        ],
        60,
    );
    assert_eq!(out.status.code(), Some(2));
    // An output name that is a link to an input.
    let elsewhere = t.path().join("out");
    fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&a, elsewhere.join("a.jpg")).unwrap();
    let out = run_bounded(
        &[
            a.as_os_str(),
            os("--overwrite"),
            os("-o"),
            elsewhere.as_os_str(),
        ],
        60,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("would replace the input"));
    for name in ["a.jpg", "b.jpg"] {
        assert_eq!(
            fs::read(ward.join(name)).unwrap(),
            photo,
            "{name} was modified"
        );
    }
    let entries: Vec<_> = fs::read_dir(&ward).unwrap().collect();
    assert_eq!(entries.len(), 2, "nothing was added to the input folder");
}

#[test]
fn fifos_and_links_in_a_dropped_folder_are_all_accounted_for() {
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("in");
    fs::create_dir_all(input.join("sub")).unwrap();
    let photo = hostile::jpeg(64, 48);
    fs::write(input.join("photo.jpg"), &photo).unwrap();
    fs::write(t.path().join("outside.jpg"), &photo).unwrap();
    let fifo = input.join("pipe.jpg");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink(t.path().join("outside.jpg"), input.join("linked.jpg")).unwrap();
    std::os::unix::fs::symlink(t.path(), input.join("loop")).unwrap();
    std::os::unix::fs::symlink(t.path().join("gone.jpg"), input.join("dangling.jpg")).unwrap();
    let (out, r) = run_with_report(&input, &["--metadata-only"], 60);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("2 scrubbed, 2 skipped, 1 failed"),
        "{stdout}"
    );
    assert_eq!(r.len(), 5, "{r:#?}");
    assert_eq!(status(&r["photo.jpg"]).0, "scrubbed");
    assert_eq!(status(&r["linked.jpg"]).0, "scrubbed");
    assert!(t.path().join("in-scrubbed/linked.jpg").is_file());
    assert_eq!(
        status(&r["pipe.jpg"]),
        ("skipped", None, "not a regular file (a fifo)")
    );
    assert_eq!(
        status(&r["loop"]),
        ("skipped", None, "symbolic link to a folder, not followed")
    );
    assert_eq!(
        status(&r["dangling.jpg"]),
        ("failed", Some("io"), "broken symbolic link")
    );
    // A FIFO named on the command line is not opened either.
    let out = run_bounded(&[fifo.as_os_str(), os("--metadata-only")], 60);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 scrubbed, 1 skipped, 0 failed"));
}

#[test]
fn control_bytes_from_files_and_names_are_escaped_on_the_terminal() {
    use std::os::unix::ffi::OsStrExt;
    // A WebP whose chunk type is the escape sequence that clears the screen, its length
    // past the end of the file, so the error names the chunk.
    let mut webp = b"RIFF\x18\0\0\0WEBP".to_vec();
    webp.extend_from_slice(b"\x1b[2J\xff\0\0\0");
    webp.extend_from_slice(&[0; 12]);
    let name_with_escape = OsStr::from_bytes(b"ward\n\x1b[31mred.jpg");
    let non_utf8 = OsStr::from_bytes(b"bed\xff4.jpg");
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("in");
    fs::create_dir_all(&input).unwrap();
    fs::write(input.join("screen.webp"), &webp).unwrap();
    fs::write(input.join(name_with_escape), b"\xFF\xD8\xFF\xE0 truncated").unwrap();
    fs::write(input.join(non_utf8), hostile::jpeg(32, 32)).unwrap();
    let (out, _) = run_with_report(&input, &["--metadata-only"], 60);
    let report = t.path().join("report.jsonl");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !out.stderr.contains(&0x1b),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8(out.stderr).expect("stderr is valid UTF-8");
    // One line per failed file: a newline in a name does not start another.
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert!(stderr.contains("ward\\n\\x1B[31mred.jpg: "), "{stderr}");
    assert!(stderr.contains("(\\x1B[2J chunk at offset"), "{stderr}");
    let text = fs::read_to_string(&report).unwrap();
    assert!(text.contains(r"bed\\xFF4.jpg"), "{text}");
    assert!(!text.contains('\u{FFFD}'), "{text}");
}

#[test]
fn a_killed_batch_leaves_verified_outputs_a_faithful_report_and_no_leftovers_after_a_rerun() {
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("in");
    fs::create_dir_all(&input).unwrap();
    let portrait = fs::read(fixtures().join("faces/astronaut_eileen_collins.png")).unwrap();
    for i in 0..40 {
        fs::write(input.join(format!("p{i:02}.png")), &portrait).unwrap();
    }
    let out_dir = t.path().join("in-scrubbed");
    let report = t.path().join("r.jsonl");
    let mut child = bin()
        .args([
            input.as_os_str(),
            os("--only"),
            os("face"),
            os("--no-rotations"),
        ])
        .args([os("--report"), report.as_os_str(), os("-j"), os("2")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a few files are done and before the last.
    let start = Instant::now();
    loop {
        let lines = fs::read_to_string(&report).map_or(0, |s| s.lines().count());
        if lines >= 3 || start.elapsed() > Duration::from_secs(240) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the batch ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let text = fs::read_to_string(&report).unwrap();
    assert!(text.ends_with('\n'), "the last line is complete");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.len() >= 3 && lines.len() < 40,
        "{} lines",
        lines.len()
    );
    for l in &lines {
        assert_eq!(l["status"], "scrubbed", "{l}");
        assert!(Path::new(l["output"].as_str().unwrap()).is_file(), "{l}");
    }
    // Every file under a final name is complete and verified; the report may lag by the
    // files finished in the instant of the kill, never lead.
    let finished: Vec<PathBuf> = files(&out_dir)
        .into_iter()
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".phiscrub-")
        })
        .collect();
    assert!(finished.len() >= lines.len());
    for p in &finished {
        let bytes = fs::read(p).unwrap();
        let img = image::load_from_memory(&bytes).unwrap();
        phiscrub::formats::verify(phiscrub::Format::Png, &bytes, img.width(), img.height())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    // A temporary file as a run killed mid-write leaves it.
    let stale = out_dir.join(".phiscrub-a1B2c3.part");
    fs::write(&stale, &portrait[..1000]).unwrap();
    let out = run_bounded(
        &[
            input.as_os_str(),
            os("--only"),
            os("face"),
            os("--no-rotations"),
            os("-q"),
        ],
        600,
    );
    succeeded(&out);
    assert!(!stale.exists(), "the stale temporary file was removed");
    let names: Vec<String> = fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        40,
        "one output per input and nothing else: {names:?}"
    );
}
