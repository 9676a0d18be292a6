//! Counting without building an `Encoding`, for the byte-level BPE files LiteLLM ships (Claude's
//! and DeepSeek's). The core: no PyO3 here.
//!
//! `tokenizers` encodes a text in four steps: split off added tokens, normalize, pre-tokenize,
//! and run the BPE model on every piece, then builds an `Encoding` (token strings, offsets, word
//! ids) that a count throws away. The pre-tokenizer regexes (on `fancy-regex`) and that bookkeeping
//! were nearly all of the time. `ByteLevelCounter` keeps the same steps with faster parts, and
//! only for a file whose configuration it recognizes entirely (read back from the loaded
//! tokenizer, so the crate has parsed and checked it first); any other file, and any text that
//! contains an added token, is counted by the crate.
//!
//! - Added tokens: a text containing any added token's content (raw or normalized) is left to
//!   the crate, so what remains is one split, the whole text.
//! - Normalizer: none, an empty sequence, or NFKC. NFKC leaves ASCII unchanged; other text is
//!   normalized by the crate's own normalizer (see `hf::HfTokenizer::nfkc`).
//! - Pre-tokenizer: ByteLevel with the GPT-2 regex (Claude) is `scan`'s GPT-2 scanner: its pattern
//!   is the same language (`'s|'t|...| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`; the
//!   possessive forms and `\s++$|\s+(?!\S)|\s` in tiktoken's spelling match the same text);
//!   DeepSeek's sequence is `hf_split`.
//! - Model: BPE without dropout, unknown token, subword prefix or suffix, byte fallback or
//!   `ignore_merges`, and every byte's character in the vocabulary. The crate merges, in a piece,
//!   the adjacent pair that comes first in the merge list, leftmost among equals, until no
//!   adjacent pair is in the list (`Word::merge_all`: it drops a queued pair once either side
//!   has changed, which is what re-checking the pair's merge here does). `merge_count` does the
//!   same on the piece's bytes. Unlike tiktoken, a piece that is a token need not come out as
//!   one (the merges may not reach it), so the table of single-token pieces is built by merging
//!   every vocabulary entry once at load.
//! - Post-processor: none, or ByteLevel (which adds no tokens).
//!
//! Pieces of up to `bpe::SMALL` bytes that are not a single token go through the per-thread count
//! caches (`cache::count_short` up to 8 bytes, `cache::count` above), as the tiktoken encodings'
//! pieces do: short English words that are not tokens repeat, and their merges' pair lookups
//! miss the CPU's caches. 100 KB of English with Claude's tokenizer: ~272 -> ~248 µs (through
//! Python, builds in turns, medians of 31 x 20 calls, one run).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use aho_corasick::AhoCorasick;
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;

use super::cache;
use super::classes::{classes, Classes};
use super::hf_split;
use super::scan::{self, Pattern};
use super::vocab::head;

/// Which pre-tokenizer the file uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Split {
    /// ByteLevel with the GPT-2 regex (Claude).
    Gpt2,
    /// DeepSeek V3's sequence of splits.
    DeepSeek,
}

/// The pieces (at least 2 bytes) that the merges turn into a single token.
///
/// Why three sets: most pieces of prose and code are words of a few bytes, and as one integer
/// (the bytes, zero padded, and the length) such a piece is hashed with a multiply or two and
/// compared as an integer. A set of byte strings hashed every piece byte by byte and compared it
/// with a call to `memcmp` (a fifth of the time of counting 50 KB of English with Claude's
/// tokenizer). The lookups of varied text miss the CPU's caches, so the pieces of up to 7 bytes
/// get a set of 8-byte keys of their own, half the size of one of 16-byte keys. 100 KB of
/// English with Claude's tokenizer: ~345 -> ~308 µs (~325 with the `u128` keys alone); through
/// Python, builds in turns, medians of 31 x 20 calls, one run.
#[derive(Default)]
struct SingleTokens {
    /// Up to [`WORD_KEY_MAX`] bytes.
    word: FxHashSet<u64>,
    /// Up to [`SHORT_KEY_MAX`] bytes.
    short: FxHashSet<u128>,
    long: FxHashSet<Box<[u8]>>,
}

/// Longest piece keyed by a `u64`: its length takes the key's top byte.
const WORD_KEY_MAX: usize = 7;
/// Longest piece keyed by a `u128`: its length takes the key's top byte.
const SHORT_KEY_MAX: usize = 15;

/// `piece` (at most [`SHORT_KEY_MAX`] bytes) as one integer: its bytes little-endian, zero
/// padded, and its length in the top byte (so that a piece ending in zero bytes is not its own
/// prefix).
#[inline(always)]
fn short_key(piece: &[u8]) -> u128 {
    debug_assert!(piece.len() <= SHORT_KEY_MAX);
    let n = piece.len();
    let (lo, hi) = match piece.split_at_checked(8) {
        Some((first, rest)) => (head(first), head(rest)),
        None => (head(piece), 0),
    };
    u128::from(lo) | (u128::from(hi) << 64) | ((n as u128) << 120)
}

/// [`short_key`] of a piece of at most [`WORD_KEY_MAX`] bytes, which fits a `u64`.
#[inline(always)]
fn word_key(piece: &[u8]) -> u64 {
    debug_assert!(piece.len() <= WORD_KEY_MAX);
    head(piece) | ((piece.len() as u64) << 56)
}

impl SingleTokens {
    fn insert(&mut self, piece: Vec<u8>) {
        if piece.len() <= WORD_KEY_MAX {
            self.word.insert(word_key(&piece));
        } else if piece.len() <= SHORT_KEY_MAX {
            self.short.insert(short_key(&piece));
        } else {
            self.long.insert(piece.into_boxed_slice());
        }
    }

    #[inline(always)]
    fn contains(&self, piece: &[u8]) -> bool {
        if piece.len() <= WORD_KEY_MAX {
            self.word.contains(&word_key(piece))
        } else if piece.len() <= SHORT_KEY_MAX {
            self.short.contains(&short_key(piece))
        } else {
            self.long.contains(piece)
        }
    }
}

/// No merge: the pair is not in the list.
const NONE: u64 = u64::MAX;

/// Pieces up to this many bytes are merged by scanning all pairs; longer ones with a heap.
const SCAN_MAX: usize = 64;

pub(crate) struct ByteLevelCounter {
    split: Split,
    classes: &'static Classes,
    /// Whether the normalizer is NFKC (else there is none).
    pub(crate) nfkc: bool,
    added: Option<AhoCorasick>,
    /// The token of each byte's character.
    bytes: [u32; 256],
    /// `left << 32 | right` -> `rank << 32 | merged`.
    merges: FxHashMap<u64, u64>,
    /// Pieces (at least 2 bytes) that the merges turn into a single token.
    single: SingleTokens,
    owner: u32,
}

impl std::fmt::Debug for ByteLevelCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteLevelCounter")
            .field("split", &self.split)
            .field("nfkc", &self.nfkc)
            .finish_non_exhaustive()
    }
}

/// GPT-2's byte-to-character table, as `tokenizers`' ByteLevel uses.
fn byte_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let cp = if printable {
            u32::from(b)
        } else {
            next += 1;
            next - 1
        };
        table[b as usize] = char::from_u32(cp).unwrap_or('\0');
    }
    table
}

fn is_null(v: Option<&Value>) -> bool {
    v.is_none_or(Value::is_null)
}

fn is_false(v: Option<&Value>) -> bool {
    is_null(v) || v == Some(&Value::Bool(false))
}

/// DeepSeek's pre-tokenizer, as the crate serializes it.
fn deepseek_pre_tokenizer() -> Value {
    let split = |pattern: &str| {
        serde_json::json!({"type": "Split", "pattern": {"Regex": pattern},
                           "behavior": "Isolated", "invert": false})
    };
    serde_json::json!({"type": "Sequence", "pretokenizers": [
        split(r"\p{N}{1,3}"),
        split("[\u{4e00}-\u{9fa5}\u{3040}-\u{309f}\u{30a0}-\u{30ff}]+"),
        split("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
        {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
    ]})
}

fn recognize_split(pre: Option<&Value>) -> Option<Split> {
    let pre = pre?;
    if pre.get("type")? == "ByteLevel" {
        let regex = pre.get("use_regex").is_none_or(|v| v == &Value::Bool(true));
        return (is_false(pre.get("add_prefix_space")) && regex).then_some(Split::Gpt2);
    }
    // `trim_offsets` only moves offsets.
    let mut pre = pre.clone();
    if let Some(last) = pre.pointer_mut("/pretokenizers/3/trim_offsets") {
        *last = Value::Bool(true);
    }
    (pre == deepseek_pre_tokenizer()).then_some(Split::DeepSeek)
}

impl ByteLevelCounter {
    /// The counter for a tokenizer serialized as `config` (`serde_json::to_value` of the loaded
    /// `tokenizers::Tokenizer`), or `None` if any part of it is not one this module reproduces.
    pub(crate) fn new(config: &Value) -> Option<ByteLevelCounter> {
        if !is_null(config.get("truncation")) || !is_null(config.get("padding")) {
            return None;
        }
        let nfkc = match config.get("normalizer") {
            None | Some(Value::Null) => false,
            Some(n) if n.get("type")? == "NFKC" => true,
            Some(n) if n.get("type")? == "Sequence" => {
                if !n.get("normalizers")?.as_array()?.is_empty() {
                    return None;
                }
                false
            }
            Some(_) => return None,
        };
        let split = recognize_split(config.get("pre_tokenizer"))?;
        match config.get("post_processor") {
            None | Some(Value::Null) => {}
            Some(p) if p.get("type")? == "ByteLevel" => {}
            Some(_) => return None,
        }
        let model = config.get("model")?;
        if model.get("type")? != "BPE"
            || !is_null(model.get("dropout"))
            || !is_null(model.get("unk_token"))
            || !is_null(model.get("continuing_subword_prefix"))
            || !is_null(model.get("end_of_word_suffix"))
            || !is_false(model.get("byte_fallback"))
            || !is_false(model.get("ignore_merges"))
        {
            return None;
        }
        let vocab = model.get("vocab")?.as_object()?;
        let id = |token: &str| -> Option<u32> { u32::try_from(vocab.get(token)?.as_u64()?).ok() };
        let chars = byte_chars();
        let mut bytes = [0u32; 256];
        let mut char_byte: FxHashMap<char, u8> = FxHashMap::default();
        for (b, c) in chars.iter().enumerate() {
            bytes[b] = id(c.encode_utf8(&mut [0; 4]))?;
            char_byte.insert(*c, b as u8);
        }
        let mut merges = FxHashMap::default();
        // The crate serializes its merges in rank order; a later duplicate pair would have
        // replaced an earlier one there, as it does here.
        for (rank, pair) in model.get("merges")?.as_array()?.iter().enumerate() {
            let (left, right) = match pair {
                Value::Array(parts) if parts.len() == 2 => (parts[0].as_str()?, parts[1].as_str()?),
                Value::String(line) => line.split_once(' ')?,
                _ => return None,
            };
            let merged = id(&format!("{left}{right}"))?;
            let key = (u64::from(id(left)?) << 32) | u64::from(id(right)?);
            merges.insert(key, ((rank as u64) << 32) | u64::from(merged));
        }
        let mut added = Vec::new();
        for token in config.get("added_tokens")?.as_array()? {
            let content = token.get("content")?.as_str()?;
            if content.is_empty() {
                return None;
            }
            added.push(content.to_owned());
        }
        let added = if added.is_empty() {
            None
        } else {
            Some(AhoCorasick::new(&added).ok()?)
        };
        let mut counter = ByteLevelCounter {
            split,
            classes: classes(),
            nfkc,
            added,
            bytes,
            merges,
            single: SingleTokens::default(),
            owner: cache::next_owner(),
        };
        let mut single = SingleTokens::default();
        for token in vocab.keys() {
            let piece: Option<Vec<u8>> =
                token.chars().map(|c| char_byte.get(&c).copied()).collect();
            if let Some(piece) = piece {
                if piece.len() >= 2 && counter.merge_count(&piece) == 1 {
                    single.insert(piece);
                }
            }
        }
        counter.single = single;
        Some(counter)
    }

    /// Whether `text` contains an added token (the crate then counts it).
    pub(crate) fn has_added(&self, text: &str) -> bool {
        self.added.as_ref().is_some_and(|a| a.is_match(text))
    }

    /// The number of tokens of `text`, already normalized, that contains no added token.
    pub(crate) fn count(&self, text: &str) -> usize {
        let mut total = 0;
        let each = |piece: &[u8]| total += self.count_piece(piece);
        match self.split {
            Split::Gpt2 => scan::for_each_piece(Pattern::Gpt2, self.classes, text, each),
            Split::DeepSeek => hf_split::for_each_piece(text, each),
        }
        total
    }

    #[inline]
    fn count_piece(&self, piece: &[u8]) -> usize {
        if piece.len() < 2 {
            return piece.len();
        }
        if self.single.contains(piece) {
            return 1;
        }
        cache::count_any(self.owner, piece, head(piece), || self.merge_count(piece))
    }

    #[inline(always)]
    fn merge_of(&self, left: u32, right: u32) -> u64 {
        self.merges
            .get(&((u64::from(left) << 32) | u64::from(right)))
            .copied()
            .unwrap_or(NONE)
    }

    /// The number of tokens the merges leave of `piece`.
    fn merge_count(&self, piece: &[u8]) -> usize {
        if piece.len() <= SCAN_MAX {
            self.merge_scan(piece)
        } else {
            self.merge_heap(piece)
        }
    }

    /// Small pieces: find the first lowest-ranked pair, merge it, repeat.
    fn merge_scan(&self, piece: &[u8]) -> usize {
        let mut ids = [0u32; SCAN_MAX];
        // The merge of part `k` with part `k + 1` (`NONE` if none).
        let mut pairs = [NONE; SCAN_MAX];
        let mut n = piece.len();
        for (k, &b) in piece.iter().enumerate() {
            ids[k] = self.bytes[b as usize];
        }
        for k in 0..n - 1 {
            pairs[k] = self.merge_of(ids[k], ids[k + 1]);
        }
        while n > 1 {
            let mut best = 0;
            for k in 1..n - 1 {
                if pairs[k] < pairs[best] {
                    best = k;
                }
            }
            let merge = pairs[best];
            if merge == NONE {
                break;
            }
            ids[best] = merge as u32;
            ids.copy_within(best + 2..n, best + 1);
            pairs.copy_within(best + 2..n, best + 1);
            n -= 1;
            pairs[n - 1] = NONE;
            if best + 1 < n {
                pairs[best] = self.merge_of(ids[best], ids[best + 1]);
            } else {
                pairs[best] = NONE;
            }
            if best > 0 {
                pairs[best - 1] = self.merge_of(ids[best - 1], ids[best]);
            }
        }
        n
    }

    /// Large pieces (a long run of one letter is a single piece): a linked list of parts and a
    /// queue of `(rank, start)`, stale entries skipped, as the crate does.
    fn merge_heap(&self, piece: &[u8]) -> usize {
        let n = piece.len();
        let mut ids: Vec<u32> = piece.iter().map(|&b| self.bytes[b as usize]).collect();
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; n];
        let mut queue = BinaryHeap::new();
        for k in 0..n - 1 {
            let m = self.merge_of(ids[k], ids[k + 1]);
            if m != NONE {
                queue.push(Reverse((m >> 32, k)));
            }
        }
        let mut parts = n;
        while let Some(Reverse((rank, k))) = queue.pop() {
            if !alive[k] || next[k] >= n {
                continue;
            }
            let right = next[k];
            let m = self.merge_of(ids[k], ids[right]);
            if m == NONE || m >> 32 != rank {
                continue;
            }
            ids[k] = m as u32;
            alive[right] = false;
            next[k] = next[right];
            parts -= 1;
            if next[k] < n {
                prev[next[k]] = k;
                let m = self.merge_of(ids[k], ids[next[k]]);
                if m != NONE {
                    queue.push(Reverse((m >> 32, k)));
                }
            }
            if k > 0 {
                let p = prev[k];
                let m = self.merge_of(ids[p], ids[k]);
                if m != NONE {
                    queue.push(Reverse((m >> 32, p)));
                }
            }
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `SingleTokens` answers as a set of byte strings does, for pieces on either side of
        /// `WORD_KEY_MAX` and `SHORT_KEY_MAX`, and pieces that differ only by trailing zero bytes.
        #[test]
        fn single_tokens_is_a_set_of_byte_strings(
            stored in proptest::collection::vec(proptest::collection::vec(0u8..4, 0..20), 0..40),
            asked in proptest::collection::vec(proptest::collection::vec(0u8..4, 0..20), 0..40),
        ) {
            let mut single = SingleTokens::default();
            let mut plain = FxHashSet::default();
            for piece in &stored {
                single.insert(piece.clone());
                plain.insert(piece.clone());
            }
            for piece in stored.iter().chain(&asked) {
                prop_assert_eq!(single.contains(piece), plain.contains(piece), "{:?}", piece);
            }
        }
    }

    /// `merge_scan` and `merge_heap` agree (the scan is used up to `SCAN_MAX` bytes only).
    #[test]
    fn scan_and_heap_agree() {
        let config = serde_json::json!({
            "normalizer": null, "truncation": null, "padding": null, "added_tokens": [],
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
            "post_processor": null,
            "model": {"type": "BPE", "dropout": null, "unk_token": null,
                      "vocab": (0..=255u8).map(|b| (byte_chars()[b as usize].to_string(), u64::from(b)))
                          .chain([("ab".to_string(), 256), ("abab".to_string(), 257),
                                  ("ba".to_string(), 258), ("bab".to_string(), 259)])
                          .map(|(token, id)| (token, Value::from(id)))
                          .collect::<serde_json::Map<String, Value>>(),
                      "merges": [["a", "b"], ["b", "a"], ["ab", "ab"], ["ba", "b"]]}
        });
        let counter = ByteLevelCounter::new(&config).unwrap();
        for text in [
            "ab", "abab", "aba", "bab", "abba", "babab", "aabbabab", "bbbaaaba",
        ] {
            let piece = text.repeat(7);
            let piece = &piece.as_bytes()[..piece.len().min(SCAN_MAX)];
            assert_eq!(
                counter.merge_scan(piece),
                counter.merge_heap(piece),
                "{text}"
            );
        }
        assert_eq!(counter.count("abab"), 1);
        // A token the merges do not reach: "a b" comes first, and no merge joins "b" and "ab".
        assert_eq!(counter.count("bab"), 2);
        assert_eq!(counter.count("abab abab"), 1 + 2);
    }
}
