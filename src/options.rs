//! What a caller can tune, one plain struct per concern, each default documented.

pub use crate::redact::Redaction;

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
    /// Largest number of frames in an animated GIF or WebP. Default 1 000.
    pub max_frames: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 256 << 20,
            max_dimension: 32_768,
            max_pixels: 200_000_000,
            max_alloc: 2 << 30,
            max_frames: 1_000,
        }
    }
}

impl Limits {
    /// Checks image dimensions read from a header, before anything is decoded.
    pub fn check_dimensions(&self, width: u32, height: u32) -> Result<(), crate::Error> {
        if width == 0 || height == 0 {
            return Err(crate::Error::Limits(format!(
                "image has no pixels ({width}x{height})"
            )));
        }
        if width > self.max_dimension || height > self.max_dimension {
            return Err(crate::Error::Limits(format!(
                "{width}x{height} exceeds the {} pixel side limit",
                self.max_dimension
            )));
        }
        if u64::from(width) * u64::from(height) > self.max_pixels {
            return Err(crate::Error::Limits(format!(
                "{width}x{height} exceeds the {} pixel limit",
                self.max_pixels
            )));
        }
        Ok(())
    }

    pub(crate) fn image_limits(&self) -> image::Limits {
        let mut l = image::Limits::default();
        l.max_image_width = Some(self.max_dimension);
        l.max_image_height = Some(self.max_dimension);
        l.max_alloc = Some(self.max_alloc);
        l
    }
}

/// How the scrubber behaves. `Options::default()` is what `phiscrub PATH` does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Options {
    /// Re-encode every image even when the container can be scrubbed losslessly.
    /// Default `false`: JPEG, PNG and WebP keep their pixel data byte-identical.
    pub reencode: bool,
    /// JPEG quality for re-encoded output. Default `None`: a re-encoded JPEG keeps the quality
    /// its quantisation tables show (so covering a face does not also degrade or bloat the
    /// rest of the photo), and anything else (HEIC input, an unrecognisable table) gets 90,
    /// visually lossless for clinical photos at a reasonable size.
    pub jpeg_quality: Option<u8>,
    /// How regions are covered. Default [`Redaction::default`]: solid black boxes.
    pub redaction: Redaction,
    /// Size, dimension and memory caps. Default [`Limits::default`].
    pub limits: Limits,
}

/// The JPEG quality used when neither the caller nor the source says otherwise.
pub const DEFAULT_JPEG_QUALITY: u8 = 90;
