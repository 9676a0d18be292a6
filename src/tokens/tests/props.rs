//! Property tests: the hand-written scanners against tiktoken's own patterns, run by the regex
//! engine tiktoken uses (`fancy-regex`), on generated Unicode text.

use fancy_regex::Regex;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

use super::super::classes::classes;
use super::super::scan::{for_each_piece, for_each_piece_by_character, Pattern};

/// The patterns as published in `tiktoken_ext/openai_public.py`, character for character the ones
/// in `python/fast_litellm/_fallback/tokens.py` (`patterns_match_the_fallback` holds them equal).
const R50K: &str =
    r"'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s";
const CL100K: [&str; 2] = [
    r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+",
    r"|\s++$|\s*[\r\n]|\s+(?!\S)|\s",
];
const O200K: [&str; 7] = [
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"\p{N}{1,3}",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"\s*[\r\n]+",
    r"\s+(?!\S)",
    r"\s+",
];

/// Fixed seed and no failure files: every run tries the same cases, and a failure prints its
/// (shrunk) input.
fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x7141_c7e5),
        ..Config::default()
    })
}

/// Characters where the patterns' alternatives meet: the contraction letters in both cases (and
/// the two non-ASCII letters that case-fold to them), every kind of white space and line break,
/// letters of each case class, marks, digits and other numbers, CJK, emoji with joiners; then
/// any code point at all.
fn pattern_char() -> impl Strategy<Value = char> {
    let ascii: Vec<char> = "'sdmtlvreSDMTLVRE aZ09.,/-_!?#\t\n\r".chars().collect();
    let unicode: Vec<char> = "\u{a0}\u{85}\u{b}\u{c}\u{1680}\u{2028}\u{2029}\u{3000}\u{200b}\
        éÉßǅʰ\u{301}\u{20dd}\u{663}²½Ⅻ日本のテſ\u{212a}İﬃ\u{200d}\u{fe0f}👍🇺\u{e000}\u{10ffff}"
        .chars()
        .collect();
    prop_oneof![
        6 => proptest::sample::select(ascii),
        3 => proptest::sample::select(unicode),
        1 => any::<char>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(pattern_char(), 0..40).prop_map(|chars| chars.into_iter().collect())
}

/// Mostly ASCII, as the block scanner (`blocks`) takes it: words of both cases, contractions and
/// near-contractions, digits, punctuation, slashes, every kind of line break and white space, with
/// a non-ASCII letter, mark, space or CJK character now and then.
fn ascii_char() -> impl Strategy<Value = char> {
    let common: Vec<char> = "eaiouxnST1 '' \n".chars().collect();
    let rare: Vec<char> = "sdmtlvreSDMTLVRE aZ09.,/-_!?#\t\n\r\x0b\x0c\x00\x7f(\""
        .chars()
        .collect();
    let unicode: Vec<char> = "é\u{301}ſ\u{a0}\u{2028}日\u{663}".chars().collect();
    prop_oneof![
        8 => proptest::sample::select(common),
        6 => proptest::sample::select(rare),
        1 => proptest::sample::select(unicode),
    ]
}

/// Long enough for whole blocks (64 bytes) and the windows between them.
fn ascii_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(ascii_char(), 0..300).prop_map(|chars| chars.into_iter().collect())
}

fn pieces_of(text: &str, each: impl Fn(&str, &mut dyn FnMut(&[u8]))) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    each(text, &mut |piece: &[u8]| got.push(piece.to_vec()));
    got
}

/// The block scanner (`blocks`) against the character scanner, and against the regex on the same
/// mostly-ASCII text.
fn check_blocks(pattern: Pattern, regex: &str) {
    let table = classes();
    runner(6_000)
        .run(&ascii_text(), |text| {
            let blocks = pieces_of(&text, |t, f| for_each_piece(pattern, table, t, f));
            let chars = pieces_of(&text, |t, f| {
                for_each_piece_by_character(pattern, table, t, f)
            });
            prop_assert_eq!(blocks, chars, "text {:?}", text);
            Ok(())
        })
        .unwrap();
    check_with(pattern, regex, 1_500, ascii_text());
}

#[test]
fn o200k_blocks_match_the_character_scanner_and_the_regex() {
    check_blocks(Pattern::O200k, &O200K.join("|"));
}

#[test]
fn gpt2_blocks_match_the_character_scanner_and_the_regex() {
    check_blocks(Pattern::Gpt2, R50K);
}

#[test]
fn cl100k_blocks_match_the_character_scanner_and_the_regex() {
    check_blocks(Pattern::Cl100k, &CL100K.concat());
}

fn check(pattern: Pattern, regex: &str, cases: u32) {
    check_with(pattern, regex, cases, text());
}

/// The scanner of `pattern` against `regex` on `cases` texts drawn from `texts`.
fn check_with(pattern: Pattern, regex: &str, cases: u32, texts: impl Strategy<Value = String>) {
    let regex = Regex::new(regex).expect("tiktoken's pattern compiles");
    let table = classes();
    runner(cases)
        .run(&texts, |text| {
            let want: Vec<&str> = regex
                .find_iter(&text)
                .map(|m| m.expect("no backtracking limit on short text").as_str())
                .collect();
            let got = pieces_of(&text, |t, f| for_each_piece(pattern, table, t, f));
            let want: Vec<Vec<u8>> = want.iter().map(|p| p.as_bytes().to_vec()).collect();
            prop_assert_eq!(got, want, "text {:?}", text);
            Ok(())
        })
        .unwrap();
}

#[test]
fn gpt2_scanner_matches_the_regex() {
    check(Pattern::Gpt2, R50K, 3000);
}

#[test]
fn cl100k_scanner_matches_the_regex() {
    check(Pattern::Cl100k, &CL100K.concat(), 3000);
}

#[test]
fn o200k_scanner_matches_the_regex() {
    check(Pattern::O200k, &O200K.join("|"), 3000);
}

/// The patterns above are the fallback's, so the reference is the pattern users actually get.
#[test]
fn patterns_match_the_fallback() {
    let fallback = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/python/fast_litellm/_fallback/tokens.py"
    ))
    .expect("the fallback tokenizer's source");
    for part in [R50K].into_iter().chain(CL100K).chain(O200K) {
        assert!(fallback.contains(part), "{part:?} is not in the fallback");
    }
}
