//! WebP (RIFF) chunk walker. The allowlist is VP8, VP8L, ALPH, ANIM and ANMF (whose frames are
//! filtered the same way), with VP8X rewritten so it no longer announces ICC, EXIF or XMP.
//! EXIF, XMP, ICCP, unknown chunks and bytes beyond the RIFF size are dropped.

use super::{le32, Category, Found, Scan};
use crate::formats::Format;
use crate::Error;

const FLAG_ALPHA: u8 = 0x10;
const FLAG_ANIM: u8 = 0x02;
const ANMF_HEADER: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Chunk {
    fourcc: [u8; 4],
    /// Offset of the fourcc.
    start: usize,
    /// Offset just past the payload and its pad byte.
    end: usize,
    len: usize,
}

impl Chunk {
    fn data(self, d: &[u8]) -> &[u8] {
        &d[self.start + 8..self.start + 8 + self.len]
    }
}

fn err(detail: impl Into<String>) -> Error {
    Error::malformed(Format::Webp, detail)
}

/// Walks the chunks in `d[from..to]`.
fn chunks(d: &[u8], from: usize, to: usize) -> Result<Vec<Chunk>, Error> {
    let mut out = Vec::new();
    let mut pos = from;
    while pos < to {
        if pos + 8 > to {
            return Err(err(format!("truncated chunk header at offset {pos}")));
        }
        let fourcc: [u8; 4] = d[pos..pos + 4].try_into().expect("4 bytes");
        let len = le32(d, pos + 4).expect("in bounds") as usize;
        let end = (pos + 8)
            .checked_add(len + (len & 1))
            .ok_or_else(|| err("chunk size overflows"))?;
        if pos + 8 + len > to {
            return Err(err(format!(
                "truncated WebP ({} chunk at offset {pos} runs past the end)",
                String::from_utf8_lossy(&fourcc)
            )));
        }
        out.push(Chunk {
            fourcc,
            start: pos,
            end: end.min(to),
            len,
        });
        pos = end;
    }
    Ok(out)
}

/// The sub-chunks of an ANMF frame, after its 16-byte header.
fn frame_chunks(d: &[u8], anmf: &Chunk) -> Result<Vec<Chunk>, Error> {
    if anmf.len < ANMF_HEADER {
        return Err(err("animation frame header is too short"));
    }
    let base = anmf.start + 8;
    chunks(d, base + ANMF_HEADER, base + anmf.len)
}

/// Returns the top-level chunks and the end of the RIFF payload.
fn parse(d: &[u8]) -> Result<(Vec<Chunk>, usize), Error> {
    if d.len() < 12 || &d[0..4] != b"RIFF" || &d[8..12] != b"WEBP" {
        return Err(err("missing RIFF/WEBP header"));
    }
    let riff_end = 8usize + le32(d, 4).expect("12 bytes") as usize;
    if riff_end > d.len() {
        return Err(err("truncated WebP (RIFF size exceeds the file)"));
    }
    Ok((chunks(d, 12, riff_end)?, riff_end))
}

fn is_image_chunk(fourcc: &[u8; 4]) -> bool {
    matches!(fourcc, b"VP8 " | b"VP8L" | b"ALPH")
}

fn classify(fourcc: &[u8; 4]) -> Option<Category> {
    match fourcc {
        b"VP8X" | b"ANIM" | b"ANMF" => None,
        f if is_image_chunk(f) => None,
        b"EXIF" => Some(Category::Exif),
        b"XMP " => Some(Category::Xmp),
        b"ICCP" => Some(Category::Icc),
        _ => Some(Category::Other),
    }
}

fn name(fourcc: &[u8; 4]) -> String {
    format!("{} chunk", String::from_utf8_lossy(fourcc).trim_end())
}

/// Canvas size from VP8X, or the bitstream header of a simple file.
fn dimensions(d: &[u8], chunks: &[Chunk]) -> Result<(u32, u32), Error> {
    let first = chunks.first().ok_or_else(|| err("no chunks"))?;
    let p = first.data(d);
    let u24 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
    match &first.fourcc {
        b"VP8X" if p.len() >= 10 => Ok((u24(&p[4..7]) + 1, u24(&p[7..10]) + 1)),
        b"VP8 " if p.len() >= 10 && p[3..6] == [0x9D, 0x01, 0x2A] => Ok((
            u32::from(u16::from_le_bytes([p[6], p[7]]) & 0x3FFF),
            u32::from(u16::from_le_bytes([p[8], p[9]]) & 0x3FFF),
        )),
        b"VP8L" if p.len() >= 5 && p[0] == 0x2F => {
            let bits = le32(p, 1).expect("5 bytes");
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        _ => Err(err("first chunk is not VP8X, VP8 or VP8L")),
    }
}

/// Reads the structure of a WebP: dimensions, every non-allowlisted chunk, EXIF and ICC.
pub fn scan(d: &[u8]) -> Result<Scan, Error> {
    let (top, riff_end) = parse(d)?;
    let (width, height) = dimensions(d, &top)?;
    let mut scan = Scan {
        width,
        height,
        ..Scan::default()
    };
    scan.animated = top
        .iter()
        .any(|c| &c.fourcc == b"ANIM" || &c.fourcc == b"ANMF");
    for c in &top {
        if let Some(cat) = classify(&c.fourcc) {
            match &c.fourcc {
                b"EXIF" if scan.exif.is_none() => {
                    let e = c.data(d);
                    // Some writers keep the JPEG-style "Exif\0\0" prefix.
                    scan.exif = Some(e.strip_prefix(b"Exif\0\0").unwrap_or(e).to_vec());
                }
                b"ICCP" if scan.icc.is_none() => scan.icc = Some(c.data(d).to_vec()),
                _ => {}
            }
            scan.found
                .push(Found::new(cat, name(&c.fourcc), c.end - c.start));
        }
        if &c.fourcc == b"ANMF" {
            for sub in frame_chunks(d, c)? {
                if !is_image_chunk(&sub.fourcc) {
                    scan.found.push(Found::new(
                        Category::Other,
                        format!("{} in animation frame", name(&sub.fourcc)),
                        sub.end - sub.start,
                    ));
                }
            }
        }
    }
    if riff_end < d.len() {
        scan.found.push(Found::new(
            Category::Trailer,
            "data after the RIFF payload",
            d.len() - riff_end,
        ));
    }
    Ok(scan)
}

/// Appends a chunk: fourcc, little-endian size, payload and a pad byte to an even length.
pub fn push_chunk(out: &mut Vec<u8>, fourcc: &[u8; 4], payload: &[u8]) {
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    if payload.len() % 2 == 1 {
        out.push(0);
    }
}

/// Copies the allowlisted chunks, rewriting VP8X flags, ANMF frames and the RIFF size. The
/// VP8/VP8L/ALPH bitstreams are copied byte for byte.
pub fn strip(d: &[u8]) -> Result<Vec<u8>, Error> {
    let (top, _) = parse(d)?;
    dimensions(d, &top)?;
    let mut body = Vec::with_capacity(d.len());
    for c in &top {
        let p = c.data(d);
        match &c.fourcc {
            b"VP8X" => {
                if p.len() != 10 {
                    return Err(err("VP8X chunk is not 10 bytes"));
                }
                let mut x = p.to_vec();
                x[0] &= FLAG_ALPHA | FLAG_ANIM;
                x[1..4].fill(0);
                push_chunk(&mut body, b"VP8X", &x);
            }
            b"ANMF" => {
                let subs = frame_chunks(d, c)?;
                let mut frame = p[..ANMF_HEADER].to_vec();
                for sub in subs {
                    if is_image_chunk(&sub.fourcc) {
                        push_chunk(&mut frame, &sub.fourcc, sub.data(d));
                    }
                }
                push_chunk(&mut body, b"ANMF", &frame);
            }
            f if classify(f).is_none() => push_chunk(&mut body, f, p),
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&body);
    Ok(out)
}

/// Fails unless every chunk (and every animation frame's sub-chunk) is allowlisted, VP8X
/// announces no metadata and the RIFF payload ends the file.
pub fn verify(d: &[u8]) -> Result<(u32, u32), Error> {
    let v = |e: Error| Error::Verify(e.to_string());
    let (top, riff_end) = parse(d).map_err(v)?;
    if riff_end != d.len() {
        return Err(Error::Verify(format!(
            "{} bytes after the RIFF payload",
            d.len() - riff_end
        )));
    }
    for c in &top {
        if classify(&c.fourcc).is_some() {
            return Err(Error::Verify(format!(
                "WebP {} is not allowlisted",
                name(&c.fourcc)
            )));
        }
        let p = c.data(d);
        if &c.fourcc == b"VP8X"
            && p.first()
                .is_some_and(|f| f & !(FLAG_ALPHA | FLAG_ANIM) != 0)
        {
            return Err(Error::Verify("VP8X announces metadata".into()));
        }
        if &c.fourcc == b"ANMF" {
            for sub in frame_chunks(d, c).map_err(v)? {
                if !is_image_chunk(&sub.fourcc) {
                    return Err(Error::Verify(format!(
                        "WebP {} in a frame is not allowlisted",
                        name(&sub.fourcc)
                    )));
                }
            }
        }
    }
    dimensions(d, &top).map_err(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn riff(chunks: &[(&[u8; 4], &[u8])], trailer: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        for (f, p) in chunks {
            push_chunk(&mut body, f, p);
        }
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
        v.extend_from_slice(b"WEBP");
        v.extend(body);
        v.extend_from_slice(trailer);
        v
    }

    const VP8X_META: [u8; 10] = [0x2C | FLAG_ALPHA, 0, 0, 0, 9, 0, 0, 4, 0, 0];
    const VP8L: [u8; 5] = [0x2F, 9, 0x40, 1, 0];

    #[test]
    fn exif_xmp_icc_and_trailer_are_dropped_and_flags_rewritten() {
        let input = riff(
            &[
                (b"VP8X", &VP8X_META),
                (b"ICCP", b"icc"),
                (b"VP8L", &VP8L),
                (b"EXIF", b"MM\0*\0\0\0\x08\0\0\0\0\0\0"),
                (b"XMP ", b"<x/>"),
            ],
            b"tail",
        );
        let s = scan(&input).unwrap();
        assert_eq!((s.width, s.height), (10, 5));
        use Category::*;
        let cats: Vec<_> = s.found.iter().map(|f| f.category).collect();
        assert_eq!(cats, [Icc, Exif, Xmp, Trailer]);
        let out = strip(&input).unwrap();
        let mut flags = VP8X_META;
        flags[0] = FLAG_ALPHA;
        assert_eq!(out, riff(&[(b"VP8X", &flags), (b"VP8L", &VP8L)], b""));
        assert_eq!(verify(&out).unwrap(), (10, 5));
        assert!(verify(&input).is_err());
    }

    #[test]
    fn unknown_chunk_inside_animation_frame_is_dropped() {
        let mut frame = vec![0u8; ANMF_HEADER];
        push_chunk(&mut frame, b"VP8L", &VP8L);
        push_chunk(&mut frame, b"XYZW", b"secret");
        let vp8x = [FLAG_ANIM, 0, 0, 0, 9, 0, 0, 4, 0, 0];
        let input = riff(
            &[(b"VP8X", &vp8x), (b"ANIM", &[0; 6]), (b"ANMF", &frame)],
            b"",
        );
        assert!(verify(&input).is_err());
        let out = strip(&input).unwrap();
        verify(&out).unwrap();
        assert!(!out.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn short_vp8x_anywhere_is_an_error_not_a_panic() {
        let input = riff(&[(b"VP8L", &VP8L), (b"VP8X", &[1, 2])], b"");
        assert!(strip(&input).is_err());
    }

    #[test]
    fn riff_size_beyond_file_is_truncated() {
        let mut input = riff(&[(b"VP8L", &VP8L)], b"");
        input[4] = 0xFF;
        assert!(scan(&input).unwrap_err().to_string().contains("truncated"));
    }
}
