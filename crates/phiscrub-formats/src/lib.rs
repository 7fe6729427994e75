//! Container walkers, one module per format: find every piece of metadata, strip to a strict
//! allowlist, and verify that an output holds nothing outside it.
//!
//! Walkers only read and copy bytes; decoding pixels is the engine's job (the `phiscrub`
//! crate). This crate is pure Rust, with no ONNX Runtime, libheif or barcode reader, so that
//! it builds for `wasm32-unknown-unknown`: HEIF's boxes are counted here, and libheif reads
//! them in the engine.

pub mod exif;
pub mod gif;
pub mod heif;
pub mod jpeg;
pub mod png;
pub mod tiff;
pub mod webp;

use serde::Serialize;
use std::fmt;

mod error;
mod limits;

pub use error::{prefixed, Error, Limit};
pub use limits::Limits;

/// The containers phiscrub reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JPEG / JFIF / EXIF.
    Jpeg,
    /// PNG and APNG.
    Png,
    /// WebP (simple, extended and animated).
    Webp,
    /// GIF87a / GIF89a.
    Gif,
    /// TIFF (first page).
    Tiff,
    /// HEIC / HEIF (primary image).
    Heif,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Webp => "WebP",
            Format::Gif => "GIF",
            Format::Tiff => "TIFF",
            Format::Heif => "HEIF",
        })
    }
}

impl Format {
    /// Recognises a format from its first bytes; file extensions are never trusted.
    pub fn sniff(data: &[u8]) -> Option<Format> {
        if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Format::Jpeg)
        } else if data.starts_with(png::SIGNATURE) {
            Some(Format::Png)
        } else if data.len() >= 12 && &data[0..4] == b"RIFF" && &data[8..12] == b"WEBP" {
            Some(Format::Webp)
        } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
            Some(Format::Gif)
        } else if data.starts_with(b"II*\0") || data.starts_with(b"MM\0*") {
            Some(Format::Tiff)
        } else if heif::is_heif(data) {
            Some(Format::Heif)
        } else {
            None
        }
    }

    /// The format written for a scrubbed input of this format. Containers that cannot be
    /// stripped losslessly are re-rendered into one that can be verified: HEIF becomes JPEG
    /// (what every viewer opens), TIFF becomes PNG (lossless), GIF stays GIF.
    pub fn output(self) -> Format {
        match self {
            Format::Heif => Format::Jpeg,
            Format::Tiff => Format::Png,
            other => other,
        }
    }

    /// The file extension written for this format, without a dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Gif => "gif",
            Format::Tiff => "tif",
            Format::Heif => "heic",
        }
    }

    /// Whether `ext` (any case) is a usual extension for this format.
    pub fn matches_extension(self, ext: &str) -> bool {
        let ext = ext.to_ascii_lowercase();
        let ok: &[&str] = match self {
            Format::Jpeg => &["jpg", "jpeg", "jpe", "jfif"],
            Format::Png => &["png", "apng"],
            Format::Webp => &["webp"],
            Format::Gif => &["gif"],
            Format::Tiff => &["tif", "tiff"],
            Format::Heif => &["heic", "heif", "hif"],
        };
        ok.contains(&ext.as_str())
    }

    /// Whether a file with extension `ext` is expected to be an image phiscrub reads, so that
    /// unreadable content is an error rather than a skipped non-image.
    pub fn is_image_extension(ext: &str) -> bool {
        [
            Format::Jpeg,
            Format::Png,
            Format::Webp,
            Format::Gif,
            Format::Tiff,
            Format::Heif,
        ]
        .iter()
        .any(|f| f.matches_extension(ext))
    }
}

/// What kind of identifying or hidden data a piece of a file is. Reports name categories and
/// sizes, never values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// An EXIF block (camera settings, dates, device, GPS, maker notes, thumbnail).
    Exif,
    /// XMP packets, including extended XMP.
    Xmp,
    /// IPTC / Photoshop image resources.
    Iptc,
    /// Embedded ICC colour profiles.
    Icc,
    /// Comments and free text (JPEG COM, PNG text chunks, GIF comments).
    Comment,
    /// A second copy of the picture: JFIF/JFXX thumbnails, extra pages, HEIF thumbnails.
    Thumbnail,
    /// Bytes after the end of the image: MPF secondary images, gain maps, motion-photo video,
    /// vendor trailers, aCropalypse leftovers.
    Trailer,
    /// HEIF auxiliary images: depth maps, alpha, portrait and skin mattes, HDR gain maps.
    AuxImage,
    /// Timestamps outside EXIF (PNG tIME).
    Timestamp,
    /// Provenance manifests (C2PA / JUMBF).
    Provenance,
    /// Container headers with no picture data (JFIF, Adobe APP14, MPF index, PNG pHYs and
    /// colour chunks, WebP and GIF application blocks).
    Header,
    /// Anything else outside the allowlist (vendor segments, private chunks).
    Other,
}

/// One piece of a file outside the allowlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    /// What it is.
    pub category: Category,
    /// The container's name for it (`APP1 Exif`, `tEXt`, `EXIF chunk`).
    pub name: String,
    /// Its size in bytes, headers included.
    pub bytes: u64,
}

impl Found {
    pub fn new(category: Category, name: impl Into<String>, bytes: usize) -> Found {
        Found {
            category,
            name: name.into(),
            bytes: bytes as u64,
        }
    }
}

/// What a walker learnt about a file without decoding its pixels.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Stored width and height (before orientation).
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// Every piece outside the allowlist, in file order.
    pub found: Vec<Found>,
    /// The first EXIF block as TIFF-structured bytes, for orientation and inspection.
    pub exif: Option<Vec<u8>>,
    /// The embedded ICC profile, reassembled.
    pub icc: Option<Vec<u8>>,
    /// Colour primaries declared without a profile (HEIF `nclx`), when not sRGB.
    pub primaries: Option<Primaries>,
    /// Why this file cannot take the lossless path even if nothing else requires it.
    pub reencode_reason: Option<String>,
    /// Whether the file holds an animation (APNG, animated WebP). Re-encoding keeps only the
    /// first frame, so such files must take the lossless path or fail.
    pub animated: bool,
    /// Frames declared by the container (0 where the walker does not count them: one image).
    pub frames: u32,
    /// Pixels of every frame added up, as the headers declare them (0 where not counted).
    pub frame_pixels: u64,
    /// The quality a JPEG's luminance quantisation table corresponds to on the IJG scale,
    /// so a re-encode can keep it.
    pub jpeg_quality: Option<u8>,
    /// The lossless output the walk already rebuilt (JPEG without an Orientation block,
    /// PNG), so that stripping does not decode the picture data a second time.
    pub stripped: Option<Vec<u8>>,
}

/// Colour primaries declared without an ICC profile (HEIF `nclx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Primaries {
    /// Display P3, the default of recent iPhones.
    DisplayP3,
    /// ITU-R BT.2020.
    Bt2020,
}

/// Reads a file's container structure. Dimensions are checked against `limits`.
pub fn scan(format: Format, data: &[u8], limits: &Limits) -> Result<Scan, Error> {
    let scan = match format {
        Format::Jpeg => jpeg::scan(data, limits)?,
        Format::Png => png::scan(data, limits)?,
        Format::Webp => webp::scan(data)?,
        Format::Gif => gif::scan(data)?,
        Format::Tiff => tiff::scan(data)?,
        Format::Heif => {
            return Err(Error::unsupported(
                Format::Heif,
                "its items are read by libheif, in the engine",
            ))
        }
    };
    limits.check_dimensions(scan.width, scan.height)?;
    limits.check_frames(scan.frames.max(1), scan.frame_pixels)?;
    Ok(scan)
}

/// Copies a file keeping only allowlisted structures. Only JPEG, PNG and WebP have a lossless
/// path; `orientation` (2..=8) is kept in a minimal EXIF block on JPEG and must be 1 elsewhere.
pub fn strip(format: Format, data: &[u8], orientation: u16) -> Result<Vec<u8>, Error> {
    match format {
        Format::Jpeg => jpeg::strip(data, orientation),
        Format::Png if orientation == 1 => png::strip(data),
        Format::Webp if orientation == 1 => webp::strip(data),
        other => Err(Error::unsupported(
            other,
            "no lossless path for this container".to_string(),
        )),
    }
}

/// [`strip`], reusing what [`scan`] already rebuilt when it did.
pub fn strip_scanned(
    format: Format,
    data: &[u8],
    stripped: Option<Vec<u8>>,
    orientation: u16,
) -> Result<Vec<u8>, Error> {
    match (format, stripped) {
        (Format::Jpeg, Some(s)) => Ok(jpeg::with_orientation(s, orientation)),
        (Format::Png, Some(s)) if orientation == 1 => Ok(s),
        _ => strip(format, data, orientation),
    }
}

/// Re-parses an output and fails unless every structure in it is allowlisted and it holds a
/// picture of the expected size.
pub fn verify(format: Format, data: &[u8], width: u32, height: u32) -> Result<(), Error> {
    let (w, h) = match format {
        Format::Jpeg => jpeg::verify(data)?,
        Format::Png => png::verify(data)?,
        Format::Webp => webp::verify(data)?,
        Format::Gif => gif::verify(data)?,
        other => {
            return Err(Error::Verify(format!("{other} is never written")));
        }
    };
    if (w, h) != (width, height) {
        return Err(Error::Verify(format!(
            "output is {w}x{h}, expected {width}x{height}"
        )));
    }
    Ok(())
}

/// A four-character code read from a file, as text: printable ASCII as it is, every other
/// byte as `\xNN`.
pub(crate) fn fourcc_text(code: &[u8]) -> String {
    code.iter()
        .map(|&b| {
            if (0x20..0x7F).contains(&b) && b != b'\\' {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02X}")
            }
        })
        .collect()
}

pub fn be16(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

pub fn be32(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

pub fn le32(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}
