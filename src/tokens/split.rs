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

/// Bits of the bitmap per recorded window (rounded up to a power of two): ~1.5% of probes of an
/// absent window collide (128 KB for o200k, 8 KB for cl100k). 16 bits made ~40% of o200k's CJK
/// boundaries unsplittable and lost most of the gain.
const BITS_PER_WINDOW: usize = 64;

/// Pieces up to this many bytes are merged whole.
const MIN_LEN: usize = 16;

pub(crate) struct Crossings {
    bits: Vec<u64>,
    shift: u32,
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
    /// Records the windows of every token in `tokens`.
    pub(crate) fn build<'a>(tokens: impl Iterator<Item = &'a [u8]>) -> Crossings {
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
        let mut map = Crossings {
            bits: vec![0; size / 64],
            shift: 64 - size.trailing_zeros(),
        };
        for k in keys {
            let i = map.index(k);
            map.bits[i / 64] |= 1 << (i % 64);
        }
        map
    }

    #[inline(always)]
    fn index(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
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
        let mut hit = false;
        for a in 1..=a_max {
            for b in 1..=b_max {
                hit |= self.has(key(left, a, right, b));
            }
        }
        hit
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
