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
    /// with it `examples/tune_text` already covers 1400 of 1409 SROIE lines line by line
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
    /// A tiled pass over at most this many pixels runs in one piece. Default 2.5 MP, as for
    /// faces.
    pub single_pass_pixels: f64,
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
            single_pass_pixels: 2.5e6,
            max_tile_pixels: 48e6,
            turns: false,
            margin: 0.2,
            margin_px: 2.0,
            blocks: true,
            block_gap: 1.0,
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
    /// What the user should know about the search (a size limit that was applied).
    pub notes: Vec<String>,
}

/// Finds text in an upright RGB image with a PP-OCR detection model, checking `deadline`
/// before each model run.
pub fn detect(
    model: &mut dyn Model,
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
    let gap = if p.blocks { p.block_gap } else { 0.0 };
    let boxes = merge(all, gap, deadline)?
        .into_iter()
        .map(|b| {
            let m = b.rect.short_side() * p.margin + p.margin_px;
            TextBox {
                rect: b.rect.grow(m, m),
                ..b
            }
        })
        .collect();
    let smallest = p.min_text_model / tile_scale(w, h, p);
    let notes = search::limit_note(w, h, "text", smallest, p.min_text, p.max_tile_pixels)
        .into_iter()
        .collect();
    Ok(Found { boxes, notes })
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
    let (w, h) = img.dimensions();
    let pw = w.div_ceil(32) as usize * 32;
    let ph = h.div_ceil(32) as usize * 32;
    let plane = pw * ph;
    let mut data = vec![0f32; 3 * plane];
    for (x, y, px) in img.pixels() {
        let i = y as usize * pw + x as usize;
        for c in 0..3 {
            data[(2 - c) * plane + i] = f32::from(px.0[c]) / 127.5 - 1.0;
        }
    }
    Tensor {
        shape: vec![1, 3, ph, pw],
        data,
    }
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
    let mut seen = vec![false; w * h];
    let mut stack = Vec::new();
    let mut rows: Vec<(usize, usize, usize)> = Vec::new();
    for start in 0..w * h {
        if !bits[start] || seen[start] {
            continue;
        }
        // One 8-connected component; keep each row's leftmost and rightmost pixel, which
        // hold its convex hull.
        rows.clear();
        seen[start] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            rows.push((y, x, x));
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if bits[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        rows.sort_unstable();
        let mut pts: Vec<[f32; 2]> = Vec::new();
        let mut k = 0;
        while k < rows.len() {
            let y = rows[k].0;
            let (mut lo, mut hi) = (rows[k].1, rows[k].2);
            while k < rows.len() && rows[k].0 == y {
                lo = lo.min(rows[k].1);
                hi = hi.max(rows[k].2);
                k += 1;
            }
            // Pixel centres, as OpenCV's contours give them.
            pts.push([lo as f32 + 0.5, y as f32 + 0.5]);
            pts.push([hi as f32 + 0.5, y as f32 + 0.5]);
        }
        let Some(kernel) = geometry::min_area_rect(&pts) else {
            continue;
        };
        if kernel.short_side() < p.min_size {
            continue;
        }
        let score = box_score(map, stride, w, h, &kernel);
        if score < p.box_thresh {
            continue;
        }
        let (bw, bh) = (kernel.w, kernel.h);
        let d = bw * bh * p.unclip / (2.0 * (bw + bh));
        let rect = kernel.grow(d, d);
        if rect.short_side() < p.min_size + 2.0 {
            continue;
        }
        out.push(TextBox { rect, score });
    }
    out
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
