//! The detection engine: ONNX Runtime sessions for the face and text models, rxing for
//! codes, and the search that runs them over an image. Built only with the `detect` feature.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use image::RgbImage;

use super::{barcode, face, runtime, text, Categories, Detections, Region, RegionKind};
use super::{BarcodeParams, FaceParams, ModelFile, OrtSource, TextParams};
use crate::{Deadline, Error};

/// A dense float tensor: row-major `data` of `shape`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A `[1, 3, height, width]` input from an RGB image: each pixel's channels, read in
    /// `order` (`[0, 1, 2]` for RGB, `[2, 1, 0]` for BGR) and mapped by `value`, go into the
    /// top-left of three planes; the rest (padding, when the tensor is larger) stays 0.
    pub fn planar(
        img: &impl image::GenericImageView<Pixel = image::Rgb<u8>>,
        (width, height): (usize, usize),
        order: [usize; 3],
        value: impl Fn(u8) -> f32,
    ) -> Tensor {
        let plane = width * height;
        let mut data = vec![0f32; 3 * plane];
        for (x, y, px) in img.pixels() {
            let i = y as usize * width + x as usize;
            for (c, &from) in order.iter().enumerate() {
                data[c * plane + i] = value(px.0[from]);
            }
        }
        Tensor {
            shape: vec![1, 3, height, width],
            data,
        }
    }
}

/// The size of `img` padded right and bottom to multiples of 32, for networks that
/// downsample five times.
pub(crate) fn padded_to_32(img: &impl image::GenericImageView) -> (usize, usize) {
    let (w, h) = img.dimensions();
    (w.div_ceil(32) as usize * 32, h.div_ceil(32) as usize * 32)
}

/// A network: one input tensor in, its outputs out, in the model's declared order. The real
/// one is an ONNX Runtime session; unit tests use fakes.
pub trait Model: Send {
    /// Runs the network once.
    fn run(&mut self, input: &Tensor) -> Result<Vec<Tensor>, String>;
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
    reader: Option<runtime::OrtModel>,
    second_face: Option<runtime::OrtModel>,
}

/// The detectors, loaded once and shared by all workers. Each worker borrows a set of
/// sessions from a small pool, so at most one set exists per concurrent caller.
pub struct Engine {
    env: &'static ort::environment::Environment,
    ort_lib: (PathBuf, OrtSource),
    face_model: Option<ModelFile>,
    text_model: Option<ModelFile>,
    reader_model: Option<ModelFile>,
    second_face_model: Option<ModelFile>,
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
        let reader_model = model(cats.text && config.text.confirm, "ppocr_rec")?;
        let second_face_model = model(cats.face && config.face.confirm, "yunet")?;
        let mut engine = Engine {
            env,
            ort_lib,
            face_model,
            text_model,
            reader_model,
            second_face_model,
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
            reader: make(&self.reader_model)?,
            second_face: make(&self.second_face_model)?,
        })
    }

    /// The ONNX Runtime library in use and how it was found.
    pub fn runtime(&self) -> (&Path, OrtSource) {
        (&self.ort_lib.0, self.ort_lib.1)
    }

    /// The models in use.
    pub fn models(&self) -> Vec<&ModelFile> {
        self.face_model
            .iter()
            .chain(&self.second_face_model)
            .chain(&self.text_model)
            .chain(&self.reader_model)
            .collect()
    }

    /// The categories looked for.
    pub fn categories(&self) -> Categories {
        self.config.categories
    }

    /// Detectors this engine runs, for reports.
    pub fn detectors(&self) -> Vec<String> {
        self.detectors_for(self.config.categories)
    }

    /// Detectors this engine runs for `only` of its categories.
    pub fn detectors_for(&self, only: Categories) -> Vec<String> {
        let cats = self.config.categories.and(only);
        let face = self.face_model.iter().chain(&self.second_face_model);
        let text = self.text_model.iter().chain(&self.reader_model);
        let mut d: Vec<String> = face
            .filter(|_| cats.face)
            .chain(text.filter(|_| cats.text))
            .map(|m| m.name.clone())
            .collect();
        if cats.barcode {
            d.push("rxing".to_string());
        }
        d
    }

    /// Finds faces, text and codes (those the categories ask for) in an upright RGB image.
    /// Fails with [`Error::Limits`] when `deadline` passes first.
    pub fn detect(&self, img: &RgbImage, deadline: &Deadline) -> Result<Detections, Error> {
        self.detect_only(img, deadline, self.config.categories)
    }

    /// [`detect`](Engine::detect) for `only` of the engine's categories: one engine loaded
    /// with every model serves callers who each want some of them (a service's requests).
    pub fn detect_only(
        &self,
        img: &RgbImage,
        deadline: &Deadline,
        only: Categories,
    ) -> Result<Detections, Error> {
        let cats = self.config.categories.and(only);
        // Outside the box of pixels that differ from the corner's colour the picture is one
        // flat colour (a blank scan, a canvas around a small GIF frame, a bomb's filler):
        // nothing can be found there, so only the box is searched, however large the image.
        let Some(content) = content_box(img) else {
            return Ok(Detections::default());
        };
        // Some background is kept around the content: a code is only read with its quiet
        // zone (up to 10 modules of it), a face or a line of text with its edges.
        let (x, y, w, h) = grow_box(content, img.dimensions());
        if (w, h) == img.dimensions() {
            return self.detect_pooled(img, deadline, cats);
        }
        let crop = image::imageops::crop_imm(img, x, y, w, h).to_image();
        let mut found = self.detect_pooled(&crop, deadline, cats)?;
        let (iw, ih) = img.dimensions();
        for r in found.regions.iter_mut().chain(found.review.iter_mut()) {
            r.shift(x as f32, y as f32, iw, ih);
        }
        Ok(found)
    }

    fn detect_pooled(
        &self,
        img: &RgbImage,
        deadline: &Deadline,
        cats: Categories,
    ) -> Result<Detections, Error> {
        let taken = self.pool.lock().map(|mut p| p.pop()).unwrap_or(None);
        let mut sessions = match taken {
            Some(s) => s,
            None => self.sessions()?,
        };
        let result = self.detect_with(&mut sessions, img, deadline, cats);
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
        cats: Categories,
    ) -> Result<Detections, Error> {
        let (w, h) = img.dimensions();
        let mut out = Detections::default();
        if let (true, Some(model), Some(file)) = (cats.face, s.face.as_mut(), &self.face_model) {
            let second = s.second_face.as_mut().map(|m| m as &mut dyn Model);
            let found = face::detect(model, second, img, &self.config.face, deadline)?;
            let region = |c: &face::Candidate| Region {
                kind: RegionKind::Face,
                rect: face::cover(&c.rect, c.score, &self.config.face).clamp(w, h),
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
        if let (true, Some(model), Some(file)) = (cats.text, s.text.as_mut(), &self.text_model) {
            let reader = s.reader.as_mut().map(|m| m as &mut dyn Model);
            let found = text::detect(model, reader, img, &self.config.text, deadline)?;
            let region = |b: &text::TextBox| Region {
                score: Some(b.score),
                detector: file.name.clone(),
                model_sha256: Some(file.sha256.clone()),
                ..Region::outlined(RegionKind::Text, b.rect, w, h)
            };
            out.regions.extend(found.boxes.iter().map(region));
            out.review.extend(found.review.iter().map(region));
            out.notes.extend(found.notes);
        }
        if cats.barcode {
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

/// The smallest box (`x`, `y`, `w`, `h`) holding every pixel whose colour differs from the
/// background's, taken as the colour of at least two of the four corners (else the
/// top-left one); `None` when the whole picture is that one colour.
fn content_box(img: &RgbImage) -> Option<(u32, u32, u32, u32)> {
    let (w, h) = img.dimensions();
    let raw = img.as_raw();
    let corners =
        [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)].map(|(x, y)| img.get_pixel(x, y).0);
    let bg = corners
        .iter()
        .find(|c| corners.iter().filter(|d| d == c).count() >= 2)
        .copied()
        .unwrap_or(corners[0]);
    let row = |y: u32| &raw[(y * w * 3) as usize..((y + 1) * w * 3) as usize];
    let plain = |y: u32| row(y).chunks_exact(3).all(|p| p == bg);
    let top = (0..h).find(|&y| !plain(y))?;
    let bottom = (top..h).rev().find(|&y| !plain(y)).unwrap_or(top);
    let column_plain = |x: u32| (top..=bottom).all(|y| img.get_pixel(x, y).0 == bg);
    let left = (0..w).find(|&x| !column_plain(x)).unwrap_or(0);
    let right = (left..w).rev().find(|&x| !column_plain(x)).unwrap_or(left);
    Some((left, top, right - left + 1, bottom - top + 1))
}

/// `b` grown on every side by a quarter of its longer side, at least 64 px, within `w` x `h`.
fn grow_box(b: (u32, u32, u32, u32), (w, h): (u32, u32)) -> (u32, u32, u32, u32) {
    let m = (b.2.max(b.3) / 4).max(64);
    let (x0, y0) = (b.0.saturating_sub(m), b.1.saturating_sub(m));
    let x1 = (b.0 + b.2).saturating_add(m).min(w);
    let y1 = (b.1 + b.3).saturating_add(m).min(h);
    (x0, y0, x1 - x0, y1 - y0)
}

/// The grey image a reader of the output would make: `image`'s own colour-space-aware
/// conversion (`imageops::grayscale` rounds differently, and a marginal code can read in
/// one and not the other).
fn luma(img: &RgbImage) -> image::GrayImage {
    image::DynamicImage::ImageRgb8(img.clone()).to_luma8()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_searched_box_holds_every_pixel_off_the_background() {
        let mut img = RgbImage::from_pixel(40, 30, image::Rgb([9, 9, 9]));
        assert_eq!(content_box(&img), None);
        img.put_pixel(12, 7, image::Rgb([9, 9, 10]));
        img.put_pixel(20, 25, image::Rgb([200, 0, 0]));
        assert_eq!(content_box(&img), Some((12, 7, 9, 19)));
        // Content in a corner does not make it the background.
        img.put_pixel(0, 0, image::Rgb([255, 255, 255]));
        assert_eq!(content_box(&img), Some((0, 0, 21, 26)));
        // The search keeps background around it: a quarter of the longer side, 64 px at least.
        assert_eq!(
            grow_box((500, 400, 200, 100), (1000, 1000)),
            (436, 336, 328, 228)
        );
        assert_eq!(grow_box((10, 10, 800, 20), (1000, 1000)), (0, 0, 1000, 230));
    }
}
