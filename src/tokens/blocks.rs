//! The o200k, cl100k and GPT-2 pre-tokenizers on ASCII text, 64 bytes at a time: the piece starts
//! of a block as one bit mask, computed from the bytes' classes with word-wide bit operations
//! (SSE2 compares for the classes), then handed out one `trailing_zeros` at a time.
//!
//! Why: the character-by-character scanner (`scan::next_o200k`) spent two thirds of the time of
//! 100 KB of English (~215 of ~315 us, o200k) finding where pieces end. Its branches follow the text
//! (capitalised or not, how long the word is, which punctuation follows), which the CPU cannot
//! predict on prose it has not just seen. Here a block costs the same whatever its words are.
//!
//! Which positions start an o200k piece (for ASCII the pattern's classes are: `Lw` a-z, `Up` A-Z,
//! `D` 0-9, `WS` the six ASCII white-space bytes, `NL` `\r` `\n`, `P` every other byte), read off
//! the pattern's alternatives in order. A position continues the piece before it when it is:
//! - a letter after a letter, unless an upper-case letter follows a lower-case one (`[UP]*[LO]+`
//!   then `[UP]+[LO]*`: the only split inside a run of ASCII letters);
//! - a letter after a one-character prefix `[^\r\n\p{L}\p{N}]` that starts a piece: a white-space
//!   byte other than `\r\n` before a letter always does (it is the last of its run, see below); a
//!   `P` byte does unless it continues a `P` run or a space before it;
//! - the apostrophe and letters of a contraction (`'s 't 'm 'd 're 've 'll`, any case) right after
//!   a word; the byte after the contraction starts a piece, even a letter (`don'tx` is `don't`,
//!   `x`), and an apostrophe there is a prefix, not a second contraction (`it's's` is `it's`, `'s`);
//! - a digit after a digit, except every third of a run (`\p{N}{1,3}`);
//! - a `P` byte after a `P` byte of a run, or after a space (` ?[^\s\p{L}\p{N}]+`); `\r\n/` bytes
//!   after a `P` run, chained (`[\r\n/]*`: a `/` reached through a line break ends the run);
//! - white space inside a run, except where the run starts (after any tail above), after the
//!   run's last line break (`\s*[\r\n]+` ends there), and at the run's last byte when at least
//!   two bytes follow the last line break (`\s+(?!\S)` gives the last one back to what follows).
//!
//! cl100k differs in three ways: a run of letters is never split; a contraction is a piece of its
//! own, at an apostrophe that starts a piece (`don't` is `don`, `'t`; `.'s` is `.'`, `s`); and the
//! tail after a `P` run is `[\r\n]*`, without the slash.
//!
//! GPT-2's pattern (r50k, p50k, and the byte-level BPE of Claude's tokenizer, `hf_bpe`) has
//! simpler rules, set out at `starts_gpt2`: runs are never split, the only prefix is a space, and
//! its contractions are lower case only. Its character scanner had been a fifth of the time of
//! counting 100 KB of English with Claude's tokenizer; with this one the count went from ~308 to
//! ~262 µs (through Python, builds in turns, medians of 31 x 20 calls, one run).
//!
//! A start's status needs no byte after it, except a contraction's (read from the text, past the
//! block if need be) and inside a run of white space (the run's last line break may be anywhere
//! in it). So a block commits only the pieces that end by the first byte of a run of white space
//! reaching its end; the next block starts at the last start committed. A block starts at a piece
//! start, so nothing before it matters. The end of the text (where white space ends differently),
//! non-ASCII text, and a piece longer than a block go to the character scanner, one piece at a
//! time.
//!
//! Checked against the character scanner and against tiktoken's pattern run by `fancy-regex`
//! (`tests::props`) on generated text, and against tiktoken itself by `scripts/check_exact.py`.

// Other CPUs (aarch64) use the character scanners: the class masks computed without SIMD
// intrinsics, as the compiler vectorises plain loops (`Chunk16::classify_portable`), made 100 KB of
// English 1.8x slower than the character scanner (measured on x86_64 with the SSE2 path swapped
// out); NEON compares would be the way there.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m128i, _mm_add_epi8, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8,
    _mm_or_si128, _mm_set1_epi8,
};

use super::classes::Classes;
use super::scan::{contraction_ci, contraction_gpt2, next_cl100k, next_gpt2, next_o200k};

/// Bytes of a block.
const BLOCK: usize = 64;

/// The patterns this scanner knows, as its const parameter.
pub(crate) const O200K: u8 = 0;
pub(crate) const CL100K: u8 = 1;
/// GPT-2's pattern (r50k, p50k, and the byte-level BPE of Claude's tokenizer).
pub(crate) const GPT2: u8 = 2;

/// Calls `f` with every piece of `s` under the pattern `P` (`O200K`, `CL100K` or `GPT2`), in
/// order; the same pieces as `scan::pieces` with `next_o200k`, `next_cl100k` or `next_gpt2`.
#[inline(always)]
pub(crate) fn pieces<'a, const P: u8, F: FnMut(&'a [u8])>(t: &Classes, s: &'a [u8], mut f: F) {
    let mut i = 0;
    while i < s.len() {
        // Bit 0 is `i` itself; the last committed start is where the next block begins.
        let mut rest = block_starts::<P>(s, i) & !1;
        let mut from = 0;
        while rest != 0 {
            let at = rest.trailing_zeros() as usize;
            if let Some(piece) = s.get(i + from..i + at) {
                f(piece);
            }
            from = at;
            rest &= rest - 1;
        }
        if from > 0 {
            i += from;
            continue;
        }
        let end = match P {
            O200K => next_o200k(t, s, i),
            CL100K => next_cl100k(t, s, i),
            _ => next_gpt2(t, s, i),
        };
        let end = end.max(i + 1).min(s.len());
        if let Some(piece) = s.get(i..end) {
            f(piece);
        }
        i = end;
    }
}

/// Class masks of a block: bit `k` is byte `k`.
struct Masks {
    lower: u64,
    upper: u64,
    digit: u64,
    /// `\s`: `\t \n \v \f \r` and space
    ws: u64,
    newline: u64,
    space: u64,
    apostrophe: u64,
    slash: u64,
    /// The ASCII bytes before the first other one.
    valid: u64,
    /// How many bytes that is.
    n: usize,
}

/// The committed piece starts of the block at `s[i..]` (bit 0, `i` itself, set; no bit at or
/// past the last committed start's successor), or 0 where the character scanner is to take the
/// next piece: fewer than 16 bytes left, or fewer than 16 ASCII bytes from `i` (a block would
/// commit little), or a run of one byte.
#[inline(always)]
fn block_starts<const P: u8>(s: &[u8], i: usize) -> u64 {
    if cfg!(not(target_arch = "x86_64")) {
        return 0;
    }
    // Text that is not ASCII (CJK, most other scripts) leaves here, for one load and compare; so
    // does a run of one byte (indentation, `"a" * 100_000`, `----` rules), whose piece is likely
    // longer than a block.
    let Some(head) = s.get(i..).and_then(|rest| rest.first_chunk::<16>()) else {
        return 0;
    };
    let head = u128::from_le_bytes(*head);
    if head & (u128::MAX / 0xff * 0x80) != 0 || head == (head & 0xff) * (u128::MAX / 0xff) {
        return 0;
    }
    classify(s, i).map_or(0, |m| match P {
        GPT2 => starts_gpt2(s, i, &m),
        O200K => starts::<true>(s, i, &m),
        _ => starts::<false>(s, i, &m),
    })
}

/// The masks of `s[i..i + BLOCK]` (padded with zero bytes past the end of `s`, which `valid`
/// excludes).
#[inline(always)]
fn classify(s: &[u8], i: usize) -> Option<Masks> {
    let rest = s.get(i..)?;
    let mut padded = [0u8; BLOCK];
    let block: &[u8; BLOCK] = match rest.first_chunk::<BLOCK>() {
        Some(block) => block,
        None => {
            padded[..rest.len()].copy_from_slice(rest);
            &padded
        }
    };
    let len = rest.len().min(BLOCK);
    let mut m = Masks {
        lower: 0,
        upper: 0,
        digit: 0,
        ws: 0,
        newline: 0,
        space: 0,
        apostrophe: 0,
        slash: 0,
        valid: 0,
        n: 0,
    };
    let mut high = 0u64;
    for (k, chunk) in block.chunks_exact(16).enumerate() {
        let Some(chunk) = chunk.first_chunk::<16>() else {
            continue;
        };
        let c = Chunk16::classify(chunk);
        let at = 16 * k;
        m.lower |= u64::from(c.lower) << at;
        m.upper |= u64::from(c.upper) << at;
        m.digit |= u64::from(c.digit) << at;
        m.ws |= u64::from(c.ws) << at;
        m.newline |= u64::from(c.newline) << at;
        m.space |= u64::from(c.space) << at;
        m.apostrophe |= u64::from(c.apostrophe) << at;
        m.slash |= u64::from(c.slash) << at;
        high |= u64::from(c.high) << at;
    }
    m.n = (high.trailing_zeros() as usize).min(len);
    m.valid = low_bits(m.n);
    Some(m)
}

/// Bits `0..n` set (`n <= 64`).
#[inline(always)]
fn low_bits(n: usize) -> u64 {
    1u64.checked_shl(n as u32).map_or(u64::MAX, |b| b - 1)
}

/// Positions of a run of `run` from a seed on, to the run's end: `seeds` must be bits of `run`.
#[inline(always)]
fn fill(seeds: u64, run: u64) -> u64 {
    (run & (run.wrapping_add(seeds) ^ run)) | seeds
}

/// The contractions of the block at `s[i..]` that begin at the apostrophes of `candidates`,
/// checked one by one (few per block) by `find` (`scan::contraction_ci` or
/// `scan::contraction_gpt2`, read from the text, past the block if need be): the bits they
/// cover, and the starts they force (bit 0, and the byte after each). `attached`: a contraction
/// continues the word before it, its apostrophe included (o200k), and an apostrophe right after
/// one is a prefix, not a second contraction; otherwise the apostrophe starts the contraction's
/// piece.
#[inline(always)]
fn contractions(
    s: &[u8],
    i: usize,
    mut candidates: u64,
    attached: bool,
    find: impl Fn(&[u8], usize) -> Option<usize>,
) -> (u64, u64) {
    let mut forced = 1u64;
    let mut contraction = 0u64;
    while candidates != 0 {
        let j = candidates.trailing_zeros() as usize;
        candidates &= candidates - 1;
        if attached && forced & (1 << j) != 0 {
            continue;
        }
        if let Some(end) = find(s, i + j + 1) {
            let end = end - i;
            let from = if attached { j } else { j + 1 };
            contraction |= low_bits(end) & !low_bits(from);
            forced |= 1u64.checked_shl(end as u32).unwrap_or(0);
        }
    }
    (contraction, forced)
}

/// The committed piece starts of the block at `s[i..]` with classes `m`.
#[inline(always)]
fn starts<const O200K: bool>(s: &[u8], i: usize, m: &Masks) -> u64 {
    let v = m.valid;
    let (lower, upper, digit) = (m.lower & v, m.upper & v, m.digit & v);
    let (ws, newline, space) = (m.ws & v, m.newline & v, m.space & v);
    let letter = lower | upper;
    let other = v & !(letter | digit | ws);
    let blank = ws & !newline;

    // `[\r\n/]*` (o200k) or `[\r\n]*` (cl100k) after a `P` run: chains of line breaks (and
    // slashes) from a line break that follows a `P` byte.
    let tail = if O200K {
        fill(newline & (other << 1), newline | m.slash & v)
    } else {
        fill(newline & (other << 1), newline)
    };

    // `P` runs, and the `P` bytes that start a piece (a possible prefix, or in cl100k a
    // contraction's apostrophe).
    let run_other = other & (((other & !tail) << 1) | (space << 1));
    let mut first_other = other & !(run_other | tail);

    // Contractions. o200k: an apostrophe after a letter, which continues the word. cl100k: an
    // apostrophe that starts a piece, a piece of its own.
    let apostrophe = m.apostrophe & v;
    let candidates = if O200K {
        apostrophe & (letter << 1)
    } else {
        apostrophe & first_other
    };
    let (contraction, forced) = contractions(s, i, candidates, O200K, contraction_ci);
    if O200K {
        first_other &= !contraction;
    }

    // `\p{N}{1,3}`: every third digit of a run, from its first.
    let mut groups = digit & !(digit << 1);
    let third = digit & (digit << 1) & (digit << 2);
    let mut step = groups;
    loop {
        step = (step << 3) & third;
        if step == 0 {
            break;
        }
        groups |= step;
    }

    // White space (past any tail): its run's first byte, the byte after its last line break, and
    // its last byte when at least two bytes follow the last line break.
    let white = ws & !tail;
    let white_first = white & !(white << 1);
    let before_last_break =
        fill((newline & white).reverse_bits(), white.reverse_bits()).reverse_bits();
    let after = white & !before_last_break;
    let after_first = after & !(after << 1);
    // (When the part after the last break is one byte, that byte is `after_first` already.)
    let given_back = after & !(white >> 1);
    let white_continues = white & !(white_first | after_first | given_back);

    // o200k splits a run of letters where an upper-case one follows a lower-case one.
    let split = if O200K { upper & lower << 1 } else { 0 };
    let continues = contraction
        | letter & letter << 1 & !split
        | letter & ((blank | first_other) << 1)
        | digit & digit << 1 & !groups
        | run_other
        | tail
        | white_continues;
    let all = (v & !continues) | forced;

    all & committed(m, white)
}

/// The bits of the starts a block may commit: only up to a run of white space that reaches the
/// block's end. Its first byte starts a piece whatever follows (the byte before it ends a word, a
/// number, a `P` run or its tail), the rest waits for the next block. (A contraction near the end
/// is read from the text itself, past the block.)
#[inline(always)]
fn committed(m: &Masks, white: u64) -> u64 {
    let mut limit = m.n;
    if limit > 0 && white & (1 << (limit - 1)) != 0 {
        let not_white = !white & low_bits(limit);
        limit = BLOCK + 1 - not_white.leading_zeros() as usize;
    }
    low_bits(limit)
}

/// The committed piece starts of the block at `s[i..]` with classes `m`, under GPT-2's pattern
/// `'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`. On ASCII a
/// position continues the piece before it when it is:
/// - a letter after a letter, a digit after a digit, a `P` byte after a `P` byte (runs are never
///   split);
/// - a letter, digit or `P` byte after a space (the optional prefix: a space before a non-space
///   always starts a piece, being the first or the given-back last byte of its run);
/// - a letter of a contraction (lower case only) after an apostrophe that starts a piece (one
///   after a space or a `P` byte continues it instead); the byte after the contraction starts a
///   piece, even a letter (`'sx` is `'s`, `x`);
/// - white space inside a run but for its first and last bytes (`\s+(?!\S)` gives the last
///   one back to what follows, which it prefixes if it is a space).
#[inline(always)]
fn starts_gpt2(s: &[u8], i: usize, m: &Masks) -> u64 {
    let v = m.valid;
    let letter = (m.lower | m.upper) & v;
    let digit = m.digit & v;
    let (ws, space) = (m.ws & v, m.space & v);
    let other = v & !(letter | digit | ws);
    let prefixed = (letter | digit | other) & (space << 1);
    let run_other = other & (other << 1);
    let first_other = other & !(run_other | prefixed);

    let (contraction, forced) =
        contractions(s, i, m.apostrophe & first_other, false, contraction_gpt2);

    let white_inner = ws & (ws << 1) & (ws >> 1);
    let continues = contraction
        | letter & letter << 1
        | digit & digit << 1
        | run_other
        | prefixed
        | white_inner;
    ((v & !continues) | forced) & committed(m, ws)
}

/// Class masks of 16 bytes.
struct Chunk16 {
    lower: u16,
    upper: u16,
    digit: u16,
    ws: u16,
    newline: u16,
    space: u16,
    apostrophe: u16,
    slash: u16,
    high: u16,
}

impl Chunk16 {
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn classify(bytes: &[u8; 16]) -> Chunk16 {
        // SAFETY: SSE2 is part of the x86_64 baseline, so every CPU this code runs on has these
        // instructions; `bytes` is 16 readable bytes and the load needs no alignment.
        unsafe {
            let x = _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>());
            let mask = |v: __m128i| _mm_movemask_epi8(v) as u16;
            let eq = |b: u8| _mm_cmpeq_epi8(x, _mm_set1_epi8(b as i8));
            // `lo..lo + len` as one signed compare: shifted so that `lo` lands on -128.
            let range = |lo: u8, len: u8| {
                let shifted = _mm_add_epi8(x, _mm_set1_epi8(0x80u8.wrapping_sub(lo) as i8));
                _mm_cmplt_epi8(shifted, _mm_set1_epi8(0x80u8.wrapping_add(len) as i8))
            };
            Chunk16 {
                lower: mask(range(b'a', 26)),
                upper: mask(range(b'A', 26)),
                digit: mask(range(b'0', 10)),
                ws: mask(_mm_or_si128(range(b'\t', 5), eq(b' '))),
                newline: mask(_mm_or_si128(eq(b'\r'), eq(b'\n'))),
                space: mask(eq(b' ')),
                apostrophe: mask(eq(b'\'')),
                slash: mask(eq(b'/')),
                high: mask(x),
            }
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    fn classify(bytes: &[u8; 16]) -> Chunk16 {
        Chunk16::classify_portable(bytes)
    }

    /// `classify` without SIMD intrinsics: each mask a loop for the compiler to vectorise (the
    /// reference of the SSE2 version in a unit test).
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    #[inline(always)]
    fn classify_portable(bytes: &[u8; 16]) -> Chunk16 {
        #[inline(always)]
        fn mask(bytes: &[u8; 16], f: impl Fn(u8) -> bool) -> u16 {
            bytes
                .iter()
                .enumerate()
                .fold(0u16, |m, (k, &b)| m | (u16::from(f(b)) << k))
        }
        Chunk16 {
            lower: mask(bytes, |b| b.is_ascii_lowercase()),
            upper: mask(bytes, |b| b.is_ascii_uppercase()),
            digit: mask(bytes, |b| b.is_ascii_digit()),
            ws: mask(bytes, |b| matches!(b, b'\t'..=b'\r' | b' ')),
            newline: mask(bytes, |b| matches!(b, b'\r' | b'\n')),
            space: mask(bytes, |b| b == b' '),
            apostrophe: mask(bytes, |b| b == b'\''),
            slash: mask(bytes, |b| b == b'/'),
            high: mask(bytes, |b| b >= 0x80),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Chunk16;

    /// The SIMD classes against the portable ones, for every byte value in every lane.
    #[test]
    fn simd_classes_match_the_portable_ones() {
        for first in 0..=255u8 {
            let mut bytes = [0u8; 16];
            for (k, b) in bytes.iter_mut().enumerate() {
                *b = first.wrapping_add((k as u8).wrapping_mul(17));
            }
            let (a, b) = (
                Chunk16::classify(&bytes),
                Chunk16::classify_portable(&bytes),
            );
            let masks = |c: &Chunk16| {
                [
                    c.lower,
                    c.upper,
                    c.digit,
                    c.ws,
                    c.newline,
                    c.space,
                    c.apostrophe,
                    c.slash,
                    c.high,
                ]
            };
            assert_eq!(masks(&a), masks(&b), "{bytes:?}");
        }
    }
}
