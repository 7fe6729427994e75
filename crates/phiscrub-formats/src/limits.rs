//! The caps every walker and decoder checks before allocating.

use std::time::Duration;

use crate::error::{Error, Limit};

/// Hard caps checked before any large allocation, so hostile files cannot exhaust memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest input accepted, in bytes. Default 256 MiB (a 200 MP phone JPEG is ~60 MiB).
    pub max_input_bytes: u64,
    /// Largest width or height, in pixels. Default 32 768 (libheif's own cap).
    pub max_dimension: u32,
    /// Largest pixel count of one image. Default 200 MP (the biggest phone sensors today).
    pub max_pixels: u64,
    /// Largest decoder allocation, in bytes. Default 2 GiB: 200 MP RGBA8 is 800 MB, and the
    /// re-encode path holds at most two copies.
    pub max_alloc: u64,
    /// Largest number of frames in an animated GIF, PNG or WebP. Default 1 000.
    pub max_frames: u32,
    /// Most pixels of all of an animation's frames together, as their headers declare them:
    /// what re-rendering a GIF or checking an APNG's frame data must decode. Default 400 MP
    /// (1 000 frames of 632 x 632, or 190 of 1080p): `scripts/bombs` re-renders 399 frames
    /// of 1000 x 1000 in under 3 s and 0.4 GB (a GIF's frames are held as one byte a pixel),
    /// so the limit bounds the work, not the animations people make.
    pub max_animation_pixels: u64,
    /// Most scans a JPEG may have. Default 64: libjpeg's progressive script has 10 and
    /// mozjpeg's up to about 20, while each scan is a pass over every block for any decoder,
    /// so a few kilobytes of empty scans could otherwise cost minutes.
    pub max_jpeg_scans: u32,
    /// Most items a HEIF file may declare (image tiles, thumbnails, auxiliary images,
    /// metadata). Default 1 024: a 200 MP photo in 512 x 512 tiles has 763. libheif 1.15
    /// spends time growing with the square of the item count while parsing; the count is
    /// read from the file's own boxes before libheif sees it.
    pub max_heif_items: u32,
    /// Longest time one file may take, from when its bytes are read to when its output is
    /// verified. Default 60 s; `None` never stops. A file that runs over fails with `limits`
    /// and nothing is written. Stages check it between units of work that the limits above
    /// bound (a model run on one window, one barcode read of one tile, one GIF frame).
    pub timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 256 << 20,
            max_dimension: 32_768,
            max_pixels: 200_000_000,
            max_alloc: 2 << 30,
            max_frames: 1_000,
            max_animation_pixels: 400_000_000,
            max_jpeg_scans: 64,
            max_heif_items: 1_024,
            timeout: Some(Duration::from_secs(60)),
        }
    }
}

impl Limits {
    /// Checks image dimensions read from a header, before anything is decoded.
    pub fn check_dimensions(&self, width: u32, height: u32) -> Result<(), Error> {
        if width == 0 || height == 0 {
            return Err(Error::limit(
                Limit::Dimension,
                format!("image has no pixels ({width}x{height})"),
            ));
        }
        if width > self.max_dimension || height > self.max_dimension {
            return Err(Error::limit(
                Limit::Dimension,
                format!(
                    "{width}x{height} exceeds the {} pixel side limit",
                    self.max_dimension
                ),
            ));
        }
        if u64::from(width) * u64::from(height) > self.max_pixels {
            return Err(Error::limit(
                Limit::Pixels,
                format!(
                    "{width}x{height} exceeds the {} pixel limit",
                    self.max_pixels
                ),
            ));
        }
        Ok(())
    }

    /// Checks an animation's frame count and the pixels of all its frames, read from headers.
    pub fn check_frames(&self, frames: u32, pixels: u64) -> Result<(), Error> {
        if frames > self.max_frames {
            return Err(Error::limit(
                Limit::Frames,
                format!(
                    "{frames} frames exceeds the {} frame limit",
                    self.max_frames
                ),
            ));
        }
        if pixels > self.max_animation_pixels {
            return Err(Error::limit(
                Limit::AnimationPixels,
                format!(
                    "{frames} frames of {:.0} MP in all exceed the {:.0} MP animation limit",
                    pixels as f64 / 1e6,
                    self.max_animation_pixels as f64 / 1e6
                ),
            ));
        }
        Ok(())
    }
}
