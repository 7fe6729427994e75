//! Text with PP-OCRv4's detector (DBNet): the passes over an image, the model's input tensor,
//! and the post-processing of its probability map into rotated boxes (threshold, dilate,
//! connected components, minimum-area rectangles, box score, unclip), then the merging of
//! boxes across tiles and into blocks.

use image::{GenericImageView, Rgb, RgbImage};

use super::geometry::{self, RotRect, Turn};
use super::search::{self, Windows};
use super::{Model, Tensor};
use crate::{Deadline, Error};

/// Tuning of text detection. Every number says where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct TextParams {
    /// Probability at which a map pixel is text. Default 0.3 (the package's config).
    pub thresh: f32,
    /// Mean probability inside a box for it to count. Default 0.5 (the package's config):
    /// with it `xtask/src/bin/tune_text.rs` already covers 1400 of 1409 SROIE lines line by line
    /// (99.4%) and all of them in blocks, so there was no recall to buy with noise.
    pub box_thresh: f32,
    /// How far a box is grown back from the shrunk text kernel the model predicts, as
    /// DBNet's `area * ratio / perimeter`. Default 1.6 (the package's config).
    pub unclip: f32,
    /// Dilate the thresholded map by 2x2 before finding components, joining letters the map
    /// splits. Default on (the package's config).
    pub dilate: bool,
    /// Boxes with a shorter side under this many map pixels are noise. Default 3 (DBNet).
    pub min_size: f32,
    /// Smallest text height, in original pixels, that must be found. Default 10 (the brief).
    pub min_text: f32,
    /// Height in model pixels the smallest text is scaled to for the tiled pass. Default 8:
    /// the SROIE receipts shrunk to half size (lines 5 to 64 px) were still covered 98.9%
    /// with 8 and 99.1% with 10, and to 0.35 (lines from 3.5 px) 97.1% at full size, so 8 px
    /// is well inside what the model reads; a 12 MP photo is then searched at 0.8 scale,
    /// about 15% faster than at full size.
    pub min_text_model: f32,
    /// Long side of the whole-image pass, in model pixels. Default 960: large text (a
    /// monitor's numbers, a sign) is found whole; the package itself runs at about 736.
    pub whole_side: u32,
    /// Side of a tile in model pixels. Default 960.
    pub tile: u32,
    /// Overlap between tiles in model pixels. Default 128: a line up to 128 px tall at tile
    /// scale lies whole in some tile; taller text is found by the whole-image pass, and lines
    /// cut by a tile edge are joined again when pieces are merged.
    pub overlap: u32,
    /// A tiled pass over at most this many pixels runs in one piece. Default 1.1 MP, as for
    /// faces. 2.5 MP was faster on a folder of 30 photos (14.4 s against 16.7 s with both
    /// detectors at 2.5 MP) and kept `../shared/data/text` at 1409/1409, but on the 2.2 MP
    /// chart of `fixtures/clinical` one line of small print was 98.9% covered instead of
    /// all of it: the whole-image pass it then leaves out (`whole_reach`) had covered the rest.
    pub single_pass_pixels: f64,
    /// The whole-image pass is left out when the tiled pass runs in one piece at no more than
    /// this many times its scale (see `search::Windows::whole_reach`). Default 2: the one
    /// piece already sees the whole picture, and text twice as large is still read. On
    /// `../shared/data/text` (`xtask/src/bin/tune_text.rs`) 1409/1409 lines stayed covered and time
    /// went from 12.7 to 11.1 s; on `../shared/data/clinical` the lesion share painted stayed
    /// 0.81% and time went from 52.1 to 44.7 s (`xtask/src/bin/measure.rs`).
    pub whole_reach: f32,
    /// Most pixels the tiled pass may look at; bigger images are searched smaller, and the
    /// report says so.
    pub max_tile_pixels: f64,
    /// Also detect on the image turned by a quarter turn. Default off: the detector finds text
    /// at any angle by itself. SROIE receipts turned by 30°, 45°, 60°, 90° and 180° were
    /// covered line by line 98.4%, 99.3%, 99.2%, 98.9% and 99.1% without the turn (99.4%
    /// upright) and 99.7% to 99.9% with it, for twice the time.
    pub turns: bool,
    /// Growth of each box on every side, as a share of its shorter side, plus `margin_px`
    /// pixels. Default 0.2: unclipped boxes already reach the letters' edges; the margin
    /// takes in descenders, accents and the anti-aliased fringe.
    pub margin: f32,
    /// Fixed growth on every side, in original pixels. Default 2.
    pub margin_px: f32,
    /// Merge boxes lying close together into one block (`--text-blocks`). Default on: a
    /// monitor's patient header or a chart's label area is covered as a whole, without
    /// readable gaps between words.
    pub blocks: bool,
    /// Two boxes are one block when they come within this share of the smaller one's height
    /// of each other. Default 1: lines of a paragraph or label (line spacing is about 1.2 to
    /// 1.5 heights, a gap of 0.2 to 0.5) join; separate labels on a monitor stay apart.
    pub block_gap: f32,
    /// Tell text from texture before covering: a candidate that is not clearly a line
    /// (`line_aspect`) must read as characters to PP-OCR's recognizer, or lie among lines that
    /// do. Default on: DBNet fires on lesion borders, skin, sand and clouds as fat blobs with
    /// high scores (0.5 to 0.9, as high as real text), and on `../shared/data/clinical`
    /// without it 41 of 56 photos lost more than 10% of their lesion.
    pub confirm: bool,
    /// A candidate at least this many times longer than tall is a line and is covered without
    /// reading it. Default 3: of the DBNet blobs on the 56 clinical photos none was longer
    /// than 2.7 times its height, while half of all SROIE line boxes are over 3.2.
    pub line_aspect: f32,
    /// Mean confidence of the recognizer's non-blank columns for a candidate to read as
    /// text. Default 0.75: on the clinical photos texture read at 0.61 at most (one to three
    /// "characters"), while the rendered wristband, monitor and chart lines read at 0.93 or
    /// more; SROIE receipts keep 1409 of 1409 lines covered up to 0.8 (blobs that do not read
    /// are paragraphs seen whole by the coarse pass, kept by `block_share`).
    pub read_score: f32,
    /// An unread candidate whose area is at least this share covered by candidates that read
    /// is a block of them (the coarse pass sees a paragraph as one blob) and is
    /// covered. Default 0.25.
    pub block_share: f32,
    /// Most candidates read per image; those beyond it are covered unread. Default 256.
    pub max_reads: usize,
}

impl Default for TextParams {
    fn default() -> Self {
        TextParams {
            thresh: 0.3,
            box_thresh: 0.5,
            unclip: 1.6,
            dilate: true,
            min_size: 3.0,
            min_text: 10.0,
            min_text_model: 8.0,
            whole_side: 960,
            tile: 960,
            overlap: 128,
            single_pass_pixels: 1.1e6,
            whole_reach: 2.0,
            max_tile_pixels: 48e6,
            turns: false,
            margin: 0.2,
            margin_px: 2.0,
            blocks: true,
            block_gap: 1.0,
            confirm: true,
            line_aspect: 3.0,
            read_score: 0.75,
            block_share: 0.25,
            max_reads: 256,
        }
    }
}

/// One text box in upright original pixels, margin not yet added.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextBox {
    /// Where the text is.
    pub rect: RotRect,
    /// Mean probability inside the box (the best of the boxes merged into it).
    pub score: f32,
}

/// What a search for text found.
#[derive(Debug, Default, Clone)]
pub struct Found {
    /// Text boxes (blocks, when merging is on), margin added.
    pub boxes: Vec<TextBox>,
    /// Candidates that did not read as text and lie among no text: not covered, but the file
    /// needs a human look. Margin added.
    pub review: Vec<TextBox>,
    /// What the user should know about the search (a size limit that was applied).
    pub notes: Vec<String>,
}

/// Finds text in an upright RGB image with a PP-OCR detection model, checking `deadline`
/// before each model run.
pub fn detect(
    model: &mut dyn Model,
    reader: Option<&mut dyn Model>,
    img: &RgbImage,
    p: &TextParams,
    deadline: &Deadline,
) -> Result<Found, Error> {
    let (w, h) = img.dimensions();
    let turns: &[Turn] = if p.turns {
        &[Turn::None, Turn::Cw90]
    } else {
        &[Turn::None]
    };
    let mut all = Vec::new();
    search::each_turn(img, turns, deadline, |view, turn| {
        let (tw, th) = view.dimensions();
        let windows = Windows {
            whole_side: p.whole_side,
            tile_scale: tile_scale(tw, th, p),
            tile: p.tile,
            overlap: p.overlap,
            single_pass_pixels: p.single_pass_pixels,
            whole: true,
            tiles: true,
            whole_reach: p.whole_reach,
        };
        search::each_window(view, &windows, deadline, |win, tile| {
            let found = run_model(model, &*win, p)
                .map_err(|e| Error::Detect(format!("text detection failed: {e}")))?;
            for b in found {
                let rect = b.rect.map(|x, y| {
                    let (sx, sy) = tile.point_to_source(x, y);
                    turn.back(sx, sy, w, h)
                });
                all.push(TextBox { rect, ..b });
            }
            Ok(())
        })
    })?;
    let (all, unread) = match reader {
        Some(reader) if p.confirm => confirm(reader, img, all, p, deadline)?,
        _ => (all, Vec::new()),
    };
    let gap = if p.blocks { p.block_gap } else { 0.0 };
    let grow = |b: TextBox| {
        let m = b.rect.short_side() * p.margin + p.margin_px;
        TextBox {
            rect: b.rect.grow(m, m),
            ..b
        }
    };
    let boxes = merge(all, gap, deadline)?.into_iter().map(grow).collect();
    let review = merge(unread, 0.0, deadline)?
        .into_iter()
        .map(grow)
        .collect();
    let smallest = p.min_text_model / tile_scale(w, h, p);
    let notes = search::limit_note(w, h, "text", smallest, p.min_text, p.max_tile_pixels)
        .into_iter()
        .collect();
    Ok(Found {
        boxes,
        review,
        notes,
    })
}

/// Splits candidates into text and texture. A line (at least `line_aspect` long) is text;
/// any other candidate is text when it reads as characters ([`reads_as_text`]) either way up,
/// or when candidates that read cover `block_share` of it (lines are not counted: on skin, a
/// streak of texture would otherwise vouch for the blob around it). The rest are texture.
fn confirm(
    reader: &mut dyn Model,
    img: &RgbImage,
    all: Vec<TextBox>,
    p: &TextParams,
    deadline: &Deadline,
) -> Result<(Vec<TextBox>, Vec<TextBox>), Error> {
    let (mut text, mut lines) = (Vec::new(), Vec::new());
    let mut blobs = Vec::new();
    let mut reads = 0;
    for b in all {
        let long = b.rect.w.max(b.rect.h);
        if long >= p.line_aspect * b.rect.short_side() || reads >= p.max_reads {
            lines.push(b);
            continue;
        }
        deadline.check()?;
        reads += 1;
        let read = |flip: bool, reader: &mut dyn Model| {
            let strip = line_strip(img, &b.rect, flip);
            reader
                .run(&rec_tensor(&strip))
                .and_then(|out| reads_as_text(&out, p.read_score))
                .map_err(|e| Error::Detect(format!("text recognition failed: {e}")))
        };
        if read(false, reader)? || read(true, reader)? {
            text.push(b);
        } else {
            blobs.push(b);
        }
    }
    let (mut block, mut texture) = (Vec::new(), Vec::new());
    for b in blobs {
        let bounds = b.rect.bounds();
        let covered: f32 = text
            .iter()
            .map(|t| t.rect.bounds().intersect(&bounds).area())
            .sum();
        if covered >= p.block_share * bounds.area() {
            block.push(b);
        } else {
            texture.push(b);
        }
    }
    text.extend(block);
    text.extend(lines);
    Ok((text, texture))
}

/// Height of the recognizer's input (PP-OCRv4's `rec_img_shape`).
const REC_HEIGHT: u32 = 48;
/// Widest strip given to the recognizer: 32 times its height, which holds a line of about
/// 60 characters; longer candidates are squeezed.
const REC_MAX_WIDTH: u32 = 32 * REC_HEIGHT;

/// The pixels of `r` straightened into a strip `REC_HEIGHT` tall, read along its longer
/// side (left to right for a level line; `flip` reads it the other way up), sampled
/// bilinearly from `img` with edges clamped.
pub fn line_strip(img: &RgbImage, r: &RotRect, flip: bool) -> RgbImage {
    // Along the longer side, pointing right (or down for an upright line), unless flipped.
    let (mut u, long, short) = if r.w >= r.h {
        (r.u, r.w, r.h)
    } else {
        ([-r.u[1], r.u[0]], r.h, r.w)
    };
    if u[0] < -1e-3 || (u[0].abs() <= 1e-3 && u[1] < 0.0) {
        u = [-u[0], -u[1]];
    }
    if flip {
        u = [-u[0], -u[1]];
    }
    let v = [-u[1], u[0]];
    let width = ((long / short.max(1.0)) * REC_HEIGHT as f32)
        .round()
        .clamp(REC_HEIGHT as f32 / 2.0, REC_MAX_WIDTH as f32) as u32;
    let (iw, ih) = img.dimensions();
    let px = |x: i64, y: i64| {
        img.get_pixel(
            x.clamp(0, iw as i64 - 1) as u32,
            y.clamp(0, ih as i64 - 1) as u32,
        )
        .0
    };
    RgbImage::from_fn(width, REC_HEIGHT, |i, j| {
        let a = ((i as f32 + 0.5) / width as f32 - 0.5) * long;
        let c = ((j as f32 + 0.5) / REC_HEIGHT as f32 - 0.5) * short;
        let x = r.c[0] + a * u[0] + c * v[0] - 0.5;
        let y = r.c[1] + a * u[1] + c * v[1] - 0.5;
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let (x0, y0) = (x0 as i64, y0 as i64);
        let (p00, p10, p01, p11) = (
            px(x0, y0),
            px(x0 + 1, y0),
            px(x0, y0 + 1),
            px(x0 + 1, y0 + 1),
        );
        Rgb(std::array::from_fn(|k| {
            let top = f32::from(p00[k]) * (1.0 - fx) + f32::from(p10[k]) * fx;
            let bottom = f32::from(p01[k]) * (1.0 - fx) + f32::from(p11[k]) * fx;
            (top * (1.0 - fy) + bottom * fy).round() as u8
        }))
    })
}

/// PP-OCR's recognition input: the detector's normalisation (BGR, `(v / 255 - 0.5) / 0.5`),
/// unpadded: the recognizer takes any width.
fn rec_tensor(strip: &RgbImage) -> Tensor {
    let (w, h) = strip.dimensions();
    Tensor::planar(strip, (w as usize, h as usize), [2, 1, 0], normalise)
}

/// Whether the recognizer's output `[1, T, C]` (CTC, blank at index 0) reads as text: at
/// least one character, and the columns that are not blank are on average at least
/// `min_score` sure of their character. Which characters they are is never looked at.
pub fn reads_as_text(out: &[Tensor], min_score: f32) -> Result<bool, String> {
    let [probs, ..] = out else {
        return Err("text recognizer returned no output".into());
    };
    let (t, c) = match probs.shape[..] {
        [1, t, c] if c > 1 => (t, c),
        _ => {
            return Err(format!(
                "text recognizer output has shape {:?}",
                probs.shape
            ))
        }
    };
    let (mut sum, mut n, mut last) = (0f32, 0u32, 0usize);
    for col in probs.data.chunks_exact(c).take(t) {
        let (best, p) =
            col.iter().enumerate().fold(
                (0, f32::NEG_INFINITY),
                |a, (i, &p)| if p > a.1 { (i, p) } else { a },
            );
        // A run of one character counts once, as CTC decoding collapses it.
        if best != 0 && best != last {
            sum += p;
            n += 1;
        }
        last = best;
    }
    Ok(n > 0 && sum / n as f32 >= min_score)
}

fn tile_scale(w: u32, h: u32, p: &TextParams) -> f32 {
    search::tile_scale(w, h, p.min_text, p.min_text_model, p.max_tile_pixels)
}

/// Joins boxes that overlap or come within `gap` times the smaller one's height of each
/// other, each group into the smallest rectangle at any angle holding all of it. With `gap`
/// 0 this only joins the pieces of one line that tiles and turns found separately.
/// Each pass is quadratic in the boxes, and a picture of dense texture can give thousands:
/// the deadline is checked every 256 boxes.
pub fn merge(boxes: Vec<TextBox>, gap: f32, deadline: &Deadline) -> Result<Vec<TextBox>, Error> {
    let mut groups: Vec<TextBox> = Vec::new();
    let mut pending = boxes;
    // Merging can bring a group within reach of another, so repeat until nothing changes.
    loop {
        let mut changed = false;
        for (n, b) in pending.into_iter().enumerate() {
            if n % 256 == 0 {
                deadline.check()?;
            }
            let near = groups.iter().position(|g| {
                let d = gap * g.rect.short_side().min(b.rect.short_side());
                g.rect.near(&b.rect, d)
            });
            match near {
                Some(i) => {
                    let g = &mut groups[i];
                    let mut pts = g.rect.corners().to_vec();
                    pts.extend(b.rect.corners());
                    if let Some(r) = geometry::min_area_rect(&pts) {
                        g.rect = r;
                    }
                    g.score = g.score.max(b.score);
                    changed = true;
                }
                None => groups.push(b),
            }
        }
        if !changed {
            return Ok(groups);
        }
        pending = std::mem::take(&mut groups);
    }
}

/// Runs the model on one window and returns text boxes in the window's pixels.
fn run_model(
    model: &mut dyn Model,
    img: &impl GenericImageView<Pixel = Rgb<u8>>,
    p: &TextParams,
) -> Result<Vec<TextBox>, String> {
    let input = to_tensor(img);
    let out = model.run(&input)?;
    let [map, ..] = &out[..] else {
        return Err("text model returned no output".into());
    };
    let (mh, mw) = match map.shape[..] {
        [1, 1, mh, mw] => (mh, mw),
        _ => return Err(format!("text map has shape {:?}", map.shape)),
    };
    let (w, h) = (img.width() as usize, img.height() as usize);
    if mh < h || mw < w {
        return Err(format!(
            "text map {mw}x{mh} is smaller than its {w}x{h} input"
        ));
    }
    Ok(boxes(&map.data, mw, w, h, p))
}

/// PP-OCR's detection input: NCHW float BGR, `(v / 255 - 0.5) / 0.5`, padded right and
/// bottom to multiples of 32 with zeros (mid-grey after normalising).
pub fn to_tensor(img: &impl GenericImageView<Pixel = Rgb<u8>>) -> Tensor {
    Tensor::planar(img, super::engine::padded_to_32(img), [2, 1, 0], normalise)
}

/// PP-OCR's normalisation of one channel value: `(v / 255 - 0.5) / 0.5`.
fn normalise(v: u8) -> f32 {
    f32::from(v) / 127.5 - 1.0
}

/// DBNet post-processing of a probability map (`stride` values per row) over its first `w`
/// x `h` pixels: boxes in map pixels, already unclipped.
pub fn boxes(map: &[f32], stride: usize, w: usize, h: usize, p: &TextParams) -> Vec<TextBox> {
    let mut bits = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            bits[y * w + x] = map[y * stride + x] > p.thresh;
        }
    }
    if p.dilate {
        // OpenCV's 2x2 kernel with its anchor at (1, 1): a pixel is set when it or its
        // left, upper or upper-left neighbour is.
        for y in (0..h).rev() {
            for x in (0..w).rev() {
                let i = y * w + x;
                bits[i] = bits[i]
                    || (x > 0 && bits[i - 1])
                    || (y > 0 && bits[i - w])
                    || (x > 0 && y > 0 && bits[i - w - 1]);
            }
        }
    }
    let mut out = Vec::new();
    each_component(&bits, w, h, |pts| {
        let Some(kernel) = geometry::min_area_rect(pts) else {
            return;
        };
        if kernel.short_side() < p.min_size {
            return;
        }
        let score = box_score(map, stride, w, h, &kernel);
        if score < p.box_thresh {
            return;
        }
        let (bw, bh) = (kernel.w, kernel.h);
        let d = bw * bh * p.unclip / (2.0 * (bw + bh));
        let rect = kernel.grow(d, d);
        if rect.short_side() < p.min_size + 2.0 {
            return;
        }
        out.push(TextBox { rect, score });
    });
    out
}

/// Calls `each` with the outline points of every 8-connected component of set `bits` (a `w`
/// x `h` mask, row by row): the centres of each row's leftmost and rightmost pixel, which
/// hold the component's convex hull, in row order. One flood fill, no label image: a
/// benchmark against `imageproc`'s labelling is in `benches/geometry.rs`.
pub fn each_component(bits: &[bool], w: usize, h: usize, mut each: impl FnMut(&[[f32; 2]])) {
    let mut seen = vec![false; w * h];
    let mut stack = Vec::new();
    // Each row's extremes, from the component's first row (the fill starts at its first
    // pixel in raster order, so no pixel lies above it).
    let mut rows: Vec<(usize, usize)> = Vec::new();
    let mut pts: Vec<[f32; 2]> = Vec::new();
    for start in 0..w * h {
        if !bits[start] || seen[start] {
            continue;
        }
        let top = start / w;
        rows.clear();
        seen[start] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            let r = y - top;
            if r >= rows.len() {
                rows.resize(r + 1, (usize::MAX, 0));
            }
            let row = &mut rows[r];
            *row = (row.0.min(x), row.1.max(x));
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let j = ny * w + nx;
                    if bits[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        pts.clear();
        for (r, &(lo, hi)) in rows.iter().enumerate() {
            // Pixel centres, as OpenCV's contours give them. A component is connected, so
            // every row between its first and last holds some of it.
            let y = (top + r) as f32 + 0.5;
            pts.push([lo as f32 + 0.5, y]);
            pts.push([hi as f32 + 0.5, y]);
        }
        each(&pts);
    }
}

/// Mean probability of the map pixels whose centres lie inside `r` (DBNet's "fast" score).
fn box_score(map: &[f32], stride: usize, w: usize, h: usize, r: &RotRect) -> f32 {
    let b = r.bounds();
    let x0 = (b.x0.floor().max(0.0) as usize).min(w - 1);
    let x1 = (b.x1.ceil().max(0.0) as usize).min(w - 1);
    let y0 = (b.y0.floor().max(0.0) as usize).min(h - 1);
    let y1 = (b.y1.ceil().max(0.0) as usize).min(h - 1);
    let (mut sum, mut n) = (0f64, 0u32);
    for y in y0..=y1 {
        for x in x0..=x1 {
            if r.contains(x as f32 + 0.5, y as f32 + 0.5) {
                sum += f64::from(map[y * stride + x]);
                n += 1;
            }
        }
    }
    if n == 0 {
        0.0
    } else {
        (sum / f64::from(n)) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::geometry::Rect;

    /// A probability map of `w` x `h` that is `p` inside `r` and 0 elsewhere.
    fn map_with(w: usize, h: usize, r: &RotRect, p: f32) -> Vec<f32> {
        let mut m = vec![0.0; w * h];
        for y in 0..h {
            for x in 0..w {
                if r.contains(x as f32 + 0.5, y as f32 + 0.5) {
                    m[y * w + x] = p;
                }
            }
        }
        m
    }

    #[test]
    fn a_turned_text_kernel_becomes_one_box_at_its_angle_grown_by_unclip() {
        let kernel = RotRect {
            c: [100.0, 60.0],
            u: [30f32.to_radians().cos(), 30f32.to_radians().sin()],
            w: 120.0,
            h: 12.0,
        };
        let p = TextParams {
            dilate: false,
            ..TextParams::default()
        };
        let found = boxes(&map_with(200, 120, &kernel, 0.9), 200, 200, 120, &p);
        assert_eq!(found.len(), 1, "{found:?}");
        let b = &found[0];
        assert!((b.score - 0.9).abs() < 0.05, "{}", b.score);
        // Same direction (either way along it), grown by area * 1.6 / perimeter each side.
        let dot = b.rect.u[0] * kernel.u[0] + b.rect.u[1] * kernel.u[1];
        assert!(dot.abs() > 0.99, "{:?}", b.rect);
        let d = 120.0 * 12.0 * 1.6 / (2.0 * 132.0);
        assert!((b.rect.w - (120.0 + 2.0 * d)).abs() < 3.0, "{:?}", b.rect);
        assert!((b.rect.h - (12.0 + 2.0 * d)).abs() < 3.0, "{:?}", b.rect);
        for c in kernel.corners() {
            assert!(b.rect.contains(c[0], c[1]));
        }
    }

    #[test]
    fn faint_and_tiny_blobs_are_not_text() {
        let p = TextParams::default();
        let faint = RotRect::from_rect(&Rect::xywh(10.0, 10.0, 80.0, 10.0));
        // Above the pixel threshold but under the box threshold.
        assert!(boxes(&map_with(100, 40, &faint, 0.4), 100, 100, 40, &p).is_empty());
        let speck = RotRect::from_rect(&Rect::xywh(10.0, 10.0, 2.0, 2.0));
        assert!(boxes(&map_with(100, 40, &speck, 0.9), 100, 100, 40, &p).is_empty());
    }

    #[test]
    fn the_map_is_read_within_its_stride_only() {
        // A 64-wide map of which only the first 40 columns belong to the image: text in the
        // padding is ignored.
        let r = RotRect::from_rect(&Rect::xywh(45.0, 10.0, 15.0, 8.0));
        assert!(boxes(
            &map_with(64, 32, &r, 0.9),
            64,
            40,
            32,
            &TextParams::default()
        )
        .is_empty());
    }

    #[test]
    fn blocks_join_lines_within_a_line_height_and_pieces_always() {
        let line = |x: f32, y: f32, w: f32| TextBox {
            rect: RotRect::from_rect(&Rect::xywh(x, y, w, 10.0)),
            score: 0.8,
        };
        // Two lines 6 px apart, one far below, and two overlapping pieces of one line.
        let all = vec![
            line(0.0, 0.0, 100.0),
            line(0.0, 16.0, 80.0),
            line(0.0, 200.0, 50.0),
            line(300.0, 0.0, 60.0),
            line(350.0, 0.0, 60.0),
        ];
        let blocks = merge(all.clone(), 1.0, &Deadline::none()).unwrap();
        assert_eq!(blocks.len(), 3, "{blocks:?}");
        let lines = merge(all, 0.0, &Deadline::none()).unwrap();
        assert_eq!(lines.len(), 4, "{lines:?}");
        let joined = lines.iter().find(|b| b.rect.c[0] > 300.0).unwrap();
        assert!((joined.rect.w.max(joined.rect.h) - 110.0).abs() < 0.01);
    }

    /// A recognizer output of `cols` columns over `classes` classes, each column sure at
    /// `p` of the class `best[i]` (0 is CTC's blank).
    fn rec_output(best: &[usize], p: f32, classes: usize) -> Vec<Tensor> {
        let mut data = vec![(1.0 - p) / (classes - 1) as f32; best.len() * classes];
        for (i, &b) in best.iter().enumerate() {
            data[i * classes + b] = p;
        }
        vec![Tensor {
            shape: vec![1, best.len(), classes],
            data,
        }]
    }

    #[test]
    fn a_strip_reads_as_text_when_its_characters_are_sure() {
        // "a a b" with blanks between and a repeat: three characters, sure at 0.9.
        let out = rec_output(&[0, 1, 1, 0, 1, 2, 0], 0.9, 5);
        assert!(reads_as_text(&out, 0.75).unwrap());
        // The same, unsure.
        assert!(!reads_as_text(&rec_output(&[0, 1, 1, 0, 1, 2, 0], 0.5, 5), 0.75).unwrap());
        // Only blanks: nothing to read, however sure.
        assert!(!reads_as_text(&rec_output(&[0, 0, 0], 0.99, 5), 0.75).unwrap());
        let bad = vec![Tensor {
            shape: vec![1, 3],
            data: vec![0.0; 3],
        }];
        assert!(reads_as_text(&bad, 0.75).is_err());
    }

    #[test]
    fn a_strip_is_read_along_the_longer_side_upright_or_flipped() {
        // Left half black, right half white, in a 100 x 20 box at 90°: read along its
        // length, the strip runs from one half to the other.
        let mut img = RgbImage::from_pixel(200, 200, Rgb([255, 255, 255]));
        for y in 0..100 {
            for x in 90..110 {
                img.put_pixel(x, y, Rgb([0, 0, 0]));
            }
        }
        let r = RotRect {
            c: [100.0, 100.0],
            u: [0.0, 1.0],
            w: 200.0,
            h: 20.0,
        };
        let strip = line_strip(&img, &r, false);
        assert_eq!(strip.height(), REC_HEIGHT);
        assert_eq!(strip.width(), 10 * REC_HEIGHT);
        let (first, last) = (strip.get_pixel(5, 24).0, strip.get_pixel(475, 24).0);
        assert_eq!((first, last), ([0, 0, 0], [255, 255, 255]));
        let flipped = line_strip(&img, &r, true);
        assert_eq!(flipped.get_pixel(5, 24).0, [255, 255, 255]);
        // The recognizer's input is the strip itself, unpadded.
        assert_eq!(rec_tensor(&strip).shape, vec![1, 3, 48, 480]);
    }

    /// A recognizer that reads what it is told, counting its runs.
    struct FakeReader {
        reads: bool,
        runs: usize,
    }

    impl Model for FakeReader {
        fn run(&mut self, _: &Tensor) -> Result<Vec<Tensor>, String> {
            self.runs += 1;
            let best = if self.reads { [1, 2, 3] } else { [0, 0, 0] };
            Ok(rec_output(&best, 0.95, 5))
        }
    }

    #[test]
    fn blobs_that_do_not_read_are_texture_unless_read_text_covers_them() {
        let img = RgbImage::from_pixel(400, 400, Rgb([128, 100, 90]));
        let tb = |x: f32, y: f32, w: f32, h: f32| TextBox {
            rect: RotRect::from_rect(&Rect::xywh(x, y, w, h)),
            score: 0.8,
        };
        let p = TextParams::default();
        // A line is text without being read.
        let mut never = FakeReader {
            reads: false,
            runs: 0,
        };
        let (text, texture) = confirm(
            &mut never,
            &img,
            vec![tb(0.0, 0.0, 120.0, 20.0)],
            &p,
            &Deadline::none(),
        )
        .unwrap();
        assert_eq!((text.len(), texture.len(), never.runs), (1, 0, 0));
        // A fat blob that does not read, either way up, is texture.
        let blob = tb(100.0, 100.0, 150.0, 120.0);
        let (text, texture) = confirm(&mut never, &img, vec![blob], &p, &Deadline::none()).unwrap();
        assert_eq!((text.len(), texture.len(), never.runs), (0, 1, 2));
        // One that reads is text.
        let mut always = FakeReader {
            reads: true,
            runs: 0,
        };
        let (text, _) = confirm(&mut always, &img, vec![blob], &p, &Deadline::none()).unwrap();
        assert_eq!((text.len(), always.runs), (1, 1));
    }

    #[test]
    fn the_tensor_is_bgr_scaled_to_minus_one_one_and_padded() {
        let img = RgbImage::from_pixel(33, 2, Rgb([255, 0, 51]));
        let t = to_tensor(&img);
        assert_eq!(t.shape, vec![1, 3, 32, 64]);
        let plane = 32 * 64;
        assert_eq!(t.data[0], 51.0 / 127.5 - 1.0); // B
        assert_eq!(t.data[plane], -1.0); // G
        assert_eq!(t.data[2 * plane], 1.0); // R
        assert_eq!(t.data[40], 0.0); // padding: mid-grey
    }
}
