//! The audit manifest of an archive run: one flat [`Record`] per input, the same whether it
//! is a line of the CLI's `--manifest` file or a row of the Parquet manifest the Spark and Ray
//! jobs append. A record holds hashes, counts and codes, never a metadata value or a pixel,
//! so the manifest can be kept and shared with the audit trail.
//!
//! Also here: the stable hash that splits a batch into shards, and reading back what a
//! manifest shows done so that a rerun resumes where a killed one stopped.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::batch::{Outcome, Status};
use crate::detect::RegionKind;
use crate::report::{self, path_text};
use crate::Scrubber;

/// The phiscrub version written into every record.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One input's line in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// The input path (or URI, for the Spark and Ray jobs), as the run named it.
    pub input: String,
    /// Where the scrubbed copy was written; absent when none was.
    pub output: Option<String>,
    /// The input's size in bytes, when it could be read.
    pub size: Option<u64>,
    /// sha256 of the input, lowercase hex.
    pub sha256_in: Option<String>,
    /// sha256 of the output.
    pub sha256_out: Option<String>,
    /// `scrubbed`, `failed` or `skipped`.
    pub status: Status,
    /// The stable error code of a failure (`malformed`, `limits`, ...).
    pub code: Option<String>,
    /// Why it failed or was skipped, in words that carry no patient data.
    pub reason: Option<String>,
    /// `lossless` (the picture data kept byte for byte) or `reencoded`.
    pub route: Option<report::Path>,
    /// Faces covered.
    pub faces: u32,
    /// Text areas covered.
    pub text: u32,
    /// Codes covered.
    pub barcodes: u32,
    /// Boxes a person asked for, covered.
    pub manual: u32,
    /// Whether candidates under a threshold were left for a person to look at.
    pub needs_review: bool,
    /// The models that ran, by name, with their sha256.
    pub models: BTreeMap<String, String>,
    /// The phiscrub version that wrote the record.
    pub version: String,
    /// Milliseconds spent reading, scrubbing and writing.
    pub duration_ms: Option<f64>,
}

impl Record {
    /// The record of `o`, scrubbed by `scrubber`.
    pub fn new(o: &Outcome, scrubber: &Scrubber) -> Record {
        let count = |k: RegionKind| {
            o.report.as_ref().map_or(0, |r| {
                r.regions.iter().filter(|x| x.category == k).count() as u32
            })
        };
        Record {
            input: path_text(&o.input),
            output: o.output.as_deref().map(path_text),
            size: o.size,
            sha256_in: o.sha256_in.clone(),
            sha256_out: o.sha256_out.clone(),
            status: o.status,
            code: o.code.map(str::to_string),
            reason: o.reason.clone(),
            route: o.report.as_ref().map(|r| r.path),
            faces: count(RegionKind::Face),
            text: count(RegionKind::Text),
            barcodes: count(RegionKind::Barcode),
            manual: count(RegionKind::Manual),
            needs_review: o.report.as_ref().is_some_and(|r| r.needs_review),
            models: models(scrubber),
            version: VERSION.to_string(),
            duration_ms: o.duration_ms,
        }
    }
}

/// The models a scrubber runs, by name, with their sha256; empty for metadata only.
pub fn models(scrubber: &Scrubber) -> BTreeMap<String, String> {
    #[cfg(feature = "detect")]
    if let Some(engine) = scrubber.engine() {
        return engine
            .models()
            .into_iter()
            .map(|m| (m.name.clone(), m.sha256.clone()))
            .collect();
    }
    let _ = scrubber;
    BTreeMap::new()
}

/// sha256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Which of `count` shards `path` belongs to: the first eight bytes of the sha256 of its
/// text, read big-endian, modulo `count`. The same path gives the same shard on every
/// machine and in every run, so workers of a Slurm array or a Kubernetes Indexed Job, given
/// the same paths and each its own index, cover the inputs exactly once between them.
pub fn shard_of(path: &Path, count: u32) -> u32 {
    let digest = Sha256::digest(path_text(path).as_bytes());
    let head = u64::from_be_bytes(digest[..8].try_into().expect("sha256 has 32 bytes"));
    (head % u64::from(count.max(1))) as u32
}

/// A shard given as `I/N`: index `I` (from 0) of `N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This worker's index, below `count`.
    pub index: u32,
    /// How many shards there are.
    pub count: u32,
}

impl Shard {
    /// Whether `path` is this shard's.
    pub fn holds(&self, path: &Path) -> bool {
        shard_of(path, self.count) == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("'{s}' is not a shard: give INDEX/COUNT, such as 0/4");
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(format!(
                "shard '{s}': the index counts from 0 and must be below the count"
            ));
        }
        Ok(Shard { index, count })
    }
}

/// The inputs a manifest shows finished: scrubbed, skipped (not an image, or its output
/// already there), and also failed unless `retry_failed`.
/// A missing manifest shows nothing done. A last line cut short by a killed run is ignored;
/// any other line that is not a record is an error, since resuming from a file that is not
/// our manifest could skip work.
pub fn done(path: &Path, retry_failed: bool) -> std::io::Result<HashSet<String>> {
    let mut text = String::new();
    match fs::File::open(path) {
        Ok(mut f) => f.read_to_string(&mut text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(e),
    };
    #[derive(serde::Deserialize)]
    struct Line {
        input: String,
        status: String,
    }
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut done = HashSet::new();
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let last_cut = n + 1 == lines.len() && !complete;
        match serde_json::from_str::<Line>(line) {
            Ok(l) => {
                if l.status != "failed" || !retry_failed {
                    done.insert(l.input);
                }
            }
            Err(_) if last_cut => {}
            Err(e) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("line {} is not a manifest record: {e}", n + 1),
                ))
            }
        }
    }
    Ok(done)
}

/// A manifest opened for appending: each record is written as one whole line and flushed to
/// disk before the next file is counted done.
#[derive(Debug)]
pub struct ManifestFile {
    file: std::sync::Mutex<fs::File>,
}

impl ManifestFile {
    /// Opens `path` for appending, creating it. A last line cut short by a killed run is
    /// cut off, so that the next record starts on a line of its own: the file it named was
    /// not counted done, and will be recorded again.
    pub fn append_to(path: &Path) -> std::io::Result<ManifestFile> {
        use std::io::{Seek, SeekFrom};
        let mut file = fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let len = file.metadata()?.len();
        // A record is well under this; the tail holds the last line's start.
        let from = len.saturating_sub(1 << 16);
        let mut tail = Vec::new();
        file.seek(SeekFrom::Start(from))?;
        file.read_to_end(&mut tail)?;
        if !tail.is_empty() && !tail.ends_with(b"\n") {
            match tail.iter().rposition(|&b| b == b'\n') {
                Some(i) => file.set_len(from + i as u64 + 1)?,
                None if from == 0 => file.set_len(0)?,
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "the last line is too long to be a manifest record",
                    ))
                }
            }
        }
        Ok(ManifestFile {
            file: std::sync::Mutex::new(file),
        })
    }

    /// Appends one record.
    pub fn append(&self, r: &Record) -> std::io::Result<()> {
        crate::batch::append_line(&self.file, r, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn shards_split_paths_stably_and_completely() {
        let paths: Vec<std::path::PathBuf> = (0..400)
            .map(|i| format!("ward/bed {i}/IMG_{i:04}.jpg").into())
            .collect();
        let mut sizes = [0usize; 3];
        for p in &paths {
            let s = shard_of(p, 3);
            assert_eq!(s, shard_of(p, 3));
            sizes[s as usize] += 1;
        }
        assert_eq!(sizes.iter().sum::<usize>(), 400);
        assert!(sizes.iter().all(|&n| n > 100), "{sizes:?}");
        // The hash is fixed by its definition, not by this build.
        assert_eq!(shard_of(Path::new("a.jpg"), 1 << 31), 0x41a7_c3ba);
        assert_eq!(shard_of(Path::new("a.jpg"), 3), 1);
    }

    #[test]
    fn shard_text_is_checked() {
        assert_eq!(
            "1/4".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 4 }
        );
        for bad in ["4/4", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cut_last_line_is_ignored_then_cut_off() {
        let t = tempfile::tempdir().unwrap();
        let m = t.path().join("m.jsonl");
        fs::write(
            &m,
            "{\"input\":\"a.jpg\",\"status\":\"scrubbed\"}\n\
             {\"input\":\"b.jpg\",\"status\":\"failed\"}\n{\"input\":\"c.j",
        )
        .unwrap();
        let all = done(&m, false).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(done(&m, true).unwrap().len(), 1);
        let f = ManifestFile::append_to(&m).unwrap();
        let text = fs::read_to_string(&m).unwrap();
        assert!(text.ends_with("\"failed\"}\n"), "{text}");
        let line = "{\"input\":\"c.jpg\",\"status\":\"scrubbed\"}\n";
        f.file.lock().unwrap().write_all(line.as_bytes()).unwrap();
        assert_eq!(done(&m, false).unwrap().len(), 3);
        assert!(done(&t.path().join("none.jsonl"), false)
            .unwrap()
            .is_empty());
    }
}
