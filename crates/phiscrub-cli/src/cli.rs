//! Command-line flags. Parsing only: validation of values happens here, everything else in
//! `main` and the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use phiscrub::batch::Rename;
use phiscrub::detect::RegionKind;
use phiscrub::redact::{Rgb, Shape, StyleRule};

/// De-identify clinical photos: remove identifying metadata and cover faces, text and codes.
/// Drop files or folders on it: scrubbed copies appear beside them (folder X -> X-scrubbed,
/// loose files -> scrubbed/). Originals are never modified. Started with no arguments (a
/// double-click), it opens a page in the browser to drop photos on, check and correct what
/// was covered, and download the copies.
#[derive(Debug, Parser)]
#[command(name = "phiscrub", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub scrub: ScrubArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the identifying data each file holds, without changing anything.
    Inspect(InspectArgs),
    /// Serve the scrubber over HTTP (POST /v1/scrub) for an app's upload path, and the
    /// review page at /.
    #[cfg(feature = "server")]
    Serve(Box<ServeArgs>),
}

/// Settings of `phiscrub serve`. Each overrides the same key of --config and of the
/// PHISCRUB_* environment variables.
#[cfg(feature = "server")]
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on, repeatable [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<std::net::SocketAddr>,
    /// TOML file of settings: listen (a list), jobs, queue, max_body_bytes,
    /// request_timeout_secs, shutdown_grace_secs, no_auth, token_file, tls_cert, tls_key,
    /// ort_lib, models. PHISCRUB_ and the key in capitals overrides it; flags override both.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Images scrubbed at once, the thread budget [default: number of cores].
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Requests that may wait for a worker; one more is told 503 [default: 2 x jobs].
    #[arg(long, value_name = "N")]
    pub queue: Option<usize>,
    /// Largest request body in bytes [default: 67108864].
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<u64>,
    /// Seconds a request may take, waiting included [default: 60].
    #[arg(long, value_name = "SECS")]
    pub request_timeout: Option<f64>,
    /// Seconds requests in flight may take to finish after SIGTERM [default: 30].
    #[arg(long, value_name = "SECS")]
    pub shutdown_grace: Option<f64>,
    /// Accept requests without a bearer token (loopback addresses only).
    #[arg(long)]
    pub no_auth: bool,
    /// File of accepted bearer tokens, one per line (also PHISCRUB_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM certificate chain to serve HTTPS with (with --tls-key) [default: plain HTTP].
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// ONNX Runtime library to load (as for scrubbing).
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Folder of models with their MANIFEST [default: the models built into phiscrub].
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Open the review page in the browser once listening ($BROWSER, else the system's).
    #[arg(long)]
    pub open: bool,
}

#[cfg(feature = "server")]
impl ServeArgs {
    /// A double-click on the executable: the page on loopback, any free port, no token
    /// (nothing off this computer can reach it), opened in the browser.
    pub fn for_double_click() -> ServeArgs {
        ServeArgs {
            listen: vec![std::net::SocketAddr::from(([127, 0, 0, 1], 0))],
            no_auth: true,
            open: true,
            ..ServeArgs::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Files to inspect.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// One JSON object per file instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ScrubArgs {
    /// Image files and folders (searched recursively).
    pub paths: Vec<PathBuf>,
    /// Write all outputs under DIR instead of beside the inputs.
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace outputs that already exist.
    #[arg(long)]
    pub overwrite: bool,
    /// Rename outputs: keep the name, a random name, or a sequence number.
    /// (keep, random, index)
    #[arg(long, default_value_t = Rename::Keep)]
    pub rename: Rename,
    /// Re-encode every image instead of scrubbing JPEG/PNG/WebP losslessly.
    #[arg(long)]
    pub reencode: bool,
    /// JPEG quality for re-encoded output (1-100) [default: the source JPEG's own, else 90].
    #[arg(long, value_name = "Q", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub jpeg_quality: Option<u8>,
    /// Remove metadata only: no face detection. Outputs may still show faces.
    #[arg(long)]
    pub metadata_only: bool,
    /// ONNX Runtime library to load [default: $ORT_DYLIB_PATH, beside the executable, then
    /// where scripts/fetch-onnxruntime installs it].
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Folder of models with their MANIFEST [default: the models built into phiscrub].
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Look for faces in the upright image only, not also turned by 90, 180 and 270 degrees
    /// (about 4x faster; misses faces lying sideways, such as patients in bed).
    #[arg(long)]
    pub no_rotations: bool,
    /// Face score (0-1) at which a face is covered [default: 0.15]; candidates down to 13/15 of
    /// it (0.13) mark the file as needing review.
    #[arg(long, value_name = "SCORE", value_parser = parse_score)]
    pub face_threshold: Option<f32>,
    /// Look only for these categories, comma-separated: face, text, barcode.
    #[arg(long, value_name = "CATS", value_delimiter = ',', value_parser = parse_category, conflicts_with = "skip")]
    pub only: Vec<RegionKind>,
    /// Do not look for these categories: face, text, barcode. Whatever is skipped stays
    /// visible (keep a ruler's printed scale with --skip text only where no label, name or
    /// date is in the photo).
    #[arg(long, value_name = "CATS", value_delimiter = ',', value_parser = parse_category)]
    pub skip: Vec<RegionKind>,
    /// Merge text boxes lying close together into blocks, so a monitor header or a label is
    /// covered whole rather than word by word: on or off.
    #[arg(long, value_name = "on|off", default_value = "on", action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub text_blocks: bool,
    /// How to cover each kind of region: CATEGORY=STYLE, comma-separated. Categories: face,
    /// text, barcode, manual, all. Styles: fill (solid colour, default), pixelate, blur (both
    /// coarse and noisy; for text they are a known risk and warned about).
    #[arg(long, value_name = "CAT=STYLE", value_delimiter = ',')]
    pub style: Vec<StyleRule>,
    /// Colour of fill, as RRGGBB hex.
    #[arg(long, value_name = "RRGGBB", default_value_t = Rgb([0, 0, 0]))]
    pub fill_color: Rgb,
    /// Shape covered inside each face's and manual region's box: box or ellipse.
    #[arg(long, default_value_t = Shape::Box)]
    pub shape: Shape,
    /// JSON file of corrections: {"file": [[x, y, w, h], ...]} adds boxes to cover, in pixels
    /// of the image as displayed; {"file": {"cover": [[x, y, w, h]], "keep": ["text-120-80-200-60"]}}
    /// also leaves regions named by an earlier report uncovered. Keys are input paths or
    /// their trailing parts (file names).
    #[arg(long, value_name = "FILE")]
    pub regions: Option<PathBuf>,
    /// Say which ONNX Runtime library and models were loaded and how threads are split.
    #[arg(short, long)]
    pub verbose: bool,
    /// Write a JSON-lines report (one object per file; no metadata values) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Take only shard I of N (I counts from 0): the inputs whose path hashes to I. Give every
    /// worker of a Slurm array or Kubernetes Indexed Job the same paths and its own index.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<phiscrub::manifest::Shard>,
    /// Append one audit record per input (JSON lines: hashes, status, route, region counts,
    /// models, version; no metadata values) to FILE, each flushed to disk as the file ends.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Skip the inputs the --manifest file shows done (scrubbed or failed), as after a
    /// killed run. An output a killed run wrote but did not record is kept if it holds
    /// exactly what this run produces.
    #[arg(long, requires = "manifest")]
    pub resume: bool,
    /// With --resume, try again the inputs the manifest shows failed.
    #[arg(long, requires = "resume")]
    pub retry_failed: bool,
    /// Number of files processed at once [default: number of cores].
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// No progress bar and no summary; errors are still printed.
    #[arg(short, long)]
    pub quiet: bool,
    /// Most seconds one file may take; a file that takes longer fails and the batch goes on
    /// (0: no limit) [default: 60].
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<std::time::Duration>,
}

fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1e9).contains(&v) => Ok(std::time::Duration::from_secs_f64(v)),
        _ => Err(format!("'{s}' is not a number of seconds")),
    }
}

fn parse_category(s: &str) -> Result<RegionKind, String> {
    RegionKind::from_name(s.trim())
        .filter(|k| RegionKind::DETECTED.contains(k))
        .ok_or_else(|| format!("unknown category '{}' (face, text, barcode)", s.trim()))
}

fn parse_score(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a score between 0 and 1")),
    }
}
