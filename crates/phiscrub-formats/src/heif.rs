//! HEIF's box structure, read without libheif: whether bytes are HEIF at all, and how many
//! items a file declares, bounded before libheif (in the engine) parses it.

use super::{be16, be32, Error, Format, Limit};

const BRANDS: [&[u8; 4]; 8] = [
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
];

/// Whether the bytes start with an ISO-BMFF `ftyp` box naming a HEIF brand (AVIF excluded).
pub fn is_heif(d: &[u8]) -> bool {
    if d.len() < 16 || &d[4..8] != b"ftyp" {
        return false;
    }
    let size = (u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize).min(d.len());
    let brands: Vec<&[u8]> = std::iter::once(&d[8..12])
        .chain(d[16.min(size)..size].chunks_exact(4))
        .collect();
    brands.iter().any(|b| BRANDS.iter().any(|h| &h[..] == *b))
        && !brands.iter().any(|b| *b == b"avif" || *b == b"avis")
}

/// Counts what a HEIF file declares before libheif parses it: the items of every top-level
/// `meta` box (`iinf`, `iloc` and `ipma` entries) and their references (`iref`: a grid's
/// tiles, thumbnails, auxiliary images). libheif 1.15's parse time grows with the square of
/// these counts (16 000 tiles in 700 KB took 39 s here), so they are bounded first.
pub fn check_items(d: &[u8], max: u32) -> Result<(), Error> {
    let over = |what: &str, n: u64| {
        Error::limit(
            Limit::HeifItems,
            format!("HEIF declares {n} {what}, over the {max} item limit"),
        )
    };
    for (kind, body) in boxes(d)? {
        if &kind != b"meta" {
            continue;
        }
        let children = body.get(4..).ok_or_else(|| err("meta box is too short"))?;
        for (kind, b) in boxes(children)? {
            let version = b.first().copied().unwrap_or(0);
            let (items, what) = match &kind {
                b"iinf" if version == 0 => (u64::from(be16(b, 4).unwrap_or(0)), "items"),
                b"iinf" => (u64::from(be32(b, 4).unwrap_or(0)), "items"),
                b"iloc" if version < 2 => (u64::from(be16(b, 6).unwrap_or(0)), "item locations"),
                b"iloc" => (u64::from(be32(b, 6).unwrap_or(0)), "item locations"),
                b"iref" => (references(b)?, "item references"),
                b"iprp" => {
                    let mut n = 0u64;
                    for (kind, p) in boxes(b)? {
                        if &kind == b"ipma" {
                            n += u64::from(be32(p, 4).unwrap_or(0));
                        }
                    }
                    (n, "item properties")
                }
                _ => continue,
            };
            if items > u64::from(max) {
                return Err(over(what, items));
            }
        }
    }
    Ok(())
}

/// The references an `iref` box holds, added up over its reference boxes.
fn references(b: &[u8]) -> Result<u64, Error> {
    let id = if b.first().copied().unwrap_or(0) == 0 {
        2
    } else {
        4
    };
    let mut n = 0u64;
    for (_, r) in boxes(b.get(4..).unwrap_or_default())? {
        n += u64::from(be16(r, id).unwrap_or(0));
    }
    Ok(n)
}

/// A box's type and body.
type Box<'a> = ([u8; 4], &'a [u8]);

/// The boxes in `d`, without descending into them.
fn boxes(d: &[u8]) -> Result<Vec<Box<'_>>, Error> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= d.len() {
        let size = be32(d, pos).expect("in bounds") as u64;
        let kind: [u8; 4] = d[pos + 4..pos + 8].try_into().expect("4 bytes");
        let (header, size) = match size {
            0 => (8, (d.len() - pos) as u64),
            1 => (
                16,
                be64(d, pos + 8).ok_or_else(|| err("truncated box header"))?,
            ),
            n => (8, n),
        };
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| pos.checked_add(s))
            .filter(|&e| size >= header as u64 && e <= d.len())
            .ok_or_else(|| err(format!("box at offset {pos} runs past its container")))?;
        out.push((kind, &d[pos + header..end]));
        pos = end;
    }
    Ok(out)
}

fn be64(d: &[u8], at: usize) -> Option<u64> {
    d.get(at..at + 8)
        .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
}

fn err(detail: impl Into<String>) -> Error {
    Error::malformed(Format::Heif, detail)
}
