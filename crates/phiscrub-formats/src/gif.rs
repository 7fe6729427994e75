//! GIF block walker. GIF is always re-rendered (decoded and encoded afresh), so the walker's
//! jobs are to inventory what the input carries and to verify that an output holds only image
//! blocks, graphic control extensions and the NETSCAPE2.0 looping extension.

use super::{Category, Found, Scan};
use crate::{Error, Format};

fn err(detail: impl Into<String>) -> Error {
    Error::malformed(Format::Gif, detail)
}

fn truncated() -> Error {
    err("truncated GIF (no trailer)")
}

/// Skips a chain of data sub-blocks starting at `pos`; returns the offset after the terminator.
fn skip_sub_blocks(d: &[u8], mut pos: usize) -> Result<usize, Error> {
    loop {
        let n = *d.get(pos).ok_or_else(truncated)? as usize;
        pos += 1 + n;
        if n == 0 {
            return Ok(pos);
        }
        if pos > d.len() {
            return Err(truncated());
        }
    }
}

fn color_table_len(packed: u8) -> usize {
    if packed & 0x80 != 0 {
        3 << ((packed & 7) + 1)
    } else {
        0
    }
}

/// One block of interest: dropped metadata, or (`None`) an allowed block.
struct Block {
    category: Option<Category>,
    name: &'static str,
    bytes: usize,
}

struct Parsed {
    width: u32,
    height: u32,
    blocks: Vec<Block>,
    frames: u32,
    /// The frames' areas added up, as their descriptors declare them.
    pixels: u64,
    end: usize,
}

fn parse(d: &[u8]) -> Result<Parsed, Error> {
    if d.len() < 13 || !(d.starts_with(b"GIF87a") || d.starts_with(b"GIF89a")) {
        return Err(err("missing GIF header"));
    }
    let width = u32::from(u16::from_le_bytes([d[6], d[7]]));
    let height = u32::from(u16::from_le_bytes([d[8], d[9]]));
    let mut pos = 13 + color_table_len(d[10]);
    let mut blocks = Vec::new();
    let mut frames = 0;
    let mut pixels = 0u64;
    loop {
        let start = pos;
        match *d.get(pos).ok_or_else(truncated)? {
            0x3B => {
                return Ok(Parsed {
                    width,
                    height,
                    blocks,
                    frames,
                    pixels,
                    end: pos + 1,
                })
            }
            0x2C => {
                let packed = *d.get(pos + 9).ok_or_else(truncated)?;
                let fw = u64::from(u16::from_le_bytes([d[pos + 5], d[pos + 6]]));
                let fh = u64::from(u16::from_le_bytes([d[pos + 7], d[pos + 8]]));
                pixels += fw * fh;
                pos += 10 + color_table_len(packed) + 1; // descriptor, local table, LZW size
                pos = skip_sub_blocks(d, pos)?;
                frames += 1;
                blocks.push(Block {
                    category: None,
                    name: "image",
                    bytes: pos - start,
                });
            }
            0x21 => {
                let label = *d.get(pos + 1).ok_or_else(truncated)?;
                let first = d.get(pos + 3..pos + 14).unwrap_or_default();
                pos = skip_sub_blocks(d, pos + 2)?;
                let (category, name) = match label {
                    0xF9 => (None, "graphic control"),
                    0xFF if first == b"NETSCAPE2.0" || first == b"ANIMEXTS1.0" => (None, "looping"),
                    0xFF if first == b"XMP DataXMP" => {
                        (Some(Category::Xmp), "XMP application extension")
                    }
                    0xFF if first == b"ICCRGBG1012" => {
                        (Some(Category::Icc), "ICC application extension")
                    }
                    0xFF => (Some(Category::Other), "application extension"),
                    0xFE => (Some(Category::Comment), "comment extension"),
                    0x01 => (Some(Category::Comment), "plain text extension"),
                    _ => (Some(Category::Other), "unknown extension"),
                };
                blocks.push(Block {
                    category,
                    name,
                    bytes: pos - start,
                });
            }
            b => return Err(err(format!("unexpected block 0x{b:02X} at offset {pos}"))),
        }
    }
}

/// Inventories a GIF: dimensions, comments, application extensions and trailing data.
pub fn scan(d: &[u8]) -> Result<Scan, Error> {
    let p = parse(d)?;
    if p.frames == 0 {
        return Err(err("no image"));
    }
    let mut scan = Scan {
        width: p.width,
        height: p.height,
        frames: p.frames,
        frame_pixels: p.pixels,
        ..Scan::default()
    };
    for b in &p.blocks {
        if let Some(cat) = b.category {
            scan.found.push(Found::new(cat, b.name, b.bytes));
        }
    }
    if p.end < d.len() {
        scan.found.push(Found::new(
            Category::Trailer,
            "data after the GIF trailer",
            d.len() - p.end,
        ));
    }
    Ok(scan)
}

/// Fails unless the output holds only images, graphic control and looping extensions.
pub fn verify(d: &[u8]) -> Result<(u32, u32), Error> {
    let p = parse(d).map_err(|e| Error::Verify(e.to_string()))?;
    if p.end != d.len() {
        return Err(Error::Verify("bytes after the GIF trailer".into()));
    }
    if let Some(b) = p.blocks.iter().find(|b| b.category.is_some()) {
        return Err(Error::Verify(format!("GIF {} is not allowlisted", b.name)));
    }
    if p.frames == 0 {
        return Err(Error::Verify("GIF holds no image".into()));
    }
    Ok((p.width, p.height))
}

/// How many frames a GIF holds and how many pixels they declare, without decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frames {
    /// Image blocks.
    pub count: u32,
    /// Their areas added up.
    pub pixels: u64,
}

/// The frames of a GIF, for limits, without decoding.
pub fn frames(d: &[u8]) -> Result<Frames, Error> {
    let p = parse(d)?;
    Ok(Frames {
        count: p.frames,
        pixels: p.pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gif(ext: &[u8]) -> Vec<u8> {
        let mut v = b"GIF89a\x02\0\x01\0\x80\0\0".to_vec();
        v.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
        v.extend_from_slice(ext);
        v.extend_from_slice(b"\x2C\0\0\0\0\x02\0\x01\0\0\x02\x02\x44\x01\0");
        v.push(0x3B);
        v
    }

    #[test]
    fn comment_is_found_and_refused_by_verify() {
        let with = gif(b"\x21\xFE\x05Dr Jo\0");
        let s = scan(&with).unwrap();
        assert_eq!(s.found[0].category, Category::Comment);
        assert!(verify(&with).is_err());
        assert_eq!(verify(&gif(b"")).unwrap(), (2, 1));
    }

    #[test]
    fn truncated_gif_is_an_error() {
        let g = gif(b"");
        for cut in [5, 13, 20, g.len() - 1] {
            assert!(scan(&g[..cut]).is_err(), "cut {cut}");
        }
    }
}
