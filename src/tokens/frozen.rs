//! The tables built with the crate: each vocabulary's rank, pair, split and per-character tables
//! and the character classes, computed by `build.rs` from the shipped `.tiktoken` files (after
//! checking their sha256 against OpenAI's) and embedded in the binary as they are laid out in
//! memory.
//!
//! Why: building them at load (parsing the file, hashing every token, merging every token's bytes
//! to find its pair) took ~35 ms for r50k, ~50-75 ms for cl100k and ~100-160 ms for o200k, and
//! every process paid it: a proxy worker, a CLI run, a serverless start, each lazily loading
//! forked worker. Borrowed from the binary they cost nothing to load, and only the pages a process
//! touches are ever read, from the page cache, shared by every process that maps the library.
//! The price is the size of the library (~30 MB of tables, about half of it empty hash slots).
//!
//! Each table is a little-endian file in `OUT_DIR`, included 64-byte aligned. On a little-endian
//! machine the bytes are the arrays themselves; elsewhere they are decoded into owned arrays.

use std::borrow::Cow;

use super::classes::Classes;
use super::vocab::{Parts, RankMap, Slot};
use super::EncodingName;

/// `include_bytes!` with an alignment that every element type here meets.
#[repr(C, align(64))]
struct Aligned<B: ?Sized>(B);

macro_rules! table {
    ($file:expr) => {{
        static DATA: &Aligned<[u8]> =
            &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/", $file)));
        &DATA.0
    }};
}

/// Element types whose every bit pattern is a value, with no padding.
trait Plain: Copy {
    const SIZE: usize;
    fn from_le(b: &[u8]) -> Self;
}

macro_rules! plain_int {
    ($($t:ty),*) => {$(
        impl Plain for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn from_le(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                <$t>::from_le_bytes(a)
            }
        }
    )*};
}
plain_int!(u16, u32, u64);

impl Plain for Slot {
    const SIZE: usize = 16;
    fn from_le(b: &[u8]) -> Self {
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Slot::from_le_bytes(a)
    }
}
const _: () = assert!(std::mem::size_of::<Slot>() == 16 && std::mem::align_of::<Slot>() <= 64);

/// The array of `T` stored little endian in `bytes`.
fn array<T: Plain>(bytes: &'static [u8]) -> Cow<'static, [T]> {
    let n = bytes.len() / T::SIZE;
    if cfg!(target_endian = "little") && bytes.as_ptr().cast::<T>().is_aligned() {
        // SAFETY: `bytes` is 'static, aligned for `T` (checked above; `Aligned` guarantees it)
        // and holds at least `n * size_of::<T>()` bytes; `T` is an integer or `Slot` (three
        // integers, `repr(C)`, no padding), for which every bit pattern is a value, and on a
        // little-endian machine the stored bytes are exactly its in-memory representation.
        Cow::Borrowed(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), n) })
    } else {
        Cow::Owned(bytes.chunks_exact(T::SIZE).map(T::from_le).collect())
    }
}

/// `max_len` and `len`, stored as two `u64`.
fn scalars(bytes: &'static [u8]) -> (usize, usize) {
    let v = array::<u64>(bytes);
    match *v {
        [max_len, len] => (max_len as usize, len as usize),
        _ => (0, 0),
    }
}

macro_rules! vocabulary {
    ($name:literal) => {{
        let (max_len, len) = scalars(table!(concat!($name, ".meta")));
        Parts {
            slots: array(table!(concat!($name, ".slots"))),
            arena: Cow::Borrowed(table!(concat!($name, ".arena"))),
            bytes: array(table!(concat!($name, ".bytes"))),
            pairs: array(table!(concat!($name, ".pairs"))),
            merges: array(table!(concat!($name, ".merges"))),
            crossing_bits: array(table!(concat!($name, ".crossing_bits"))),
            chars: array(table!(concat!($name, ".chars"))),
            max_len,
            len,
        }
    }};
}

/// The rank table of `name` built with the crate; `None` only if the stored tables are
/// malformed (a build that went wrong), in which case the caller parses the file instead.
pub(crate) fn rank_map(name: EncodingName) -> Option<RankMap> {
    let parts = match name {
        EncodingName::R50kBase => vocabulary!("r50k_base"),
        EncodingName::P50kBase => vocabulary!("p50k_base"),
        EncodingName::Cl100kBase => vocabulary!("cl100k_base"),
        // o200k_harmony has o200k_base's ranks: the same tables serve both.
        EncodingName::O200kBase | EncodingName::O200kHarmony => vocabulary!("o200k_base"),
    };
    if parts.len != name.vocab_size() {
        return None;
    }
    RankMap::from_parts(parts)
}

/// The character classes built with the crate.
pub(crate) fn classes() -> Option<Classes> {
    let ascii: [u8; 128] = table!("classes.ascii").try_into().ok()?;
    Some(Classes::from_parts(
        ascii,
        array(table!("classes.pages")),
        Cow::Borrowed(table!("classes.blocks")),
    ))
}
