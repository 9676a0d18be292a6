//! Exact BPE token counting for OpenAI's encodings (the core: no PyO3 here).
//!
//! Contract used by the binding layer (`src/py/tokens.rs`):
//! - `EncodingName::parse(&str) -> Result<EncodingName, TokenError>`; `EncodingName::ALL`; `.as_str()`
//! - `Encoding::builtin(name) -> Result<Encoding, TokenError>`: the shipped vocabulary, loaded in
//!   microseconds from tables built with the crate
//! - `Encoding::from_tiktoken(name, bytes_of_dot_tiktoken_file) -> Result<Encoding, TokenError>`
//! - `Encoding::count(&self, &str) -> usize`: equals `len(tiktoken_enc.encode(text, disallowed_special=()))`
//! - `Encoding::encode(&self, &str) -> Vec<u32>`: the same tokens tiktoken gives (special-token text as
//!   ordinary text)
//! - `Encoding::count_batch(&self, &[&str]) -> Vec<usize>`: parallel, order kept
//!
//! `Encoding` is `Send + Sync` and is shared across threads behind an `Arc`.
//!
//! # Design
//!
//! - `scan`: the pre-tokenizer regexes replaced by hand-written scanners, one per pattern, over
//!   character classes from `classes` (regex-syntax's own Unicode tables).
//! - `vocab`: the `.tiktoken` parser and an open-addressing byte-string -> rank table.
//! - `frozen`: the tables of the shipped vocabularies, built with the crate (`build.rs`).
//! - `bpe`: tiktoken's lowest-rank-first merge for pieces that are not a single token.
//! - `split`: cuts such a piece at CJK character boundaries that no token can cross, so the
//!   merges run on short segments.
//! - `cache`: a small per-thread memo of merged pieces' counts.
//! - `run`: the merge of a long piece that is one repeated byte with a few others around it
//!   (indentation runs, `"a" * n`) on a compressed state, in O(log n) steps.
//!
//! # Performance notes
//!
//! Measured with `examples/count_stdin.rs --bench` against Python tiktoken 0.14 on a shared
//! 2-core machine (numbers vary by ±30% run to run; see `scripts/check_exact.py`).
//!
//! - The regex engine is most of tiktoken's time; the hand-written scanners (table lookups, no
//!   backtracking beyond what each pattern needs) are what gives 15-30x on English and code.
//! - Most pieces are a single token, so `count` first looks the whole piece up and only merges
//!   the rest. Counting never materializes token ids.
//! - Rank table: open addressing with the first 8 token bytes inline in each 16-byte slot, so a
//!   lookup of a short token touches one cache line. A load factor of ~0.38 measured clearly
//!   faster than ~0.76 (CJK and random text 1.5-2x): failed lookups are common in merges and
//!   long probe runs cost cache misses. Byte pairs come from a separate 64K-entry array, which
//!   removes hashing from the first merge round.
//! - Merging works on token ids. A pair table `(left id, right id) -> merged id` holds one entry
//!   per token that the merge can produce, under the only pair it can be produced from (proof in
//!   `vocab`; checked against a byte-slice reference merge in the tests and by
//!   `check_exact.py`), so each candidate is one `u64` probe instead of hashing a byte slice, and
//!   `encode` gets ids without looking parts up again.
//! - Small pieces (up to `bpe::SMALL` = 96 bytes): a quadratic scan on the stack over arrays
//!   indexed by byte offset; each candidate is one `u32` key `rank << 7 | start`, so one
//!   vectorized minimum gives both the rank and the leftmost position, and merging moves no
//!   memory (the previous version shifted arrays with `copy_within`, ~6% of CJK time in memmove).
//! - Large pieces: a linked list of 16-byte nodes (next, prev, id, rank together: one cache line
//!   per part) and a queue with one bucket per distinct rank. Starts pushed in increasing order go
//!   to a sorted run (O(1)), others to the bucket's small heap; a heap over the distinct ranks
//!   picks the bucket. A plain binary heap spent ~75% of `"a" * 100_000` in sifting; the buckets
//!   took it from ~10 ms to ~3.5-4 ms, and `"a" * 1_000_000` from ~200-330 ms to ~35-40 ms
//!   (tiktoken: ~25 ms and ~500-600 ms). Replacing the popped heap entry in place
//!   (`PeekMut`) instead of pop + push measured within noise.
//! - Long runs of one byte (`run`): a piece of more than 96 bytes that is one repeated byte but
//!   for at most 24 bytes around it is merged as `head + q x m + tail`, `q` copies of one part
//!   `m`; the body merges pairwise in one step when `(m, m)` is the lowest pair. 10 KB of
//!   whitespace runs (300-space indentation pieces) ~290-330 -> ~16 us (each such piece ~10 us
//!   through the queue: its allocations and ~600 queue operations); `"a" * 100_000` ~1.85-2 ms ->
//!   ~75 us, most of which is now the scanner and the scans for the run. Other pieces pay one
//!   length compare.
//! - Measured without a clear win (2 shared, heavily loaded cores, ±30%): the id pair table on
//!   CJK (about equal: the time is the scan and the first-round merges, not the lookups) and on
//!   whitespace runs (~350-byte pieces: bucket setup per piece eats the gain).
//! - CJK: a profile of the 4 KB sample put ~89% of the time in `merge_small` (~44% the minimum
//!   search, ~45% the merge steps with their pair-table lookups), the scanner and whole-piece
//!   lookups ~11%. Splitting at boundaries no token crosses (`split`) removes most of the
//!   quadratic work; the AVX2 minimum and the piece cache take the rest.
//! - Cost of the pair table: it is built at load by merging every token's bytes alone, shortest
//!   first, which made loading slower (o200k ~70-150 ms -> ~300-400 ms, cl100k ~100 ms -> ~250
//!   ms on this machine) and peak memory larger (o200k ~15.7 MB -> ~25 MB, cl100k ~9 -> ~14 MB;
//!   the table itself is 4 MB / 2 MB, the rest are temporaries of the build). Each length group
//!   is now merged in parallel; on 2 shared cores that measured only o200k ~101 -> ~95 ms and
//!   cl100k ~43 ms unchanged (a fresh process with nothing else: ~45% of load is the merges'
//!   pair-table misses, ~30% the parse with its rank-table misses). A denser pair table (load
//!   0.76) loaded ~5 ms faster but counted 4-10% slower. The tables are now built by `build.rs`
//!   and used from the binary as they are (`frozen`): loading builds nothing (see there).
//! - Piece cache (`cache`): merged pieces of 9-96 bytes are memoized per thread in a fixed
//!   1024-slot direct-mapped table that stores the bytes and compares them in full. CJK pieces
//!   are whole clauses that cost ~0.5-1 us to merge, and conversations are counted again on
//!   every turn. 4 KB CJK sample, counted repeatedly: ~80 -> ~6.5 us (cl100k and o200k); the first
//!   call in a fresh thread ~120 -> ~40-50 us, because the sample itself repeats its 1.3 KB
//!   text. Text that never repeats gains nothing (distinct generated CJK texts: within noise),
//!   pieces below 9 bytes are left out since hashing them costs about what merging does.
//! - Never-seen CJK text (each call a new 4 KB text, so the piece cache cannot help): the split
//!   segments are mostly one character. A per-code-point table gives a 3-byte character's rank or
//!   part count without hashing into the multi-megabyte rank table; a piece that splits is never
//!   looked up whole (it cannot be a token); and the split probes only the windows both
//!   neighbouring characters occur in. cl100k ~140 -> ~42 us, o200k ~150 -> ~60 us (tiktoken
//!   ~300 us). The two 256 KB tables add ~10 ms to loading. What is left is mostly cache misses:
//!   the pair table in the merges of the remaining multi-character segments, the crossing
//!   bitmap (o200k, 128 KB) and the rank lookups of those segments.
//! - Long English text: 100 KB of varied prose cost ~3x per byte what the 1 KB sample counted
//!   again and again does, yet the 1 KB sample repeated to 100 KB cost the same per byte as
//!   1 KB, and its words shuffled at random over 100 KB (131 distinct words, every table in
//!   cache) ~2.4x: the gap was mostly branches that the CPU learns on a short text it sees
//!   again and cannot predict on text it has not, all of them on the length of a word: the end
//!   of its letter loop and the length cases of `vocab::head` in the rank lookup (the rank
//!   table's slot loads are ~18% of the time in both texts). So the end of a run of ASCII
//!   letters is found eight bytes at a time (`classes::ascii_letters`) and a piece's head is
//!   eight bytes of the text masked to its length (`vocab::head_in`). Same run, medians:
//!   100 KB ~535 -> ~390 us (cl100k), ~594 -> ~440 us (o200k); never-seen 1 KB English ~8.0 ->
//!   ~6.7 us (cl100k), ~8.7 -> ~7.0 us (o200k). The price is on text the CPU has learnt: the
//!   1 KB sample counted again and again ~1.66 -> ~1.84 us (cl100k), ~1.72 -> ~1.80 us (o200k),
//!   the 4 KB CJK sample ~5.9 -> ~6.3 us (cl100k). Prefetching the rank-table slots of the next
//!   pieces (1, 2, 4 or 8 pieces ahead) made 100 KB 20-40% slower, and caching merged pieces
//!   from 4 or 2 bytes (instead of 9) in the piece cache gave nothing clear.
//! - Short merged pieces: after the two changes above, merging pieces that are not tokens was
//!   ~19% of the time of 100 KB of English (966 merges a call, 507 distinct, 56% of them 2-8
//!   bytes, which the piece cache leaves out), mostly pair-table cache misses. They have a
//!   table of their own in `cache` (16-byte slots keyed by the head the rank lookup already
//!   has): 100 KB ~386 -> ~333 us (cl100k), ~436 -> ~370 us (o200k); never-seen 1 KB English
//!   ~6.4 -> ~5.9 us (cl100k), ~7.3 -> ~6.4 us (o200k); the 1 KB sample ~1.81 -> ~1.67 us
//!   (cl100k), the 4 KB CJK sample ~6.2 -> ~5.1 us (cl100k; short CJK pieces), timed in Rust
//!   in one run.
//! - The three changes together, through Python (`count_tokens`, builds before and after in
//!   turns, 200 calls, medians): 100 KB English ~525 -> ~350 us (cl100k, 11.1x -> 16.7x
//!   tiktoken), ~586 -> ~375 us (o200k, 6.8x -> 10.5x); never-seen 1 KB English ~6.6 -> ~4.7 us
//!   (cl100k), ~7.2 -> ~5.1 us (o200k); 4 KB code ~11.3 -> ~8.8 us; 4 KB European/Arabic/Indic
//!   ~25.7 -> ~11.7 us (cl100k). The one case that lost is o200k's 1 KB sample counted again
//!   and again, ~1.83 -> ~2.08 us (~1.76 -> ~1.85 us timed in Rust): the letter loop's exits
//!   that the CPU had learnt on that text are now eight-byte steps with their own latency.
//! - Never-seen CJK text, after the changes above: a clause's characters each cost a load from
//!   the window-size table for the boundary on either side and one from the vocabulary's
//!   per-character table once split off, all in a loop over bytes. One table of 8-byte entries
//!   now holds both halves, and a piece of 3-byte characters only is walked by character with
//!   each entry loaded once (`split::Crossings::for_each_segment3`). Through Python, builds in
//!   turns, 200 calls, medians: o200k ~41.2 -> ~30.1 us (6.4x -> 7.8x tiktoken), cl100k ~28.8 ->
//!   ~21.2 us; same memory (the 512 KB table replaces two of 256 KB).
//! - Never-seen CJK text, after that: the bitmap probes between two characters were a quarter of
//!   the time (~1.3 per boundary on o200k, nearly all answering no). A filter word per character
//!   beside its entry rules out the two kinds of window that made nearly all of them, leaving
//!   ~0.15 (`split::Crossings::chars`). `count_stdin --bench`, 4 KB texts in turn, old and new
//!   builds alternating, medians of 3: o200k ~23.1 -> ~17.3 us, cl100k ~17.2 -> ~15.5 us; other
//!   inputs unchanged. The per-character table doubles to 1 MB (2 MB more library over the four
//!   encodings); a process reads only the pages of the characters it meets.
//! - `count_batch` runs on the caller's thread below 32 KiB in total: rayon's hand-off costs
//!   more than counting that much text. Above, it runs on our own rayon pool (`pool`), which a
//!   child process made by `fork()` replaces with its own.
//! - A request body (`count_request_tokens`) with 16 KiB of text or more is counted on the same
//!   pool, cut into LiteLLM's 1024-character chunks that the calling thread and the pool's threads
//!   take in turn (`messages::ChatRequest::count_parallel`, `pool::sum`): the benchmark's 50 KB
//!   request ~290 -> ~155 µs on 2 idle cores. Cutting ASCII chunks by length instead of walking
//!   their characters took ~25 µs off each 50 KB counted, on one thread or several.

mod blocks;
mod bpe;
mod cache;
mod classes;
mod frozen;
pub mod hf;
mod hf_bpe;
mod hf_split;
pub mod image;
pub mod messages;
mod pool;
pub mod request;
mod run;
mod scan;
pub mod search_results;
mod split;
pub mod tools;
mod vocab;

#[cfg(test)]
mod tests;

use scan::Pattern;
use vocab::RankMap;

/// The encodings this module knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncodingName {
    R50kBase,
    P50kBase,
    Cl100kBase,
    O200kBase,
    /// gpt-oss: o200k_base's ranks and pattern with other special tokens.
    O200kHarmony,
}

impl EncodingName {
    pub const ALL: [EncodingName; 5] = [
        EncodingName::R50kBase,
        EncodingName::P50kBase,
        EncodingName::Cl100kBase,
        EncodingName::O200kBase,
        EncodingName::O200kHarmony,
    ];

    /// The tiktoken name, e.g. `"cl100k_base"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EncodingName::R50kBase => "r50k_base",
            EncodingName::P50kBase => "p50k_base",
            EncodingName::Cl100kBase => "cl100k_base",
            EncodingName::O200kBase => "o200k_base",
            EncodingName::O200kHarmony => "o200k_harmony",
        }
    }

    pub fn parse(name: &str) -> Result<EncodingName, TokenError> {
        EncodingName::ALL
            .into_iter()
            .find(|e| e.as_str() == name)
            .ok_or_else(|| TokenError::UnknownEncoding {
                name: name.to_string(),
            })
    }

    /// The vocabulary (`.tiktoken` file) this encoding's ranks come from.
    pub fn vocabulary(self) -> &'static str {
        match self {
            EncodingName::O200kHarmony => EncodingName::O200kBase.as_str(),
            other => other.as_str(),
        }
    }

    fn pattern(self) -> Pattern {
        match self {
            EncodingName::R50kBase | EncodingName::P50kBase => Pattern::Gpt2,
            EncodingName::Cl100kBase => Pattern::Cl100k,
            EncodingName::O200kBase | EncodingName::O200kHarmony => Pattern::O200k,
        }
    }

    /// Number of ordinary (non-special) tokens in the `.tiktoken` file.
    fn vocab_size(self) -> usize {
        match self {
            EncodingName::R50kBase => 50_256,
            EncodingName::P50kBase => 50_280,
            EncodingName::Cl100kBase => 100_256,
            EncodingName::O200kBase | EncodingName::O200kHarmony => 199_998,
        }
    }
}

impl std::fmt::Display for EncodingName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Called in a child process right after `fork()`: the parent's worker threads did not come
/// along, so the child must not wait for them.
pub fn after_fork_in_child() {
    pool::after_fork_in_child();
}

/// Wakes the counting pool's threads ahead of a large count (`ChatRequest::count_parallel`) that
/// the caller will start after other work, such as reading the request: the wake-up then
/// overlaps that work instead of delaying the count.
pub fn wake_pool() {
    pool::wake();
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error(
        "unknown encoding {name:?}; valid encodings: r50k_base, p50k_base, cl100k_base, o200k_base, o200k_harmony"
    )]
    UnknownEncoding { name: String },
    #[error("invalid {encoding} vocabulary: {reason}")]
    InvalidVocabulary {
        encoding: &'static str,
        reason: String,
    },
}

/// Batches with fewer bytes than this are counted on the calling thread: below it, handing work
/// to rayon costs more than it saves.
const PARALLEL_MIN_BYTES: usize = 32 * 1024;

/// One loaded BPE vocabulary with its pre-tokenizer. Immutable, `Send + Sync`.
pub struct Encoding {
    name: EncodingName,
    pattern: Pattern,
    ranks: RankMap,
    classes: &'static classes::Classes,
    /// Identifies this vocabulary's entries in the per-thread piece cache.
    cache_owner: u32,
}

impl std::fmt::Debug for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoding")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Encoding {
    /// Builds `name` from the bytes of its `.tiktoken` file.
    pub fn from_tiktoken(name: EncodingName, data: &[u8]) -> Result<Encoding, TokenError> {
        let ranks = vocab::parse(name.as_str(), data, name.vocab_size())?;
        Ok(Encoding::with_ranks(name, ranks))
    }

    /// `name` from the tables built with the crate out of the shipped, sha256-checked
    /// vocabulary (see `frozen`): nothing is read or built, so this takes microseconds.
    pub fn builtin(name: EncodingName) -> Result<Encoding, TokenError> {
        let ranks = frozen::rank_map(name).ok_or(TokenError::InvalidVocabulary {
            encoding: name.as_str(),
            reason: "the tables built with this library are malformed".to_string(),
        })?;
        Ok(Encoding::with_ranks(name, ranks))
    }

    fn with_ranks(name: EncodingName, ranks: RankMap) -> Encoding {
        Encoding {
            name,
            pattern: name.pattern(),
            ranks,
            classes: classes::classes(),
            cache_owner: cache::next_owner(),
        }
    }

    pub fn name(&self) -> EncodingName {
        self.name
    }

    /// Number of tokens in `text`; equals `len(enc.encode(text, disallowed_special=()))`.
    pub fn count(&self, text: &str) -> usize {
        let mut total = 0;
        let bytes = text.as_bytes();
        let base = bytes.as_ptr() as usize;
        // Forced inline (as the scanners are, see `scan::for_each_piece`): left to the
        // compiler, this closure was a call per piece. Both together: 1 KB of English ~15-25%
        // faster (o200k most), 100 KB of English ~5-10%, CJK within noise.
        scan::for_each_piece(
            self.pattern,
            self.classes,
            text,
            #[inline(always)]
            |piece: &[u8]| {
                // Every piece is a slice of `text`.
                let start = (piece.as_ptr() as usize).wrapping_sub(base);
                total += self.count_piece_in(bytes, start, piece);
            },
        );
        total
    }

    /// Token ids of `text`, identical to `enc.encode(text, disallowed_special=())`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        scan::for_each_piece(self.pattern, self.classes, text, |piece| {
            self.encode_piece(piece, &mut out);
        });
        out
    }

    /// Counts of `texts`, in order; large batches are spread over the process's pool.
    pub fn count_batch(&self, texts: &[&str]) -> Vec<usize> {
        let total: usize = texts.iter().map(|t| t.len()).sum();
        if texts.len() < 2 || total < PARALLEL_MIN_BYTES {
            texts.iter().map(|t| self.count(t)).collect()
        } else {
            pool::map(texts, 1, |t| self.count(t))
        }
    }

    #[cfg(test)]
    fn count_piece(&self, piece: &[u8]) -> usize {
        self.count_piece_in(piece, 0, piece)
    }

    /// The token count of `piece`, which starts at `text[start]`.
    #[inline(always)]
    fn count_piece_in(&self, text: &[u8], start: usize, piece: &[u8]) -> usize {
        if piece.len() == 1 {
            return 1;
        }
        if split::worth_splitting(piece) {
            return self.count_split(piece);
        }
        let h8 = vocab::head_in(text, start, piece);
        if self.ranks.rank_with_head(piece, h8) != vocab::NO_RANK {
            return 1;
        }
        // Not split: the piece is one segment.
        let merge = || {
            let mut n = 0;
            self.merge_piece(piece, |_, k| n += k);
            n
        };
        cache::count_any(self.cache_owner, piece, h8, merge)
    }

    /// `count_piece` for a piece that `split` tries to cut (CJK). Kept out of line: inlined, it
    /// made 100 KB of English ~2-3% slower.
    #[inline(never)]
    fn count_split(&self, piece: &[u8]) -> usize {
        // A piece that splits is not a token (see `split::worth_splitting`), so it is looked up
        // whole only if it does not: for never-seen CJK text, that lookup was a cache miss of the
        // rank table per piece (~11% of the time).
        let count = |seg: &[u8], entry: Option<u32>| match entry {
            Some(e) if e & vocab::CHAR_PARTS != 0 => (e & !vocab::CHAR_PARTS) as usize,
            Some(_) => 1,
            // Segments of two characters that a token crosses recur (common CJK words):
            // remembered like short merged pieces, they skip the rank lookup (a cache miss of
            // the 4-8 MB table) and the merge. Never-seen CJK text, `count_stdin --bench`, 3
            // alternating runs, medians: o200k ~28.5 -> ~25.5 us, cl100k ~20.0 -> ~19.4 us.
            None if (2..=cache::SHORT_MAX).contains(&seg.len()) => {
                cache::count_short(self.cache_owner, vocab::head(seg), seg.len(), || {
                    self.segment_parts(piece, seg, false, |_| {})
                })
            }
            None => self.segment_parts(piece, seg, false, |_| {}),
        };
        let merge = || {
            let mut n = 0;
            // A piece of 3-byte characters only (a CJK clause, with its leading punctuation)
            // looks each character's entry up once, for its boundaries and its count. Never-seen
            // CJK text: see `split::Crossings::chars`.
            let crossings = self.ranks.crossings();
            if !crossings.for_each_segment3(piece, |seg, entry| n += count(seg, entry)) {
                crossings.for_each_segment(piece, |seg| n += count(seg, self.char3(seg)));
            }
            n
        };
        if (cache::MIN_LEN..=bpe::SMALL).contains(&piece.len()) {
            cache::count(self.cache_owner, piece, merge)
        } else {
            merge()
        }
    }

    fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        if let [b] = piece {
            out.push(self.ranks.byte(*b));
            return;
        }
        let r = self.ranks.rank(piece);
        if r != vocab::NO_RANK {
            out.push(r);
            return;
        }
        self.merge_parts(piece, |id| out.push(id));
    }

    /// The `chars3` entry of `seg` if it is one 3-byte character.
    #[inline(always)]
    fn char3(&self, seg: &[u8]) -> Option<u32> {
        match seg {
            [a @ 0xE0..=0xEF, b, c] => self.ranks.char3(&[*a, *b, *c]),
            _ => None,
        }
    }

    /// Token ids of a piece that is not a single token: the segments between character
    /// boundaries that no token crosses (`split`), each looked up or merged alone.
    #[inline(always)]
    fn merge_parts(&self, piece: &[u8], mut id: impl FnMut(u32)) {
        self.ranks.crossings().for_each_segment(piece, |seg| {
            match self.char3(seg) {
                Some(r) if r & vocab::CHAR_PARTS == 0 => id(r),
                _ => {
                    self.segment_parts(piece, seg, true, &mut id);
                }
            };
        });
    }

    /// Reports the ids of one segment of `piece` and returns how many there are. `looked_up`:
    /// the whole piece is known not to be a token.
    #[inline(always)]
    fn segment_parts(
        &self,
        piece: &[u8],
        seg: &[u8],
        looked_up: bool,
        mut id: impl FnMut(u32),
    ) -> usize {
        let mut n = 0;
        let mut parts = |i, k| {
            n += k;
            for _ in 0..k {
                id(i)
            }
        };
        if looked_up && seg.len() == piece.len() {
            self.merge_piece(seg, &mut parts);
        } else if let [b] = seg {
            parts(self.ranks.byte(*b), 1);
        } else {
            match self.ranks.rank(seg) {
                vocab::NO_RANK => self.merge_piece(seg, &mut parts),
                r => parts(r, 1),
            }
        }
        n
    }

    /// The final parts of a piece or segment that is not a token, as `(id, times)`: long runs
    /// of one byte through `run` (O(log n) steps instead of a queue over every byte), the rest
    /// through `bpe::merge`.
    #[inline(always)]
    fn merge_piece(&self, seg: &[u8], mut part: impl FnMut(u32, usize)) {
        if seg.len() > bpe::SMALL && run::merge(&self.ranks, seg, &mut part) {
            return;
        }
        bpe::merge(&self.ranks, seg, |_, _, id| part(id, 1));
    }
}
