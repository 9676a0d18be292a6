//! Hugging Face tokenizers (`tokenizer.json`) for the models LiteLLM counts with one: Claude and
//! DeepSeek (whose files LiteLLM ships), Llama and Cohere (fetched from the Hub by LiteLLM, read
//! here only from the local cache). The core: no PyO3 here.
//!
//! The `tokenizers` crate, the library Hugging Face keeps and Python `tokenizers` wraps, reads
//! the file and is the reference: a count is `len(Tokenizer.from_file(path).encode(text).ids)`
//! (only the regex engine differs, see the notes in Cargo.toml). For the byte-level BPE files
//! LiteLLM ships, `hf_bpe` counts the same tokens without the crate's encode, about 10x faster
//! (its notes say why it is the same count); every other file, and every text holding an added
//! token, is counted by the crate's encode.
//!
//! # Notes
//!
//! - A count is `encode_fast(text, add_special_tokens = true)`: LiteLLM counts
//!   `len(tokenizer.encode_batch_fast([text])[0])`, whose `add_special_tokens` defaults to true
//!   (neither shipped file has a post-processor that adds any, but a Hub file may). `encode_fast`
//!   skips the offsets, which a count does not need.
//! - Threads and `fork()`: the crate parallelizes only its batch calls (`encode_batch*`, training)
//!   on rayon's global pool, which does not survive `fork()`. Nothing here calls them: a batch is
//!   spread over our own pool (`pool`), which a forked child replaces, and each item is encoded
//!   alone, which runs on the calling thread. So neither `TOKENIZERS_PARALLELISM` nor the crate's
//!   fork warning applies, and a child can count right after `fork()`.
//! - One loaded tokenizer is shared by every thread (`Tokenizer` is `Send + Sync`); the binding
//!   keeps one per file.

use std::borrow::Cow;
use std::path::Path;

use tokenizers::{NormalizedString, Normalizer};

use super::hf_bpe::ByteLevelCounter;
use super::pool;

/// Batches with fewer bytes than this are counted on the calling thread (as in `Encoding`).
const PARALLEL_MIN_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HfError {
    #[error("cannot read the tokenizer file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("invalid tokenizer file {path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("tokenizing failed: {0}")]
    Encode(String),
}

/// One loaded `tokenizer.json`. Immutable, `Send + Sync`.
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    /// The faster counter, for files it reproduces (see `hf_bpe`).
    counter: Option<ByteLevelCounter>,
    source: String,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTokenizer")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl HfTokenizer {
    /// Loads a `tokenizer.json` file.
    pub fn from_file(path: &Path) -> Result<HfTokenizer, HfError> {
        let source = path.display().to_string();
        let data = std::fs::read(path).map_err(|e| HfError::Unreadable {
            path: source.clone(),
            reason: e.to_string(),
        })?;
        HfTokenizer::from_bytes(&data, source)
    }

    /// Builds a tokenizer from the bytes of a `tokenizer.json`; `source` names it in errors.
    pub fn from_bytes(data: &[u8], source: String) -> Result<HfTokenizer, HfError> {
        let inner = tokenizers::Tokenizer::from_bytes(data).map_err(|e| HfError::Invalid {
            path: source.clone(),
            reason: e.to_string(),
        })?;
        // Read back from the loaded tokenizer: the crate has parsed, defaulted and checked it.
        let counter = serde_json::to_value(&inner)
            .ok()
            .and_then(|config| ByteLevelCounter::new(&config));
        Ok(HfTokenizer {
            inner,
            counter,
            source,
        })
    }

    /// Whether counts skip the crate's encode (see `hf_bpe`); for tests and benchmarks.
    pub fn accelerated(&self) -> bool {
        self.counter.is_some()
    }

    /// Where the tokenizer was read from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Token ids of `text`, special tokens of the file's post-processor included.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, HfError> {
        self.inner
            .encode_fast(text, true)
            .map(|encoding| encoding.get_ids().to_vec())
            .map_err(|e| HfError::Encode(e.to_string()))
    }

    /// The number of tokens in `text` (what LiteLLM counts: see the module notes).
    pub fn count(&self, text: &str) -> Result<usize, HfError> {
        if let Some(counter) = &self.counter {
            if !counter.has_added(text) {
                if !counter.nfkc || text.is_ascii() {
                    return Ok(counter.count(text));
                }
                let normalized = self.nfkc(text)?;
                if let Cow::Borrowed(text) = normalized {
                    return Ok(counter.count(text));
                }
                if !counter.has_added(&normalized) {
                    return Ok(counter.count(&normalized));
                }
            }
        }
        self.count_encoded(text)
    }

    /// `text` through the file's NFKC normalizer, run only on the parts that are not ASCII.
    ///
    /// ASCII stays as it is under NFKC, and NFKC never joins a character to the ASCII character
    /// after it (ASCII characters are starters that combine with nothing before them), so the
    /// text can be cut before every ASCII character and each part normalized alone. A part is a
    /// run of non-ASCII characters with the ASCII character before it (a letter may compose with
    /// the marks that follow). The crate's normalizer tracks alignments and was ~6x the rest of
    /// the count on 100 KB of English with a few curly quotes. `text` itself when NFKC leaves it
    /// unchanged.
    fn nfkc<'t>(&self, text: &'t str) -> Result<Cow<'t, str>, HfError> {
        match self.inner.get_normalizer() {
            Some(normalizer) => normalize_in_parts(normalizer, text),
            None => Ok(Cow::Borrowed(text)),
        }
    }

    /// The count from the crate's encode (the reference for `count`).
    pub fn count_encoded(&self, text: &str) -> Result<usize, HfError> {
        self.inner
            .encode_fast(text, true)
            .map(|encoding| encoding.len())
            .map_err(|e| HfError::Encode(e.to_string()))
    }

    /// Counts of `texts`, in order; large batches are spread over the process's pool.
    pub fn count_batch(&self, texts: &[&str]) -> Result<Vec<usize>, HfError> {
        let total: usize = texts.iter().map(|t| t.len()).sum();
        if texts.len() < 2 || total < PARALLEL_MIN_BYTES {
            texts.iter().map(|t| self.count(t)).collect()
        } else {
            pool::map(texts, 1, |t| self.count(t)).into_iter().collect()
        }
    }
}

/// Whether `part` is certainly in NFKC already (Unicode's quick check says yes), so that the
/// normalizer would give it back unchanged.
fn already_nfkc(part: &str) -> bool {
    unicode_normalization_alignments::is_nfkc_quick(part.chars())
        == unicode_normalization_alignments::IsNormalized::Yes
}

/// NFKC of `text` by `normalizer` (the file's NFKC), run on its non-ASCII parts only (see
/// `HfTokenizer::nfkc`), and only on those the quick check does not pass: `text` itself when it
/// passes them all.
///
/// Why the quick check: English and code hold a few characters NFKC leaves alone (curly quotes,
/// dashes, accented letters in their composed form), and the normalizer ran on each of them only
/// to give it back, before a copy of the text was counted. Claude's tokenizer, English with such
/// characters (through Python, builds in turns, medians of 31 runs): 100 KB ~252 -> ~241 µs (it
/// also holds `…`, which NFKC changes), 1 KB ~8.8 -> ~8.5 µs.
/// The index of the first byte of `bytes` that is not ASCII. Whole blocks are checked first by
/// `is_ascii`, a word at a time: a byte-by-byte search was ~11% of a Claude count of 100 KB of
/// English with a few curly quotes (it walks the ASCII text between them).
#[inline]
fn first_non_ascii(bytes: &[u8]) -> Option<usize> {
    const BLOCK: usize = 64;
    let start = bytes
        .chunks_exact(BLOCK)
        .position(|block| !block.is_ascii())
        .map_or(bytes.len() - bytes.len() % BLOCK, |k| k * BLOCK);
    bytes[start..]
        .iter()
        .position(|&b| b >= 0x80)
        .map(|p| start + p)
}

fn normalize_in_parts<'t, N: Normalizer>(
    normalizer: &N,
    text: &'t str,
) -> Result<Cow<'t, str>, HfError> {
    let bytes = text.as_bytes();
    // The normalized text, once a part changes; `text[..copied]` is in it.
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while let Some(run) = first_non_ascii(&bytes[i..]).map(|p| i + p) {
        // `run > i` except at the very start; the byte before `run` is then ASCII.
        let start = if run > i { run - 1 } else { run };
        let end = bytes[run..]
            .iter()
            .position(|&b| b < 0x80)
            .map_or(bytes.len(), |p| run + p);
        i = end;
        let part = &text[start..end];
        if already_nfkc(part) {
            continue;
        }
        let out = out.get_or_insert_with(|| String::with_capacity(text.len() + 16));
        out.push_str(&text[copied..start]);
        let mut normalized = NormalizedString::from(part);
        normalizer
            .normalize(&mut normalized)
            .map_err(|e| HfError::Encode(e.to_string()))?;
        out.push_str(normalized.get());
        copied = end;
    }
    Ok(match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal byte-level BPE tokenizer: bytes "a" and "b" and the merge "a b".
    const TINY: &str = r#"{
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null, "decoder": null,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3}, "merges": ["a b"]}
    }"#;

    #[test]
    fn counts_with_merges_and_pieces() {
        let t = HfTokenizer::from_bytes(TINY.as_bytes(), "tiny".into()).unwrap();
        assert_eq!(t.encode("ab").unwrap(), vec![2]);
        assert_eq!(t.count("abab").unwrap(), 2);
        assert_eq!(t.count("ab ab").unwrap(), 3);
        assert_eq!(t.count("").unwrap(), 0);
        let batch = t.count_batch(&["ab", "a b", ""]).unwrap();
        assert_eq!(batch, vec![1, 3, 0]);
        let big: Vec<String> = (0..100).map(|i| "ab ".repeat(200 + i)).collect();
        let refs: Vec<&str> = big.iter().map(String::as_str).collect();
        let expected: Vec<usize> = refs.iter().map(|s| t.count(s).unwrap()).collect();
        assert_eq!(t.count_batch(&refs).unwrap(), expected);
    }

    #[test]
    fn nfkc_in_parts_is_nfkc_of_the_whole() {
        let nfkc = tokenizers::normalizers::unicode::NFKC;
        let short = [
            "",
            "plain ASCII",
            "\u{e9}t\u{e9} e\u{301}e\u{308} \u{fb01}ne \u{ff21}\u{ff22}1\u{b2}",
            "=\u{338} <\u{338}x a\u{301}\u{316}\u{302}",
            "\u{301}leading mark, \u{2163}, \u{3000}, \u{1100}\u{1161}\u{11a8}",
            "\u{2018}quoted\u{2019} \u{2014} \u{2026}",
        ];
        // Long ASCII stretches between the parts, on both sides of the 64-byte blocks.
        let long = (60..=130).step_by(7).map(|n| {
            format!(
                "{}\u{2026}{}e\u{301}{}",
                "a".repeat(n),
                "b".repeat(n / 2),
                "c".repeat(n)
            )
        });
        for text in short.iter().map(|t| t.to_string()).chain(long) {
            let text = text.as_str();
            let mut whole = NormalizedString::from(text);
            nfkc.normalize(&mut whole).unwrap();
            assert_eq!(
                normalize_in_parts(&nfkc, text).unwrap(),
                whole.get(),
                "{text:?}"
            );
            let borrowed = matches!(normalize_in_parts(&nfkc, text).unwrap(), Cow::Borrowed(_));
            assert_eq!(borrowed, whole.get() == text, "{text:?}");
        }
    }

    #[test]
    fn first_non_ascii_is_the_first_byte_from_0x80() {
        for len in 0..200 {
            for at in (0..len).chain([len]) {
                let mut bytes = vec![b'a'; len];
                for b in bytes.iter_mut().skip(at).step_by(5) {
                    *b = 0x80 | (*b & 0x3f);
                }
                let expected = bytes.iter().position(|&b| b >= 0x80);
                assert_eq!(
                    first_non_ascii(&bytes),
                    expected,
                    "length {len}, first at {at}"
                );
            }
        }
    }

    /// Text the quick check calls NFKC comes back unchanged from the normalizer, on every code
    /// point of the Basic Multilingual Plane and a sample of the others, alone and after a letter
    /// or a mark, and the check says yes to common text that NFKC leaves alone.
    #[test]
    fn text_the_quick_check_passes_is_nfkc() {
        let nfkc = tokenizers::normalizers::unicode::NFKC;
        let mut passed = 0;
        for cp in (0x80..0x1_0000u32).chain((0x1_0000..0x11_0000).step_by(97)) {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            for text in [
                format!("{c}"),
                format!("a{c}"),
                format!("{c}\u{301}"),
                format!("e\u{301}{c}"),
            ] {
                if already_nfkc(&text) {
                    passed += 1;
                    let mut normalized = NormalizedString::from(text.as_str());
                    nfkc.normalize(&mut normalized).unwrap();
                    assert_eq!(normalized.get(), text, "U+{cp:04X}");
                }
            }
        }
        assert!(passed > 100_000, "{passed}");
        assert!(already_nfkc(
            "\u{2018}quoted\u{2019} \u{2014} caf\u{e9} \u{201c}x\u{201d}"
        ));
        assert!(!already_nfkc("\u{fb01}ne"));
    }

    #[test]
    fn bad_files_are_errors() {
        let err = HfTokenizer::from_bytes(b"{not json", "x.json".into()).unwrap_err();
        assert!(matches!(err, HfError::Invalid { .. }), "{err}");
        let err = HfTokenizer::from_file(Path::new("/nonexistent/tokenizer.json")).unwrap_err();
        assert!(matches!(err, HfError::Unreadable { .. }), "{err}");
    }
}
