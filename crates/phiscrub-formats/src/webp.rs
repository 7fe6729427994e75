//! WebP (RIFF) chunk walker. The allowlist is VP8, VP8L, ALPH, ANIM and ANMF (whose frames are
//! filtered the same way), with VP8X rewritten so it no longer announces ICC, EXIF or XMP.
//! EXIF, XMP, ICCP, unknown chunks and bytes beyond the RIFF size are dropped.

use super::{le32, Category, Found, Scan};
use crate::{Error, Format};

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
                "truncated WebP ({} at offset {pos} runs past the end)",
                name(&fourcc)
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

/// A chunk's name for messages and reports. The fourcc comes from the file: anything but a
/// printable ASCII character is written as `\xNN`, so a name cannot carry terminal control
/// sequences or text in another script.
fn name(fourcc: &[u8; 4]) -> String {
    format!("{} chunk", super::fourcc_text(fourcc).trim_end())
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
    let u24 = |b: &[u8]| u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16;
    let frames: Vec<&[u8]> = top
        .iter()
        .filter(|c| &c.fourcc == b"ANMF" && c.len >= ANMF_HEADER)
        .map(|c| c.data(d))
        .collect();
    scan.frames = frames.len().max(1) as u32;
    scan.frame_pixels = frames
        .iter()
        .map(|f| (u24(&f[6..9]) + 1) * (u24(&f[9..12]) + 1))
        .sum::<u64>()
        .max(u64::from(width) * u64::from(height));
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
    let (_, hidden) = analyze(d)?;
    scan.found.extend(hidden);
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

/// A frame's picture: its bitstream chunk and, for a lossy one, the alpha before it.
struct Image {
    alph: Option<Vec<u8>>,
    bitstream: Chunk,
}

/// What a WebP's picture is made of.
enum Picture {
    /// A lone VP8 or VP8L chunk.
    Simple(Chunk),
    /// VP8X (flags rewritten), then one still image.
    Still { vp8x: Vec<u8>, image: Image },
    /// VP8X, ANIM and the frames, each its 16-byte header and image.
    Animated {
        vp8x: Vec<u8>,
        anim: Chunk,
        frames: Vec<(Vec<u8>, Image)>,
    },
}

/// Width and height of a VP8 or VP8L bitstream, checking what its header promises fits.
fn bitstream_size(c: &Chunk, d: &[u8]) -> Result<(u32, u32), Error> {
    let p = c.data(d);
    match &c.fourcc {
        b"VP8 " => {
            if p.len() < 10 || p[3..6] != [0x9D, 0x01, 0x2A] || p[0] & 1 != 0 {
                return Err(err("VP8 bitstream is not a key frame"));
            }
            let first_partition =
                (u32::from(p[0]) | u32::from(p[1]) << 8 | u32::from(p[2]) << 16) >> 5;
            if 10 + first_partition as usize > p.len() {
                return Err(err("VP8 bitstream is shorter than its first partition"));
            }
            Ok((
                u32::from(u16::from_le_bytes([p[6], p[7]]) & 0x3FFF),
                u32::from(u16::from_le_bytes([p[8], p[9]]) & 0x3FFF),
            ))
        }
        b"VP8L" => {
            if p.len() < 5 || p[0] != 0x2F || p[4] >> 5 != 0 {
                return Err(err("VP8L bitstream header is invalid"));
            }
            let bits = le32(p, 1).expect("5 bytes");
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        _ => Err(err("not an image bitstream")),
    }
}

/// The image among `chunks` (a still file's, or a frame's): the first VP8 or VP8L chunk,
/// with the ALPH chunk just before it when the image is lossy and `alpha` allows it. An
/// ALPH stored raw must hold exactly one byte per pixel; bytes past that are dropped.
/// Everything else is recorded in `hidden`.
fn image(
    chunks: &[Chunk],
    d: &[u8],
    alpha: bool,
    size: (u32, u32),
    hidden: &mut Vec<Found>,
) -> Result<Image, Error> {
    let at = chunks
        .iter()
        .position(|c| matches!(&c.fourcc, b"VP8 " | b"VP8L"))
        .ok_or_else(|| err("no image bitstream"))?;
    let bitstream = chunks[at];
    if bitstream_size(&bitstream, d)? != size {
        return Err(err("image bitstream size differs from the canvas or frame"));
    }
    let mut alph = None;
    if alpha && &bitstream.fourcc == b"VP8 " {
        if let Some(a) = chunks[..at].iter().rev().find(|c| &c.fourcc == b"ALPH") {
            let p = a.data(d);
            let raw = u64::from(size.0) * u64::from(size.1) + 1;
            alph = Some(match p.first() {
                Some(h) if h & 3 == 0 => {
                    if (p.len() as u64) < raw {
                        return Err(err("ALPH chunk holds fewer bytes than pixels"));
                    }
                    p[..raw as usize].to_vec()
                }
                Some(_) => p.to_vec(),
                None => return Err(err("ALPH chunk is empty")),
            });
        }
    }
    for (i, c) in chunks.iter().enumerate() {
        // The ALPH kept is the last one before the bitstream.
        let kept = i == at
            || (alph.is_some()
                && &c.fourcc == b"ALPH"
                && i < at
                && chunks[i + 1..at].iter().all(|c| &c.fourcc != b"ALPH"));
        if !kept && classify(&c.fourcc).is_none() {
            hidden.push(Found::new(
                Category::Other,
                format!("{} a decoder does not use", name(&c.fourcc)),
                c.end - c.start,
            ));
        }
    }
    if let Some(a) = &alph {
        let stored = chunks[..at]
            .iter()
            .rev()
            .find(|c| &c.fourcc == b"ALPH")
            .map_or(0, |c| c.len);
        if stored > a.len() {
            hidden.push(Found::new(
                Category::Other,
                "ALPH bytes beyond the pixels",
                stored - a.len(),
            ));
        }
    }
    Ok(Image { alph, bitstream })
}

fn analyze(d: &[u8]) -> Result<(Picture, Vec<Found>), Error> {
    let (top, _) = parse(d)?;
    let first = *top.first().ok_or_else(|| err("no chunks"))?;
    let mut hidden = Vec::new();
    if &first.fourcc != b"VP8X" {
        bitstream_size(&first, d)?;
        for c in &top[1..] {
            if classify(&c.fourcc).is_none() {
                hidden.push(Found::new(
                    Category::Other,
                    format!("{} a decoder does not use", name(&c.fourcc)),
                    c.end - c.start,
                ));
            }
        }
        return Ok((Picture::Simple(first), hidden));
    }
    let p = first.data(d);
    if p.len() != 10 {
        return Err(err("VP8X chunk is not 10 bytes"));
    }
    let size = dimensions(d, &top)?;
    let flags = p[0];
    let mut vp8x = p.to_vec();
    vp8x[1..4].fill(0);
    if flags & FLAG_ANIM == 0 {
        vp8x[0] = flags & FLAG_ALPHA;
        let rest: Vec<Chunk> = top[1..]
            .iter()
            .filter(|c| !matches!(&c.fourcc, b"ANIM" | b"ANMF"))
            .copied()
            .collect();
        for c in top[1..]
            .iter()
            .filter(|c| matches!(&c.fourcc, b"ANIM" | b"ANMF"))
        {
            hidden.push(Found::new(
                Category::Other,
                format!("{} in a still image", name(&c.fourcc)),
                c.end - c.start,
            ));
        }
        let image = image(&rest, d, flags & FLAG_ALPHA != 0, size, &mut hidden)?;
        return Ok((Picture::Still { vp8x, image }, hidden));
    }
    vp8x[0] = flags & (FLAG_ALPHA | FLAG_ANIM);
    let anim = *top
        .iter()
        .find(|c| &c.fourcc == b"ANIM")
        .filter(|c| c.len == 6)
        .ok_or_else(|| err("animation without a valid ANIM chunk"))?;
    let mut frames = Vec::new();
    for c in &top[1..] {
        match &c.fourcc {
            b"ANMF" => {
                let subs = frame_chunks(d, c)?;
                let header = c.data(d)[..ANMF_HEADER].to_vec();
                let u24 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
                let (x, y) = (2 * u24(&header[0..3]), 2 * u24(&header[3..6]));
                let (w, h) = (u24(&header[6..9]) + 1, u24(&header[9..12]) + 1);
                if u64::from(x) + u64::from(w) > u64::from(size.0)
                    || u64::from(y) + u64::from(h) > u64::from(size.1)
                {
                    return Err(err("an animation frame lies outside the canvas"));
                }
                let img = image(&subs, d, true, (w, h), &mut hidden)?;
                frames.push((header, img));
            }
            _ if c.start == anim.start => {}
            f if classify(f).is_none() && f != b"VP8X" => hidden.push(Found::new(
                Category::Other,
                format!("{} a decoder does not use", name(f)),
                c.end - c.start,
            )),
            _ => {}
        }
    }
    if frames.is_empty() {
        return Err(err("animation without frames"));
    }
    Ok((Picture::Animated { vp8x, anim, frames }, hidden))
}

fn emit_image(out: &mut Vec<u8>, d: &[u8], img: &Image) {
    if let Some(a) = &img.alph {
        push_chunk(out, b"ALPH", a);
    }
    push_chunk(out, &img.bitstream.fourcc, img.bitstream.data(d));
}

fn emit(d: &[u8], picture: &Picture) -> Vec<u8> {
    let mut body = Vec::with_capacity(d.len());
    match picture {
        Picture::Simple(c) => push_chunk(&mut body, &c.fourcc, c.data(d)),
        Picture::Still { vp8x, image } => {
            push_chunk(&mut body, b"VP8X", vp8x);
            emit_image(&mut body, d, image);
        }
        Picture::Animated { vp8x, anim, frames } => {
            push_chunk(&mut body, b"VP8X", vp8x);
            push_chunk(&mut body, b"ANIM", anim.data(d));
            for (header, img) in frames {
                let mut frame = header.clone();
                emit_image(&mut frame, d, img);
                push_chunk(&mut body, b"ANMF", &frame);
            }
        }
    }
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&body);
    out
}

/// Rebuilds a WebP from its picture alone: one image bitstream (with its alpha) per still
/// image or frame, VP8X announcing no metadata, RIFF size rewritten. The VP8/VP8L/ALPH
/// bitstreams are copied byte for byte.
pub fn strip(d: &[u8]) -> Result<Vec<u8>, Error> {
    let (picture, _) = analyze(d)?;
    Ok(emit(d, &picture))
}

/// Fails unless the WebP is exactly as [`strip`] writes it: allowlisted chunks in canonical
/// form, one bitstream per image, no metadata flags, the RIFF payload ending the file.
pub fn verify(d: &[u8]) -> Result<(u32, u32), Error> {
    let v = |e: Error| Error::Verify(e.to_string());
    let (top, riff_end) = parse(d).map_err(v)?;
    if riff_end != d.len() {
        return Err(Error::Verify(format!(
            "{} bytes after the RIFF payload",
            d.len() - riff_end
        )));
    }
    if let Some(c) = top.iter().find(|c| classify(&c.fourcc).is_some()) {
        return Err(Error::Verify(format!(
            "WebP {} is not allowlisted",
            name(&c.fourcc)
        )));
    }
    let (picture, _) = analyze(d).map_err(v)?;
    if emit(d, &picture) != d {
        return Err(Error::Verify(
            "WebP holds chunks or bytes outside its picture".into(),
        ));
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

    /// A real lossless 10 x 5 bitstream from image-rs's encoder.
    fn vp8l() -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(10, 5, |x, y| image::Rgb([x as u8 * 20, y as u8 * 40, 9]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(
                &mut std::io::Cursor::new(&mut out),
                image::ImageFormat::WebP,
            )
            .unwrap();
        let (top, _) = parse(&out).unwrap();
        top.iter()
            .find(|c| &c.fourcc == b"VP8L")
            .unwrap()
            .data(&out)
            .to_vec()
    }

    /// The 10-byte header of a lossy 10 x 5 key frame (the walker reads no further).
    const VP8: [u8; 10] = [0x10, 0, 0, 0x9D, 0x01, 0x2A, 10, 0, 5, 0];

    fn vp8x(flags: u8) -> [u8; 10] {
        [flags, 0, 0, 0, 9, 0, 0, 4, 0, 0]
    }

    #[test]
    fn exif_xmp_icc_and_trailer_are_dropped_and_flags_rewritten() {
        let input = riff(
            &[
                (b"VP8X", &vp8x(0x2C | FLAG_ALPHA)),
                (b"ICCP", b"icc"),
                (b"VP8L", &vp8l()),
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
        assert_eq!(
            out,
            riff(&[(b"VP8X", &vp8x(FLAG_ALPHA)), (b"VP8L", &vp8l())], b"")
        );
        assert_eq!(verify(&out).unwrap(), (10, 5));
        assert!(verify(&input).is_err());
    }

    #[test]
    fn a_second_bitstream_is_dropped() {
        let input = riff(&[(b"VP8L", &vp8l()), (b"VP8L", b"\x2fJane Example")], b"");
        assert!(verify(&input).is_err());
        let out = strip(&input).unwrap();
        assert_eq!(out, riff(&[(b"VP8L", &vp8l())], b""));
        assert!(scan(&input)
            .unwrap()
            .found
            .iter()
            .any(|f| f.category == Category::Other));
        let extended = riff(
            &[(b"VP8X", &vp8x(0)), (b"VP8L", &vp8l()), (b"VP8 ", &VP8)],
            b"",
        );
        assert_eq!(
            strip(&extended).unwrap(),
            riff(&[(b"VP8X", &vp8x(0)), (b"VP8L", &vp8l())], b"")
        );
    }

    #[test]
    fn alpha_is_kept_only_where_a_decoder_uses_it() {
        let alph = [&[0u8][..], &[0xAA; 50][..], b"Jane Example"].concat();
        // With the alpha flag, before a lossy bitstream: kept, cut to one byte a pixel.
        let with_flag = riff(
            &[
                (b"VP8X", &vp8x(FLAG_ALPHA)),
                (b"ALPH", &alph),
                (b"VP8 ", &VP8),
            ],
            b"",
        );
        let out = strip(&with_flag).unwrap();
        assert_eq!(
            out,
            riff(
                &[
                    (b"VP8X", &vp8x(FLAG_ALPHA)),
                    (b"ALPH", &alph[..51]),
                    (b"VP8 ", &VP8)
                ],
                b""
            )
        );
        verify(&out).unwrap();
        // Without the flag, or beside a lossless bitstream: not picture.
        let no_flag = riff(
            &[(b"VP8X", &vp8x(0)), (b"ALPH", &alph), (b"VP8 ", &VP8)],
            b"",
        );
        assert_eq!(
            strip(&no_flag).unwrap(),
            riff(&[(b"VP8X", &vp8x(0)), (b"VP8 ", &VP8)], b"")
        );
        let lossless = riff(
            &[
                (b"VP8X", &vp8x(FLAG_ALPHA)),
                (b"ALPH", &alph),
                (b"VP8L", &vp8l()),
            ],
            b"",
        );
        assert!(!strip(&lossless).unwrap().windows(4).any(|w| w == b"ALPH"));
    }

    #[test]
    fn unknown_chunk_inside_animation_frame_is_dropped() {
        let mut frame = vec![0u8; ANMF_HEADER];
        frame[6] = 9;
        frame[9] = 4;
        push_chunk(&mut frame, b"VP8L", &vp8l());
        push_chunk(&mut frame, b"XYZW", b"secret");
        let input = riff(
            &[
                (b"VP8X", &vp8x(FLAG_ANIM)),
                (b"ANIM", &[0; 6]),
                (b"ANMF", &frame),
            ],
            b"",
        );
        assert!(verify(&input).is_err());
        let out = strip(&input).unwrap();
        verify(&out).unwrap();
        assert!(!out.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn canvas_and_bitstream_must_agree() {
        let input = riff(
            &[
                (b"VP8X", &[0, 0, 0, 0, 99, 0, 0, 4, 0, 0]),
                (b"VP8L", &vp8l()),
            ],
            b"",
        );
        assert!(strip(&input).is_err());
    }

    #[test]
    fn short_vp8x_anywhere_is_an_error_not_a_panic() {
        let input = riff(&[(b"VP8X", &[1, 2]), (b"VP8L", &vp8l())], b"");
        assert!(strip(&input).is_err());
        // After the bitstream of a simple file it is one more chunk no decoder reads.
        let input = riff(&[(b"VP8L", &vp8l()), (b"VP8X", &[1, 2])], b"");
        assert_eq!(strip(&input).unwrap(), riff(&[(b"VP8L", &vp8l())], b""));
    }

    #[test]
    fn riff_size_beyond_file_is_truncated() {
        let mut input = riff(&[(b"VP8L", &vp8l())], b"");
        input[4] = 0xFF;
        assert!(scan(&input).unwrap_err().to_string().contains("truncated"));
    }
}
