//! JPEG marker walker. The allowlist is the set of segments a decoder needs: SOI, DQT, SOFn,
//! DHT, DAC, DRI, SOS with its entropy-coded data, RSTn and EOI. Every APPn, COM and every byte
//! after the primary image's EOI is dropped. The only metadata ever written back is a minimal
//! EXIF block holding Orientation alone, so a losslessly scrubbed photo still displays upright.

use super::{be16, Category, Found, Scan};
use crate::formats::Format;
use crate::Error;

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
pub fn scan(data: &[u8]) -> Result<Scan, Error> {
    let parsed = parse(data)?;
    let frame = single_frame(&parsed, data)?;
    let mut scan = Scan {
        width: frame.width,
        height: frame.height,
        ..Scan::default()
    };
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
    scan.reencode_reason = match (frame.components, adobe_transform) {
        (4, _) => Some("CMYK/YCCK JPEG is converted to RGB".into()),
        (3, Some(0)) => Some("RGB-coded JPEG is converted to YCbCr".into()),
        _ => None,
    };
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

/// Copies the allowlisted segments of a JPEG; the entropy-coded data is copied byte for byte.
/// With `orientation` in 2..=8 a minimal Orientation-only EXIF block follows SOI.
pub fn strip(data: &[u8], orientation: u16) -> Result<Vec<u8>, Error> {
    let parsed = parse(data)?;
    single_frame(&parsed, data)?;
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(&[0xFF, SOI]);
    if (2..=8).contains(&orientation) {
        out.extend_from_slice(&orientation_exif(orientation));
    }
    for &seg in &parsed.segments {
        if let Disposition::Keep = classify(seg, data)? {
            out.extend_from_slice(&data[seg.start..seg.end]);
        }
    }
    out.extend_from_slice(&[0xFF, EOI]);
    Ok(out)
}

/// Fails unless `data` is one complete JPEG whose segments are all allowlisted, with at most
/// one Orientation-only EXIF block directly after SOI. Returns the stored dimensions.
pub fn verify(data: &[u8]) -> Result<(u32, u32), Error> {
    let parsed = parse(data).map_err(|e| Error::Verify(e.to_string()))?;
    if parsed.eoi_end != data.len() {
        return Err(Error::Verify(format!(
            "{} bytes after EOI",
            data.len() - parsed.eoi_end
        )));
    }
    for (i, &seg) in parsed.segments.iter().enumerate() {
        let bytes = &data[seg.start..seg.end];
        let allowed = match classify(seg, data) {
            Ok(Disposition::Keep) => true,
            _ => {
                i == 0
                    && seg.marker == 0xE1
                    && (2..=8).any(|o| bytes == orientation_exif(o).as_slice())
            }
        };
        if !allowed {
            return Err(Error::Verify(format!(
                "JPEG segment 0x{:02X} at offset {} is not allowlisted",
                seg.marker, seg.start
            )));
        }
    }
    let f = single_frame(&parsed, data).map_err(|e| Error::Verify(e.to_string()))?;
    Ok((f.width, f.height))
}

#[cfg(test)]
mod tests {

    #[test]
    fn quality_of_an_encoded_jpeg_is_read_back_from_its_tables() {
        for q in [40u8, 75, 90, 97] {
            let mut out = Vec::new();
            let img =
                image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 8, y as u8 * 8, 7]));
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q)
                .encode_image(&img)
                .unwrap();
            let got = scan(&out).unwrap().jpeg_quality.unwrap();
            assert!(got.abs_diff(q) <= 2, "encoded at {q}, estimated {got}");
        }
    }
    use super::*;

    /// A structurally valid baseline JPEG skeleton: the walker never decodes entropy data.
    fn skeleton(extra: &[&[u8]], trailer: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        for e in extra {
            v.extend_from_slice(e);
        }
        v.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x04, 0x00, 0x01]); // DQT (short, fine for a walker)
        v.extend_from_slice(&[
            0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x10, 0x00, 0x20, 0x01, 0x01, 0x11, 0x00,
        ]);
        v.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
        v.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]);
        v.extend_from_slice(&[0xFF, 0xD9]);
        v.extend_from_slice(trailer);
        v
    }

    #[test]
    fn exif_xmp_comment_and_trailer_are_stripped_and_scan_data_kept() {
        let exif = segment(0xE1, b"Exif\0\0MM\0*\0\0\0\x08\0\0\0\0\0\0");
        let xmp = segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>");
        let com = segment(0xFE, b"patient: J. Doe");
        let input = skeleton(&[&exif, &xmp, &com], b"\xFF\xD8trailing copy");
        let s = scan(&input).unwrap();
        let cats: Vec<_> = s.found.iter().map(|f| f.category).collect();
        assert_eq!(
            cats,
            [
                Category::Exif,
                Category::Xmp,
                Category::Comment,
                Category::Trailer
            ]
        );
        assert_eq!((s.width, s.height), (32, 16));
        let out = strip(&input, 1).unwrap();
        assert_eq!(out, skeleton(&[], b""));
        assert_eq!(verify(&out).unwrap(), (32, 16));
    }

    #[test]
    fn orientation_survives_as_the_only_exif_and_verifies() {
        let out = strip(&skeleton(&[], b""), 6).unwrap();
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
        let with_app = skeleton(&[&segment(0xE5, b"vendor")], b"");
        assert!(matches!(verify(&with_app), Err(Error::Verify(_))));
        let with_trailer = skeleton(&[], b"x");
        assert!(matches!(verify(&with_trailer), Err(Error::Verify(_))));
        // An orientation block anywhere but first, or with extra tags, is not ours.
        let late = skeleton(&[&segment(0xDB, b"\0\x01"), &orientation_exif(6)], b"");
        assert!(matches!(verify(&late), Err(Error::Verify(_))));
    }

    #[test]
    fn truncated_file_says_no_eoi() {
        let full = skeleton(&[], b"");
        for cut in [3, 10, full.len() - 2, full.len() - 1] {
            let e = scan(&full[..cut]).unwrap_err().to_string();
            assert!(e.contains("truncated JPEG"), "cut {cut}: {e}");
        }
    }

    #[test]
    fn bogus_segment_length_is_an_error_not_a_panic() {
        let mut v = skeleton(&[], b"");
        v[4] = 0xFF; // DQT length 0xFF04 runs past the end
        assert!(scan(&v).is_err());
        let mut v = skeleton(&[], b"");
        v[4..6].copy_from_slice(&[0, 1]);
        assert!(scan(&v).is_err());
    }

    #[test]
    fn reserved_jpg_marker_is_unsupported_not_copied() {
        let v = skeleton(&[&segment(0xC8, b"x")], b"");
        assert!(matches!(scan(&v), Err(Error::Unsupported { .. })));
        assert!(strip(&v, 1).is_err());
    }

    #[test]
    fn cmyk_jpeg_requires_reencoding() {
        let mut v = skeleton(&[&segment(0xEE, b"Adobe\0\x64\0\0\0\0\x02")], b"");
        let sof = v.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        v[sof + 9] = 4;
        assert!(scan(&v).unwrap().reencode_reason.is_some());
    }
}
