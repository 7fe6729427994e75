//! Text with PP-OCRv4's detector (DBNet): the passes over an image, the model's input tensor,
//! and the post-processing of its probability map into rotated boxes (threshold, dilate,
//! connected components, minimum-area rectangles, box score, unclip), then the merging of
//! boxes across tiles and into blocks.

use image::{GenericImageView, Rgb, RgbImage};

use super::geometry::{self, RotRect, Turn};
use super::search::{self, Windows};
use super::{Model, Tensor};

/// Tuning of text detection. Every number says where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct TextParams {
    /// Probability at which a map pixel is text. Default 0.3 (the package's config).
    pub thresh: f32,
    /// Mean probability inside a box for it to count. Default 0.5 in the package's config;
    /// see `Default` for the value chosen.
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
    /// Height in model pixels the smallest text is scaled to for the tiled pass.
    pub min_text_model: f32,
    /// Long side of the whole-image pass, in model pixels.
    pub whole_side: u32,
    /// Side of a tile in model pixels.
    pub tile: u32,
    /// Overlap between tiles in model pixels.
    pub overlap: u32,
    /// A tiled pass over at most this many pixels runs in one piece.
    pub single_pass_pixels: f64,
    /// Most pixels the tiled pass may look at; bigger images are searched smaller, and the
    /// report says so.
    pub max_tile_pixels: f64,
    /// Also detect on the image turned by a quarter turn, for text running up or down the
    /// photo. Default on.
    pub turns: bool,
    /// Growth of each box on every side, as a share of its height, plus `margin_px` pixels.
    pub margin: f32,
    /// Fixed growth on every side, in original pixels.
    pub margin_px: f32,
    /// Merge boxes lying close together into one block (`--text-blocks`). Default on: a
    /// monitor's patient header or a chart's label area is covered as a whole, without
    /// readable gaps between words.
    pub blocks: bool,
    /// Two boxes are one block when they come within this share of the smaller one's height
    /// of each other.
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

/// Finds text in an upright RGB image with a PP-OCR detection model.
pub fn detect(model: &mut dyn Model, img: &RgbImage, p: &TextParams) -> Result<Found, String> {
    let (w, h) = img.dimensions();
    let turns: &[Turn] = if p.turns {
        &[Turn::None, Turn::Cw90]
    } else {
        &[Turn::None]
    };
    let mut all = Vec::new();
    search::each_turn(img, turns, |view, turn| -> Result<(), String> {
        let (tw, th) = view.dimensions();
        let windows = Windows {
            whole_side: p.whole_side,
            tile_scale: tile_scale(tw, th, p),
            tile: p.tile,
            overlap: p.overlap,
            single_pass_pixels: p.single_pass_pixels,
        };
        search::each_window(view, &windows, |win, tile| -> Result<(), String> {
            for b in run_model(model, &*win, p)? {
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
    let boxes = merge(all, gap)
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
pub fn merge(boxes: Vec<TextBox>, gap: f32) -> Vec<TextBox> {
    let mut groups: Vec<TextBox> = Vec::new();
    let mut pending = boxes;
    // Merging can bring a group within reach of another, so repeat until nothing changes.
    loop {
        let mut changed = false;
        for b in pending {
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
            return groups;
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
