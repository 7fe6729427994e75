//! Covering regions so that what was under them cannot be recovered. `Fill` ignores the pixels
//! underneath entirely. `Pixelate` and `Blur` keep only a handful of noisy averages per
//! region: light mosaics and Gaussian blurs have been reversed by published attacks, so
//! neither is ever light.

use image::{DynamicImage, GenericImageView};
use serde::Serialize;

use crate::detect::{Region, RegionKind};

/// How a region is covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// A solid colour independent of the pixels underneath.
    Fill,
    /// At most [`COARSE_CELLS`] blocks across the region's shorter side, each the block's
    /// mean plus noise.
    Pixelate,
    /// The same coarse noisy averages, smoothly interpolated.
    Blur,
}

/// The shape covered inside a region's box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// The whole box.
    Box,
    /// The ellipse inscribed in the box.
    Ellipse,
}

impl Style {
    /// Every style, in the order help texts list them.
    pub const ALL: [Style; 3] = [Style::Fill, Style::Pixelate, Style::Blur];

    /// The style's name in options and reports.
    pub fn name(self) -> &'static str {
        match self {
            Style::Fill => "fill",
            Style::Pixelate => "pixelate",
            Style::Blur => "blur",
        }
    }
}

impl std::fmt::Display for Style {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Style {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Style::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown style '{s}' (fill, pixelate, blur)"))
    }
}

impl Shape {
    /// The shape's name in options.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Box => "box",
            Shape::Ellipse => "ellipse",
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Shape {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "box" => Ok(Shape::Box),
            "ellipse" => Ok(Shape::Ellipse),
            other => Err(format!("unknown shape '{other}' (box, ellipse)")),
        }
    }
}

/// One `CATEGORY=STYLE` choice: `face=blur`, or `all=pixelate` for every category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StyleRule {
    /// The category it applies to; `None` is every category (`all`).
    pub target: Option<RegionKind>,
    /// The style.
    pub style: Style,
}

impl std::fmt::Display for StyleRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.target {
            Some(k) => write!(f, "{k}={}", self.style),
            None => write!(f, "all={}", self.style),
        }
    }
}

impl std::str::FromStr for StyleRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (cat, style) = s
            .split_once('=')
            .ok_or_else(|| format!("'{s}' is not CATEGORY=STYLE (e.g. face=blur)"))?;
        let target = match cat.trim() {
            "all" => None,
            name => Some(RegionKind::from_name(name).ok_or_else(|| {
                format!("unknown category '{name}' (face, text, barcode, manual, all)")
            })?),
        };
        Ok(StyleRule {
            target,
            style: style.parse()?,
        })
    }
}

/// A fill colour, written as `RRGGBB` hex (a leading `#` is allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rgb(pub [u8; 3]);

impl std::fmt::Display for Rgb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "{r:02x}{g:02x}{b:02x}")
    }
}

impl std::str::FromStr for Rgb {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.trim_start_matches('#');
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("'{s}' is not a colour as RRGGBB hex"));
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| e.to_string());
        Ok(Rgb([byte(0)?, byte(2)?, byte(4)?]))
    }
}

/// Blocks across the shorter side of a pixelated or blurred region. Six: a face becomes a
/// 6x6 grid of noisy averages, far below what face-recovery attacks on mosaics need.
pub const COARSE_CELLS: u32 = 6;

/// Noise added to each block average, as a maximum per channel (uniform). Enough that block
/// means cannot be inverted even from many photos of the same face.
const NOISE: i32 = 24;

/// How each kind of region is covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    /// Style for faces. Default [`Style::Fill`].
    pub face: Style,
    /// Style for text. Default [`Style::Fill`]; blurred and pixelated text has been read back
    /// by published tools (Depix, Unredacter), so anything else is a risk the user takes.
    pub text: Style,
    /// Style for barcodes and 2D codes. Default [`Style::Fill`].
    pub barcode: Style,
    /// Style for manual regions. Default [`Style::Fill`].
    pub manual: Style,
    /// Colour of [`Style::Fill`], RGB. Default black.
    pub fill: [u8; 3],
    /// Shape covered inside the box of a face or manual region. Default [`Shape::Box`]: it
    /// also hides hairline, ears and jaw, which an ellipse leaves in the corners. Text and
    /// codes are always covered as their rectangle at its angle. Measured on
    /// `../shared/data/faces` upright with the default `FaceParams::margin`, the ellipse
    /// inscribed in a box grown enough to cover as many faces (95.0%) paints about as much
    /// outside them (10.5% of each photo against 10.7%), so the box stays.
    pub shape: Shape,
}

impl Default for Redaction {
    fn default() -> Self {
        Redaction {
            face: Style::Fill,
            text: Style::Fill,
            barcode: Style::Fill,
            manual: Style::Fill,
            fill: [0, 0, 0],
            shape: Shape::Box,
        }
    }
}

impl Redaction {
    /// The style for a kind of region.
    pub fn style(&self, kind: RegionKind) -> Style {
        match kind {
            RegionKind::Face => self.face,
            RegionKind::Text => self.text,
            RegionKind::Barcode => self.barcode,
            RegionKind::Manual => self.manual,
        }
    }

    /// Whether pixel (`x`, `y`) is covered when `r` is painted: inside its outline when it has
    /// one; for a face or manual region under [`Shape::Ellipse`], inside the ellipse inscribed
    /// in its box;
    /// otherwise every pixel its box touches.
    pub fn covers(&self, r: &Region, x: u32, y: u32) -> bool {
        if r.outline.is_some() {
            return r.covers(x, y);
        }
        let b = &r.rect;
        if matches!(r.kind, RegionKind::Face | RegionKind::Manual) && self.shape == Shape::Ellipse {
            let (rx, ry) = (b.w() / 2.0, b.h() / 2.0);
            let dx = (x as f32 + 0.5 - (b.x0 + rx)) / rx;
            let dy = (y as f32 + 0.5 - (b.y0 + ry)) / ry;
            return rx > 0.0 && ry > 0.0 && dx * dx + dy * dy <= 1.0;
        }
        let (x, y) = (x as f32, y as f32);
        x >= b.x0.floor() && x < b.x1.ceil() && y >= b.y0.floor() && y < b.y1.ceil()
    }

    /// Applies `rules` in order, so a later rule wins over an earlier one.
    pub fn apply(&mut self, rules: &[StyleRule]) {
        for rule in rules {
            for kind in RegionKind::ALL {
                if rule.target.is_none_or(|t| t == kind) {
                    self.set_style(kind, rule.style);
                }
            }
        }
    }

    /// Sets the style for a kind of region.
    pub fn set_style(&mut self, kind: RegionKind, style: Style) {
        *match kind {
            RegionKind::Face => &mut self.face,
            RegionKind::Text => &mut self.text,
            RegionKind::Barcode => &mut self.barcode,
            RegionKind::Manual => &mut self.manual,
        } = style;
    }
}

/// Covers `regions` in `img`, converting it to 8-bit RGB or RGBA first when it is anything
/// else. Under alpha, covered pixels become opaque so nothing survives in transparent areas.
pub fn apply(img: &mut DynamicImage, regions: &[Region], how: &Redaction) {
    if regions.is_empty() {
        return;
    }
    if !matches!(
        img,
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_)
    ) {
        *img = if img.color().has_alpha() {
            DynamicImage::ImageRgba8(img.to_rgba8())
        } else {
            DynamicImage::ImageRgb8(img.to_rgb8())
        };
    }
    let (w, h) = img.dimensions();
    let mut rng = Rng::seeded();
    let (channels, buf): (usize, &mut [u8]) = match img {
        DynamicImage::ImageRgb8(b) => (3, &mut **b),
        DynamicImage::ImageRgba8(b) => (4, &mut **b),
        _ => unreachable!("converted above"),
    };
    for r in regions {
        let mut canvas = Canvas {
            buf: &mut *buf,
            width: w,
            channels,
        };
        let (x, y, rw, rh) = r.rect.pixels(w, h);
        if rw == 0 || rh == 0 {
            continue;
        }
        let area = Area {
            x,
            y,
            w: rw,
            h: rh,
            how,
            region: r,
        };
        match how.style(r.kind) {
            Style::Fill => canvas.fill(&area, how.fill),
            Style::Pixelate => canvas.coarse(&area, &mut rng, false),
            Style::Blur => canvas.coarse(&area, &mut rng, true),
        }
    }
}

struct Area<'a> {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    how: &'a Redaction,
    region: &'a Region,
}

impl Area<'_> {
    /// Whether pixel (`px`, `py`) (absolute) is covered.
    fn covers(&self, px: u32, py: u32) -> bool {
        self.how.covers(self.region, px, py)
    }
}

struct Canvas<'a> {
    buf: &'a mut [u8],
    width: u32,
    channels: usize,
}

impl Canvas<'_> {
    fn at(&self, x: u32, y: u32) -> usize {
        (y as usize * self.width as usize + x as usize) * self.channels
    }

    fn set(&mut self, x: u32, y: u32, rgb: [u8; 3]) {
        let i = self.at(x, y);
        self.buf[i..i + 3].copy_from_slice(&rgb);
        if self.channels == 4 {
            self.buf[i + 3] = 255;
        }
    }

    fn fill(&mut self, a: &Area, rgb: [u8; 3]) {
        for y in a.y..a.y + a.h {
            for x in a.x..a.x + a.w {
                if a.covers(x, y) {
                    self.set(x, y, rgb);
                }
            }
        }
    }

    /// Pixelate (`smooth` false) or blur (`smooth` true) from a grid of at most
    /// `COARSE_CELLS` noisy block means across the shorter side.
    fn coarse(&mut self, a: &Area, rng: &mut Rng, smooth: bool) {
        let cell = (a.w.min(a.h).div_ceil(COARSE_CELLS)).max(1);
        let (gw, gh) = (a.w.div_ceil(cell), a.h.div_ceil(cell));
        let mut means = vec![[0f32; 3]; (gw * gh) as usize];
        for gy in 0..gh {
            for gx in 0..gw {
                let (x0, y0) = (a.x + gx * cell, a.y + gy * cell);
                let (x1, y1) = ((x0 + cell).min(a.x + a.w), (y0 + cell).min(a.y + a.h));
                let mut sum = [0u64; 3];
                for y in y0..y1 {
                    for x in x0..x1 {
                        let i = self.at(x, y);
                        for (c, s) in sum.iter_mut().enumerate() {
                            *s += u64::from(self.buf[i + c]);
                        }
                    }
                }
                let n = u64::from((x1 - x0) * (y1 - y0)).max(1);
                let m = &mut means[(gy * gw + gx) as usize];
                for c in 0..3 {
                    let noisy = (sum[c] / n) as i32 + rng.range(-NOISE, NOISE);
                    m[c] = noisy.clamp(0, 255) as f32;
                }
            }
        }
        let mean_at = |gx: i64, gy: i64| {
            let gx = gx.clamp(0, i64::from(gw) - 1) as u32;
            let gy = gy.clamp(0, i64::from(gh) - 1) as u32;
            means[(gy * gw + gx) as usize]
        };
        for y in a.y..a.y + a.h {
            for x in a.x..a.x + a.w {
                if !a.covers(x, y) {
                    continue;
                }
                let (lx, ly) = (x - a.x, y - a.y);
                let rgb = if smooth {
                    // Bilinear between block centres.
                    let fx = (lx as f32 + 0.5) / cell as f32 - 0.5;
                    let fy = (ly as f32 + 0.5) / cell as f32 - 0.5;
                    let (gx, gy) = (fx.floor() as i64, fy.floor() as i64);
                    let (tx, ty) = (fx - gx as f32, fy - gy as f32);
                    let (m00, m10) = (mean_at(gx, gy), mean_at(gx + 1, gy));
                    let (m01, m11) = (mean_at(gx, gy + 1), mean_at(gx + 1, gy + 1));
                    let mut out = [0u8; 3];
                    for c in 0..3 {
                        let top = m00[c] * (1.0 - tx) + m10[c] * tx;
                        let bottom = m01[c] * (1.0 - tx) + m11[c] * tx;
                        out[c] = (top * (1.0 - ty) + bottom * ty).round().clamp(0.0, 255.0) as u8;
                    }
                    out
                } else {
                    let m = mean_at(i64::from(lx / cell), i64::from(ly / cell));
                    [m[0] as u8, m[1] as u8, m[2] as u8]
                };
                self.set(x, y, rgb);
            }
        }
    }
}

/// xorshift64*: enough for noise; seeded from the OS so that no two runs add the same noise.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        Rng(getrandom::u64().unwrap_or(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next() % (hi - lo + 1) as u64) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Rect;

    fn region(kind: RegionKind, r: Rect) -> Region {
        Region {
            kind,
            rect: r,
            outline: None,
            score: None,
            detector: "test".into(),
            model_sha256: None,
            symbology: None,
        }
    }

    /// A noisy gradient, so that any copy of the original pixels would show.
    fn photo(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 7 + y * 3) as u8,
                (x * x + y) as u8,
                ((y * 11) ^ x) as u8,
            ])
        }))
    }

    #[test]
    fn fill_covers_the_box_with_the_colour_and_nothing_else() {
        let mut img = photo(40, 30);
        let before = img.clone();
        let how = Redaction {
            fill: [1, 2, 3],
            ..Redaction::default()
        };
        apply(
            &mut img,
            &[region(RegionKind::Face, Rect::xywh(5.5, 4.2, 10.0, 8.0))],
            &how,
        );
        for (x, y, p) in img.pixels() {
            let inside = (5..16).contains(&x) && (4..13).contains(&y);
            if inside {
                assert_eq!(&p.0[..3], &[1, 2, 3], "({x},{y})");
            } else {
                assert_eq!(p, before.get_pixel(x, y), "({x},{y})");
            }
        }
    }

    #[test]
    fn fill_makes_transparent_pixels_opaque() {
        let mut img = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            8,
            8,
            image::Rgba([200, 100, 50, 0]),
        ));
        apply(
            &mut img,
            &[region(RegionKind::Manual, Rect::xywh(0.0, 0.0, 4.0, 4.0))],
            &Redaction::default(),
        );
        assert_eq!(img.get_pixel(1, 1).0, [0, 0, 0, 255]);
        assert_eq!(img.get_pixel(6, 6).0, [200, 100, 50, 0]);
    }

    #[test]
    fn ellipse_leaves_the_corners() {
        let mut img = photo(40, 40);
        let before = img.clone();
        let how = Redaction {
            shape: Shape::Ellipse,
            fill: [0, 255, 0],
            ..Redaction::default()
        };
        apply(
            &mut img,
            &[region(RegionKind::Face, Rect::xywh(0.0, 0.0, 40.0, 40.0))],
            &how,
        );
        assert_eq!(img.get_pixel(0, 0), before.get_pixel(0, 0));
        assert_eq!(img.get_pixel(20, 20).0[..3], [0, 255, 0]);
    }

    #[test]
    fn pixelate_and_blur_keep_at_most_a_coarse_grid_of_values() {
        for style in [Style::Pixelate, Style::Blur] {
            let mut img = photo(120, 90);
            let how = Redaction {
                face: style,
                ..Redaction::default()
            };
            apply(
                &mut img,
                &[region(RegionKind::Face, Rect::xywh(0.0, 0.0, 120.0, 90.0))],
                &how,
            );
            let rgb = img.to_rgb8();
            if style == Style::Pixelate {
                let distinct: std::collections::HashSet<_> = rgb.pixels().map(|p| p.0).collect();
                // 90 / 6 = 15 px cells: 8 x 6 blocks.
                assert!(distinct.len() <= 48, "{} distinct colours", distinct.len());
            } else {
                // Neighbouring pixels differ by at most a fraction of the block difference:
                // no edges of the original survive.
                for y in 0..90 {
                    for x in 1..120 {
                        let (a, b) = (rgb.get_pixel(x - 1, y).0, rgb.get_pixel(x, y).0);
                        for c in 0..3 {
                            assert!((i32::from(a[c]) - i32::from(b[c])).abs() <= 20);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn regions_outside_the_image_are_clamped_not_panics() {
        let mut img = photo(10, 10);
        let how = Redaction::default();
        apply(
            &mut img,
            &[
                region(RegionKind::Face, Rect::xywh(-5.0, -5.0, 8.0, 8.0)),
                region(RegionKind::Face, Rect::xywh(8.0, 8.0, 50.0, 50.0)),
                region(RegionKind::Face, Rect::xywh(20.0, 20.0, 5.0, 5.0)),
            ],
            &how,
        );
        assert_eq!(img.get_pixel(0, 0).0[..3], [0, 0, 0]);
        assert_eq!(img.get_pixel(9, 9).0[..3], [0, 0, 0]);
    }
}
