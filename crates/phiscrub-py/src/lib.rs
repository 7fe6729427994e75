//! `phiscrub._phiscrub`: the engine behind the `phiscrub` Python package. The Python side
//! (`python/phiscrub`) holds the public classes, the exceptions and the Spark and Ray jobs;
//! this module builds a [`phiscrub::Scrubber`] from keyword options and runs it with the GIL
//! released. Reports cross as JSON text, decoded on the Python side.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

use phiscrub::batch::{archive_name, Outcome};
use phiscrub::detect::{
    Categories, Engine as DetectEngine, EngineConfig, FaceParams, Rect, RegionKind, TextParams,
};
use phiscrub::manifest::{self, Record};
use phiscrub::redact::{Redaction, Rgb, Shape, StyleRule};
use phiscrub::{Corrections, Error, Limits, Options, Scrubber};

/// Raises the `phiscrub` exception class for `e`'s stable code (`MalformedError` for
/// `malformed`, ...), all subclasses of `phiscrub.ScrubError`.
fn raise(py: Python<'_>, e: &Error) -> PyErr {
    let made = py
        .import("phiscrub._errors")
        .and_then(|m| m.getattr("for_code"))
        .and_then(|f| f.call1((e.code(), e.to_string())));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn kinds(names: Option<Vec<String>>, option: &str) -> PyResult<Vec<RegionKind>> {
    names
        .unwrap_or_default()
        .iter()
        .map(|n| {
            RegionKind::from_name(n.trim())
                .filter(|k| RegionKind::DETECTED.contains(k))
                .ok_or_else(|| {
                    value_error(format!(
                        "{option}: unknown category '{n}' (face, text, barcode)"
                    ))
                })
        })
        .collect()
}

/// A caller's corrections: boxes `[x, y, w, h]` to cover and region ids to keep.
fn corrections(cover: Vec<[f64; 4]>, keep: Vec<String>) -> PyResult<Corrections> {
    let mut fix = Corrections::default();
    for [x, y, w, h] in cover {
        fix.cover.push(
            Rect::given(x, y, w, h)
                .ok_or_else(|| value_error(format!("box [{x}, {y}, {w}, {h}] has no area")))?,
        );
    }
    for id in keep {
        fix.keep.insert(id.parse().map_err(value_error)?);
    }
    Ok(fix)
}

/// The scrubber, built once from keyword options; see `phiscrub.Scrubber` for each.
#[pyclass(module = "phiscrub._phiscrub", frozen)]
struct Engine {
    scrubber: Arc<Scrubber>,
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (
        *, ort_lib=None, models=None, threads=1, metadata_only=false, only=None, skip=None,
        style=None, fill_color=None, shape=None, reencode=false, jpeg_quality=None,
        timeout=None, face_threshold=None, rotations=true, text_blocks=true,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        ort_lib: Option<PathBuf>,
        models: Option<PathBuf>,
        threads: usize,
        metadata_only: bool,
        only: Option<Vec<String>>,
        skip: Option<Vec<String>>,
        style: Option<Vec<String>>,
        fill_color: Option<String>,
        shape: Option<String>,
        reencode: bool,
        jpeg_quality: Option<u8>,
        timeout: Option<f64>,
        face_threshold: Option<f32>,
        rotations: bool,
        text_blocks: bool,
    ) -> PyResult<Engine> {
        let mut redaction = Redaction::default();
        if let Some(c) = fill_color {
            redaction.fill = c.parse::<Rgb>().map_err(value_error)?.0;
        }
        if let Some(s) = shape {
            redaction.shape = s.parse::<Shape>().map_err(value_error)?;
        }
        let rules = style
            .unwrap_or_default()
            .iter()
            .map(|r| r.parse::<StyleRule>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(value_error)?;
        redaction.apply(&rules);
        if jpeg_quality.is_some_and(|q| !(1..=100).contains(&q)) {
            return Err(value_error("jpeg_quality must be between 1 and 100"));
        }
        let defaults = Limits::default();
        let timeout = match timeout {
            None => defaults.timeout,
            Some(0.0) => None,
            Some(t) if t.is_finite() && t > 0.0 => Some(std::time::Duration::from_secs_f64(t)),
            Some(t) => {
                return Err(value_error(format!(
                    "timeout {t} is not a number of seconds"
                )))
            }
        };
        let options = Options {
            reencode,
            jpeg_quality,
            redaction,
            limits: Limits {
                timeout,
                ..defaults
            },
        };
        if metadata_only {
            return Ok(Engine {
                scrubber: Arc::new(Scrubber::metadata_only(options)),
            });
        }
        let categories = Categories::choose(&kinds(only, "only")?, &kinds(skip, "skip")?)
            .ok_or_else(|| {
                value_error("skip leaves nothing to look for; use metadata_only=True")
            })?;
        let mut face = FaceParams {
            turns: rotations,
            ..FaceParams::default()
        };
        if let Some(t) = face_threshold {
            if !(t > 0.0 && t <= 1.0) {
                return Err(value_error("face_threshold must be a score in (0, 1]"));
            }
            face.review_threshold = t * face.review_threshold / face.threshold;
            face.threshold = t;
        }
        let config = EngineConfig {
            ort_lib,
            models,
            intra_threads: threads.max(1),
            categories,
            face,
            text: TextParams {
                blocks: text_blocks,
                ..TextParams::default()
            },
            barcode: Default::default(),
        };
        let engine = py
            .detach(|| DetectEngine::load(config))
            .map_err(|e| raise(py, &e))?;
        Ok(Engine {
            scrubber: Arc::new(Scrubber::new(options, Arc::new(engine))),
        })
    }

    /// Scrubs one image; returns the output bytes and the report as JSON text.
    #[pyo3(signature = (data, cover=Vec::new(), keep=Vec::new()))]
    fn scrub<'py>(
        &self,
        py: Python<'py>,
        data: PyBackedBytes,
        cover: Vec<[f64; 4]>,
        keep: Vec<String>,
    ) -> PyResult<(Bound<'py, PyBytes>, String)> {
        let fix = corrections(cover, keep)?;
        let scrubber = Arc::clone(&self.scrubber);
        let out = py
            .detach(move || scrubber.scrub_corrected(&data, &fix))
            .map_err(|e| raise(py, &e))?;
        let report = serde_json::to_string(&out.report).map_err(value_error)?;
        Ok((PyBytes::new(py, &out.bytes), report))
    }

    /// What an image holds, as JSON text, without changing it.
    fn inspect(&self, py: Python<'_>, data: PyBackedBytes) -> PyResult<String> {
        let scrubber = Arc::clone(&self.scrubber);
        let found = py
            .detach(move || scrubber.inspect(&data))
            .map_err(|e| raise(py, &e))?;
        serde_json::to_string(&found).map_err(value_error)
    }

    /// Scrubs one archive input and never raises for the image: returns the output bytes
    /// (`None` when it failed) and its manifest record as JSON text, with `output` set to
    /// the deterministic name relative to the output root.
    fn record<'py>(
        &self,
        py: Python<'py>,
        input: String,
        relative: PathBuf,
        data: PyBackedBytes,
    ) -> PyResult<(Option<Bound<'py, PyBytes>>, String)> {
        let scrubber = Arc::clone(&self.scrubber);
        let (bytes, record) = py.detach(move || {
            let started = Instant::now();
            let result = scrubber.scrub(&data);
            let output = result
                .as_ref()
                .map(|s| archive_name(&relative, s.report.output_format))
                .unwrap_or_default();
            let o = Outcome::of(Path::new(&input), output, &data, &result, started);
            (result.ok().map(|s| s.bytes), Record::new(&o, &scrubber))
        });
        let record = serde_json::to_string(&record).map_err(value_error)?;
        Ok((bytes.map(|b| PyBytes::new(py, &b)), record))
    }

    /// The models this engine runs, by name, with their sha256.
    #[getter]
    fn models(&self) -> std::collections::BTreeMap<String, String> {
        manifest::models(&self.scrubber)
    }

    /// The ONNX Runtime library loaded, or `None` for metadata only.
    #[getter]
    fn runtime(&self) -> Option<PathBuf> {
        self.scrubber.engine().map(|e| e.runtime().0.to_path_buf())
    }
}

#[pymodule]
fn _phiscrub(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add("__version__", manifest::VERSION)?;
    Ok(())
}
