//! Reading EXIF (TIFF-structured) blocks with kamadak-exif: the orientation that must be baked
//! into the picture, and what identifying kinds of data a block holds, for `inspect`.
//! Values are never returned, only which kinds are present.

use serde::Serialize;

/// Which identifying kinds of data an EXIF block holds; counts of tags, no values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExifSummary {
    /// GPS tags (position, altitude, time, direction).
    pub gps_tags: u32,
    /// Capture, digitisation and modification dates and sub-second/offset tags.
    pub date_tags: u32,
    /// Make, model, software, lens model.
    pub device_tags: u32,
    /// Body, lens and image serial numbers and unique IDs.
    pub serial_tags: u32,
    /// Artist, copyright, camera owner, user comment, image description.
    pub owner_tags: u32,
    /// Bytes of MakerNote (vendor data, often serials and more).
    pub makernote_bytes: u64,
    /// Bytes of the IFD1 thumbnail (a second, small copy of the picture).
    pub thumbnail_bytes: u64,
    /// The Orientation tag (1..=8), if present and valid.
    pub orientation: Option<u16>,
}

/// Parses an EXIF block. Returns `None` when kamadak-exif cannot read it at all.
pub fn summarize(tiff: &[u8]) -> Option<ExifSummary> {
    use exif::{In, Tag};
    let e = exif::Reader::new().read_raw(tiff.to_vec()).ok()?;
    let mut s = ExifSummary::default();
    for f in e.fields() {
        let t = f.tag;
        if f.ifd_num == In::THUMBNAIL {
            continue;
        }
        match t.context() {
            exif::Context::Gps => s.gps_tags += 1,
            _ => match t {
                Tag::DateTime
                | Tag::DateTimeOriginal
                | Tag::DateTimeDigitized
                | Tag::SubSecTime
                | Tag::SubSecTimeOriginal
                | Tag::SubSecTimeDigitized
                | Tag::OffsetTime
                | Tag::OffsetTimeOriginal
                | Tag::OffsetTimeDigitized => s.date_tags += 1,
                Tag::Make | Tag::Model | Tag::Software | Tag::LensMake | Tag::LensModel => {
                    s.device_tags += 1
                }
                Tag::BodySerialNumber | Tag::LensSerialNumber | Tag::ImageUniqueID => {
                    s.serial_tags += 1
                }
                Tag::Artist
                | Tag::Copyright
                | Tag::CameraOwnerName
                | Tag::UserComment
                | Tag::ImageDescription => s.owner_tags += 1,
                Tag::MakerNote => s.makernote_bytes = value_len(&f.value),
                _ => {}
            },
        }
    }
    if let Some(f) = e.get_field(Tag::Orientation, In::PRIMARY) {
        s.orientation = f
            .value
            .get_uint(0)
            .and_then(|o| u16::try_from(o).ok())
            .filter(|o| (1..=8).contains(o));
    }
    if let Some(len) = e
        .get_field(Tag::JPEGInterchangeFormatLength, In::THUMBNAIL)
        .and_then(|f| f.value.get_uint(0))
    {
        s.thumbnail_bytes = u64::from(len);
    }
    Some(s)
}

fn value_len(v: &exif::Value) -> u64 {
    match v {
        exif::Value::Undefined(b, _) | exif::Value::Byte(b) => b.len() as u64,
        _ => 0,
    }
}

/// The orientation recorded in an EXIF block (1 when absent or unreadable). When kamadak-exif
/// rejects a damaged block, image-rs's minimal reader is tried before giving up on it.
pub fn orientation(tiff: &[u8]) -> u16 {
    summarize(tiff)
        .and_then(|s| s.orientation)
        .or_else(|| {
            image::metadata::Orientation::from_exif_chunk(tiff).map(|o| u16::from(o.to_exif()))
        })
        .unwrap_or(1)
}
