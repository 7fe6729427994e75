//! Writes the files in `fixtures/`: small images that carry every kind of identifying
//! metadata phiscrub removes, plus hostile files. All values are fictional. Re-run with
//! `cargo run -p xtask --bin make_fixtures` after changing this file; the output is deterministic.

use std::fs;
use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use phiscrub::formats::{jpeg, png, webp};

/// A TIFF/EXIF value: (tag, type, count, bytes). Types: 1 BYTE, 2 ASCII, 3 SHORT, 4 LONG,
/// 5 RATIONAL, 7 UNDEFINED.
type Entry = (u16, u16, u32, Vec<u8>);

fn ascii(tag: u16, s: &str) -> Entry {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    (tag, 2, b.len() as u32, b)
}

fn short(tag: u16, v: u16) -> Entry {
    (tag, 3, 1, v.to_le_bytes().to_vec())
}

fn long(tag: u16, v: u32) -> Entry {
    (tag, 4, 1, v.to_le_bytes().to_vec())
}

fn rationals(tag: u16, v: &[(u32, u32)]) -> Entry {
    let b = v
        .iter()
        .flat_map(|(n, d)| n.to_le_bytes().into_iter().chain(d.to_le_bytes()))
        .collect();
    (tag, 5, v.len() as u32, b)
}

/// Serialises one IFD at `at`, overflow data right after it. Returns the bytes.
fn ifd(entries: &[Entry], at: u32, next: u32) -> Vec<u8> {
    let head = 2 + 12 * entries.len() as u32 + 4;
    let mut data = Vec::new();
    let mut out = (entries.len() as u16).to_le_bytes().to_vec();
    for (tag, typ, count, bytes) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&typ.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        if bytes.len() <= 4 {
            let mut v = bytes.clone();
            v.resize(4, 0);
            out.extend_from_slice(&v);
        } else {
            out.extend_from_slice(&(at + head + data.len() as u32).to_le_bytes());
            data.extend_from_slice(bytes);
            if data.len() % 2 == 1 {
                data.push(0);
            }
        }
    }
    out.extend_from_slice(&next.to_le_bytes());
    out.extend(data);
    out
}

fn ifd_len(entries: &[Entry]) -> u32 {
    ifd(entries, 0, 0).len() as u32
}

/// A little-endian EXIF block with device, dates, owner, serials, GPS and an IFD1 thumbnail.
fn exif(orientation: Option<u16>, thumbnail: &[u8]) -> Vec<u8> {
    let exif_ifd = vec![
        ascii(0x9003, "2026:03:14 09:26:53"),
        ascii(0xA430, "Jane Example"),
        ascii(0xA431, "SN-0042-FICTIONAL"),
    ];
    let gps_ifd = vec![
        (0x0000, 1, 4, vec![2, 3, 0, 0]),
        ascii(0x0001, "N"),
        rationals(0x0002, &[(51, 1), (30, 1), (1234, 100)]),
        ascii(0x0003, "W"),
        rationals(0x0004, &[(0, 1), (7, 1), (3900, 100)]),
    ];
    let mut ifd0 = vec![
        ascii(0x010F, "PhiscrubTestCam"),
        ascii(0x0110, "Model Fictional 1"),
        ascii(0x0132, "2026:03:14 09:26:53"),
        ascii(0x013B, "Dr Example Clinician"),
    ];
    if let Some(o) = orientation {
        ifd0.push(short(0x0112, o));
    }
    ifd0.push(long(0x8769, 0));
    ifd0.push(long(0x8825, 0));
    let ifd1_entries =
        |thumb_at: u32| vec![long(0x0201, thumb_at), long(0x0202, thumbnail.len() as u32)];
    let at0 = 8;
    let at_exif = at0 + ifd_len(&ifd0);
    let at_gps = at_exif + ifd_len(&exif_ifd);
    let at1 = at_gps + ifd_len(&gps_ifd);
    let at_thumb = at1 + ifd_len(&ifd1_entries(0));
    let n = ifd0.len();
    ifd0[n - 2] = long(0x8769, at_exif);
    ifd0[n - 1] = long(0x8825, at_gps);
    let mut out = b"II*\0\x08\0\0\0".to_vec();
    out.extend(ifd(&ifd0, at0, at1));
    out.extend(ifd(&exif_ifd, at_exif, 0));
    out.extend(ifd(&gps_ifd, at_gps, 0));
    out.extend(ifd(&ifd1_entries(at_thumb), at1, 0));
    out.extend_from_slice(thumbnail);
    out
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

/// A picture with structure in every direction, so orientation mistakes are visible.
fn picture(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        let corner = x < w / 4 && y < h / 4;
        Rgb([
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            if corner { 255 } else { 40 },
        ])
    }))
}

const XMP: &str = "<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'><rdf:Description xmlns:dc='http://purl.org/dc/elements/1.1/' dc:creator='Dr Example Clinician' dc:description='Patient Jane Example, MRN 0000000'/></rdf:RDF></x:xmpmeta>";

/// Inserts segments after SOI (and the encoder's JFIF header) and appends a trailer.
fn jpeg_with(base: &[u8], segments: &[Vec<u8>], trailer: &[u8]) -> Vec<u8> {
    let mut out = base[..2].to_vec();
    for s in segments {
        out.extend_from_slice(s);
    }
    out.extend_from_slice(&base[2..]);
    out.extend_from_slice(trailer);
    out
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let photos = root.join("photos");
    let bad = root.join("bad");
    fs::create_dir_all(&photos).unwrap();
    fs::create_dir_all(&bad).unwrap();

    let thumb = encode(&picture(32, 24), ImageFormat::Jpeg);
    let base = encode(&picture(320, 240), ImageFormat::Jpeg);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(exif(None, &thumb));
    let mut xmp = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp.extend_from_slice(XMP.as_bytes());
    let mut iptc = b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\x10".to_vec();
    iptc.extend_from_slice(b"\x1c\x02\x50\0\x0cDr Example C");
    let second = encode(&picture(160, 120), ImageFormat::Jpeg);
    let ward = jpeg_with(
        &base,
        &[
            jpeg::segment(0xE1, &app1),
            jpeg::segment(0xE1, &xmp),
            jpeg::segment(0xED, &iptc),
            jpeg::segment(0xFE, b"Patient Jane Example, bed 4"),
        ],
        &second,
    );
    fs::write(photos.join("ward_round_gps_xmp_trailer.jpg"), &ward).unwrap();

    // Stored sideways with orientation 6, as phones do: upright it is 240 wide, 320 tall.
    let sideways = picture(240, 320).rotate270();
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(exif(Some(6), &thumb));
    let rotated = jpeg_with(
        &encode(&sideways, ImageFormat::Jpeg),
        &[jpeg::segment(0xE1, &app1)],
        b"",
    );
    fs::write(photos.join("bedside_orientation_6.jpg"), &rotated).unwrap();

    let png = encode(&picture(200, 150), ImageFormat::Png);
    let mut png_out = png[..33].to_vec(); // signature + IHDR
    png_out.extend(png::chunk(b"tEXt", b"Author\0Dr Example Clinician"));
    let mut itxt = b"XML:com.adobe.xmp\0\0\0\0\0".to_vec();
    itxt.extend_from_slice(XMP.as_bytes());
    png_out.extend(png::chunk(b"iTXt", &itxt));
    png_out.extend(png::chunk(b"eXIf", &exif(None, &thumb)));
    png_out.extend(png::chunk(b"tIME", &[0x07, 0xEA, 3, 14, 9, 26, 53]));
    png_out.extend_from_slice(&png[33..]);
    png_out.extend_from_slice(b"cropped-away screenshot pixels would sit here");
    fs::write(photos.join("ehr_screenshot_text_chunks.png"), &png_out).unwrap();

    let webp = encode(&picture(120, 90), ImageFormat::WebP);
    let vp8l = &webp[12..];
    let mut body = Vec::new();
    let (w, h) = (120u32 - 1, 90u32 - 1);
    let mut vp8x = vec![0x08 | 0x04, 0, 0, 0];
    vp8x.extend_from_slice(&w.to_le_bytes()[..3]);
    vp8x.extend_from_slice(&h.to_le_bytes()[..3]);
    webp::push_chunk(&mut body, b"VP8X", &vp8x);
    body.extend_from_slice(vp8l);
    webp::push_chunk(&mut body, b"EXIF", &exif(None, &thumb));
    webp::push_chunk(&mut body, b"XMP ", XMP.as_bytes());
    let mut riff = b"RIFF".to_vec();
    riff.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
    riff.extend_from_slice(b"WEBP");
    riff.extend(body);
    fs::write(photos.join("wound_exif_xmp.webp"), &riff).unwrap();

    let gif = encode(&picture(64, 48), ImageFormat::Gif);
    let mut gif_out = gif.clone();
    let last = gif_out.len() - 1; // before the trailer byte
    let comment = b"\x21\xFE\x1BPatient Jane Example, bed 4\0";
    gif_out.splice(last..last, comment.iter().copied());
    fs::write(photos.join("chart_comment.gif"), &gif_out).unwrap();

    fs::write(
        photos.join("README.txt"),
        "Not an image: phiscrub skips and counts it.\n",
    )
    .unwrap();

    // Hostile and broken files.
    fs::write(bad.join("empty.jpg"), b"").unwrap();
    fs::write(bad.join("truncated.jpg"), &ward[..ward.len() / 3]).unwrap();
    fs::write(bad.join("text_named.png"), b"this is not a picture\n").unwrap();
    let mut huge = png[..33].to_vec();
    huge[16..24].copy_from_slice(&[0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0]); // 100000 x 100000
    let crc = crc32fast::hash(&huge[12..29]);
    huge[29..33].copy_from_slice(&crc.to_be_bytes());
    huge.extend_from_slice(&png[33..]);
    fs::write(bad.join("bomb_100000x100000.png"), &huge).unwrap();
    // A TIFF whose IFD0 points to itself as the next IFD.
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    let entries = vec![long(0x0100, 8), long(0x0101, 8), short(0x0102, 8)];
    tiff.extend(ifd(&entries, 8, 8));
    fs::write(bad.join("ifd_loop.tiff"), &tiff).unwrap();
    // A JPEG whose EXIF IFD0 links to itself.
    let mut loop_exif = b"Exif\0\0II*\0\x08\0\0\0".to_vec();
    loop_exif.extend(ifd(&[short(0x0112, 1)], 8, 8));
    fs::write(
        bad.join("exif_ifd_loop.jpg"),
        jpeg_with(&base, &[jpeg::segment(0xE1, &loop_exif)], b""),
    )
    .unwrap();
    println!("fixtures written to {}", root.display());
}
