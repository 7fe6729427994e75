//! Pixel codecs for the re-encode path: decoding each input format within limits, and
//! encoding the formats phiscrub writes. Container metadata is the walkers' business; any
//! header an encoder adds is stripped and verified by the pipeline like any other output.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ImageFormat, ImageReader};

#[cfg(feature = "heif")]
use crate::formats::heif;
use crate::formats::{self, Format};
use crate::{Deadline, Error, Limit, Limits};

/// Decodes the pixels of a single-image file, bounded by `limits`.
pub fn decode(format: Format, input: &[u8], limits: &Limits) -> Result<DynamicImage, Error> {
    let image_format = match format {
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Png => ImageFormat::Png,
        Format::Webp => ImageFormat::WebP,
        Format::Tiff => ImageFormat::Tiff,
        Format::Gif => ImageFormat::Gif,
        Format::Heif => return decode_heif(input, limits),
    };
    let mut reader = ImageReader::with_format(Cursor::new(input), image_format);
    reader.limits(crate::options::image_limits(limits));
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => Error::limit(Limit::Alloc, l.to_string()),
        e => Error::decode(format, e),
    })
}

/// Without libheif no HEIF is read; `formats::scan` has already refused it.
#[cfg(not(feature = "heif"))]
fn decode_heif(_: &[u8], _: &Limits) -> Result<DynamicImage, Error> {
    Err(Error::unsupported(
        Format::Heif,
        "this build reads no HEIF (built without libheif)",
    ))
}

/// Decodes a HEIF's primary image with libheif, which applies irot/imir and crops.
#[cfg(feature = "heif")]
fn decode_heif(input: &[u8], limits: &Limits) -> Result<DynamicImage, Error> {
    use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};
    let ctx = HeifContext::read_from_bytes(input).map_err(heif::err)?;
    let handle = ctx.primary_image_handle().map_err(heif::err)?;
    limits.check_dimensions(handle.width(), handle.height())?;
    let decoded = LibHeif::new()
        .decode(&handle, ColorSpace::Rgb(RgbChroma::Rgb), None)
        .map_err(|e| Error::decode(Format::Heif, e.to_string().to_lowercase()))?;
    let planes = decoded.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| Error::decode(Format::Heif, "no interleaved RGB plane"))?;
    let (w, h) = (plane.width, plane.height);
    let row = w as usize * 3;
    if plane.storage_bits_per_pixel != 24 || plane.stride < row {
        return Err(Error::decode(Format::Heif, "unexpected pixel layout"));
    }
    let mut px = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        px.extend_from_slice(&plane.data[y * plane.stride..y * plane.stride + row]);
    }
    let img = image::RgbImage::from_raw(w, h, px)
        .ok_or_else(|| Error::decode(Format::Heif, "pixel buffer size mismatch"))?;
    Ok(DynamicImage::ImageRgb8(img))
}

/// Encodes pixels as JPEG (`jpeg_quality`), PNG, lossless WebP or a single-frame GIF, whose
/// palette always holds the colours of `keep` exactly (the fill colour of a cover).
pub fn encode(
    format: Format,
    img: &DynamicImage,
    jpeg_quality: u8,
    keep: &[[u8; 3]],
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let enc = |e: image::ImageError| Error::encode(format, e);
    match format {
        Format::Jpeg => {
            let img = match img {
                DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => img.clone(),
                other if other.color().has_color() => other.to_rgb8().into(),
                other => other.to_luma8().into(),
            };
            img.write_with_encoder(JpegEncoder::new_with_quality(&mut out, jpeg_quality))
                .map_err(enc)?
        }
        Format::Png => img
            .write_with_encoder(PngEncoder::new_with_quality(
                &mut out,
                CompressionType::Default,
                FilterType::Adaptive,
            ))
            .map_err(enc)?,
        Format::Webp => {
            let img = match img {
                DynamicImage::ImageLuma8(_)
                | DynamicImage::ImageLumaA8(_)
                | DynamicImage::ImageRgb8(_)
                | DynamicImage::ImageRgba8(_) => img.clone(),
                other if other.color().has_alpha() => other.to_rgba8().into(),
                other => other.to_rgb8().into(),
            };
            img.write_with_encoder(WebPEncoder::new_lossless(&mut out))
                .map_err(enc)?
        }
        // A single still frame: GIFs with faces are only covered when not animated.
        Format::Gif => out = encode_gif_still(img, keep)?,
        other => return Err(Error::encode(other, "not an output format")),
    }
    Ok(out)
}

/// A still GIF of `img`. A picture of at most 256 colours (a GIF's own palette plus a fill
/// colour) is written with exactly those colours. With up to a few thousand (a full
/// palette plus a fill), the 256 most used are kept, `keep` (the fill colour) always among
/// them, and each other colour goes to its nearest kept one: covering a face then moves a
/// handful of rare colours slightly and nothing else, at a cost linear in the pixels. Only a
/// pixelated or blurred cover that brings many more colours is quantised by NeuQuant,
/// sampling one pixel in ten, which is also linear.
fn encode_gif_still(img: &DynamicImage, keep: &[[u8; 3]]) -> Result<Vec<u8>, Error> {
    const MAX_MERGED: usize = 4096;
    let rgba = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    let (w16, h16) = match (u16::try_from(w), u16::try_from(h)) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return Err(Error::encode(Format::Gif, "image is too large for GIF")),
    };
    // Every fully transparent pixel is the same transparent entry.
    let key = |p: &image::Rgba<u8>| {
        if p.0[3] == 0 {
            [0; 4]
        } else {
            [p.0[0], p.0[1], p.0[2], 255]
        }
    };
    let mut counts: std::collections::HashMap<[u8; 4], u64> = std::collections::HashMap::new();
    let mut run: Option<([u8; 4], u64)> = None;
    let mut many = false;
    for p in rgba.pixels() {
        let k = key(p);
        match &mut run {
            Some((c, n)) if *c == k => *n += 1,
            _ => {
                if let Some((c, n)) = run.take() {
                    *counts.entry(c).or_insert(0) += n;
                }
                run = Some((k, 1));
                if counts.len() > MAX_MERGED {
                    many = true;
                    break;
                }
            }
        }
    }
    if let Some((c, n)) = run {
        *counts.entry(c).or_insert(0) += n;
    }
    let enc = |e: gif::EncodingError| Error::encode(Format::Gif, e.to_string().to_lowercase());
    let frame = if many {
        let mut raw = rgba.into_raw();
        gif::Frame::from_rgba_speed(w16, h16, &mut raw, 10)
    } else {
        // Most used first; colours the caller needs exactly come before all others.
        let mut colours: Vec<([u8; 4], u64)> = counts.into_iter().collect();
        let wanted = |c: &[u8; 4]| c[3] == 255 && keep.iter().any(|k| k[..] == c[..3]);
        colours.sort_by(|a, b| (wanted(&b.0), b.1, a.0).cmp(&(wanted(&a.0), a.1, b.0)));
        let kept: Vec<[u8; 4]> = colours.iter().take(256).map(|c| c.0).collect();
        let mut index: std::collections::HashMap<[u8; 4], u8> = kept
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, i as u8))
            .collect();
        for (c, _) in colours.iter().skip(256) {
            let nearest = kept
                .iter()
                .enumerate()
                .filter(|(_, k)| k[3] == c[3])
                .min_by_key(|(_, k)| {
                    (0..3)
                        .map(|i| (i32::from(k[i]) - i32::from(c[i])).pow(2))
                        .sum::<i32>()
                })
                .map_or(0, |(i, _)| i as u8);
            index.insert(*c, nearest);
        }
        let pixels: Vec<u8> = rgba.pixels().map(|p| index[&key(p)]).collect();
        gif::Frame {
            width: w16,
            height: h16,
            transparent: kept.iter().position(|c| c[3] == 0).map(|i| i as u8),
            palette: Some(kept.iter().flat_map(|c| [c[0], c[1], c[2]]).collect()),
            buffer: pixels.into(),
            ..gif::Frame::default()
        }
    };
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, w16, h16, &[]).map_err(enc)?;
        encoder.write_frame(&frame).map_err(enc)?;
    }
    Ok(out)
}

/// Re-renders a GIF from its indexed frames: each frame's pixels are decoded and encoded
/// afresh with its position, timing, disposal and transparency, and the looping count is
/// kept; comments, application data and anything after the trailer are gone. Nothing is
/// composited or quantised, so the cost is linear in the frames' own pixels, which are
/// bounded from the headers before anything is decoded. Palette entries no pixel uses are
/// blacked out and the palette is cut to the smallest size that holds the ones in use, so a
/// colour table cannot carry text either. Frames are cropped to the canvas, as viewers
/// show them.
pub fn rerender_gif(
    input: &[u8],
    limits: &Limits,
    deadline: &Deadline,
) -> Result<(Vec<u8>, u32, u32), Error> {
    let info = formats::gif::frames(input)?;
    limits.check_frames(info.count, info.pixels)?;
    let dec_err = |e: gif::DecodingError| Error::decode(Format::Gif, e.to_string().to_lowercase());
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::Indexed);
    opts.set_memory_limit(gif::MemoryLimit::Bytes(
        std::num::NonZeroU64::new(limits.max_alloc.max(1)).expect("non-zero"),
    ));
    opts.check_frame_consistency(false);
    let mut decoder = opts.read_info(Cursor::new(input)).map_err(dec_err)?;
    let (w, h) = (decoder.width(), decoder.height());
    let global = decoder.global_palette().map(<[u8]>::to_vec);
    let repeat = decoder.repeat();
    // Frames are kept indexed (one byte a pixel, bounded by the animation pixel limit) until
    // the global palette's use is known.
    let mut frames: Vec<gif::Frame<'static>> = Vec::new();
    let mut global_used = [false; 256];
    while let Some(frame) = decoder.read_next_frame().map_err(dec_err)? {
        deadline.check()?;
        let mut frame = crop_to_canvas(frame.clone(), w, h)?;
        let mut used = [false; 256];
        for &i in frame.buffer.iter() {
            used[usize::from(i)] = true;
        }
        // A transparent index no pixel uses changes nothing.
        if frame.transparent.is_some_and(|t| !used[usize::from(t)]) {
            frame.transparent = None;
        }
        match frame.palette.as_mut() {
            Some(local) => *local = clean_palette(local, &used, frame.transparent)?,
            None => {
                for (g, u) in global_used.iter_mut().zip(used) {
                    *g |= u;
                }
            }
        }
        frame.interlaced = false;
        frames.push(frame);
    }
    if frames.is_empty() {
        return Err(Error::malformed(Format::Gif, "no image"));
    }
    let global = match &global {
        Some(g) => clean_palette(g, &global_used, None)?,
        None => Vec::new(),
    };
    if global.is_empty() && frames.iter().any(|f| f.palette.is_none()) {
        return Err(Error::malformed(Format::Gif, "a frame has no colour table"));
    }
    let enc = |e: gif::EncodingError| Error::encode(Format::Gif, e.to_string().to_lowercase());
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, w, h, &global).map_err(enc)?;
        if frames.len() > 1 {
            encoder.set_repeat(repeat).map_err(enc)?;
        }
        for f in &frames {
            deadline.check()?;
            encoder.write_frame(f).map_err(enc)?;
        }
    }
    Ok((out, u32::from(w), u32::from(h)))
}

/// `palette` with every entry not marked in `used` set to black, cut after the last entry in
/// use (the encoder pads it to a power of two with black). The transparent entry's colour
/// is never shown, so it is blacked out as well.
fn clean_palette(
    palette: &[u8],
    used: &[bool; 256],
    transparent: Option<u8>,
) -> Result<Vec<u8>, Error> {
    let entries = palette.len() / 3;
    let last = (0..entries).rev().find(|&i| used[i]);
    if used.iter().enumerate().any(|(i, &u)| u && i >= entries) {
        return Err(Error::malformed(
            Format::Gif,
            "a pixel uses a colour beyond its colour table",
        ));
    }
    let keep = last.map_or(1, |l| l + 1);
    let mut out = palette[..keep * 3].to_vec();
    for (i, rgb) in out.chunks_exact_mut(3).enumerate() {
        if !used[i] || transparent == Some(i as u8) {
            rgb.fill(0);
        }
    }
    Ok(out)
}

/// A frame reaching past the canvas is cut to it: viewers never show what lies outside.
fn crop_to_canvas(
    mut f: gif::Frame<'static>,
    w: u16,
    h: u16,
) -> Result<gif::Frame<'static>, Error> {
    let (fw, fh) = (usize::from(f.width), usize::from(f.height));
    if f.buffer.len() < fw * fh {
        return Err(Error::decode(
            Format::Gif,
            "frame data is shorter than the frame",
        ));
    }
    let keep_w = usize::from(w.saturating_sub(f.left)).min(fw);
    let keep_h = usize::from(h.saturating_sub(f.top)).min(fh);
    if keep_w == 0 || keep_h == 0 {
        return Err(Error::malformed(
            Format::Gif,
            "a frame lies outside the canvas",
        ));
    }
    if (keep_w, keep_h) != (fw, fh) || f.buffer.len() != fw * fh {
        let buf: Vec<u8> = f
            .buffer
            .chunks_exact(fw)
            .take(keep_h)
            .flat_map(|row| &row[..keep_w])
            .copied()
            .collect();
        f.buffer = buf.into();
        f.width = keep_w as u16;
        f.height = keep_h as u16;
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_palette_plus_a_fill_keeps_the_fill_exactly_and_moves_only_the_rarest_colour() {
        // 256 colours, colour 255 the rarest, then a black cover: 257 colours.
        let img = image::RgbImage::from_fn(64, 64, |x, y| {
            let i = (y * 64 + x) % 255;
            let c = if x == 63 && y == 63 { 255 } else { i as u8 };
            image::Rgb([c, c.wrapping_mul(7), 255 - c])
        });
        let mut covered = img.clone();
        for y in 10..20 {
            for x in 10..20 {
                covered.put_pixel(x, y, image::Rgb([0, 0, 0]));
            }
        }
        let gif = encode(
            Format::Gif,
            &DynamicImage::ImageRgb8(covered.clone()),
            90,
            &[[0, 0, 0]],
        )
        .unwrap();
        let back = image::load_from_memory(&gif).unwrap().to_rgb8();
        let changed: Vec<(u32, u32)> = back
            .enumerate_pixels()
            .filter(|(x, y, p)| *p != covered.get_pixel(*x, *y))
            .map(|(x, y, _)| (x, y))
            .collect();
        assert_eq!(changed, [(63, 63)]);
        assert_eq!(back.get_pixel(15, 15), &image::Rgb([0, 0, 0]));
    }
}
