//! Hand-written pre-tokenizers: one scanner per tiktoken pattern.
//!
//! Each `next_*` function returns the end of the regex match that starts at `i`. The patterns are
//! the ones in `tiktoken_ext/openai_public.py` (tiktoken 0.14), matched with leftmost-first
//! (backtracking) semantics. Every character starts some match and no alternative matches the
//! empty string, so the matches tile the text and `find_iter` reduces to calling `next_*`
//! repeatedly. The comment on each function explains how the backtracking collapses into
//! straight-line code.

use super::blocks;
use super::classes::{Classes, L, LO, N, NL, UP, WS};

/// Which pattern to scan with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// r50k_base and p50k_base
    Gpt2,
    Cl100k,
    O200k,
}

/// Calls `f` with every pre-tokenizer piece of `text`, in order.
#[inline(always)]
pub(crate) fn for_each_piece<'a, F: FnMut(&'a [u8])>(
    pattern: Pattern,
    t: &Classes,
    text: &'a str,
    f: F,
) {
    // One loop per pattern (the const parameter of `blocks::pieces`), so that each pattern's
    // scanners are inlined into a loop of their own.
    let s = text.as_bytes();
    match pattern {
        Pattern::Gpt2 => super::blocks::pieces::<{ blocks::GPT2 }, _>(t, s, f),
        Pattern::Cl100k => super::blocks::pieces::<{ blocks::CL100K }, _>(t, s, f),
        Pattern::O200k => super::blocks::pieces::<{ blocks::O200K }, _>(t, s, f),
    }
}

/// `for_each_piece` by the character scanners alone (the reference of `blocks`).
#[cfg(test)]
pub(crate) fn for_each_piece_by_character<'a>(
    pattern: Pattern,
    t: &Classes,
    text: &'a str,
    f: impl FnMut(&'a [u8]),
) {
    let s = text.as_bytes();
    match pattern {
        Pattern::Gpt2 => pieces(t, s, f, next_gpt2),
        Pattern::Cl100k => pieces(t, s, f, next_cl100k),
        Pattern::O200k => pieces(t, s, f, next_o200k),
    }
}

#[cfg(test)]
fn pieces<'a, F: FnMut(&'a [u8]), S: Fn(&Classes, &[u8], usize) -> usize>(
    t: &Classes,
    s: &'a [u8],
    mut f: F,
    next: S,
) {
    let mut i = 0;
    while i < s.len() {
        // `max` guards the loop against a scanner bug ever returning a non-advancing end.
        let end = next(t, s, i).max(i + 1).min(s.len());
        if let Some(piece) = s.get(i..end) {
            f(piece);
        }
        i = end;
    }
}

/// Byte length of a character that matches `letter` case-insensitively (Unicode simple case
/// folding, as `(?i)` does), or 0. Only the ASCII letters of the contractions are asked for; of
/// these only `s` has a non-ASCII fold (U+017F LATIN SMALL LETTER LONG S; `k`'s Kelvin sign
/// does not matter since no contraction has a `k`). A unit test checks this against regex-syntax.
#[inline(always)]
fn fold(s: &[u8], i: usize, letter: u8) -> usize {
    match s.get(i) {
        Some(&b) if b | 0x20 == letter => 1,
        Some(0xc5) if letter == b's' && s.get(i + 1) == Some(&0xbf) => 2,
        _ => 0,
    }
}

/// `'(?i:[sdmt]|ll|ve|re)` after the apostrophe at `i - 1`; o200k's
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)` is the same set of words (with distinct first letters, so the
/// order of the alternatives does not matter).
#[inline(always)]
pub(crate) fn contraction_ci(s: &[u8], i: usize) -> Option<usize> {
    for letter in [b's', b'd', b'm', b't'] {
        let n = fold(s, i, letter);
        if n > 0 {
            return Some(i + n);
        }
    }
    for (a, b) in [(b'l', b'l'), (b'v', b'e'), (b'r', b'e')] {
        let n = fold(s, i, a);
        if n > 0 {
            let m = fold(s, i + n, b);
            if m > 0 {
                return Some(i + n + m);
            }
        }
    }
    None
}

/// `'(?:[sdmt]|ll|ve|re)` (GPT-2's contractions, lower case only) after the apostrophe at
/// `i - 1`: the end of the contraction.
#[inline(always)]
pub(crate) fn contraction_gpt2(s: &[u8], i: usize) -> Option<usize> {
    match s.get(i..).unwrap_or_default() {
        [b's' | b'd' | b'm' | b't', ..] => Some(i + 1),
        [b'l', b'l', ..] | [b'v' | b'r', b'e', ..] => Some(i + 2),
        _ => None,
    }
}

/// The whitespace run starting at `i` (which is whitespace): its end, the start of its last
/// character, and the end of its last `\r`/`\n` (0 if none).
#[inline(always)]
fn ws_run(t: &Classes, s: &[u8], i: usize) -> (usize, usize, usize) {
    let mut q = i;
    let mut last = i;
    let mut nl_end = 0;
    while q < s.len() {
        let (c, len) = t.at(s, q);
        if c & WS == 0 {
            break;
        }
        if c & NL != 0 {
            nl_end = q + len;
        }
        last = q;
        q += len;
    }
    (q, last, nl_end)
}

/// r50k_base / p50k_base:
/// `'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s`
#[inline(always)]
pub(crate) fn next_gpt2(t: &Classes, s: &[u8], i: usize) -> usize {
    let b = s[i];
    if b == b'\'' {
        if let Some(end) = contraction_gpt2(s, i + 1) {
            return end;
        }
    }
    let (c, len) = t.at(s, i);
    if c & L != 0 {
        return t.run(s, i + len, L);
    }
    if c & N != 0 {
        return t.run(s, i + len, N);
    }
    if c & WS == 0 {
        return t.run_none(s, i + len, WS | L | N);
    }
    // ` ?` followed by a letter, digit or other run; the three classes are disjoint.
    if b == b' ' && i + 1 < s.len() {
        let (c2, len2) = t.at(s, i + 1);
        if c2 & L != 0 {
            return t.run(s, i + 1 + len2, L);
        }
        if c2 & N != 0 {
            return t.run(s, i + 1 + len2, N);
        }
        if c2 & WS == 0 {
            return t.run_none(s, i + 1 + len2, WS | L | N);
        }
    }
    let (end, last, _) = ws_run(t, s, i);
    if end == s.len() {
        // `\s++$`
        end
    } else if last > i {
        // `\s+(?!\S)`: the run is followed by a non-space, so it gives back its last character.
        last
    } else {
        // `\s`
        i + len
    }
}

/// cl100k_base:
/// `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|
/// \s++$|\s*[\r\n]|\s+(?!\S)|\s`
#[inline(always)]
pub(crate) fn next_cl100k(t: &Classes, s: &[u8], i: usize) -> usize {
    let b = s[i];
    if b == b'\'' {
        if let Some(end) = contraction_ci(s, i + 1) {
            return end;
        }
    }
    let (c, len) = t.at(s, i);
    if c & L != 0 {
        return t.run(s, i + len, L);
    }
    if c & N != 0 {
        // `\p{N}{1,3}+`
        let mut end = i + len;
        for _ in 0..2 {
            if end < s.len() {
                let (c2, len2) = t.at(s, end);
                if c2 & N != 0 {
                    end += len2;
                    continue;
                }
            }
            break;
        }
        return end;
    }
    let next = i + len;
    let (c2, len2) = if next < s.len() {
        t.at(s, next)
    } else {
        (0, 0)
    };
    // `[^\r\n\p{L}\p{N}]?+\p{L}++`: `c` is neither a letter nor a digit here; the prefix is taken
    // unless it is a newline. (Possessiveness changes nothing: without the prefix the character
    // itself would have to be a letter.)
    if c & NL == 0 && c2 & L != 0 {
        return t.run(s, next + len2, L);
    }
    if c & WS == 0 {
        // `[^\s\p{L}\p{N}]++[\r\n]*+`
        let end = t.run_none(s, next, WS | L | N);
        return newlines(s, end);
    }
    if b == b' ' && len2 > 0 && c2 & (WS | L | N) == 0 {
        // ` [^\s\p{L}\p{N}]++[\r\n]*+`
        let end = t.run_none(s, next + len2, WS | L | N);
        return newlines(s, end);
    }
    let (end, last, nl_end) = ws_run(t, s, i);
    if end == s.len() {
        // `\s++$`
        end
    } else if nl_end != 0 {
        // `\s*[\r\n]`: the greedy `\s*` backs off to the last newline of the run.
        nl_end
    } else if last > i {
        // `\s+(?!\S)`
        last
    } else {
        // `\s`
        next
    }
}

/// End of a run of `\r`/`\n` bytes from `i`.
#[inline(always)]
fn newlines(s: &[u8], mut i: usize) -> usize {
    while matches!(s.get(i), Some(b'\r' | b'\n')) {
        i += 1;
    }
    i
}

/// End of a run of `[\r\n/]` bytes from `i`.
#[inline(always)]
fn newlines_or_slash(s: &[u8], mut i: usize) -> usize {
    while matches!(s.get(i), Some(b'\r' | b'\n' | b'/')) {
        i += 1;
    }
    i
}

/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)?` at `i`.
#[inline(always)]
fn opt_contraction(s: &[u8], i: usize) -> usize {
    if s.get(i) == Some(&b'\'') {
        if let Some(end) = contraction_ci(s, i + 1) {
            return end;
        }
    }
    i
}

/// o200k's first word alternative without its optional prefix, from `p`:
/// `[UP]*[LO]+(contraction)?` where UP = `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]` and
/// LO = `[\p{Ll}\p{Lm}\p{Lo}\p{M}]` overlap in Lm, Lo and M.
///
/// Backtracking: `UP*` first takes the whole UP run (length `a`) and gives characters back until
/// `LO+` can match. If the character after the run is LO (then it is Ll), `LO+` takes the LO run
/// from there. Otherwise `UP*` must back off to the last run character that is also LO; `LO+`
/// then matches just that character, because what follows it is Lu/Lt or the (non-LO) character
/// after the run.
#[inline(always)]
fn o200k_word1(t: &Classes, s: &[u8], p: usize) -> Option<usize> {
    let mut q = p;
    let mut last_both_end = None;
    while q < s.len() {
        let (c, len) = t.at(s, q);
        if c & UP == 0 {
            if c & LO != 0 {
                let end = t.run(s, q + len, LO);
                return Some(opt_contraction(s, end));
            }
            break;
        }
        if c & LO != 0 {
            last_both_end = Some(q + len);
        }
        q += len;
    }
    last_both_end.map(|end| opt_contraction(s, end))
}

/// o200k's second word alternative without its prefix: `[UP]+[LO]*(contraction)?` (greedy, no
/// backtracking needed since everything after `UP+` may match empty).
#[inline(always)]
fn o200k_word2(t: &Classes, s: &[u8], p: usize) -> Option<usize> {
    if p >= s.len() {
        return None;
    }
    let (c, len) = t.at(s, p);
    if c & UP == 0 {
        return None;
    }
    let end = t.run(s, p + len, UP);
    let end = t.run(s, end, LO);
    Some(opt_contraction(s, end))
}

/// o200k_base: the alternatives
/// `[^\r\n\p{L}\p{N}]?[UP]*[LO]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
/// `[^\r\n\p{L}\p{N}]?[UP]+[LO]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
/// `\p{N}{1,3}`, ` ?[^\s\p{L}\p{N}]+[\r\n/]*`, `\s*[\r\n]+`, `\s+(?!\S)`, `\s+`.
#[inline(always)]
pub(crate) fn next_o200k(t: &Classes, s: &[u8], i: usize) -> usize {
    let (c, len) = t.at(s, i);
    let next = i + len;
    if c & (UP | LO) != 0 && c & L != 0 {
        // A letter: the prefix cannot be taken and the first alternative succeeds (the letter is
        // UP or LO, and a lone UP-only letter falls to the second alternative).
        if let Some(end) = o200k_word1(t, s, i) {
            return end;
        }
        return o200k_word2(t, s, i).unwrap_or(next);
    }
    let prefix = c & (NL | L | N) == 0;
    if prefix {
        // Order of the backtracking: alternative 1 with prefix, without, alternative 2 with
        // prefix, without (a mark, being UP and LO but not L, can be the prefix or the word).
        if let Some(end) = o200k_word1(t, s, next) {
            return end;
        }
        if c & LO != 0 {
            if let Some(end) = o200k_word1(t, s, i) {
                return end;
            }
        }
        if let Some(end) = o200k_word2(t, s, next) {
            return end;
        }
    }
    if c & N != 0 {
        // `\p{N}{1,3}`
        let mut end = next;
        for _ in 0..2 {
            if end < s.len() {
                let (c2, len2) = t.at(s, end);
                if c2 & N != 0 {
                    end += len2;
                    continue;
                }
            }
            break;
        }
        return end;
    }
    if c & WS == 0 {
        // `[^\s\p{L}\p{N}]+[\r\n/]*`
        let end = t.run_none(s, next, WS | L | N);
        return newlines_or_slash(s, end);
    }
    if s[i] == b' ' && next < s.len() {
        let (c2, len2) = t.at(s, next);
        if c2 & (WS | L | N) == 0 {
            let end = t.run_none(s, next + len2, WS | L | N);
            return newlines_or_slash(s, end);
        }
    }
    let (end, last, nl_end) = ws_run(t, s, i);
    if nl_end != 0 {
        // `\s*[\r\n]+`: `\s*` backs off to the last newline of the run, `[\r\n]+` takes it.
        nl_end
    } else if end == s.len() {
        // `\s+(?!\S)` at the end of the text
        end
    } else if last > i {
        // `\s+(?!\S)` giving back the last character
        last
    } else {
        // `\s+` on a single whitespace character followed by a non-space
        end
    }
}
