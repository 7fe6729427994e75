//! PNG chunk walker. The allowlist is what draws the picture: IHDR, PLTE, tRNS, IDAT, IEND and
//! the APNG animation chunks (acTL, fcTL, fdAT). Text, eXIf, tIME, pHYs, colour chunks, private
//! chunks, C2PA and anything after IEND are dropped. CRCs are checked so a damaged file is
//! reported instead of copied.

use super::{be32, Category, Found, Scan};
use crate::formats::Format;
use crate::Error;

/// The 8-byte PNG signature.
pub const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

const KEEP: [&[u8; 4]; 8] = [
    b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"acTL", b"fcTL", b"fdAT",
];

#[derive(Debug, Clone, Copy)]
struct Chunk {
    kind: [u8; 4],
    start: usize,
    end: usize,
}

impl Chunk {
    fn data(self, d: &[u8]) -> &[u8] {
        &d[self.start + 8..self.end - 4]
    }
}

fn err(detail: impl Into<String>) -> Error {
    Error::malformed(Format::Png, detail)
}

/// Walks chunks up to IEND and returns them with the offset just after IEND.
fn parse(d: &[u8]) -> Result<(Vec<Chunk>, usize), Error> {
    if !d.starts_with(SIGNATURE) {
        return Err(err("missing PNG signature"));
    }
    let mut chunks = Vec::new();
    let mut pos = SIGNATURE.len();
    loop {
        let len = be32(d, pos).ok_or_else(|| err("truncated PNG (no IEND chunk)"))? as usize;
        if len > 0x7FFF_FFFF {
            return Err(err(format!(
                "chunk length {len} at offset {pos} is invalid"
            )));
        }
        let end = pos
            .checked_add(12 + len)
            .filter(|&e| e <= d.len())
            .ok_or_else(|| {
                err(format!(
                    "truncated PNG (chunk at offset {pos} runs past the end)"
                ))
            })?;
        let kind: [u8; 4] = d[pos + 4..pos + 8].try_into().expect("4 bytes");
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(err(format!("invalid chunk type at offset {pos}")));
        }
        let stored = be32(d, end - 4).expect("in bounds");
        if crc32fast::hash(&d[pos + 4..end - 4]) != stored {
            return Err(err(format!(
                "CRC mismatch in {} chunk at offset {pos}",
                String::from_utf8_lossy(&kind)
            )));
        }
        let c = Chunk {
            kind,
            start: pos,
            end,
        };
        chunks.push(c);
        pos = end;
        if &kind == b"IEND" {
            return Ok((chunks, pos));
        }
    }
}

fn classify(c: Chunk, d: &[u8]) -> Option<(Category, String)> {
    use Category::*;
    if KEEP.contains(&&c.kind) {
        return None;
    }
    let name = String::from_utf8_lossy(&c.kind).into_owned();
    let keyword = c.data(d).split(|&b| b == 0).next().unwrap_or_default();
    let cat = match &c.kind {
        b"tEXt" | b"zTXt" | b"iTXt" if keyword == b"XML:com.adobe.xmp" => Xmp,
        b"tEXt" | b"zTXt" | b"iTXt" if keyword.starts_with(b"Raw profile type exif") => Exif,
        b"tEXt" | b"zTXt" | b"iTXt" if keyword.starts_with(b"Raw profile type iptc") => Iptc,
        b"tEXt" | b"zTXt" | b"iTXt" if keyword.starts_with(b"Raw profile type xmp") => Xmp,
        b"tEXt" | b"zTXt" | b"iTXt" => Comment,
        b"eXIf" | b"exIf" => Exif,
        b"iCCP" => Icc,
        b"tIME" => Timestamp,
        b"caBX" => Provenance,
        b"pHYs" | b"sRGB" | b"gAMA" | b"cHRM" | b"cICP" | b"mDCV" | b"cLLI" | b"sBIT" | b"bKGD"
        | b"hIST" | b"sPLT" => Header,
        _ => Other,
    };
    Some((cat, name))
}

fn ihdr(chunks: &[Chunk], d: &[u8]) -> Result<(u32, u32), Error> {
    let first = chunks.first().ok_or_else(|| err("no chunks"))?;
    if &first.kind != b"IHDR" || first.data(d).len() != 13 {
        return Err(err("first chunk is not a valid IHDR"));
    }
    let p = first.data(d);
    Ok((be32(p, 0).expect("13 bytes"), be32(p, 4).expect("13 bytes")))
}

/// Reads the structure of a PNG: dimensions, every non-allowlisted chunk, EXIF and ICC.
pub fn scan(d: &[u8]) -> Result<Scan, Error> {
    let (chunks, end) = parse(d)?;
    let (width, height) = ihdr(&chunks, d)?;
    let mut scan = Scan {
        width,
        height,
        ..Scan::default()
    };
    scan.animated = chunks.iter().any(|c| &c.kind == b"acTL");
    for &c in &chunks {
        if let Some((cat, name)) = classify(c, d) {
            if (c.kind == *b"eXIf" || c.kind == *b"exIf") && scan.exif.is_none() {
                scan.exif = Some(c.data(d).to_vec());
            }
            if c.kind == *b"iCCP" && scan.icc.is_none() {
                scan.icc = inflate_iccp(c.data(d));
            }
            scan.found.push(Found::new(cat, name, c.end - c.start));
        }
    }
    if end < d.len() {
        scan.found.push(Found::new(
            Category::Trailer,
            "data after IEND",
            d.len() - end,
        ));
    }
    Ok(scan)
}

/// iCCP holds a keyword, a compression byte and a zlib stream. Profiles are capped at 4 MiB.
fn inflate_iccp(data: &[u8]) -> Option<Vec<u8>> {
    let nul = data.iter().position(|&b| b == 0)?;
    let z = data.get(nul + 2..)?;
    fdeflate::decompress_to_vec_bounded(z, 4 << 20).ok()
}

/// A chunk: big-endian length, type, data and the CRC over type and data.
pub fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut v = (data.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(data);
    v.extend_from_slice(&crc32fast::hash(&v[4..]).to_be_bytes());
    v
}

/// Copies only the allowlisted chunks; IDAT and frame data are copied byte for byte.
pub fn strip(d: &[u8]) -> Result<Vec<u8>, Error> {
    let (chunks, _) = parse(d)?;
    ihdr(&chunks, d)?;
    let mut out = Vec::with_capacity(d.len());
    out.extend_from_slice(SIGNATURE);
    for &c in &chunks {
        if classify(c, d).is_none() {
            out.extend_from_slice(&d[c.start..c.end]);
        }
    }
    Ok(out)
}

/// Fails unless every chunk is allowlisted, IEND ends the file and the first chunk is IHDR.
pub fn verify(d: &[u8]) -> Result<(u32, u32), Error> {
    let (chunks, end) = parse(d).map_err(|e| Error::Verify(e.to_string()))?;
    if end != d.len() {
        return Err(Error::Verify(format!("{} bytes after IEND", d.len() - end)));
    }
    if let Some(c) = chunks.iter().find(|c| classify(**c, d).is_some()) {
        return Err(Error::Verify(format!(
            "PNG chunk {} is not allowlisted",
            String::from_utf8_lossy(&c.kind)
        )));
    }
    ihdr(&chunks, d).map_err(|e| Error::Verify(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(middle: &[Vec<u8>], trailer: &[u8]) -> Vec<u8> {
        let mut v = SIGNATURE.to_vec();
        v.extend(chunk(b"IHDR", &[0, 0, 0, 3, 0, 0, 0, 2, 8, 2, 0, 0, 0]));
        for m in middle {
            v.extend_from_slice(m);
        }
        v.extend(chunk(b"IDAT", b"pixels"));
        v.extend(chunk(b"IEND", b""));
        v.extend_from_slice(trailer);
        v
    }

    #[test]
    fn text_exif_time_and_trailer_are_dropped() {
        let input = png(
            &[
                chunk(b"tEXt", b"Author\0Dr Who"),
                chunk(b"eXIf", b"MM\0*\0\0\0\x08\0\0\0\0\0\0"),
                chunk(b"tIME", &[7, 234, 1, 2, 3, 4, 5]),
                chunk(b"prVt", b"x"),
            ],
            b"hidden crop",
        );
        let s = scan(&input).unwrap();
        let cats: Vec<_> = s.found.iter().map(|f| f.category).collect();
        use Category::*;
        assert_eq!(cats, [Comment, Exif, Timestamp, Other, Trailer]);
        assert!(s.exif.is_some());
        let out = strip(&input).unwrap();
        assert_eq!(out, png(&[], b""));
        assert_eq!(verify(&out).unwrap(), (3, 2));
        assert!(verify(&input).is_err());
    }

    #[test]
    fn crc_mismatch_is_reported() {
        let mut input = png(&[], b"");
        let n = input.len();
        input[n - 20] ^= 1;
        assert!(scan(&input).unwrap_err().to_string().contains("CRC"));
    }

    #[test]
    fn truncated_png_is_an_error() {
        let input = png(&[], b"");
        for cut in [8, 12, 30, input.len() - 1] {
            assert!(scan(&input[..cut]).is_err(), "cut {cut}");
        }
    }
}
