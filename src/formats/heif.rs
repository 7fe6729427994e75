//! HEIF/HEIC inventory through libheif. HEIF is never stripped in place: the primary image is
//! decoded (libheif applies irot/imir) and written as JPEG, so thumbnails, depth maps, gain
//! maps, mattes and Exif/XMP items cannot survive. This module lists them for reports.

use std::ffi::c_int;

use libheif_rs::{HeifContext, ItemId};
use libheif_sys as lh;

use super::{be16, be32, Category, Found, Scan};
use crate::color::Primaries;
use crate::formats::Format;
use crate::Error;

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
        Error::Limits(format!(
            "HEIF declares {n} {what}, over the {max} item limit"
        ))
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

/// libheif's messages can quote bytes of the file (box types); they are made printable.
pub(crate) fn err(e: impl std::fmt::Display) -> Error {
    let text = e.to_string().to_lowercase();
    Error::malformed(Format::Heif, crate::report::printable(&text).into_owned())
}

/// Lists the items beside the primary image's pixels: metadata blocks, thumbnails, depth and
/// auxiliary images, further top-level images and the colour profile.
pub fn scan(d: &[u8]) -> Result<Scan, Error> {
    let ctx = HeifContext::read_from_bytes(d).map_err(err)?;
    let h = ctx.primary_image_handle().map_err(err)?;
    let mut scan = Scan {
        width: h.width(),
        height: h.height(),
        ..Scan::default()
    };
    let n = h.number_of_metadata_blocks(0).max(0) as usize;
    let mut ids: Vec<ItemId> = vec![0; n];
    let n = h.metadata_block_ids(&mut ids, 0);
    for &id in &ids[..n] {
        let kind = h.metadata_type(id).unwrap_or("");
        let ctype = h.metadata_content_type(id).unwrap_or("");
        let size = h.metadata_size(id);
        let (cat, name) = match (kind, ctype) {
            ("Exif", _) => (Category::Exif, "Exif item"),
            (_, "application/rdf+xml") => (Category::Xmp, "XMP item"),
            _ => (Category::Other, "metadata item"),
        };
        if cat == Category::Exif && scan.exif.is_none() {
            // An Exif item starts with a 4-byte offset to the TIFF header.
            if let Ok(block) = h.metadata(id) {
                let off = block
                    .get(..4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                    .unwrap_or(0);
                scan.exif = block.get(4 + off..).map(<[u8]>::to_vec);
            }
        }
        scan.found.push(Found::new(cat, name, size));
    }
    for _ in 0..h.number_of_thumbnails() {
        scan.found
            .push(Found::new(Category::Thumbnail, "thumbnail image", 0));
    }
    for _ in 0..auxiliary_images(d) {
        scan.found.push(Found::new(
            Category::AuxImage,
            "auxiliary image (depth, alpha, matte or gain map)",
            0,
        ));
    }
    for _ in 1..ctx.number_of_top_level_images() {
        scan.found
            .push(Found::new(Category::AuxImage, "further top-level image", 0));
    }
    if let Some(p) = h.color_profile_raw() {
        scan.found.push(Found::new(
            Category::Icc,
            "ICC colour profile",
            p.data.len(),
        ));
        scan.icc = Some(p.data);
    } else if let Some(nclx) = h.color_profile_nclx() {
        use libheif_rs::ColorPrimaries as P;
        scan.primaries = match nclx.color_primaries() {
            P::SMPTE_EG_432_1 => Some(Primaries::DisplayP3),
            P::ITU_R_BT_2020_2_and_2100_0 => Some(Primaries::Bt2020),
            _ => None,
        };
    }
    Ok(scan)
}

/// libheif-rs does not expose auxiliary images, so they are counted through libheif's C API.
fn auxiliary_images(d: &[u8]) -> usize {
    // SAFETY: every pointer comes from libheif and is checked for null before use; the
    // context reads from `d` without copying and is freed before `d` goes out of scope.
    unsafe {
        let ctx = lh::heif_context_alloc();
        if ctx.is_null() {
            return 0;
        }
        let mut count = 0;
        let e = lh::heif_context_read_from_memory_without_copy(
            ctx,
            d.as_ptr().cast(),
            d.len(),
            std::ptr::null(),
        );
        if e.code == lh::heif_error_code_heif_error_Ok {
            let mut h = std::ptr::null_mut();
            let e = lh::heif_context_get_primary_image_handle(ctx, &mut h);
            if e.code == lh::heif_error_code_heif_error_Ok && !h.is_null() {
                count = lh::heif_image_handle_get_number_of_auxiliary_images(h, 0 as c_int);
                count += lh::heif_image_handle_get_number_of_depth_images(h);
                lh::heif_image_handle_release(h);
            }
        }
        lh::heif_context_free(ctx);
        count.max(0) as usize
    }
}
