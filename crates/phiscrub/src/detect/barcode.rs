//! Barcodes and 2D codes, located with rxing. Decoding is how rxing finds a code; the decoded
//! value is dropped at once and never reaches a log or a report. A 1D result is only a
//! scanline, so the bars are followed up and down from it to their full height; every code is
//! padded by its quiet zone.
//!
//! rxing is built without its MaxiCode reader: in rxing 0.9.3 the MaxiCode detector's scan
//! never ends on an image under 13 pixels wide (a 1 x 16 or 8 x 200 image, or a tall strip
//! shrunk to that) and cannot be stopped from outside. MaxiCode is a parcel-sorting code;
//! the address printed beside it on a label is text, and covered as such. Every other reader
//! is given windows of at most `Scan::long_side` or `Scan::tile` pixels, so each read is
//! bounded, and the deadline is checked between reads.

use image::imageops::{self, FilterType};
use image::GrayImage;
use rxing::common::HybridBinarizer;
use rxing::multi::{GenericMultipleBarcodeReader, MultipleBarcodeReader};
use rxing::{BarcodeFormat, BinaryBitmap, DecodeHints, Luma8LuminanceSource};

use super::geometry::{self, RotRect};
use super::search;
use crate::{Deadline, Error};

/// One scan of the image by rxing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scan {
    /// Long side of the image scanned, in pixels; a bigger image is shrunk to this, a smaller
    /// one is scanned as it is.
    pub long_side: u32,
    /// rxing's TryHarder: more rows for 1D codes, 1D codes turned by 90°, and slower 2D
    /// searches.
    pub try_harder: bool,
    /// Side of the square tiles, overlapping by a quarter, the scaled image is read in; 0
    /// reads it whole. rxing reads one code per region it looks at, and then looks only
    /// beside that code for more: in tiles, codes side by side are all read.
    pub tile: u32,
}

/// Tuning of barcode location.
#[derive(Debug, Clone, PartialEq)]
pub struct BarcodeParams {
    /// The scans run, in order. Default: the whole image at 1600 px with TryHarder (big
    /// codes, and 1D codes at a quarter turn), then 1024 px tiles at up to 4096 px with
    /// TryHarder (small codes, and codes side by side). Measured with
    /// `xtask/src/bin/tune_barcodes.rs` on `../shared/data/barcodes`: each alone reads 41 of 48
    /// photos. On the four-code composite pasted with a fifth code into a 12 MP photo, the
    /// first read the Data Matrix (and a Codabar misread of the photo, covered as a strip) in
    /// 0.85 s, the second the Data Matrix, the QR code and a Code 128 in 2.5 s; both together
    /// took 3.3 s. A single untiled scan at 4096 px without TryHarder read none of them.
    pub scans: Vec<Scan>,
    /// After covering what a scan found, scan again, up to this many times, for codes the
    /// first found code hid from the reader.
    pub rounds: usize,
}

impl Default for BarcodeParams {
    fn default() -> Self {
        BarcodeParams {
            scans: vec![
                Scan {
                    long_side: 1600,
                    try_harder: true,
                    tile: 0,
                },
                Scan {
                    long_side: 4096,
                    try_harder: true,
                    tile: 1024,
                },
            ],
            rounds: 3,
        }
    }
}

/// A code found in the image.
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    /// The area to cover, quiet zone included, in the image's pixels.
    pub rect: RotRect,
    /// The symbology (`QR_CODE`, `CODE_128`, ...); never the content.
    pub format: String,
}

/// Locates every code rxing can read in `img` (upright luma), with the scans of `p`.
/// Fails when rxing reads a code it cannot place, or when `deadline` passes.
pub fn locate(img: &GrayImage, p: &BarcodeParams, deadline: &Deadline) -> Result<Vec<Code>, Error> {
    // Most photos hold no code: copy the image only once there is one to paint out.
    let mut work = std::borrow::Cow::Borrowed(img);
    let mut found: Vec<Code> = Vec::new();
    for scan in &p.scans {
        for _ in 0..p.rounds.max(1) {
            let new = scan_once(&work, img, scan, deadline)?;
            if new.is_empty() {
                break;
            }
            for c in &new {
                // Hide it so the next round sees what it may have shadowed.
                paint(work.to_mut(), &c.rect, 128);
            }
            found.extend(new);
        }
    }
    Ok(found)
}

/// Whether any scan of `p` still reads a code in `img` (for verifying a covered output). A
/// code that is read but cannot be placed counts as readable.
pub fn any_readable(
    img: &GrayImage,
    p: &BarcodeParams,
    deadline: &Deadline,
) -> Result<bool, Error> {
    for s in &p.scans {
        match scan_once(img, img, s, deadline) {
            Ok(c) if c.is_empty() => {}
            Ok(_) | Err(Error::Detect(_)) => return Ok(true),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// One scan of `work` at the scan's size; geometry is measured on `original` (bar heights
/// are followed on the unpainted pixels).
fn scan_once(
    work: &GrayImage,
    original: &GrayImage,
    scan: &Scan,
    deadline: &Deadline,
) -> Result<Vec<Code>, Error> {
    let (w, h) = work.dimensions();
    let scale = (scan.long_side as f32 / w.max(h) as f32).min(1.0);
    let (sw, sh) = geometry::scaled_size(w, h, scale);
    let small;
    let src = if (sw, sh) == (w, h) {
        work
    } else {
        small = imageops::resize(work, sw, sh, FilterType::Triangle);
        &small
    };
    let (fx, fy) = (w as f32 / sw as f32, h as f32 / sh as f32);
    let tile = if scan.tile == 0 {
        sw.max(sh)
    } else {
        scan.tile
    };
    let mut out = Vec::new();
    for t in geometry::tiles(sw, sh, 1.0, tile, tile / 4) {
        deadline.check()?;
        let window = imageops::crop_imm(src, t.x, t.y, t.w, t.h);
        if search::is_flat(&*window) {
            continue;
        }
        for (format, pts) in read(window.to_image(), scan.try_harder) {
            let pts: Vec<[f32; 2]> = pts
                .iter()
                .map(|p| [(p[0] + t.x as f32) * fx, (p[1] + t.y as f32) * fy])
                .collect();
            let located = if is_1d(format) {
                bars(original, &pts)
            } else {
                area_2d(format, &pts)
            };
            // A code was read, so something must be covered: when its geometry cannot be
            // measured, take a generous area around its points.
            let rect = located
                .or_else(|| {
                    let r = geometry::min_area_rect(&pts)?;
                    let m = 0.5 * r.w.max(r.h) + 16.0;
                    Some(r.grow(m, m))
                })
                .ok_or_else(|| {
                    Error::Detect(format!(
                        "barcode location failed: a {format:?} code was read but rxing gave no position"
                    ))
                })?;
            out.push(Code {
                rect,
                format: format!("{format:?}"),
            });
        }
    }
    Ok(out)
}

/// Every code rxing reads in `img`: its symbology and result points. The decoded text is
/// dropped here; only geometry and symbology leave.
fn read(img: GrayImage, try_harder: bool) -> Vec<(BarcodeFormat, Vec<[f32; 2]>)> {
    let (w, h) = img.dimensions();
    let Ok(luma) = Luma8LuminanceSource::new(img.into_raw(), w, h) else {
        return Vec::new();
    };
    let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(luma));
    let hints = DecodeHints {
        TryHarder: Some(try_harder),
        ..DecodeHints::default()
    };
    let mut reader = GenericMultipleBarcodeReader::new(rxing::MultiUseMultiFormatReader::default());
    reader
        .decode_multiple_with_hints(&mut bitmap, &hints)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let pts = r.getPoints().iter().map(|p| [p.x, p.y]).collect();
            (*r.getBarcodeFormat(), pts)
        })
        .collect()
}

fn is_1d(f: BarcodeFormat) -> bool {
    matches!(
        f,
        BarcodeFormat::CODABAR
            | BarcodeFormat::CODE_39
            | BarcodeFormat::CODE_93
            | BarcodeFormat::CODE_128
            | BarcodeFormat::EAN_8
            | BarcodeFormat::EAN_13
            | BarcodeFormat::ITF
            | BarcodeFormat::UPC_A
            | BarcodeFormat::UPC_E
            | BarcodeFormat::UPC_EAN_EXTENSION
            | BarcodeFormat::RSS_14
            | BarcodeFormat::RSS_EXPANDED
    )
}

/// A 2D code's area from its result points, padded by its quiet zone.
fn area_2d(format: BarcodeFormat, pts: &[[f32; 2]]) -> Option<RotRect> {
    let mut pts = pts.to_vec();
    let pad = if format == BarcodeFormat::QR_CODE {
        // The first three points are the finder-pattern centres (then maybe an alignment
        // pattern). The corner finder is the one facing the longest side; the fourth corner
        // completes the parallelogram. Centres sit 3.5 modules in and the quiet zone is 4
        // more; the centres of the smallest code (21 modules) are 14 modules apart, so 7.5 / 14
        // of their spacing is enough for any.
        if pts.len() >= 3 {
            let d = |a: [f32; 2], b: [f32; 2]| (a[0] - b[0]).hypot(a[1] - b[1]);
            let corner = (0..3)
                .max_by(|&i, &j| {
                    let opposite = |k: usize| d(pts[(k + 1) % 3], pts[(k + 2) % 3]);
                    opposite(i).total_cmp(&opposite(j))
                })
                .unwrap_or(1);
            let (a, b, c) = (pts[(corner + 1) % 3], pts[(corner + 2) % 3], pts[corner]);
            pts.push([a[0] + b[0] - c[0], a[1] + b[1] - c[1]]);
        }
        7.5 / 14.0
    } else {
        // Data Matrix, Aztec and PDF417 points are on the symbol's outline; their quiet
        // zones are 1 to 2 modules, well within a fifth of the short side.
        0.2
    };
    let r = geometry::min_area_rect(&pts)?;
    let m = r.short_side().max(8.0) * pad;
    Some(r.grow(m, m))
}

/// A 1D code from the two ends of its scanline: the bars are followed across the line, on
/// both sides, for as long as the pattern along the line stays the same, then the area is
/// padded by the quiet zone (measured in modules, the narrowest bar) and a quarter of the bar
/// height above and below for the digits printed there.
fn bars(img: &GrayImage, pts: &[[f32; 2]]) -> Option<RotRect> {
    let (a, b) = (*pts.first()?, *pts.last()?);
    if !(a.iter().chain(&b).all(|v| v.is_finite())) {
        return None;
    }
    // rxing may put an end a pixel or so beyond the border.
    let inside = |p: [f32; 2]| {
        [
            p[0].clamp(0.0, img.width() as f32 - 1.0),
            p[1].clamp(0.0, img.height() as f32 - 1.0),
        ]
    };
    let (a, b) = (inside(a), inside(b));
    // rxing reads a code turned by up to ~30° along an image row, so the scanline may cross
    // the bars at a slant. The bars' edges give the code's real axis: follow that instead,
    // unless they disagree with the scanline by more than 60° (then it is not bars we read).
    let line = (b[0] - a[0]).hypot(b[1] - a[1]);
    let (a, b) = match along_axis(img, a, b) {
        (p, q) if (q[0] - p[0]).hypot(q[1] - p[1]) >= 0.5 * line => (p, q),
        _ => (a, b),
    };
    let dist = (b[0] - a[0]).hypot(b[1] - a[1]);
    if dist < 2.0 {
        return None;
    }
    let len = dist;
    let u = [(b[0] - a[0]) / len, (b[1] - a[1]) / len];
    let v = [-u[1], u[0]];
    let n = len.ceil() as usize;
    let sample = |off: f32| -> Option<Vec<u8>> {
        (0..n)
            .map(|i| {
                let t = i as f32 + 0.5;
                let x = a[0] + u[0] * t + v[0] * off;
                let y = a[1] + u[1] * t + v[1] * off;
                if x < 0.0 || y < 0.0 || x >= img.width() as f32 || y >= img.height() as f32 {
                    None
                } else {
                    Some(img.get_pixel(x as u32, y as u32).0[0])
                }
            })
            .collect()
    };
    // Each row is binarised at its own midpoint, so light falling off across the label does
    // not break the comparison.
    let bin = |s: &[u8]| -> Vec<bool> {
        let (lo, hi) = s
            .iter()
            .fold((255u8, 0u8), |(l, h), &p| (l.min(p), h.max(p)));
        let cut = (u16::from(lo) + u16::from(hi)) / 2;
        s.iter().map(|&p| u16::from(p) < cut).collect()
    };
    let contrast = |s: &[u8]| {
        let (lo, hi) = s
            .iter()
            .fold((255u8, 0u8), |(l, h), &p| (l.min(p), h.max(p)));
        hi.saturating_sub(lo)
    };
    let edges = |p: &[bool]| p.windows(2).filter(|w| w[0] != w[1]).count();
    let base = sample(0.0)?;
    let pattern = bin(&base);
    let (base_contrast, base_edges) = (contrast(&base), edges(&pattern));
    // The narrowest run of the pattern is about one module.
    let mut runs = Vec::new();
    let mut run = 1usize;
    for w in pattern.windows(2) {
        if w[0] == w[1] {
            run += 1;
        } else {
            runs.push(run);
            run = 1;
        }
    }
    runs.push(run);
    runs.sort_unstable();
    // Every 1D symbology has at least about 20 modules; a longer "narrowest run" means the
    // line crosses something else (a misread of texture), which must not blow the quiet zone
    // up to the size of the photo.
    let module = (runs[runs.len() / 10].max(1) as f32).min((len / 20.0).max(1.0));
    // Agreement of two rows: the best share of `p[i] == q[i + shift]` for shifts within two
    // pixels of `around` (bars of a slanted or curved label drift sideways), and that shift.
    let agree = |p: &[bool], q: &[bool], around: i64| -> (f32, i64) {
        let mut best = (0.0f32, around);
        for shift in around - 2..=around + 2 {
            let same = (0..n as i64)
                .filter(|&i| {
                    let j = i + shift;
                    j >= 0 && (j as usize) < n && p[i as usize] == q[j as usize]
                })
                .count();
            let score = same as f32 / n as f32;
            if score > best.0
                || (score == best.0 && (shift - around).abs() < (best.1 - around).abs())
            {
                best = (score, shift);
            }
        }
        best
    };
    // Follow the bars row by row. Each row must match the last one that matched (so slant is
    // followed) and still the scanline itself where the drift puts it (so a photo's smooth
    // texture, whose neighbouring rows also look alike, is not followed). Returns how far the
    // bars reach and how far they drifted along the line on the way.
    let extent = |dir: f32| -> (f32, f32) {
        let mut last = pattern.clone();
        let (mut reach, mut drift, mut at_reach) = (0.0, 0i64, 0i64);
        let mut misses = 0;
        let mut off = 1.0f32;
        while off < len {
            let Some(raw) = sample(dir * off) else {
                break;
            };
            let row = bin(&raw);
            // Bars, not paper or print: as much contrast and as many edges, roughly.
            let bars = contrast(&raw) >= base_contrast / 2 && edges(&row) * 3 >= base_edges * 2;
            let (score, shift) = agree(&row, &last, 0);
            // `row[i]` matched `last[i + shift]`: this row sits `-shift` along the line.
            let here = drift - shift;
            if bars && score >= 0.8 && agree(&row, &pattern, -here).0 >= 0.7 {
                reach = off;
                misses = 0;
                last = row;
                drift = here;
                at_reach = drift;
            } else if misses < 2 {
                // A scratch or a fold can break a row or two.
                misses += 1;
            } else {
                break;
            }
            off += 1.0;
        }
        (reach, at_reach as f32)
    };
    let ((up, drift_up), (down, drift_down)) = (extent(-1.0), extent(1.0));
    // Printed 1D codes are at least about 15% as tall as they are long; a shorter reach means
    // the following stopped early (glare, a crease), so assume that much on each side.
    let (up, down) = (up.max(0.075 * len), down.max(0.075 * len));
    // The bars run from `drift_up` along the line at the top to `drift_down` at the bottom:
    // slanted bars make the code a parallelogram around the scanline.
    let at = |p: [f32; 2], along: f32, across: f32| {
        [
            p[0] + u[0] * along + v[0] * across,
            p[1] + u[1] * along + v[1] * across,
        ]
    };
    let corners = [
        at(a, drift_up, -up),
        at(b, drift_up, -up),
        at(b, drift_down, down),
        at(a, drift_down, down),
    ];
    let rect = geometry::min_area_rect(&corners)?;
    // Pad along the line by the quiet zone (scanline ends sit inside the start and stop
    // patterns; 10 modules of quiet zone and up to 7 of pattern lie beyond them), across it
    // by a quarter of the bar height for the digits printed there.
    let along_w = (rect.u[0] * u[0] + rect.u[1] * u[1]).abs() >= std::f32::consts::FRAC_1_SQRT_2;
    let (quiet, digits) = (17.0 * module, (0.25 * (up + down)).max(4.0 * module));
    Some(if along_w {
        rect.grow(quiet, digits)
    } else {
        rect.grow(digits, quiet)
    })
}

/// The scanline `a`..`b` turned about its middle onto the direction across the bars: the
/// dominant gradient direction (structure tensor of Sobel gradients) along the line, with
/// the ends projected onto it.
fn along_axis(img: &GrayImage, a: [f32; 2], b: [f32; 2]) -> ([f32; 2], [f32; 2]) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let px = |x: i64, y: i64| {
        f32::from(
            img.get_pixel(x.clamp(0, w - 1) as u32, y.clamp(0, h - 1) as u32)
                .0[0],
        )
    };
    let len = (b[0] - a[0]).hypot(b[1] - a[1]);
    let steps = len.ceil().max(1.0) as usize;
    let (mut jxx, mut jyy, mut jxy) = (0f64, 0f64, 0f64);
    for i in 0..=steps {
        let t = i as f32 / steps as f32;
        let (x, y) = (
            (a[0] + (b[0] - a[0]) * t) as i64,
            (a[1] + (b[1] - a[1]) * t) as i64,
        );
        let gx = px(x + 1, y - 1) + 2.0 * px(x + 1, y) + px(x + 1, y + 1)
            - px(x - 1, y - 1)
            - 2.0 * px(x - 1, y)
            - px(x - 1, y + 1);
        let gy = px(x - 1, y + 1) + 2.0 * px(x, y + 1) + px(x + 1, y + 1)
            - px(x - 1, y - 1)
            - 2.0 * px(x, y - 1)
            - px(x + 1, y - 1);
        let (gx, gy) = (f64::from(gx), f64::from(gy));
        jxx += gx * gx;
        jyy += gy * gy;
        jxy += gx * gy;
    }
    if jxx + jyy == 0.0 {
        return (a, b);
    }
    let theta = 0.5 * (2.0 * jxy).atan2(jxx - jyy);
    let mut g = [theta.cos() as f32, theta.sin() as f32];
    let u = [(b[0] - a[0]) / len, (b[1] - a[1]) / len];
    if g[0] * u[0] + g[1] * u[1] < 0.0 {
        g = [-g[0], -g[1]];
    }
    let c = [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
    let half = len / 2.0 * (g[0] * u[0] + g[1] * u[1]);
    (
        [c[0] - g[0] * half, c[1] - g[1] * half],
        [c[0] + g[0] * half, c[1] + g[1] * half],
    )
}

/// Paints `r` with `value` in `img` (to hide a found code from the next round).
fn paint(img: &mut GrayImage, r: &RotRect, value: u8) {
    let b = r.bounds().clamp(img.width(), img.height());
    let (x, y, w, h) = b.pixels(img.width(), img.height());
    for yy in y..y + h {
        for xx in x..x + w {
            if r.contains(xx as f32 + 0.5, yy as f32 + 0.5) {
                img.put_pixel(xx, yy, image::Luma([value]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rxing::Writer;

    /// `format` holding `content`, drawn at `module` px per module with `quiet` modules of
    /// white around it, turned by `deg` about its centre onto a `size` grey card. Returns the
    /// image and its dark (code) pixels.
    fn card(
        format: BarcodeFormat,
        content: &str,
        module: u32,
        deg: f32,
        size: u32,
    ) -> (GrayImage, Vec<(u32, u32)>) {
        let m = rxing::MultiFormatWriter
            .encode(content, &format, 0, 0)
            .unwrap();
        let one_d = is_1d(format);
        let (mw, mh) = (
            m.width() * module,
            if one_d { 200 } else { m.height() * module },
        );
        // A 1D code's matrix has rows of its own; stretch them to 200 px of bars.
        let row_h = mh as f32 / m.height() as f32;
        let (s, c) = deg.to_radians().sin_cos();
        let half = size as f32 / 2.0;
        let mut dark = Vec::new();
        let img = GrayImage::from_fn(size, size, |x, y| {
            let (dx, dy) = (x as f32 + 0.5 - half, y as f32 + 0.5 - half);
            let (sx, sy) = (
                dx * c + dy * s + mw as f32 / 2.0,
                -dx * s + dy * c + mh as f32 / 2.0,
            );
            let q = 10.0 * module as f32;
            if sx < -q || sy < -q || sx >= mw as f32 + q || sy >= mh as f32 + q {
                return image::Luma([150]);
            }
            let on = sx >= 0.0
                && sy >= 0.0
                && sx < mw as f32
                && sy < mh as f32
                && m.get(sx as u32 / module, (sy / row_h) as u32);
            if on {
                dark.push((x, y));
                image::Luma([20])
            } else {
                image::Luma([240])
            }
        });
        (img, dark)
    }

    #[test]
    fn a_turned_code_128_is_covered_bar_for_bar() {
        // rxing reads 1D codes along image rows: at 20° a row still crosses every bar of
        // this 470 px long, 200 px tall code.
        for deg in [0.0, 12.0, -20.0] {
            let (img, dark) = card(BarcodeFormat::CODE_128, "MRN00482913", 3, deg, 800);
            let codes = locate(&img, &BarcodeParams::default(), &Deadline::none()).unwrap();
            assert!(!codes.is_empty(), "{deg}°: not found");
            // rxing may also misread a part as another symbology; that is covered too.
            assert!(codes.iter().any(|c| c.format == "CODE_128"), "{codes:?}");
            let missed = dark
                .iter()
                .filter(|&&(x, y)| {
                    !codes
                        .iter()
                        .any(|c| c.rect.contains(x as f32 + 0.5, y as f32 + 0.5))
                })
                .count();
            assert_eq!(
                missed,
                0,
                "{deg}°: {missed} of {} bar pixels left out",
                dark.len()
            );
        }
    }

    #[test]
    fn a_qr_code_is_covered_with_its_quiet_zone() {
        let (img, dark) = card(
            BarcodeFormat::QR_CODE,
            "MRN:5519027;ENC:88213-004",
            6,
            10.0,
            500,
        );
        let codes = locate(&img, &BarcodeParams::default(), &Deadline::none()).unwrap();
        assert_eq!(codes.len(), 1, "{codes:?}");
        let r = &codes[0].rect;
        assert!(dark
            .iter()
            .all(|&(x, y)| r.contains(x as f32 + 0.5, y as f32 + 0.5)));
        let after = {
            let mut i = img.clone();
            paint(&mut i, r, 128);
            i
        };
        assert!(!any_readable(&after, &BarcodeParams::default(), &Deadline::none()).unwrap());
    }

    #[test]
    fn a_misread_of_smooth_texture_is_covered_as_a_strip_not_the_whole_photo() {
        // Stripes whose spacing changes slowly from row to row: each row looks like the next,
        // but a few dozen rows on, nothing like the scanline.
        let img = GrayImage::from_fn(800, 600, |x, y| {
            let period = 6.0 + y as f32 / 40.0;
            image::Luma([if (x as f32 / period).sin() > 0.0 {
                30
            } else {
                220
            }])
        });
        let r = bars(&img, &[[10.0, 300.0], [790.0, 300.0]]).unwrap();
        let (long, short) = (r.w.max(r.h), r.w.min(r.h));
        assert!(long < 2.0 * 780.0, "{r:?}");
        assert!(short < 0.5 * 780.0, "{r:?}");
    }

    #[test]
    fn nothing_is_found_on_a_blank_card() {
        let img = GrayImage::from_pixel(300, 200, image::Luma([200]));
        assert!(locate(&img, &BarcodeParams::default(), &Deadline::none())
            .unwrap()
            .is_empty());
    }
}
