//! Scrubbing one image: sniff → scan → decode → colour → orient → detect → redact → encode →
//! verify. When detection finds nothing to cover (or the caller asked for metadata only) and
//! nothing else forces a re-encode, the container is stripped losslessly instead and the
//! decoded pixels are thrown away.

use std::collections::BTreeSet;
use std::sync::Arc;

use image::metadata::Orientation;
use image::DynamicImage;

use crate::codec;
use crate::color::{self, Verdict};
use crate::detect::{Categories, Detections, Engine, Rect, Region, RegionId, RegionKind};
use crate::formats::{self, exif, Format, Scan};
use crate::options::DEFAULT_JPEG_QUALITY;
use crate::redact;
use crate::report::{self, Inspection, Path, RegionReport, Report};
use crate::{Deadline, Error, Limit, Options};

/// A scrubbed image: the bytes to write and the report of what was done.
#[derive(Debug, Clone)]
pub struct Scrubbed {
    /// The output file's complete contents, already verified.
    pub bytes: Vec<u8>,
    /// What was found and removed.
    pub report: Report,
}

/// How much a kept id's box must overlap a region found again (intersection over union) to
/// name it: close enough for a pixel's drift between runs, far from any other region.
pub const KEEP_MATCH: f32 = 0.8;

/// A person's corrections to what the detectors found in one photo: boxes they want covered
/// as well, and detected regions they want left uncovered (a lesion taken for text).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Corrections {
    /// Boxes to cover, in the pixels of the upright image (as it is displayed).
    pub cover: Vec<Rect>,
    /// Regions to leave uncovered, by id ([`Region::id`], the report's `id`). The report
    /// lists them under `kept_by_user`. Each names the region of its category that overlaps
    /// its box most, when they overlap by at least [`KEEP_MATCH`] (intersection over union),
    /// so a box one pixel off after a run with other thread counts still matches. An id
    /// that names no region is an error ([`Error::UnknownRegion`]), never ignored.
    pub keep: BTreeSet<RegionId>,
}

impl Corrections {
    /// Boxes to cover and nothing to keep.
    pub fn cover(cover: Vec<Rect>) -> Corrections {
        Corrections {
            cover,
            keep: BTreeSet::new(),
        }
    }
}

/// Scrubs images. Build it once and share it: it is `Send + Sync`, and its detection engine
/// keeps one model session per concurrent caller.
#[derive(Debug, Clone)]
pub struct Scrubber {
    options: Options,
    engine: Option<Arc<Engine>>,
    only: Categories,
}

impl Scrubber {
    /// A scrubber that removes metadata and covers what `engine` detects in the pixels.
    pub fn new(options: Options, engine: Arc<Engine>) -> Scrubber {
        Scrubber {
            options,
            engine: Some(engine),
            only: Categories::default(),
        }
    }

    /// A scrubber that removes metadata only and never looks at the pixels for faces. Reports
    /// list no detectors, so nobody mistakes its output for a fully de-identified image.
    pub fn metadata_only(options: Options) -> Scrubber {
        Scrubber {
            options,
            engine: None,
            only: Categories::default(),
        }
    }

    /// The same scrubber looking for `only` those of its engine's categories: a service
    /// loads every model once and lets each request choose.
    pub fn only(mut self, only: Categories) -> Scrubber {
        self.only = only;
        self
    }

    /// The options this scrubber was built with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The detection engine, when there is one.
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_deref()
    }

    /// Scrubs one image held in memory. On success the output has passed verification; on
    /// failure nothing usable is returned.
    pub fn scrub(&self, input: &[u8]) -> Result<Scrubbed, Error> {
        self.scrub_with(input, &[])
    }

    /// Scrubs one image and also covers `manual` boxes, given in the pixels of the upright
    /// image (as it is displayed, orientation applied).
    ///
    /// The stages, in order: read the container, decide from it what the pixels need,
    /// decode and search them, choose the route once (lossless copy, GIF re-render or
    /// re-encode), write by that route, verify, and report.
    pub fn scrub_with(&self, input: &[u8], manual: &[Rect]) -> Result<Scrubbed, Error> {
        self.scrub_corrected(input, &Corrections::cover(manual.to_vec()))
    }

    /// Scrubs one image with a person's corrections: covers `fix.cover` as well, and leaves
    /// the regions named in `fix.keep` uncovered, recording them in the report.
    pub fn scrub_corrected(&self, input: &[u8], fix: &Corrections) -> Result<Scrubbed, Error> {
        let manual = &fix.cover[..];
        let deadline = Deadline::after(self.options.limits.timeout);
        let (format, mut scan) = self.scan(input)?;
        let plan = Look::plan(format, &scan, &self.options, self.engine.is_some(), manual);
        plan.refuse_animation(format, &scan)?;
        let mut notes = plan.notes.clone();
        let (pixels, mut detections) = self.look(format, input, &plan, manual, &deadline)?;
        keep_uncovered(&mut detections, &fix.keep)?;
        notes.extend(detections.notes.iter().cloned());
        let route = Route::choose(format, plan.reencode.clone(), detections.regions.len());
        let (bytes, width, height) = match &route {
            Route::Lossless => {
                let bytes =
                    formats::strip_scanned(format, input, scan.stripped.take(), plan.orientation)?;
                (bytes, scan.width, scan.height)
            }
            Route::Rerender(_) => codec::rerender_gif(input, &self.options.limits, &deadline)?,
            Route::Reencode(_) => {
                let img = pixels.ok_or_else(|| {
                    Error::Verify("the picture was not decoded for re-encoding".into())
                })?;
                self.cover_and_encode(format, &scan, img, &detections.regions, &deadline)?
            }
        };
        let out_format = format.output();
        formats::verify(out_format, &bytes, width, height)?;
        deadline.check()?;
        Ok(Scrubbed {
            bytes,
            report: self.report(ReportParts {
                format,
                scan: &scan,
                route,
                orientation: plan.orientation,
                width,
                height,
                detections: &detections,
                notes,
            }),
        })
    }

    /// Decodes, colour-corrects and turns upright the pixels when the plan needs them, and
    /// looks for faces, text and codes in them; adds the caller's manual boxes.
    fn look(
        &self,
        format: Format,
        input: &[u8],
        plan: &Look,
        manual: &[Rect],
        deadline: &Deadline,
    ) -> Result<(Option<DynamicImage>, Detections), Error> {
        let mut detections = Detections::default();
        if !plan.needs_pixels {
            return Ok((None, detections));
        }
        let mut img = codec::decode(format, input, &self.options.limits)?;
        deadline.check()?;
        if let Verdict::Convert(profile) = &plan.colour {
            img = color::to_srgb(img, profile).map_err(|e| Error::decode(format, e))?;
        }
        if let Some(o) = Orientation::from_exif(plan.orientation as u8) {
            img.apply_orientation(o);
        }
        if let Some(engine) = &self.engine {
            detections = match &img {
                DynamicImage::ImageRgb8(rgb) => engine.detect_only(rgb, deadline, self.only)?,
                other => engine.detect_only(&other.to_rgb8(), deadline, self.only)?,
            };
        }
        let (w, h) = (img.width(), img.height());
        for m in manual {
            let rect = m.clamp(w, h);
            if rect.area() == 0.0 {
                return Err(Error::Region {
                    region: [m.x0, m.y0, m.w(), m.h()],
                    width: w,
                    height: h,
                });
            }
            detections.regions.push(Region {
                kind: RegionKind::Manual,
                rect,
                outline: None,
                score: None,
                detector: "manual".to_string(),
                model_sha256: None,
                symbology: None,
            });
        }
        Ok((Some(img), detections))
    }

    /// Covers the regions, encodes, strips our own encoder's headers, and checks that the
    /// covered pixels came through and that no covered code can still be read.
    fn cover_and_encode(
        &self,
        format: Format,
        scan: &Scan,
        mut img: DynamicImage,
        regions: &[Region],
        deadline: &Deadline,
    ) -> Result<(Vec<u8>, u32, u32), Error> {
        let out_format = format.output();
        redact::apply(&mut img, regions, &self.options.redaction);
        let (w, h) = (img.width(), img.height());
        let quality = self
            .options
            .jpeg_quality
            .or(scan.jpeg_quality)
            .unwrap_or(DEFAULT_JPEG_QUALITY);
        let fill = [self.options.redaction.fill];
        let encoded = codec::encode(out_format, &img, quality, &fill)?;
        deadline.check()?;
        // Our own encoders add headers (JFIF); the same allowlist applies to them. GIF
        // has no strip of its own: its verifier accepts only images and looping.
        let bytes = match out_format {
            Format::Gif => encoded,
            _ => formats::strip(out_format, &encoded, 1)?,
        };
        let decoded = verify_covered(out_format, &bytes, &img, regions, &self.options)?;
        let codes_covered = regions.iter().any(|r| r.kind == RegionKind::Barcode);
        deadline.check()?;
        if let (true, Some(engine), Some(out)) = (codes_covered, &self.engine, decoded) {
            // A code read again from the output means its cover missed some bars.
            if engine.code_readable(&out, deadline)? {
                return Err(Error::Verify(
                    "a barcode can still be read in the covered output".into(),
                ));
            }
        }
        Ok((bytes, w, h))
    }

    fn report(&self, p: ReportParts<'_>) -> Report {
        let redaction = &self.options.redaction;
        let (width, height) = (p.width, p.height);
        // Boxes are in upright pixels. A lossless JPEG keeps its stored size and its
        // orientation tag, so for a quarter turn the upright size is the stored one swapped.
        let (bw, bh) = match (&p.route, p.orientation) {
            (Route::Lossless, 5..=8) => (height, width),
            _ => (width, height),
        };
        let regions = p
            .detections
            .regions
            .iter()
            .map(|r| RegionReport::new(r, bw, bh, Some(redaction.style(r.kind))))
            .collect();
        let unstyled = |list: &[Region]| -> Vec<RegionReport> {
            list.iter()
                .map(|r| RegionReport::new(r, bw, bh, None))
                .collect()
        };
        let review = unstyled(&p.detections.review);
        let (path, reencode_reason) = match p.route {
            Route::Lossless => (Path::Lossless, None),
            Route::Rerender(why) | Route::Reencode(why) => (Path::Reencoded, Some(why)),
        };
        Report {
            input_format: p.format,
            output_format: p.format.output(),
            width,
            height,
            path,
            reencode_reason,
            orientation: p.orientation,
            removed: report::removed(&p.scan.found),
            metadata_bytes: p.scan.found.iter().map(|f| f.bytes).sum(),
            detectors: self
                .engine
                .as_ref()
                .map(|e| e.detectors_for(self.only))
                .unwrap_or_default(),
            regions,
            needs_review: !review.is_empty(),
            review,
            kept_by_user: unstyled(&p.detections.kept),
            notes: p.notes,
        }
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
            return Err(Error::limit(
                Limit::InputBytes,
                format!(
                    "{} bytes exceeds the {} byte input limit",
                    input.len(),
                    limits.max_input_bytes
                ),
            ));
        }
        let format = Format::sniff(input).ok_or(Error::UnknownFormat)?;
        let scan = formats::scan(format, input, limits)?;
        Ok((format, scan))
    }
}

/// Moves the regions a person chose to keep out of those to cover. Every id must name a
/// region of this photo.
fn keep_uncovered(detections: &mut Detections, keep: &BTreeSet<RegionId>) -> Result<(), Error> {
    if keep.is_empty() {
        return Ok(());
    }
    let mut chosen = BTreeSet::new();
    for id in keep {
        let best = detections
            .regions
            .iter()
            .enumerate()
            .filter(|(_, r)| r.kind == id.kind)
            .map(|(i, r)| (i, r.rect.iou(&id.rect())))
            .filter(|(_, overlap)| *overlap >= KEEP_MATCH)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((i, _)) => chosen.insert(i),
            None => return Err(Error::UnknownRegion { id: id.to_string() }),
        };
    }
    let mut kept = Vec::new();
    for (i, r) in std::mem::take(&mut detections.regions)
        .into_iter()
        .enumerate()
    {
        if chosen.contains(&i) {
            kept.push(r);
        } else {
            detections.regions.push(r);
        }
    }
    detections.kept = kept;
    Ok(())
}

/// What the pixels need, decided from the container alone before anything is decoded.
struct Look {
    /// The EXIF orientation to bake in (1 for HEIF, which libheif turns itself).
    orientation: u16,
    /// What the colour profile asks for.
    colour: Verdict,
    /// Why the picture must be re-encoded whatever is found, if it must.
    reencode: Option<String>,
    /// Whether the picture is decoded: to look at it, or to re-encode it (a GIF without
    /// regions is re-rendered frame by frame instead).
    needs_pixels: bool,
    /// Notes for the report (a colour profile that cannot be used).
    notes: Vec<String>,
    /// Whether the pixels are looked at (detection or manual boxes).
    looks: bool,
}

impl Look {
    fn plan(
        format: Format,
        scan: &Scan,
        options: &Options,
        detecting: bool,
        manual: &[Rect],
    ) -> Look {
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
        let mut notes = Vec::new();
        if let Verdict::Unusable(why) = &colour {
            notes.push(format!("{why}; colours kept as stored"));
        }
        let reencode = if options.reencode {
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
        let looks = detecting || !manual.is_empty();
        let needs_pixels = looks || (reencode.is_some() && format != Format::Gif);
        Look {
            orientation,
            colour,
            reencode,
            needs_pixels,
            notes,
            looks,
        }
    }

    /// An animation whose pixels would be needed is refused: only the first frame would
    /// survive a re-encode, and faces, text and codes cannot be covered in every frame.
    fn refuse_animation(&self, format: Format, scan: &Scan) -> Result<(), Error> {
        let animated = scan.animated || (format == Format::Gif && scan.frames > 1);
        if !(animated && self.needs_pixels) {
            return Ok(());
        }
        let why = if self.looks {
            "faces, text and codes cannot be covered in every frame of an animation; its \
             metadata alone can be scrubbed without detection"
                .to_string()
        } else {
            format!(
                "animated image cannot be re-encoded without losing frames ({})",
                self.reencode.as_deref().unwrap_or_default()
            )
        };
        Err(Error::unsupported(format, why))
    }
}

/// How the output is written, chosen once per image.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    /// The container copied with only allowlisted structures: the pixel data byte for byte.
    Lossless,
    /// A GIF re-rendered from its indexed frames, keeping palette and timing; why.
    Rerender(String),
    /// The picture decoded, covered where needed and encoded again; why.
    Reencode(String),
}

impl Route {
    fn choose(format: Format, reencode: Option<String>, covered: usize) -> Route {
        let why = match (covered, reencode) {
            (0, None) => return Route::Lossless,
            (0, Some(r)) => r,
            (n, None) => format!("{n} region(s) covered"),
            (n, Some(r)) => format!("{n} region(s) covered; {r}"),
        };
        if format == Format::Gif && covered == 0 {
            Route::Rerender(why)
        } else {
            Route::Reencode(why)
        }
    }
}

/// What the report is made from.
struct ReportParts<'a> {
    format: Format,
    scan: &'a Scan,
    route: Route,
    orientation: u16,
    width: u32,
    height: u32,
    detections: &'a Detections,
    notes: Vec<String>,
}

/// Decodes the encoded output and checks that every covered region carries what redaction
/// put there, up to compression error: the pixels the user gets are the ones we covered.
/// Returns the decoded output, for further checks (`None` when there was nothing to check).
fn verify_covered(
    format: Format,
    bytes: &[u8],
    covered: &DynamicImage,
    regions: &[Region],
    options: &Options,
) -> Result<Option<image::RgbImage>, Error> {
    if regions.is_empty() {
        return Ok(None);
    }
    let decoded = codec::decode(format, bytes, &options.limits)
        .map_err(|e| Error::Verify(format!("output does not decode: {e}")))?
        .to_rgb8();
    let want = match covered.as_rgb8() {
        Some(rgb) => std::borrow::Cow::Borrowed(rgb),
        None => std::borrow::Cow::Owned(covered.to_rgb8()),
    };
    if decoded.dimensions() != want.dimensions() {
        return Err(Error::Verify(
            "output size differs from the covered image".into(),
        ));
    }
    let (w, h) = want.dimensions();
    for r in regions {
        let (x, y, rw, rh) = r.rect.pixels(w, h);
        let (mut sum, mut n) = (0u64, 0u64);
        for yy in y..y + rh {
            for xx in x..x + rw {
                // A slanted text line's bounds hold much that is not covered; compare only
                // what is, so a missing cover cannot hide among untouched pixels.
                if r.outline.is_some() && !r.covers(xx, yy) {
                    continue;
                }
                let (a, b) = (decoded.get_pixel(xx, yy).0, want.get_pixel(xx, yy).0);
                sum += a
                    .iter()
                    .zip(b)
                    .map(|(p, q)| u64::from(p.abs_diff(q)))
                    .sum::<u64>();
                n += 3;
            }
        }
        // JPEG at quality 1 stays within ~25 levels of a flat fill on average; a region that
        // kept the original pixels differs by far more.
        if n > 0 && sum > 30 * n {
            return Err(Error::Verify(format!(
                "a {} region is not covered in the encoded output",
                r.kind
            )));
        }
    }
    Ok(Some(decoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(kind: RegionKind, rect: Rect) -> Region {
        Region {
            kind,
            rect,
            outline: None,
            score: Some(0.9),
            detector: "test".into(),
            model_sha256: None,
            symbology: None,
        }
    }

    #[test]
    fn a_region_id_is_its_category_and_whole_pixel_box_and_reads_back() {
        let a = region(RegionKind::Face, Rect::xywh(10.2, 20.0, 30.0, 40.0));
        let id = a.id(1000, 1000);
        assert_eq!(id.to_string(), "face-10-20-31-40");
        assert_eq!("FACE-10-20-31-40 ".parse::<RegionId>(), Ok(id));
        for bad in [
            "",
            "face",
            "face-1-2-3",
            "face-1-2-3-0",
            "face-1-2-3-4-5",
            "lesion-1-2-3-4",
            "face--1-2-3-4",
            "../x",
        ] {
            assert!(bad.parse::<RegionId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn keeping_moves_the_named_region_out_within_a_pixel_and_refuses_unknown_names() {
        let face = region(RegionKind::Face, Rect::xywh(0.0, 0.0, 10.0, 10.0));
        let text = region(RegionKind::Text, Rect::xywh(20.0, 0.0, 30.0, 10.0));
        let near = region(RegionKind::Text, Rect::xywh(21.0, 0.0, 30.0, 10.0));
        let mut d = Detections {
            regions: vec![face.clone(), text.clone(), near.clone()],
            ..Detections::default()
        };
        // Named from an earlier run whose box came out a pixel wider: the closest one only.
        let earlier: RegionId = "text-19-0-31-10".parse().unwrap();
        keep_uncovered(&mut d, &BTreeSet::from([earlier])).unwrap();
        assert_eq!(d.regions, vec![face.clone(), near]);
        assert_eq!(d.kept, vec![text]);
        // The same box under another category, or far off, names nothing.
        for wrong in ["face-20-0-30-10", "text-0-40-30-10"] {
            let mut d = Detections {
                regions: vec![face.clone()],
                ..Detections::default()
            };
            let err = keep_uncovered(&mut d, &BTreeSet::from([wrong.parse().unwrap()]));
            assert!(matches!(err, Err(Error::UnknownRegion { .. })), "{wrong}");
            assert_eq!(
                d.regions.len(),
                1,
                "nothing is uncovered when a name is wrong"
            );
        }
    }
}
