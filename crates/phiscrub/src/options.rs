//! What a caller can tune, one plain struct per concern, each default documented.

pub use crate::redact::Redaction;
pub use phiscrub_formats::{Limit, Limits};

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

/// The image crate's limits for decoding under `limits`.
pub(crate) fn image_limits(limits: &Limits) -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_dimension);
    l.max_image_height = Some(limits.max_dimension);
    l.max_alloc = Some(limits.max_alloc);
    l
}
