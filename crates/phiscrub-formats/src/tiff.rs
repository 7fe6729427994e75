//! TIFF inventory. TIFF is always re-rendered to PNG (its first page), so this module only
//! lists what the input carries — IFD0 text tags, EXIF and GPS IFDs, XMP, IPTC, ICC, SubIFD
//! previews and further pages — and reads orientation, ICC and dimensions.

use super::{Category, Found, Scan};
use crate::{Error, Format};

/// Reads IFD0 with kamadak-exif (which visits each IFD once, so IFD loops cannot hang it).
pub fn scan(d: &[u8]) -> Result<Scan, Error> {
    use exif::{In, Tag, Value};
    let e = exif::Reader::new()
        .read_raw(d.to_vec())
        .map_err(|e| Error::malformed(Format::Tiff, e.to_string().to_lowercase()))?;
    let dim = |t| {
        e.get_field(t, In::PRIMARY)
            .and_then(|f| f.value.get_uint(0))
            .ok_or_else(|| Error::malformed(Format::Tiff, "no image dimensions in IFD0"))
    };
    let mut scan = Scan {
        width: dim(Tag::ImageWidth)?,
        height: dim(Tag::ImageLength)?,
        exif: Some(d.to_vec()),
        ..Scan::default()
    };
    let bytes_of = |v: &Value| match v {
        Value::Byte(b) | Value::Undefined(b, _) => b.len(),
        Value::Ascii(s) => s.iter().map(Vec::len).sum(),
        Value::Long(l) => 4 * l.len(),
        _ => 0,
    };
    let mut text = 0;
    let mut exif_ifd = 0;
    for f in e.fields() {
        if f.ifd_num == In::THUMBNAIL {
            continue;
        }
        match (f.tag.context(), f.tag.number()) {
            (exif::Context::Tiff, 700) => {
                scan.found
                    .push(Found::new(Category::Xmp, "XMP tag", bytes_of(&f.value)))
            }
            (exif::Context::Tiff, 33723 | 34377) => scan.found.push(Found::new(
                Category::Iptc,
                "IPTC/Photoshop tag",
                bytes_of(&f.value),
            )),
            (exif::Context::Tiff, 34675) => {
                if let Value::Undefined(b, _) | Value::Byte(b) = &f.value {
                    scan.icc = Some(b.clone());
                }
                scan.found
                    .push(Found::new(Category::Icc, "ICC tag", bytes_of(&f.value)))
            }
            (exif::Context::Tiff, 330) => scan.found.push(Found::new(
                Category::Thumbnail,
                "SubIFD previews",
                bytes_of(&f.value),
            )),
            (exif::Context::Tiff, _) if matches!(f.value, Value::Ascii(_)) => {
                text += bytes_of(&f.value)
            }
            (exif::Context::Exif | exif::Context::Gps | exif::Context::Interop, _) => {
                exif_ifd += 12 + bytes_of(&f.value)
            }
            _ => {}
        }
    }
    if text > 0 {
        scan.found
            .push(Found::new(Category::Exif, "IFD0 text tags", text));
    }
    if exif_ifd > 0 {
        scan.found
            .push(Found::new(Category::Exif, "EXIF/GPS IFDs", exif_ifd));
    }
    if e.fields().any(|f| f.ifd_num == In::THUMBNAIL) {
        scan.found.push(Found::new(
            Category::Thumbnail,
            "second page or thumbnail IFD",
            0,
        ));
    }
    Ok(scan)
}
