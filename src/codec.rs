//! Pixel codecs for the re-encode path: decoding each input format within limits, and
//! encoding the formats phiscrub writes. Container metadata is the walkers' business; any
//! header an encoder adds is stripped and verified by the pipeline like any other output.

use std::io::Cursor;

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::{AnimationDecoder, DynamicImage, ImageFormat, ImageReader};

use crate::formats::{self, heif, Format};
use crate::{Error, Limits};

/// Decodes the pixels of a single-image file, bounded by `limits`.
pub fn decode(format: Format, input: &[u8], limits: &Limits) -> Result<DynamicImage, Error> {
    let image_format = match format {
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Png => ImageFormat::Png,
        Format::Webp => ImageFormat::WebP,
        Format::Tiff => ImageFormat::Tiff,
        Format::Gif => ImageFormat::Gif,
        Format::Heif => return decode_heif(input, limits),
    };
    let mut reader = ImageReader::with_format(Cursor::new(input), image_format);
    reader.limits(limits.image_limits());
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => Error::Limits(l.to_string()),
        e => Error::decode(format, e),
    })
}

/// Decodes a HEIF's primary image with libheif, which applies irot/imir and crops.
fn decode_heif(input: &[u8], limits: &Limits) -> Result<DynamicImage, Error> {
    use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};
    let ctx = HeifContext::read_from_bytes(input).map_err(heif::err)?;
    let handle = ctx.primary_image_handle().map_err(heif::err)?;
    limits.check_dimensions(handle.width(), handle.height())?;
    let decoded = LibHeif::new()
        .decode(&handle, ColorSpace::Rgb(RgbChroma::Rgb), None)
        .map_err(|e| Error::decode(Format::Heif, e.to_string().to_lowercase()))?;
    let planes = decoded.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| Error::decode(Format::Heif, "no interleaved RGB plane"))?;
    let (w, h) = (plane.width, plane.height);
    let row = w as usize * 3;
    if plane.storage_bits_per_pixel != 24 || plane.stride < row {
        return Err(Error::decode(Format::Heif, "unexpected pixel layout"));
    }
    let mut px = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        px.extend_from_slice(&plane.data[y * plane.stride..y * plane.stride + row]);
    }
    let img = image::RgbImage::from_raw(w, h, px)
        .ok_or_else(|| Error::decode(Format::Heif, "pixel buffer size mismatch"))?;
    Ok(DynamicImage::ImageRgb8(img))
}

/// Encodes pixels as JPEG (`jpeg_quality`), PNG, lossless WebP or a single-frame GIF.
pub fn encode(format: Format, img: &DynamicImage, jpeg_quality: u8) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let enc = |e: image::ImageError| Error::encode(format, e);
    match format {
        Format::Jpeg => {
            let img = match img {
                DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => img.clone(),
                other if other.color().has_color() => other.to_rgb8().into(),
                other => other.to_luma8().into(),
            };
            img.write_with_encoder(JpegEncoder::new_with_quality(&mut out, jpeg_quality))
                .map_err(enc)?
        }
        Format::Png => img
            .write_with_encoder(PngEncoder::new_with_quality(
                &mut out,
                CompressionType::Default,
                FilterType::Adaptive,
            ))
            .map_err(enc)?,
        Format::Webp => {
            let img = match img {
                DynamicImage::ImageLuma8(_)
                | DynamicImage::ImageLumaA8(_)
                | DynamicImage::ImageRgb8(_)
                | DynamicImage::ImageRgba8(_) => img.clone(),
                other if other.color().has_alpha() => other.to_rgba8().into(),
                other => other.to_rgb8().into(),
            };
            img.write_with_encoder(WebPEncoder::new_lossless(&mut out))
                .map_err(enc)?
        }
        Format::Gif => {
            // A single still frame: GIFs with faces are only covered when not animated.
            let frame = image::Frame::new(img.to_rgba8());
            let mut enc = GifEncoder::new(&mut out);
            enc.encode_frame(frame)
                .map_err(|e| Error::encode(Format::Gif, e))?;
        }
        other => return Err(Error::encode(other, "not an output format")),
    }
    Ok(out)
}

/// Decodes every GIF frame and encodes them afresh, keeping timing and looping but nothing
/// else. Frame count and total pixels are bounded before the frames are decoded.
pub fn rerender_gif(input: &[u8], limits: &Limits) -> Result<(Vec<u8>, u32, u32), Error> {
    let frames = formats::gif::frame_count(input)?;
    if frames > limits.max_frames {
        return Err(Error::Limits(format!(
            "{frames} frames exceeds the {} frame limit",
            limits.max_frames
        )));
    }
    let mut decoder =
        GifDecoder::new(Cursor::new(input)).map_err(|e| Error::decode(Format::Gif, e))?;
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    let frame_bytes = u64::from(w) * u64::from(h) * 4;
    if frame_bytes * u64::from(frames) > limits.max_alloc {
        return Err(Error::Limits(format!(
            "{frames} frames of {w}x{h} exceed the {} byte memory limit",
            limits.max_alloc
        )));
    }
    image::ImageDecoder::set_limits(&mut decoder, limits.image_limits())
        .map_err(|e| Error::Limits(e.to_string()))?;
    let frames = decoder
        .into_frames()
        .collect_frames()
        .map_err(|e| Error::decode(Format::Gif, e))?;
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        if frames.len() > 1 {
            enc.set_repeat(Repeat::Infinite)
                .map_err(|e| Error::encode(Format::Gif, e))?;
        }
        enc.encode_frames(frames)
            .map_err(|e| Error::encode(Format::Gif, e))?;
    }
    Ok((out, w, h))
}
