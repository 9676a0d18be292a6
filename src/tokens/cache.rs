//! A small per-thread memo of the token counts of merged pieces.
//!
//! Pieces that are not a single token need a merge, which for CJK (a piece is a whole clause of
//! 30-90 bytes, merged about twice per character) costs ~0.5-1 us, nearly all of the counting
//! time. The same pieces come back across calls whenever a conversation is counted again turn
//! after turn, as `token_counter` callers do. Each thread keeps a direct-mapped table of
//! `ENTRIES` slots holding the piece bytes themselves, compared in full before a count is used,
//! so a hit is exact; memory is fixed (`ENTRIES * size_of::<Entry>()`, ~120 KB per thread that
//! counts) and a new piece simply replaces the one in its slot.
//!
//! Merged pieces of 2-8 bytes (short English words that are not tokens) have a table of their
//! own, `count_short`: 4,096 slots of 16 bytes (64 KB per thread that counts), each a piece's
//! head (its bytes) with its length and count. Segments of 2-8 bytes of a split CJK piece
//! (`split`; two characters that a token crosses) share it: a segment is counted as a piece
//! of the same bytes would be.

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};

use super::bpe::SMALL;

/// Slots per thread (a power of two).
const ENTRIES: usize = 1024;

/// Pieces shorter than this are not cached: merging them costs about as much as hashing and
/// comparing them, and most of them (random code points, rare short words) do not repeat.
pub(crate) const MIN_LEN: usize = 9;

#[derive(Clone, Copy)]
struct Entry {
    /// Which `Encoding` the count belongs to (0: empty slot).
    owner: u32,
    len: u8,
    count: u8,
    bytes: [u8; SMALL],
}

const EMPTY: Entry = Entry {
    owner: 0,
    len: 0,
    count: 0,
    bytes: [0; SMALL],
};

thread_local! {
    static TABLE: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    static SHORT: RefCell<Vec<ShortEntry>> = const { RefCell::new(Vec::new()) };
}

/// Longest piece kept in the table of short pieces: up to 8 bytes, a piece is its `vocab::head`
/// and its length.
pub(crate) const SHORT_MAX: usize = 8;

// `count_any` hands every piece of 2 to `SMALL` bytes to one table or the other.
const _: () = assert!(MIN_LEN == SHORT_MAX + 1);

/// Slots of the table of short pieces per thread (a power of two): 64 KB.
const SHORT_ENTRIES: usize = 4096;

/// A merged piece of at most `SHORT_MAX` bytes: its bytes as `vocab::head` gives them, and
/// `owner << 16 | len << 8 | count` (0: empty slot, since `owner` is never 0).
#[derive(Clone, Copy, Default)]
struct ShortEntry {
    head: u64,
    tag: u64,
}

/// A distinct nonzero id for every `Encoding`, so that counts of one vocabulary are never
/// returned for another (two encodings may share a name but not their tokens, in tests).
pub(crate) fn next_owner() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    // Wrapping to 0 after 4 billion loaded encodings would only make the cache miss.
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The count of `piece` (at least 2 bytes, whose `vocab::head` is `head`) under `owner`: from the
/// table of short pieces up to `SHORT_MAX` bytes, from the table of longer ones up to `SMALL`,
/// and from `count` alone beyond (such pieces are not kept).
#[inline(always)]
pub(crate) fn count_any(
    owner: u32,
    piece: &[u8],
    head: u64,
    count: impl FnOnce() -> usize,
) -> usize {
    if piece.len() <= SHORT_MAX {
        count_short(owner, head, piece.len(), count)
    } else if piece.len() <= SMALL {
        self::count(owner, piece, count)
    } else {
        count()
    }
}

/// The count of `piece` (`MIN_LEN..=SMALL` bytes) under `owner`, from the cache or from
/// `count` (whose result is then stored).
#[inline]
pub(crate) fn count(owner: u32, piece: &[u8], count: impl FnOnce() -> usize) -> usize {
    debug_assert!((MIN_LEN..=SMALL).contains(&piece.len()));
    let hash = foldhash::fast::FixedState::with_seed(u64::from(owner)).hash_one(piece);
    let slot = (hash >> 54) as usize & (ENTRIES - 1);
    let hit = TABLE.with_borrow(|table| {
        let e = table.get(slot)?;
        (e.owner == owner && usize::from(e.len) == piece.len() && &e.bytes[..piece.len()] == piece)
            .then_some(usize::from(e.count))
    });
    if let Some(n) = hit {
        return n;
    }
    let n = count();
    TABLE.with_borrow_mut(|table| {
        if table.is_empty() {
            table.resize(ENTRIES, EMPTY);
        }
        let e = &mut table[slot];
        e.owner = owner;
        e.len = piece.len() as u8;
        // A piece of at most `SMALL` bytes has at most `SMALL` tokens.
        e.count = n as u8;
        e.bytes[..piece.len()].copy_from_slice(piece);
    });
    n
}

/// The count of the piece of `len` (`2..=SHORT_MAX`) bytes whose `vocab::head` is `head`, under
/// `owner`, from the table of short pieces or from `count` (whose result is then stored).
///
/// Why: English has many short words that are not tokens (" Python's", " ints"), and their merge
/// was ~19% of the time of 100 KB of prose: its pair-table lookups miss the caches on text with
/// many different words. A head and a length are the whole piece, so a slot is 16 bytes and a
/// lookup one multiply and one compare.
#[inline]
pub(crate) fn count_short(
    owner: u32,
    head: u64,
    len: usize,
    count: impl FnOnce() -> usize,
) -> usize {
    debug_assert!((2..=SHORT_MAX).contains(&len));
    let key = (u64::from(owner) << 16) | ((len as u64) << 8);
    let slot =
        ((head ^ key).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52) as usize & (SHORT_ENTRIES - 1);
    let hit = SHORT.with_borrow(|table| {
        let e = table.get(slot)?;
        (e.head == head && e.tag >> 8 == key >> 8).then_some((e.tag & 0xff) as usize)
    });
    if let Some(n) = hit {
        return n;
    }
    let n = count();
    SHORT.with_borrow_mut(|table| {
        if table.is_empty() {
            table.resize(SHORT_ENTRIES, ShortEntry::default());
        }
        // A piece of at most `SHORT_MAX` bytes has at most `SHORT_MAX` tokens.
        table[slot] = ShortEntry {
            head,
            tag: key | n as u64,
        };
    });
    n
}
