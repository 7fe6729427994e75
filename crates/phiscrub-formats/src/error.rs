//! Why a container walk failed, in terms a caller can act on.

use std::fmt;

use crate::Format;

/// Which of [`Limits`](crate::Limits) a file ran into. A service answers an over-size body
/// differently (`413`) from a picture too large to decode (`422`), so the limit is named, not
/// only described.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// `max_input_bytes`: the file itself is too large.
    InputBytes,
    /// `max_dimension`: a side is too long, or the image has no pixels.
    Dimension,
    /// `max_pixels`: too many pixels in one image.
    Pixels,
    /// `max_alloc`: a decoder would allocate too much.
    Alloc,
    /// `max_frames`: too many animation frames.
    Frames,
    /// `max_animation_pixels`: too many pixels over all frames.
    AnimationPixels,
    /// `max_jpeg_scans`: too many JPEG scans.
    JpegScans,
    /// `max_heif_items`: too many HEIF items.
    HeifItems,
    /// `timeout`: the file took too long.
    Timeout,
}

impl Limit {
    /// The name of the [`Limits`](crate::Limits) field.
    pub fn name(self) -> &'static str {
        match self {
            Limit::InputBytes => "max_input_bytes",
            Limit::Dimension => "max_dimension",
            Limit::Pixels => "max_pixels",
            Limit::Alloc => "max_alloc",
            Limit::Frames => "max_frames",
            Limit::AnimationPixels => "max_animation_pixels",
            Limit::JpegScans => "max_jpeg_scans",
            Limit::HeifItems => "max_heif_items",
            Limit::Timeout => "timeout",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The reasons a walker refuses a file. Every variant renders as one lowercase line without
/// the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The container is damaged or malformed; the detail names what was wrong.
    #[error("{}", prefixed(*.format, .detail))]
    Malformed {
        /// The container being read.
        format: Format,
        /// What was wrong, lowercase, one line.
        detail: String,
    },
    /// A recognised format using a feature phiscrub does not handle.
    #[error("{format}: unsupported: {detail}")]
    Unsupported {
        /// The container being read.
        format: Format,
        /// The feature, lowercase, one line.
        detail: String,
    },
    /// The file exceeds one of the [`Limits`](crate::Limits).
    #[error("over limit: {detail}")]
    Limits {
        /// Which limit.
        limit: Limit,
        /// The value found and the maximum, in words.
        detail: String,
    },
    /// An output holds something outside the allowlist, or not the picture it should.
    #[error("verification failed, output withheld: {0}")]
    Verify(String),
}

/// Puts the format in front of a detail that does not already name it.
pub fn prefixed(format: Format, detail: &str) -> String {
    if detail.contains(&format.to_string()) {
        detail.to_string()
    } else {
        format!("{format}: {detail}")
    }
}

impl Error {
    /// A malformed-container error.
    pub fn malformed(format: Format, detail: impl Into<String>) -> Self {
        Error::Malformed {
            format,
            detail: detail.into(),
        }
    }

    /// An unsupported-feature error.
    pub fn unsupported(format: Format, detail: impl Into<String>) -> Self {
        Error::Unsupported {
            format,
            detail: detail.into(),
        }
    }

    /// An over-limit error.
    pub fn limit(limit: Limit, detail: impl Into<String>) -> Self {
        Error::Limits {
            limit,
            detail: detail.into(),
        }
    }
}
