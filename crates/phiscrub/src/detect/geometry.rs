//! Coordinates between the spaces detection works in: the upright original image, the image
//! turned by a quarter turn, its resized working copy and the tiles cut from it. Detectors
//! report in working pixels; everything handed on is in upright original pixels.

use serde::Serialize;

/// An axis-aligned box in continuous pixel coordinates: `x0..x1` by `y0..y1`, `x1 >= x0`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rect {
    /// Left edge.
    pub x0: f32,
    /// Top edge.
    pub y0: f32,
    /// Right edge (exclusive).
    pub x1: f32,
    /// Bottom edge (exclusive).
    pub y1: f32,
}

impl Rect {
    /// A box from its left, top, width and height.
    pub fn xywh(x: f32, y: f32, w: f32, h: f32) -> Rect {
        Rect {
            x0: x,
            y0: y,
            x1: x + w,
            y1: y + h,
        }
    }

    /// A box a caller gave as left, top, width and height: `None` unless all four are
    /// finite and the width and height positive.
    pub fn given(x: f64, y: f64, w: f64, h: f64) -> Option<Rect> {
        let finite = [x, y, w, h].iter().all(|n| n.is_finite());
        (finite && w > 0.0 && h > 0.0).then(|| Rect::xywh(x as f32, y as f32, w as f32, h as f32))
    }

    /// Width.
    pub fn w(&self) -> f32 {
        (self.x1 - self.x0).max(0.0)
    }

    /// Height.
    pub fn h(&self) -> f32 {
        (self.y1 - self.y0).max(0.0)
    }

    /// Area.
    pub fn area(&self) -> f32 {
        self.w() * self.h()
    }

    /// The overlap of two boxes (empty when they do not meet).
    pub fn intersect(&self, o: &Rect) -> Rect {
        let r = Rect {
            x0: self.x0.max(o.x0),
            y0: self.y0.max(o.y0),
            x1: self.x1.min(o.x1),
            y1: self.y1.min(o.y1),
        };
        if r.x1 <= r.x0 || r.y1 <= r.y0 {
            Rect {
                x1: r.x0,
                y1: r.y0,
                ..r
            }
        } else {
            r
        }
    }

    /// Intersection over union; 0 for two empty boxes.
    pub fn iou(&self, o: &Rect) -> f32 {
        let i = self.intersect(o).area();
        let u = self.area() + o.area() - i;
        if u > 0.0 {
            i / u
        } else {
            0.0
        }
    }

    /// Clamped to an image of `width` x `height`.
    pub fn clamp(&self, width: u32, height: u32) -> Rect {
        let (w, h) = (width as f32, height as f32);
        let x0 = self.x0.clamp(0.0, w);
        let y0 = self.y0.clamp(0.0, h);
        Rect {
            x0,
            y0,
            x1: self.x1.clamp(x0, w),
            y1: self.y1.clamp(y0, h),
        }
    }

    /// Grown by fractions of its own size on each side (negative values shrink it).
    pub fn grow(&self, left: f32, top: f32, right: f32, bottom: f32) -> Rect {
        let (w, h) = (self.w(), self.h());
        Rect {
            x0: self.x0 - w * left,
            y0: self.y0 - h * top,
            x1: self.x1 + w * right,
            y1: self.y1 + h * bottom,
        }
    }

    /// The whole pixels the box touches, as `(x, y, w, h)`, clamped to the image. Rounding
    /// is outward so that a covered box never leaves a partly covered pixel uncovered.
    pub fn pixels(&self, width: u32, height: u32) -> (u32, u32, u32, u32) {
        let c = self.clamp(width, height);
        let x0 = c.x0.floor() as u32;
        let y0 = c.y0.floor() as u32;
        let x1 = (c.x1.ceil() as u32).min(width);
        let y1 = (c.y1.ceil() as u32).min(height);
        (x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0))
    }
}

/// A quarter turn applied to the upright image before detecting, so that faces lying on their
/// side (patients in bed, photos taken from the head of the bed) stand upright for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// The image as it is.
    None,
    /// Turned 90° clockwise (`image::imageops::rotate90`).
    Cw90,
    /// Turned 180°.
    Half,
    /// Turned 90° counter-clockwise (`image::imageops::rotate270`).
    Ccw90,
}

impl Turn {
    /// All four turns, the unturned image first.
    pub const ALL: [Turn; 4] = [Turn::None, Turn::Cw90, Turn::Half, Turn::Ccw90];

    /// Degrees clockwise.
    pub fn degrees(self) -> u32 {
        match self {
            Turn::None => 0,
            Turn::Cw90 => 90,
            Turn::Half => 180,
            Turn::Ccw90 => 270,
        }
    }

    /// Size of the turned image of an upright `width` x `height` image.
    pub fn turned_size(self, width: u32, height: u32) -> (u32, u32) {
        match self {
            Turn::None | Turn::Half => (width, height),
            Turn::Cw90 | Turn::Ccw90 => (height, width),
        }
    }

    /// Maps a point of the upright image (`width` x `height`) into the turned image.
    pub fn forward(self, x: f32, y: f32, width: u32, height: u32) -> (f32, f32) {
        let (w, h) = (width as f32, height as f32);
        match self {
            Turn::None => (x, y),
            Turn::Cw90 => (h - y, x),
            Turn::Half => (w - x, h - y),
            Turn::Ccw90 => (y, w - x),
        }
    }

    /// Maps a point of the turned image back into the upright image (`width` x `height`).
    pub fn back(self, u: f32, v: f32, width: u32, height: u32) -> (f32, f32) {
        let (w, h) = (width as f32, height as f32);
        match self {
            Turn::None => (u, v),
            Turn::Cw90 => (v, h - u),
            Turn::Half => (w - u, h - v),
            Turn::Ccw90 => (w - v, u),
        }
    }

    /// Maps a box of the turned image back into the upright image.
    pub fn back_rect(self, r: &Rect, width: u32, height: u32) -> Rect {
        let (ax, ay) = self.back(r.x0, r.y0, width, height);
        let (bx, by) = self.back(r.x1, r.y1, width, height);
        Rect {
            x0: ax.min(bx),
            y0: ay.min(by),
            x1: ax.max(bx),
            y1: ay.max(by),
        }
    }

    /// Turns an image.
    pub fn apply(self, img: &image::RgbImage) -> image::RgbImage {
        use image::imageops;
        match self {
            Turn::None => img.clone(),
            Turn::Cw90 => imageops::rotate90(img),
            Turn::Half => imageops::rotate180(img),
            Turn::Ccw90 => imageops::rotate270(img),
        }
    }
}

/// A window of a (possibly resized) image that the model sees in one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tile {
    /// Left edge in the resized image.
    pub x: u32,
    /// Top edge in the resized image.
    pub y: u32,
    /// Width in the resized image.
    pub w: u32,
    /// Height in the resized image.
    pub h: u32,
    /// Resized size divided by source size.
    pub scale: f32,
}

impl Tile {
    /// Maps a box in the tile's own pixels back to the source image it was resized from.
    pub fn to_source(&self, r: &Rect) -> Rect {
        let (x0, y0) = self.point_to_source(r.x0, r.y0);
        let (x1, y1) = self.point_to_source(r.x1, r.y1);
        Rect { x0, y0, x1, y1 }
    }

    /// Maps a point in the tile's own pixels back to the source image.
    pub fn point_to_source(&self, x: f32, y: f32) -> (f32, f32) {
        (
            (x + self.x as f32) / self.scale,
            (y + self.y as f32) / self.scale,
        )
    }
}

/// Where windows of at most `tile` pixels, overlapping by at least `overlap`, start along a
/// side of `len` pixels. The windows cover the side; the last one ends exactly at `len`.
pub fn tile_starts(len: u32, tile: u32, overlap: u32) -> Vec<u32> {
    if len <= tile {
        return vec![0];
    }
    let step = tile.saturating_sub(overlap).max(1);
    let n = (len - tile).div_ceil(step) + 1;
    // Spread the windows evenly so that every overlap is at least `overlap`.
    let span = len - tile;
    (0..n)
        .map(|i| (u64::from(span) * u64::from(i) / u64::from(n - 1)) as u32)
        .collect()
}

/// Cuts a `width` x `height` image, resized by `scale`, into overlapping tiles.
pub fn tiles(width: u32, height: u32, scale: f32, tile: u32, overlap: u32) -> Vec<Tile> {
    let (sw, sh) = scaled_size(width, height, scale);
    let xs = tile_starts(sw, tile, overlap);
    let ys = tile_starts(sh, tile, overlap);
    let mut out = Vec::with_capacity(xs.len() * ys.len());
    for &y in &ys {
        for &x in &xs {
            out.push(Tile {
                x,
                y,
                w: tile.min(sw - x),
                h: tile.min(sh - y),
                scale,
            });
        }
    }
    out
}

/// The size of an image resized by `scale`, at least one pixel a side.
pub fn scaled_size(width: u32, height: u32, scale: f32) -> (u32, u32) {
    let f = |v: u32| ((v as f32 * scale).round() as u32).max(1);
    (f(width), f(height))
}

/// Greedy non-maximum suppression: keeps the highest-scoring box of each group overlapping
/// by at least `iou`, and also drops a box lying mostly (`contain` of its area) inside a
/// higher-scoring one, which is how one face found in two tiles at two sizes shows up.
/// Returns the indices kept, best first.
pub fn nms(boxes: &[Rect], scores: &[f32], iou: f32, contain: f32) -> Vec<usize> {
    nms_groups(boxes, scores, iou, contain)
        .into_iter()
        .map(|g| g[0])
        .collect()
}

/// Like [`nms`], but returns each kept box with the boxes it suppressed: `group[0]` is the
/// kept one. Callers that must not under-cover take the union of a group.
pub fn nms_groups(boxes: &[Rect], scores: &[f32], iou: f32, contain: f32) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in order {
        let b = &boxes[i];
        let dup = groups.iter_mut().find(|g| {
            let k = &boxes[g[0]];
            let inter = b.intersect(k).area();
            b.iou(k) >= iou || (b.area() > 0.0 && inter / b.area() >= contain)
        });
        match dup {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

/// The smallest box holding all of `rects` (`None` when empty).
pub fn union(rects: impl IntoIterator<Item = Rect>) -> Option<Rect> {
    rects.into_iter().reduce(|a, b| Rect {
        x0: a.x0.min(b.x0),
        y0: a.y0.min(b.y0),
        x1: a.x1.max(b.x1),
        y1: a.y1.max(b.y1),
    })
}

/// A rectangle at any angle: centre, size, and the unit direction of its width. Text lines and
/// barcodes are covered as these rather than as their axis-aligned bounds, which for a slanted
/// line would cover far more than the line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotRect {
    /// Centre.
    pub c: [f32; 2],
    /// Unit vector along the width.
    pub u: [f32; 2],
    /// Extent along `u`.
    pub w: f32,
    /// Extent across `u`.
    pub h: f32,
}

impl RotRect {
    /// An axis-aligned rectangle as a rotated one.
    pub fn from_rect(r: &Rect) -> RotRect {
        RotRect {
            c: [(r.x0 + r.x1) / 2.0, (r.y0 + r.y1) / 2.0],
            u: [1.0, 0.0],
            w: r.w(),
            h: r.h(),
        }
    }

    /// The rectangle with corners `p[0]..p[3]` in order around it (as [`RotRect::corners`]
    /// returns them); the width runs from `p[0]` to `p[1]`.
    pub fn from_corners(p: &[[f32; 2]; 4]) -> RotRect {
        let d = [p[1][0] - p[0][0], p[1][1] - p[0][1]];
        let w = d[0].hypot(d[1]);
        let h = (p[3][0] - p[0][0]).hypot(p[3][1] - p[0][1]);
        let u = if w > 0.0 {
            [d[0] / w, d[1] / w]
        } else {
            [1.0, 0.0]
        };
        let c = [
            (p[0][0] + p[1][0] + p[2][0] + p[3][0]) / 4.0,
            (p[0][1] + p[1][1] + p[2][1] + p[3][1]) / 4.0,
        ];
        RotRect { c, u, w, h }
    }

    /// The four corners, going round.
    pub fn corners(&self) -> [[f32; 2]; 4] {
        let (hw, hh) = (self.w / 2.0, self.h / 2.0);
        let v = [-self.u[1], self.u[0]];
        let at = |a: f32, b: f32| {
            [
                self.c[0] + a * self.u[0] + b * v[0],
                self.c[1] + a * self.u[1] + b * v[1],
            ]
        };
        [at(-hw, -hh), at(hw, -hh), at(hw, hh), at(-hw, hh)]
    }

    /// The shorter side.
    pub fn short_side(&self) -> f32 {
        self.w.min(self.h)
    }

    /// The same rectangle, `dw` longer at each end of its width and `dh` at each side of its
    /// height.
    pub fn grow(&self, dw: f32, dh: f32) -> RotRect {
        RotRect {
            w: (self.w + 2.0 * dw).max(0.0),
            h: (self.h + 2.0 * dh).max(0.0),
            ..*self
        }
    }

    /// Whether point (`x`, `y`) lies inside.
    pub fn contains(&self, x: f32, y: f32) -> bool {
        let (dx, dy) = (x - self.c[0], y - self.c[1]);
        let a = dx * self.u[0] + dy * self.u[1];
        let b = -dx * self.u[1] + dy * self.u[0];
        a.abs() <= self.w / 2.0 && b.abs() <= self.h / 2.0
    }

    /// The axis-aligned box around it.
    pub fn bounds(&self) -> Rect {
        let p = self.corners();
        let (xs, ys) = (p.map(|q| q[0]), p.map(|q| q[1]));
        let min = |v: [f32; 4]| v.into_iter().fold(f32::INFINITY, f32::min);
        let max = |v: [f32; 4]| v.into_iter().fold(f32::NEG_INFINITY, f32::max);
        Rect {
            x0: min(xs),
            y0: min(ys),
            x1: max(xs),
            y1: max(ys),
        }
    }

    /// The rectangle after mapping its corners by `f`, a similarity (scaling, shifting, quarter
    /// turns), under which a rectangle stays a rectangle.
    pub fn map(&self, f: impl Fn(f32, f32) -> (f32, f32)) -> RotRect {
        RotRect::from_corners(&self.corners().map(|[x, y]| {
            let (a, b) = f(x, y);
            [a, b]
        }))
    }

    /// Whether the two overlap or come within `gap` of each other (separating axis test on
    /// this one grown by `gap`).
    pub fn near(&self, o: &RotRect, gap: f32) -> bool {
        let a = self.grow(gap, gap).corners();
        let b = o.corners();
        let axes = [self.u, [-self.u[1], self.u[0]], o.u, [-o.u[1], o.u[0]]];
        axes.iter().all(|ax| {
            let proj = |p: &[[f32; 2]; 4]| {
                p.iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), q| {
                        let d = q[0] * ax[0] + q[1] * ax[1];
                        (lo.min(d), hi.max(d))
                    })
            };
            let ((a0, a1), (b0, b1)) = (proj(&a), proj(&b));
            a0 <= b1 && b0 <= a1
        })
    }
}

/// The smallest-area rectangle at any angle holding all `points` (rotating calipers over
/// their convex hull); `None` for no points.
pub fn min_area_rect(points: &[[f32; 2]]) -> Option<RotRect> {
    let hull = convex_hull(points);
    match hull.len() {
        0 => return None,
        1 => {
            return Some(RotRect {
                c: hull[0],
                u: [1.0, 0.0],
                w: 0.0,
                h: 0.0,
            })
        }
        _ => {}
    }
    let mut best: Option<(f32, RotRect)> = None;
    for i in 0..hull.len() {
        let (p, q) = (hull[i], hull[(i + 1) % hull.len()]);
        let (dx, dy) = (q[0] - p[0], q[1] - p[1]);
        let len = dx.hypot(dy);
        if len == 0.0 {
            continue;
        }
        let u = [dx / len, dy / len];
        let (mut a0, mut a1, mut b0, mut b1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for h in &hull {
            let a = h[0] * u[0] + h[1] * u[1];
            let b = -h[0] * u[1] + h[1] * u[0];
            (a0, a1, b0, b1) = (a0.min(a), a1.max(a), b0.min(b), b1.max(b));
        }
        let (w, ht) = (a1 - a0, b1 - b0);
        let (am, bm) = ((a0 + a1) / 2.0, (b0 + b1) / 2.0);
        let r = RotRect {
            c: [am * u[0] - bm * u[1], am * u[1] + bm * u[0]],
            u,
            w,
            h: ht,
        };
        if best.as_ref().is_none_or(|(area, _)| w * ht < *area) {
            best = Some((w * ht, r));
        }
    }
    best.map(|(_, r)| r)
}

/// Convex hull (Andrew's monotone chain), counter-clockwise, without collinear points.
pub fn convex_hull(points: &[[f32; 2]]) -> Vec<[f32; 2]> {
    let mut p = points.to_vec();
    p.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let cross = |o: [f32; 2], a: [f32; 2], b: [f32; 2]| {
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let mut hull: Vec<[f32; 2]> = Vec::with_capacity(2 * p.len());
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &[f32; 2]>> = if pass == 0 {
            Box::new(p.iter())
        } else {
            Box::new(p.iter().rev())
        };
        for &q in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0
            {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop();
    }
    hull
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-2
    }

    #[test]
    fn a_given_box_needs_finite_numbers_and_an_area() {
        assert_eq!(
            Rect::given(-5.0, 2.0, 10.0, 4.0),
            Some(Rect::xywh(-5.0, 2.0, 10.0, 4.0))
        );
        for [x, y, w, h] in [
            [0.0, 0.0, 0.0, 4.0],
            [0.0, 0.0, 4.0, -1.0],
            [f64::NAN, 0.0, 4.0, 4.0],
            [0.0, f64::INFINITY, 4.0, 4.0],
            [0.0, 0.0, f64::INFINITY, 4.0],
        ] {
            assert_eq!(Rect::given(x, y, w, h), None, "{x} {y} {w} {h}");
        }
    }

    #[test]
    fn tile_starts_cover_the_side_with_the_overlap() {
        assert_eq!(tile_starts(500, 640, 64), vec![0]);
        assert_eq!(tile_starts(640, 640, 64), vec![0]);
        let s = tile_starts(2000, 640, 128);
        assert_eq!(s[0], 0);
        assert_eq!(*s.last().unwrap() + 640, 2000);
        for w in s.windows(2) {
            assert!(w[0] + 640 - w[1] >= 128, "{s:?}");
        }
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes_and_drops_contained_ones() {
        let boxes = [
            Rect::xywh(0.0, 0.0, 10.0, 10.0),
            Rect::xywh(1.0, 1.0, 10.0, 10.0),
            Rect::xywh(50.0, 50.0, 10.0, 10.0),
            Rect::xywh(52.0, 52.0, 4.0, 4.0),
        ];
        let keep = nms(&boxes, &[0.9, 0.8, 0.5, 0.4], 0.3, 0.8);
        assert_eq!(keep, vec![0, 2]);
        // A better-scoring box inside a bigger one does not suppress it.
        let keep = nms(&boxes, &[0.9, 0.8, 0.5, 0.7], 0.3, 0.8);
        assert_eq!(keep, vec![0, 3, 2]);
        let groups = nms_groups(&boxes, &[0.9, 0.8, 0.5, 0.4], 0.3, 0.8);
        assert_eq!(groups, vec![vec![0, 1], vec![2, 3]]);
        assert_eq!(
            union(groups[0].iter().map(|&i| boxes[i])),
            Some(Rect::xywh(0.0, 0.0, 11.0, 11.0))
        );
    }

    #[test]
    fn near_tells_apart_rectangles_by_their_gap() {
        let a = RotRect::from_rect(&Rect::xywh(0.0, 0.0, 10.0, 10.0));
        let b = RotRect::from_rect(&Rect::xywh(15.0, 0.0, 10.0, 10.0));
        assert!(!a.near(&b, 4.9));
        assert!(a.near(&b, 5.1));
        // At 45° the corner of one reaches toward the other.
        let d = RotRect {
            u: [std::f32::consts::FRAC_1_SQRT_2; 2],
            ..RotRect::from_rect(&Rect::xywh(17.0, 0.0, 10.0, 10.0))
        };
        assert!(a.near(&d, 5.1));
        assert!(!a.near(&d, 4.9));
    }

    proptest! {
        #[test]
        fn the_minimum_area_rectangle_of_a_turned_rectangle_is_itself(
            cx in -500f32..500.0, cy in -500f32..500.0, w in 2f32..400.0, h in 2f32..400.0,
            angle in 0f32..std::f32::consts::PI, inner in proptest::collection::vec((0f32..1.0, 0f32..1.0), 0..20)
        ) {
            let r = RotRect { c: [cx, cy], u: [angle.cos(), angle.sin()], w, h };
            let corners = r.corners();
            let mut pts = corners.to_vec();
            // Points inside change nothing.
            for (a, b) in inner {
                let at = |i: usize| {
                    corners[0][i] + a * (corners[1][i] - corners[0][i]) + b * (corners[3][i] - corners[0][i])
                };
                pts.push([at(0), at(1)]);
            }
            let m = min_area_rect(&pts).unwrap();
            prop_assert!((m.w * m.h - w * h).abs() <= 1e-3 * w * h + 1e-2, "{m:?} vs {r:?}");
            for p in &pts {
                prop_assert!(m.grow(0.01, 0.01).contains(p[0], p[1]));
            }
        }

        #[test]
        fn a_rotated_rectangle_survives_quarter_turns(
            w in 10u32..3000, h in 10u32..3000, fx in 0.1f32..0.9, fy in 0.1f32..0.9,
            rw in 1f32..50.0, rh in 1f32..50.0, angle in 0f32..6.3
        ) {
            let r = RotRect { c: [fx * w as f32, fy * h as f32], u: [angle.cos(), angle.sin()], w: rw, h: rh };
            for turn in Turn::ALL {
                let there = r.map(|x, y| turn.forward(x, y, w, h));
                let back = there.map(|x, y| turn.back(x, y, w, h));
                prop_assert!((there.w - rw).abs() < 1e-2 && (there.h - rh).abs() < 1e-2);
                prop_assert!(close(back.c[0], r.c[0]) && close(back.c[1], r.c[1]));
            }
        }

        #[test]
        fn turning_there_and_back_is_the_identity(
            w in 1u32..5000, h in 1u32..5000, fx in 0f32..1.0, fy in 0f32..1.0
        ) {
            let (x, y) = (fx * w as f32, fy * h as f32);
            for t in Turn::ALL {
                let (u, v) = t.forward(x, y, w, h);
                let (tw, th) = t.turned_size(w, h);
                prop_assert!(u >= 0.0 && v >= 0.0 && u <= tw as f32 && v <= th as f32);
                let (bx, by) = t.back(u, v, w, h);
                prop_assert!(close(bx, x) && close(by, y), "{:?}: {} {} -> {} {}", t, x, y, bx, by);
            }
        }

        /// A marked box in a real turned image comes back to where it was drawn.
        #[test]
        fn boxes_found_in_a_turned_image_map_back_onto_the_original(
            w in 2u32..40, h in 2u32..40, bx in 0u32..39, by in 0u32..39, bw in 1u32..10, bh in 1u32..10
        ) {
            let bx = bx % w;
            let by = by % h;
            let bw = bw.min(w - bx);
            let bh = bh.min(h - by);
            let mut img = image::RgbImage::new(w, h);
            for y in by..by + bh {
                for x in bx..bx + bw {
                    img.put_pixel(x, y, image::Rgb([255, 0, 0]));
                }
            }
            let want = Rect::xywh(bx as f32, by as f32, bw as f32, bh as f32);
            for t in Turn::ALL {
                let turned = t.apply(&img);
                prop_assert_eq!(turned.dimensions(), t.turned_size(w, h));
                // The bounding box of the marked pixels in the turned image.
                let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
                for (x, y, p) in turned.enumerate_pixels() {
                    if p.0[0] == 255 {
                        x0 = x0.min(x); y0 = y0.min(y); x1 = x1.max(x + 1); y1 = y1.max(y + 1);
                    }
                }
                let found = Rect { x0: x0 as f32, y0: y0 as f32, x1: x1 as f32, y1: y1 as f32 };
                let back = t.back_rect(&found, w, h);
                prop_assert_eq!(back, want, "{:?}", t);
            }
        }

        #[test]
        fn tiles_cover_the_resized_image_and_map_back_inside_it(
            w in 1u32..9000, h in 1u32..9000, scale in 0.05f32..1.0,
            tile in 64u32..1200, overlap in 0u32..64
        ) {
            let (sw, sh) = scaled_size(w, h, scale);
            let ts = tiles(w, h, scale, tile, overlap);
            // Every row and column of the resized image lies in some tile.
            let mut cols = vec![false; sw as usize];
            let mut rows = vec![false; sh as usize];
            for t in &ts {
                prop_assert!(t.x + t.w <= sw && t.y + t.h <= sh);
                for c in &mut cols[t.x as usize..(t.x + t.w) as usize] { *c = true; }
                for r in &mut rows[t.y as usize..(t.y + t.h) as usize] { *r = true; }
                let whole = Rect::xywh(0.0, 0.0, t.w as f32, t.h as f32);
                let src = t.to_source(&whole);
                let slack = 1.0 / scale;
                prop_assert!(src.x0 >= -0.01 && src.y0 >= -0.01);
                prop_assert!(src.x1 <= w as f32 + slack && src.y1 <= h as f32 + slack);
            }
            prop_assert!(cols.iter().all(|&c| c) && rows.iter().all(|&r| r));
            // Any box of at most `overlap` resized pixels lies wholly inside one tile.
            let side = overlap.min(sw).min(sh);
            if side > 0 {
                for &(x, y) in &[(0, 0), (sw - side, sh - side), ((sw - side) / 2, (sh - side) / 3)] {
                    prop_assert!(ts.iter().any(|t| x >= t.x && y >= t.y
                        && x + side <= t.x + t.w && y + side <= t.y + t.h));
                }
            }
        }

        #[test]
        fn clamped_boxes_lie_inside_the_image(
            x in -500f32..5000.0, y in -500f32..5000.0, bw in 0f32..3000.0, bh in 0f32..3000.0,
            w in 1u32..4000, h in 1u32..4000
        ) {
            let r = Rect::xywh(x, y, bw, bh).clamp(w, h);
            prop_assert!(r.x0 >= 0.0 && r.y0 >= 0.0 && r.x1 <= w as f32 && r.y1 <= h as f32);
            prop_assert!(r.x1 >= r.x0 && r.y1 >= r.y0);
            let (px, py, pw, ph) = Rect::xywh(x, y, bw, bh).pixels(w, h);
            prop_assert!(px + pw <= w && py + ph <= h);
        }
    }
}
