//! Colour management with moxcms: dropping an embedded profile must not change how a photo
//! looks (clinical colour matters: rashes, wounds), so pixels described by a non-sRGB profile
//! are converted to sRGB before the profile is discarded.

use image::DynamicImage;
use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};

/// How an image's colour description relates to sRGB.
pub enum Verdict {
    /// sRGB, or close enough that no 8-bit value moves by more than [`TOLERANCE`].
    Srgb,
    /// Pixels must be converted from this profile before it is dropped.
    Convert(Box<ColorProfile>),
    /// The description could not be used; the note says why. Pixels are left as they are.
    Unusable(String),
}

/// Largest 8-bit difference per channel at which a profile is treated as sRGB. Two levels is
/// below what anyone can see and absorbs rounding in the profiles phones and cameras embed.
pub const TOLERANCE: u8 = 2;

pub use phiscrub_formats::Primaries;

/// Judges an embedded ICC profile.
pub fn judge_icc(icc: &[u8]) -> Verdict {
    let profile = match ColorProfile::new_from_slice(icc) {
        Ok(p) => p,
        Err(e) => return Verdict::Unusable(format!("unreadable ICC profile ({e:?})")),
    };
    judge(profile)
}

/// Judges declared primaries.
pub fn judge_primaries(p: Primaries) -> Verdict {
    judge(match p {
        Primaries::DisplayP3 => ColorProfile::new_display_p3(),
        Primaries::Bt2020 => ColorProfile::new_bt2020(),
    })
}

fn judge(profile: ColorProfile) -> Verdict {
    let (layout, channels) = match profile.color_space {
        DataColorSpace::Rgb => (Layout::Rgb, 3),
        DataColorSpace::Gray => (Layout::Gray, 1),
        other => {
            return Verdict::Unusable(format!(
                "{other:?} ICC profile is not converted (pixels decoded as RGB)"
            ))
        }
    };
    let srgb = ColorProfile::new_srgb();
    let t = match profile.create_transform_8bit(layout, &srgb, Layout::Rgb, options()) {
        Ok(t) => t,
        Err(e) => return Verdict::Unusable(format!("ICC profile cannot be applied ({e:?})")),
    };
    let steps: Vec<u8> = (0..=8u32).map(|i| (i * 255 / 8) as u8).collect();
    let mut probe: Vec<u8> = Vec::new();
    if channels == 3 {
        for &r in &steps {
            for &g in &steps {
                for &b in &steps {
                    probe.extend_from_slice(&[r, g, b]);
                }
            }
        }
    } else {
        probe.extend_from_slice(&steps);
    }
    let mut out = vec![0u8; probe.len() / channels * 3];
    if t.transform(&probe, &mut out).is_err() {
        return Verdict::Unusable("ICC profile cannot be applied".into());
    }
    let expected = probe.chunks(channels).flat_map(|px| match px {
        [g] => [*g, *g, *g],
        [r, g, b] => [*r, *g, *b],
        _ => unreachable!("1 or 3 channels"),
    });
    if out
        .iter()
        .zip(expected)
        .all(|(&a, b)| a.abs_diff(b) <= TOLERANCE)
    {
        Verdict::Srgb
    } else {
        Verdict::Convert(Box::new(profile))
    }
}

fn options() -> TransformOptions {
    TransformOptions::default()
}

/// Converts an image's pixels from `profile` to sRGB. Images with more than 8 bits per
/// channel are reduced to 8 bits; grey images with a grey profile become RGB.
pub fn to_srgb(img: DynamicImage, profile: &ColorProfile) -> Result<DynamicImage, String> {
    let srgb = ColorProfile::new_srgb();
    let fail = |e| format!("colour conversion failed ({e:?})");
    match profile.color_space {
        DataColorSpace::Gray if !img.color().has_color() => {
            let grey = img.to_luma8();
            let mut px = image::RgbImage::new(grey.width(), grey.height());
            let t = profile
                .create_transform_8bit(Layout::Gray, &srgb, Layout::Rgb, options())
                .map_err(fail)?;
            t.transform(grey.as_raw(), &mut px).map_err(fail)?;
            Ok(DynamicImage::ImageRgb8(px))
        }
        DataColorSpace::Rgb if img.color().has_alpha() => {
            let mut px = img.to_rgba8();
            let t = profile
                .create_transform_8bit(Layout::Rgba, &srgb, Layout::Rgba, options())
                .map_err(fail)?;
            let src = px.as_raw().clone();
            t.transform(&src, &mut px).map_err(fail)?;
            Ok(DynamicImage::ImageRgba8(px))
        }
        DataColorSpace::Rgb => {
            let mut px = img.to_rgb8();
            let t = profile
                .create_transform_8bit(Layout::Rgb, &srgb, Layout::Rgb, options())
                .map_err(fail)?;
            let src = px.as_raw().clone();
            t.transform(&src, &mut px).map_err(fail)?;
            Ok(DynamicImage::ImageRgb8(px))
        }
        other => Err(format!("{other:?} profile does not match the pixels")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(p: &ColorProfile) -> Vec<u8> {
        p.encode().expect("moxcms encodes its own profiles")
    }

    #[test]
    fn srgb_profile_is_srgb() {
        assert!(matches!(
            judge_icc(&encoded(&ColorProfile::new_srgb())),
            Verdict::Srgb
        ));
    }

    #[test]
    fn display_p3_needs_conversion_and_saturated_red_changes() {
        let Verdict::Convert(p) = judge_icc(&encoded(&ColorProfile::new_display_p3())) else {
            panic!("P3 must be converted");
        };
        let img =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(2, 2, image::Rgb([255, 0, 0])));
        let out = to_srgb(img, &p).unwrap().to_rgb8();
        // P3 red lies outside sRGB: it clips to full red with the other channels unchanged or
        // is mapped inside; either way it is not the untouched value of a P3-unaware viewer
        // for less saturated colours, checked next.
        assert_eq!(out.get_pixel(0, 0)[0], 255);
        let mid = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            1,
            1,
            image::Rgb([200, 100, 50]),
        ));
        let m = to_srgb(mid, &p).unwrap().to_rgb8();
        assert!(
            m.get_pixel(0, 0)[0] > 200,
            "P3 orange is more saturated in sRGB: {:?}",
            m.get_pixel(0, 0)
        );
    }

    #[test]
    fn garbage_profile_is_unusable_not_a_panic() {
        assert!(matches!(judge_icc(b"not a profile"), Verdict::Unusable(_)));
    }
}
