//! Scrubbing one image: sniff → scan → (lossless strip | decode → colour → orient → encode) →
//! verify. Detection and redaction will sit between orient and encode; an image with regions
//! to cover will always take the re-encode path.

use image::metadata::Orientation;

use crate::codec;
use crate::color::{self, Verdict};
use crate::formats::{self, exif, Format, Scan};
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
                let (bytes, w, h) = codec::rerender_gif(input, &self.options.limits)?;
                (bytes, w, h, Path::Reencoded)
            }
            Some(_) => {
                let mut img = codec::decode(format, input, &self.options.limits)?;
                if let Verdict::Convert(profile) = &colour {
                    img = color::to_srgb(img, profile).map_err(|e| Error::decode(format, e))?;
                }
                if let Some(o) = Orientation::from_exif(orientation as u8) {
                    img.apply_orientation(o);
                }
                // Detection and redaction will work here, on upright sRGB pixels.
                let (w, h) = (img.width(), img.height());
                let encoded = codec::encode(out_format, &img, self.options.jpeg_quality)?;
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
}
