//! Byte-pair merging of one piece that is not itself a token.
//!
//! Both versions apply tiktoken's rule: repeatedly merge the adjacent pair whose concatenation
//! has the lowest rank, the leftmost pair on ties, until no adjacent pair is a token. They work on
//! token ids: after the first round (byte pairs, from an array), whether two adjacent parts merge
//! is one lookup of `(left id, right id)` in the pair table (`RankMap::pair`, see `vocab` for why
//! that table gives exactly tiktoken's answer). They report the resulting parts as
//! `(start, end, id)` through a callback.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use super::vocab::{RankMap, NO_RANK};

/// Pieces up to this many bytes use the quadratic scan (no allocation, tiny constant); longer
/// ones the heap (a 1 MB run of one letter is a single piece in cl100k/o200k).
pub(crate) const SMALL: usize = 96;
// Part starts of small pieces are stored as bytes.
const _: () = assert!(SMALL < 256);

/// Calls `part(start, end, id)` for every final part of `piece` (at least 2 bytes long).
#[inline]
pub(crate) fn merge<F: FnMut(usize, usize, u32)>(map: &RankMap, piece: &[u8], part: F) {
    if piece.len() <= SMALL {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `merge_small_avx2` only requires AVX2, which was just detected.
            unsafe { merge_small_avx2(map, piece, part) };
            return;
        }
        merge_small(map, piece, part);
    } else {
        merge_large(map, piece, part);
    }
}

/// `merge_small` compiled for AVX2, chosen at run time: the minimum search over the keys is
/// most of the time on CJK (pieces of 30-90 bytes that merge about twice per character), and
/// 8-lane `vpminsd` instead of SSE2's emulated 4-lane minimum measured ~11% faster there (o200k
/// multilingual and random code points ~7%). The wheel targets baseline x86-64, so this cannot
/// be a compile-time choice.
///
/// # Safety
///
/// The CPU must support AVX2. (An `unsafe fn` rather than a safe `#[target_feature]` one, which
/// needs Rust 1.86.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn merge_small_avx2<F: FnMut(usize, usize, u32)>(map: &RankMap, piece: &[u8], part: F) {
    merge_small(map, piece, part)
}

/// Quadratic scan over fixed-size arrays indexed by the byte offset of each part's start. Each
/// candidate pair is one key, `rank << 7 | start`, so a single minimum search (which
/// vectorizes) finds the lowest rank and, among equal ranks, the leftmost pair. Keys are `i32`
/// (they are below `2^28`): SSE2 has a signed 32-bit compare but no unsigned one, and the
/// unsigned minimum cost two extra XORs per vector (~4% on CJK). A part that has
/// been merged into its left neighbour keeps `NO_KEY`, so merging moves no memory.
#[inline(always)]
pub(super) fn merge_small<F: FnMut(usize, usize, u32)>(map: &RankMap, piece: &[u8], part: F) {
    // Short pieces get short arrays: filling four 96-entry arrays costs about as much as
    // merging a 4-byte piece (random 4-byte characters, split CJK segments: ~2x).
    if piece.len() <= SHORT {
        merge_small_in::<SHORT, F>(map, piece, part);
    } else {
        merge_small_in::<SMALL, F>(map, piece, part);
    }
}

/// Pieces up to this many bytes use `merge_small` with arrays of this size.
const SHORT: usize = 16;

#[inline(always)]
fn merge_small_in<const CAP: usize, F: FnMut(usize, usize, u32)>(
    map: &RankMap,
    piece: &[u8],
    mut part: F,
) {
    const NO_KEY: i32 = i32::MAX;
    let n = piece.len();
    debug_assert!((2..=CAP).contains(&n) && CAP <= SMALL);
    let key = |rank: u32, start: usize| {
        if rank == NO_RANK {
            NO_KEY
        } else {
            ((rank << START_BITS) | start as u32) as i32
        }
    };
    // For a live part starting at byte i: next[i] is where the next part starts (n at the end),
    // prev[i] where the previous one starts, ids[i] its token, keys[i] the key of it merged with
    // the next part (NO_KEY if none, or if i is not a part start).
    let mut next = [0u8; CAP];
    let mut prev = [0u8; CAP];
    let mut ids = [0u32; CAP];
    let mut keys = [NO_KEY; CAP];
    for i in 0..n {
        next[i] = (i + 1) as u8;
        prev[i] = i.wrapping_sub(1) as u8;
        ids[i] = map.byte(piece[i]);
    }
    for i in 0..n - 1 {
        keys[i] = key(map.rank2(piece[i], piece[i + 1]), i);
    }
    let live = &mut keys[..n - 1];
    loop {
        let best = live.iter().copied().min().unwrap_or(NO_KEY);
        if best == NO_KEY {
            break;
        }
        let at = (best as u32 & START_MASK) as usize;
        let rank = best as u32 >> START_BITS;
        // Merge the part at `at` with the next one, whose token is `rank`.
        let t = next[at] as usize;
        let e = next[t] as usize;
        ids[at] = rank;
        next[at] = e as u8;
        if t < n - 1 {
            live[t] = NO_KEY;
        }
        if e < n {
            prev[e] = at as u8;
            live[at] = key(map.pair(rank, ids[e]), at);
        } else {
            live[at] = NO_KEY;
        }
        if at > 0 {
            let p = prev[at] as usize;
            live[p] = key(map.pair(ids[p], rank), p);
        }
    }
    let mut i = 0;
    while i < n {
        let j = next[i] as usize;
        part(i, j, ids[i]);
        i = j;
    }
}

/// Bits of a small piece's part start in a `merge_small` key; ranks take the other 25 (they are
/// below `2^21`, see `vocab`).
const START_BITS: u32 = 7;
const START_MASK: u32 = (1 << START_BITS) - 1;
const _: () = assert!(SMALL <= 1 << START_BITS);

/// O(n log n) at worst: a linked list of parts and a priority queue of candidate pairs keyed
/// `(rank, start)`, exactly tiktoken's choice of lowest rank, leftmost first. Entries are never
/// updated in place; a popped entry is used only if the part at `start` is alive and its current
/// pair still has that rank. That identifies the pair: ranks are unique, so the rank fixes the
/// pair's byte length.
pub(super) fn merge_large<F: FnMut(usize, usize, u32)>(map: &RankMap, piece: &[u8], part: F) {
    if piece.len() < u32::MAX as usize {
        merge_heap::<u32, _>(map, piece, part);
    } else {
        merge_heap::<usize, _>(map, piece, part);
    }
}

/// Part positions: `u32` halves the memory of the linked list of a large piece.
trait Pos: Copy + Ord {
    fn from(i: usize) -> Self;
    fn get(self) -> usize;
}

impl Pos for u32 {
    #[inline(always)]
    fn from(i: usize) -> u32 {
        i as u32
    }
    #[inline(always)]
    fn get(self) -> usize {
        self as usize
    }
}

impl Pos for usize {
    fn from(i: usize) -> usize {
        i
    }
    fn get(self) -> usize {
        self
    }
}

/// One byte position of a large piece; the fields are only meaningful at part starts. Keeping
/// them together means one cache line per part touched, which matters once a piece outgrows
/// the caches.
#[derive(Clone, Copy)]
struct Node<P> {
    /// Start of the next part (the piece length at the end; 0 once this is no longer a part
    /// start, which is never a valid `next`).
    next: P,
    /// Start of the previous part.
    prev: P,
    /// Token of the part.
    id: u32,
    /// Rank of the part merged with the next one.
    rank: u32,
}

/// Candidate pairs of a large piece by `(rank, start)`, lowest first. One bucket per distinct
/// rank: starts pushed in increasing order (the usual case: a first round over the piece, then
/// merges moving left to right) go to a sorted run and cost O(1); any other start goes to the
/// bucket's small heap. A heap over the distinct ranks picks the bucket.
struct RankQueue<P> {
    index: FxHashMap<u32, u32>,
    buckets: Vec<Bucket<P>>,
    /// `rank << 32 | bucket` of every bucket that may hold entries.
    ranks: BinaryHeap<Reverse<u64>>,
    /// The bucket of the last rank pushed (runs of one rank are common).
    last: (u32, u32),
}

struct Bucket<P> {
    run: Vec<P>,
    head: usize,
    spill: BinaryHeap<Reverse<P>>,
    queued: bool,
}

impl<P: Pos> RankQueue<P> {
    fn new() -> Self {
        RankQueue {
            index: FxHashMap::default(),
            buckets: Vec::new(),
            ranks: BinaryHeap::new(),
            last: (NO_RANK, 0),
        }
    }

    #[inline(always)]
    fn push(&mut self, rank: u32, start: P) {
        let b = if self.last.0 == rank {
            self.last.1
        } else {
            let next = self.buckets.len() as u32;
            let b = *self.index.entry(rank).or_insert(next);
            if b == next {
                self.buckets.push(Bucket {
                    run: Vec::new(),
                    head: 0,
                    spill: BinaryHeap::new(),
                    queued: false,
                });
            }
            self.last = (rank, b);
            b
        };
        let bucket = &mut self.buckets[b as usize];
        if bucket.head == bucket.run.len() {
            bucket.run.clear();
            bucket.head = 0;
        }
        if bucket.run.last().is_none_or(|&l| l < start) {
            bucket.run.push(start);
        } else {
            bucket.spill.push(Reverse(start));
        }
        if !bucket.queued {
            bucket.queued = true;
            self.ranks
                .push(Reverse((u64::from(rank) << 32) | u64::from(b)));
        }
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<(u32, P)> {
        loop {
            let Reverse(top) = *self.ranks.peek()?;
            let rank = (top >> 32) as u32;
            let bucket = &mut self.buckets[top as u32 as usize];
            let from_run = bucket.run.get(bucket.head).copied();
            let from_spill = bucket.spill.peek().map(|r| r.0);
            match (from_run, from_spill) {
                (Some(a), Some(c)) if c < a => {
                    bucket.spill.pop();
                    return Some((rank, c));
                }
                (Some(a), _) => {
                    bucket.head += 1;
                    return Some((rank, a));
                }
                (None, Some(c)) => {
                    bucket.spill.pop();
                    return Some((rank, c));
                }
                (None, None) => {
                    bucket.queued = false;
                    bucket.run.clear();
                    bucket.head = 0;
                    self.ranks.pop();
                }
            }
        }
    }
}

#[inline(always)]
fn merge_heap<P: Pos, F: FnMut(usize, usize, u32)>(map: &RankMap, piece: &[u8], mut part: F) {
    let n = piece.len();
    let mut nodes: Vec<Node<P>> = Vec::with_capacity(n);
    let mut queue = RankQueue::new();
    for (i, pair) in piece.windows(2).enumerate() {
        let r = map.rank2(pair[0], pair[1]);
        nodes.push(Node {
            next: P::from(i + 1),
            prev: P::from(i.wrapping_sub(1)),
            id: map.byte(pair[0]),
            rank: r,
        });
        if r != NO_RANK {
            queue.push(r, P::from(i));
        }
    }
    nodes.push(Node {
        next: P::from(n),
        prev: P::from(n.wrapping_sub(2)),
        id: map.byte(piece[n - 1]),
        rank: NO_RANK,
    });
    while let Some((r, s)) = queue.pop() {
        let s = s.get();
        if nodes[s].rank != r || nodes[s].next.get() == 0 {
            continue;
        }
        let t = nodes[s].next.get();
        let e = nodes[t].next.get();
        nodes[t].next = P::from(0);
        nodes[t].rank = NO_RANK;
        let node = &mut nodes[s];
        node.next = P::from(e);
        node.id = r;
        node.rank = NO_RANK;
        if e < n {
            let m = map.pair(r, nodes[e].id);
            nodes[e].prev = P::from(s);
            nodes[s].rank = m;
            if m != NO_RANK {
                queue.push(m, P::from(s));
            }
        }
        if s > 0 {
            let p = nodes[s].prev.get();
            let m = map.pair(nodes[p].id, r);
            nodes[p].rank = m;
            if m != NO_RANK {
                queue.push(m, P::from(p));
            }
        }
    }
    let mut i = 0;
    while i < n {
        let j = nodes[i].next.get();
        part(i, j, nodes[i].id);
        i = j;
    }
}
