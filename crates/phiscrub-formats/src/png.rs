//! PNG chunk walker. The allowlist is what draws the picture: IHDR, PLTE, tRNS, IDAT, IEND and
//! the APNG animation chunks (acTL, fcTL, fdAT). Text, eXIf, tIME, pHYs, colour chunks, private
//! chunks, C2PA and anything after IEND are dropped. CRCs are checked so a damaged file is
//! reported instead of copied.
//!
//! Kept chunks are shown to hold only picture. Each frame's zlib stream is inflated: it must
//! end exactly where its data does and decompress to exactly the rows the header implies,
//! with valid filter types. PLTE and tRNS must fit the colour type; in a palette image the
//! entries no pixel uses are blacked out (made opaque in tRNS) and cut from the end. The
//! output is rebuilt in one canonical form (signature, IHDR, acTL, PLTE, tRNS, then each
//! frame's fcTL and its stream in one IDAT or fdAT, sequence numbers from 0, IEND), and
//! [`verify`] accepts only a file already in that form. A stream holding more than its
//! rows, or failing its checksum, cannot be copied and sends the file to be re-encoded.

use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

use super::{be32, Category, Found, Scan};
use crate::{Error, Format, Limits};

/// The 8-byte PNG signature.
pub const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

const KEEP: [&[u8; 4]; 8] = [
    b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"acTL", b"fcTL", b"fdAT",
];

#[derive(Debug, Clone, Copy)]
struct Chunk {
    kind: [u8; 4],
    start: usize,
    end: usize,
}

impl Chunk {
    fn data(self, d: &[u8]) -> &[u8] {
        &d[self.start + 8..self.end - 4]
    }
}

fn err(detail: impl Into<String>) -> Error {
    Error::malformed(Format::Png, detail)
}

/// Walks chunks up to IEND and returns them with the offset just after IEND.
fn parse(d: &[u8]) -> Result<(Vec<Chunk>, usize), Error> {
    if !d.starts_with(SIGNATURE) {
        return Err(err("missing PNG signature"));
    }
    let mut chunks = Vec::new();
    let mut pos = SIGNATURE.len();
    loop {
        let len = be32(d, pos).ok_or_else(|| err("truncated PNG (no IEND chunk)"))? as usize;
        if len > 0x7FFF_FFFF {
            return Err(err(format!(
                "chunk length {len} at offset {pos} is invalid"
            )));
        }
        let end = pos
            .checked_add(12 + len)
            .filter(|&e| e <= d.len())
            .ok_or_else(|| {
                err(format!(
                    "truncated PNG (chunk at offset {pos} runs past the end)"
                ))
            })?;
        let kind: [u8; 4] = d[pos + 4..pos + 8].try_into().expect("4 bytes");
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(err(format!("invalid chunk type at offset {pos}")));
        }
        let stored = be32(d, end - 4).expect("in bounds");
        if crc32fast::hash(&d[pos + 4..end - 4]) != stored {
            return Err(err(format!(
                "CRC mismatch in {} chunk at offset {pos}",
                String::from_utf8_lossy(&kind)
            )));
        }
        let c = Chunk {
            kind,
            start: pos,
            end,
        };
        chunks.push(c);
        pos = end;
        if &kind == b"IEND" {
            return Ok((chunks, pos));
        }
    }
}

fn classify(c: Chunk, d: &[u8]) -> Option<(Category, String)> {
    use Category::*;
    if KEEP.contains(&&c.kind) {
        return None;
    }
    let name = String::from_utf8_lossy(&c.kind).into_owned();
    let keyword = c.data(d).split(|&b| b == 0).next().unwrap_or_default();
    let cat = match &c.kind {
        b"tEXt" | b"zTXt" | b"iTXt" if keyword == b"XML:com.adobe.xmp" => Xmp,
        b"tEXt" | b"zTXt" | b"iTXt" if keyword.starts_with(b"Raw profile type exif") => Exif,
        b"tEXt" | b"zTXt" | b"iTXt" if keyword.starts_with(b"Raw profile type iptc") => Iptc,
        b"tEXt" | b"zTXt" | b"iTXt" if keyword.starts_with(b"Raw profile type xmp") => Xmp,
        b"tEXt" | b"zTXt" | b"iTXt" => Comment,
        b"eXIf" | b"exIf" => Exif,
        b"iCCP" => Icc,
        b"tIME" => Timestamp,
        b"caBX" => Provenance,
        b"pHYs" | b"sRGB" | b"gAMA" | b"cHRM" | b"cICP" | b"mDCV" | b"cLLI" | b"sBIT" | b"bKGD"
        | b"hIST" | b"sPLT" => Header,
        _ => Other,
    };
    Some((cat, name))
}

/// What IHDR says about the pixels.
#[derive(Debug, Clone, Copy)]
struct Header {
    width: u32,
    height: u32,
    depth: u8,
    colour: u8,
    interlaced: bool,
}

impl Header {
    fn read(chunks: &[Chunk], d: &[u8]) -> Result<Header, Error> {
        let first = chunks.first().ok_or_else(|| err("no chunks"))?;
        if &first.kind != b"IHDR" || first.data(d).len() != 13 {
            return Err(err("first chunk is not a valid IHDR"));
        }
        let p = first.data(d);
        let h = Header {
            width: be32(p, 0).expect("13 bytes"),
            height: be32(p, 4).expect("13 bytes"),
            depth: p[8],
            colour: p[9],
            interlaced: p[12] == 1,
        };
        let depth_ok = match h.colour {
            0 => matches!(h.depth, 1 | 2 | 4 | 8 | 16),
            3 => matches!(h.depth, 1 | 2 | 4 | 8),
            2 | 4 | 6 => matches!(h.depth, 8 | 16),
            _ => false,
        };
        if !depth_ok || p[10] != 0 || p[11] != 0 || p[12] > 1 {
            return Err(err("IHDR declares an invalid colour type, depth or method"));
        }
        Ok(h)
    }

    fn channels(&self) -> u64 {
        match self.colour {
            2 => 3,
            4 => 2,
            6 => 4,
            _ => 1,
        }
    }

    fn row_bytes(&self, w: u32) -> u64 {
        (u64::from(w) * self.channels() * u64::from(self.depth)).div_ceil(8)
    }

    /// The rows of a `w` x `h` frame, pass by pass: (row count, bytes per row, pixels per
    /// row), empty passes left out.
    fn rows(&self, w: u32, h: u32) -> Vec<(u32, u64, u32)> {
        const ADAM7: [(u32, u32, u32, u32); 7] = [
            (0, 0, 8, 8),
            (4, 0, 8, 8),
            (0, 4, 4, 8),
            (2, 0, 4, 4),
            (0, 2, 2, 4),
            (1, 0, 2, 2),
            (0, 1, 1, 2),
        ];
        if !self.interlaced {
            return vec![(h, self.row_bytes(w), w)];
        }
        ADAM7
            .iter()
            .map(|&(x0, y0, dx, dy)| {
                let pw = if w > x0 { (w - x0).div_ceil(dx) } else { 0 };
                let ph = if h > y0 { (h - y0).div_ceil(dy) } else { 0 };
                (ph, self.row_bytes(pw), pw)
            })
            .filter(|&(ph, _, pw)| ph > 0 && pw > 0)
            .collect()
    }
}

/// Follows the decompressed rows of one frame: checks each filter type and, in a palette
/// image, undoes the filters to learn which palette entries pixels use.
struct Rows {
    header: Header,
    passes: Vec<(u32, u64, u32)>,
    pass: usize,
    row: u32,
    cur: Vec<u8>,
    prev: Vec<u8>,
    /// Bytes beyond the last row.
    extra: u64,
    used: [bool; 256],
}

impl Rows {
    fn new(header: Header, w: u32, h: u32) -> Rows {
        Rows {
            header,
            passes: header.rows(w, h),
            pass: 0,
            row: 0,
            cur: Vec::new(),
            prev: Vec::new(),
            extra: 0,
            used: [false; 256],
        }
    }

    fn done(&self) -> bool {
        self.pass >= self.passes.len()
    }

    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Error> {
        while !bytes.is_empty() {
            let Some(&(rows, row_bytes, pixels)) = self.passes.get(self.pass) else {
                self.extra += bytes.len() as u64;
                return Ok(());
            };
            let want = 1 + row_bytes as usize;
            let take = (want - self.cur.len()).min(bytes.len());
            self.cur.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.cur.len() < want {
                return Ok(());
            }
            let filter = self.cur[0];
            if filter > 4 {
                return Err(err(format!("invalid row filter type {filter}")));
            }
            if self.header.colour == 3 {
                if self.prev.len() != want {
                    self.prev = vec![0; want];
                }
                unfilter(filter, &mut self.cur[1..], &self.prev[1..]);
                mark_indices(&self.cur[1..], self.header.depth, pixels, &mut self.used);
                std::mem::swap(&mut self.cur, &mut self.prev);
            }
            self.cur.clear();
            self.row += 1;
            if self.row == rows {
                self.row = 0;
                self.pass += 1;
                self.prev.clear();
            }
        }
        Ok(())
    }
}

/// Undoes a row filter for one-byte pixels (palette images, any depth).
fn unfilter(filter: u8, row: &mut [u8], prev: &[u8]) {
    match filter {
        1 => {
            for i in 1..row.len() {
                row[i] = row[i].wrapping_add(row[i - 1]);
            }
        }
        2 => {
            for (r, p) in row.iter_mut().zip(prev) {
                *r = r.wrapping_add(*p);
            }
        }
        3 => {
            for i in 0..row.len() {
                let left = if i > 0 { u16::from(row[i - 1]) } else { 0 };
                row[i] = row[i].wrapping_add(((left + u16::from(prev[i])) / 2) as u8);
            }
        }
        4 => {
            for i in 0..row.len() {
                let (a, b, c) = if i > 0 {
                    (row[i - 1], prev[i], prev[i - 1])
                } else {
                    (0, prev[i], 0)
                };
                row[i] = row[i].wrapping_add(paeth(a, b, c));
            }
        }
        _ => {}
    }
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let (ia, ib, ic) = (i16::from(a), i16::from(b), i16::from(c));
    let p = ia + ib - ic;
    let (pa, pb, pc) = ((p - ia).abs(), (p - ib).abs(), (p - ic).abs());
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

fn mark_indices(row: &[u8], depth: u8, pixels: u32, used: &mut [bool; 256]) {
    if depth == 8 {
        for &i in &row[..pixels as usize] {
            used[usize::from(i)] = true;
        }
        return;
    }
    let per_byte = 8 / u32::from(depth);
    let mask = (1u8 << depth) - 1;
    for x in 0..pixels {
        let byte = row[(x / per_byte) as usize];
        let shift = 8 - u32::from(depth) * (x % per_byte + 1);
        used[usize::from((byte >> shift) & mask)] = true;
    }
}

/// One frame's compressed data, checked: where its zlib stream ends in each of its chunks.
struct Stream {
    /// (chunk payload range in the file, bytes of it that belong to the stream).
    parts: Vec<(usize, usize)>,
    /// Bytes in the chunks after the stream's end.
    trailing: usize,
}

/// Why a PNG could not be shown to hold only picture.
enum Unshown {
    Malformed(Error),
    Unprovable(String),
}

/// Inflates one frame's data (`parts`: payload start and length in `d`) and checks it
/// against the `w` x `h` rows it must hold, marking palette use in `used`.
fn check_stream(
    d: &[u8],
    parts: &[(usize, usize)],
    header: Header,
    w: u32,
    h: u32,
    used: &mut [bool; 256],
) -> Result<Stream, Unshown> {
    let malformed = |s: &str| Unshown::Malformed(err(s));
    let mut inflater = DecompressorOxide::new();
    let mut rows = Rows::new(header, w, h);
    let mut window = vec![0u8; 1 << 16];
    let mut out_pos = 0usize;
    let mut kept = Vec::with_capacity(parts.len());
    let mut trailing = 0usize;
    let mut done = false;
    for (i, &(start, len)) in parts.iter().enumerate() {
        if done {
            trailing += len;
            kept.push((start, 0));
            continue;
        }
        let mut input = &d[start..start + len];
        let more = i + 1 < parts.len();
        let mut consumed_here = 0usize;
        loop {
            let mut flags = inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER
                | inflate_flags::TINFL_FLAG_COMPUTE_ADLER32;
            if more {
                flags |= inflate_flags::TINFL_FLAG_HAS_MORE_INPUT;
            }
            let (status, read, written) =
                decompress(&mut inflater, input, &mut window, out_pos, flags);
            rows.feed(&window[out_pos..out_pos + written])
                .map_err(Unshown::Malformed)?;
            out_pos = (out_pos + written) & (window.len() - 1);
            input = &input[read..];
            consumed_here += read;
            match status {
                TINFLStatus::Done => {
                    done = true;
                    trailing += input.len();
                    break;
                }
                TINFLStatus::HasMoreOutput => continue,
                TINFLStatus::NeedsMoreInput if more && input.is_empty() => break,
                TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => {
                    return Err(malformed("image data ends before the picture does"))
                }
                TINFLStatus::Adler32Mismatch => {
                    return Err(Unshown::Unprovable("image data fails its checksum".into()))
                }
                _ => return Err(malformed("image data is not a valid zlib stream")),
            }
        }
        kept.push((start, consumed_here));
    }
    if !done {
        return Err(malformed("image data ends before the picture does"));
    }
    if !rows.done() {
        return Err(malformed("image data holds fewer rows than the picture"));
    }
    if rows.extra > 0 {
        return Err(Unshown::Unprovable(format!(
            "image data holds {} bytes beyond the picture",
            rows.extra
        )));
    }
    for (u, r) in used.iter_mut().zip(rows.used) {
        *u |= r;
    }
    Ok(Stream {
        parts: kept,
        trailing,
    })
}

/// An animation frame's control chunk and its data.
struct Frame {
    fctl: Option<Chunk>,
    stream: Stream,
}

/// What a PNG's picture is made of.
struct Picture {
    ihdr: Chunk,
    actl: Option<Chunk>,
    palette: Option<Vec<u8>>,
    trns: Option<Vec<u8>>,
    frames: Vec<Frame>,
    /// Pieces of kept chunks that are not picture, for the report.
    hidden: Vec<Found>,
}

fn analyze(chunks: &[Chunk], d: &[u8]) -> Result<Picture, Unshown> {
    let malformed = |s: &str| Unshown::Malformed(err(s));
    let header = Header::read(chunks, d).map_err(Unshown::Malformed)?;
    let mut hidden = Vec::new();
    let (mut plte, mut trns, mut actl) = (None, None, None);
    let mut fctls: Vec<(usize, Chunk)> = Vec::new();
    let mut idat: Vec<(usize, usize)> = Vec::new();
    let mut idat_at = None;
    // fdAT payloads (after the sequence number), grouped under the fcTL before them.
    let mut fdats: Vec<Vec<(usize, usize)>> = Vec::new();
    for (i, &c) in chunks.iter().enumerate() {
        let p = c.data(d);
        match &c.kind {
            b"PLTE" if plte.is_none() && idat.is_empty() => plte = Some(c),
            b"tRNS" if trns.is_none() && idat.is_empty() => trns = Some(c),
            b"acTL" if actl.is_none() && idat.is_empty() => actl = Some(c),
            b"fcTL" => {
                if p.len() != 26 {
                    return Err(malformed("fcTL chunk is not 26 bytes"));
                }
                fctls.push((i, c));
                fdats.push(Vec::new());
            }
            b"IDAT" => {
                if idat_at.is_some_and(|j: usize| j + idat.len() != i) {
                    return Err(malformed("IDAT chunks are not consecutive"));
                }
                idat_at.get_or_insert(i);
                idat.push((c.start + 8, p.len()));
            }
            b"fdAT" => {
                let group = fdats
                    .last_mut()
                    .filter(|_| idat_at.is_some())
                    .ok_or_else(|| malformed("fdAT before IDAT or without fcTL"))?;
                if p.len() < 4 {
                    return Err(malformed("fdAT chunk is too short"));
                }
                group.push((c.start + 12, p.len() - 4));
            }
            b"PLTE" | b"tRNS" | b"acTL" => {
                hidden.push(Found::new(
                    Category::Other,
                    format!(
                        "{} chunk a decoder ignores",
                        String::from_utf8_lossy(&c.kind)
                    ),
                    c.end - c.start,
                ));
            }
            _ => {}
        }
    }
    let idat_at = idat_at.ok_or_else(|| malformed("no image data (IDAT)"))?;
    let idat_is_frame = fctls.first().is_some_and(|&(i, _)| i < idat_at);
    if actl.is_some() == fctls.is_empty() {
        return Err(malformed("acTL and fcTL chunks do not go together"));
    }
    if let Some(a) = actl {
        let declared = be32(a.data(d), 0).unwrap_or(0) as usize;
        if a.data(d).len() != 8 || declared != fctls.len() {
            return Err(malformed("acTL frame count does not match the fcTL chunks"));
        }
    }
    let mut used = [false; 256];
    let mut frames = Vec::new();
    let main = check_stream(d, &idat, header, header.width, header.height, &mut used)?;
    frames.push(Frame {
        fctl: fctls.first().filter(|_| idat_is_frame).map(|&(_, c)| c),
        stream: main,
    });
    let rest = if idat_is_frame { 1 } else { 0 };
    for (k, &(_, fctl)) in fctls.iter().enumerate() {
        let p = fctl.data(d);
        let (fw, fh, x, y) = (
            be32(p, 4).expect("26 bytes"),
            be32(p, 8).expect("26 bytes"),
            be32(p, 12).expect("26 bytes"),
            be32(p, 16).expect("26 bytes"),
        );
        let inside = fw > 0
            && fh > 0
            && u64::from(x) + u64::from(fw) <= u64::from(header.width)
            && u64::from(y) + u64::from(fh) <= u64::from(header.height);
        if !inside || p[24] > 2 || p[25] > 1 {
            return Err(malformed(
                "an animation frame lies outside the canvas or is invalid",
            ));
        }
        if k == 0 && idat_is_frame {
            if (fw, fh, x, y) != (header.width, header.height, 0, 0) {
                return Err(malformed("the first frame does not fill the canvas"));
            }
            if !fdats[0].is_empty() {
                return Err(malformed("the first frame has both IDAT and fdAT data"));
            }
            continue;
        }
        if k < rest {
            continue;
        }
        if fdats[k].is_empty() {
            return Err(malformed("an animation frame has no data"));
        }
        let stream = check_stream(d, &fdats[k], header, fw, fh, &mut used)?;
        frames.push(Frame {
            fctl: Some(fctl),
            stream,
        });
    }
    let trailing: usize = frames.iter().map(|f| f.stream.trailing).sum();
    if trailing > 0 {
        hidden.push(Found::new(
            Category::Other,
            "data after the compressed image stream",
            trailing,
        ));
    }
    let entries = plte.map_or(0, |c| c.data(d).len() / 3);
    let palette = match (header.colour, plte) {
        (3, None) => return Err(malformed("palette image without PLTE")),
        (3, Some(c)) => {
            let p = c.data(d);
            // Entries past what the bit depth can index are never shown (libpng drops them).
            if p.len() % 3 != 0 || entries == 0 || entries > 256 {
                return Err(malformed("PLTE does not hold whole colours"));
            }
            if used.iter().enumerate().any(|(i, &u)| u && i >= entries) {
                return Err(malformed("a pixel uses a colour beyond the palette"));
            }
            let keep = used[..entries]
                .iter()
                .rposition(|&u| u)
                .map_or(1, |i| i + 1);
            let mut out = p[..keep * 3].to_vec();
            for (i, rgb) in out.chunks_exact_mut(3).enumerate() {
                if !used[i] {
                    rgb.fill(0);
                }
            }
            if out.as_slice() != p {
                hidden.push(Found::new(
                    Category::Other,
                    "palette entries no pixel uses",
                    p.len() - out.len() + 3 * (0..keep).filter(|&i| !used[i]).count(),
                ));
            }
            Some(out)
        }
        (_, Some(c)) => {
            // A suggested palette for a truecolour image, or an invalid one: not picture.
            hidden.push(Found::new(
                Category::Other,
                "PLTE chunk a decoder ignores",
                c.end - c.start,
            ));
            None
        }
        (_, None) => None,
    };
    let trns = trns.and_then(|c| {
        let t = c.data(d);
        let fitted = match header.colour {
            0 if t.len() == 2 => Some(t.to_vec()),
            2 if t.len() == 6 => Some(t.to_vec()),
            // Longer than the palette, decoders ignore the whole chunk.
            3 if t.len() <= entries => {
                let keep = palette.as_ref().map_or(0, |p| p.len() / 3);
                let mut a: Vec<u8> = t.iter().take(keep).copied().collect();
                for (i, alpha) in a.iter_mut().enumerate() {
                    if !used[i] {
                        *alpha = 255;
                    }
                }
                // Entries past the end are opaque anyway.
                while a.last() == Some(&255) {
                    a.pop();
                }
                (!a.is_empty()).then_some(a)
            }
            _ => None,
        };
        if fitted.as_deref() != Some(t) {
            hidden.push(Found::new(
                Category::Other,
                "tRNS entries beyond the picture",
                t.len() - fitted.as_ref().map_or(0, Vec::len),
            ));
        }
        fitted
    });
    Ok(Picture {
        ihdr: chunks[0],
        actl,
        palette,
        trns,
        frames,
        hidden,
    })
}

/// Writes `picture` in canonical form (see the module docs).
fn emit(d: &[u8], pic: &Picture) -> Vec<u8> {
    let mut out = Vec::with_capacity(d.len());
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&d[pic.ihdr.start..pic.ihdr.end]);
    if let Some(a) = pic.actl {
        out.extend_from_slice(&d[a.start..a.end]);
    }
    if let Some(p) = &pic.palette {
        out.extend(chunk(b"PLTE", p));
    }
    if let Some(t) = &pic.trns {
        out.extend(chunk(b"tRNS", t));
    }
    let mut seq = 0u32;
    for (i, f) in pic.frames.iter().enumerate() {
        if let Some(fctl) = f.fctl {
            let mut p = fctl.data(d).to_vec();
            p[..4].copy_from_slice(&seq.to_be_bytes());
            seq += 1;
            out.extend(chunk(b"fcTL", &p));
        }
        let mut data = Vec::new();
        let is_idat = i == 0;
        if !is_idat {
            data.extend_from_slice(&seq.to_be_bytes());
            seq += 1;
        }
        for &(start, len) in &f.stream.parts {
            data.extend_from_slice(&d[start..start + len]);
        }
        out.extend(chunk(if is_idat { b"IDAT" } else { b"fdAT" }, &data));
    }
    out.extend(chunk(b"IEND", b""));
    out
}

/// Reads the structure of a PNG: dimensions, every non-allowlisted chunk, EXIF and ICC, and
/// whatever in the kept chunks is not picture.
pub fn scan(d: &[u8], limits: &Limits) -> Result<Scan, Error> {
    let (chunks, end) = parse(d)?;
    let header = Header::read(&chunks, d)?;
    limits.check_dimensions(header.width, header.height)?;
    let mut scan = Scan {
        width: header.width,
        height: header.height,
        ..Scan::default()
    };
    scan.animated = chunks.iter().any(|c| &c.kind == b"acTL");
    let fctls: Vec<&[u8]> = chunks
        .iter()
        .filter(|c| &c.kind == b"fcTL")
        .map(|c| c.data(d))
        .collect();
    scan.frames = fctls.len().max(1) as u32;
    scan.frame_pixels = u64::from(header.width) * u64::from(header.height)
        + fctls
            .iter()
            .filter_map(|p| Some(u64::from(be32(p, 4)?) * u64::from(be32(p, 8)?)))
            .sum::<u64>();
    // Checked before any image data is inflated.
    limits.check_frames(scan.frames, scan.frame_pixels)?;
    for &c in &chunks {
        if let Some((cat, name)) = classify(c, d) {
            if (c.kind == *b"eXIf" || c.kind == *b"exIf") && scan.exif.is_none() {
                scan.exif = Some(c.data(d).to_vec());
            }
            if c.kind == *b"iCCP" && scan.icc.is_none() {
                scan.icc = inflate_iccp(c.data(d));
            }
            scan.found.push(Found::new(cat, name, c.end - c.start));
        }
    }
    match analyze(&chunks, d) {
        Ok(p) => {
            scan.stripped = Some(emit(d, &p));
            scan.found.extend(p.hidden);
        }
        Err(Unshown::Malformed(e)) => return Err(e),
        Err(Unshown::Unprovable(why)) => scan.reencode_reason = Some(why),
    }
    if end < d.len() {
        scan.found.push(Found::new(
            Category::Trailer,
            "data after IEND",
            d.len() - end,
        ));
    }
    Ok(scan)
}

/// iCCP holds a keyword, a compression byte and a zlib stream. Profiles are capped at 4 MiB.
fn inflate_iccp(data: &[u8]) -> Option<Vec<u8>> {
    let nul = data.iter().position(|&b| b == 0)?;
    let z = data.get(nul + 2..)?;
    fdeflate::decompress_to_vec_bounded(z, 4 << 20).ok()
}

/// A chunk: big-endian length, type, data and the CRC over type and data.
pub fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut v = (data.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(data);
    v.extend_from_slice(&crc32fast::hash(&v[4..]).to_be_bytes());
    v
}

/// Rebuilds a PNG from its picture alone (see the module docs); the compressed image data
/// is copied byte for byte up to the end of each stream.
pub fn strip(d: &[u8]) -> Result<Vec<u8>, Error> {
    let (chunks, _) = parse(d)?;
    let picture = analyze(&chunks, d).map_err(|u| match u {
        Unshown::Malformed(e) => e,
        Unshown::Unprovable(why) => {
            Error::unsupported(Format::Png, format!("no lossless path: {why}"))
        }
    })?;
    Ok(emit(d, &picture))
}

/// Fails unless the PNG is exactly as [`strip`] writes it: allowlisted chunks only, in
/// canonical form, each stream holding exactly its picture, nothing after IEND.
pub fn verify(d: &[u8]) -> Result<(u32, u32), Error> {
    let (chunks, end) = parse(d).map_err(|e| Error::Verify(e.to_string()))?;
    if end != d.len() {
        return Err(Error::Verify(format!("{} bytes after IEND", d.len() - end)));
    }
    if let Some(c) = chunks.iter().find(|c| classify(**c, d).is_some()) {
        return Err(Error::Verify(format!(
            "PNG chunk {} is not allowlisted",
            String::from_utf8_lossy(&c.kind)
        )));
    }
    let header = Header::read(&chunks, d).map_err(|e| Error::Verify(e.to_string()))?;
    let picture = analyze(&chunks, d).map_err(|u| match u {
        Unshown::Malformed(e) => Error::Verify(e.to_string()),
        Unshown::Unprovable(why) => Error::Verify(why),
    })?;
    if emit(d, &picture) != d {
        return Err(Error::Verify(
            "PNG holds bytes outside its picture (unused palette entries, data after a stream, \
             or chunks out of canonical order)"
                .into(),
        ));
    }
    Ok((header.width, header.height))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real 3 x 2 RGB PNG's image data (one IDAT) from image-rs's encoder.
    fn idat() -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8 * 80, y as u8 * 90, 7]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        let (chunks, _) = parse(&out).unwrap();
        chunks
            .iter()
            .filter(|c| &c.kind == b"IDAT")
            .flat_map(|c| c.data(&out).to_vec())
            .collect()
    }

    fn png(middle: &[Vec<u8>], data: &[u8], trailer: &[u8]) -> Vec<u8> {
        let mut v = SIGNATURE.to_vec();
        v.extend(chunk(b"IHDR", &[0, 0, 0, 3, 0, 0, 0, 2, 8, 2, 0, 0, 0]));
        for m in middle {
            v.extend_from_slice(m);
        }
        v.extend(chunk(b"IDAT", data));
        v.extend(chunk(b"IEND", b""));
        v.extend_from_slice(trailer);
        v
    }

    #[test]
    fn text_exif_time_and_trailer_are_dropped() {
        let input = png(
            &[
                chunk(b"tEXt", b"Author\0Dr Who"),
                chunk(b"eXIf", b"MM\0*\0\0\0\x08\0\0\0\0\0\0"),
                chunk(b"tIME", &[7, 234, 1, 2, 3, 4, 5]),
                chunk(b"prVt", b"x"),
            ],
            &idat(),
            b"hidden crop",
        );
        let s = scan(&input, &Limits::default()).unwrap();
        let cats: Vec<_> = s.found.iter().map(|f| f.category).collect();
        use Category::*;
        assert_eq!(cats, [Comment, Exif, Timestamp, Other, Trailer]);
        assert!(s.exif.is_some());
        let out = strip(&input).unwrap();
        assert_eq!(out, png(&[], &idat(), b""));
        assert_eq!(verify(&out).unwrap(), (3, 2));
        assert!(verify(&input).is_err());
    }

    #[test]
    fn data_after_the_zlib_stream_is_dropped() {
        let mut data = idat();
        data.extend_from_slice(b"Jane Example");
        let input = png(&[], &data, b"");
        assert!(verify(&input).is_err());
        let s = scan(&input, &Limits::default()).unwrap();
        assert!(s.found.iter().any(|f| f.bytes == 12));
        assert_eq!(strip(&input).unwrap(), png(&[], &idat(), b""));
    }

    #[test]
    fn a_stream_holding_more_than_its_rows_is_re_encoded() {
        // Seven rows of data for a two-row image: decoders stop at two.
        let raw: Vec<u8> = (0..7)
            .flat_map(|r| [vec![0u8], vec![r; 9]].concat())
            .collect();
        let z = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6);
        let input = png(&[], &z, b"");
        let s = scan(&input, &Limits::default()).unwrap();
        assert!(s.reencode_reason.unwrap().contains("beyond the picture"));
        assert!(strip(&input).is_err());
    }

    #[test]
    fn crc_mismatch_is_reported() {
        let mut input = png(&[], &idat(), b"");
        let n = input.len();
        input[n - 20] ^= 1;
        assert!(scan(&input, &Limits::default()).is_err());
    }

    #[test]
    fn truncated_png_is_an_error() {
        let input = png(&[], &idat(), b"");
        for cut in [8, 12, 30, input.len() - 1] {
            assert!(
                scan(&input[..cut], &Limits::default()).is_err(),
                "cut {cut}"
            );
        }
    }
}
