//! Files and folders: where each scrubbed copy goes, reading with limits, and atomic writes.
//! The caller (the binary, a service) decides how to run jobs in parallel and what to print.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::detect::Rect;
use crate::formats::Format;
use crate::report::Report;
use crate::{Error, Scrubber};

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
}

/// One file to scrub and where its output goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The input file.
    pub input: PathBuf,
    /// The output file.
    pub output: PathBuf,
    /// Extra boxes to cover, in upright image pixels (from a regions file).
    pub manual: Vec<Rect>,
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
    /// What was done, when it was scrubbed.
    #[serde(flatten)]
    pub report: Option<Report>,
}

/// Paths that are not UTF-8 are reported lossily rather than failing the whole report.
fn lossy_path<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
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
            report: None,
        }
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
                plan.errors.push((input.clone(), io_reason(&e)));
                continue;
            }
        };
        let mut files: Vec<(PathBuf, PathBuf)> = Vec::new(); // (file, output dir)
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
                    Ok(e) if e.file_type().is_file() => {
                        let rel = e.path().strip_prefix(input).unwrap_or(e.path());
                        let dir = root.join(rel.parent().unwrap_or(Path::new("")));
                        files.push((e.into_path(), dir));
                    }
                    Ok(_) => {}
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
                manual: Vec::new(),
            });
        }
    }
    plan
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

/// Reads enough of a file to recognise its format.
fn sniff_file(path: &Path) -> Option<Format> {
    let mut head = [0u8; 256];
    let mut f = fs::File::open(path).ok()?;
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

/// Scrubs one job: reads the input (bounded by the input size limit), scrubs and verifies it,
/// and writes the output atomically. Nothing is written unless every step succeeded.
pub fn process(scrubber: &Scrubber, job: &Job, opts: &BatchOptions) -> Outcome {
    let fail =
        |e: Error| Outcome::not_written(&job.input, Status::Failed, e.to_string(), Some(e.code()));
    // Checked first to save the work, and again by the no-clobber rename in case another
    // process created the file meanwhile.
    let exists = || {
        Outcome::not_written(
            &job.input,
            Status::Skipped,
            "output exists (use --overwrite to replace it)".into(),
            None,
        )
    };
    if !opts.overwrite && job.output.exists() {
        return exists();
    }
    let bytes = match read_limited(&job.input, scrubber.options().limits.max_input_bytes) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let scrubbed = match scrubber.scrub_with(&bytes, &job.manual) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match write_atomic(&job.output, &scrubbed.bytes, opts.overwrite) {
        Ok(true) => Outcome {
            input: job.input.clone(),
            output: Some(job.output.clone()),
            status: Status::Scrubbed,
            reason: None,
            code: None,
            report: Some(scrubbed.report),
        },
        Ok(false) => exists(),
        Err(e) => fail(Error::Io(e)),
    }
}

/// Manual regions per file, as a `--regions` file gives them: a JSON object whose keys are
/// file paths and whose values are lists of `[x, y, width, height]` boxes in the pixels of
/// the upright image, as it is displayed.
pub type RegionsFile = std::collections::BTreeMap<PathBuf, Vec<Rect>>;

/// Reads a regions file. Boxes must have a positive width and height.
pub fn read_regions(path: &Path) -> Result<RegionsFile, String> {
    let text = fs::read_to_string(path).map_err(|e| io_reason(&e))?;
    let raw: std::collections::BTreeMap<String, Vec<[f64; 4]>> = serde_json::from_str(&text)
        .map_err(|e| format!("not a regions file ({{\"path\": [[x, y, w, h], ...]}}): {e}"))?;
    let mut out = RegionsFile::new();
    for (file, boxes) in raw {
        let mut rects = Vec::with_capacity(boxes.len());
        for [x, y, w, h] in boxes {
            if !(w > 0.0
                && h > 0.0
                && x.is_finite()
                && y.is_finite()
                && w.is_finite()
                && h.is_finite())
            {
                return Err(format!("{file}: box [{x}, {y}, {w}, {h}] has no area"));
            }
            rects.push(Rect::xywh(x as f32, y as f32, w as f32, h as f32));
        }
        out.insert(PathBuf::from(file), rects);
    }
    Ok(out)
}

impl Plan {
    /// Gives each job the manual regions keyed by its input path (as typed, or any trailing
    /// part of it such as the file name). Returns the keys that matched no job, which the
    /// caller should treat as an error: a box meant for a file must not be silently lost.
    pub fn attach_regions(&mut self, regions: &RegionsFile) -> Vec<PathBuf> {
        let mut unmatched = Vec::new();
        for (key, rects) in regions {
            let mut hit = false;
            for job in &mut self.jobs {
                if job.input == *key || job.input.ends_with(key) {
                    job.manual.extend_from_slice(rects);
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

fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, Error> {
    let f = fs::File::open(path)
        .map_err(|e| Error::Io(std::io::Error::new(e.kind(), io_reason(&e))))?;
    let mut buf = Vec::new();
    f.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(Error::Limits(format!(
            "file exceeds the {max} byte input limit"
        )));
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
        .prefix(".phiscrub-")
        .suffix(".part")
        .tempfile_in(dir)?;
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
}
