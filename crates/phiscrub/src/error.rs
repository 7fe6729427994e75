//! Why a file could not be scrubbed, in terms a caller can act on.
//!
//! Every variant renders as one lowercase line without the file name; the batch layer and the
//! binary put the file name in front (`IMG_2231.jpg: truncated JPEG (no EOI marker)`).

use crate::formats::{prefixed, Format, Limit};

/// The reasons a scrub can fail. A failed scrub never produces output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is empty.
    #[error("empty file")]
    Empty,
    /// The bytes are not in any format phiscrub reads.
    #[error("not a supported image (JPEG, PNG, WebP, GIF, TIFF or HEIC/HEIF)")]
    UnknownFormat,
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
    /// The file exceeds one of the [`Limits`](crate::Limits) (bytes, dimensions, pixels,
    /// memory, frames or time).
    #[error("over limit: {detail}")]
    Limits {
        /// Which limit: a service answers an over-size body (`413`) differently from a
        /// picture too large to decode.
        limit: Limit,
        /// The value found and the maximum, in words.
        detail: String,
    },
    /// The pixel data could not be decoded.
    #[error("cannot decode {format}: {detail}")]
    Decode {
        /// The container being decoded.
        format: Format,
        /// The decoder's reason.
        detail: String,
    },
    /// The scrubbed image could not be encoded.
    #[error("cannot encode {format}: {detail}")]
    Encode {
        /// The format being written.
        format: Format,
        /// The encoder's reason.
        detail: String,
    },
    /// The output failed verification: something outside the allowlist survived, or the
    /// output does not describe the picture it should. Nothing is written.
    #[error("verification failed, output withheld: {0}")]
    Verify(String),
    /// No ONNX Runtime library was given and none was found where it is looked for
    /// (`ORT_DYLIB_PATH`, beside the executable, the install folder). Nothing can be detected,
    /// so no file should be touched; a front-end says how to install it.
    #[error("onnx runtime {version} not found: set ORT_DYLIB_PATH to {library} from the onnxruntime=={version} wheel")]
    RuntimeNotFound {
        /// The ONNX Runtime release needed.
        version: &'static str,
        /// The library's file name.
        library: &'static str,
    },
    /// The ONNX Runtime library could not be found or loaded. Nothing can be detected, so no
    /// file should be touched.
    #[error("{0}")]
    Runtime(String),
    /// A detection model could not be read, did not match its manifest, or would not load.
    #[error("{0}")]
    Model(String),
    /// A box the caller asked to cover lies wholly outside the image (likely coordinates for
    /// another image or orientation). What the caller wanted hidden would stay visible, so
    /// nothing is written; the caller, not a detector, has to correct it.
    #[error("manual region [{}, {}, {}, {}] lies outside the {width}x{height} image", .region[0], .region[1], .region[2], .region[3])]
    Region {
        /// The box as given: x, y, width, height.
        region: [f32; 4],
        /// The upright image's width.
        width: u32,
        /// The upright image's height.
        height: u32,
    },
    /// The caller asked to keep a region uncovered that this photo does not have (a
    /// stale or mistyped region id). Refused rather than ignored: the caller must see that
    /// nothing was uncovered.
    #[error("this image has no region matching '{id}' to keep uncovered (ids come from a report of this same image)")]
    UnknownRegion {
        /// The id asked for.
        id: String,
    },
    /// Detection failed on this image; without it the image cannot be called clean.
    #[error("{0}")]
    Detect(String),
    /// Reading input or writing output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<phiscrub_formats::Error> for Error {
    fn from(e: phiscrub_formats::Error) -> Self {
        match e {
            phiscrub_formats::Error::Malformed { format, detail } => {
                Error::Malformed { format, detail }
            }
            phiscrub_formats::Error::Unsupported { format, detail } => {
                Error::Unsupported { format, detail }
            }
            phiscrub_formats::Error::Limits { limit, detail } => Error::Limits { limit, detail },
            phiscrub_formats::Error::Verify(detail) => Error::Verify(detail),
            // The walkers' error is non-exhaustive. Whatever a newer walker refuses, the
            // output is withheld, as for any walker's refusal.
            other => Error::Verify(other.to_string()),
        }
    }
}

impl Error {
    pub(crate) fn malformed(format: Format, detail: impl Into<String>) -> Self {
        Error::Malformed {
            format,
            detail: detail.into(),
        }
    }

    pub(crate) fn unsupported(format: Format, detail: impl Into<String>) -> Self {
        Error::Unsupported {
            format,
            detail: detail.into(),
        }
    }

    pub(crate) fn limit(limit: Limit, detail: impl Into<String>) -> Self {
        Error::Limits {
            limit,
            detail: detail.into(),
        }
    }

    pub(crate) fn decode(format: Format, detail: impl std::fmt::Display) -> Self {
        Error::Decode {
            format,
            detail: detail.to_string(),
        }
    }

    pub(crate) fn encode(format: Format, detail: impl std::fmt::Display) -> Self {
        Error::Encode {
            format,
            detail: detail.to_string(),
        }
    }

    /// A short stable code for reports and services (`malformed`, `limits`, `verify`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Empty => "empty",
            Error::UnknownFormat => "unknown_format",
            Error::Malformed { .. } => "malformed",
            Error::Unsupported { .. } => "unsupported",
            Error::Limits { .. } => "limits",
            Error::Decode { .. } => "decode",
            Error::Encode { .. } => "encode",
            Error::Verify(_) => "verify",
            Error::Runtime(_) | Error::RuntimeNotFound { .. } => "runtime",
            Error::Model(_) => "model",
            Error::Detect(_) => "detect",
            Error::Region { .. } | Error::UnknownRegion { .. } => "region",
            Error::Io(_) => "io",
        }
    }
}
