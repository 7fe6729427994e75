//! The `phiscrub` binary: flags in, exit status out. All scrubbing lives in the library.

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use phiscrub::batch::{self, BatchOptions, Outcome, ReportFile, Status};
use phiscrub::detect::{
    Categories, Engine, EngineConfig, FaceParams, OrtSource, RegionKind, TextParams,
};
use phiscrub::manifest::{self, ManifestFile, Record};
use phiscrub::redact::{Redaction, Style};
use phiscrub::report::{path_text, printable};
use phiscrub::{Limits, Options, Scrubber};

use cli::{Cli, Command, InspectArgs, ScrubArgs};

fn main() -> ExitCode {
    // No arguments at all is a double-click on the executable: start the page.
    #[cfg(feature = "server")]
    if std::env::args_os().len() == 1 {
        let code = finish(serve(&cli::ServeArgs::for_double_click()));
        // A window opened for a double-click closes when we exit: leave the message up.
        if code != ExitCode::SUCCESS && std::io::stdin().is_terminal() {
            eprintln!("phiscrub: press Enter to close");
            let _ = std::io::stdin().read_line(&mut String::new());
        }
        return code;
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Inspect(args)) => inspect(&args),
        #[cfg(feature = "server")]
        Some(Command::Serve(args)) => serve(&args),
        None => scrub(&cli.scrub),
    };
    finish(result)
}

fn finish(result: Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("phiscrub: {}", printable(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

fn scrub(args: &ScrubArgs) -> Result<ExitCode> {
    if args.paths.is_empty() {
        eprintln!("phiscrub: no files or folders given\n\nUsage: phiscrub [OPTIONS] PATH...\n       phiscrub inspect FILE...\n       phiscrub serve [OPTIONS]\n       phiscrub          (no arguments: the review page in your browser)\n\nFor more information, try '--help'.");
        return Ok(ExitCode::from(2));
    }
    let batch_opts = BatchOptions {
        out: args.out.clone(),
        overwrite: args.overwrite,
        rename: args.rename,
        resume: args.resume,
    };
    if args.resume && args.rename == batch::Rename::Random {
        anyhow::bail!(
            "--resume cannot be used with --rename random: a new run would give the unrecorded \
             files new names, and their earlier copies would remain"
        );
    }
    let mut plan = batch::plan(&args.paths, &batch_opts);
    // Everything the user typed is checked before any file is touched.
    if let Some(p) = &args.regions {
        let regions = batch::read_regions(p).map_err(|e| anyhow::anyhow!("{}: {e}", shown(p)))?;
        let unmatched = plan.attach_regions(&regions);
        if let Some(first) = unmatched.first() {
            let more = match unmatched.len() - 1 {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            anyhow::bail!(
                "{}: names {}{more}, which matches none of the input images",
                shown(p),
                shown(first),
            );
        }
    }
    // Nothing may land on an input: checked before anything is touched.
    let records: Vec<(&str, &std::path::Path)> =
        [("report", &args.report), ("manifest", &args.manifest)]
            .into_iter()
            .filter_map(|(what, p)| Some((what, p.as_deref()?)))
            .collect();
    if let Err(e) = batch::check_targets(&plan, &records) {
        let hint = if args.report.is_some() && e.contains("report") {
            " (a wildcard right after --report makes its first file the report)"
        } else {
            ""
        };
        anyhow::bail!("{}{hint}", printable(&e));
    }
    if let Some(shard) = args.shard {
        plan.retain(|p| shard.holds(p));
    }
    if let (true, Some(m)) = (args.resume, &args.manifest) {
        let done = manifest::done(m, args.retry_failed)
            .with_context(|| format!("{}: cannot resume from this manifest", shown(m)))?;
        let before = plan.jobs.len();
        plan.retain(|p| !done.contains(&path_text(p)));
        if !args.quiet {
            eprintln!(
                "phiscrub: {} file(s) already in {}, not redone",
                before - plan.jobs.len(),
                shown(m)
            );
        }
    }

    // --jobs is the total thread budget: file workers times ONNX Runtime threads each. A
    // batch smaller than the budget gives each file more inference threads instead.
    let total = args.jobs.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let workers = total.min(plan.jobs.len()).max(1);
    let intra = (total / workers).max(1);
    let defaults = Limits::default();
    let options = Options {
        reencode: args.reencode,
        jpeg_quality: args.jpeg_quality,
        redaction: redaction(args),
        limits: Limits {
            timeout: match args.timeout {
                Some(t) if t.is_zero() => None,
                Some(t) => Some(t),
                None => defaults.timeout,
            },
            ..defaults
        },
    };
    let scrubber = if args.metadata_only {
        if args.verbose {
            eprintln!("phiscrub: metadata only, no detection");
        }
        Scrubber::metadata_only(options)
    } else {
        let categories = categories(args)?;
        if categories.text && options.redaction.text != Style::Fill {
            eprintln!(
                "phiscrub: warning: blurred or pixelated text has been read back by published \
                 tools (Depix, Unredacter); --style text=fill is the safe choice"
            );
        }
        let mut face = FaceParams {
            turns: !args.no_rotations,
            ..FaceParams::default()
        };
        if let Some(t) = args.face_threshold {
            // Keep the default band's proportion to the threshold.
            face.review_threshold = t * face.review_threshold / face.threshold;
            face.threshold = t;
        }
        let engine = Engine::load(EngineConfig {
            ort_lib: args.ort_lib.clone(),
            models: args.models.clone(),
            intra_threads: intra,
            categories,
            face,
            text: TextParams {
                blocks: args.text_blocks,
                ..TextParams::default()
            },
            barcode: Default::default(),
        })
        .map_err(with_hint)?;
        if args.verbose {
            let (lib, source) = engine.runtime();
            let source = match source {
                OrtSource::Given => "--ort-lib".to_string(),
                other => other.to_string(),
            };
            eprintln!("phiscrub: onnx runtime {} ({source})", lib.display());
            for m in engine.models() {
                eprintln!(
                    "phiscrub: model {} from {}, sha256 {}",
                    m.name, m.origin, m.sha256
                );
            }
            eprintln!("phiscrub: {workers} worker(s) x {intra} inference thread(s)");
        }
        Scrubber::new(options, Arc::new(engine))
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build_global()
        .context("cannot start worker threads")?;
    let report = match &args.report {
        Some(p) => Some(
            ReportFile::create(p).with_context(|| format!("{}: cannot create report", shown(p)))?,
        ),
        None => None,
    };
    // Temporary files a killed run left where outputs go.
    batch::remove_stale_parts(plan.jobs.iter().filter_map(|j| j.output.parent()));
    let manifest = match &args.manifest {
        Some(p) => Some(
            ManifestFile::append_to(p)
                .with_context(|| format!("{}: cannot open manifest", shown(p)))?,
        ),
        None => None,
    };
    let record = |o: &Outcome| -> Result<()> {
        if let Some(r) = &report {
            r.append(o).context("cannot write report")?;
        }
        if let Some(m) = &manifest {
            m.append(&Record::new(o, &scrubber))
                .context("cannot write manifest")?;
        }
        Ok(())
    };
    let mut outcomes: Vec<Outcome> = Vec::new();
    for (path, reason) in &plan.errors {
        eprintln!("{}: {}", shown(path), printable(reason));
        outcomes.push(Outcome::not_written(
            path,
            Status::Failed,
            reason.clone(),
            Some("io"),
        ));
    }
    for (path, reason) in &plan.skipped {
        outcomes.push(Outcome::not_written(
            path,
            Status::Skipped,
            reason.clone(),
            None,
        ));
    }
    for o in &outcomes {
        record(o)?;
    }
    let bar = if args.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(plan.jobs.len() as u64).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed_precise} eta {eta}")
                .expect("valid template"),
        )
    };
    let done: Vec<Result<Outcome>> = plan
        .jobs
        .par_iter()
        .map(|job| {
            let o = batch::process(&scrubber, job, &batch_opts);
            if let Some(reason) = &o.reason {
                let kind = if o.status == Status::Skipped {
                    "skipped: "
                } else {
                    ""
                };
                let hint = if reason == batch::OUTPUT_EXISTS {
                    " (use --overwrite to replace it)"
                } else {
                    ""
                };
                bar.suspend(|| {
                    eprintln!(
                        "{}: {kind}{}{hint}",
                        shown(&job.input),
                        printable(reason)
                    )
                });
            }
            if let Some(r) = o.report.as_ref().filter(|r| r.needs_review) {
                let count = |k: RegionKind| r.review.iter().filter(|v| v.category == k).count();
                let (faces, text) = (count(RegionKind::Face), count(RegionKind::Text));
                bar.suspend(|| {
                    eprintln!(
                        "{}: needs review: {faces} possible face(s) and {text} possible text area(s) not covered (under the threshold, or not confirmed)",
                        shown(&job.input),
                    )
                });
            }
            bar.inc(1);
            record(&o)?;
            Ok(o)
        })
        .collect();
    bar.finish_and_clear();
    for o in done {
        outcomes.push(o?);
    }
    let count = |s| outcomes.iter().filter(|o| o.status == s).count();
    let removed: u64 = outcomes
        .iter()
        .filter_map(|o| o.report.as_ref())
        .map(|r| r.metadata_bytes)
        .sum();
    let failed = count(Status::Failed);
    let reports = || outcomes.iter().filter_map(|o| o.report.as_ref());
    let covered: usize = reports().map(|r| r.regions.len()).sum();
    let review = reports().filter(|r| r.needs_review).count();
    if !args.quiet {
        let pixels = if args.metadata_only {
            "metadata only".to_string()
        } else {
            let mut s = format!("{covered} region(s) covered");
            if review > 0 {
                s.push_str(&format!(", {review} file(s) need review"));
            }
            s
        };
        println!(
            "{} scrubbed, {} skipped, {} failed; {} of metadata removed; {pixels}",
            count(Status::Scrubbed),
            count(Status::Skipped),
            failed,
            human(removed)
        );
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `phiscrub serve`: settings layered defaults, file, environment, flags; the engine loaded
/// once with every model; then requests until SIGTERM or Ctrl-C, and exit 0.
#[cfg(feature = "server")]
fn serve(args: &cli::ServeArgs) -> Result<ExitCode> {
    use phiscrub_server::Config;
    let mut config = Config::layered(args.config.as_deref(), std::env::vars())?;
    if !args.listen.is_empty() {
        config.listen = args.listen.clone();
    }
    if let Some(j) = args.jobs {
        config.jobs = usize::from(j);
    }
    if let Some(q) = args.queue {
        config.queue = Some(q);
    }
    if let Some(b) = args.max_body_bytes {
        config.max_body_bytes = b;
    }
    if let Some(t) = args.request_timeout {
        config.request_timeout_secs = t;
    }
    if let Some(t) = args.shutdown_grace {
        config.shutdown_grace_secs = t;
    }
    config.no_auth |= args.no_auth;
    if args.token_file.is_some() {
        config.token_file = args.token_file.clone();
    }
    if args.tls_cert.is_some() {
        config.tls_cert = args.tls_cert.clone();
        config.tls_key = args.tls_key.clone();
    }
    if args.ort_lib.is_some() {
        config.ort_lib = args.ort_lib.clone();
    }
    if args.models.is_some() {
        config.models = args.models.clone();
    }
    let config = config.finish()?;
    // Bound before the engine loads, so a taken port is reported at once.
    let listeners = phiscrub_server::bind(&config)?;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(true)
        .init();
    // Each worker runs one image with one inference thread: `jobs` is the thread budget.
    let engine = Engine::load(EngineConfig {
        ort_lib: config.ort_lib.clone(),
        models: config.models.clone(),
        intra_threads: 1,
        categories: Categories::default(),
        face: FaceParams::default(),
        text: TextParams::default(),
        barcode: Default::default(),
    })
    .map_err(with_hint)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(config.jobs + 2)
        .enable_all()
        .build()
        .context("cannot start the service's runtime")?;
    let url = page_url(&config, &listeners)?;
    let state = phiscrub_server::State::new(config, Arc::new(engine));
    if args.open {
        eprintln!(
            "phiscrub: the page is at {url} ; leave this running while you use it, \
             and press Ctrl-C or close the window to stop"
        );
        open_browser(&url);
    }
    runtime
        .block_on(phiscrub_server::serve_on(
            state,
            listeners,
            phiscrub_server::shutdown_signal(),
        ))
        .context("cannot serve")?;
    Ok(ExitCode::SUCCESS)
}

/// The page's address on the first listener; a wildcard address is reached on loopback.
fn page_url(
    config: &phiscrub_server::Config,
    listeners: &[std::net::TcpListener],
) -> Result<String> {
    let first = listeners.first().context("no address to listen on")?;
    let mut addr = first.local_addr()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let scheme = if config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    Ok(format!("{scheme}://{addr}/"))
}

/// Opens `url` with `$BROWSER` when set (as xdg-utils and Python do), else the system's
/// opener. Failing to open is not an error: the address is printed for the user.
fn open_browser(url: &str) {
    use std::process::Stdio;
    let program = std::env::var_os("BROWSER")
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| {
            if cfg!(target_os = "macos") {
                "open".into()
            } else if cfg!(windows) {
                "explorer".into()
            } else {
                "xdg-open".into()
            }
        });
    let spawned = std::process::Command::new(program)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if spawned.is_err() {
        eprintln!("phiscrub: could not open a browser; open the address above yourself");
    }
}

/// What the user can do about an engine that would not load, in this front-end's terms.
fn with_hint(e: phiscrub::Error) -> anyhow::Error {
    let hint = match &e {
        phiscrub::Error::RuntimeNotFound { .. } => {
            "; run scripts/fetch-onnxruntime, or pass --ort-lib PATH; --metadata-only skips detection"
        }
        phiscrub::Error::Runtime(_) => "; --ort-lib PATH names another; --metadata-only skips detection",
        phiscrub::Error::Model(_) => "; re-create the models with the scripts in models/, or leave out --models",
        _ => "",
    };
    anyhow::anyhow!("{e}{hint}")
}

/// Resolves the style flags; later flags win over earlier ones.
fn redaction(args: &ScrubArgs) -> Redaction {
    let mut r = Redaction {
        fill: args.fill_color.0,
        shape: args.shape,
        ..Redaction::default()
    };
    r.apply(&args.style);
    r
}

/// The categories to look for from --only and --skip.
fn categories(args: &ScrubArgs) -> Result<Categories> {
    Categories::choose(&args.only, &args.skip).ok_or_else(|| {
        anyhow::anyhow!("--skip leaves nothing to look for; use --metadata-only for metadata alone")
    })
}

fn inspect(args: &InspectArgs) -> Result<ExitCode> {
    let scrubber = Scrubber::metadata_only(Options::default());
    let mut failed = false;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in &args.files {
        let result = batch::read_limited(path, scrubber.options().limits.max_input_bytes)
            .and_then(|b| scrubber.inspect(&b));
        match result {
            Ok(i) if args.json => {
                let mut v = serde_json::to_value(&i)?;
                v["file"] = serde_json::Value::String(path_text(path));
                writeln!(out, "{v}")?;
            }
            Ok(i) => {
                writeln!(
                    out,
                    "{}: {} {}x{}, orientation {}, {} of metadata",
                    shown(path),
                    i.format,
                    i.width,
                    i.height,
                    i.orientation,
                    human(i.metadata_bytes)
                )?;
                if let Some(e) = &i.exif {
                    let tags = |n: u32, what: &str| (n > 0).then(|| format!("{what}: {n} tag(s)"));
                    let bytes =
                        |n: u64, what: &str| (n > 0).then(|| format!("{what}: {}", human(n)));
                    for line in [
                        tags(e.gps_tags, "gps position"),
                        tags(e.date_tags, "dates"),
                        tags(e.device_tags, "device make/model/software"),
                        tags(e.serial_tags, "serial numbers and unique ids"),
                        tags(e.owner_tags, "owner/artist/description"),
                        bytes(e.makernote_bytes, "maker notes"),
                        bytes(e.thumbnail_bytes, "exif thumbnail"),
                    ]
                    .into_iter()
                    .flatten()
                    {
                        writeln!(out, "  {line}")?;
                    }
                }
                for f in &i.found {
                    let cat = serde_json::to_value(f.category)?;
                    let size = if f.bytes > 0 {
                        format!(" ({})", human(f.bytes))
                    } else {
                        String::new()
                    };
                    writeln!(
                        out,
                        "  {}: {}{size}",
                        cat.as_str().unwrap_or("other"),
                        printable(&f.name)
                    )?;
                }
                if i.found.is_empty() {
                    writeln!(out, "  no metadata found")?;
                }
            }
            Err(e) => {
                eprintln!("{}: {}", shown(path), printable(&e.to_string()));
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A path as printed on the terminal: odd bytes as `\xNN`, control characters escaped.
fn shown(p: &std::path::Path) -> String {
    printable(&path_text(p)).into_owned()
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
