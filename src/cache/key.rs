//! Canonical cache keys: a request (model, messages, parameters) written in one unambiguous byte
//! form and hashed with SHA-256, so that equal requests get equal keys whatever the order of
//! their dict keys.
//!
//! The byte form (the Python fallback writes exactly the same bytes, `_fallback/cache.py`):
//! - `None` → `n`; `True`/`False` → `T`/`F`;
//! - an int → `i`, its decimal digits, `;`; a float with an integral value below 2**63 in
//!   magnitude is written as that int (a provider reads `1` and `1.0` alike), any other float →
//!   `d` and its 8 IEEE bytes big-endian (every NaN as the one quiet NaN);
//! - a str → `s`, its UTF-8 length as 8 bytes big-endian, its UTF-8 bytes (lone surrogates kept
//!   as Python's `surrogatepass` writes them); bytes → `b`, length, the bytes;
//! - a list or tuple → `l`, its length, its items;
//! - a dict → `m`, its length, its (key, value) pairs each written out, sorted by those bytes.
//!
//! The top level is the request dict without the parameters that do not change the answer
//! (`IGNORED_PARAMETERS`), after a version prefix.

use sha2::{Digest, Sha256};

/// Request parameters left out of the key: they change how the answer is delivered (or who
/// asked), not what it is.
pub const IGNORED_PARAMETERS: [&str; 2] = ["stream", "user"];
/// Nesting deeper than this is refused (a self-containing list would never end).
pub const MAX_DEPTH: usize = 64;
/// Written before every key, so a change of the byte form changes every key.
pub const PREFIX: &[u8] = b"fast_litellm.cache.v1\0";

/// Writes one value in the canonical byte form.
#[derive(Default)]
pub struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
    pub fn none(&mut self) {
        self.bytes.push(b'n');
    }

    pub fn bool(&mut self, value: bool) {
        self.bytes.push(if value { b'T' } else { b'F' });
    }

    /// An integer given by its decimal text (Python ints have no size limit).
    pub fn int_text(&mut self, decimal: &str) {
        self.bytes.push(b'i');
        self.bytes.extend_from_slice(decimal.as_bytes());
        self.bytes.push(b';');
    }

    pub fn int(&mut self, value: i64) {
        self.int_text(&value.to_string());
    }

    pub fn float(&mut self, value: f64) {
        // 2**63 is exactly representable; below it an integral float converts exactly.
        if value.is_finite() && value.fract() == 0.0 && value.abs() < 9_223_372_036_854_775_808.0 {
            return self.int(value as i64);
        }
        let bits = if value.is_nan() {
            0x7ff8_0000_0000_0000
        } else {
            value.to_bits()
        };
        self.bytes.push(b'd');
        self.bytes.extend_from_slice(&bits.to_be_bytes());
    }

    pub fn str(&mut self, utf8: &[u8]) {
        self.bytes.push(b's');
        self.len(utf8.len());
        self.bytes.extend_from_slice(utf8);
    }

    pub fn raw_bytes(&mut self, data: &[u8]) {
        self.bytes.push(b'b');
        self.len(data.len());
        self.bytes.extend_from_slice(data);
    }

    pub fn list(&mut self, len: usize) {
        self.bytes.push(b'l');
        self.len(len);
    }

    /// A dict from its pairs, each already written (key bytes, value bytes).
    pub fn map(&mut self, mut pairs: Vec<(Vec<u8>, Vec<u8>)>) {
        pairs.sort_unstable();
        self.bytes.push(b'm');
        self.len(pairs.len());
        for (key, value) in pairs {
            self.bytes.extend_from_slice(&key);
            self.bytes.extend_from_slice(&value);
        }
    }

    fn len(&mut self, len: usize) {
        self.bytes.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// The key of a request already written in the canonical form: SHA-256 as 64 hex digits.
pub fn digest(canonical: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(PREFIX);
    hasher.update(canonical);
    let sum = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for byte in sum.iter() {
        hex.push(char::from(b"0123456789abcdef"[(byte >> 4) as usize]));
        hex.push(char::from(b"0123456789abcdef"[(byte & 15) as usize]));
    }
    hex
}
