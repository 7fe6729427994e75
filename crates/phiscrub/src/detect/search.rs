//! How a detector looks at one image: once whole at a modest size for big things, then in
//! overlapping tiles at the scale where the smallest thing it must find is still big enough
//! for the model. Faces and text share this; only the numbers differ.

use std::borrow::Cow;

use image::imageops::{self, FilterType};
use image::{RgbImage, SubImage};

use super::geometry::{self, Tile, Turn};
use crate::{Deadline, Error};

/// The passes over one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Windows {
    /// Long side of the whole-image pass, in model pixels (never enlarged).
    pub whole_side: u32,
    /// Scale of the tiled pass; it runs only when clearly finer than the whole pass.
    pub tile_scale: f32,
    /// Side of a tile in model pixels.
    pub tile: u32,
    /// Overlap between tiles in model pixels.
    pub overlap: u32,
    /// A tiled pass covering at most this many pixels goes to the model in one piece.
    pub single_pass_pixels: f64,
    /// Run the whole-image pass.
    pub whole: bool,
    /// Run the tiled pass (when it is finer than the whole one).
    pub tiles: bool,
    /// The whole pass is left out when the tiled pass goes to the model in one piece at no
    /// more than this many times the whole pass's scale: that one piece sees the whole
    /// picture too, only finer. 0 always runs both.
    pub whole_reach: f32,
}

/// The scale at which a thing `small` pixels tall in a `w` x `h` image becomes `small_model`
/// pixels (at most 2x enlargement), unless the resized image would exceed `max_pixels`.
pub fn tile_scale(w: u32, h: u32, small: f32, small_model: f32, max_pixels: f64) -> f32 {
    let cap = (max_pixels / (f64::from(w) * f64::from(h))).sqrt() as f32;
    (small_model / small).min(2.0).min(cap)
}

/// Calls `run` with each window of `img` the passes look at, and the tile that maps the
/// window's pixels back to `img`. Windows are views: the model's input is the only copy.
/// Windows of one flat colour hold nothing to find and are skipped; the deadline is checked
/// before each window.
pub fn each_window(
    img: &RgbImage,
    p: &Windows,
    deadline: &Deadline,
    mut run: impl FnMut(SubImage<&RgbImage>, Tile) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut run = |view: SubImage<&RgbImage>, tile: Tile| -> Result<(), Error> {
        deadline.check()?;
        if is_flat(&*view) {
            return Ok(());
        }
        run(view, tile)
    };
    let (w, h) = img.dimensions();
    let whole_scale = (p.whole_side as f32 / w.max(h) as f32).min(1.0);
    let resized = |scale: f32| {
        let (sw, sh) = geometry::scaled_size(w, h, scale);
        if (sw, sh) == (w, h) {
            Cow::Borrowed(img)
        } else {
            Cow::Owned(imageops::resize(img, sw, sh, FilterType::Triangle))
        }
    };
    let tiled = p.tiles && p.tile_scale > whole_scale * 1.25;
    let (tw, th) = geometry::scaled_size(w, h, p.tile_scale);
    // Overlapping tiles look at some pixels twice or four times (2.4x the pixels for a 2 MP
    // photo in 640 px tiles); an image small enough goes through in one piece.
    let one_piece = f64::from(tw) * f64::from(th) <= p.single_pass_pixels;
    let reached = tiled && one_piece && p.tile_scale <= whole_scale * p.whole_reach;
    if p.whole && !reached {
        let whole = resized(whole_scale);
        let (ww, wh) = whole.dimensions();
        run(
            imageops::crop_imm(&*whole, 0, 0, ww, wh),
            Tile {
                x: 0,
                y: 0,
                w: ww,
                h: wh,
                scale: ww as f32 / w as f32,
            },
        )?;
    }
    if tiled {
        let src = resized(p.tile_scale);
        let actual = src.width() as f32 / w as f32;
        let tile = if one_piece { tw.max(th) } else { p.tile };
        for mut t in geometry::tiles(w, h, p.tile_scale, tile, p.overlap) {
            t.scale = actual;
            run(imageops::crop_imm(&*src, t.x, t.y, t.w, t.h), t)?;
        }
    }
    Ok(())
}

/// Calls `run` with `img` under each of `turns`, making one turned copy at a time.
pub fn each_turn(
    img: &RgbImage,
    turns: &[Turn],
    deadline: &Deadline,
    mut run: impl FnMut(&RgbImage, Turn) -> Result<(), Error>,
) -> Result<(), Error> {
    for &turn in turns {
        deadline.check()?;
        if turn == Turn::None {
            run(img, turn)?;
        } else {
            run(&turn.apply(img), turn)?;
        }
    }
    Ok(())
}

/// Whether every pixel of `view` has the same value: such a window shows nothing at all, so
/// no model need look at it. Exact equality only: faint text a few levels off its background
/// is still something to look for.
pub fn is_flat<I: image::GenericImageView>(view: &I) -> bool
where
    I::Pixel: PartialEq,
{
    let mut pixels = view.pixels();
    match pixels.next() {
        Some((_, _, first)) => pixels.all(|(_, _, p)| p == first),
        None => true,
    }
}

/// The report's note when a `w` x `h` image had to be searched smaller than asked because
/// of `max_pixels`, so that `what` (faces, text) under `smallest` pixels may be missed.
pub fn limit_note(
    w: u32,
    h: u32,
    what: &str,
    smallest: f32,
    asked: f32,
    max_pixels: f64,
) -> Option<String> {
    (smallest > asked * 1.01).then(|| {
        format!(
            "{w}x{h} is over the {:.0} MP search limit: {what} under {smallest:.0} px may be missed",
            max_pixels / 1e6
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::GenericImageView;

    /// The windows' sizes `each_window` hands out over a textured `w` x `h` image.
    fn windows(w: u32, h: u32, p: &Windows) -> Vec<(u32, u32)> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 7 % 256) as u8, (y * 3 % 256) as u8, 90])
        });
        let mut seen = Vec::new();
        each_window(&img, p, &Deadline::none(), |view, _| {
            seen.push(view.dimensions());
            Ok(())
        })
        .unwrap();
        seen
    }

    #[test]
    fn the_whole_pass_is_left_out_only_when_one_finer_piece_reaches_it() {
        let p = Windows {
            whole_side: 960,
            tile_scale: 0.8,
            tile: 960,
            overlap: 128,
            single_pass_pixels: 1.1e6,
            whole: true,
            tiles: true,
            whole_reach: 0.0,
        };
        // 1600 x 1000: whole at 0.6, the tiled pass at 0.8 in one piece of 1280 x 800.
        assert_eq!(windows(1600, 1000, &p), vec![(960, 600), (1280, 800)]);
        let reach = Windows {
            whole_reach: 2.0,
            ..p
        };
        assert_eq!(windows(1600, 1000, &reach), vec![(1280, 800)]);
        // 4000 x 3000: the tiled pass is 3.3x finer and in tiles; the whole pass stays.
        let big = windows(4000, 3000, &reach);
        assert_eq!(big[0], (960, 720));
        assert!(big.len() > 2, "{big:?}");
    }
}
