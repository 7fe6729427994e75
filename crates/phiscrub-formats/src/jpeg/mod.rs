//! JPEG marker walker. The allowlist is the set of segments a decoder needs: SOI, DQT, SOFn,
//! DHT, DRI, SOS with its entropy-coded data, RSTn and EOI. Every APPn, COM and every byte
//! after the primary image's EOI is dropped. The only metadata ever written back is a minimal
//! EXIF block holding Orientation alone, so a losslessly scrubbed photo still displays upright.
//!
//! Kept segments are shown to hold only picture: every scan is entropy-decoded to its last
//! block (the `entropy` module), and the output is rebuilt from what decoding used, in one canonical
//! order: the quantisation tables the components use, the frame header, then for each scan
//! its restart interval and the Huffman tables it reads, its header and the coded bytes it
//! consumed, padding bits set to ones. Tables no scan reads, bytes no decoder reads and
//! padding bits that are not ones are gone; [`verify`] accepts a file only when it is
//! already in that form. A scan that cannot be walked to its end (damaged data) sends the
//! file to be re-encoded from what decodes, or fails it when less than half of it decodes.

mod entropy;

use std::ops::Range;

use super::{be16, Category, Found, Scan};
use crate::{Error, Format, Limit, Limits};

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const EXIF_ID: &[u8] = b"Exif\0\0";
const ICC_ID: &[u8] = b"ICC_PROFILE\0";

/// One marker segment: `start` is the 0xFF of its marker, `end` is exclusive. For SOS, `end`
/// covers the entropy-coded data that follows the header.
#[derive(Debug, Clone, Copy)]
struct Segment {
    marker: u8,
    start: usize,
    end: usize,
}

impl Segment {
    /// The bytes after the marker and length field.
    fn payload(self, data: &[u8]) -> &[u8] {
        if self.end >= self.start + 4 {
            &data[self.start + 4..self.end]
        } else {
            &[]
        }
    }
}

struct Parsed {
    segments: Vec<Segment>,
    eoi_end: usize,
}

fn err(detail: impl Into<String>) -> Error {
    Error::malformed(Format::Jpeg, detail)
}

fn truncated() -> Error {
    Error::malformed(Format::Jpeg, "truncated JPEG (no EOI marker)")
}

fn is_standalone(marker: u8) -> bool {
    matches!(marker, 0x01 | 0xD0..=0xD7)
}

/// Walks markers from SOI to the first EOI. Entropy-coded data is skipped by looking for the
/// next marker that is neither a stuffed 0x00, a fill byte nor a restart marker.
fn parse(data: &[u8]) -> Result<Parsed, Error> {
    if !data.starts_with(&[0xFF, SOI]) {
        return Err(err("missing SOI marker"));
    }
    let mut segments = Vec::new();
    let mut pos = 2;
    loop {
        if pos >= data.len() {
            return Err(truncated());
        }
        if data[pos] != 0xFF {
            return Err(err(format!("expected a marker at offset {pos}")));
        }
        while pos + 1 < data.len() && data[pos + 1] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = data.get(pos + 1) else {
            return Err(truncated());
        };
        match marker {
            EOI => {
                return Ok(Parsed {
                    segments,
                    eoi_end: pos + 2,
                })
            }
            SOI => return Err(err(format!("second SOI marker at offset {pos}"))),
            0x00 => return Err(err(format!("invalid marker 0xFF00 at offset {pos}"))),
            m if is_standalone(m) => {
                segments.push(Segment {
                    marker,
                    start: pos,
                    end: pos + 2,
                });
                pos += 2;
                continue;
            }
            _ => {}
        }
        let len = be16(data, pos + 2).ok_or_else(truncated)? as usize;
        if len < 2 {
            return Err(err(format!(
                "segment 0x{marker:02X} at offset {pos} has length {len}"
            )));
        }
        let mut end = pos + 2 + len;
        if end > data.len() {
            return Err(err(format!(
                "truncated JPEG (segment 0x{marker:02X} at offset {pos} runs past the end)"
            )));
        }
        if marker == SOS {
            end = skip_entropy(data, end)?;
        }
        segments.push(Segment {
            marker,
            start: pos,
            end,
        });
        pos = end;
    }
}

/// Returns the offset of the marker that ends the entropy-coded data starting at `from`.
/// The search is a byte scan, so its cost is linear in the file size whatever the content.
fn skip_entropy(data: &[u8], from: usize) -> Result<usize, Error> {
    let mut i = from;
    loop {
        let off = data[i..]
            .iter()
            .position(|&b| b == 0xFF)
            .ok_or_else(truncated)?;
        i += off;
        let Some(&next) = data.get(i + 1) else {
            return Err(truncated());
        };
        match next {
            0x00 | 0xD0..=0xD7 => i += 2,
            0xFF => i += 1,
            // Only markers at 0xC0 and above can follow a scan. Lower values are bit errors
            // in a damaged scan (seen in real camera files); decoders read past them, so they
            // stay part of the picture data.
            0x01..=0xBF => i += 2,
            _ => return Ok(i),
        }
    }
}

/// What happens to a segment: kept, or dropped as a category with a name for reports.
enum Disposition {
    Keep,
    Drop(Category, &'static str),
}

fn classify(seg: Segment, data: &[u8]) -> Result<Disposition, Error> {
    use Category::*;
    use Disposition::*;
    let p = seg.payload(data);
    Ok(match seg.marker {
        0xDB | 0xC4 | 0xCC | 0xDD | SOS => Keep,
        m if is_sof(m) => Keep,
        m if is_standalone(m) => Keep,
        0xE0 if p.starts_with(b"JFIF\0") => {
            // A JFIF header can carry an uncompressed thumbnail of Xthumb x Ythumb pixels.
            if p.len() >= 14 && p[12] != 0 && p[13] != 0 {
                Drop(Thumbnail, "APP0 JFIF thumbnail")
            } else {
                Drop(Header, "APP0 JFIF")
            }
        }
        0xE0 if p.starts_with(b"JFXX\0") => Drop(Thumbnail, "APP0 JFXX thumbnail"),
        0xE1 if p.starts_with(EXIF_ID) => Drop(Exif, "APP1 Exif"),
        0xE1 if p.starts_with(b"http://ns.adobe.com/xap/1.0/\0") => Drop(Xmp, "APP1 XMP"),
        0xE1 if p.starts_with(b"http://ns.adobe.com/xmp/extension/\0") => {
            Drop(Xmp, "APP1 extended XMP")
        }
        0xE2 if p.starts_with(ICC_ID) => Drop(Icc, "APP2 ICC profile"),
        0xE2 if p.starts_with(b"MPF\0") => Drop(Header, "APP2 MPF index"),
        0xE2 if p.starts_with(b"FPXR") => Drop(Other, "APP2 FlashPix"),
        0xEB if p.starts_with(b"JP") => Drop(Provenance, "APP11 JUMBF/C2PA"),
        0xED if p.starts_with(b"Photoshop 3.0\0") => Drop(Iptc, "APP13 Photoshop/IPTC"),
        0xEE if p.starts_with(b"Adobe") => Drop(Header, "APP14 Adobe"),
        0xE0..=0xEF => Drop(Other, APP_NAMES[(seg.marker - 0xE0) as usize]),
        0xFE => Drop(Comment, "COM"),
        m => {
            return Err(Error::unsupported(
                Format::Jpeg,
                format!("marker 0x{m:02X} (JPEG extension or hierarchical coding)"),
            ))
        }
    })
}

const APP_NAMES: [&str; 16] = [
    "APP0", "APP1", "APP2", "APP3", "APP4", "APP5", "APP6", "APP7", "APP8", "APP9", "APP10",
    "APP11", "APP12", "APP13", "APP14", "APP15",
];

struct Frame {
    width: u32,
    height: u32,
    components: u8,
}

fn frame(seg: Segment, data: &[u8]) -> Result<Frame, Error> {
    let p = seg.payload(data);
    if p.len() < 6 {
        return Err(err("frame header is too short"));
    }
    Ok(Frame {
        height: u32::from(u16::from_be_bytes([p[1], p[2]])),
        width: u32::from(u16::from_be_bytes([p[3], p[4]])),
        components: p[5],
    })
}

fn is_sof(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// The frame header of a parsed file, requiring exactly one frame and at least one scan.
fn single_frame(parsed: &Parsed, data: &[u8]) -> Result<Frame, Error> {
    let mut sofs = parsed.segments.iter().filter(|s| is_sof(s.marker));
    let sof = sofs.next().ok_or_else(|| err("no frame header (SOF)"))?;
    if sofs.next().is_some() {
        return Err(Error::unsupported(
            Format::Jpeg,
            "more than one frame header",
        ));
    }
    if !parsed.segments.iter().any(|s| s.marker == SOS) {
        return Err(err("no image scan (SOS)"));
    }
    let f = frame(*sof, data)?;
    if f.height == 0 {
        return Err(Error::unsupported(
            Format::Jpeg,
            "height defined by a DNL marker",
        ));
    }
    Ok(f)
}

/// Describes what follows the primary image so reports can say what kind of trailer it was.
fn trailer_name(trailer: &[u8]) -> &'static str {
    if trailer.starts_with(&[0xFF, 0xD8]) {
        "data after EOI (secondary image: MPF, gain map or preview)"
    } else if trailer.windows(4).take(64).any(|w| w == b"ftyp") {
        "data after EOI (motion-photo video)"
    } else if trailer.windows(4).any(|w| w == b"SEFH") {
        "data after EOI (Samsung SEFT trailer)"
    } else {
        "data after EOI"
    }
}

/// The IJG (libjpeg) luminance table at quality 50, whose scaled copies nearly every encoder
/// writes. Only its sum is used, so the order (natural or zigzag) does not matter.
#[rustfmt::skip]
const IJG_LUMA: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
];

/// Estimates the IJG quality of a DQT payload from its table 0 (luminance): the inverse of
/// libjpeg's `jpeg_quality_scaling` applied to the table's scale against the standard one.
pub fn estimate_quality(dqt: &[u8]) -> Option<u8> {
    let (&pq_tq, rest) = dqt.split_first()?;
    if pq_tq & 0x0F != 0 {
        return None;
    }
    let sum: u32 = if pq_tq >> 4 == 0 {
        rest.get(..64)?.iter().map(|&v| u32::from(v)).sum()
    } else {
        let t = rest.get(..128)?;
        t.chunks_exact(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum()
    };
    if sum == 0 {
        return None;
    }
    let standard: u32 = IJG_LUMA.iter().map(|&v| u32::from(v)).sum();
    let scale = f64::from(sum) * 100.0 / f64::from(standard);
    let q = if scale <= 100.0 {
        (200.0 - scale) / 2.0
    } else {
        5000.0 / scale
    };
    Some(q.round().clamp(1.0, 100.0) as u8)
}

/// Reads the structure of a JPEG: dimensions, every non-allowlisted piece, EXIF and ICC.
pub fn scan(data: &[u8], limits: &Limits) -> Result<Scan, Error> {
    let parsed = parse(data)?;
    let frame = single_frame(&parsed, data)?;
    limits.check_dimensions(frame.width, frame.height)?;
    let mut scan = Scan {
        width: frame.width,
        height: frame.height,
        ..Scan::default()
    };
    match analyze(&parsed, data, limits) {
        Ok(p) => {
            if p.hidden > 0 {
                scan.found.push(Found::new(
                    Category::Other,
                    "table or scan data no decoder reads",
                    p.hidden,
                ));
            }
            scan.stripped = Some(emit(data, &p, 1));
        }
        Err(Unshown::Malformed(e)) => return Err(e),
        Err(Unshown::Unprovable(why)) => scan.reencode_reason = Some(why),
    }
    let mut icc_chunks: Vec<(u8, &[u8])> = Vec::new();
    let mut adobe_transform = None;
    for &seg in &parsed.segments {
        if seg.marker == 0xDB && scan.jpeg_quality.is_none() {
            scan.jpeg_quality = estimate_quality(seg.payload(data));
        }
        if let Disposition::Drop(category, name) = classify(seg, data)? {
            let p = seg.payload(data);
            match category {
                Category::Exif if scan.exif.is_none() => {
                    scan.exif = Some(p[EXIF_ID.len()..].to_vec());
                }
                Category::Icc if p.len() > ICC_ID.len() + 2 => {
                    icc_chunks.push((p[ICC_ID.len()], &p[ICC_ID.len() + 2..]));
                }
                _ => {}
            }
            if seg.marker == 0xEE && p.len() >= 12 {
                adobe_transform = Some(p[11]);
            }
            scan.found
                .push(Found::new(category, name, seg.end - seg.start));
        }
    }
    if !icc_chunks.is_empty() {
        icc_chunks.sort_by_key(|c| c.0);
        scan.icc = Some(icc_chunks.iter().flat_map(|c| c.1).copied().collect());
    }
    if parsed.eoi_end < data.len() {
        let trailer = &data[parsed.eoi_end..];
        scan.found.push(Found::new(
            Category::Trailer,
            trailer_name(trailer),
            trailer.len(),
        ));
    }
    // Without the Adobe segment a decoder assumes YCbCr, so files whose colour transform is
    // recorded only there must be converted to ordinary YCbCr rather than stripped.
    let colour = match (frame.components, adobe_transform) {
        (4, _) => Some("CMYK/YCCK JPEG is converted to RGB".into()),
        (3, Some(0)) => Some("RGB-coded JPEG is converted to YCbCr".into()),
        _ => None,
    };
    scan.reencode_reason = scan.reencode_reason.or(colour);
    Ok(scan)
}

/// A marker segment: `0xFF marker`, a big-endian length, then the payload.
pub fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0xFF, marker];
    v.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// The only APP1 block phiscrub ever writes: big-endian TIFF with one IFD0 entry,
/// Orientation (0x0112, SHORT, count 1), and no further IFDs.
pub fn orientation_exif(orientation: u16) -> Vec<u8> {
    let mut payload = EXIF_ID.to_vec();
    payload.extend_from_slice(b"MM\0*\0\0\0\x08");
    payload.extend_from_slice(&1u16.to_be_bytes());
    payload.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]);
    payload.extend_from_slice(&orientation.to_be_bytes());
    payload.extend_from_slice(&[0, 0]);
    payload.extend_from_slice(&[0, 0, 0, 0]);
    segment(0xE1, &payload)
}

/// Rebuilds a JPEG from its picture alone (see the module docs); the coded data is copied
/// byte for byte but for what decoding does not use. With `orientation` in 2..=8 a minimal
/// Orientation-only EXIF block follows SOI.
pub fn strip(data: &[u8], orientation: u16) -> Result<Vec<u8>, Error> {
    let parsed = parse(data)?;
    let frame = single_frame(&parsed, data)?;
    Limits::default().check_dimensions(frame.width, frame.height)?;
    let picture = analyze(&parsed, data, &Limits::default()).map_err(|u| match u {
        Unshown::Malformed(e) => e,
        Unshown::Unprovable(why) => {
            Error::unsupported(Format::Jpeg, format!("no lossless path: {why}"))
        }
    })?;
    Ok(emit(data, &picture, orientation))
}

/// A JPEG as [`strip`] writes it with orientation 1, given `orientation` instead.
pub(crate) fn with_orientation(mut stripped: Vec<u8>, orientation: u16) -> Vec<u8> {
    if (2..=8).contains(&orientation) {
        stripped.splice(2..2, orientation_exif(orientation));
    }
    stripped
}

/// Fails unless `data` is one complete JPEG exactly as [`strip`] writes it: allowlisted
/// segments in canonical order, tables that scans read, coded data that decoding consumes
/// to the last bit, and at most an Orientation-only EXIF block directly after SOI. Returns
/// the stored dimensions.
pub fn verify(data: &[u8]) -> Result<(u32, u32), Error> {
    let v = |e: Error| Error::Verify(e.to_string());
    let parsed = parse(data).map_err(v)?;
    if parsed.eoi_end != data.len() {
        return Err(Error::Verify(format!(
            "{} bytes after EOI",
            data.len() - parsed.eoi_end
        )));
    }
    let f = single_frame(&parsed, data).map_err(v)?;
    Limits::default()
        .check_dimensions(f.width, f.height)
        .map_err(v)?;
    let orientation = parsed
        .segments
        .first()
        .filter(|s| s.marker == 0xE1)
        .and_then(|s| {
            let bytes = &data[s.start..s.end];
            (2..=8).find(|&o| bytes == orientation_exif(o).as_slice())
        })
        .unwrap_or(1);
    if let Some(seg) = parsed
        .segments
        .iter()
        .enumerate()
        .find(|&(i, s)| {
            let ours = i == 0 && orientation != 1;
            !(ours || matches!(classify(*s, data), Ok(Disposition::Keep)))
        })
        .map(|(_, s)| s)
    {
        return Err(Error::Verify(format!(
            "JPEG segment 0x{:02X} at offset {} is not allowlisted",
            seg.marker, seg.start
        )));
    }
    let picture = analyze(&parsed, data, &Limits::default()).map_err(|u| match u {
        Unshown::Malformed(e) => v(e),
        Unshown::Unprovable(why) => Error::Verify(why),
    })?;
    if emit(data, &picture, orientation) != data {
        return Err(Error::Verify(
            "JPEG holds bytes outside its picture (unused tables, unread coded data or padding)"
                .into(),
        ));
    }
    Ok((f.width, f.height))
}

/// What a JPEG's picture is made of: the tables its components and scans use and, for each
/// scan, the coded bytes decoding reads.
struct Picture {
    /// DQT definitions (precision and slot byte first), one per slot used, in slot order.
    quant: Vec<Range<usize>>,
    /// The frame header segment.
    frame: Range<usize>,
    scans: Vec<ScanPicture>,
    /// Bytes of kept segments that are not picture: tables no scan reads, coded data no
    /// decoder reads.
    hidden: usize,
}

struct ScanPicture {
    restart: u16,
    /// DHT definitions (class and slot byte first) this scan reads.
    huffman: Vec<Range<usize>>,
    /// The SOS marker, length and header.
    header: Range<usize>,
    pieces: Vec<entropy::Piece>,
}

/// Why a JPEG could not be shown to hold only picture.
enum Unshown {
    /// It is not a JPEG a decoder would show (or more than half of a scan is missing).
    Malformed(Error),
    /// It decodes, but not exactly: a scan's data is damaged past the point where it can be
    /// walked, or a table changes under a component. Re-encoding is the way to a clean file.
    Unprovable(String),
}

/// A Huffman table's definition in the file, and the table built from it.
type Table = (Range<usize>, entropy::Huffman);

/// Walks every segment and every scan; see [`Picture`].
fn analyze(parsed: &Parsed, data: &[u8], limits: &Limits) -> Result<Picture, Unshown> {
    let bad = |detail: &str| Unshown::Malformed(err(detail));
    let mut quant: [Option<Range<usize>>; 4] = Default::default();
    let mut huffman: [[Option<Table>; 4]; 2] = Default::default();
    let mut restart = 0u16;
    let mut frame_seg = None;
    let mut walker: Option<entropy::Walker> = None;
    let mut latched: Vec<Option<(u8, Range<usize>)>> = Vec::new();
    let mut scans = Vec::new();
    let mut fault = None;
    // Bytes of table definitions and coded data seen, to tell how much was not picture.
    let (mut tables_seen, mut coded_seen) = (0usize, 0usize);
    for &seg in &parsed.segments {
        let p = seg.payload(data);
        let base = seg.start + 4;
        match seg.marker {
            0xDB => {
                let mut i = 0;
                while i < p.len() {
                    let (pq, tq) = (p[i] >> 4, usize::from(p[i] & 15));
                    let len = 1 + 64 * (usize::from(pq) + 1);
                    if pq > 1 || tq > 3 || i + len > p.len() {
                        return Err(bad("invalid quantisation table"));
                    }
                    quant[tq] = Some(base + i..base + i + len);
                    tables_seen += len;
                    i += len;
                }
            }
            0xC4 => {
                let mut i = 0;
                while i < p.len() {
                    let (tc, th) = (usize::from(p[i] >> 4), usize::from(p[i] & 15));
                    let counts = p
                        .get(i + 1..i + 17)
                        .ok_or_else(|| bad("invalid Huffman table"))?;
                    let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let values = p
                        .get(i + 17..i + 17 + n)
                        .ok_or_else(|| bad("invalid Huffman table"))?;
                    let table = entropy::Huffman::new(counts, values)
                        .filter(|_| tc <= 1 && th <= 3)
                        .ok_or_else(|| bad("invalid Huffman table"))?;
                    huffman[tc][th] = Some((base + i..base + i + 17 + n, table));
                    tables_seen += 17 + n;
                    i += 17 + n;
                }
            }
            0xDD => {
                restart = be16(p, 0).ok_or_else(|| bad("restart interval segment is too short"))?;
            }
            0xCC => {
                return Err(Unshown::Malformed(Error::unsupported(
                    Format::Jpeg,
                    "arithmetic coding",
                )))
            }
            m if is_sof(m) => {
                if !matches!(m, 0xC0..=0xC2) {
                    return Err(Unshown::Malformed(Error::unsupported(
                        Format::Jpeg,
                        format!("coding process 0x{m:02X} (lossless, hierarchical or arithmetic)"),
                    )));
                }
                let n = usize::from(*p.get(5).unwrap_or(&0));
                let comps = p
                    .get(6..6 + 3 * n)
                    .filter(|_| n > 0)
                    .ok_or_else(|| bad("frame header is too short"))?;
                // The segment is copied as stored: bytes past its components would travel
                // with it (decoders such as libjpeg refuse such a header).
                if p.len() != 6 + 3 * n {
                    return Err(bad("frame header length does not match its components"));
                }
                let components: Vec<entropy::Component> = comps
                    .chunks_exact(3)
                    .map(|c| entropy::Component {
                        id: c[0],
                        h: c[1] >> 4,
                        v: c[1] & 15,
                        tq: c[2],
                    })
                    .collect();
                if components
                    .iter()
                    .any(|c| !(1..=4).contains(&c.h) || !(1..=4).contains(&c.v) || c.tq > 3)
                {
                    return Err(bad("invalid component in the frame header"));
                }
                latched = vec![None; components.len()];
                walker = Some(entropy::Walker::new(entropy::Frame {
                    progressive: m == 0xC2,
                    width: u32::from(u16::from_be_bytes([p[3], p[4]])),
                    height: u32::from(u16::from_be_bytes([p[1], p[2]])),
                    components,
                }));
                frame_seg = Some(seg.start..seg.end);
            }
            SOS if fault.is_none() => {
                let w = walker
                    .as_mut()
                    .ok_or_else(|| bad("scan before the frame header"))?;
                if scans.len() >= limits.max_jpeg_scans as usize {
                    return Err(Unshown::Malformed(Error::limit(
                        Limit::JpegScans,
                        format!(
                            "more than {} scans (each is a pass over every block)",
                            limits.max_jpeg_scans
                        ),
                    )));
                }
                let ns = usize::from(*p.first().unwrap_or(&0));
                let header_len = 1 + 2 * ns + 3;
                if p.len() < header_len {
                    return Err(bad("scan header is too short"));
                }
                // The coded data starts where the components say the header ends, and the
                // header is copied as stored, length included: a length that claims more
                // would make the copy unreadable (libjpeg refuses it) and its extra bytes
                // would be taken for coded data.
                if be16(data, seg.start + 2) != Some(2 + header_len as u16) {
                    return Err(bad("scan header length does not match its components"));
                }
                let mut comps = Vec::with_capacity(ns);
                for c in p[1..1 + 2 * ns].chunks_exact(2) {
                    let idx = w
                        .components()
                        .iter()
                        .position(|f| f.id == c[0])
                        .ok_or_else(|| bad("a scan names a component the frame lacks"))?;
                    comps.push((idx, usize::from(c[1] >> 4), usize::from(c[1] & 15)));
                }
                let q = &p[1 + 2 * ns..header_len];
                let header = entropy::ScanHeader {
                    components: comps,
                    ss: q[0],
                    se: q[1],
                    ah: q[2] >> 4,
                    al: q[2] & 15,
                };
                w.check(&header).map_err(bad)?;
                let (uses_dc, uses_ac) = w.uses(&header);
                let mut used = Vec::new();
                let mut tables = entropy::Tables {
                    dc: [None; 4],
                    ac: [None; 4],
                };
                for &(c, td, ta) in &header.components {
                    if latched[c].is_none() {
                        let tq = w.components()[c].tq;
                        let def = quant[usize::from(tq)].clone().ok_or_else(|| {
                            bad("a component's quantisation table is not defined")
                        })?;
                        latched[c] = Some((tq, def));
                    }
                    for (on, class, slot) in [(uses_dc, 0, td), (uses_ac, 1, ta)] {
                        if !on {
                            continue;
                        }
                        let (range, table) = huffman[class]
                            .get(slot)
                            .and_then(Option::as_ref)
                            .ok_or_else(|| bad("a scan uses an undefined Huffman table"))?;
                        if class == 0 {
                            tables.dc[slot] = Some(table);
                        } else {
                            tables.ac[slot] = Some(table);
                        }
                        if !used.contains(range) {
                            used.push(range.clone());
                        }
                    }
                }
                let data_start = seg.start + 4 + header_len;
                coded_seen += seg.end - data_start;
                match w.scan(&header, &tables, restart, data, data_start, seg.end) {
                    Ok(pieces) => scans.push(ScanPicture {
                        restart,
                        huffman: used,
                        header: seg.start..data_start,
                        pieces,
                    }),
                    Err(f) => fault = Some(f),
                }
            }
            _ => {
                // Dropped segments are fine; markers a decoder would refuse are not.
                classify(seg, data).map_err(Unshown::Malformed)?;
            }
        }
    }
    if let Some(f) = fault {
        let (done, total) = f.progress();
        // Most of the picture decodes: worth re-encoding from what does. Less than half: a
        // stub, or a bomb whose header promises far more than its data holds.
        return Err(if done * 2 >= total {
            Unshown::Unprovable(format!(
                "damaged scan data ({done} of {total} blocks decode) is re-encoded"
            ))
        } else if let entropy::Fault::Corrupt { what, .. } = f {
            Unshown::Malformed(err(format!(
                "corrupt scan data ({what} after {done} of {total} blocks)"
            )))
        } else {
            Unshown::Malformed(err(format!(
                "truncated JPEG (scan data ends after {done} of {total} blocks)"
            )))
        });
    }
    let frame = frame_seg.ok_or_else(|| bad("no frame header (SOF)"))?;
    let mut slots: Vec<(u8, Range<usize>)> = Vec::new();
    for (tq, def) in latched.into_iter().flatten() {
        match slots.iter().find(|(t, _)| *t == tq) {
            Some((_, other)) if data[other.clone()] != data[def.clone()] => {
                return Err(Unshown::Unprovable(
                    "a quantisation table changes between scans".into(),
                ))
            }
            Some(_) => {}
            None => slots.push((tq, def)),
        }
    }
    slots.sort_by_key(|(t, _)| *t);
    let mut tables_used: usize = slots.iter().map(|(_, d)| d.len()).sum();
    let mut distinct: Vec<&Range<usize>> = Vec::new();
    let mut coded_used = 0usize;
    for scan in &scans {
        for h in &scan.huffman {
            if !distinct.contains(&h) {
                distinct.push(h);
                tables_used += h.len();
            }
        }
        for piece in &scan.pieces {
            coded_used += piece.range.len() + if piece.restart.is_some() { 2 } else { 0 };
        }
    }
    Ok(Picture {
        quant: slots.into_iter().map(|(_, d)| d).collect(),
        frame,
        scans,
        hidden: tables_seen.saturating_sub(tables_used) + coded_seen.saturating_sub(coded_used),
    })
}

/// Writes `picture` in canonical form (see the module docs).
fn emit(data: &[u8], picture: &Picture, orientation: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(&[0xFF, SOI]);
    if (2..=8).contains(&orientation) {
        out.extend_from_slice(&orientation_exif(orientation));
    }
    for q in &picture.quant {
        out.extend_from_slice(&segment(0xDB, &data[q.clone()]));
    }
    out.extend_from_slice(&data[picture.frame.clone()]);
    let mut restart = 0u16;
    let mut current: [[Option<&[u8]>; 4]; 2] = Default::default();
    for scan in &picture.scans {
        if scan.restart != restart {
            out.extend_from_slice(&segment(0xDD, &scan.restart.to_be_bytes()));
            restart = scan.restart;
        }
        for h in &scan.huffman {
            let def = &data[h.clone()];
            let (class, slot) = (usize::from(def[0] >> 4), usize::from(def[0] & 15));
            if current[class][slot] != Some(def) {
                out.extend_from_slice(&segment(0xC4, def));
                current[class][slot] = Some(def);
            }
        }
        out.extend_from_slice(&data[scan.header.clone()]);
        for piece in &scan.pieces {
            out.extend_from_slice(&data[piece.range.clone()]);
            if piece.pad_mask != 0 {
                let last = out.last_mut().expect("a piece with padding has bytes");
                *last |= piece.pad_mask;
                if *last == 0xFF {
                    out.push(0);
                }
            }
            if let Some(m) = piece.restart {
                out.extend_from_slice(&[0xFF, m]);
            }
        }
    }
    out.extend_from_slice(&[0xFF, EOI]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    /// A real baseline JPEG from image-rs's encoder (SOF0, then a DQT and a DHT per table).
    fn encoded(w: u32, h: u32, quality: u8) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 7 + y) as u8, (y * 5) as u8, (x ^ y) as u8 * 3])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode_image(&img)
            .unwrap();
        out
    }

    /// `base` with `extra` segments after SOI (and its JFIF header dropped) and `trailer`
    /// after EOI.
    fn with(base: &[u8], extra: &[&[u8]], trailer: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        for e in extra {
            v.extend_from_slice(e);
        }
        v.extend_from_slice(&base[2..]);
        v.extend_from_slice(trailer);
        v
    }

    fn pixels(d: &[u8]) -> Vec<u8> {
        image::load_from_memory(d).unwrap().to_rgb8().into_raw()
    }

    #[test]
    fn quality_of_an_encoded_jpeg_is_read_back_from_its_tables() {
        for q in [40u8, 75, 90, 97] {
            let got = scan(&encoded(32, 32, q), &limits())
                .unwrap()
                .jpeg_quality
                .unwrap();
            assert!(got.abs_diff(q) <= 2, "encoded at {q}, estimated {got}");
        }
    }

    #[test]
    fn exif_xmp_comment_and_trailer_are_stripped_and_pixels_kept() {
        let base = encoded(32, 16, 85);
        let exif = segment(0xE1, b"Exif\0\0MM\0*\0\0\0\x08\0\0\0\0\0\0");
        let xmp = segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>");
        let com = segment(0xFE, b"patient: J. Doe");
        let input = with(&base, &[&exif, &xmp, &com], b"\xFF\xD8trailing copy");
        let s = scan(&input, &limits()).unwrap();
        let cats: Vec<_> = s.found.iter().map(|f| f.category).collect();
        use Category::*;
        assert_eq!(cats, [Exif, Xmp, Comment, Header, Trailer]);
        assert_eq!((s.width, s.height), (32, 16));
        let out = strip(&input, 1).unwrap();
        assert_eq!(verify(&out).unwrap(), (32, 16));
        assert_eq!(pixels(&out), pixels(&input));
        assert!(!out.windows(3).any(|w| w == b"Doe"));
        // Stripping is canonical: a second pass changes nothing.
        assert_eq!(strip(&out, 1).unwrap(), out);
    }

    #[test]
    fn bytes_hidden_after_the_scan_data_are_dropped() {
        let base = encoded(48, 40, 80);
        let clean = strip(&base, 1).unwrap();
        verify(&clean).unwrap();
        // Text placed between the last coded byte and EOI: every marker walker copies it,
        // no decoder reads it.
        let at = clean.len() - 2;
        let mut hidden = clean.clone();
        hidden.splice(at..at, b"MRN 0048213 Jane Example".iter().copied());
        assert_eq!(pixels(&hidden), pixels(&clean));
        let s = scan(&hidden, &limits()).unwrap();
        assert!(s
            .found
            .iter()
            .any(|f| f.category == Category::Other && f.bytes == 24));
        assert!(matches!(verify(&hidden), Err(Error::Verify(_))));
        assert_eq!(strip(&hidden, 1).unwrap(), clean);
    }

    #[test]
    fn unused_tables_are_dropped_and_verify_refuses_them() {
        let base = strip(&encoded(16, 16, 90), 1).unwrap();
        // A Huffman table in slot 3 that no scan reads, its symbols spelling a name.
        let mut def = vec![0x13];
        let mut counts = [0u8; 16];
        counts[7] = 12;
        def.extend_from_slice(&counts);
        def.extend_from_slice(b"Jane Example");
        let input = with(&base, &[&segment(0xC4, &def)], b"");
        assert!(matches!(verify(&input), Err(Error::Verify(_))));
        let out = strip(&input, 1).unwrap();
        assert_eq!(out, base);
    }

    #[test]
    fn padding_bits_are_set_to_ones() {
        let clean = strip(&encoded(24, 24, 75), 1).unwrap();
        // The byte before EOI ends the scan; clearing its low bits changes only padding
        // when decoding does not use them, which the walker tells by rebuilding the file.
        let mut v = clean.clone();
        let last = v.len() - 3;
        v[last] &= 0xF0;
        if let Ok(out) = strip(&v, 1) {
            if pixels(&v) == pixels(&clean) {
                assert_eq!(out, clean);
            }
            verify(&out).unwrap();
        }
    }

    #[test]
    fn orientation_survives_as_the_only_exif_and_verifies() {
        let out = strip(&encoded(16, 8, 90), 6).unwrap();
        assert_eq!(&out[2..4], &[0xFF, 0xE1]);
        verify(&out).unwrap();
        let tiff = &out[12..12 + 26];
        let exif = exif::Reader::new().read_raw(tiff.to_vec()).unwrap();
        let o = exif
            .get_field(exif::Tag::Orientation, exif::In::PRIMARY)
            .unwrap();
        assert_eq!(o.value.get_uint(0), Some(6));
        assert_eq!(exif.fields().count(), 1);
    }

    #[test]
    fn verify_rejects_any_app_segment_or_trailer() {
        let clean = strip(&encoded(16, 16, 90), 1).unwrap();
        let with_app = with(&clean, &[&segment(0xE5, b"vendor")], b"");
        assert!(matches!(verify(&with_app), Err(Error::Verify(_))));
        let with_trailer = with(&clean, &[], b"x");
        assert!(matches!(verify(&with_trailer), Err(Error::Verify(_))));
        // An orientation block anywhere but first is not ours.
        let mut late = clean[..2].to_vec();
        late.extend_from_slice(&segment(0xFE, b"x"));
        late.extend_from_slice(&orientation_exif(6));
        late.extend_from_slice(&clean[2..]);
        assert!(matches!(verify(&late), Err(Error::Verify(_))));
    }

    #[test]
    fn truncated_file_says_no_eoi() {
        let full = encoded(16, 16, 90);
        for cut in [3, 10, full.len() - 2, full.len() - 1] {
            let e = scan(&full[..cut], &limits()).unwrap_err().to_string();
            assert!(e.contains("truncated JPEG"), "cut {cut}: {e}");
        }
    }

    #[test]
    fn a_header_promising_far_more_than_its_data_is_truncated() {
        // 14000 x 14000 declared over a few bytes of scan data: the walker fails it at once
        // instead of leaving a decoder to invent 196 MP.
        let mut v = encoded(8, 8, 90);
        let sof = v.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        v[sof + 5..sof + 9].copy_from_slice(&[0x36, 0xB0, 0x36, 0xB0]);
        let e = scan(&v, &limits()).unwrap_err();
        assert!(
            e.to_string().contains("truncated JPEG (scan data ends"),
            "{e}"
        );
    }

    #[test]
    fn headers_longer_than_their_components_are_refused_not_copied() {
        // Frame and scan headers are copied as stored, so bytes placed after their
        // components (the length grown to match) would travel with them.
        let text = b"MRN 0048213 Jane Example";
        for (marker, what) in [(0xC0, "frame header"), (0xDA, "scan header")] {
            let mut v = strip(&encoded(24, 16, 85), 1).unwrap();
            let at = v.windows(2).position(|w| w == [0xFF, marker]).unwrap();
            let len = usize::from(be16(&v, at + 2).unwrap());
            v.splice(at + 2 + len..at + 2 + len, text.iter().copied());
            let grown = (len + text.len()) as u16;
            v[at + 2..at + 4].copy_from_slice(&grown.to_be_bytes());
            let e = scan(&v, &limits()).unwrap_err();
            assert!(
                e.to_string()
                    .contains(&format!("{what} length does not match its components")),
                "{e}"
            );
            assert!(strip(&v, 1).is_err(), "{what}");
            assert!(verify(&v).is_err(), "{what}");
        }
    }

    #[test]
    fn bogus_segment_length_is_an_error_not_a_panic() {
        let mut v = encoded(16, 16, 90);
        let dqt = v.windows(2).position(|w| w == [0xFF, 0xDB]).unwrap();
        v[dqt + 2] = 0xFF; // the length runs past the end
        assert!(scan(&v, &limits()).is_err());
        let mut v = encoded(16, 16, 90);
        v[dqt + 2..dqt + 4].copy_from_slice(&[0, 1]);
        assert!(scan(&v, &limits()).is_err());
    }

    #[test]
    fn reserved_jpg_marker_is_unsupported_not_copied() {
        let v = with(&encoded(16, 16, 90), &[&segment(0xC8, b"x")], b"");
        assert!(matches!(
            scan(&v, &limits()),
            Err(Error::Unsupported { .. })
        ));
        assert!(strip(&v, 1).is_err());
    }

    #[test]
    fn cmyk_jpeg_requires_reencoding() {
        let v = with(
            &encoded(16, 16, 90),
            &[&segment(0xEE, b"Adobe\0\x64\0\0\0\0\x01")],
            b"",
        );
        assert!(scan(&v, &limits()).unwrap().reencode_reason.is_none());
        // Three components with the Adobe transform 0: RGB coding.
        let mut adobe = v.clone();
        let app = adobe.windows(5).position(|w| w == b"Adobe").unwrap();
        adobe[app + 11] = 0;
        assert!(scan(&adobe, &limits()).unwrap().reencode_reason.is_some());
    }
}
