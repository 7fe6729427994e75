//! Files and folders: where each scrubbed copy goes, reading with limits, and atomic writes.
//! The caller (the binary, a service) decides how to run jobs in parallel and what to print.
//!
//! Only regular files are ever opened, and never in a way that can block (a FIFO named like
//! a photo). Symbolic links to files are followed, as the files they point to are what the
//! user dropped; links to folders are not, so a walk never leaves the tree it was given and
//! never loops. Every entry ends up in the plan: a job, skipped with a reason, or an error.
//! Nothing is written over an input: [`check_targets`] refuses a plan whose outputs or
//! report would land on one, before anything is touched.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::detect::Rect;
use crate::formats::Format;
use crate::report::Report;
use crate::{Corrections, Error, Limit, Scrubber};

/// How output files are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rename {
    /// Keep the input's name (extension corrected to the output format).
    #[default]
    Keep,
    /// A random 16-hex-digit name, since file names often carry patient names.
    Random,
    /// A sequence number in input order (`0001.jpg`).
    Index,
}

impl Rename {
    /// The choice's name in options.
    pub fn name(self) -> &'static str {
        match self {
            Rename::Keep => "keep",
            Rename::Random => "random",
            Rename::Index => "index",
        }
    }
}

impl std::fmt::Display for Rename {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Rename {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "keep" => Ok(Rename::Keep),
            "random" => Ok(Rename::Random),
            "index" => Ok(Rename::Index),
            other => Err(format!("unknown rename '{other}' (keep, random, index)")),
        }
    }
}

/// Where and how outputs are written. `BatchOptions::default()` is drag-and-drop behaviour.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// Output root. Default `None`: a folder `X` goes to `X-scrubbed` beside it and loose files
    /// to `scrubbed/` beside them.
    pub out: Option<PathBuf>,
    /// Replace existing outputs. Default `false`: an existing output is never touched.
    pub overwrite: bool,
    /// File naming. Default [`Rename::Keep`].
    pub rename: Rename,
    /// Resuming a killed run: an existing output that holds exactly the bytes this run
    /// produces for its input is taken as that input's (the killed run wrote it but did not
    /// record it), rather than skipped. Any other existing output is still never touched.
    /// Default `false`.
    pub resume: bool,
}

/// One file to scrub and where its output goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The input file.
    pub input: PathBuf,
    /// The output file.
    pub output: PathBuf,
    /// A person's corrections from a regions file: boxes to cover, region ids to keep.
    pub corrections: Corrections,
}

/// The work found under the inputs.
#[derive(Debug, Default)]
pub struct Plan {
    /// Images (and files named like images) to scrub, in input order.
    pub jobs: Vec<Job>,
    /// Files that are not images, skipped with a reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Inputs that could not be read at all (missing paths, unreadable folders).
    pub errors: Vec<(PathBuf, String)>,
}

/// How one file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Scrubbed, verified and written.
    Scrubbed,
    /// Not processed, by design (not an image, output exists).
    Skipped,
    /// Could not be scrubbed; nothing was written.
    Failed,
}

/// One file's outcome: a line of the `--report` file.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The input path.
    #[serde(serialize_with = "lossy_path")]
    pub input: PathBuf,
    /// The output path, when one was written.
    #[serde(serialize_with = "lossy_opt_path")]
    pub output: Option<PathBuf>,
    /// How it ended.
    pub status: Status,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    /// A stable code for the failure (`malformed`, `limits`, ...).
    pub code: Option<&'static str>,
    /// The input's size in bytes, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// sha256 of the input, lowercase hex, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256_in: Option<String>,
    /// sha256 of the output written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256_out: Option<String>,
    /// How long reading, scrubbing and writing took, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// What was done, when it was scrubbed.
    #[serde(flatten)]
    pub report: Option<Report>,
}

/// Paths that are not UTF-8 are reported with their odd bytes as `\xNN`, so that every name
/// stays distinct, rather than failing the whole report.
fn lossy_path<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::report::path_text(p))
}

fn lossy_opt_path<S: serde::Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => lossy_path(p, s),
        None => s.serialize_none(),
    }
}

impl Outcome {
    /// An outcome with no output.
    pub fn not_written(
        input: &Path,
        status: Status,
        reason: String,
        code: Option<&'static str>,
    ) -> Outcome {
        Outcome {
            input: input.to_path_buf(),
            output: None,
            status,
            reason: Some(reason),
            code,
            size: None,
            sha256_in: None,
            sha256_out: None,
            duration_ms: None,
            report: None,
        }
    }

    /// The outcome of scrubbing `bytes`, read from `input`, into `output`: scrubbed with
    /// its report and both hashes when `result` is a success, else failed with the error's
    /// code. `started` is when reading began.
    pub fn of(
        input: &Path,
        output: PathBuf,
        bytes: &[u8],
        result: &Result<crate::Scrubbed, Error>,
        started: std::time::Instant,
    ) -> Outcome {
        let mut o = match result {
            Ok(s) => Outcome {
                input: input.to_path_buf(),
                output: Some(output),
                status: Status::Scrubbed,
                reason: None,
                code: None,
                size: None,
                sha256_in: None,
                sha256_out: Some(crate::manifest::sha256_hex(&s.bytes)),
                duration_ms: None,
                report: Some(s.report.clone()),
            },
            Err(e) => Outcome::not_written(input, Status::Failed, e.to_string(), Some(e.code())),
        };
        o.size = Some(bytes.len() as u64);
        o.sha256_in = Some(crate::manifest::sha256_hex(bytes));
        o.finish(started)
    }

    /// Records how long the work since `started` took.
    pub fn finish(mut self, started: std::time::Instant) -> Outcome {
        self.duration_ms = Some((started.elapsed().as_secs_f64() * 1e4).round() / 10.0);
        self
    }
}

/// Finds every file under `inputs` and decides its output path.
pub fn plan(inputs: &[PathBuf], opts: &BatchOptions) -> Plan {
    let mut plan = Plan::default();
    let mut taken = HashSet::new();
    let mut index = 0usize;
    // Never walk into an output tree, ours or a previous run's.
    let out_roots: Vec<PathBuf> = inputs
        .iter()
        .filter(|p| p.is_dir())
        .map(|p| folder_out_root(p, opts))
        .chain(opts.out.clone())
        .filter_map(|p| fs::canonicalize(p).ok())
        .collect();
    for input in inputs {
        let meta = match fs::metadata(input) {
            Ok(m) => m,
            Err(e) => {
                plan.errors.push((input.clone(), missing_reason(input, &e)));
                continue;
            }
        };
        let mut files: Vec<(PathBuf, PathBuf)> = Vec::new(); // (file, output dir)
        if !meta.is_dir() && !meta.is_file() {
            plan.skipped
                .push((input.clone(), not_regular(&meta.file_type())));
            continue;
        }
        if meta.is_dir() {
            let root = folder_out_root(input, opts);
            let walker = walkdir::WalkDir::new(input)
                .follow_links(false)
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|e| {
                    !(e.file_type().is_dir()
                        && e.depth() > 0
                        && fs::canonicalize(e.path()).is_ok_and(|c| out_roots.contains(&c)))
                });
            for entry in walker {
                match entry {
                    Ok(e) if e.file_type().is_dir() => {}
                    Ok(e) => {
                        let rel = e.path().strip_prefix(input).unwrap_or(e.path());
                        let dir = root.join(rel.parent().unwrap_or(Path::new("")));
                        let ft = e.file_type();
                        if ft.is_file() {
                            files.push((e.into_path(), dir));
                        } else if ft.is_symlink() {
                            match fs::metadata(e.path()) {
                                Ok(m) if m.is_file() => files.push((e.into_path(), dir)),
                                Ok(m) if m.is_dir() => plan.skipped.push((
                                    e.into_path(),
                                    "symbolic link to a folder, not followed".into(),
                                )),
                                Ok(m) => plan
                                    .skipped
                                    .push((e.into_path(), not_regular(&m.file_type()))),
                                Err(err) => {
                                    let reason = missing_reason(e.path(), &err);
                                    plan.errors.push((e.into_path(), reason));
                                }
                            }
                        } else {
                            plan.skipped.push((e.into_path(), not_regular(&ft)));
                        }
                    }
                    Err(e) => plan.errors.push((
                        e.path().unwrap_or(input).to_path_buf(),
                        e.io_error().map(io_reason).unwrap_or_else(|| e.to_string()),
                    )),
                }
            }
        } else {
            let dir = opts
                .out
                .clone()
                .unwrap_or_else(|| input.parent().unwrap_or(Path::new("")).join("scrubbed"));
            files.push((input.clone(), dir));
        }
        for (file, dir) in files {
            let ext = file
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_string();
            let sniffed = sniff_file(&file);
            let out_ext = match sniffed {
                Some(f) if f.output().matches_extension(&ext) => ext.clone(),
                Some(f) => f.output().extension().to_string(),
                None if Format::is_image_extension(&ext) => ext.clone(),
                None => {
                    plan.skipped.push((file, "not an image".into()));
                    continue;
                }
            };
            index += 1;
            let stem: OsString = match opts.rename {
                Rename::Keep => file
                    .file_stem()
                    .map(OsStr::to_os_string)
                    .unwrap_or_else(|| "image".into()),
                Rename::Random => random_name().into(),
                Rename::Index => format!("{index:04}").into(),
            };
            let output = unique(&dir, &stem, &out_ext, &mut taken);
            plan.jobs.push(Job {
                input: file,
                output,
                corrections: Corrections::default(),
            });
        }
    }
    plan
}

/// The output name of `input` (a path relative to an archive's root) for the Spark and Ray
/// jobs, which name every output from its input alone so that a retried task writes the
/// same file: the same path when its extension suits `output`, the output's format, else
/// with that format's extension added after it (`scan.tif` gives `scan.tif.png`), so that no
/// two inputs can share an output name.
pub fn archive_name(input: &Path, output: Format) -> PathBuf {
    let ext = input.extension().and_then(OsStr::to_str).unwrap_or("");
    if output.matches_extension(ext) {
        return input.to_path_buf();
    }
    let mut name = input.as_os_str().to_os_string();
    name.push(".");
    name.push(output.extension());
    PathBuf::from(name)
}

fn folder_out_root(folder: &Path, opts: &BatchOptions) -> PathBuf {
    // Paths stay as the user wrote them; only `.`, `..` and `/` need resolving for a name.
    let abs = fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf());
    let (name, parent) = match (folder.file_name(), folder.parent()) {
        (Some(n), Some(p)) => (n.to_string_lossy().into_owned(), p.to_path_buf()),
        _ => (
            abs.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "root".into()),
            abs.parent().unwrap_or(Path::new("/")).to_path_buf(),
        ),
    };
    match &opts.out {
        Some(out) => out.join(name),
        None => parent.join(format!("{name}-scrubbed")),
    }
}

fn unique(dir: &Path, stem: &OsStr, ext: &str, taken: &mut HashSet<PathBuf>) -> PathBuf {
    let with_ext = |suffix: &str| {
        let mut name = stem.to_os_string();
        name.push(suffix);
        if !ext.is_empty() {
            name.push(".");
            name.push(ext);
        }
        dir.join(name)
    };
    let mut candidate = with_ext("");
    let mut n = 2;
    while !taken.insert(candidate.clone()) {
        candidate = with_ext(&format!("-{n}"));
        n += 1;
    }
    candidate
}

fn random_name() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the operating system's random source is available");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Why a path that cannot be statted is missing: a dangling link says so.
fn missing_reason(path: &Path, e: &std::io::Error) -> String {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => "broken symbolic link".into(),
        _ => io_reason(e),
    }
}

/// The reason an entry that is neither a file nor a folder is skipped.
fn not_regular(ft: &fs::FileType) -> String {
    #[cfg(unix)]
    let kind = {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            "a fifo"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_block_device() || ft.is_char_device() {
            "a device"
        } else {
            "not a file"
        }
    };
    #[cfg(not(unix))]
    let kind = {
        let _ = ft;
        "not a file"
    };
    format!("not a regular file ({kind})")
}

/// Opens `path` for reading if, once links are followed, it is a regular file. The open
/// never blocks (a FIFO or a device would, before any check could run) and the type is
/// checked on the open file, so a file swapped for a FIFO after planning is refused too.
pub fn open_regular(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let f = options.open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            not_regular(&meta.file_type()),
        ));
    }
    Ok(f)
}

/// Reads enough of a file to recognise its format.
fn sniff_file(path: &Path) -> Option<Format> {
    let mut head = [0u8; 256];
    let mut f = open_regular(path).ok()?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    Format::sniff(&head[..n])
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string().to_lowercase(),
    }
}

const PART_PREFIX: &str = ".phiscrub-";
const PART_SUFFIX: &str = ".part";

/// Refuses a plan that would write anything over an input: an output that is (or links to)
/// an input file, or a record file (`what` names it: a report, a manifest) that is an
/// input, an output, or any existing file that is not one of our JSON-lines records (a shell
/// wildcard after the option makes the first photo the report). Checked before anything is
/// written; the message names the file.
pub fn check_targets(plan: &Plan, records: &[(&str, &Path)]) -> Result<(), String> {
    let inputs: Vec<&Path> = plan
        .jobs
        .iter()
        .map(|j| j.input.as_path())
        .chain(plan.skipped.iter().map(|(p, _)| p.as_path()))
        .collect();
    // Keyed by identity: a batch of an archive's worth of files is checked in linear time.
    let ids: std::collections::HashMap<FileId, &Path> = inputs
        .iter()
        .filter_map(|p| Some((file_id(p)?, *p)))
        .collect();
    let input_at = |p: &Path| ids.get(&file_id(p)?).copied();
    for job in &plan.jobs {
        if let Some(original) = input_at(&job.output) {
            return Err(format!(
                "{}: the output would replace the input {}; choose another output folder",
                crate::report::path_text(&job.output),
                crate::report::path_text(original)
            ));
        }
    }
    for &(what, report) in records {
        let name = crate::report::path_text(report);
        if let Some(original) = input_at(report) {
            return Err(format!(
                "{name}: the {what} would replace the input {}",
                crate::report::path_text(original)
            ));
        }
        let resolved = resolve(report);
        let same_name = |j: &&Job| j.output.file_name() == report.file_name();
        if plan
            .jobs
            .iter()
            .filter(same_name)
            .any(|j| resolve(&j.output) == resolved)
        {
            return Err(format!("{name}: the {what} would replace an output"));
        }
        match fs::symlink_metadata(report) {
            Err(_) => {}
            Ok(m) if m.is_dir() => return Err(format!("{name}: is a folder")),
            Ok(_) if is_report(report) => {}
            Ok(_) => {
                return Err(format!(
                    "{name}: exists and is not a phiscrub {what}; not replacing it"
                ))
            }
        }
    }
    Ok(())
}

/// A file's identity on disk (device and inode), so that links and other spellings of one
/// path compare equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileId(u64, u64);

fn file_id(p: &Path) -> Option<FileId> {
    let m = fs::metadata(p).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(FileId(m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        let c = fs::canonicalize(p).ok()?;
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        c.hash(&mut h);
        Some(FileId(0, h.finish()))
    }
}

/// `p` with its folder resolved, for comparing paths that may not exist yet.
fn resolve(p: &Path) -> PathBuf {
    let parent = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
    match p.file_name() {
        Some(n) => dir.join(n),
        None => dir,
    }
}

/// Whether an existing file is empty or a JSON-lines report of ours (its first line is an
/// object with `input` and `status`).
fn is_report(p: &Path) -> bool {
    let Ok(f) = open_regular(p) else {
        return false;
    };
    let mut head = Vec::new();
    if f.take(64 << 10).read_to_end(&mut head).is_err() {
        return false;
    }
    if head.is_empty() {
        return true;
    }
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    serde_json::from_slice::<serde_json::Value>(first)
        .is_ok_and(|v| v.get("input").is_some() && v.get("status").is_some())
}

/// A JSON-lines report written as files finish: each line is written whole and flushed, so
/// the file is a faithful record of what is done at any moment, even if the run is killed.
#[derive(Debug)]
pub struct ReportFile {
    file: std::sync::Mutex<fs::File>,
}

impl ReportFile {
    /// Creates (or empties) the report file.
    pub fn create(path: &Path) -> std::io::Result<ReportFile> {
        Ok(ReportFile {
            file: std::sync::Mutex::new(fs::File::create(path)?),
        })
    }

    /// Appends one outcome as one line.
    pub fn append(&self, o: &Outcome) -> std::io::Result<()> {
        append_line(&self.file, o, false)
    }
}

/// Writes `value` as one JSON line with a single write, so that lines from parallel workers
/// never interleave; with `sync`, it is on disk before this returns.
pub(crate) fn append_line(
    file: &std::sync::Mutex<fs::File>,
    value: &impl Serialize,
    sync: bool,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut f = file
        .lock()
        .map_err(|_| std::io::Error::other("record writer poisoned"))?;
    f.write_all(&line)?;
    if sync {
        f.sync_data()
    } else {
        f.flush()
    }
}

/// Removes the temporary files an interrupted run left in `dirs` (ours are named
/// `.phiscrub-XXXXXX.part`). A file another run is still writing holds a lock and is left
/// alone. Returns how many were removed.
pub fn remove_stale_parts<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> usize {
    let mut seen = HashSet::new();
    let mut removed = 0;
    for dir in dirs {
        if !seen.insert(dir.to_path_buf()) {
            continue;
        }
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let ours = name.starts_with(PART_PREFIX)
                && name.ends_with(PART_SUFFIX)
                && name.len() == PART_PREFIX.len() + 6 + PART_SUFFIX.len();
            if !ours || !e.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let Ok(f) = open_regular(&e.path()) else {
                continue;
            };
            if f.try_lock().is_ok() && fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// The reason given for a file skipped because its output already exists; a front-end adds
/// how to replace it.
pub const OUTPUT_EXISTS: &str = "output exists";

/// Scrubs one job: reads the input (bounded by the input size limit), scrubs and verifies it,
/// and writes the output atomically. Nothing is written unless every step succeeded.
pub fn process(scrubber: &Scrubber, job: &Job, opts: &BatchOptions) -> Outcome {
    let started = std::time::Instant::now();
    let fail = |e: Error| {
        Outcome::not_written(&job.input, Status::Failed, e.to_string(), Some(e.code()))
            .finish(started)
    };
    // Checked first to save the work, and again by the no-clobber rename in case another
    // process created the file meanwhile.
    let exists = || Outcome::not_written(&job.input, Status::Skipped, OUTPUT_EXISTS.into(), None);
    if !opts.overwrite && !opts.resume && job.output.exists() {
        return exists();
    }
    let bytes = match read_limited(&job.input, scrubber.options().limits.max_input_bytes) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let result = scrubber.scrub_corrected(&bytes, &job.corrections);
    let outcome = Outcome::of(&job.input, job.output.clone(), &bytes, &result, started);
    let Ok(scrubbed) = result else {
        return outcome;
    };
    match write_atomic(&job.output, &scrubbed.bytes, opts.overwrite) {
        Ok(true) => outcome.finish(started),
        Ok(false) if opts.resume && fs::read(&job.output).is_ok_and(|b| b == scrubbed.bytes) => {
            outcome.finish(started)
        }
        Ok(false) => exists(),
        Err(e) => fail(Error::Io(e)),
    }
}

/// A person's corrections per file, as a `--regions` file gives them: a JSON object whose
/// keys are file paths. Each value is either a list of `[x, y, width, height]` boxes to cover,
/// in the pixels of the upright image as it is displayed, or an object
/// `{"cover": [[x, y, w, h], ...], "keep": ["text-120-80-200-60", ...]}` that also names regions
/// from an earlier report to leave uncovered.
pub type RegionsFile = std::collections::BTreeMap<PathBuf, Corrections>;

/// One file's entry in a regions file.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum RegionsEntry {
    Boxes(Vec<[f64; 4]>),
    Full {
        #[serde(default)]
        cover: Vec<[f64; 4]>,
        #[serde(default)]
        keep: Vec<String>,
    },
}

/// Reads a regions file. Boxes must have a positive width and height; ids must look like
/// region ids.
pub fn read_regions(path: &Path) -> Result<RegionsFile, String> {
    let text = fs::read_to_string(path).map_err(|e| io_reason(&e))?;
    let raw: std::collections::BTreeMap<String, RegionsEntry> = serde_json::from_str(&text)
        .map_err(|e| {
            format!(
                "not a regions file ({{\"path\": [[x, y, w, h], ...]}} or \
                 {{\"path\": {{\"cover\": [[x, y, w, h], ...], \"keep\": [\"id\", ...]}}}}): {e}"
            )
        })?;
    let mut out = RegionsFile::new();
    for (file, entry) in raw {
        let (boxes, keep) = match entry {
            RegionsEntry::Boxes(b) => (b, Vec::new()),
            RegionsEntry::Full { cover, keep } => (cover, keep),
        };
        let mut fix = Corrections::default();
        for [x, y, w, h] in boxes {
            let rect = Rect::given(x, y, w, h)
                .ok_or_else(|| format!("{file}: box [{x}, {y}, {w}, {h}] has no area"))?;
            fix.cover.push(rect);
        }
        for id in keep {
            fix.keep
                .insert(id.parse().map_err(|e| format!("{file}: {e}"))?);
        }
        out.insert(PathBuf::from(file), fix);
    }
    Ok(out)
}

impl Plan {
    /// Keeps only the jobs, skipped files and errors whose input path passes `keep`.
    pub fn retain(&mut self, mut keep: impl FnMut(&Path) -> bool) {
        self.jobs.retain(|j| keep(&j.input));
        self.skipped.retain(|(p, _)| keep(p));
        self.errors.retain(|(p, _)| keep(p));
    }

    /// Gives each job the corrections keyed by its input path (as typed, or any trailing
    /// part of it such as the file name). Returns the keys that matched no job, which the
    /// caller should treat as an error: a box meant for a file must not be silently lost.
    pub fn attach_regions(&mut self, regions: &RegionsFile) -> Vec<PathBuf> {
        let mut unmatched = Vec::new();
        for (key, fix) in regions {
            let mut hit = false;
            for job in &mut self.jobs {
                if job.input == *key || job.input.ends_with(key) {
                    job.corrections.cover.extend_from_slice(&fix.cover);
                    job.corrections.keep.extend(fix.keep.iter().cloned());
                    hit = true;
                }
            }
            if !hit {
                unmatched.push(key.clone());
            }
        }
        unmatched
    }
}

/// Reads a whole regular file of at most `max` bytes. A bigger file is refused from its
/// size, unread.
pub fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, Error> {
    let f =
        open_regular(path).map_err(|e| Error::Io(std::io::Error::new(e.kind(), io_reason(&e))))?;
    let size = f.metadata()?.len();
    if size > max {
        return Err(Error::limit(
            Limit::InputBytes,
            format!("{size} bytes exceeds the {max} byte input limit"),
        ));
    }
    let mut buf = Vec::with_capacity(size as usize);
    // A file growing while it is read is still cut at the limit.
    f.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(Error::limit(
            Limit::InputBytes,
            format!("file exceeds the {max} byte input limit"),
        ));
    }
    Ok(buf)
}

/// Writes through a temporary file in the target folder and renames it into place, so an
/// interrupted run never leaves a partial file under the final name. The file gets fresh
/// timestamps and ordinary permissions. Returns `Ok(false)` when the target exists and
/// `overwrite` is off.
pub fn write_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> std::io::Result<bool> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(PART_PREFIX)
        .suffix(PART_SUFFIX)
        .tempfile_in(dir)?;
    // Held until the file is renamed into place: a later run tells a live temporary file
    // from one left by a killed run by whether it can take this lock.
    tmp.as_file().lock()?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    let done = if overwrite {
        tmp.persist(path).map(|_| ())
    } else {
        tmp.persist_noclobber(path).map(|_| ())
    };
    match done {
        Ok(()) => Ok(true),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e.error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_goes_to_sibling_and_loose_files_to_scrubbed() {
        let t = tempfile::tempdir().unwrap();
        let x = t.path().join("ward");
        fs::create_dir_all(x.join("bed 4")).unwrap();
        fs::write(x.join("bed 4/a.jpeg"), b"\xFF\xD8\xFF\xE0").unwrap();
        fs::write(x.join("notes.txt"), b"hello").unwrap();
        fs::write(t.path().join("b.HEIC"), b"").unwrap();
        let plan = plan(
            &[x.clone(), t.path().join("b.HEIC")],
            &BatchOptions::default(),
        );
        let x = fs::canonicalize(&x).unwrap();
        assert_eq!(plan.jobs.len(), 2);
        assert_eq!(
            plan.jobs[0].output,
            x.parent().unwrap().join("ward-scrubbed/bed 4/a.jpeg")
        );
        // An empty file named like an image is attempted (and will fail), not skipped.
        assert_eq!(plan.jobs[1].output, t.path().join("scrubbed/b.HEIC"));
        assert_eq!(plan.skipped.len(), 1);
    }

    #[test]
    fn dot_is_named_after_the_folder_it_stands_for() {
        let t = tempfile::tempdir().unwrap();
        let x = t.path().join("clinic");
        fs::create_dir_all(&x).unwrap();
        let root = folder_out_root(&x.join("."), &BatchOptions::default());
        assert_eq!(
            fs::canonicalize(root.parent().unwrap()).unwrap(),
            fs::canonicalize(t.path()).unwrap()
        );
        assert_eq!(root.file_name().unwrap(), "clinic-scrubbed");
    }

    #[test]
    fn archive_names_keep_the_input_path_and_never_collide() {
        let name = |p: &str, f| archive_name(Path::new(p), f);
        assert_eq!(name("ward/a.JPEG", Format::Jpeg), Path::new("ward/a.JPEG"));
        assert_eq!(name("ward/a.tif", Format::Png), Path::new("ward/a.tif.png"));
        assert_eq!(
            name("ward/a.png", Format::Jpeg),
            Path::new("ward/a.png.jpg")
        );
        assert_eq!(name("ward/a", Format::Jpeg), Path::new("ward/a.jpg"));
    }

    #[test]
    fn colliding_names_get_suffixes() {
        let mut taken = HashSet::new();
        let d = Path::new("o");
        let a = OsStr::new("a");
        assert_eq!(unique(d, a, "jpg", &mut taken), d.join("a.jpg"));
        assert_eq!(unique(d, a, "jpg", &mut taken), d.join("a-2.jpg"));
    }

    #[test]
    fn write_atomic_never_clobbers_without_overwrite() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("o.jpg");
        assert!(write_atomic(&p, b"one", false).unwrap());
        assert!(!write_atomic(&p, b"two", false).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert!(write_atomic(&p, b"two", true).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let leftovers = fs::read_dir(t.path()).unwrap().count();
        assert_eq!(leftovers, 1);
    }

    #[test]
    fn a_temporary_file_still_being_written_is_not_removed() {
        let t = tempfile::tempdir().unwrap();
        let busy = t.path().join(".phiscrub-aaaaaa.part");
        let stale = t.path().join(".phiscrub-bbbbbb.part");
        let other = t.path().join(".phiscrub-notes.txt");
        for p in [&busy, &stale, &other] {
            fs::write(p, b"x").unwrap();
        }
        let writer = fs::File::open(&busy).unwrap();
        writer.lock().unwrap();
        assert_eq!(remove_stale_parts([t.path()]), 1);
        assert!(busy.exists() && other.exists() && !stale.exists());
        drop(writer);
        assert_eq!(remove_stale_parts([t.path()]), 1);
        assert!(!busy.exists());
    }

    #[test]
    fn a_report_may_replace_only_an_earlier_report() {
        let t = tempfile::tempdir().unwrap();
        let photo = t.path().join("a.jpg");
        fs::write(&photo, b"\xFF\xD8\xFF\xE0").unwrap();
        let plan = plan(std::slice::from_ref(&photo), &BatchOptions::default());
        let old = t.path().join("old.jsonl");
        fs::write(&old, b"{\"input\":\"x.jpg\",\"status\":\"scrubbed\"}\n").unwrap();
        let notes = t.path().join("notes.txt");
        fs::write(&notes, b"ward round notes").unwrap();
        assert!(check_targets(&plan, &[("report", &old)]).is_ok());
        assert!(check_targets(&plan, &[("report", &t.path().join("new.jsonl"))]).is_ok());
        assert!(check_targets(&plan, &[("report", &notes)]).is_err());
        assert!(check_targets(&plan, &[("manifest", &photo)]).is_err());
        assert!(check_targets(&plan, &[("report", &plan.jobs[0].output)]).is_err());
    }
}
