//! HEIF/HEIC inventory through libheif. HEIF is never stripped in place: the primary image is
//! decoded (libheif applies irot/imir) and written as JPEG, so thumbnails, depth maps, gain
//! maps, mattes and Exif/XMP items cannot survive. This module lists them for reports.

use std::ffi::c_int;

use libheif_rs::{HeifContext, ItemId};
use libheif_sys as lh;

pub use phiscrub_formats::heif::{check_items, is_heif};

use super::{Category, Found, Scan};
use crate::color::Primaries;
use crate::formats::Format;
use crate::Error;

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
