//! Renders the clinical-looking fixtures in `fixtures/clinical/`: a wristband with name, date
//! of birth, record number, a Code 128 and a Data Matrix, lying at an angle on a blanket; a
//! patient monitor with its header; and a chart page with a QR-coded label. Every name and
//! number is made up. Next to each JPEG a JSON sidecar lists the ground truth as polygons
//! (`[x1,y1,...,x4,y4]`, tight around the ink): `text` lines and `codes`.
//!
//! `cargo run -p xtask --bin make_clinical_fixtures -- [FONT.ttf] [OUT_DIR]`
//!
//! The font defaults to DejaVu Sans from Debian's `fonts-dejavu-core` (its licence lets the
//! rendered images be shared freely); the output to `fixtures/clinical`. Re-running it
//! reproduces the files byte for byte with the same font and crate versions.

use std::path::PathBuf;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{Rgb, RgbImage};
use rxing::{BarcodeFormat, MultiFormatWriter, Writer};

type Poly = [[f32; 2]; 4];

struct Canvas<'f> {
    img: RgbImage,
    font: FontRef<'f>,
    text: Vec<Poly>,
    codes: Vec<Poly>,
}

impl Canvas<'_> {
    /// Draws `s` with its baseline-left at (`x`, `y`) and records its ink box.
    fn text(&mut self, x: f32, y: f32, size: f32, s: &str, ink: [u8; 3]) {
        let scaled = self.font.as_scaled(PxScale::from(size));
        let mut caret = x;
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        let mut prev = None;
        for ch in s.chars() {
            let id = scaled.glyph_id(ch);
            if let Some(p) = prev {
                caret += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(size, ab_glyph::point(caret, y));
            caret += scaled.h_advance(id);
            prev = Some(id);
            let Some(outline) = self.font.outline_glyph(glyph) else {
                continue;
            };
            let b = outline.px_bounds();
            (x0, y0, x1, y1) = (
                x0.min(b.min.x),
                y0.min(b.min.y),
                x1.max(b.max.x),
                y1.max(b.max.y),
            );
            let img = &mut self.img;
            outline.draw(|gx, gy, cov| {
                let (px, py) = (b.min.x as i64 + gx as i64, b.min.y as i64 + gy as i64);
                if px < 0 || py < 0 || px >= img.width() as i64 || py >= img.height() as i64 {
                    return;
                }
                let p = img.get_pixel_mut(px as u32, py as u32);
                for (c, &k) in p.0.iter_mut().zip(&ink) {
                    *c = (f32::from(*c) * (1.0 - cov) + f32::from(k) * cov).round() as u8;
                }
            });
        }
        self.text.push([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]);
    }

    /// Draws a code of `format` holding `content` with `module`-pixel modules at (`x`, `y`),
    /// `height` tall for 1D codes, and records the symbol's box (quiet zone excluded).
    fn code(
        &mut self,
        x: u32,
        y: u32,
        format: BarcodeFormat,
        content: &str,
        module: u32,
        height: u32,
    ) {
        let m = MultiFormatWriter
            .encode(content, &format, 0, 0)
            .expect("encodable");
        let one_d = m.height() == 1;
        let (w, h) = (m.width(), if one_d { 1 } else { m.height() });
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for my in 0..h {
            for mx in 0..w {
                if !m.get(mx, my) {
                    continue;
                }
                let rows = if one_d { height } else { module };
                for dy in 0..rows {
                    for dx in 0..module {
                        let (px, py) = (x + mx * module + dx, y + my * module + dy);
                        self.img.put_pixel(px, py, Rgb([15, 15, 20]));
                        (x0, y0, x1, y1) = (x0.min(px), y0.min(py), x1.max(px + 1), y1.max(py + 1));
                    }
                }
            }
        }
        let (x0, y0, x1, y1) = (x0 as f32, y0 as f32, x1 as f32, y1 as f32);
        self.codes.push([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]);
    }

    fn rect(&mut self, x: u32, y: u32, w: u32, h: u32, c: [u8; 3]) {
        for yy in y..(y + h).min(self.img.height()) {
            for xx in x..(x + w).min(self.img.width()) {
                self.img.put_pixel(xx, yy, Rgb(c));
            }
        }
    }
}

fn blank<'f>(font: &FontRef<'f>, w: u32, h: u32, bg: impl Fn(u32, u32) -> [u8; 3]) -> Canvas<'f> {
    Canvas {
        img: RgbImage::from_fn(w, h, |x, y| Rgb(bg(x, y))),
        font: font.clone(),
        text: Vec::new(),
        codes: Vec::new(),
    }
}

/// Pastes `band` turned by `deg` about its centre onto `onto` at centre (`cx`, `cy`), and
/// maps its ground truth along.
fn paste_turned(onto: &mut Canvas, band: &Canvas, deg: f32, cx: f32, cy: f32) {
    let (s, c) = deg.to_radians().sin_cos();
    let (bw, bh) = (band.img.width() as f32, band.img.height() as f32);
    let (w, h) = onto.img.dimensions();
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            let (sx, sy) = (dx * c + dy * s + bw / 2.0, -dx * s + dy * c + bh / 2.0);
            if sx >= 0.0 && sy >= 0.0 && sx < bw && sy < bh {
                onto.img
                    .put_pixel(x, y, *band.img.get_pixel(sx as u32, sy as u32));
            }
        }
    }
    let map = |p: &Poly| -> Poly {
        p.map(|[x, y]| {
            let (dx, dy) = (x - bw / 2.0, y - bh / 2.0);
            [dx * c - dy * s + cx, dx * s + dy * c + cy]
        })
    };
    onto.text.extend(band.text.iter().map(map));
    onto.codes.extend(band.codes.iter().map(map));
}

/// A little deterministic texture, so the backgrounds are not flat like no photo is.
fn grain(x: u32, y: u32) -> i32 {
    let mut v = x.wrapping_mul(374_761_393) ^ y.wrapping_mul(668_265_263);
    v = (v ^ (v >> 13)).wrapping_mul(1_274_126_177);
    (v >> 28) as i32 - 8
}

fn shade(base: [u8; 3], x: u32, y: u32) -> [u8; 3] {
    base.map(|c| (i32::from(c) + grain(x, y)).clamp(0, 255) as u8)
}

fn wristband(font: &FontRef<'static>) -> Canvas<'static> {
    let mut photo = blank(font, 1600, 1000, |x, y| {
        // A pale blue blanket with folds.
        let fold = ((x as f32 / 90.0).sin() * 10.0 + (y as f32 / 140.0).cos() * 8.0) as i32;
        shade([150i32, 175, 205].map(|c| (c + fold) as u8), x, y)
    });
    // The wrist, a warm band of skin across the photo.
    for y in 330..690 {
        for x in 0..1600 {
            photo.img.put_pixel(x, y, Rgb(shade([214, 170, 140], x, y)));
        }
    }
    let mut band = blank(font, 1180, 230, |x, y| shade([246, 246, 240], x, y));
    let ink = [20, 20, 30];
    band.text(30.0, 52.0, 34.0, "DOE, JANE A", ink);
    band.text(30.0, 98.0, 26.0, "DOB: 04/12/1957   F   68Y", ink);
    band.text(30.0, 140.0, 26.0, "MRN: 00482913", ink);
    band.text(30.0, 180.0, 22.0, "ADM: 11/02/2026  RM 4127-B", ink);
    band.text(30.0, 212.0, 16.0, "Dr. K. OKAFOR  ALLERGY: PCN", ink);
    band.code(520, 120, BarcodeFormat::CODE_128, "00482913", 3, 80);
    band.code(
        1010,
        40,
        BarcodeFormat::DATA_MATRIX,
        "MRN00482913^DOE^JANE",
        6,
        0,
    );
    paste_turned(&mut photo, &band, -8.0, 800.0, 510.0);
    photo
}

fn monitor(font: &FontRef<'static>) -> Canvas<'static> {
    let mut m = blank(font, 1280, 800, |x, y| shade([12, 14, 18], x, y));
    m.rect(0, 0, 1280, 70, [30, 40, 70]);
    let white = [235, 235, 235];
    m.text(20.0, 46.0, 30.0, "SMITH, ROBERT J", white);
    m.text(360.0, 46.0, 24.0, "MRN 7730215", white);
    m.text(600.0, 46.0, 24.0, "DOB 1948-03-22  M  77Y", white);
    m.text(1010.0, 46.0, 20.0, "BED ICU-12", white);
    let green = [60, 230, 90];
    m.text(60.0, 200.0, 28.0, "HR", green);
    m.text(60.0, 330.0, 110.0, "72", green);
    let cyan = [60, 210, 235];
    m.text(460.0, 200.0, 28.0, "SpO2", cyan);
    m.text(460.0, 330.0, 110.0, "98", cyan);
    let yellow = [235, 220, 60];
    m.text(860.0, 200.0, 28.0, "NIBP", yellow);
    m.text(860.0, 310.0, 72.0, "128/76", yellow);
    m.text(
        20.0,
        780.0,
        14.0,
        "22-11-2026 08:41  UNIT 3 EAST  ATTENDING: DR. L. NGUYEN",
        white,
    );
    m
}

fn chart(font: &FontRef<'static>) -> Canvas<'static> {
    let mut c = blank(font, 1240, 1754, |x, y| shade([250, 250, 246], x, y));
    let ink = [25, 25, 35];
    c.text(80.0, 120.0, 40.0, "PROGRESS NOTE", ink);
    c.rect(760, 60, 420, 200, [255, 255, 255]);
    c.text(780.0, 100.0, 22.0, "GARCIA, MARIA L", ink);
    c.text(780.0, 134.0, 18.0, "MRN 5519027   DOB 09/30/1985", ink);
    c.text(780.0, 164.0, 18.0, "ENC 88213-004  ADM 11/19/2026", ink);
    c.code(
        1060,
        176,
        BarcodeFormat::QR_CODE,
        "MRN:5519027;ENC:88213-004",
        3,
        0,
    );
    let lines = [
        "S: Patient reports improved pain, 3/10, tolerating diet.",
        "O: T 37.1  HR 84  BP 122/78  RR 16  SpO2 97% RA.",
        "   Incision clean, dry, intact. No erythema.",
        "A: POD 2 s/p lap appendectomy, recovering as expected.",
        "P: Advance diet, ambulate TID, discharge planning with",
        "   daughter (Ana Garcia, 555-0142) tomorrow.",
    ];
    for (i, l) in lines.iter().enumerate() {
        c.text(80.0, 360.0 + 44.0 * i as f32, 24.0, l, ink);
    }
    // Small print at the foot of the page: text 10 px tall is the smallest to find.
    c.text(
        80.0,
        1690.0,
        13.0,
        "Signed electronically by R. Patel MD 11/21/2026 17:02  Page 1 of 1",
        ink,
    );
    c
}

fn main() {
    let mut args = std::env::args().skip(1);
    let font_path = args
        .next()
        .unwrap_or_else(|| "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into());
    let out = PathBuf::from(args.next().unwrap_or_else(|| "fixtures/clinical".into()));
    let bytes: &'static [u8] = Box::leak(
        std::fs::read(&font_path)
            .unwrap_or_else(|e| panic!("{font_path}: {e} (apt install fonts-dejavu-core)"))
            .into_boxed_slice(),
    );
    let font = FontRef::try_from_slice(bytes).expect("a TrueType font");
    std::fs::create_dir_all(&out).unwrap();
    for (name, canvas) in [
        ("wristband", wristband(&font)),
        ("monitor", monitor(&font)),
        ("chart", chart(&font)),
    ] {
        let jpg = out.join(format!("{name}.jpg"));
        let mut f = std::fs::File::create(&jpg).unwrap();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut f, 92)
            .encode_image(&canvas.img)
            .unwrap();
        let flat = |v: &[Poly]| -> Vec<Vec<f32>> {
            v.iter()
                .map(|p| {
                    p.iter()
                        .flat_map(|q| q.map(|c| (c * 10.0).round() / 10.0))
                        .collect()
                })
                .collect()
        };
        let json = serde_json::json!({
            "image": format!("{name}.jpg"),
            "width": canvas.img.width(),
            "height": canvas.img.height(),
            "text": flat(&canvas.text),
            "codes": flat(&canvas.codes),
            "made_by": "xtask/src/bin/make_clinical_fixtures.rs (DejaVu Sans; every name and number invented)",
        });
        std::fs::write(
            out.join(format!("{name}.json")),
            serde_json::to_string_pretty(&json).unwrap() + "\n",
        )
        .unwrap();
        println!("{}", jpg.display());
    }
}
