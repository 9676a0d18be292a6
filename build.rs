//! Builds the token-counting tables with the crate (see `src/tokens/frozen.rs` for why).
//!
//! The tables come from the same code that builds them at run time: the vocabulary, merge, split
//! and character-class modules are compiled into this script from their own files. Every
//! `.tiktoken` file is checked against the sha256 OpenAI publishes for it (the hashes listed in
//! `python/fast_litellm/_vocab/__init__.py`) before anything is built from it; a file that does
//! not match fails the build.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[path = "src/published.rs"]
#[allow(dead_code)]
mod published;

// `src/tokens/{bpe,classes,split,vocab}.rs`, with the few items of the crate they name.
#[allow(dead_code, unused_imports, clippy::all)]
mod src {
    pub mod tokens {
        pub mod bpe;
        pub mod classes;
        pub mod split;
        pub mod vocab;

        /// Serial: a build runs alongside other compilations.
        pub mod pool {
            pub fn map<T, U, F: Fn(&T) -> U>(items: &[T], _min_len: usize, f: F) -> Vec<U> {
                items.iter().map(f).collect()
            }
        }

        pub mod frozen {
            pub fn classes() -> Option<super::classes::Classes> {
                None
            }
        }

        #[derive(Debug)]
        pub enum TokenError {
            InvalidVocabulary {
                encoding: &'static str,
                reason: String,
            },
        }
    }
}

use src::tokens::{classes::Classes, vocab};

/// The vocabularies and their number of ordinary tokens (as `EncodingName::vocab_size`; the
/// crate checks the stored count against it when it loads a table).
const VOCABULARIES: [(&str, usize); 4] = [
    ("r50k_base", 50_256),
    ("p50k_base", 50_280),
    ("cl100k_base", 100_256),
    ("o200k_base", 199_998),
];

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let vocab_dir = root.join("python/fast_litellm/_vocab");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/published.rs");
    for module in ["bpe", "classes", "split", "vocab"] {
        println!("cargo:rerun-if-changed=src/tokens/{module}.rs");
    }
    println!(
        "cargo:rerun-if-changed={}",
        vocab_dir.join("__init__.py").display()
    );

    let hashes = published_hashes(&vocab_dir.join("__init__.py"));
    for (name, size) in VOCABULARIES {
        let path = vocab_dir.join(format!("{name}.tiktoken"));
        println!("cargo:rerun-if-changed={}", path.display());
        let data =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let expected = hashes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, h)| h.as_str())
            .unwrap_or_else(|| panic!("no sha256 listed for {name}"));
        let actual = hex(&Sha256::digest(&data));
        assert_eq!(
            actual,
            expected,
            "{} is not OpenAI's {name} vocabulary",
            path.display()
        );
        let map = vocab::parse(name, &data, size)
            .unwrap_or_else(|e| panic!("invalid {name} vocabulary: {e:?}"));
        let parts = map.parts();
        let write = |part: &str, bytes: Vec<u8>| {
            std::fs::write(out.join(format!("{name}.{part}")), bytes).expect("write a table");
        };
        write(
            "slots",
            parts.slots.iter().flat_map(|s| s.to_le_bytes()).collect(),
        );
        write("arena", parts.arena.to_vec());
        write("bytes", le(&parts.bytes, u32::to_le_bytes));
        write("pairs", le(&parts.pairs, u32::to_le_bytes));
        write("merges", le(&parts.merges, u64::to_le_bytes));
        write("crossing_bits", le(&parts.crossing_bits, u64::to_le_bytes));
        write("chars", le(&parts.chars, u64::to_le_bytes));
        write(
            "meta",
            le(&[parts.max_len as u64, parts.len as u64], u64::to_le_bytes),
        );
    }

    let classes = Classes::build();
    let (ascii, pages, blocks) = classes.parts();
    std::fs::write(out.join("classes.ascii"), ascii).expect("write a table");
    std::fs::write(out.join("classes.pages"), le(pages, u16::to_le_bytes)).expect("write a table");
    std::fs::write(out.join("classes.blocks"), blocks).expect("write a table");
}

fn le<T: Copy, const N: usize>(values: &[T], to_le: fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| to_le(v)).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `(name, sha256)` from the `SHA256 = {...}` table of the vocabulary package: lines of the form
/// `"name": "64 hex digits",`.
fn published_hashes(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let start = text.find("SHA256 = {").expect("the SHA256 table");
    let table = &text[start..];
    let table = &table[..table.find('}').expect("the end of the SHA256 table")];
    table
        .lines()
        .filter_map(|line| {
            let mut quoted = line.split('"').skip(1).step_by(2);
            let name = quoted.next()?;
            let hash = quoted.next()?;
            (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| (name.to_string(), hash.to_string()))
        })
        .collect()
}
