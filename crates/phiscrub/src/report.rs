//! What a scrub did, in a form safe to store and share: categories, counts and sizes of what
//! was removed, never the values themselves.

use serde::Serialize;
use std::collections::BTreeMap;

use crate::detect::{Region, RegionKind};
use crate::formats::{exif::ExifSummary, Category, Format, Found};
use crate::redact::Style;

/// How the output was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    /// Container-level scrub: the compressed picture data is byte-identical to the input.
    Lossless,
    /// Decoded and encoded afresh.
    Reencoded,
}

/// One category of removed data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// What kind of data.
    pub category: Category,
    /// How many pieces of it (segments, chunks, items).
    pub count: u32,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// One region covered, or flagged for review, in the output image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionReport {
    /// The region's name ([`Region::id`]): its category and box, such as
    /// `face-188-64-76-106`. Give it back to keep the region uncovered.
    pub id: String,
    /// What it is: `face`, `text`, `barcode` or `manual`.
    pub category: RegionKind,
    /// `[x, y, width, height]` in upright original-image pixels (the output's pixels).
    #[serde(rename = "box")]
    pub bbox: [u32; 4],
    /// The detector's score (absent for manual regions).
    pub score: Option<f32>,
    /// Which detector found it.
    pub detector: String,
    /// sha256 of the model that found it.
    pub model_sha256: Option<String>,
    /// How it was covered; absent for regions flagged for review only.
    pub style: Option<Style>,
    /// For text and codes, the corners of the rectangle covered at its angle, in output
    /// pixels (`box` is its bounds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outline: Option<[[i32; 2]; 4]>,
    /// For codes, the symbology (`QR_CODE`, `CODE_128`, ...); never the content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbology: Option<String>,
}

impl RegionReport {
    /// Describes `r` in an image of `width` x `height`; `style` is `None` for review-only.
    pub fn new(r: &Region, width: u32, height: u32, style: Option<Style>) -> RegionReport {
        let id = r.id(width, height);
        RegionReport {
            id: id.to_string(),
            category: r.kind,
            bbox: [id.x, id.y, id.w, id.h],
            score: r.score.map(|s| (s * 1000.0).round() / 1000.0),
            detector: r.detector.clone(),
            model_sha256: r.model_sha256.clone(),
            style,
            outline: r.outline.map(|o| {
                o.corners()
                    .map(|[x, y]| [x.round() as i32, y.round() as i32])
            }),
            symbology: r.symbology.clone(),
        }
    }
}

/// The report of one scrubbed image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The input's container.
    pub input_format: Format,
    /// The output's container.
    pub output_format: Format,
    /// Output width in pixels (orientation applied when re-encoded).
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    /// Lossless or re-encoded.
    pub path: Path,
    /// Why the image was re-encoded, when it was.
    pub reencode_reason: Option<String>,
    /// The EXIF orientation found (1..=8); baked into the pixels when re-encoded, kept as the
    /// only EXIF tag on the lossless JPEG path.
    pub orientation: u16,
    /// What was removed, by category.
    pub removed: Vec<Removed>,
    /// Total bytes of metadata removed.
    pub metadata_bytes: u64,
    /// Detectors run on the pixels; empty when the scrub was metadata-only by request.
    pub detectors: Vec<String>,
    /// Regions covered in the output.
    pub regions: Vec<RegionReport>,
    /// Candidates just under a detector's threshold, not covered: a person should look.
    pub review: Vec<RegionReport>,
    /// Whether `review` is non-empty.
    pub needs_review: bool,
    /// Regions the detectors found that a person chose to leave uncovered (by id), so the
    /// audit trail shows that a person, not a detector, decided.
    pub kept_by_user: Vec<RegionReport>,
    /// Things the user should know that are not failures (an unreadable colour profile).
    pub notes: Vec<String>,
}

/// Groups found pieces by category.
pub fn removed(found: &[Found]) -> Vec<Removed> {
    let mut by: BTreeMap<Category, (u32, u64)> = BTreeMap::new();
    for f in found {
        let e = by.entry(f.category).or_default();
        e.0 += 1;
        e.1 += f.bytes;
    }
    by.into_iter()
        .map(|(category, (count, bytes))| Removed {
            category,
            count,
            bytes,
        })
        .collect()
}

/// What `inspect` found in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// The container.
    pub format: Format,
    /// Stored width.
    pub width: u32,
    /// Stored height.
    pub height: u32,
    /// EXIF orientation (1 when absent).
    pub orientation: u16,
    /// Every piece outside the allowlist, in file order.
    pub found: Vec<Found>,
    /// What the first EXIF block holds, when there is one and it can be read.
    pub exif: Option<ExifSummary>,
    /// Total bytes of the pieces found.
    pub metadata_bytes: u64,
}

/// A path as text that keeps every name apart: UTF-8 as it is, each byte that is not UTF-8
/// as `\xNN` (instead of the replacement character, which makes different names look alike).
pub fn path_text(p: &std::path::Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let mut out = String::new();
        for chunk in p.as_os_str().as_bytes().utf8_chunks() {
            out.push_str(chunk.valid());
            for b in chunk.invalid() {
                out.push_str(&format!("\\x{b:02X}"));
            }
        }
        out
    }
    #[cfg(not(unix))]
    {
        p.to_string_lossy().into_owned()
    }
}

/// `s` safe to print on a terminal: control characters (which can move the cursor, clear the
/// screen or retitle the window) and bidirectional overrides (which reorder what is shown)
/// become visible escapes. File names and anything read from a file pass through here
/// before they are printed.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && unsafe_char(c) => {
                out.push_str(&format!("\\x{:02X}", c as u32))
            }
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:X}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_odd_bytes_become_visible() {
        assert_eq!(printable("ward\u{1b}[2J\n4.jpg"), "ward\\x1B[2J\\n4.jpg");
        assert_eq!(printable("a\u{202E}gpj.exe"), "a\\u{202E}gpj.exe");
        assert_eq!(printable("plain name.jpg"), "plain name.jpg");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let p = std::path::Path::new(std::ffi::OsStr::from_bytes(b"ward\xff4.gif"));
            assert_eq!(path_text(p), "ward\\xFF4.gif");
        }
    }
}
