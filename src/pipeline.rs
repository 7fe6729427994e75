//! Scrubbing one image: sniff → scan → (lossless strip | decode → colour → orient → encode) →
//! verify. Detection and redaction will sit between orient and encode; an image with regions
//! to cover will always take the re-encode path.

use std::io::Cursor;

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::metadata::Orientation;
use image::{AnimationDecoder, DynamicImage, ImageFormat, ImageReader};

use crate::color::{self, Verdict};
use crate::formats::{self, exif, heif, Format, Scan};
use crate::report::{self, Inspection, Path, Report};
use crate::{Error, Options};

/// A scrubbed image: the bytes to write and the report of what was done.
#[derive(Debug, Clone)]
pub struct Scrubbed {
    /// The output file's complete contents, already verified.
    pub bytes: Vec<u8>,
    /// What was found and removed.
    pub report: Report,
}

/// Scrubs images. Build it once from [`Options`] and share it: it is `Send + Sync`.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    options: Options,
}

impl Scrubber {
    /// Creates a scrubber.
    pub fn new(options: Options) -> Scrubber {
        Scrubber { options }
    }

    /// The options this scrubber was built with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Scrubs one image held in memory. On success the output has passed verification; on
    /// failure nothing usable is returned.
    pub fn scrub(&self, input: &[u8]) -> Result<Scrubbed, Error> {
        let (format, scan) = self.scan(input)?;
        let mut notes = Vec::new();
        let orientation = match format {
            // libheif applies irot/imir itself; a HEIF's EXIF orientation is informative only.
            Format::Heif => 1,
            _ => scan.exif.as_deref().map(exif::orientation).unwrap_or(1),
        };
        let colour = match (&scan.icc, scan.primaries) {
            (Some(icc), _) => color::judge_icc(icc),
            (None, Some(p)) => color::judge_primaries(p),
            (None, None) => Verdict::Srgb,
        };
        if let Verdict::Unusable(why) = &colour {
            notes.push(format!("{why}; colours kept as stored"));
        }
        let reason = if self.options.reencode {
            Some("re-encoding requested".to_string())
        } else if matches!(format, Format::Heif | Format::Tiff | Format::Gif) {
            Some(format!("{format} is always re-rendered"))
        } else if let Some(r) = &scan.reencode_reason {
            Some(r.clone())
        } else if matches!(colour, Verdict::Convert(_)) {
            Some("colour profile converted to sRGB".to_string())
        } else if orientation != 1 && format != Format::Jpeg {
            Some(format!("orientation {orientation} baked into the pixels"))
        } else {
            None
        };
        if let (Some(why), true) = (&reason, scan.animated && format != Format::Gif) {
            return Err(Error::unsupported(
                format,
                format!("animated image cannot be re-encoded without losing frames ({why})"),
            ));
        }
        let out_format = format.output();
        let (bytes, width, height, path) = match &reason {
            None => {
                let bytes = formats::strip(format, input, orientation)?;
                (bytes, scan.width, scan.height, Path::Lossless)
            }
            Some(_) if format == Format::Gif => {
                let (bytes, w, h) = self.rerender_gif(input)?;
                (bytes, w, h, Path::Reencoded)
            }
            Some(_) => {
                let mut img = self.decode(format, input)?;
                if let Verdict::Convert(profile) = &colour {
                    img = color::to_srgb(img, profile).map_err(|e| Error::decode(format, e))?;
                }
                if let Some(o) = Orientation::from_exif(orientation as u8) {
                    img.apply_orientation(o);
                }
                let (w, h) = (img.width(), img.height());
                let encoded = self.encode(out_format, &img)?;
                // Our own encoders add headers (JFIF); the same allowlist applies to them.
                (
                    formats::strip(out_format, &encoded, 1)?,
                    w,
                    h,
                    Path::Reencoded,
                )
            }
        };
        formats::verify(out_format, &bytes, width, height)?;
        let metadata_bytes = scan.found.iter().map(|f| f.bytes).sum();
        Ok(Scrubbed {
            bytes,
            report: Report {
                input_format: format,
                output_format: out_format,
                width,
                height,
                path,
                reencode_reason: reason,
                orientation,
                removed: report::removed(&scan.found),
                metadata_bytes,
                notes,
            },
        })
    }

    /// Lists what identifying data a file holds, without changing anything.
    pub fn inspect(&self, input: &[u8]) -> Result<Inspection, Error> {
        let (format, scan) = self.scan(input)?;
        let summary = scan.exif.as_deref().and_then(exif::summarize);
        Ok(Inspection {
            format,
            width: scan.width,
            height: scan.height,
            orientation: summary.as_ref().and_then(|s| s.orientation).unwrap_or(1),
            metadata_bytes: scan.found.iter().map(|f| f.bytes).sum(),
            found: scan.found,
            exif: summary,
        })
    }

    fn scan(&self, input: &[u8]) -> Result<(Format, Scan), Error> {
        if input.is_empty() {
            return Err(Error::Empty);
        }
        let limits = &self.options.limits;
        if input.len() as u64 > limits.max_input_bytes {
            return Err(Error::Limits(format!(
                "{} bytes exceeds the {} byte input limit",
                input.len(),
                limits.max_input_bytes
            )));
        }
        let format = Format::sniff(input).ok_or(Error::UnknownFormat)?;
        let scan = formats::scan(format, input, limits)?;
        Ok((format, scan))
    }

    fn decode(&self, format: Format, input: &[u8]) -> Result<DynamicImage, Error> {
        let image_format = match format {
            Format::Jpeg => ImageFormat::Jpeg,
            Format::Png => ImageFormat::Png,
            Format::Webp => ImageFormat::WebP,
            Format::Tiff => ImageFormat::Tiff,
            Format::Gif => ImageFormat::Gif,
            Format::Heif => return self.decode_heif(input),
        };
        let mut reader = ImageReader::with_format(Cursor::new(input), image_format);
        reader.limits(self.options.limits.image_limits());
        reader.decode().map_err(|e| match e {
            image::ImageError::Limits(l) => Error::Limits(l.to_string()),
            e => Error::decode(format, e),
        })
    }

    fn decode_heif(&self, input: &[u8]) -> Result<DynamicImage, Error> {
        use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};
        let ctx = HeifContext::read_from_bytes(input).map_err(heif::err)?;
        let handle = ctx.primary_image_handle().map_err(heif::err)?;
        self.options
            .limits
            .check_dimensions(handle.width(), handle.height())?;
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

    fn encode(&self, format: Format, img: &DynamicImage) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        let enc = |e: image::ImageError| Error::encode(format, e);
        match format {
            Format::Jpeg => {
                let img = match img {
                    DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => img.clone(),
                    other if other.color().has_color() => other.to_rgb8().into(),
                    other => other.to_luma8().into(),
                };
                img.write_with_encoder(JpegEncoder::new_with_quality(
                    &mut out,
                    self.options.jpeg_quality,
                ))
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
            other => return Err(Error::encode(other, "not an output format")),
        }
        Ok(out)
    }

    /// Decodes every frame and encodes them afresh, keeping timing and looping but nothing
    /// else. Frame count and total pixels are bounded before the frames are decoded.
    fn rerender_gif(&self, input: &[u8]) -> Result<(Vec<u8>, u32, u32), Error> {
        let limits = &self.options.limits;
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
}
