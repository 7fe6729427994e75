//! Hostile files, made on the spot from the specifications: decompression and CPU bombs,
//! degenerate shapes, and identifying text planted inside chunks an allowlist keeps. The
//! tests and `scripts/bombs` (through `xtask/src/bin/make_hostile.rs`) use the same makers, so
//! what the README's bomb table measures is what the tests pin.

use std::io::Cursor;

/// The text planted in hostile files; it must never reach an output.
pub const PLANTED: &str = "Jane Example MRN 0048213";

/// Pseudo-random bytes from a fixed seed (xorshift), for noise that compresses badly.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A PNG through image-rs's encoder.
pub fn png(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// A grey `w` x `h` PNG of noise: thin strips like these kept rxing's MaxiCode detector
/// busy for minutes.
pub fn noise_png(w: u32, h: u32) -> Vec<u8> {
    let px = noise((w * h) as usize, u64::from(w) << 32 | u64::from(h));
    png(&image::DynamicImage::ImageLuma8(
        image::GrayImage::from_raw(w, h, px).unwrap(),
    ))
}

/// A PNG chunk.
pub fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    phiscrub::formats::png::chunk(kind, data)
}

/// A PNG of one flat colour at 16 bits per channel, built row by row so that a picture of
/// hundreds of megapixels costs a megabyte: what a decoder must expand it into is the bomb.
pub fn flat_png16(w: u32, h: u32) -> Vec<u8> {
    use miniz_oxide::deflate::core::{
        compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
    };
    let row = vec![0u8; 1 + 6 * w as usize];
    let mut c = CompressorOxide::new(create_comp_flags_from_zip_params(1, 15, 0));
    let mut z = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    for y in 0..h {
        let flush = if y + 1 == h {
            TDEFLFlush::Finish
        } else {
            TDEFLFlush::None
        };
        let mut input = &row[..];
        loop {
            let (status, read, written) = compress(&mut c, input, &mut buf, flush);
            z.extend_from_slice(&buf[..written]);
            input = &input[read..];
            assert!(matches!(status, TDEFLStatus::Okay | TDEFLStatus::Done));
            if input.is_empty() && (flush != TDEFLFlush::Finish || status == TDEFLStatus::Done) {
                break;
            }
        }
    }
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[16, 2, 0, 0, 0]);
    let mut out = phiscrub::formats::png::SIGNATURE.to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(b"IDAT", &z));
    out.extend(chunk(b"IEND", b""));
    out
}

/// A GIF frame: position, size, local palette and indices.
pub struct GifFrame {
    pub left: u16,
    pub top: u16,
    pub width: u16,
    pub height: u16,
    pub palette: Vec<u8>,
    pub pixels: Vec<u8>,
}

/// A GIF with a `w` x `h` canvas and `frames`, encoded with the gif crate.
pub fn gif(w: u16, h: u16, frames: &[GifFrame]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut e = gif::Encoder::new(&mut out, w, h, &[]).unwrap();
        if frames.len() > 1 {
            e.set_repeat(gif::Repeat::Infinite).unwrap();
        }
        for f in frames {
            let frame = gif::Frame {
                left: f.left,
                top: f.top,
                width: f.width,
                height: f.height,
                palette: Some(f.palette.clone()),
                buffer: f.pixels.clone().into(),
                ..gif::Frame::default()
            };
            e.write_frame(&frame).unwrap();
        }
    }
    out
}

/// Two tiny frames on a 12 MP canvas whose colours add up to 257: composited and
/// quantised (NeuQuant over every pixel of the canvas), they took minutes to re-render.
pub fn gif_257_colours() -> Vec<u8> {
    let palette = noise(768, 257);
    gif(
        4000,
        3000,
        &[
            GifFrame {
                left: 0,
                top: 0,
                width: 16,
                height: 16,
                palette,
                pixels: (0..=255).collect(),
            },
            GifFrame {
                left: 20,
                top: 20,
                width: 1,
                height: 1,
                palette: vec![1, 2, 3, 4, 5, 6],
                pixels: vec![0],
            },
        ],
    )
}

/// One 2 x 2 frame on a 14 000 x 14 000 canvas.
pub fn gif_huge_canvas() -> Vec<u8> {
    gif(
        14_000,
        14_000,
        &[GifFrame {
            left: 0,
            top: 0,
            width: 2,
            height: 2,
            palette: vec![255, 0, 0, 0, 255, 0],
            pixels: vec![0, 1, 1, 0],
        }],
    )
}

/// `n` one-pixel frames on a 700 x 700 canvas: composited, each a full canvas in memory.
pub fn gif_many_frames(n: usize) -> Vec<u8> {
    let frames: Vec<GifFrame> = (0..n)
        .map(|i| GifFrame {
            left: (i % 700) as u16,
            top: (i / 700) as u16,
            width: 1,
            height: 1,
            palette: vec![(i % 256) as u8, 1, 2, 3, 4, 5],
            pixels: vec![0],
        })
        .collect();
    gif(700, 700, &frames)
}

/// `n` full frames of 1000 x 1000, each one flat colour: an animation of `n` MP that
/// decodes for real (what re-rendering costs at the animation pixel limit).
pub fn gif_full_frames(n: usize) -> Vec<u8> {
    let frames: Vec<GifFrame> = (0..n)
        .map(|i| GifFrame {
            left: 0,
            top: 0,
            width: 1000,
            height: 1000,
            palette: vec![(i % 256) as u8, 40, 80, 0, 0, 0],
            pixels: vec![0; 1_000_000],
        })
        .collect();
    gif(1000, 1000, &frames)
}

/// 600 frames declaring 1000 x 1000 pixels each (600 MP in all) whose image data is an
/// empty LZW stream: the headers alone must stop it.
pub fn gif_over_animation_limit() -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&1000u16.to_le_bytes());
    out.extend_from_slice(&1000u16.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    for _ in 0..600 {
        out.push(0x2C);
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&1000u16.to_le_bytes());
        out.extend_from_slice(&1000u16.to_le_bytes());
        // No local table; minimum code size 2; codes: clear (4), end (5).
        out.extend_from_slice(&[0, 2, 1, 0x2C, 0]);
    }
    out.push(0x3B);
    out
}

fn bmff(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(payload);
    v
}

fn full(kind: &[u8; 4], version: u8, flags: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = (u32::from(version) << 24 | flags).to_be_bytes().to_vec();
    p.extend_from_slice(payload);
    bmff(kind, &p)
}

/// A HEIF grid of `n` HEVC tiles (with their hvcC, no coded data) in a few hundred
/// kilobytes: libheif's parser spends time growing with the square of the item count.
pub fn heif_grid(n: u32) -> Vec<u8> {
    let ftyp = bmff(b"ftyp", b"heic\0\0\0\0mif1heic");
    let hdlr = full(b"hdlr", 0, 0, &[&[0u8; 4][..], b"pict", &[0; 13]].concat());
    let pitm = full(b"pitm", 0, 0, &1u16.to_be_bytes());
    let mut infes = full(b"infe", 2, 0, &[&[0, 1, 0, 0][..], b"grid\0"].concat());
    for i in 0..n {
        let id = ((i + 2) as u16).to_be_bytes();
        infes.extend(full(b"infe", 2, 1, &[&id[..], &[0, 0], b"hvc1\0"].concat()));
    }
    let iinf = full(
        b"iinf",
        1,
        0,
        &[&(n + 1).to_be_bytes()[..], &infes].concat(),
    );
    let mut refs = 1u16.to_be_bytes().to_vec();
    refs.extend_from_slice(&(n as u16).to_be_bytes());
    for i in 0..n {
        refs.extend_from_slice(&((i + 2) as u16).to_be_bytes());
    }
    let iref = full(b"iref", 0, 0, &bmff(b"dimg", &refs));
    let mut iloc = vec![0x44, 0x00];
    iloc.extend_from_slice(&((n + 1) as u16).to_be_bytes());
    for i in 0..=n {
        iloc.extend_from_slice(&((i + 1) as u16).to_be_bytes());
        iloc.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 8]);
    }
    let iloc = full(b"iloc", 1, 0, &iloc);
    let cols = 128u32;
    let rows = n.div_ceil(cols);
    let ispe = full(
        b"ispe",
        0,
        0,
        &[(64 * cols).to_be_bytes(), (64 * rows).to_be_bytes()].concat(),
    );
    let tile = full(
        b"ispe",
        0,
        0,
        &[64u32.to_be_bytes(), 64u32.to_be_bytes()].concat(),
    );
    let hvcc = bmff(
        b"hvcC",
        &[
            1, 1, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5d, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0,
            0x0f, 0,
        ],
    );
    let ipco = bmff(b"ipco", &[ispe, tile, hvcc].concat());
    let mut ipma = (n + 1).to_be_bytes().to_vec();
    ipma.extend_from_slice(&[0, 1, 1, 0x81]);
    for i in 0..n {
        ipma.extend_from_slice(&((i + 2) as u16).to_be_bytes());
        ipma.extend_from_slice(&[2, 0x82, 0x83]);
    }
    let iprp = bmff(b"iprp", &[ipco, full(b"ipma", 0, 0, &ipma)].concat());
    let meta = full(
        b"meta",
        0,
        0,
        &[hdlr, pitm, iloc, iinf, iref, iprp].concat(),
    );
    [ftyp, meta, bmff(b"mdat", &[0; 16])].concat()
}

/// A JPEG through image-rs's encoder.
pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 3 + y) as u8, (y * 2) as u8, (x ^ y) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    out
}

/// A `w` x `h` JPEG of smooth gradients, nothing flat: what the detectors search at the
/// pixel limit until the deadline stops them.
pub fn jpeg_gradient(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x / 64) as u8, (y / 64) as u8, ((x + y) / 128) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .unwrap();
    out
}

/// An 8 x 8 JPEG whose frame header declares 14 000 x 14 000: under 700 bytes that a
/// decoder would turn into 196 MP of invented pixels.
pub fn jpeg_declaring_14000() -> Vec<u8> {
    let mut v = jpeg(8, 8);
    let sof = v.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    v[sof + 5..sof + 9].copy_from_slice(&[0x36, 0xB0, 0x36, 0xB0]);
    v
}

/// `jpeg` with `text` placed between the end of its coded data and EOI: every marker
/// walker copies it, no decoder reads it.
pub fn jpeg_text_before_eoi(text: &str) -> Vec<u8> {
    let mut v = jpeg(64, 48);
    let at = v.len() - 2;
    v.splice(at..at, text.bytes());
    v
}

/// `jpeg` with a Huffman table no scan reads whose symbols spell `text`.
pub fn jpeg_text_in_unused_table(text: &str) -> Vec<u8> {
    let v = jpeg(64, 48);
    let mut def = vec![0x13];
    let mut counts = [0u8; 16];
    counts[8] = text.len() as u8;
    def.extend_from_slice(&counts);
    def.extend_from_slice(text.as_bytes());
    let mut seg = vec![0xFF, 0xC4];
    seg.extend_from_slice(&((def.len() + 2) as u16).to_be_bytes());
    seg.extend(def);
    [&v[..2], &seg, &v[2..]].concat()
}

/// A PNG chunk's type and data.
pub type PngChunk = ([u8; 4], Vec<u8>);

/// The chunks of a PNG, IEND included.
pub fn png_chunks(d: &[u8]) -> Vec<PngChunk> {
    let mut out = Vec::new();
    let mut pos = 8;
    while pos + 12 <= d.len() {
        let len = u32::from_be_bytes(d[pos..pos + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = d[pos + 4..pos + 8].try_into().unwrap();
        out.push((kind, d[pos + 8..pos + 8 + len].to_vec()));
        pos += 12 + len;
    }
    out
}

/// A PNG from chunks.
pub fn png_from(chunks: &[PngChunk]) -> Vec<u8> {
    let mut out = phiscrub::formats::png::SIGNATURE.to_vec();
    for (k, d) in chunks {
        out.extend(chunk(k, d));
    }
    out
}

/// A small RGB PNG.
pub fn rgb_png() -> Vec<u8> {
    png(&image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(
        40,
        30,
        |x, y| image::Rgb([(x * 6) as u8, (y * 8) as u8, 90]),
    )))
}

/// The ways identifying text hides inside PNG chunks an allowlist keeps: (name, file).
pub fn png_hiding_places(text: &str) -> Vec<(&'static str, Vec<u8>)> {
    let base = png_chunks(&rgb_png());
    let with = |f: &dyn Fn(&mut Vec<PngChunk>)| {
        let mut c = base.clone();
        f(&mut c);
        png_from(&c)
    };
    let idat = base.iter().position(|(k, _)| k == b"IDAT").unwrap();
    let mut out = vec![
        (
            "png_extra_idat_after_the_image",
            with(&|c| c.insert(idat + 1, (*b"IDAT", text.as_bytes().to_vec()))),
        ),
        (
            "png_bytes_after_the_zlib_stream",
            with(&|c| c[idat].1.extend_from_slice(text.as_bytes())),
        ),
        (
            "png_plte_in_a_truecolour_image",
            with(&|c| {
                let mut p = text.as_bytes().to_vec();
                p.resize(p.len().div_ceil(3) * 3, b' ');
                c.insert(1, (*b"PLTE", p));
            }),
        ),
    ];
    // The image's rows followed by the text, in a stored (uncompressed) deflate block so the
    // text lies in the file as it is.
    let mut raw: Vec<u8> = Vec::new();
    for y in 0..30u32 {
        raw.push(0);
        for x in 0..40u32 {
            raw.extend_from_slice(&[(x * 6) as u8, (y * 8) as u8, 90]);
        }
    }
    raw.extend_from_slice(text.as_bytes());
    let stored = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 0);
    out.push((
        "png_rows_beyond_the_picture",
        with(&|c| c[idat].1 = stored.clone()),
    ));
    // A palette image using two colours, its tRNS longer than its palette.
    let pal = image::GrayImage::from_fn(8, 8, |x, y| image::Luma([((x + y) % 2) as u8]));
    let mut raw = Vec::new();
    for row in pal.rows() {
        raw.push(0);
        raw.extend(row.map(|p| p.0[0]));
    }
    let mut ihdr = 8u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&8u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 3, 0, 0, 0]);
    let mut trns = vec![255, 128];
    trns.extend_from_slice(text.as_bytes());
    out.push((
        "png_trns_longer_than_the_palette",
        png_from(&[
            (*b"IHDR", ihdr.clone()),
            (*b"PLTE", vec![0, 0, 0, 255, 255, 255]),
            (*b"tRNS", trns),
            (
                *b"IDAT",
                miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6),
            ),
            (*b"IEND", vec![]),
        ]),
    ));
    // The same image with a full palette whose unused entries spell the text.
    let mut plte = vec![0, 0, 0, 255, 255, 255];
    plte.extend_from_slice(text.as_bytes());
    plte.resize(plte.len().div_ceil(3) * 3, b' ');
    out.push((
        "png_text_in_unused_palette_entries",
        png_from(&[
            (*b"IHDR", ihdr),
            (*b"PLTE", plte),
            (
                *b"IDAT",
                miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6),
            ),
            (*b"IEND", vec![]),
        ]),
    ));
    out
}

/// A RIFF WebP from chunks.
pub fn webp_from(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (f, p) in chunks {
        phiscrub::formats::webp::push_chunk(&mut body, f, p);
    }
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
    v.extend_from_slice(b"WEBP");
    v.extend(body);
    v
}

/// The lossless bitstream of a small WebP through image-rs's encoder, and its size.
pub fn vp8l() -> (Vec<u8>, u32, u32) {
    let img = image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(24, 16, |x, y| {
        image::Rgba([(x * 9) as u8, (y * 12) as u8, 40, 255])
    }));
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::WebP)
        .unwrap();
    let at = out.windows(4).position(|w| w == b"VP8L").unwrap();
    let len = u32::from_le_bytes(out[at + 4..at + 8].try_into().unwrap()) as usize;
    (out[at + 8..at + 8 + len].to_vec(), 24, 16)
}

/// The ways identifying text hides inside WebP chunks an allowlist keeps.
pub fn webp_hiding_places(text: &str) -> Vec<(&'static str, Vec<u8>)> {
    let (bits, w, h) = vp8l();
    let mut second = vec![0x2F];
    second.extend_from_slice(text.as_bytes());
    let vp8x = |flags: u8| {
        let mut p = vec![flags, 0, 0, 0];
        p.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
        p.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
        p
    };
    let mut alph = vec![0u8];
    alph.extend_from_slice(text.as_bytes());
    vec![
        (
            "webp_second_bitstream",
            webp_from(&[(b"VP8L", bits.clone()), (b"VP8L", second.clone())]),
        ),
        (
            "webp_second_bitstream_extended",
            webp_from(&[
                (b"VP8X", vp8x(0)),
                (b"VP8L", bits.clone()),
                (b"VP8L", second),
            ]),
        ),
        (
            "webp_alph_without_the_alpha_flag",
            webp_from(&[(b"VP8X", vp8x(0)), (b"ALPH", alph), (b"VP8L", bits)]),
        ),
    ]
}

/// The ways identifying text hides inside JPEG segments an allowlist keeps.
pub fn jpeg_hiding_places(text: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("jpeg_bytes_after_the_scan_data", jpeg_text_before_eoi(text)),
        ("jpeg_unused_huffman_table", jpeg_text_in_unused_table(text)),
    ]
}

/// A small TIFF whose IFD0 text tags (artist, description) carry `text`: TIFF is always
/// re-rendered, so none of it may reach the PNG written for it.
pub fn tiff_with_text_tags(text: &str) -> Vec<u8> {
    let img = image::RgbImage::from_fn(16, 12, |x, y| {
        image::Rgb([(x * 15) as u8, (y * 20) as u8, 60])
    });
    let mut plain = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut plain), image::ImageFormat::Tiff)
        .unwrap();
    // Append a new IFD0 that copies the encoder's entries and adds two ASCII tags.
    let le = plain.starts_with(b"II");
    assert!(le, "image-rs writes little-endian TIFF");
    let u16_at = |d: &[u8], i: usize| u16::from_le_bytes([d[i], d[i + 1]]);
    let u32_at = |d: &[u8], i: usize| u32::from_le_bytes(d[i..i + 4].try_into().unwrap());
    let ifd0 = u32_at(&plain, 4) as usize;
    let n = u16_at(&plain, ifd0) as usize;
    let mut entries: Vec<[u8; 12]> = (0..n)
        .map(|i| {
            plain[ifd0 + 2 + 12 * i..ifd0 + 14 + 12 * i]
                .try_into()
                .unwrap()
        })
        .collect();
    let mut out = plain.clone();
    let text_at = out.len() as u32;
    out.extend_from_slice(text.as_bytes());
    out.push(0);
    for tag in [270u16, 315] {
        let mut e = [0u8; 12];
        e[0..2].copy_from_slice(&tag.to_le_bytes());
        e[2..4].copy_from_slice(&2u16.to_le_bytes());
        e[4..8].copy_from_slice(&(text.len() as u32 + 1).to_le_bytes());
        e[8..12].copy_from_slice(&text_at.to_le_bytes());
        entries.push(e);
    }
    entries.sort_by_key(|e| u16::from_le_bytes([e[0], e[1]]));
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let new_ifd = out.len() as u32;
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for e in &entries {
        out.extend_from_slice(e);
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out[4..8].copy_from_slice(&new_ifd.to_le_bytes());
    out
}
