//! Character classes used by the pre-tokenizer scanners.
//!
//! Every class comes from regex-syntax's Unicode tables, the same tables the `regex` crate (and so
//! tiktoken's `fancy-regex`) consults, so `\p{L}`, `\p{N}`, `\s` mean exactly what they mean to
//! tiktoken, down to unassigned and private-use code points.
//!
//! Lookup: ASCII goes through a 128-entry table; everything else through a two-level table (the
//! code point's high bits pick a deduplicated 256-entry block). Most blocks are identical (all
//! letters, all unassigned, ...), so the whole table is ~100 KB.

use std::borrow::Cow;

use crate::published::Published;

use regex_syntax::hir::{Class, HirKind};
use rustc_hash::FxHashMap;

/// `\p{L}`
pub(crate) const L: u8 = 1;
/// `\p{N}`
pub(crate) const N: u8 = 2;
/// `\s` (Unicode White_Space)
pub(crate) const WS: u8 = 4;
/// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`, the "upper" class of o200k_base
pub(crate) const UP: u8 = 8;
/// `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`, the "lower" class of o200k_base
pub(crate) const LO: u8 = 16;
/// `\r` or `\n`
pub(crate) const NL: u8 = 32;

const BLOCKS: usize = 0x110000 >> 8;

pub(crate) struct Classes {
    ascii: [u8; 128],
    /// Block index per 256-code-point page.
    pages: Cow<'static, [u16]>,
    /// Concatenated deduplicated 256-entry blocks.
    blocks: Cow<'static, [u8]>,
}

/// The shared table: the one built with the crate (`frozen`), else built on first use (a few
/// milliseconds, which was most of a cold process's first count once the vocabularies stopped
/// being built at load). Not in a `OnceLock`: see `crate::published`.
pub(crate) fn classes() -> &'static Classes {
    static TABLE: Published<Classes> = Published::new();
    TABLE.get_or_build(
        || super::frozen::classes().unwrap_or_else(Classes::build),
        drop,
    )
}

/// The code point ranges of a one-class pattern such as `\p{L}`.
///
/// The patterns are fixed literals known to parse to a Unicode class; anything else would be a
/// programming error caught by the unit tests, so it yields an empty set rather than a panic.
pub(crate) fn unicode_ranges(pattern: &str) -> Vec<(u32, u32)> {
    match regex_syntax::parse(pattern) {
        Ok(hir) => match hir.kind() {
            HirKind::Class(Class::Unicode(class)) => class
                .ranges()
                .iter()
                .map(|r| (r.start() as u32, r.end() as u32))
                .collect(),
            HirKind::Literal(lit) => std::str::from_utf8(&lit.0)
                .ok()
                .and_then(|s| s.chars().next())
                .map(|c| vec![(c as u32, c as u32)])
                .unwrap_or_default(),
            _ => Vec::new(),
        },
        Err(_) => Vec::new(),
    }
}

impl Classes {
    pub(crate) fn build() -> Classes {
        Classes::build_with(&[
            (r"\p{L}", L),
            (r"\p{N}", N),
            (r"\s", WS),
            (r"\p{Lu}", UP),
            (r"\p{Lt}", UP),
            (r"\p{Lm}", UP | LO),
            (r"\p{Lo}", UP | LO),
            (r"\p{M}", UP | LO),
            (r"\p{Ll}", LO),
            (r"[\r\n]", NL),
        ])
    }

    /// A table whose bits are the given one-class patterns' (up to eight, each its own bit or
    /// bits): other pre-tokenizers need other classes.
    pub(crate) fn build_with(sets: &[(&str, u8)]) -> Classes {
        let mut flat = vec![0u8; 0x110000];
        for &(pattern, bit) in sets {
            for (start, end) in unicode_ranges(pattern) {
                for cp in start..=end {
                    if let Some(slot) = flat.get_mut(cp as usize) {
                        *slot |= bit;
                    }
                }
            }
        }
        let mut ascii = [0u8; 128];
        ascii.copy_from_slice(&flat[..128]);
        let mut seen: FxHashMap<&[u8], u16> = FxHashMap::default();
        let mut pages = Vec::with_capacity(BLOCKS);
        let mut blocks = Vec::new();
        for page in flat.chunks(256) {
            let next = seen.len() as u16;
            let index = *seen.entry(page).or_insert_with(|| {
                blocks.extend_from_slice(page);
                next
            });
            pages.push(index);
        }
        Classes {
            ascii,
            pages: Cow::Owned(pages),
            blocks: Cow::Owned(blocks),
        }
    }

    /// `ascii`, `pages` and `blocks`, to be stored with the crate (`build.rs`).
    #[allow(dead_code)] // used by build.rs and the tests
    pub(crate) fn parts(&self) -> (&[u8; 128], &[u16], &[u8]) {
        (&self.ascii, &self.pages, &self.blocks)
    }

    /// A table from what `parts` gave (lookups are bounds-checked, so any sizes are safe).
    pub(crate) fn from_parts(
        ascii: [u8; 128],
        pages: Cow<'static, [u16]>,
        blocks: Cow<'static, [u8]>,
    ) -> Classes {
        Classes {
            ascii,
            pages,
            blocks,
        }
    }

    /// Class bits of a code point.
    #[inline(always)]
    pub(crate) fn of(&self, cp: u32) -> u8 {
        let page = self.pages.get((cp >> 8) as usize).copied().unwrap_or(0) as usize;
        self.blocks
            .get((page << 8) | (cp as usize & 0xff))
            .copied()
            .unwrap_or(0)
    }

    /// Class bits and byte length of the character starting at `s[i]` (`s` is valid UTF-8 and `i`
    /// a character boundary).
    #[inline(always)]
    pub(crate) fn at(&self, s: &[u8], i: usize) -> (u8, usize) {
        let b = s[i];
        if b < 0x80 {
            (self.ascii[b as usize], 1)
        } else {
            let (cp, len) = decode(s, i);
            (self.of(cp), len)
        }
    }

    /// End of the run of characters from `i` whose class has any bit of `want`.
    #[inline(always)]
    pub(crate) fn run(&self, s: &[u8], mut i: usize, want: u8) -> usize {
        // Only from an ASCII byte: a run of CJK letters (a whole clause) would pay for a chunk.
        if (want == L || want == LO) && s.get(i).is_some_and(u8::is_ascii) {
            match ascii_letters(s, i, want == LO) {
                Ok(end) => return end,
                Err(from) => i = from,
            }
        }
        while i < s.len() {
            let (c, len) = self.at(s, i);
            if c & want == 0 {
                break;
            }
            i += len;
        }
        i
    }

    /// End of the run of characters from `i` whose class has no bit of `avoid`.
    #[inline(always)]
    pub(crate) fn run_none(&self, s: &[u8], mut i: usize, avoid: u8) -> usize {
        while i < s.len() {
            let (c, len) = self.at(s, i);
            if c & avoid != 0 {
                break;
            }
            i += len;
        }
        i
    }
}

/// The end of the ASCII letters of `s` from `i` (lowercase ones only if `lower`: the ASCII part
/// of `LO`; else of `L`), eight bytes at a time: `Ok(end)` if the byte at `end` is ASCII (so it
/// ends the run), else `Err(end)` where a non-ASCII character or the last 7 bytes start, from
/// which the caller goes on character by character.
///
/// Why: a loop over the characters of a word ends on a branch that depends on the word's length,
/// which the CPU cannot predict on text it has not just seen. 100 KB of English words shuffled
/// (so no word follows the same one twice) took 2.4x as long as the same words in a 1 KB text
/// repeated, with the same tables in cache.
#[inline(always)]
fn ascii_letters(s: &[u8], mut i: usize, lower: bool) -> Result<usize, usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    while let Some(&chunk) = s.get(i..).and_then(|rest| rest.first_chunk::<8>()) {
        let x = u64::from_le_bytes(chunk);
        // The low seven bits of each byte, folded to lowercase for `L`; below 0x80, adding 0x1f
        // sets a byte's high bit exactly when it is at least `a`, adding 0x05 when it is past
        // `z`, and no carry crosses into the next byte.
        let y = (if lower { x } else { x | (ONES * 0x20) }) & !HIGH;
        let letters = y.wrapping_add(ONES * 0x1f) & !y.wrapping_add(ONES * 0x05) & !x & HIGH;
        let stop = !letters & HIGH;
        if stop != 0 {
            let end = i + (stop.trailing_zeros() / 8) as usize;
            // The stopping byte is ASCII if its high bit is clear.
            return if stop & stop.wrapping_neg() & x == 0 {
                Ok(end)
            } else {
                Err(end)
            };
        }
        i += 8;
    }
    Err(i)
}

/// Decodes the non-ASCII character starting at `s[i]`. `s` comes from a `&str`, so the sequence
/// is complete and well formed.
#[inline(always)]
fn decode(s: &[u8], i: usize) -> (u32, usize) {
    let b0 = s[i] as u32;
    let cont = |k: usize| (s[i + k] & 0x3f) as u32;
    if b0 < 0xe0 {
        (((b0 & 0x1f) << 6) | cont(1), 2)
    } else if b0 < 0xf0 {
        (((b0 & 0x0f) << 12) | (cont(1) << 6) | cont(2), 3)
    } else {
        (
            ((b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3),
            4,
        )
    }
}
