//! Finding what identifies a person in the pixels. Detectors sit behind the small `Model`
//! trait so their pre- and post-processing can be tested with a fake network; the [`Engine`]
//! owns the real ONNX Runtime sessions and hands back [`Region`]s in upright original pixels.
//!
//! Without the `detect` feature only the region types remain, and [`Engine`] is a type with
//! no values: such a build scrubs metadata and covers the caller's own boxes, and cannot be
//! asked to detect.

#[cfg(feature = "detect")]
pub mod barcode;
#[cfg(feature = "detect")]
mod engine;
#[cfg(feature = "detect")]
pub mod face;
pub mod geometry;
#[cfg(feature = "detect")]
pub mod runtime;
#[cfg(feature = "detect")]
pub mod search;
#[cfg(feature = "detect")]
pub mod text;

use serde::Serialize;

#[cfg(feature = "detect")]
pub use barcode::BarcodeParams;
#[cfg(feature = "detect")]
pub use engine::{Engine, EngineConfig, Model, Tensor};
#[cfg(feature = "detect")]
pub use face::FaceParams;
pub use geometry::{Rect, RotRect};
#[cfg(feature = "detect")]
pub use runtime::{ModelFile, OrtSource};
#[cfg(feature = "detect")]
pub use text::TextParams;

#[cfg(not(feature = "detect"))]
mod absent;
#[cfg(not(feature = "detect"))]
pub use absent::Engine;

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

impl std::str::FromStr for RegionKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegionKind::from_name(s.trim()).ok_or_else(|| {
            format!(
                "unknown category '{}' (face, text, barcode, manual)",
                s.trim()
            )
        })
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
    /// The region's name in an image of `width` x `height`: its category and its box in
    /// whole pixels ([`Rect::pixels`], the report's `box`), such as `face-188-64-76-106`. A
    /// person reviewing a result names a region by it to keep it uncovered
    /// ([`crate::Corrections::keep`]).
    pub fn id(&self, width: u32, height: u32) -> RegionId {
        let (x, y, w, h) = self.rect.pixels(width, height);
        RegionId {
            kind: self.kind,
            x,
            y,
            w,
            h,
        }
    }

    /// A region covering `outline`, clamped to a `w` x `h` image.
    #[cfg_attr(not(feature = "detect"), allow(dead_code))]
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

    /// Moves the region by (`dx`, `dy`) into an image of `w` x `h` (from a crop of it).
    #[cfg_attr(not(feature = "detect"), allow(dead_code))]
    fn shift(&mut self, dx: f32, dy: f32, w: u32, h: u32) {
        match &mut self.outline {
            Some(o) => {
                o.c = [o.c[0] + dx, o.c[1] + dy];
                self.rect = o.bounds().clamp(w, h);
            }
            None => {
                let r = &self.rect;
                self.rect = Rect::xywh(r.x0 + dx, r.y0 + dy, r.w(), r.h()).clamp(w, h);
            }
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

/// A region's name, written `CATEGORY-X-Y-W-H` (`text-120-80-200-60`): what it is and where,
/// in whole pixels of the upright image, as the report's `box` gives it. Nothing in it
/// comes from the picture's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionId {
    /// The category.
    pub kind: RegionKind,
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

impl RegionId {
    /// The box it names.
    pub fn rect(&self) -> Rect {
        Rect::xywh(self.x as f32, self.y as f32, self.w as f32, self.h as f32)
    }
}

impl std::fmt::Display for RegionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let RegionId { kind, x, y, w, h } = self;
        write!(f, "{kind}-{x}-{y}-{w}-{h}")
    }
}

impl std::str::FromStr for RegionId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let mut parts = lower.split('-');
        let kind = parts.next().and_then(RegionKind::from_name);
        let numbers: Vec<Option<u32>> = parts.map(|n| n.parse().ok()).collect();
        match (kind, &numbers[..]) {
            (Some(kind), &[Some(x), Some(y), Some(w), Some(h)]) if w > 0 && h > 0 => {
                Ok(RegionId { kind, x, y, w, h })
            }
            _ => Err(format!(
                "'{}' is not a region id (CATEGORY-X-Y-W-H, such as face-188-64-76-106)",
                crate::report::printable(s.trim())
            )),
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
    /// Regions found but left uncovered because a person said so.
    pub kept: Vec<Region>,
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
    /// The categories both `self` and `other` look for.
    pub fn and(self, other: Categories) -> Categories {
        Categories {
            face: self.face && other.face,
            text: self.text && other.text,
            barcode: self.barcode && other.barcode,
        }
    }

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

    /// The categories left by `only` (when not empty: these and no others) and then `skip`.
    /// `None` when that leaves nothing to look for, which is a caller's mistake: metadata
    /// alone is [`Scrubber::metadata_only`](crate::Scrubber::metadata_only).
    pub fn choose(only: &[RegionKind], skip: &[RegionKind]) -> Option<Categories> {
        let mut c = Categories::default();
        if !only.is_empty() {
            for k in RegionKind::DETECTED {
                c.set(k, only.contains(&k));
            }
        }
        for &k in skip {
            c.set(k, false);
        }
        (!c.none()).then_some(c)
    }
}
