//! Command-line flags. Parsing only: validation of values happens here, everything else in
//! `main` and the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Remove identifying metadata from clinical photos. Drop files or folders on it: scrubbed
/// copies appear beside them (folder X -> X-scrubbed, loose files -> scrubbed/). Originals are
/// never modified.
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
    #[arg(long, value_enum, default_value_t = RenameArg::Keep)]
    pub rename: RenameArg,
    /// Re-encode every image instead of scrubbing JPEG/PNG/WebP losslessly.
    #[arg(long)]
    pub reencode: bool,
    /// JPEG quality for re-encoded output (1-100).
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub jpeg_quality: u8,
    /// Write a JSON-lines report (one object per file; no metadata values) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Number of files processed at once [default: number of cores].
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// No progress bar and no summary; errors are still printed.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RenameArg {
    Keep,
    Random,
    Index,
}
