//! `phiscrub serve` as a process: started on a free loopback port, sent real photos over
//! HTTP, compared byte for byte with the CLI's output, then stopped with SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use common::{bin, fixtures, shared_data};

struct Server {
    child: Child,
    addr: SocketAddr,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    fn start() -> Server {
        let mut child = bin()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--no-auth",
                "--jobs",
                "2",
            ])
            .stderr(Stdio::piped())
            .spawn()
            .expect("phiscrub serve starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the service says where it listens")
                .unwrap();
            if let Some(a) = line.split("address=").nth(1) {
                break a.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        // The rest of the log is kept (and the pipe drained, so the service never blocks).
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        Server { child, addr, log }
    }

    /// One request on its own connection: status, headers (lowercase names) and body.
    fn post(&self, path: &str, body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        (status, headers, raw[split + 4..].to_vec())
    }

    /// The log so far.
    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        self.child.wait().unwrap()
    }
}

/// What the CLI writes for `input`, with default options.
fn cli_output(input: &Path, out: &Path) -> Vec<u8> {
    let o = bin()
        .arg("-q")
        .arg("-o")
        .arg(out)
        .arg(input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let written: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    let bytes = std::fs::read(&written[0]).unwrap();
    std::fs::remove_file(&written[0]).unwrap();
    bytes
}

#[test]
fn the_service_and_the_cli_write_the_same_bytes_and_sigterm_exits_0() {
    let mut inputs: Vec<PathBuf> = ["photos", "clinical", "faces"]
        .iter()
        .flat_map(|d| common::files(&fixtures().join(d)))
        .filter(|p| {
            let ext = p.extension().map(|e| e.to_string_lossy().to_lowercase());
            matches!(ext.as_deref(), Some("jpg" | "png" | "webp" | "gif"))
        })
        .collect();
    if let Some(data) = shared_data() {
        // Two photos of each kind of camera metadata (HEIC, GPS, orientation, XMP...) and
        // four photos with faces.
        let meta = data.join("metadata");
        let mut sets: Vec<(PathBuf, usize)> = std::fs::read_dir(&meta)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir() && !p.ends_with("bad"))
            .map(|p| (p, 2))
            .collect();
        sets.sort();
        sets.push((data.join("faces"), 4));
        for (dir, n) in sets {
            let mut found = common::files(&dir);
            found.retain(|p| {
                let ext = p.extension().map(|e| e.to_string_lossy().to_lowercase());
                matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png" | "heic"))
            });
            inputs.extend(found.into_iter().take(n));
        }
    }
    let server = Server::start();
    let t = tempfile::tempdir().unwrap();
    for input in &inputs {
        let bytes = std::fs::read(input).unwrap();
        let (status, headers, body) = server.post("/v1/scrub", &bytes);
        let name = input.display();
        assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&body));
        assert!(
            headers.iter().any(|(k, _)| k == "phiscrub-regions"),
            "{name}: {headers:?}"
        );
        let expected = cli_output(input, t.path());
        assert!(
            body == expected,
            "{name}: the service's output differs from the CLI's"
        );
        let ext = input.extension().unwrap().to_string_lossy().to_lowercase();
        let written = t.path().join(format!("served.{ext}"));
        std::fs::write(&written, &body).unwrap();
        let left = common::exiftool_leftovers(std::slice::from_ref(&written));
        let left: Vec<&String> = left
            .values()
            .flatten()
            .filter(|k| !k.contains("Orientation"))
            .collect();
        assert!(left.is_empty(), "{name}: exiftool still finds {left:?}");
        std::fs::remove_file(&written).unwrap();
        image::load_from_memory(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let (status, _, body) = server.post("/v1/scrub", b"%PDF-1.7 not an image");
    assert_eq!(status, 415, "{}", String::from_utf8_lossy(&body));
    // The fixture's metadata names a patient, a clinician and a serial number; the log
    // carries none of them, nor any file's name, nor query values.
    let (status, _, _) = server.post(
        "/v1/scrub?regions=11,22,33,44",
        &std::fs::read(fixtures().join("photos/ward_round_gps_xmp_trailer.jpg")).unwrap(),
    );
    assert_eq!(status, 200);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = server.log();
    assert!(
        log.contains("status=200"),
        "the log records requests: {log}"
    );
    for secret in [
        "Jane",
        "Clinician",
        "SN-0042",
        "MRN",
        "ward_round",
        "11,22",
        "PDF",
    ] {
        assert!(!log.contains(secret), "the log holds '{secret}':\n{log}");
    }
    let status = server.stop();
    assert_eq!(status.code(), Some(0), "SIGTERM ends the service cleanly");
}

/// Sends `body` until told to stop, recording each answer's status, or 0 when the
/// connection was refused or closed without an answer (the service had already stopped
/// listening).
fn hammer(
    addr: SocketAddr,
    body: Vec<u8>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let Ok(mut s) = TcpStream::connect(addr) else {
            break;
        };
        let head = format!(
            "POST /v1/scrub HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        if s.write_all(head.as_bytes())
            .and_then(|_| s.write_all(&body))
            .is_err()
        {
            statuses.push(0);
            break;
        }
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let status = std::str::from_utf8(&raw[..raw.len().min(12)])
            .ok()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        statuses.push(status);
        if status == 0 {
            break;
        }
    }
    statuses
}

#[test]
fn sigterm_under_load_answers_every_request_in_flight_and_exits_0() {
    let server = Server::start();
    let photo = std::fs::read(fixtures().join("clinical/wristband.jpg")).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (addr, body, stop) = (server.addr, photo.clone(), stop.clone());
            std::thread::spawn(move || hammer(addr, body, stop))
        })
        .collect();
    // Let requests pile up past the two workers, then ask the service to stop.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let status = server.stop();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let statuses: Vec<u16> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert_eq!(status.code(), Some(0), "the service exits 0 after draining");
    let answered = statuses.iter().filter(|&&s| s == 200).count();
    assert!(
        answered >= 2,
        "some requests were answered before the signal: {statuses:?}"
    );
    // A request the service accepted is answered: 200, or 503 once it is draining. A
    // connection it never answered could only be one opened after it stopped listening,
    // which each client sees at most once, as its last.
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 503 | 0)),
        "{statuses:?}"
    );
    let unanswered = statuses.iter().filter(|&&s| s == 0).count();
    assert!(unanswered <= 6, "{statuses:?}");
}

#[test]
fn serve_exits_2_with_a_message_when_it_cannot_start() {
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--no-auth",
                "--ort-lib",
                "/nonexistent/libonnxruntime.so.1.32.0",
            ],
            "/nonexistent/libonnxruntime.so.1.32.0",
        ),
        (&["serve", "--listen", "127.0.0.1:0"], "PHISCRUB_TOKEN"),
        (&["serve", "--listen", "0.0.0.0:0", "--no-auth"], "loopback"),
    ];
    for (args, needle) in cases {
        let out = bin()
            .args(args)
            .env_remove("PHISCRUB_TOKEN")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("phiscrub: ") && err.contains(needle),
            "{args:?}: {err}"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err}"
        );
    }
}

#[test]
fn a_double_click_without_onnx_runtime_says_why_and_opens_nothing() {
    // No arguments is a double-click: it must fail closed, not serve a page that cannot
    // detect. The opener would leave a file behind if it ran.
    let t = tempfile::tempdir().unwrap();
    let opened = t.path().join("opened");
    let opener = t.path().join("open-browser");
    std::fs::write(
        &opener,
        format!("#!/bin/sh\ntouch '{}'\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = bin()
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.32.0")
        .env("BROWSER", &opener)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("/nonexistent/libonnxruntime.so.1.32.0"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(!opened.exists(), "no browser was opened");
}

#[test]
fn hostile_bodies_get_a_4xx_or_a_clean_image_and_never_a_5xx() {
    use common::hostile;
    let mut bodies: Vec<(String, Vec<u8>)> = vec![
        ("thin_1x16.png".into(), hostile::noise_png(1, 16)),
        ("thin_33x10000.png".into(), hostile::noise_png(33, 10_000)),
        ("gif_257_colours.gif".into(), hostile::gif_257_colours()),
        ("gif_canvas_14000.gif".into(), hostile::gif_huge_canvas()),
        ("gif_999_frames.gif".into(), hostile::gif_many_frames(999)),
        (
            "gif_over_limit.gif".into(),
            hostile::gif_over_animation_limit(),
        ),
        ("heif_grid_16000.heic".into(), hostile::heif_grid(16_000)),
        (
            "jpeg_declaring_14000.jpg".into(),
            hostile::jpeg_declaring_14000(),
        ),
        (
            "tiff_text.tiff".into(),
            hostile::tiff_with_text_tags(hostile::PLANTED),
        ),
        ("noise.bin".into(), hostile::noise(4096, 7)),
    ];
    bodies.extend(
        hostile::png_hiding_places(hostile::PLANTED)
            .into_iter()
            .map(|(n, b)| (n.to_string(), b)),
    );
    bodies.extend(
        hostile::webp_hiding_places(hostile::PLANTED)
            .into_iter()
            .map(|(n, b)| (n.to_string(), b)),
    );
    bodies.extend(
        hostile::jpeg_hiding_places(hostile::PLANTED)
            .into_iter()
            .map(|(n, b)| (n.to_string(), b)),
    );
    let server = Server::start();
    for (name, bytes) in &bodies {
        let (status, headers, body) = server.post("/v1/scrub", bytes);
        assert!(
            status == 200 || (400..500).contains(&status),
            "{name}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        let planted = hostile::PLANTED.as_bytes();
        assert!(
            !body.windows(planted.len()).any(|w| w == planted),
            "{name}: the planted text came back"
        );
        if status != 200 {
            assert!(
                headers
                    .iter()
                    .any(|(k, v)| k == "content-type" && v == "application/problem+json"),
                "{name}: {headers:?}"
            );
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = server.log();
    assert!(!log.contains("Jane") && !log.contains("MRN"), "{log}");
    assert!(!log.contains("status=5"), "{log}");
    assert_eq!(server.stop().code(), Some(0));
}
