//! Finding what identifies a person in the pixels. Detectors sit behind the small [`Model`]
//! trait so their pre- and post-processing can be tested with a fake network; the [`Engine`]
//! owns the real ONNX Runtime sessions and hands back [`Region`]s in upright original pixels.

pub mod barcode;
pub mod face;
pub mod geometry;
pub mod runtime;
pub mod search;
pub mod text;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use image::RgbImage;
use serde::Serialize;

pub use barcode::BarcodeParams;
pub use face::FaceParams;
pub use geometry::{Rect, RotRect};
pub use runtime::{ModelFile, OrtSource};
pub use text::TextParams;

use crate::{Deadline, Error};

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
    /// Text: names, dates, record numbers on wristbands, monitors, charts and labels.
    Text,
    /// A barcode or 2D code (QR, Data Matrix, PDF417, Aztec).
    Barcode,
    /// A box the user gave (`--regions`), for what detectors miss.
    Manual,
}

impl RegionKind {
    /// The categories detectors find (manual regions are the user's).
    pub const DETECTED: [RegionKind; 3] = [RegionKind::Face, RegionKind::Text, RegionKind::Barcode];

    /// Every category, detected ones first.
    pub const ALL: [RegionKind; 4] = [
        RegionKind::Face,
        RegionKind::Text,
        RegionKind::Barcode,
        RegionKind::Manual,
    ];

    /// The category called `name` (as [`RegionKind::name`] spells it).
    pub fn from_name(name: &str) -> Option<RegionKind> {
        RegionKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The category's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            RegionKind::Face => "face",
            RegionKind::Text => "text",
            RegionKind::Barcode => "barcode",
            RegionKind::Manual => "manual",
        }
    }
}

impl std::fmt::Display for RegionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An area of the upright image to cover, or to review.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// What it is.
    pub kind: RegionKind,
    /// The area, in upright original-image pixels, margins included and clamped to the image.
    /// For a region with an `outline`, its bounds.
    pub rect: Rect,
    /// The rectangle at an angle that is covered, for text and codes; `None` covers `rect`.
    pub outline: Option<RotRect>,
    /// The detector's score; `None` for manual regions and codes (a code is read or not).
    pub score: Option<f32>,
    /// Which detector found it (`centerface`, `ppocr_det`, `rxing`, `manual`).
    pub detector: String,
    /// sha256 of the model that found it.
    pub model_sha256: Option<String>,
    /// The symbology of a code (`QR_CODE`, `CODE_128`, ...); never its content.
    pub symbology: Option<String>,
}

impl Region {
    /// A region covering `outline`, clamped to a `w` x `h` image.
    fn outlined(kind: RegionKind, outline: RotRect, w: u32, h: u32) -> Region {
        Region {
            kind,
            rect: outline.bounds().clamp(w, h),
            outline: Some(outline),
            score: None,
            detector: String::new(),
            model_sha256: None,
            symbology: None,
        }
    }

    /// Whether the centre of pixel (`x`, `y`) is covered.
    pub fn covers(&self, x: u32, y: u32) -> bool {
        let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
        match &self.outline {
            Some(o) => o.contains(px, py),
            None => {
                px >= self.rect.x0 && px < self.rect.x1 && py >= self.rect.y0 && py < self.rect.y1
            }
        }
    }
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

/// Which categories the detectors look for. All by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Categories {
    /// Faces.
    pub face: bool,
    /// Text.
    pub text: bool,
    /// Barcodes and 2D codes.
    pub barcode: bool,
}

impl Default for Categories {
    fn default() -> Self {
        Categories {
            face: true,
            text: true,
            barcode: true,
        }
    }
}

impl Categories {
    /// Turns `kind` on or off.
    pub fn set(&mut self, kind: RegionKind, on: bool) {
        match kind {
            RegionKind::Face => self.face = on,
            RegionKind::Text => self.text = on,
            RegionKind::Barcode => self.barcode = on,
            RegionKind::Manual => {}
        }
    }

    /// Whether no detector would run.
    pub fn none(&self) -> bool {
        !(self.face || self.text || self.barcode)
    }
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
    /// What to look for.
    pub categories: Categories,
    /// Face detection tuning.
    pub face: FaceParams,
    /// Text detection tuning.
    pub text: TextParams,
    /// Barcode location tuning.
    pub barcode: BarcodeParams,
}

/// One worker's sessions, one per model in use.
struct Sessions {
    face: Option<runtime::OrtModel>,
    text: Option<runtime::OrtModel>,
}

/// The detectors, loaded once and shared by all workers. Each worker borrows a set of
/// sessions from a small pool, so at most one set exists per concurrent caller.
pub struct Engine {
    env: &'static ort::environment::Environment,
    ort_lib: (PathBuf, OrtSource),
    face_model: Option<ModelFile>,
    text_model: Option<ModelFile>,
    config: EngineConfig,
    pool: Mutex<Vec<Sessions>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("ort_lib", &self.ort_lib)
            .field("categories", &self.config.categories)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Loads ONNX Runtime and every model the categories need, and makes one session of
    /// each to prove they run. Any failure here means no file should be touched.
    pub fn load(config: EngineConfig) -> Result<Engine, Error> {
        let ort_lib = runtime::locate(config.ort_lib.as_deref())?;
        let env = runtime::environment(&ort_lib.0)?;
        let cats = config.categories;
        let model = |on: bool, name: &str| -> Result<Option<ModelFile>, Error> {
            on.then(|| runtime::load_model(name, config.models.as_deref()))
                .transpose()
        };
        let face_model = model(cats.face, "centerface")?;
        let text_model = model(cats.text, "ppocr_det")?;
        let mut engine = Engine {
            env,
            ort_lib,
            face_model,
            text_model,
            config,
            pool: Mutex::new(Vec::new()),
        };
        let first = engine.sessions()?;
        engine.pool = Mutex::new(vec![first]);
        Ok(engine)
    }

    fn sessions(&self) -> Result<Sessions, Error> {
        let make = |m: &Option<ModelFile>| {
            m.as_ref()
                .map(|m| runtime::OrtModel::new(self.env, m, self.config.intra_threads))
                .transpose()
        };
        Ok(Sessions {
            face: make(&self.face_model)?,
            text: make(&self.text_model)?,
        })
    }

    /// The ONNX Runtime library in use and how it was found.
    pub fn runtime(&self) -> (&Path, OrtSource) {
        (&self.ort_lib.0, self.ort_lib.1)
    }

    /// The models in use.
    pub fn models(&self) -> Vec<&ModelFile> {
        self.face_model.iter().chain(&self.text_model).collect()
    }

    /// The categories looked for.
    pub fn categories(&self) -> Categories {
        self.config.categories
    }

    /// Detectors this engine runs, for reports.
    pub fn detectors(&self) -> Vec<String> {
        let mut d: Vec<String> = self.models().iter().map(|m| m.name.clone()).collect();
        if self.config.categories.barcode {
            d.push("rxing".to_string());
        }
        d
    }

    /// Finds faces, text and codes (those the categories ask for) in an upright RGB image.
    /// Fails with [`Error::Limits`] when `deadline` passes first.
    pub fn detect(&self, img: &RgbImage, deadline: &Deadline) -> Result<Detections, Error> {
        // A picture of one flat colour shows nothing (a blank scan, a decompression bomb's
        // filler): no pass over it can find anything, however large it is.
        if img
            .as_raw()
            .chunks_exact(3)
            .all(|p| p == &img.as_raw()[..3])
        {
            return Ok(Detections::default());
        }
        let taken = self.pool.lock().map(|mut p| p.pop()).unwrap_or(None);
        let mut sessions = match taken {
            Some(s) => s,
            None => self.sessions()?,
        };
        let result = self.detect_with(&mut sessions, img, deadline);
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(sessions);
        }
        result
    }

    fn detect_with(
        &self,
        s: &mut Sessions,
        img: &RgbImage,
        deadline: &Deadline,
    ) -> Result<Detections, Error> {
        let (w, h) = img.dimensions();
        let mut out = Detections::default();
        if let (Some(model), Some(file)) = (s.face.as_mut(), &self.face_model) {
            let found = face::detect(model, img, &self.config.face, deadline)?;
            let [l, t, r, b] = self.config.face.margin;
            let region = |c: &face::Candidate| Region {
                kind: RegionKind::Face,
                rect: c.rect.grow(l, t, r, b).clamp(w, h),
                outline: None,
                score: Some(c.score),
                detector: file.name.clone(),
                model_sha256: Some(file.sha256.clone()),
                symbology: None,
            };
            out.regions.extend(found.faces.iter().map(region));
            out.review.extend(found.review.iter().map(region));
            out.notes.extend(found.notes);
        }
        if let (Some(model), Some(file)) = (s.text.as_mut(), &self.text_model) {
            let found = text::detect(model, img, &self.config.text, deadline)?;
            out.regions.extend(found.boxes.iter().map(|b| Region {
                score: Some(b.score),
                detector: file.name.clone(),
                model_sha256: Some(file.sha256.clone()),
                ..Region::outlined(RegionKind::Text, b.rect, w, h)
            }));
            out.notes.extend(found.notes);
        }
        if self.config.categories.barcode {
            let luma = luma(img);
            let codes = barcode::locate(&luma, &self.config.barcode, deadline)?;
            out.regions.extend(codes.into_iter().map(|c| Region {
                detector: "rxing".to_string(),
                symbology: Some(c.format),
                ..Region::outlined(RegionKind::Barcode, c.rect, w, h)
            }));
        }
        // A region clamped away entirely (found beyond the edge) covers nothing.
        out.regions.retain(|r| r.rect.area() > 0.0);
        Ok(out)
    }

    /// Whether a code can still be read in `img` with the scans used to find codes; `false`
    /// when codes are not looked for.
    pub fn code_readable(&self, img: &RgbImage, deadline: &Deadline) -> Result<bool, Error> {
        if !self.config.categories.barcode {
            return Ok(false);
        }
        barcode::any_readable(&luma(img), &self.config.barcode, deadline)
    }
}

/// The grey image a reader of the output would make: `image`'s own colour-space-aware
/// conversion (`imageops::grayscale` rounds differently, and a marginal code can read in
/// one and not the other).
fn luma(img: &RgbImage) -> image::GrayImage {
    image::DynamicImage::ImageRgb8(img.clone()).to_luma8()
}
