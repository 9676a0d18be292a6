//! `.tiktoken` parsing and the byte-string -> rank table.
//!
//! The table is open addressing with linear probing over 16-byte slots. Each slot keeps the first
//! 8 bytes of its token inline, so the common lookup (a token of at most 8 bytes) touches one
//! cache line and never the byte arena; longer tokens compare their tail in the arena.
//!
//! Merges use a second table keyed by token ids, `(left, right) -> merged`, with one entry per
//! multi-byte token `T` that the merge can produce at all, under the pair it is produced from.
//! Why one pair per token is exact: consider any part `P` that tiktoken's merge creates inside a
//! piece. Merges inside `P`'s bytes only ever see pairs inside `P`, and each one was the lowest
//! (leftmost) pair of the whole piece when it happened, so also the lowest among `P`'s own pairs;
//! a pair crossing `P`'s edge that was lower would have been merged instead. So the merges inside
//! `P` are exactly those of merging `P`'s bytes alone, and the last of them is a fixed pair
//! `(A, B)`. Tokens whose bytes, merged alone, stop at two parts are therefore the only ones that
//! can appear, and only from that pair: an adjacent `(A', B')` spelling a token `T` with another
//! split is never the lowest pair, so leaving it out of the table changes nothing. The table is
//! built by merging every token's bytes alone, shortest first, with the entries for shorter
//! tokens (`build_pairs`); a merge of `T`'s bytes never needs an entry of `T`'s length or more
//! except the final one, which is exactly what is being computed.

use std::borrow::Cow;

use base64::Engine;

use super::bpe;
use super::split::Crossings;
use super::TokenError;

/// The "no such token" rank, as in tiktoken (`Rank::MAX`).
pub(crate) const NO_RANK: u32 = u32::MAX;

/// Longest token the table stores (the length lives in 8 bits of a slot). OpenAI's longest
/// token is 128 bytes.
const MAX_TOKEN_LEN: usize = 255;

/// Bits per token id in a pair-table entry: three ids fit in a `u64` (o200k has ~200K tokens).
const ID_BITS: u32 = 21;
const ID_MASK: u64 = (1 << ID_BITS) - 1;
/// Ranks must be below this to be stored in the pair table.
const MAX_RANK: u32 = (1 << ID_BITS) - 1;
/// An empty pair-table slot (real entries have the top bit clear).
const EMPTY: u64 = u64::MAX;

/// `(left id, right id) -> merged id`, open addressing with linear probing; each slot is one
/// `u64`: `left << 42 | right << 21 | merged`.
struct PairTable {
    slots: Cow<'static, [u64]>,
    mask: usize,
    shift: u32,
}

impl PairTable {
    fn with_capacity(n: usize) -> PairTable {
        // Load factor at most 0.5: most lookups during merges miss, and misses end at an empty
        // slot.
        let size = (2 * n).next_power_of_two().max(16);
        PairTable {
            slots: Cow::Owned(vec![EMPTY; size]),
            mask: size - 1,
            shift: 64 - size.trailing_zeros(),
        }
    }

    /// `None` unless the number of slots is a power of two.
    fn from_slots(slots: Cow<'static, [u64]>) -> Option<PairTable> {
        let size = slots.len();
        size.is_power_of_two().then(|| PairTable {
            mask: size - 1,
            shift: 64 - size.trailing_zeros(),
            slots,
        })
    }

    #[inline(always)]
    fn slot(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    #[inline(always)]
    fn get(&self, left: u32, right: u32) -> u32 {
        let key = (u64::from(left) << ID_BITS) | u64::from(right);
        let mut i = self.slot(key);
        loop {
            let s = self.slots[i];
            if s >> ID_BITS == key {
                return (s & ID_MASK) as u32;
            }
            if s == EMPTY {
                return NO_RANK;
            }
            i = (i + 1) & self.mask;
        }
    }

    fn insert(&mut self, left: u32, right: u32, merged: u32) {
        let key = (u64::from(left) << ID_BITS) | u64::from(right);
        let mut i = self.slot(key);
        let slots = self.slots.to_mut();
        while slots[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        slots[i] = (key << ID_BITS) | u64::from(merged);
    }
}

#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
#[repr(C)]
pub(crate) struct Slot {
    /// First (up to) 8 bytes of the token, little endian, zero padded.
    head: u64,
    rank: u32,
    /// `offset << 8 | len` of the token in the arena; 0 marks an empty slot (tokens are never
    /// empty).
    meta: u32,
}

impl Slot {
    /// The slot as stored with the crate: `head`, `rank`, `meta`, little endian (also the
    /// in-memory layout on a little-endian machine, see `frozen`).
    #[allow(dead_code)] // used by build.rs and the tests
    pub(crate) fn to_le_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.head.to_le_bytes());
        out[8..12].copy_from_slice(&self.rank.to_le_bytes());
        out[12..].copy_from_slice(&self.meta.to_le_bytes());
        out
    }

    pub(crate) fn from_le_bytes(b: [u8; 16]) -> Slot {
        let [h0, h1, h2, h3, h4, h5, h6, h7, r0, r1, r2, r3, m0, m1, m2, m3] = b;
        Slot {
            head: u64::from_le_bytes([h0, h1, h2, h3, h4, h5, h6, h7]),
            rank: u32::from_le_bytes([r0, r1, r2, r3]),
            meta: u32::from_le_bytes([m0, m1, m2, m3]),
        }
    }
}

/// The tables of a `RankMap`, as stored with the crate (see `frozen` and `build.rs`) and handed
/// back to `RankMap::from_parts`.
pub(crate) struct Parts<'a> {
    pub(crate) slots: Cow<'a, [Slot]>,
    pub(crate) arena: Cow<'a, [u8]>,
    pub(crate) bytes: Cow<'a, [u32]>,
    pub(crate) pairs: Cow<'a, [u32]>,
    pub(crate) merges: Cow<'a, [u64]>,
    pub(crate) crossing_bits: Cow<'a, [u64]>,
    pub(crate) chars: Cow<'a, [u64]>,
    pub(crate) max_len: usize,
    pub(crate) len: usize,
}

/// The tables are either borrowed from the ones built with the crate (`frozen`: nothing to
/// build or copy at load, and pages a process never touches are never read) or owned, when a
/// `.tiktoken` file is parsed at run time.
pub(crate) struct RankMap {
    slots: Cow<'static, [Slot]>,
    mask: usize,
    arena: Cow<'static, [u8]>,
    /// Rank of every single byte.
    bytes: [u32; 256],
    /// Rank of every 2-byte token, indexed `b0 << 8 | b1` (256 KB): the first round of every
    /// merge looks up all adjacent byte pairs, and an array beats hashing for those.
    pairs: Cow<'static, [u32]>,
    /// Longest token in bytes: longer slices are answered without hashing.
    max_len: usize,
    len: usize,
    merges: PairTable,
    /// Character boundaries that no token crosses (see `split`), with a per-character table
    /// whose entries' low halves are this vocabulary's: per 3-byte character, by code point,
    /// its rank if it is a token, else `CHAR_PARTS | count` of the parts it merges into. Split
    /// CJK pieces are mostly one-character segments, and hashing each into the 4-8 MB rank table
    /// was a cache miss most of the time (~17-21% of never-seen CJK text).
    crossings: Crossings,
}

/// Marks a per-character entry of a character that is not a token; the low bits are its count.
pub(crate) const CHAR_PARTS: u32 = 1 << 31;
const _: () = assert!(MAX_RANK <= CHAR_PARTS);

/// First min(8, len) bytes of `s` as a little-endian integer, zero padded.
#[inline(always)]
pub(crate) fn head(s: &[u8]) -> u64 {
    let n = s.len();
    if n >= 8 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&s[..8]);
        u64::from_le_bytes(b)
    } else if n >= 4 {
        // Two overlapping 4-byte loads: overlapping bytes land on the same bits in both.
        let mut lo = [0u8; 4];
        lo.copy_from_slice(&s[..4]);
        let mut hi = [0u8; 4];
        hi.copy_from_slice(&s[n - 4..n]);
        u64::from(u32::from_le_bytes(lo)) | (u64::from(u32::from_le_bytes(hi)) << ((n - 4) * 8))
    } else if n > 0 {
        u64::from(s[0])
            | (u64::from(s[n / 2]) << ((n / 2) * 8))
            | (u64::from(s[n - 1]) << ((n - 1) * 8))
    } else {
        0
    }
}

/// `head(key)` for a non-empty `key` that starts at `text[start]`: eight bytes loaded from the
/// text and masked to the key's length when the text has them, which spares `head`'s branches
/// on the length (a word's length is what the CPU cannot predict on text it has not seen).
#[inline(always)]
pub(crate) fn head_in(text: &[u8], start: usize, key: &[u8]) -> u64 {
    debug_assert_eq!(text.get(start..start + key.len()), Some(key));
    match text.get(start..).and_then(|rest| rest.first_chunk::<8>()) {
        Some(&chunk) if !key.is_empty() => {
            u64::from_le_bytes(chunk) & (u64::MAX >> (8 * (8 - key.len().min(8))))
        }
        _ => head(key),
    }
}

#[inline(always)]
fn mix(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

const K1: u64 = 0xa076_1d64_78bd_642f;
const K2: u64 = 0xe703_7ed1_a0b4_28db;

#[inline(always)]
fn hash(h8: u64, s: &[u8]) -> u64 {
    let mut h = mix(h8 ^ K1, (s.len() as u64) ^ K2);
    if s.len() > 8 {
        for chunk in s[8..].chunks(8) {
            h = mix(h ^ head(chunk) ^ K1, K2 ^ chunk.len() as u64);
        }
    }
    h
}

impl RankMap {
    fn with_capacity(n: usize) -> RankMap {
        // Load factor between 0.33 and 0.67.
        let size = (n + n / 2).next_power_of_two().max(16);
        RankMap {
            slots: Cow::Owned(vec![Slot::default(); size]),
            mask: size - 1,
            arena: Cow::Owned(Vec::new()),
            bytes: [NO_RANK; 256],
            pairs: Cow::Owned(vec![NO_RANK; 1 << 16]),
            max_len: 0,
            len: 0,
            merges: PairTable::with_capacity(n),
            // Replaced once the tokens are known (`parse`).
            crossings: Crossings::build(std::iter::empty(), |_| CHAR_PARTS | 3),
        }
    }

    /// Whether the large tables are borrowed (from the binary) rather than owned.
    #[cfg(test)]
    pub(crate) fn is_borrowed(&self) -> bool {
        matches!(
            (&self.slots, &self.merges.slots),
            (Cow::Borrowed(_), Cow::Borrowed(_))
        )
    }

    /// The tables, to be stored with the crate (`build.rs`).
    #[allow(dead_code)] // used by build.rs and the tests
    pub(crate) fn parts(&self) -> Parts<'_> {
        let (crossing_bits, chars) = self.crossings.parts();
        Parts {
            slots: Cow::Borrowed(&self.slots),
            arena: Cow::Borrowed(&self.arena),
            bytes: Cow::Borrowed(&self.bytes),
            pairs: Cow::Borrowed(&self.pairs),
            merges: Cow::Borrowed(&self.merges.slots),
            crossing_bits: Cow::Borrowed(crossing_bits),
            chars: Cow::Borrowed(chars),
            max_len: self.max_len,
            len: self.len,
        }
    }

    /// A table from what `parts` gave, checked only for the sizes that indexing relies on (every
    /// other lookup is bounds-checked and cannot panic); `None` if one is wrong.
    pub(crate) fn from_parts(parts: Parts<'static>) -> Option<RankMap> {
        let size = parts.slots.len();
        let ok = size.is_power_of_two()
            && parts.pairs.len() == 1 << 16
            && parts.max_len <= MAX_TOKEN_LEN;
        if !ok {
            return None;
        }
        Some(RankMap {
            slots: parts.slots,
            mask: size - 1,
            arena: parts.arena,
            bytes: parts.bytes.as_ref().try_into().ok()?,
            pairs: parts.pairs,
            max_len: parts.max_len,
            len: parts.len,
            merges: PairTable::from_slots(parts.merges)?,
            crossings: Crossings::from_parts(parts.crossing_bits, parts.chars)?,
        })
    }

    /// Token made by merging the adjacent parts `left` and `right`, or `NO_RANK` if tiktoken's
    /// merge never joins them (see the module notes).
    #[inline(always)]
    pub(crate) fn pair(&self, left: u32, right: u32) -> u32 {
        self.merges.get(left, right)
    }

    /// Rank of `key`, or `NO_RANK`.
    #[inline(always)]
    pub(crate) fn rank(&self, key: &[u8]) -> u32 {
        self.rank_with_head(key, head(key))
    }

    /// Rank of `key`, or `NO_RANK`, given `head(key)`, which `head_in` finds without branching
    /// on the key's length when the key is part of a longer text.
    #[inline(always)]
    pub(crate) fn rank_with_head(&self, key: &[u8], h8: u64) -> u32 {
        let n = key.len();
        if n > self.max_len || n == 0 {
            return NO_RANK;
        }
        let mut i = (hash(h8, key) >> 20) as usize & self.mask;
        loop {
            let slot = &self.slots[i];
            let len = (slot.meta & 0xff) as usize;
            if len == 0 {
                return NO_RANK;
            }
            if len == n && slot.head == h8 {
                if n <= 8 {
                    return slot.rank;
                }
                let off = (slot.meta >> 8) as usize;
                if self.tail_matches(off, key) {
                    return slot.rank;
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Whether the token at `off` in the arena, of `key`'s length (more than 8 bytes) and with
    /// `key`'s first 8 bytes, is `key`.
    ///
    /// Why: up to 16 bytes, the last 8 bytes of both (which overlap the first 8 already
    /// compared) are one `u64` compare; a slice compare was a call to `memcmp`, ~4-5% of the
    /// time of 100 KB of English, where most longer words are 9-16 bytes.
    #[inline(always)]
    fn tail_matches(&self, off: usize, key: &[u8]) -> bool {
        let n = key.len();
        if n <= 16 {
            let last8 = |s: &[u8]| s.last_chunk::<8>().map(|c| u64::from_le_bytes(*c));
            let stored = self.arena.get(off..off + n).and_then(last8);
            stored.is_some() && stored == last8(key)
        } else {
            self.arena.get(off + 8..off + n) == key.get(8..)
        }
    }

    /// The per-character entry of the 3-byte character `c` (a whole UTF-8 sequence
    /// `0xE0..=0xEF`, continuation, continuation).
    #[inline(always)]
    pub(crate) fn char3(&self, c: &[u8; 3]) -> Option<u32> {
        let cp = (usize::from(c[0] & 0x0f) << 12)
            | (usize::from(c[1] & 0x3f) << 6)
            | usize::from(c[2] & 0x3f);
        self.crossings.char_entry(cp)
    }

    pub(crate) fn crossings(&self) -> &Crossings {
        &self.crossings
    }

    /// Rank of a single byte.
    #[inline(always)]
    pub(crate) fn byte(&self, b: u8) -> u32 {
        self.bytes[b as usize]
    }

    /// Rank of the 2-byte string `[a, b]`.
    #[inline(always)]
    pub(crate) fn rank2(&self, a: u8, b: u8) -> u32 {
        self.pairs[(usize::from(a) << 8) | usize::from(b)]
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Inserts a new token; `false` if it is already present.
    fn insert(&mut self, key: &[u8], rank: u32) -> bool {
        let n = key.len();
        let h8 = head(key);
        let off = self.arena.len();
        let mut i = (hash(h8, key) >> 20) as usize & self.mask;
        loop {
            let slot = self.slots[i];
            let len = (slot.meta & 0xff) as usize;
            if len == 0 {
                break;
            }
            if len == n && slot.head == h8 {
                let o = (slot.meta >> 8) as usize;
                if n <= 8 || self.arena.get(o + 8..o + n) == Some(&key[8..]) {
                    return false;
                }
            }
            i = (i + 1) & self.mask;
        }
        if n > 8 {
            self.arena.to_mut().extend_from_slice(key);
        }
        self.slots.to_mut()[i] = Slot {
            head: h8,
            rank,
            meta: ((off as u32) << 8) | n as u32,
        };
        match *key {
            [b] => self.bytes[usize::from(b)] = rank,
            [a, b] => self.pairs.to_mut()[(usize::from(a) << 8) | usize::from(b)] = rank,
            _ => {}
        }
        self.max_len = self.max_len.max(n);
        self.len += 1;
        true
    }
}

/// Fills the pair table: every multi-byte token, shortest first, is merged from its own bytes
/// with the entries for shorter tokens; if that stops at exactly two parts, they are its pair
/// (see the module notes). `tokens` holds `(rank, offset, len)` into `bytes`.
fn build_pairs(map: &mut RankMap, bytes: &[u8], tokens: &[(u32, u32, u8)]) {
    let mut by_len: Vec<Vec<(u32, u32)>> = vec![Vec::new(); MAX_TOKEN_LEN + 1];
    for &(rank, off, len) in tokens {
        by_len[usize::from(len)].push((rank, off));
    }
    for &(rank, off) in &by_len[2] {
        let [a, b] = bytes[off as usize..off as usize + 2] else {
            continue;
        };
        map.merges.insert(map.byte(a), map.byte(b), rank);
    }
    // Tokens of one length only need the entries of shorter ones, so each length group is
    // merged in parallel against the table as it stands, then inserted.
    for (len, group) in by_len.iter().enumerate().skip(3) {
        let map_ref = &*map;
        let found = super::pool::map(group, 512, |&(rank, off)| {
            let token = &bytes[off as usize..off as usize + len];
            let mut parts = 0;
            let mut ends = [0u32; 2];
            bpe::merge(map_ref, token, |_, _, id| {
                if parts < 2 {
                    ends[parts] = id;
                }
                parts += 1;
            });
            (parts == 2).then_some((ends[0], ends[1], rank))
        });
        for (left, right, rank) in found.into_iter().flatten() {
            map.merges.insert(left, right, rank);
        }
    }
}

/// The per-character entries, by code point. A 3-byte character that is not a token merges
/// into 2 parts if either of its byte pairs is a token (the two parts cannot merge further:
/// that would be the whole character), else stays 3 single bytes.
fn build_chars3(map: &RankMap) -> Vec<u32> {
    let mut table = vec![CHAR_PARTS | 3; 1 << 16];
    for (cp, entry) in table.iter_mut().enumerate().skip(0x800) {
        let c = [
            0xE0 | (cp >> 12) as u8,
            0x80 | ((cp >> 6) & 0x3f) as u8,
            0x80 | (cp & 0x3f) as u8,
        ];
        let r = map.rank(&c);
        *entry = if r != NO_RANK {
            r
        } else if map.rank2(c[0], c[1]) != NO_RANK || map.rank2(c[1], c[2]) != NO_RANK {
            CHAR_PARTS | 2
        } else {
            CHAR_PARTS | 3
        };
    }
    table
}

/// Parses a `.tiktoken` file (`base64(token) rank` per line) into a rank table, rejecting
/// anything that would make counting wrong or unsafe: bad base64 or rank, duplicates, missing
/// single bytes, or a token count other than `expected`.
pub(crate) fn parse(
    encoding: &'static str,
    data: &[u8],
    expected: usize,
) -> Result<RankMap, TokenError> {
    let err = |reason: String| TokenError::InvalidVocabulary { encoding, reason };
    let mut map = RankMap::with_capacity(expected);
    let mut ranks = Vec::with_capacity(expected);
    // Every token's bytes, back to back, and `(rank, offset, len)` of each.
    let mut bytes = Vec::with_capacity(expected * 8);
    let mut tokens = Vec::with_capacity(expected);
    for (index, line) in data.split(|&b| b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let line_no = index + 1;
        if map.len() >= expected {
            return Err(err(format!("more than {expected} tokens (line {line_no})")));
        }
        let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
        let (Some(token), Some(rank), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(err(format!("line {line_no}: expected `base64 rank`")));
        };
        let off = bytes.len();
        // `decode_vec` appends, so every token lands in one arena without a copy per line.
        base64::engine::general_purpose::STANDARD
            .decode_vec(token, &mut bytes)
            .map_err(|e| err(format!("line {line_no}: bad base64: {e}")))?;
        let key = &bytes[off..];
        let rank = std::str::from_utf8(rank)
            .ok()
            .and_then(|r| r.parse::<u32>().ok())
            .ok_or_else(|| err(format!("line {line_no}: bad rank")))?;
        if key.is_empty() || key.len() > MAX_TOKEN_LEN {
            return Err(err(format!("line {line_no}: token of {} bytes", key.len())));
        }
        if rank == NO_RANK {
            return Err(err(format!("line {line_no}: rank {rank} is reserved")));
        }
        if rank >= MAX_RANK {
            return Err(err(format!("line {line_no}: rank {rank} is too large")));
        }
        ranks.push(rank);
        if map.arena.len() + key.len() >= 1 << 24 {
            return Err(err("vocabulary too large".to_string()));
        }
        if !map.insert(key, rank) {
            return Err(err(format!("line {line_no}: duplicate token")));
        }
        tokens.push((rank, off as u32, key.len() as u8));
    }
    if map.len() != expected {
        return Err(err(format!("{} tokens, expected {expected}", map.len())));
    }
    // Ranks must be distinct for token ids to decode unambiguously (p50k_base has a gap at
    // 50256, so they need not be contiguous).
    ranks.sort_unstable();
    if let Some(pair) = ranks.windows(2).find(|w| w[0] == w[1]) {
        return Err(err(format!("duplicate rank {}", pair[0])));
    }
    if let Some(b) = map.bytes.iter().position(|&r| r == NO_RANK) {
        return Err(err(format!("no token for the single byte {b:#04x}")));
    }
    build_pairs(&mut map, &bytes, &tokens);
    let chars3 = build_chars3(&map);
    map.crossings = Crossings::build(
        tokens
            .iter()
            .map(|&(_, off, len)| &bytes[off as usize..off as usize + usize::from(len)]),
        |cp| chars3[cp],
    );
    Ok(map)
}
