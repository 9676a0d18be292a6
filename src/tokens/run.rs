//! Merging a long piece that is one repeated byte with a few other bytes around it: runs of
//! spaces, tabs or newlines (indentation, padding, ASCII art), `"-----"` rules, `"a" * 100_000`.
//!
//! Such a piece's merge is tiktoken's lowest-rank-first, leftmost-first merge like any other
//! (`bpe`), simulated on a compressed state: `head`, `body`, `tail`, where the body is `q` copies
//! of one part `m` and head and tail are short lists of parts. Every candidate pair is then one
//! of: a pair inside the head or the tail, the head's last part with `m`, `m` with the tail's
//! first part, or `(m, m)` inside the body, which is the same pair `q - 1` times. Picking the
//! lowest over these (in that left-to-right order, so ties go left as in tiktoken) is picking
//! the lowest pair of the whole piece.
//!
//! When `(m, m)` is the lowest pair, tiktoken merges the body pairwise from the left: `(0, 1)`,
//! then `(2, 3)` (now the leftmost pair of that rank), and so on, ending with `q / 2` copies of
//! `M = m + m` and, if `q` is odd, one `m` left over, which joins the tail. That holds only if no
//! pair created on the way ranks lower than `(m, m)`: `(M, m)`, `(M, M)` and the head's last
//! part with `M`. A merged token outranks its parts in OpenAI's vocabularies, so that never
//! happens, but it is checked, not assumed: if one does, the piece goes back to the ordinary
//! merge. A body step halves the body and a token is at most 255 bytes long, so there are at
//! most 8 of them; every other step merges two parts of the short lists (or of a list and one
//! copy of `m`). Parts equal to `m` next to the body are moved into it, so a tie between a body
//! pair and a neighbouring `(m, m)` cannot arise. The state is O(1) and the merge takes O(log n)
//! steps after one scan of the piece, instead of the O(n log n) queue work of `bpe::merge_large`.
//!
//! Why: a 300-space indentation run was ~10 us through the queue merge (its allocations and
//! ~600 queue operations), most of the time of text full of such runs; `"a" * 100_000` ~1.8 ms.

use super::vocab::{RankMap, NO_RANK};

/// Most bytes the head and the tail may have together (they are merged by rescanning, which is
/// quadratic in their length).
const EDGES: usize = 24;

/// Room for the explicit parts: the edges, the body's slot, and one leftover `m` per body step.
const CAP: usize = 64;

/// Calls `part(id, times)` for the final parts of `piece` in order, if `piece` is a run of one
/// byte with at most `EDGES` other bytes around it and longer than `bpe::SMALL` (shorter pieces
/// merge fast anyway). Returns `false`, having called nothing, if the piece is not such a run
/// (or the vocabulary breaks the rule stated in the module notes); the caller merges it then.
#[inline(never)]
pub(crate) fn merge(map: &RankMap, piece: &[u8], mut part: impl FnMut(u32, usize)) -> bool {
    let n = piece.len();
    if n <= super::bpe::SMALL {
        return false;
    }
    // A run covering all but `EDGES` bytes covers the middle byte (n > 2 * EDGES).
    let mid = n / 2;
    let c = piece[mid];
    let start = last_other(&piece[..mid], c).map_or(0, |i| i + 1);
    let end = first_other(&piece[mid..], c).map_or(n, |i| mid + i);
    if start + (n - end) > EDGES {
        return false;
    }
    let mut state = State {
        ids: [0; CAP],
        len: 0,
        body: 0,
        q: end - start,
    };
    for &b in &piece[..start] {
        state.push(map.byte(b));
    }
    state.body = state.len;
    state.push(map.byte(c));
    for &b in &piece[end..] {
        state.push(map.byte(b));
    }
    if !state.run(map) {
        return false;
    }
    let State { ids, len, body, q } = state;
    for (i, &id) in ids[..len].iter().enumerate() {
        part(id, if i == body { q } else { 1 });
    }
    true
}

/// Index of the first byte of `s` that is not `c`, 16 bytes at a time.
///
/// Why: a byte loop with an early exit is not vectorised, and scanning the run was most of the
/// time of `"a" * 100_000` (~40 us of ~42).
#[inline]
fn first_other(s: &[u8], c: u8) -> Option<usize> {
    let splat = u128::from(c) * (u128::MAX / 0xff);
    let mut chunks = s.chunks_exact(16);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let diff = chunk
            .first_chunk::<16>()
            .map_or(0, |b| u128::from_le_bytes(*b) ^ splat);
        if diff != 0 {
            return Some(at + diff.trailing_zeros() as usize / 8);
        }
        at += 16;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b != c)
        .map(|i| at + i)
}

/// Index of the last byte of `s` that is not `c`, 16 bytes at a time (see `first_other`).
#[inline]
fn last_other(s: &[u8], c: u8) -> Option<usize> {
    let splat = u128::from(c) * (u128::MAX / 0xff);
    let mut chunks = s.rchunks_exact(16);
    let mut end = s.len();
    for chunk in chunks.by_ref() {
        let diff = chunk
            .first_chunk::<16>()
            .map_or(0, |b| u128::from_le_bytes(*b) ^ splat);
        end -= 16;
        if diff != 0 {
            return Some(end + 15 - diff.leading_zeros() as usize / 8);
        }
    }
    chunks.remainder().iter().rposition(|&b| b != c)
}

/// Parts `ids[..len]`, where `ids[body]` stands for `q >= 1` copies of itself (with `q == 1` it
/// is an ordinary part, and stays the body only as a place to gather equal neighbours).
struct State {
    ids: [u32; CAP],
    len: usize,
    body: usize,
    q: usize,
}

/// Where the lowest pair is.
#[derive(Clone, Copy)]
enum At {
    /// Parts `j` and `j + 1` (`j + 1` may be the body, standing for its first copy, or `j` the
    /// body, standing for its last).
    Pair(usize),
    /// Inside the body.
    Body,
}

impl State {
    fn push(&mut self, id: u32) {
        if let Some(slot) = self.ids.get_mut(self.len) {
            *slot = id;
        }
        self.len += 1;
    }

    fn remove(&mut self, i: usize) {
        self.ids.copy_within(i + 1..self.len, i);
        self.len -= 1;
        if i < self.body {
            self.body -= 1;
        }
    }

    /// Moves parts equal to the body's part next to it into the body.
    fn absorb(&mut self) {
        let m = self.ids[self.body];
        while self.body > 0 && self.ids[self.body - 1] == m {
            self.remove(self.body - 1);
            self.q += 1;
        }
        while self.body + 1 < self.len && self.ids[self.body + 1] == m {
            self.remove(self.body + 1);
            self.q += 1;
        }
    }

    /// One copy of the body's part leaves the body to become `id`, on the body's left (`left`)
    /// or right. With `q == 1` the body slot itself is that copy.
    fn take(&mut self, id: u32, left: bool) {
        if self.q == 1 {
            // The body slot becomes an ordinary part: give it `id` and let the neighbour go.
            let neighbour = if left { self.body - 1 } else { self.body + 1 };
            self.ids[self.body] = id;
            self.remove(neighbour);
            return;
        }
        self.q -= 1;
        if left {
            self.ids[self.body - 1] = id;
        } else {
            self.ids[self.body + 1] = id;
        }
    }

    /// Runs the merge to the end; `false` if the vocabulary breaks the body-step rule or the
    /// explicit parts outgrow `CAP` (neither happens with OpenAI's vocabularies).
    fn run(&mut self, map: &RankMap) -> bool {
        if self.len > CAP {
            return false;
        }
        loop {
            self.absorb();
            let m = self.ids[self.body];
            let mut best = (NO_RANK, At::Body);
            for j in 0..self.len - 1 {
                if j == self.body && self.q >= 2 {
                    let r = map.pair(m, m);
                    if r < best.0 {
                        best = (r, At::Body);
                    }
                }
                let r = map.pair(self.ids[j], self.ids[j + 1]);
                if r < best.0 {
                    best = (r, At::Pair(j));
                }
            }
            if self.body == self.len - 1 && self.q >= 2 {
                let r = map.pair(m, m);
                if r < best.0 {
                    best = (r, At::Body);
                }
            }
            let (r, at) = best;
            if r == NO_RANK {
                return true;
            }
            match at {
                At::Body => {
                    // Pairs that appear while the body is merged must not rank below it.
                    let mut appear = [map.pair(r, m), map.pair(r, r), NO_RANK];
                    if self.body > 0 {
                        appear[2] = map.pair(self.ids[self.body - 1], r);
                    }
                    if appear.iter().any(|&a| a < r) {
                        return false;
                    }
                    if self.q % 2 == 1 {
                        if self.len == CAP {
                            return false;
                        }
                        self.ids.copy_within(self.body + 1..self.len, self.body + 2);
                        self.ids[self.body + 1] = m;
                        self.len += 1;
                    }
                    self.ids[self.body] = r;
                    self.q /= 2;
                }
                At::Pair(j) if j + 1 == self.body => self.take(r, true),
                At::Pair(j) if j == self.body => self.take(r, false),
                At::Pair(j) => {
                    self.ids[j] = r;
                    self.remove(j + 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{first_other, last_other};

    #[test]
    fn run_edges_match_a_byte_loop() {
        for len in 0..70 {
            for odd in 0..=len {
                for other in [None, Some(odd)] {
                    let mut s = vec![b'a'; len];
                    if let Some(k) = other.filter(|&k| k < len) {
                        s[k] = b'b';
                    }
                    let first = s.iter().position(|&b| b != b'a');
                    let last = s.iter().rposition(|&b| b != b'a');
                    assert_eq!(first_other(&s, b'a'), first, "{len} {other:?}");
                    assert_eq!(last_other(&s, b'a'), last, "{len} {other:?}");
                }
            }
        }
        let mut s = vec![b' '; 100];
        s[3] = b'x';
        s[90] = b'y';
        assert_eq!(first_other(&s, b' '), Some(3));
        assert_eq!(last_other(&s, b' '), Some(90));
    }
}
