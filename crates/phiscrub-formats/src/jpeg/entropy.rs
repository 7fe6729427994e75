//! Huffman entropy decoding of JPEG scans without the pixels. Every block of every scan is
//! walked (baseline, extended and progressive coding, with restart intervals), so the
//! walker knows exactly which bytes the picture is made of. What a decoder never reads
//! (bytes after a scan's last block or after a restart interval's last block, padding bits
//! that are not ones) is where a hostile file can carry text past every allowlist; the
//! container walker keeps only the bytes this module accounts for.
//!
//! The cost is linear in the coded bytes plus one step per block per scan: an end-of-band
//! run is skipped block by block, and the correction bits a refinement scan reads in such
//! a run are counted from a bit mask of the block's non-zero coefficients, not looked up one
//! coefficient at a time.

use std::ops::Range;

/// Why a scan could not be walked to its last block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fault {
    /// The coded data ran out (the scan ended, or a marker stood in the data) after `done`
    /// of `total` MCUs.
    Short { done: u64, total: u64 },
    /// The coded data holds what no conforming encoder writes, after `done` of `total` MCUs.
    Corrupt {
        what: &'static str,
        done: u64,
        total: u64,
    },
}

impl Fault {
    /// The share of the scan that was walked before the fault.
    pub(super) fn progress(&self) -> (u64, u64) {
        match *self {
            Fault::Short { done, total } | Fault::Corrupt { done, total, .. } => (done, total),
        }
    }
}

/// A Huffman table as a decoder uses it.
#[derive(Debug, Clone)]
pub(super) struct Huffman {
    /// For every `FAST_BITS` prefix: (symbol, code length), length 0 when the code is longer.
    fast: Box<[(u8, u8); FAST]>,
    /// For every `FAST_BITS` prefix holding an AC code for a non-zero coefficient and all of
    /// its extra bits: (zero run + 1, bits taken); (0, 0) otherwise. Most coefficients of a
    /// photo are read with this one lookup.
    ac_fast: Box<[(u8, u8); FAST]>,
    maxcode: [i32; 17],
    valptr: [i32; 17],
    mincode: [i32; 17],
    values: Vec<u8>,
}

const FAST_BITS: u32 = 10;
const FAST: usize = 1 << FAST_BITS;

impl Huffman {
    /// Builds a table from a DHT definition's 16 code counts and its symbols, rejecting
    /// tables that do not fit in 16 bits (libjpeg's "bad Huffman table").
    pub(super) fn new(counts: &[u8], values: &[u8]) -> Option<Huffman> {
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if counts.len() != 16 || total > 256 || values.len() != total {
            return None;
        }
        let mut h = Huffman {
            fast: Box::new([(0, 0); FAST]),
            ac_fast: Box::new([(0, 0); FAST]),
            maxcode: [-1; 17],
            valptr: [0; 17],
            mincode: [0; 17],
            values: values.to_vec(),
        };
        let (mut code, mut k) = (0i32, 0i32);
        for len in 1..=16usize {
            let n = i32::from(counts[len - 1]);
            // No code may be all ones, so the codes of this length must fit below it.
            if code + n >= 1 << len && n > 0 {
                return None;
            }
            h.valptr[len] = k;
            h.mincode[len] = code;
            for i in 0..n {
                let c = code + i;
                if len as u32 <= FAST_BITS {
                    let shift = FAST_BITS - len as u32;
                    let first = (c as usize) << shift;
                    for e in &mut h.fast[first..first + (1 << shift)] {
                        *e = (values[(k + i) as usize], len as u8);
                    }
                }
            }
            code += n;
            k += n;
            if n > 0 {
                h.maxcode[len] = code - 1;
            }
            code <<= 1;
        }
        for (prefix, &(sym, len)) in h.fast.iter().enumerate() {
            let (r, extra) = (u32::from(sym >> 4), u32::from(sym & 15));
            let total = u32::from(len) + extra;
            if len > 0 && extra > 0 && total <= FAST_BITS {
                h.ac_fast[prefix] = ((r + 1) as u8, total as u8);
            }
        }
        Some(h)
    }
}

/// Reads the bits of one restart interval's coded data, unstuffing 0xFF 0x00. At a marker or
/// the end of the scan it stops and supplies zero bits, counting them, as decoders do.
struct Bits<'a> {
    d: &'a [u8],
    /// The next byte to load.
    pos: usize,
    end: usize,
    /// Valid bits, left-aligned.
    acc: u64,
    /// How many bits of `acc` are valid, padding included.
    n: u32,
    /// How many of them, at the bottom, are zero padding supplied past the data.
    pad: u32,
    stopped: bool,
    /// Set once a read went into the padding: the data ran out.
    overrun: bool,
}

impl<'a> Bits<'a> {
    fn new(d: &'a [u8], pos: usize, end: usize) -> Bits<'a> {
        Bits {
            d,
            pos,
            end,
            acc: 0,
            n: 0,
            pad: 0,
            stopped: false,
            overrun: false,
        }
    }

    fn next_byte(&mut self) -> Option<u8> {
        if self.pos >= self.end {
            return None;
        }
        let b = self.d[self.pos];
        if b != 0xFF {
            self.pos += 1;
            return Some(b);
        }
        if self.pos + 1 < self.end && self.d[self.pos + 1] == 0 {
            self.pos += 2;
            return Some(0xFF);
        }
        None
    }

    fn fill(&mut self) {
        // Most coded data has no 0xFF for eight bytes at a time: take those bytes at once.
        if !self.stopped && self.pos + 8 <= self.end {
            let word = u64::from_be_bytes(self.d[self.pos..self.pos + 8].try_into().expect("8"));
            let v = !word;
            let has_ff = v.wrapping_sub(0x0101_0101_0101_0101) & !v & 0x8080_8080_8080_8080 != 0;
            if !has_ff {
                let fit = (64 - self.n) / 8;
                let bits = fit * 8;
                let top = if bits == 64 {
                    word
                } else {
                    word >> (64 - bits)
                };
                self.acc |= top << (64 - self.n - bits);
                self.n += bits;
                self.pos += fit as usize;
                return;
            }
        }
        while self.n <= 56 {
            let b = if self.stopped { None } else { self.next_byte() };
            match b {
                Some(b) => self.acc |= u64::from(b) << (56 - self.n),
                None => {
                    self.stopped = true;
                    self.pad += 8;
                }
            }
            self.n += 8;
        }
    }

    /// The next `k` (1..=16) bits without consuming them.
    #[inline]
    fn peek(&mut self, k: u32) -> u32 {
        if self.n < k {
            self.fill();
        }
        (self.acc >> (64 - k)) as u32
    }

    #[inline]
    fn skip(&mut self, mut k: u32) {
        while k > 0 {
            let step = k.min(32);
            if self.n < step {
                self.fill();
            }
            if step > self.n - self.pad {
                self.overrun = true;
            }
            self.acc <<= step;
            self.n -= step;
            self.pad = self.pad.min(self.n);
            k -= step;
        }
    }

    fn bits(&mut self, k: u32) -> u32 {
        if k == 0 {
            return 0;
        }
        let v = self.peek(k);
        self.skip(k);
        v
    }

    #[inline]
    fn decode(&mut self, t: &Huffman) -> Result<u8, &'static str> {
        let p = self.peek(16);
        let (sym, len) = t.fast[(p >> (16 - FAST_BITS)) as usize & (FAST - 1)];
        if len > 0 {
            self.skip(u32::from(len));
            return Ok(sym);
        }
        for len in FAST_BITS as usize + 1..=16 {
            let code = (p >> (16 - len)) as i32;
            if code <= t.maxcode[len] {
                self.skip(len as u32);
                return Ok(t.values[(t.valptr[len] + code - t.mincode[len]) as usize]);
            }
        }
        Err("undefined Huffman code")
    }

    /// Ends an interval: the bits left in the current byte are padding. Returns where the
    /// consumed data ends in the file and, when the padding bits were not all ones, the
    /// mask that makes them so in the interval's last byte.
    fn finish(&mut self) -> (usize, u8) {
        let real = self.n - self.pad;
        let partial = real % 8;
        let padding_bits = if partial == 0 {
            0u8
        } else {
            let top = (self.acc >> (64 - partial)) as u8;
            let ones = ((1u16 << partial) - 1) as u8;
            !top & ones
        };
        self.skip(partial);
        // Whole bytes loaded but not used go back to the data, one source byte each and two
        // for a stuffed 0xFF.
        let unused = (self.n - self.pad) / 8;
        let mut back = 0;
        for i in 0..unused {
            let b = (self.acc >> (56 - 8 * i)) as u8;
            back += if b == 0xFF { 2 } else { 1 };
        }
        (self.pos - back, padding_bits)
    }
}

/// One component of the frame.
#[derive(Debug, Clone, Copy)]
pub(super) struct Component {
    pub id: u8,
    pub h: u8,
    pub v: u8,
    pub tq: u8,
}

/// What the frame header says that decoding needs.
#[derive(Debug, Clone)]
pub(super) struct Frame {
    pub progressive: bool,
    pub width: u32,
    pub height: u32,
    pub components: Vec<Component>,
}

impl Frame {
    fn hmax(&self) -> u32 {
        self.components
            .iter()
            .map(|c| u32::from(c.h))
            .max()
            .unwrap_or(1)
    }

    fn vmax(&self) -> u32 {
        self.components
            .iter()
            .map(|c| u32::from(c.v))
            .max()
            .unwrap_or(1)
    }

    /// The block grid of component `c` in a non-interleaved scan.
    fn blocks(&self, c: usize) -> (u64, u64) {
        let comp = self.components[c];
        let w = (u64::from(self.width) * u64::from(comp.h)).div_ceil(u64::from(self.hmax()));
        let h = (u64::from(self.height) * u64::from(comp.v)).div_ceil(u64::from(self.vmax()));
        (w.div_ceil(8), h.div_ceil(8))
    }
}

/// One scan's header, resolved against the frame.
#[derive(Debug, Clone)]
pub(super) struct ScanHeader {
    /// (frame component index, DC table, AC table) in scan order.
    pub components: Vec<(usize, usize, usize)>,
    pub ss: u8,
    pub se: u8,
    pub ah: u8,
    pub al: u8,
}

/// A piece of a scan's coded data that is picture: a byte range of the file, and the mask
/// that turns its last byte's padding bits into ones (0 when they already are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Piece {
    pub range: Range<usize>,
    pub pad_mask: u8,
    /// The restart marker (0xD0..=0xD7) that follows this piece, if any.
    pub restart: Option<u8>,
}

/// The walk of every scan of one frame; it remembers, for progressive refinement, which
/// coefficients of each block are already non-zero.
pub(super) struct Walker {
    frame: Frame,
    /// Per component, one bit per zigzag position per block (progressive only).
    nonzero: Vec<Vec<u64>>,
}

/// Which tables a scan reads.
pub(super) struct Tables<'t> {
    pub dc: [Option<&'t Huffman>; 4],
    pub ac: [Option<&'t Huffman>; 4],
}

impl Walker {
    pub(super) fn new(frame: Frame) -> Walker {
        let nonzero = if frame.progressive {
            (0..frame.components.len())
                .map(|c| {
                    let (w, h) = frame.blocks(c);
                    vec![0u64; (w * h) as usize]
                })
                .collect()
        } else {
            Vec::new()
        };
        Walker { frame, nonzero }
    }

    /// The frame's components.
    pub(super) fn components(&self) -> &[Component] {
        &self.frame.components
    }

    /// Which tables (DC, AC) each component of a scan uses: a sequential scan uses both,
    /// a progressive DC scan its DC table on the first pass and none on refinement, an AC
    /// scan its AC table.
    pub(super) fn uses(&self, s: &ScanHeader) -> (bool, bool) {
        if !self.frame.progressive {
            (true, true)
        } else if s.ss == 0 {
            (s.ah == 0, false)
        } else {
            (false, true)
        }
    }

    /// Checks a scan header against the coding process, before any data is read.
    pub(super) fn check(&self, s: &ScanHeader) -> Result<(), &'static str> {
        let n = s.components.len();
        if n == 0 || n > 4 {
            return Err("a scan has no components or more than four");
        }
        if n > 1 {
            let blocks: u32 = s
                .components
                .iter()
                .map(|&(c, _, _)| {
                    let comp = self.frame.components[c];
                    u32::from(comp.h) * u32::from(comp.v)
                })
                .sum();
            if blocks > 10 {
                return Err("an interleaved scan has more than ten blocks per MCU");
            }
        }
        if !self.frame.progressive {
            return Ok(());
        }
        let ok = s.se <= 63
            && s.ss <= s.se
            && (s.ss > 0 || s.se == 0)
            && (s.ss == 0 || n == 1)
            && s.ah <= 13
            && s.al <= 13;
        if ok {
            Ok(())
        } else {
            Err("a progressive scan's spectral selection or approximation is invalid")
        }
    }

    /// Walks one scan's coded data, `d[start..end]` (restart markers included, `end` the
    /// marker that ends the scan), and returns the pieces that are picture. A damaged
    /// restart interval is skipped to the next restart marker, as decoders resynchronise,
    /// so the fault reports how much of the scan decodes in all.
    pub(super) fn scan(
        &mut self,
        s: &ScanHeader,
        t: &Tables,
        restart_interval: u16,
        d: &[u8],
        start: usize,
        end: usize,
    ) -> Result<Vec<Piece>, Fault> {
        let single = s.components.len() == 1;
        let total = if single {
            let (w, h) = self.frame.blocks(s.components[0].0);
            w * h
        } else {
            let mw = u64::from(self.frame.width).div_ceil(8 * u64::from(self.frame.hmax()));
            let mh = u64::from(self.frame.height).div_ceil(8 * u64::from(self.frame.vmax()));
            mw * mh
        };
        let interval = if restart_interval == 0 {
            total.max(1)
        } else {
            u64::from(restart_interval)
        };
        let mut pieces = Vec::new();
        // The first fault, and how many MCUs decoded cleanly in all.
        let mut fault: Option<(Option<&'static str>, u64)> = None;
        let mut decoded = 0u64;
        let mut at = start;
        let mut first = 0u64;
        let mut rst = 0u8;
        while first < total {
            let count = interval.min(total - first);
            let last = first + count == total;
            let mut bits = Bits::new(d, at, end);
            let mut eobrun = 0u32;
            let mut broke = None;
            for index in first..first + count {
                if let Err(what) = self.mcu(s, t, &mut bits, index, &mut eobrun, single) {
                    broke = Some(Some(what));
                    break;
                }
                if bits.overrun {
                    broke = Some(None);
                    break;
                }
                // Counted as it decodes: a damaged interval still shows its first blocks.
                decoded += 1;
            }
            let want = 0xD0 + rst;
            if broke.is_none() {
                let (used, pad_mask) = bits.finish();
                if last {
                    pieces.push(Piece {
                        range: at..used,
                        pad_mask,
                        restart: None,
                    });
                    break;
                }
                let marker = next_marker(d, used, end);
                if marker.is_some_and(|m| d[m + 1] == want) {
                    pieces.push(Piece {
                        range: at..used,
                        pad_mask,
                        restart: Some(want),
                    });
                    at = marker.expect("checked") + 2;
                    first += count;
                    rst = (rst + 1) % 8;
                    continue;
                }
                broke = Some(Some("a restart marker is missing or out of order"));
            }
            // Resynchronise at the next expected restart marker, as decoders do; what lies
            // before it is lost, and the file cannot take the lossless path.
            fault.get_or_insert((broke.flatten(), decoded));
            if last || restart_interval == 0 {
                break;
            }
            match (bits.pos.min(end)..end).find(|&i| d[i] == 0xFF && d[i + 1] == want) {
                Some(m) => {
                    at = m + 2;
                    first += count;
                    rst = (rst + 1) % 8;
                }
                None => break,
            }
        }
        match fault {
            None => Ok(pieces),
            Some((what, _)) => Err(match what {
                Some(what) => Fault::Corrupt {
                    what,
                    done: decoded,
                    total,
                },
                None => Fault::Short {
                    done: decoded,
                    total,
                },
            }),
        }
    }

    /// One MCU: in a single-component scan one block (`index` in the component's block
    /// grid), else every block of every component of the scan.
    fn mcu(
        &mut self,
        s: &ScanHeader,
        t: &Tables,
        bits: &mut Bits,
        index: u64,
        eobrun: &mut u32,
        single: bool,
    ) -> Result<(), &'static str> {
        for &(c, td, ta) in &s.components {
            let comp = self.frame.components[c];
            let count = if single {
                1
            } else {
                u32::from(comp.h) * u32::from(comp.v)
            };
            for _ in 0..count {
                if !self.frame.progressive {
                    let dc = t.dc[td].ok_or("a scan uses an undefined Huffman table")?;
                    let ac = t.ac[ta].ok_or("a scan uses an undefined Huffman table")?;
                    dc_first(bits, dc)?;
                    ac_sequential(bits, ac)?;
                } else if s.ss == 0 {
                    if s.ah == 0 {
                        dc_first(
                            bits,
                            t.dc[td].ok_or("a scan uses an undefined Huffman table")?,
                        )?;
                    } else {
                        bits.skip(1);
                    }
                } else {
                    let ac = t.ac[ta].ok_or("a scan uses an undefined Huffman table")?;
                    let mask = &mut self.nonzero[c][index as usize];
                    if s.ah == 0 {
                        ac_first(bits, ac, s.ss, s.se, eobrun, mask)?;
                    } else {
                        ac_refine(bits, ac, s.ss, s.se, eobrun, mask)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Where the marker after `from` begins, skipping bytes a decoder would skip looking for
/// one (stray data, fill bytes), or `None` before `end`.
fn next_marker(d: &[u8], from: usize, end: usize) -> Option<usize> {
    (from..=end).find(|&i| i + 1 < d.len() && d[i] == 0xFF && d[i + 1] != 0 && d[i + 1] != 0xFF)
}

fn dc_first(bits: &mut Bits, t: &Huffman) -> Result<(), &'static str> {
    let s = bits.decode(t)?;
    if s > 15 {
        return Err("a DC difference is longer than 15 bits");
    }
    bits.skip(u32::from(s));
    Ok(())
}

fn ac_sequential(bits: &mut Bits, t: &Huffman) -> Result<(), &'static str> {
    let mut k = 1u32;
    while k < 64 {
        let (step, taken) = t.ac_fast[bits.peek(FAST_BITS) as usize & (FAST - 1)];
        if taken > 0 {
            k += u32::from(step);
            if k > 64 {
                return Err("a coefficient lies past the end of its block");
            }
            bits.skip(u32::from(taken));
            continue;
        }
        let rs = bits.decode(t)?;
        let (r, s) = (u32::from(rs >> 4), u32::from(rs & 15));
        if s == 0 {
            if r != 15 {
                return Ok(());
            }
            k += 16;
            continue;
        }
        k += r;
        if k > 63 {
            return Err("a coefficient lies past the end of its block");
        }
        bits.skip(s);
        k += 1;
    }
    if k > 64 {
        return Err("a zero run lies past the end of its block");
    }
    Ok(())
}

fn ac_first(
    bits: &mut Bits,
    t: &Huffman,
    ss: u8,
    se: u8,
    eobrun: &mut u32,
    nonzero: &mut u64,
) -> Result<(), &'static str> {
    if *eobrun > 0 {
        *eobrun -= 1;
        return Ok(());
    }
    let (mut k, se) = (u32::from(ss), u32::from(se));
    while k <= se {
        let (step, taken) = t.ac_fast[bits.peek(FAST_BITS) as usize & (FAST - 1)];
        if taken > 0 {
            let at = k + u32::from(step) - 1;
            if at > se {
                return Err("a coefficient lies past the end of its band");
            }
            bits.skip(u32::from(taken));
            *nonzero |= 1 << at;
            k = at + 1;
            continue;
        }
        let rs = bits.decode(t)?;
        let (r, s) = (u32::from(rs >> 4), u32::from(rs & 15));
        if s == 0 {
            if r < 15 {
                *eobrun = (1 << r) - 1 + bits.bits(r);
                return Ok(());
            }
            k += 16;
            continue;
        }
        k += r;
        if k > se {
            return Err("a coefficient lies past the end of its band");
        }
        bits.skip(s);
        *nonzero |= 1 << k;
        k += 1;
    }
    if k > se + 1 {
        return Err("a zero run lies past the end of its band");
    }
    Ok(())
}

fn ac_refine(
    bits: &mut Bits,
    t: &Huffman,
    ss: u8,
    se: u8,
    eobrun: &mut u32,
    nonzero: &mut u64,
) -> Result<(), &'static str> {
    let (mut k, se) = (u32::from(ss), u32::from(se));
    if *eobrun == 0 {
        while k <= se {
            let rs = bits.decode(t)?;
            let (r, s) = (i32::from(rs >> 4), rs & 15);
            if s != 0 {
                if s != 1 {
                    return Err("a refined coefficient is not one bit");
                }
                bits.skip(1);
            } else if r != 15 {
                *eobrun = (1 << r) + bits.bits(r as u32);
                break;
            }
            // Skip already non-zero coefficients (one correction bit each) and `r` zero ones.
            let mut r = r;
            loop {
                if *nonzero & (1 << k) != 0 {
                    bits.skip(1);
                } else {
                    r -= 1;
                    if r < 0 {
                        break;
                    }
                }
                k += 1;
                if k > se {
                    break;
                }
            }
            if s != 0 {
                if k > se {
                    return Err("a refined coefficient lies past the end of its band");
                }
                *nonzero |= 1 << k;
            }
            k += 1;
        }
    }
    if *eobrun > 0 {
        // The rest of the band: one correction bit per coefficient already non-zero.
        if k <= se {
            let band = (u64::MAX >> (63 - se)) & (u64::MAX << k);
            bits.skip((*nonzero & band).count_ones());
        }
        *eobrun -= 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_whose_codes_overflow_is_rejected() {
        // Three 1-bit codes cannot exist.
        let mut counts = [0u8; 16];
        counts[0] = 3;
        assert!(Huffman::new(&counts, &[1, 2, 3]).is_none());
        // Two 1-bit codes would use the all-ones code.
        counts[0] = 2;
        assert!(Huffman::new(&counts, &[1, 2]).is_none());
        counts[0] = 1;
        counts[1] = 1;
        assert!(Huffman::new(&counts, &[1, 2]).is_some());
    }

    #[test]
    fn stuffed_bytes_and_padding_are_accounted_for() {
        // 0xFF 0x00 is one data byte; the padding of the last byte is reported.
        let d = [0xFF, 0x00, 0b1010_0000, 0xFF, 0xD9];
        let mut b = Bits::new(&d, 0, 3);
        assert_eq!(b.bits(8), 0xFF);
        assert_eq!(b.bits(3), 0b101);
        let (end, mask) = b.finish();
        assert_eq!(end, 3);
        assert_eq!(mask, 0b1_1111);
        assert!(!b.overrun);
    }

    #[test]
    fn bytes_never_read_are_left_out_of_the_consumed_range() {
        let d = [0b1111_1111, 0x00, 0x12, 0x34, 0x56];
        let mut b = Bits::new(&d, 0, 5);
        b.bits(4);
        let (end, mask) = b.finish();
        // The 0xFF byte is stuffed: consumed through its zero, the rest never read.
        assert_eq!((end, mask), (2, 0));
    }

    #[test]
    fn reading_past_the_data_is_an_overrun() {
        let d = [0x12];
        let mut b = Bits::new(&d, 0, 1);
        b.bits(8);
        assert!(!b.overrun);
        b.bits(1);
        assert!(b.overrun);
    }
}
