//! A hand-written pre-tokenizer for DeepSeek's `tokenizer.json` (V3 and R1 ship the same one).
//!
//! The file's pre-tokenizer is a sequence of three regex splits, each keeping both the matches
//! and the text between them as pieces (`Isolated`), applied to every piece the previous step
//! produced, then a byte-level mapping without a regex:
//!
//! 1. `\p{N}{1,3}`
//! 2. `[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+` (CJK ideographs, hiragana, katakana)
//! 3. ``[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|``
//!    `` ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+``
//!
//! Each step sees one piece at a time, so a look-ahead stops at the end of the piece. The
//! comments in `match_at` say how the backtracking of step 3 collapses into straight-line code.
//! The classes come from regex-syntax's tables, the ones the `tokenizers` crate's regex engine
//! (`fancy-regex`) consults; `tests/test_hf_tokens.py` holds the result to Python `tokenizers`.

use super::classes::Classes;
use crate::published::Published;

/// `\p{L}`
const L: u8 = 1;
/// `\p{N}`
const N: u8 = 2;
/// `\s`
const WS: u8 = 4;
/// `\p{M}`
const M: u8 = 8;
/// `\p{P}`
const P: u8 = 16;
/// `\p{S}`
const S: u8 = 32;
/// `[\r\n]`
const NL: u8 = 64;
/// `[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]`
const CJK: u8 = 128;

fn classes() -> &'static Classes {
    static TABLE: Published<Classes> = Published::new();
    TABLE.get_or_build(
        || {
            Classes::build_with(&[
                (r"\p{L}", L),
                (r"\p{N}", N),
                (r"\s", WS),
                (r"\p{M}", M),
                (r"\p{P}", P),
                (r"\p{S}", S),
                (r"[\r\n]", NL),
                (
                    r"[\u{4e00}-\u{9fa5}\u{3040}-\u{309f}\u{30a0}-\u{30ff}]",
                    CJK,
                ),
            ])
        },
        drop,
    )
}

/// Calls `f` with every piece of `text`, in order.
pub(crate) fn for_each_piece<F: FnMut(&[u8])>(text: &str, mut f: F) {
    let t = classes();
    let s = text.as_bytes();
    // Step 1: runs of `\p{N}` in chunks of at most three characters.
    let mut i = 0;
    let mut rest = 0;
    while i < s.len() {
        let (c, len) = t.at(s, i);
        if c & N == 0 {
            i += len;
            continue;
        }
        let mut end = i + len;
        for _ in 0..2 {
            if end >= s.len() {
                break;
            }
            let (c2, len2) = t.at(s, end);
            if c2 & N == 0 {
                break;
            }
            end += len2;
        }
        if rest < i {
            step2(t, &s[rest..i], &mut f);
        }
        step2(t, &s[i..end], &mut f);
        i = end;
        rest = end;
    }
    if rest < s.len() {
        step2(t, &s[rest..], &mut f);
    }
}

/// Step 2: runs of CJK characters.
#[inline(always)]
fn step2<F: FnMut(&[u8])>(t: &Classes, s: &[u8], f: &mut F) {
    let mut i = 0;
    let mut rest = 0;
    while i < s.len() {
        let (c, len) = t.at(s, i);
        if c & CJK == 0 {
            i += len;
            continue;
        }
        let end = t.run(s, i + len, CJK);
        if rest < i {
            step3(t, &s[rest..i], f);
        }
        step3(t, &s[i..end], f);
        i = end;
        rest = end;
    }
    if rest < s.len() {
        step3(t, &s[rest..], f);
    }
}

/// Step 3: the matches of the last pattern and the text between them.
#[inline(always)]
fn step3<F: FnMut(&[u8])>(t: &Classes, s: &[u8], f: &mut F) {
    let mut i = 0;
    let mut gap = 0;
    while i < s.len() {
        match match_at(t, s, i) {
            Some(end) => {
                if gap < i {
                    f(&s[gap..i]);
                }
                // `max` guards the loop against a scanner bug ever returning a non-advancing end.
                let end = end.max(i + 1).min(s.len());
                f(&s[i..end]);
                i = end;
                gap = end;
            }
            None => i += t.at(s, i).1,
        }
    }
    if gap < s.len() {
        f(&s[gap..]);
    }
}

/// The end of the step-3 match starting at `i`, if one does: the alternatives in order.
#[inline(always)]
fn match_at(t: &Classes, s: &[u8], i: usize) -> Option<usize> {
    let b = s[i];
    // ``[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+``: the class is ASCII punctuation.
    if b.is_ascii_punctuation() {
        let mut end = i + 1;
        while end < s.len() && s[end].is_ascii_alphabetic() {
            end += 1;
        }
        if end > i + 1 {
            return Some(end);
        }
    }
    let (c, len) = t.at(s, i);
    // `[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+`: from a letter or mark, the optional character
    // either cannot be taken (a letter) or is a mark that the run would take anyway, so the
    // match is the run; otherwise it needs the optional character and a run right after it.
    if c & (L | M) != 0 {
        return Some(t.run(s, i, L | M));
    }
    if c & (NL | L | P | S) == 0 && i + len < s.len() {
        let (c2, len2) = t.at(s, i + len);
        if c2 & (L | M) != 0 {
            return Some(t.run(s, i + len + len2, L | M));
        }
    }
    // ` ?[\p{P}\p{S}]+[\r\n]*`: a space is not punctuation, so the optional space is taken
    // whenever the alternative can match at all.
    let p = if b == b' ' { i + 1 } else { i };
    if p < s.len() && t.at(s, p).0 & (P | S) != 0 {
        let mut end = t.run(s, p, P | S);
        while end < s.len() && matches!(s[end], b'\r' | b'\n') {
            end += 1;
        }
        return Some(end);
    }
    if c & WS == 0 {
        return None;
    }
    // The whitespace run from `i`, the end of its last `\r`/`\n` and the start of its last
    // character.
    let mut end = i;
    let mut newline_end = None;
    let mut last = i;
    while end < s.len() {
        let (c2, len2) = t.at(s, end);
        if c2 & WS == 0 {
            break;
        }
        if c2 & NL != 0 {
            newline_end = Some(end + len2);
        }
        last = end;
        end += len2;
    }
    // `\s*[\r\n]+`: `\s*` gives back characters until `[\r\n]` can match, which is at the last
    // newline of the run; `[\r\n]+` then ends right after it (the next character of the run, if
    // any, is not a newline).
    if let Some(e) = newline_end {
        return Some(e);
    }
    if end == s.len() {
        // `\s+(?!\S)` at the end of the piece.
        Some(end)
    } else if last > i {
        // `\s+(?!\S)` before a non-space: the run gives back its last character.
        Some(last)
    } else {
        // `\s+`: a single whitespace character before a non-space.
        Some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_piece(text, |p| out.push(String::from_utf8_lossy(p).into_owned()));
        out
    }

    #[test]
    fn splits_like_the_pattern() {
        assert_eq!(pieces(""), Vec::<String>::new());
        assert_eq!(pieces("Hello world"), ["Hello", " world"]);
        assert_eq!(pieces("12345 abc"), ["123", "45", " abc"]);
        assert_eq!(pieces("a  b"), ["a", " ", " b"]);
        assert_eq!(pieces("a  "), ["a", "  "]);
        assert_eq!(pieces("x \n\n y"), ["x", " \n\n", " y"]);
        assert_eq!(pieces("don't"), ["don", "'t"]);
        assert_eq!(pieces("hi!!\n\nok"), ["hi", "!!\n\n", "ok"]);
        assert_eq!(pieces("中文abc"), ["中文", "abc"]);
        assert_eq!(pieces("a 1"), ["a", " ", "1"]);
        assert_eq!(pieces("\u{1}\u{1}a"), ["\u{1}", "\u{1}a"]);
    }

    /// The three splits run by the regex engine `tokenizers` uses, each on every piece of the
    /// step before, matches and the text between them kept.
    fn regexes() -> Vec<fancy_regex::Regex> {
        [
            r"\p{N}{1,3}",
            "[\u{4e00}-\u{9fa5}\u{3040}-\u{309f}\u{30a0}-\u{30ff}]+",
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
        ]
        .iter()
        .map(|p| fancy_regex::Regex::new(p).unwrap())
        .collect()
    }

    fn reference(regexes: &[fancy_regex::Regex], text: &str) -> Vec<String> {
        let mut pieces = vec![text.to_owned()];
        for re in regexes {
            let mut next = Vec::new();
            for piece in &pieces {
                let mut last = 0;
                for m in re.find_iter(piece) {
                    let m = m.unwrap();
                    if last < m.start() {
                        next.push(piece[last..m.start()].to_owned());
                    }
                    next.push(m.as_str().to_owned());
                    last = m.end();
                }
                if last < piece.len() {
                    next.push(piece[last..].to_owned());
                }
            }
            pieces = next;
        }
        pieces
    }

    #[test]
    fn equals_the_regexes_on_generated_text() {
        let alphabet: Vec<char> = concat!(
            "abcXYZ'sdt!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~ \t\n\r\u{b}\u{c}\u{85}\u{a0}\u{2028}\u{3000}",
            "0123456789\u{663}\u{96a}\u{b2}\u{2163}\u{3007}中文字あいうカタナ\u{30fb}\u{309b}\u{30a0}\u{30fc}",
            "\u{301}\u{308}\u{e9}\u{1f600}\u{200d}\u{ff21}\u{fb01}\u{0}\u{1}\u{7f}",
        )
        .chars()
        .collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as usize) % n
        };
        let regexes = regexes();
        for _ in 0..3000 {
            let len = next(24);
            let text: String = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
            assert_eq!(pieces(&text), reference(&regexes, &text), "{text:?}");
        }
    }

    #[test]
    fn pieces_tile_the_text() {
        let text = "Ünïcode 中文 テスト 123456 \t\r\n  x?!.,;\u{301}e\u{301} 😀😀 \u{a0}a";
        assert_eq!(pieces(text).concat(), text);
    }
}
