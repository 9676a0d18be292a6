//! Byte-pair merging of one piece that is not itself a token.
//!
//! Both versions apply tiktoken's rule: repeatedly merge the adjacent pair whose concatenation
//! has the lowest rank, the leftmost pair on ties, until no adjacent pair is a token. They report
//! the resulting parts as byte ranges through a callback, so counting never looks tokens up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::vocab::{RankMap, NO_RANK};

/// Pieces up to this many bytes use the quadratic scan (no allocation, tiny constant); longer
/// ones the heap (a 1 MB run of one letter is a single piece in cl100k/o200k).
pub(crate) const SMALL: usize = 96;
// Part starts of small pieces are stored as bytes.
const _: () = assert!(SMALL < 256);

/// Calls `part(start, end)` for every final part of `piece` (at least 2 bytes long).
#[inline]
pub(crate) fn merge<F: FnMut(usize, usize)>(map: &RankMap, piece: &[u8], part: F) {
    if piece.len() <= SMALL {
        merge_small(map, piece, part);
    } else {
        merge_large(map, piece, part);
    }
}

pub(super) fn merge_small<F: FnMut(usize, usize)>(map: &RankMap, piece: &[u8], mut part: F) {
    let n = piece.len();
    // starts[j] is where part j begins (starts[m] == n); ranks[j] is the rank of parts j and j+1
    // merged.
    let mut starts = [0u8; SMALL + 1];
    let mut ranks = [NO_RANK; SMALL];
    for (j, start) in starts.iter_mut().enumerate().take(n + 1) {
        *start = j as u8;
    }
    for j in 0..n - 1 {
        ranks[j] = map.rank2(piece[j], piece[j + 1]);
    }
    let mut m = n;
    loop {
        // Two passes (minimum, then its first position) vectorize; a single pass tracking both
        // does not, and this scan is the hottest loop for long multi-token pieces such as CJK.
        let live = &ranks[..m - 1];
        let best = live.iter().copied().min().unwrap_or(NO_RANK);
        if best == NO_RANK {
            break;
        }
        let Some(at) = live.iter().position(|&r| r == best) else {
            break;
        };
        // Merge parts `at` and `at + 1`: drop the boundary between them and the pair rank after.
        starts.copy_within(at + 2..m + 1, at + 1);
        if at + 2 < m - 1 {
            ranks.copy_within(at + 2..m - 1, at + 1);
        }
        m -= 1;
        let s = |j: usize| starts[j] as usize;
        ranks[at] = if at + 1 < m {
            map.rank(&piece[s(at)..s(at + 2)])
        } else {
            NO_RANK
        };
        if at > 0 {
            ranks[at - 1] = map.rank(&piece[s(at - 1)..s(at + 1)]);
        }
    }
    for j in 0..m {
        part(starts[j] as usize, starts[j + 1] as usize);
    }
}

/// O(n log n): a linked list of parts and a min-heap of candidate pairs keyed `(rank, start)`,
/// exactly tiktoken's choice of lowest rank, leftmost first. Entries are never updated in place;
/// a popped entry is used only if the part at `start` is alive and its current pair still has that
/// rank. That identifies the pair: ranks are unique, so the rank fixes the pair's byte length.
pub(super) fn merge_large<F: FnMut(usize, usize)>(map: &RankMap, piece: &[u8], part: F) {
    if u32::try_from(piece.len()).is_ok() {
        // Keys packed in a u64 make the heap about twice as fast as tuples.
        merge_heap(
            map,
            piece,
            part,
            |r, s| Reverse((u64::from(r) << 32) | s as u64),
            |Reverse(k)| ((k >> 32) as u32, (k & 0xffff_ffff) as usize),
        );
    } else {
        merge_heap(map, piece, part, |r, s| Reverse((r, s)), |Reverse(k)| k);
    }
}

#[inline(always)]
fn merge_heap<K: Ord, F, P, U>(map: &RankMap, piece: &[u8], mut part: F, pack: P, unpack: U)
where
    F: FnMut(usize, usize),
    P: Fn(u32, usize) -> K,
    U: Fn(K) -> (u32, usize),
{
    const DEAD: usize = 0;
    let n = piece.len();
    // next[i]: start of the part after the part starting at i (n at the end, DEAD if i is no
    // longer a part start; 0 is never a valid `next`). prev[i]: start of the part before.
    // pair[i]: rank of the part at i merged with the next one.
    let mut next: Vec<usize> = (1..=n).collect();
    let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
    let mut pair: Vec<u32> = vec![NO_RANK; n];
    let mut initial = Vec::with_capacity(n);
    for i in 0..n - 1 {
        let r = map.rank2(piece[i], piece[i + 1]);
        pair[i] = r;
        if r != NO_RANK {
            initial.push(pack(r, i));
        }
    }
    // Heapify in O(n) rather than n pushes.
    let mut heap = BinaryHeap::from(initial);
    while let Some(key) = heap.pop() {
        let (r, s) = unpack(key);
        if pair[s] != r || next[s] == DEAD {
            continue;
        }
        let t = next[s];
        let e = next[t];
        next[s] = e;
        next[t] = DEAD;
        pair[t] = NO_RANK;
        pair[s] = NO_RANK;
        if e < n {
            prev[e] = s;
            let r = map.rank(&piece[s..next[e]]);
            pair[s] = r;
            if r != NO_RANK {
                heap.push(pack(r, s));
            }
        }
        if s > 0 {
            let p = prev[s];
            let r = map.rank(&piece[p..e]);
            pair[p] = r;
            if r != NO_RANK {
                heap.push(pack(r, p));
            }
        }
    }
    let mut i = 0;
    while i < n {
        let j = next[i];
        if j <= i {
            break;
        }
        part(i, j);
        i = j;
    }
}
