//! phiscrub de-identifies clinical and workplace photos before they are shared.
//!
//! This crate removes every piece of identifying metadata from JPEG, PNG, WebP, GIF, TIFF and
//! HEIC/HEIF files using strict per-format allowlists, covers the faces, text and barcodes
//! found by the [`detect::Engine`] (CenterFace and PP-OCRv4 on ONNX Runtime, rxing for
//! codes), bakes orientation and colour into the
//! pixels where it must re-encode, and verifies every output before handing it back. It fails
//! closed: an image that cannot be fully scrubbed, searched and verified yields an [`Error`],
//! never partial output.
//!
//! Cargo features, all on by default: `detect` (faces and text through ONNX Runtime,
//! loaded at run time, and codes through rxing; without it [`detect::Engine`] has no values
//! and only metadata and the caller's boxes are handled), `heif` (HEIC/HEIF through libheif;
//! without it such files fail as unsupported) and `embedded-models` (the four models compiled
//! in; without it they are read from a folder the caller names).
//!
//! A [`Scrubber`] is built with an engine ([`Scrubber::new`]) or, when only metadata is
//! wanted, with [`Scrubber::metadata_only`], as in this example, which needs no ONNX Runtime:
//!
//! ```
//! use phiscrub::{Options, Scrubber};
//!
//! // A tiny PNG with a text chunk naming a patient.
//! let mut png = Vec::new();
//! image::DynamicImage::new_rgb8(4, 3)
//!     .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
//!     .unwrap();
//! let text = phiscrub::formats::png::chunk(b"tEXt", b"Comment\0patient J. Doe");
//! png.splice(33..33, text.iter().copied());
//!
//! let scrubber = Scrubber::metadata_only(Options::default());
//! let out = scrubber.scrub(&png).unwrap();
//! assert!(!out.bytes.windows(3).any(|w| w == b"Doe"));
//! assert_eq!(out.report.metadata_bytes, text.len() as u64);
//! ```

pub mod batch;
mod codec;
pub mod color;
mod deadline;
pub mod detect;
mod error;
pub mod formats;
pub mod manifest;
mod options;
mod pipeline;
pub mod redact;
pub mod report;

/// The README's Rust snippets, compiled (not run) as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

pub use deadline::Deadline;
pub use error::Error;
pub use formats::{Category, Format};
pub use options::{Limit, Limits, Options, DEFAULT_JPEG_QUALITY};
pub use pipeline::{Corrections, Scrubbed, Scrubber, KEEP_MATCH};
pub use report::{Inspection, Report};
