//! Finding what identifies a person in the pixels. Detectors sit behind the small [`Model`]
//! trait so their pre- and post-processing can be tested with a fake network; the [`Engine`]
//! owns the real ONNX Runtime sessions and hands back [`Region`]s in upright original pixels.

pub mod face;
pub mod geometry;
pub mod runtime;
pub mod search;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use image::RgbImage;
use serde::Serialize;

pub use face::FaceParams;
pub use geometry::Rect;
pub use runtime::{ModelFile, OrtSource};

use crate::Error;

/// A dense float tensor: row-major `data` of `shape`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// A network: one input tensor in, its outputs out, in the model's declared order. The real
/// one is an ONNX Runtime session; unit tests use fakes.
pub trait Model: Send {
    /// Runs the network once.
    fn run(&mut self, input: &Tensor) -> Result<Vec<Tensor>, String>;
}

/// What a region covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegionKind {
    /// A face found by the face detector.
    Face,
    /// A box the user gave (`--regions`), for what detectors miss.
    Manual,
}

impl std::fmt::Display for RegionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RegionKind::Face => "face",
            RegionKind::Manual => "manual",
        })
    }
}

/// An area of the upright image to cover, or to review.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// What it is.
    pub kind: RegionKind,
    /// The area, in upright original-image pixels, margins included and clamped to the image.
    pub rect: Rect,
    /// The detector's score; `None` for manual regions.
    pub score: Option<f32>,
    /// Which detector found it (`centerface`, `manual`).
    pub detector: String,
    /// sha256 of the model that found it.
    pub model_sha256: Option<String>,
}

/// What detection found in one image.
#[derive(Debug, Clone, Default)]
pub struct Detections {
    /// Regions to cover.
    pub regions: Vec<Region>,
    /// Candidates just under the threshold: not covered, but the file needs a human look.
    pub review: Vec<Region>,
    /// Limits applied to the search, for the report.
    pub notes: Vec<String>,
}

/// Where to find the runtime and models, and how to detect.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// The ONNX Runtime library; default: `ORT_DYLIB_PATH`, beside the executable, then the
    /// folder `scripts/fetch-onnxruntime` installs to ([`runtime::locate`]).
    pub ort_lib: Option<PathBuf>,
    /// A models folder with its own `MANIFEST`; default: the models built into the binary.
    pub models: Option<PathBuf>,
    /// ONNX Runtime threads per session. Default 0 means 1; the caller budgets these against
    /// its own worker threads so that the total matches the cores it was given.
    pub intra_threads: usize,
    /// Face detection tuning.
    pub face: FaceParams,
}

/// The detectors, loaded once and shared by all workers. Each worker borrows a session from
/// a small pool, so at most one session exists per concurrent caller.
pub struct Engine {
    env: &'static ort::environment::Environment,
    ort_lib: (PathBuf, OrtSource),
    face_model: ModelFile,
    config: EngineConfig,
    pool: Mutex<Vec<runtime::OrtModel>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("ort_lib", &self.ort_lib)
            .field("face_model", &self.face_model.origin)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Loads ONNX Runtime and every model, and makes one session of each to prove they run.
    /// Any failure here means no file should be touched.
    pub fn load(config: EngineConfig) -> Result<Engine, Error> {
        let ort_lib = runtime::locate(config.ort_lib.as_deref())?;
        let env = runtime::environment(&ort_lib.0)?;
        let face_model = runtime::load_model("centerface", config.models.as_deref())?;
        let first = runtime::OrtModel::new(env, &face_model, config.intra_threads)?;
        Ok(Engine {
            env,
            ort_lib,
            face_model,
            config,
            pool: Mutex::new(vec![first]),
        })
    }

    /// The ONNX Runtime library in use and how it was found.
    pub fn runtime(&self) -> (&Path, OrtSource) {
        (&self.ort_lib.0, self.ort_lib.1)
    }

    /// The models in use.
    pub fn models(&self) -> Vec<&ModelFile> {
        vec![&self.face_model]
    }

    /// Detectors this engine runs, for reports.
    pub fn detectors(&self) -> Vec<String> {
        vec!["centerface".to_string()]
    }

    /// Finds faces in an upright RGB image.
    pub fn detect(&self, img: &RgbImage) -> Result<Detections, Error> {
        let taken = self.pool.lock().map(|mut p| p.pop()).unwrap_or(None);
        let mut model = match taken {
            Some(m) => m,
            None => runtime::OrtModel::new(self.env, &self.face_model, self.config.intra_threads)?,
        };
        let result = face::detect(&mut model, img, &self.config.face);
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(model);
        }
        let found = result.map_err(|e| Error::Detect(format!("face detection failed: {e}")))?;
        Ok(self.face_regions(found, img.width(), img.height()))
    }

    fn face_regions(&self, found: face::Found, w: u32, h: u32) -> Detections {
        let [l, t, r, b] = self.config.face.margin;
        let region = |c: &face::Candidate| Region {
            kind: RegionKind::Face,
            rect: c.rect.grow(l, t, r, b).clamp(w, h),
            score: Some(c.score),
            detector: "centerface".to_string(),
            model_sha256: Some(self.face_model.sha256.clone()),
        };
        Detections {
            regions: found.faces.iter().map(region).collect(),
            review: found.review.iter().map(region).collect(),
            notes: found.notes,
        }
    }
}
