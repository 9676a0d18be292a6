//! Splitting a piece before the merge at character boundaries that no token can cross.
//!
//! Every part the merge ever creates is a token of the vocabulary. If no token, placed over the
//! piece's bytes, would contain both the byte before a boundary and the byte after it, no part
//! ever spans that boundary, and the two sides merge independently: the pair across it never has
//! a rank, so the lowest pair of the whole piece is always the lowest pair of one side, and each
//! side sees exactly the merges it would see alone. Merging the sides separately therefore gives
//! the same parts.
//!
//! Only boundaries before the first byte of a 3-byte character (`0xE0..=0xEF`: CJK, kana,
//! Hangul, ...) are tried. A token `T` crosses such a boundary, placed with `T[k]` on it, only if
//! `T[k]` is such a byte; the table records every such `(T[k-a..k], T[k..k+b])` with
//! `a = min(k, 3)`, `b = min(len - k, 3)`, and a boundary is split only if none of its (up to
//! nine) windows is recorded. The table is a bitmap of hashed windows: a collision only keeps a
//! boundary that could have been split.
//!
//! Why: a CJK piece is a whole clause (30-90 bytes), and the quadratic merge over it was most of
//! the counting time. cl100k has ~900 such windows and o200k ~15K, so nearly every boundary
//! between two CJK characters splits (cl100k ~99%, o200k ~97% on random CJK text, ~84% / ~66% on
//! the real-text sample) and the merges run on a character or two. 400 KB of distinct CJK
//! clauses: ~14.3 -> ~9.1 ms (cl100k), ~18.5 -> ~9.7 ms (o200k). Boundaries before 4-byte
//! characters are not tried: random code points (mostly 4-byte) got 2x slower from the probes
//! and the extra per-segment work, for no gain on real text.

use std::borrow::Cow;

use rustc_hash::FxHashMap;

/// Bits of the bitmap per recorded window (rounded up to a power of two): ~1.5% of probes of an
/// absent window collide (128 KB for o200k, 8 KB for cl100k). 16 bits made ~40% of o200k's CJK
/// boundaries unsplittable and lost most of the gain.
const BITS_PER_WINDOW: usize = 64;

/// Pieces up to this many bytes are merged whole.
const MIN_LEN: usize = 16;

pub(crate) struct Crossings {
    /// Borrowed from the tables built with the crate (see `frozen`), owned when built at run time.
    bits: Cow<'static, [u64]>,
    shift: u32,
    /// Per 3-byte character, by code point, an entry and a filter word (1 MB). The entry's high
    /// 32 bits are the character's window sizes, the low 32 its `vocab` entry (its rank, or the
    /// count of the parts it merges into), set by the vocabulary (see `build`).
    ///
    /// Window sizes: bit `3 * (a - 1) + (b - 1)` of the low half is set if some recorded window
    /// of `a` bytes before and `b` after has the character's last `a` bytes on its left, and of
    /// the high half if it has the character's first `b` bytes on its right. Between two such
    /// characters only the windows whose bit is set in both can be recorded, so only those are
    /// probed: on random CJK text ~0.25 probes per boundary instead of 9 for cl100k, ~1.3 for
    /// o200k (the probes were ~10% of the time on never-seen CJK).
    ///
    /// Why one table: a CJK piece's characters each needed a load from the window-size table
    /// for the boundary on either side and another from the vocabulary's per-character table
    /// once split off; one 8-byte entry loaded once per character (`for_each_segment3`) serves
    /// all three, at the memory of the two tables it replaces. Never-seen CJK text
    /// (`count_stdin --bench`, 4 KB texts in turn, 3 alternating runs, medians): o200k ~37.0 ->
    /// ~28.3 us, cl100k ~26.8 -> ~20.0 us.
    ///
    /// The filter word follows the entry (so `2 << 16` words in all). It is exact or nearly so
    /// for the two kinds of window that made nearly all probes, so that most boundaries need
    /// none. Its low half has bit `partner(y)` set for every character `y` that
    /// follows this one, both whole, in a recorded window (3 bytes before, 3 after); its high
    /// half bit `(b & 0x3f) >> 1` for every byte `b` that is the one byte before this character's
    /// first bytes in a recorded window (1 byte before). On random CJK text (o200k) the sizes
    /// alone left ~1.3 probes per boundary, ~0.5 of them of one byte before and ~0.75 of two
    /// whole characters, nearly all absent; with the filter words ~0.15 remain.
    chars: Cow<'static, [u64]>,
}

/// The bit of the character whose bytes in order are `right` in the low half of the filter word
/// of a character before it (see `Crossings::chars`).
#[inline(always)]
fn partner(right: u32) -> u32 {
    (u64::from(right).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 59) as u32
}

/// The bit of the byte before a boundary (the low byte of `left`, as `before` gives it) in the
/// high half of the filter word of the character after it.
#[inline(always)]
fn byte_before(left: u32) -> u32 {
    32 + ((left & 0x3f) >> 1)
}

/// A character's entry and filter word (see `Crossings::chars`).
#[derive(Clone, Copy)]
struct Char3 {
    entry: u64,
    filter: u64,
}

impl Char3 {
    /// For a character without an entry: every window probed. An entry is never all ones (its
    /// low half would mark a character of 2^31 - 1 parts).
    const UNKNOWN: Char3 = Char3 {
        entry: u64::MAX,
        filter: u64::MAX,
    };
}

/// Most characters of a piece that `for_each_segment3` takes (longer ones take the general
/// path): a piece of `bpe::SMALL` bytes.
const MAX_CHARS3: usize = super::bpe::SMALL / 3;

/// The window sizes half of a `Crossings::chars` entry.
#[inline(always)]
fn sizes_of(entry: u64) -> u32 {
    (entry >> 32) as u32
}

/// The code point of the 3-byte character `c`.
#[inline(always)]
fn cp3(c: &[u8]) -> usize {
    (usize::from(c[0] & 0x0f) << 12) | (usize::from(c[1] & 0x3f) << 6) | usize::from(c[2] & 0x3f)
}

/// The window of `a` bytes before a boundary and `b` bytes after it as one integer, from `left`
/// (the bytes before the boundary, nearest first, one per byte of a `u32`) and `right` (the
/// bytes after it, in order).
#[inline(always)]
fn key(left: u32, a: usize, right: u32, b: usize) -> u64 {
    let mask = |n: usize| (1u64 << (8 * n)) - 1;
    ((a as u64) << 52)
        | ((b as u64) << 48)
        | ((u64::from(left) & mask(a)) << 24)
        | (u64::from(right) & mask(b))
}

/// The bitmap position of `key` in a bitmap of `1 << (64 - shift)` bits.
#[inline(always)]
fn index(shift: u32, key: u64) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> shift) as usize
}

/// The first byte of a 3-byte character (U+0800-U+FFFF: CJK, kana, Hangul, ...).
#[inline(always)]
fn is_lead3(b: u8) -> bool {
    b & 0xF0 == 0xE0
}

/// Up to 3 bytes of `s` before `j`, nearest first, and the count taken.
#[inline(always)]
fn before(s: &[u8], j: usize) -> (u32, usize) {
    let a = j.min(3);
    let mut v = 0;
    for i in 0..a {
        v |= u32::from(s[j - 1 - i]) << (8 * i);
    }
    (v, a)
}

/// Up to 3 bytes of `s` from `j`, in order, and the count taken.
#[inline(always)]
fn after(s: &[u8], j: usize) -> (u32, usize) {
    let b = (s.len() - j).min(3);
    let mut v = 0;
    for i in 0..b {
        v |= u32::from(s[j + i]) << (8 * i);
    }
    (v, b)
}

/// Whether `for_each_segment` tries to split `piece`. If it does and gives more than one
/// segment, `piece` is not a token: a token laid over the whole piece would cross every one of
/// its boundaries.
#[inline(always)]
pub(crate) fn worth_splitting(piece: &[u8]) -> bool {
    piece.len() > MIN_LEN && piece.iter().copied().max().unwrap_or(0) >= 0xE0
}

impl Crossings {
    /// Records the windows of every token in `tokens`; `entry(cp)` is the low half of the
    /// entry of the 3-byte character `cp`.
    pub(crate) fn build<'a>(
        tokens: impl Iterator<Item = &'a [u8]>,
        entry: impl Fn(usize) -> u32,
    ) -> Crossings {
        let mut keys: Vec<u64> = tokens
            .flat_map(|t| {
                (1..t.len()).filter(move |&k| is_lead3(t[k])).map(move |k| {
                    let (left, a) = before(t, k);
                    let (right, b) = after(t, k);
                    key(left, a, right, b)
                })
            })
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let size = (keys.len() * BITS_PER_WINDOW).next_power_of_two().max(64);
        let shift = 64 - size.trailing_zeros();
        let mut bits = vec![0u64; size / 64];
        // Window sides by (length, bytes as in `key`): the window sizes they occur with.
        let mut lefts: FxHashMap<(usize, u32), u32> = FxHashMap::default();
        let mut rights: FxHashMap<(usize, u32), u32> = FxHashMap::default();
        // The filter word halves (see `Crossings::chars`): by a whole character on the left, and
        // by the right side (length, bytes) of a window with one byte on the left.
        let mut partners: FxHashMap<u32, u64> = FxHashMap::default();
        let mut bytes_before: FxHashMap<(usize, u32), u64> = FxHashMap::default();
        for &k in &keys {
            let i = index(shift, k);
            bits[i / 64] |= 1 << (i % 64);
            let a = (k >> 52) as usize & 0xf;
            let b = (k >> 48) as usize & 0xf;
            let bit = 1 << (3 * (a - 1) + (b - 1));
            let (left, right) = ((k >> 24) as u32 & 0xff_ffff, k as u32 & 0xff_ffff);
            *lefts.entry((a, left)).or_default() |= bit;
            *rights.entry((b, right)).or_default() |= bit;
            if a == 3 && b == 3 {
                *partners.entry(left).or_default() |= 1 << partner(right);
            }
            if a == 1 {
                *bytes_before.entry((b, right)).or_default() |= 1 << byte_before(left);
            }
        }
        let chars = (0..1usize << 16)
            .map(|cp| {
                let c = [
                    0xE0 | (cp >> 12) as u8,
                    0x80 | ((cp >> 6) & 0x3f) as u8,
                    0x80 | (cp & 0x3f) as u8,
                ];
                let (left, _) = before(&c, 3);
                let (right, _) = after(&c, 0);
                let mut sizes = 0;
                let mut filter = partners.get(&left).copied().unwrap_or(0);
                for n in 1..=3 {
                    let mask = (1u32 << (8 * n)) - 1;
                    sizes |= lefts.get(&(n, left & mask)).copied().unwrap_or(0);
                    sizes |= rights.get(&(n, right & mask)).copied().unwrap_or(0) << 16;
                    filter |= bytes_before.get(&(n, right & mask)).copied().unwrap_or(0);
                }
                [(u64::from(sizes) << 32) | u64::from(entry(cp)), filter]
            })
            .collect::<Vec<[u64; 2]>>()
            .concat();
        Crossings {
            bits: Cow::Owned(bits),
            shift,
            chars: Cow::Owned(chars),
        }
    }

    /// The bitmap and the per-character table, to be stored and handed back to `from_parts`.
    #[allow(dead_code)] // used by build.rs and the tests
    pub(crate) fn parts(&self) -> (&[u64], &[u64]) {
        (&self.bits, &self.chars)
    }

    /// A table from what `parts` gave; `None` unless the bitmap is a power of two of at least 64
    /// bits and there is an entry per 3-byte character.
    pub(crate) fn from_parts(
        bits: Cow<'static, [u64]>,
        chars: Cow<'static, [u64]>,
    ) -> Option<Crossings> {
        let size = bits.len().checked_mul(64)?;
        if !size.is_power_of_two() || chars.len() != 2 << 16 {
            return None;
        }
        Some(Crossings {
            shift: 64 - size.trailing_zeros(),
            bits,
            chars,
        })
    }

    /// The low half of the entry of the 3-byte character `cp` (below `1 << 16`).
    #[inline(always)]
    pub(crate) fn char_entry(&self, cp: usize) -> Option<u32> {
        self.chars.get(2 * cp).map(|&e| e as u32)
    }

    /// The entry and filter word of the 3-byte character `c` (`UNKNOWN` if it has none).
    #[inline(always)]
    fn char3(&self, c: &[u8]) -> Char3 {
        let at = 2 * cp3(c);
        match self.chars.get(at..at + 2) {
            Some(&[entry, filter]) => Char3 { entry, filter },
            _ => Char3::UNKNOWN,
        }
    }

    #[inline(always)]
    fn index(&self, key: u64) -> usize {
        index(self.shift, key)
    }

    #[inline(always)]
    fn has(&self, key: u64) -> bool {
        let i = self.index(key);
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    /// Whether some token might cross the boundary before `piece[j]` (`0 < j < piece.len()`).
    #[inline(always)]
    fn may_cross(&self, piece: &[u8], j: usize) -> bool {
        let (left, a_max) = before(piece, j);
        let (right, b_max) = after(piece, j);
        // Both sides whole 3-byte characters (checked in full: `piece` need not be UTF-8).
        if let (
            Some(x @ [0xE0..=0xEF, 0x80..=0xBF, 0x80..=0xBF]),
            Some(y @ [0xE0..=0xEF, 0x80..=0xBF, 0x80..=0xBF]),
        ) = (piece.get(j.wrapping_sub(3)..j), piece.get(j..j + 3))
        {
            return self.may_cross3(left, right, self.char3(x), self.char3(y));
        }
        let mut hit = false;
        for a in 1..=a_max {
            for b in 1..=b_max {
                hit |= self.has(key(left, a, right, b));
            }
        }
        hit
    }

    /// Whether some token might cross the boundary between the 3-byte characters `x` and `y`;
    /// `left` and `right` as `before` and `after` give them.
    #[inline(always)]
    fn may_cross3(&self, left: u32, right: u32, x: Char3, y: Char3) -> bool {
        let mut sizes = sizes_of(x.entry) & (sizes_of(y.entry) >> 16) & 0x1ff;
        // The filter words drop the window of two whole characters (bit 8) and those of one
        // byte before (bits 0-2) where no recorded window can match.
        let whole = (x.filter >> partner(right)) as u32 & 1;
        let one_before = (y.filter >> byte_before(left)) as u32 & 1;
        sizes &= !((1 - whole) << 8) & !((1 - one_before) * 0b111);
        while sizes != 0 {
            let bit = sizes.trailing_zeros() as usize;
            if self.has(key(left, bit / 3 + 1, right, bit % 3 + 1)) {
                return true;
            }
            sizes &= sizes - 1;
        }
        false
    }

    /// `for_each_segment` for a piece of more than `MIN_LEN` bytes and at most `MAX_CHARS3`
    /// whole 3-byte characters (a CJK clause with its leading punctuation), which also hands
    /// `segment` the low half of the entry of a segment that is one character (`None` for
    /// longer segments). Returns `false`, having called nothing, for any other piece.
    ///
    /// Why: it loads each character's entry once, for both of its boundaries and its count,
    /// and steps by characters rather than bytes (figures at `Crossings::chars`).
    #[inline(always)]
    pub(crate) fn for_each_segment3(
        &self,
        piece: &[u8],
        mut segment: impl FnMut(&[u8], Option<u32>),
    ) -> bool {
        let n = piece.len() / 3;
        if piece.len() % 3 != 0 || n > MAX_CHARS3 || piece.len() <= MIN_LEN {
            return false;
        }
        let mut entries = [Char3::UNKNOWN; MAX_CHARS3];
        for (e, c) in entries.iter_mut().zip(piece.chunks_exact(3)) {
            match c {
                [0xE0..=0xEF, 0x80..=0xBF, 0x80..=0xBF] => *e = self.char3(c),
                _ => return false,
            }
        }
        // The entry handed with the segment of characters `from..to`.
        let entry = |from: usize, to: usize| {
            let e = entries[from].entry;
            (to - from == 1 && e != u64::MAX).then_some(e as u32)
        };
        let mut start = 0;
        for k in 1..n {
            let j = 3 * k;
            // What `before` and `after` give at `j`, written out for three bytes each side: their
            // loops over a length cost ~3% of never-seen CJK text here (o200k, `count_stdin
            // --bench`, 3 alternating runs).
            let left = u32::from(piece[j - 1])
                | (u32::from(piece[j - 2]) << 8)
                | (u32::from(piece[j - 3]) << 16);
            let right = u32::from(piece[j])
                | (u32::from(piece[j + 1]) << 8)
                | (u32::from(piece[j + 2]) << 16);
            if !self.may_cross3(left, right, entries[k - 1], entries[k]) {
                segment(&piece[3 * start..j], entry(start, k));
                start = k;
            }
        }
        segment(&piece[3 * start..], entry(start, n));
        true
    }

    /// Calls `segment` with consecutive slices of `piece` that together are `piece`, split at the
    /// boundaries no token crosses.
    #[inline(always)]
    pub(crate) fn for_each_segment(&self, piece: &[u8], mut segment: impl FnMut(&[u8])) {
        // Short pieces merge about as fast as their boundaries are checked. Most other pieces
        // have no such character; the maximum vectorizes, the loop below does not.
        if !worth_splitting(piece) {
            segment(piece);
            return;
        }
        let mut start = 0;
        for j in 1..piece.len() {
            if is_lead3(piece[j]) && !self.may_cross(piece, j) {
                segment(&piece[start..j]);
                start = j;
            }
        }
        segment(&piece[start..]);
    }
}
