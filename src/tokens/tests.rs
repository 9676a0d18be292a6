use super::*;

mod props;

fn vocab_bytes(name: EncodingName) -> Vec<u8> {
    let path = format!(
        "{}/python/fast_litellm/_vocab/{}.tiktoken",
        env!("CARGO_MANIFEST_DIR"),
        name.vocabulary()
    );
    std::fs::read(&path).expect("vocabulary file")
}

/// The tokens of `name`'s shipped vocabulary file, in file order.
fn vocab_tokens(name: EncodingName) -> Vec<Vec<u8>> {
    vocab_bytes(name)
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                line.split(|&b| b == b' ').next().unwrap(),
            )
            .unwrap()
        })
        .collect()
}

fn load(name: EncodingName) -> Encoding {
    Encoding::from_tiktoken(name, &vocab_bytes(name)).expect("valid vocabulary")
}

/// Counts from Python tiktoken 0.14, `len(enc.encode(s, disallowed_special=()))`.
const SAMPLES: [&str; 13] = [
    "hello world",
    "It's 'LL we'VE I'd",
    "<|endoftext|>",
    "  leading\n\n\ttabs  \r\n",
    "12345678 \u{663}\u{664}\u{665}",
    "日本語のテキスト",
    "e\u{301}A\u{301}B ǅemal",
    "x'\u{17f} y'\u{212a}",
    "\0\u{1} a\0",
    "def f(x):\n    return x**2  # sq\n",
    "👨‍👩‍👧 🇺🇸",
    " \u{a0}\u{3000}x\r\r\n\n \u{2028}end  ",
    "ÉCOLE l'été DON'T 1234567 ½² ǅungla ΣΊΣΥΦΟΣ",
];

/// One count per sample: the array type ties the two lengths together.
fn expected(name: EncodingName) -> [usize; SAMPLES.len()] {
    match name {
        EncodingName::R50kBase => [2, 9, 7, 10, 9, 10, 12, 9, 4, 17, 16, 13, 34],
        EncodingName::P50kBase => [2, 9, 7, 9, 9, 10, 12, 9, 4, 15, 16, 12, 34],
        EncodingName::Cl100kBase => [2, 9, 7, 6, 10, 8, 10, 8, 4, 13, 19, 10, 34],
        EncodingName::O200kBase | EncodingName::O200kHarmony => {
            [2, 7, 7, 6, 7, 6, 10, 7, 4, 13, 12, 9, 25]
        }
    }
}

/// A cheap deterministic generator (an LCG): `rand(k)` is a number below `k`.
fn generator(seed: u64) -> impl FnMut(usize) -> usize {
    let mut state = seed;
    move |k| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % k
    }
}

/// The tables built with the crate are exactly the ones parsing the shipped file builds.
#[test]
fn builtin_tables_equal_parsed() {
    for name in EncodingName::ALL {
        let parsed = load(name);
        let builtin = Encoding::builtin(name).expect("built-in tables");
        let (a, b) = (parsed.ranks.parts(), builtin.ranks.parts());
        assert!(a.slots == b.slots, "{name} slots");
        assert!(a.arena == b.arena, "{name} arena");
        assert!(a.bytes == b.bytes, "{name} bytes");
        assert!(a.pairs == b.pairs, "{name} pairs");
        assert!(a.merges == b.merges, "{name} merges");
        assert!(a.crossing_bits == b.crossing_bits, "{name} crossing_bits");
        assert!(a.chars == b.chars, "{name} chars");
        assert_eq!((a.max_len, a.len), (b.max_len, b.len), "{name}");
        // Borrowed from the binary, not copied.
        if cfg!(target_endian = "little") {
            assert!(builtin.ranks.is_borrowed(), "{name}");
        }
        assert!(!parsed.ranks.is_borrowed());
        for (text, want) in SAMPLES.iter().zip(expected(name)) {
            assert_eq!(builtin.count(text), want, "{name} {text:?}");
            assert_eq!(builtin.encode(text), parsed.encode(text), "{name} {text:?}");
        }
    }
    let built = classes::Classes::build();
    let frozen = frozen::classes().expect("built-in classes");
    assert!(built.parts() == frozen.parts());
}

#[test]
fn known_counts() {
    for name in EncodingName::ALL {
        let enc = load(name);
        assert_eq!(enc.name(), name);
        for (text, want) in SAMPLES.iter().zip(expected(name)) {
            assert_eq!(enc.count(text), want, "{name} {text:?}");
            assert_eq!(enc.encode(text).len(), want, "{name} {text:?}");
        }
        assert_eq!(enc.count(""), 0);
        assert!(enc.encode("").is_empty());
        // Long repeats go through the heap merge.
        assert_eq!(
            enc.count(&"a".repeat(300)),
            if name.as_str().contains("50k") {
                75
            } else {
                38
            }
        );
        assert_eq!(enc.count(&"ab ".repeat(50)), 51);
    }
}

#[test]
fn known_ids() {
    let text = "It's 'LL we'VE I'd";
    assert_eq!(
        load(EncodingName::Cl100kBase).encode(text),
        [2181, 596, 364, 4178, 584, 6, 4592, 358, 4265]
    );
    assert_eq!(
        load(EncodingName::O200kBase).encode(text),
        [15834, 461, 7454, 581, 6, 19511, 18754]
    );
}

#[test]
fn names() {
    for name in EncodingName::ALL {
        assert_eq!(EncodingName::parse(name.as_str()), Ok(name));
    }
    let err = EncodingName::parse("gpt2").unwrap_err();
    assert_eq!(
        err,
        TokenError::UnknownEncoding {
            name: "gpt2".into()
        }
    );
    let message = err.to_string();
    for name in EncodingName::ALL {
        assert!(message.contains(name.as_str()), "{message}");
    }
}

fn assert_invalid(data: &[u8], needle: &str) {
    match Encoding::from_tiktoken(EncodingName::R50kBase, data) {
        Err(err @ TokenError::InvalidVocabulary { .. }) => {
            assert!(err.to_string().contains(needle), "{err} lacks {needle:?}")
        }
        other => panic!("expected InvalidVocabulary({needle}), got {other:?}"),
    }
}

#[test]
fn vocabulary_errors() {
    let good = vocab_bytes(EncodingName::R50kBase);
    let text = String::from_utf8(good.clone()).expect("ascii file");
    let lines: Vec<&str> = text.lines().collect();
    let with_line = |index: usize, line: &str| {
        let mut copy = lines.clone();
        copy[index] = line;
        copy.join("\n").into_bytes()
    };
    assert_invalid(b"", "0 tokens");
    assert_invalid(b"!!!! 0\n", "base64");
    assert_invalid(&with_line(5, "IQ== x"), "bad rank");
    assert_invalid(&with_line(5, "IQ== -1"), "bad rank");
    assert_invalid(&with_line(5, "IQ=="), "expected `base64 rank`");
    assert_invalid(&with_line(5, "IQ== 1 2"), "expected `base64 rank`");
    // Line 5 holds the byte 0x26; giving it the token of line 0 duplicates a token.
    assert_invalid(&with_line(5, "IQ== 5"), "duplicate token");
    assert_invalid(&with_line(5, "YWJjZA== 0"), "duplicate rank");
    assert_invalid(&with_line(5, "YWJjZA== 4294967295"), "reserved");
    assert_invalid(&with_line(5, " 5"), "expected");
    assert_invalid(
        lines[..1000].join("\n").as_bytes(),
        "1000 tokens, expected 50256",
    );
    let mut extra = good.clone();
    extra.extend_from_slice(b"\nYWJjZGVmZ2hpams= 99999\n");
    assert_invalid(&extra, "more than");
    // A vocabulary without the single byte 0x26 (replaced by a new multi-byte token).
    assert_invalid(&with_line(5, "YWJjZA== 5"), "single byte");
    // A different encoding's file has the wrong size.
    assert!(Encoding::from_tiktoken(
        EncodingName::O200kBase,
        &vocab_bytes(EncodingName::Cl100kBase)
    )
    .is_err());
    // CRLF line ends and a missing final newline are accepted.
    let crlf = text.replace('\n', "\r\n");
    assert!(Encoding::from_tiktoken(EncodingName::R50kBase, crlf.trim_end().as_bytes()).is_ok());
}

#[test]
fn pathological_inputs_do_not_panic() {
    let all_chars: String = (0..0x110000u32).filter_map(char::from_u32).collect();
    let inputs = [
        all_chars.clone(),
        " ".repeat(5000),
        "\r\n".repeat(3000) + "x",
        " \u{3000}\t\u{85}".repeat(1000),
        "a".repeat(200_000),
        "中".repeat(20_000),
        "\u{301}".repeat(5000),
        "'".repeat(1000) + "'s'S'\u{17f}",
        "1".repeat(10_000),
        "👍🏽".repeat(2000),
        String::from_utf8_lossy(&(0..=255u8).cycle().take(5000).collect::<Vec<_>>()).into_owned(),
    ];
    for name in EncodingName::ALL {
        let enc = load(name);
        for text in &inputs {
            let ids = enc.encode(text);
            assert_eq!(enc.count(text), ids.len(), "{name}");
            assert!(ids.iter().all(|&id| id < 200_000));
        }
        // Every prefix and suffix of a tricky string.
        let tricky = "Aé\u{301}ǅ'S 12345\r\n \t中文!?\u{3000}x'\u{17f}\u{2028}";
        for (i, _) in tricky.char_indices() {
            enc.count(&tricky[i..]);
            enc.count(&tricky[..i]);
        }
    }
}

#[test]
fn batch_keeps_order() {
    let enc = load(EncodingName::Cl100kBase);
    let owned: Vec<String> = (0..2000)
        .map(|i| format!("text {i} {}", "word ".repeat(i % 37)))
        .collect();
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let want: Vec<usize> = texts.iter().map(|t| enc.count(t)).collect();
    assert!(texts.iter().map(|t| t.len()).sum::<usize>() > PARALLEL_MIN_BYTES);
    assert_eq!(enc.count_batch(&texts), want);
    assert_eq!(enc.count_batch(&texts[..3]), want[..3]);
    assert_eq!(enc.count_batch(&[]), Vec::<usize>::new());
}

#[test]
fn encoding_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Encoding>();
}

#[test]
fn small_and_large_merges_agree() {
    let enc = load(EncodingName::O200kBase);
    // A cheap deterministic generator over a small alphabet so that merges interact.
    let mut rand = generator(0x1234_5678_u64);
    let alphabet: Vec<&str> = vec!["a", "b", "e", "n", " ", "中", "é", "\u{301}", "in", "the"];
    for len in [2usize, 3, 5, 17, 40, 90] {
        for _ in 0..200 {
            let mut piece = String::new();
            while piece.len() < len {
                piece.push_str(alphabet[rand(alphabet.len())]);
            }
            let bytes = piece.as_bytes();
            if bytes.len() > bpe::SMALL {
                continue;
            }
            let mut small = Vec::new();
            bpe::merge_small(&enc.ranks, bytes, |s, e, id| small.push((s, e, id)));
            let mut large = Vec::new();
            bpe::merge_large(&enc.ranks, bytes, |s, e, id| large.push((s, e, id)));
            assert_eq!(small, large, "{piece:?}");
        }
    }
}

/// The scanners hard-code the case-insensitive forms of the contraction letters; check them
/// against regex-syntax's case folding.
#[test]
fn contraction_case_folding_matches_regex_syntax() {
    for letter in "sdmtlver".chars() {
        let folded = classes::unicode_ranges(&format!("(?i){letter}"));
        let chars: Vec<char> = folded
            .iter()
            .flat_map(|&(a, b)| (a..=b).filter_map(char::from_u32))
            .collect();
        let mut expected = vec![letter, letter.to_ascii_uppercase()];
        if letter == 's' {
            expected.push('\u{17f}');
        }
        let mut got = chars.clone();
        got.sort_unstable();
        expected.sort_unstable();
        assert_eq!(got, expected, "(?i){letter}");
    }
}

/// `Classes::run` over letters (which skips ASCII letters eight bytes at a time) ends where a
/// walk over the characters one by one ends, from every position of texts made of the bytes
/// around the ASCII letter ranges, non-ASCII letters and marks, in runs longer than eight.
#[test]
fn letter_runs_match_a_walk_by_character() {
    let t = classes::classes();
    let alphabet: Vec<char> = "@AZ[`az{\u{7f}\u{0} 'éÉß\u{301}日ǅ9".chars().collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for _ in 0..3000 {
        let len = next(40);
        let text: String = (0..len)
            .map(|_| {
                // Mostly ASCII letters, so that runs longer than eight bytes are common.
                if next(4) == 0 {
                    alphabet[next(alphabet.len())]
                } else {
                    ['a', 'z', 'A', 'Z', 'm'][next(5)]
                }
            })
            .collect();
        let s = text.as_bytes();
        for want in [classes::L, classes::LO, classes::UP] {
            for (i, _) in text.char_indices() {
                let mut end = i;
                while end < s.len() {
                    let (c, len) = t.at(s, end);
                    if c & want == 0 {
                        break;
                    }
                    end += len;
                }
                assert_eq!(t.run(s, i, want), end, "{text:?} from {i}, class {want}");
            }
        }
    }
}

#[test]
fn classes_from_regex_syntax() {
    let t = classes::classes();
    let class = |c: char| t.of(c as u32);
    assert_eq!(class('a'), classes::L | classes::LO);
    assert_eq!(class('A'), classes::L | classes::UP);
    assert_eq!(class('\u{301}'), classes::UP | classes::LO);
    assert_eq!(class('中'), classes::L | classes::UP | classes::LO);
    assert_eq!(class('ǅ'), classes::L | classes::UP);
    assert_eq!(class('\u{663}'), classes::N);
    assert_eq!(class('\u{85}'), classes::WS);
    assert_eq!(class('\u{3000}'), classes::WS);
    assert_eq!(class('\n'), classes::WS | classes::NL);
    assert_eq!(class('\u{200b}'), 0);
    assert_eq!(class('\u{10ffff}'), 0);
    for c in ['a', 'Z', '0', ' ', '\t', '!', '\0'] {
        let mut buf = [0u8; 4];
        assert_eq!(t.at(c.encode_utf8(&mut buf).as_bytes(), 0), (class(c), 1));
    }
}

/// tiktoken's merge written the obvious way: byte slices, a full rescan per merge.
fn reference_merge(enc: &Encoding, piece: &[u8]) -> Vec<u32> {
    let rank = |s: &[u8]| enc.ranks.rank(s);
    let mut starts: Vec<usize> = (0..=piece.len()).collect();
    loop {
        let mut best = (vocab::NO_RANK, 0);
        for j in 0..starts.len().saturating_sub(2) {
            let r = rank(&piece[starts[j]..starts[j + 2]]);
            if r < best.0 {
                best = (r, j);
            }
        }
        if best.0 == vocab::NO_RANK {
            break;
        }
        starts.remove(best.1 + 1);
    }
    starts
        .windows(2)
        .map(|w| rank(&piece[w[0]..w[1]]))
        .collect()
}

/// The id-based merges (pair table, both queue kinds) against the byte-slice reference, on
/// random pieces over small alphabets where merges interact, for every encoding.
#[test]
fn merges_match_reference() {
    let mut rand = generator(0x9e37_79b9_u64);
    let alphabets: [&[&str]; 4] = [
        &["a", "b", "e", "n", " ", "in", "the", "er"],
        &[" ", "\n", "\t", "\r\n", "  "],
        &["中", "文", "日本", "語", "の", "は", "한", "국"],
        &["é", "\u{301}", "ा", "ि", "ب", "ي", "\u{fe0f}", "👍", "a"],
    ];
    for name in EncodingName::ALL {
        let enc = load(name);
        for alphabet in alphabets {
            for len in [2usize, 3, 4, 7, 12, 30, 60, 96, 97, 140] {
                for _ in 0..12 {
                    let mut piece = String::new();
                    while piece.len() < len {
                        piece.push_str(alphabet[rand(alphabet.len())]);
                    }
                    let bytes = piece.as_bytes();
                    if enc.ranks.rank(bytes) != vocab::NO_RANK {
                        continue;
                    }
                    let want = reference_merge(&enc, bytes);
                    let mut large = Vec::new();
                    bpe::merge_large(&enc.ranks, bytes, |_, _, id| large.push(id));
                    assert_eq!(large, want, "{name} {piece:?}");
                    if bytes.len() <= bpe::SMALL {
                        let mut small = Vec::new();
                        bpe::merge_small(&enc.ranks, bytes, |_, _, id| small.push(id));
                        assert_eq!(small, want, "{name} {piece:?}");
                    }
                }
            }
        }
    }
}

/// The per-thread piece cache: many more distinct pieces than slots (so slots are replaced), each
/// counted twice, under two encodings sharing the cache; every count must equal a fresh merge.
#[test]
fn piece_cache_is_exact() {
    let encodings = [
        load(EncodingName::Cl100kBase),
        load(EncodingName::O200kBase),
    ];
    let chars = [
        "中", "文", "日本", "語", "の", "は", "한", "국", "ب", "ي", "👍",
    ];
    let mut rand = generator(0x1234_5678_u64);
    let mut pieces = Vec::new();
    while pieces.len() < 3000 {
        let len = cache::MIN_LEN + rand(bpe::SMALL - cache::MIN_LEN + 1);
        let mut piece = String::new();
        loop {
            let c = chars[rand(chars.len())];
            if piece.len() + c.len() > len {
                break;
            }
            piece.push_str(c);
        }
        if piece.len() >= cache::MIN_LEN {
            pieces.push(piece);
        }
    }
    for _ in 0..2 {
        for piece in &pieces {
            for enc in &encodings {
                let bytes = piece.as_bytes();
                if enc.ranks.rank(bytes) != vocab::NO_RANK {
                    continue;
                }
                let mut want = 0;
                bpe::merge(&enc.ranks, bytes, |_, _, _| want += 1);
                assert_eq!(enc.count_piece(bytes), want, "{} {piece:?}", enc.name());
            }
        }
    }
}

/// The per-thread table of short pieces: far more distinct pieces of 2-8 bytes than slots (so
/// slots are replaced), zero bytes included (a head pads with zeros, the length tells them
/// apart), each counted twice under two encodings sharing the table; every count must equal a
/// fresh merge.
#[test]
fn short_piece_cache_is_exact() {
    let encodings = [
        load(EncodingName::Cl100kBase),
        load(EncodingName::O200kBase),
    ];
    let alphabet = b"\0 aeqxzAQZ'.,\xc3\xa9\xe4\xb8\xad";
    let mut rand = generator(0x8765_4321_u64);
    let pieces: Vec<Vec<u8>> = (0..20_000)
        .map(|_| {
            let len = 2 + rand(cache::SHORT_MAX - 1);
            (0..len).map(|_| alphabet[rand(alphabet.len())]).collect()
        })
        .collect();
    for _ in 0..2 {
        for piece in &pieces {
            for enc in &encodings {
                let mut want = 0;
                match enc.ranks.rank(piece) {
                    vocab::NO_RANK => bpe::merge(&enc.ranks, piece, |_, _, _| want += 1),
                    _ => want = 1,
                }
                assert_eq!(enc.count_piece(piece), want, "{} {piece:?}", enc.name());
            }
        }
    }
}

/// Splitting at boundaries no token crosses (`split`) against the byte-slice reference merge:
/// every token with a 3/4-byte character after its first byte, between random CJK characters
/// and byte fragments, so that the pieces contain exactly the crossings the table records.
#[test]
fn split_merges_match_reference() {
    let mut rand = generator(0x5eed_u64);
    let context: [&[u8]; 9] = [
        "中".as_bytes(),
        "国".as_bytes(),
        "的".as_bytes(),
        "語".as_bytes(),
        "の".as_bytes(),
        "한".as_bytes(),
        b"\xe4",
        b"\xb8",
        b" ",
    ];
    for name in [EncodingName::Cl100kBase, EncodingName::O200kBase] {
        let enc = load(name);
        let mut checked = 0;
        for token in vocab_tokens(name) {
            if !token.iter().skip(1).any(|&b| b >= 0xE0) {
                continue;
            }
            let mut piece = Vec::new();
            for _ in 0..rand(3) {
                piece.extend_from_slice(context[rand(context.len())]);
            }
            piece.extend_from_slice(&token);
            for _ in 0..rand(3) {
                piece.extend_from_slice(context[rand(context.len())]);
            }
            if piece.len() < 2 || enc.ranks.rank(&piece) != vocab::NO_RANK {
                continue;
            }
            let mut got = Vec::new();
            enc.merge_parts(&piece, |id| got.push(id));
            assert_eq!(got, reference_merge(&enc, &piece), "{name} {piece:?}");
            checked += 1;
        }
        assert!(checked > 500, "{name}: {checked}");
    }
}

/// No boundary that a token crosses is ever cut, on either walk: for every token and every
/// 3-byte character that starts after its first byte, the token is completed to whole 3-byte
/// characters on both sides and set between other characters, and the boundary must stay whole.
/// This holds the window sizes and the filter words (`split::Crossings::chars`) to what the
/// vocabulary records, window by window.
#[test]
fn crossed_boundaries_are_never_cut() {
    let filler = "中国的語の".as_bytes();
    for name in [EncodingName::Cl100kBase, EncodingName::O200kBase] {
        let enc = load(name);
        let crossings = enc.ranks.crossings();
        let mut checked = 0;
        for token in vocab_tokens(name) {
            let continuation = |b: &u8| (0x80..=0xBF).contains(b);
            for k in 1..token.len() {
                if token[k] & 0xF0 != 0xE0 {
                    continue;
                }
                // The character before the boundary, completed at its start.
                let head: Vec<u8> = match k {
                    1 | 2 if token[..k].iter().all(continuation) => {
                        let mut c = [0xE4, 0x80][..3 - k].to_vec();
                        c.extend_from_slice(&token[..k]);
                        c
                    }
                    _ if k >= 3
                        && matches!(token[k - 3..k], [0xE0..=0xEF, 0x80..=0xBF, 0x80..=0xBF]) =>
                    {
                        token[k - 3..k].to_vec()
                    }
                    _ => continue,
                };
                // The character after it, completed at its end.
                let mut tail: Vec<u8> = token[k..token.len().min(k + 3)].to_vec();
                if !tail[1..].iter().all(continuation) {
                    continue;
                }
                tail.resize(3, 0x80);
                let mut piece = filler.to_vec();
                piece.extend_from_slice(&head);
                let j = piece.len();
                piece.extend_from_slice(&tail);
                piece.extend_from_slice(filler);
                let mut cuts = Vec::new();
                let mut at = 0;
                crossings.for_each_segment(&piece, |seg| {
                    at += seg.len();
                    cuts.push(at);
                });
                assert!(
                    !cuts.contains(&j),
                    "{name} {token:?} at {k}: byte walk cut it"
                );
                let (mut cuts3, mut at) = (Vec::new(), 0);
                assert!(crossings.for_each_segment3(&piece, |seg, _| {
                    at += seg.len();
                    cuts3.push(at);
                }));
                assert!(
                    !cuts3.contains(&j),
                    "{name} {token:?} at {k}: character walk cut it"
                );
                checked += 1;
            }
        }
        assert!(checked > 500, "{name}: {checked}");
    }
}

/// `for_each_segment3` (a piece of 3-byte characters, one table entry per character) against
/// `for_each_segment` with a lookup per segment: the same segments and entries, and counts equal
/// to the byte-slice reference merge. Pieces are tokens made of 3-byte characters only (so that
/// the windows the table records occur), random 3-byte sequences (overlong and surrogate ones
/// too) and punctuation; a few hold another byte, which the character walk must refuse.
#[test]
fn character_split_matches_byte_split() {
    let mut rand = generator(0xc4a7_u64);
    for name in [EncodingName::Cl100kBase, EncodingName::O200kBase] {
        let enc = load(name);
        let crossings = enc.ranks.crossings();
        let tokens: Vec<Vec<u8>> = vocab_tokens(name)
            .into_iter()
            .filter(|t| {
                t.len() % 3 == 0
                    && t.chunks(3)
                        .all(|c| matches!(c, [0xE0..=0xEF, 0x80..=0xBF, 0x80..=0xBF]))
            })
            .collect();
        assert!(tokens.len() > 1000, "{name}: {}", tokens.len());
        let (mut walked, mut refused) = (0, 0);
        for round in 0..6000 {
            let mut piece = Vec::new();
            let target = 3 + rand(100);
            while piece.len() < target {
                match rand(8) {
                    0 => piece.extend_from_slice("，".as_bytes()),
                    1 => piece.extend_from_slice(&[
                        0xE0 | rand(16) as u8,
                        0x80 | rand(64) as u8,
                        0x80 | rand(64) as u8,
                    ]),
                    _ => piece.extend_from_slice(&tokens[rand(tokens.len())]),
                }
            }
            if round % 50 == 0 {
                let at = rand(piece.len() + 1);
                piece.insert(at, [b'a', 0xF0, 0x80][rand(3)]);
            }
            let mut fast = Vec::new();
            let took = crossings.for_each_segment3(&piece, |seg, e| fast.push((seg.to_vec(), e)));
            let mut slow = Vec::new();
            crossings.for_each_segment(&piece, |seg| {
                let e = match seg {
                    [a @ 0xE0..=0xEF, b @ 0x80..=0xBF, c @ 0x80..=0xBF] => {
                        enc.ranks.char3(&[*a, *b, *c])
                    }
                    _ => None,
                };
                slow.push((seg.to_vec(), e));
            });
            let whole = piece.len() % 3 == 0
                && (17..=bpe::SMALL).contains(&piece.len())
                && piece
                    .chunks(3)
                    .all(|c| matches!(c, [0xE0..=0xEF, 0x80..=0xBF, 0x80..=0xBF]));
            assert_eq!(took, whole, "{name} {piece:?}");
            if took {
                walked += 1;
                assert_eq!(fast, slow, "{name} {piece:?}");
            } else {
                refused += 1;
                assert!(fast.is_empty(), "{name} {piece:?}");
            }
            if enc.ranks.rank(&piece) == vocab::NO_RANK && std::str::from_utf8(&piece).is_ok() {
                let want = reference_merge(&enc, &piece).len();
                assert_eq!(enc.count_piece(&piece), want, "{name} {piece:?}");
            }
        }
        assert!(walked > 3000 && refused > 100, "{name}: {walked} {refused}");
    }
}

/// `run::merge` (the compressed merge of long runs of one byte) against the queue merge, which
/// `merges_match_reference` checks against the byte-slice reference: runs of every length up to
/// 2,000 of bytes whose runs are tokens up to various lengths, with short heads and tails.
#[test]
fn run_merges_match_queue_merge() {
    let edges: [&[u8]; 9] = [
        b"", b"\n", b"\n\n\n", b" ", b"x", b"\t", b"\r\n", b"ab", b"indent ",
    ];
    for name in EncodingName::ALL {
        let enc = Encoding::builtin(name).expect("built-in tables");
        let check = |piece: &[u8]| {
            let mut want = Vec::new();
            bpe::merge_large(&enc.ranks, piece, |_, _, id| want.push(id));
            let mut got = Vec::new();
            let taken = run::merge(&enc.ranks, piece, |id, k| {
                got.extend(std::iter::repeat_n(id, k));
            });
            assert!(taken, "{name} {:?}", String::from_utf8_lossy(piece));
            assert_eq!(got, want, "{name} {:?}", String::from_utf8_lossy(piece));
            let text = std::str::from_utf8(piece).expect("UTF-8");
            assert_eq!(enc.count(text), enc.encode(text).len(), "{name}");
        };
        for byte in [b' ', b'a', b'\n'] {
            for n in bpe::SMALL + 1..=2000 {
                check(&vec![byte; n]);
            }
        }
        for byte in [b'\t', b'-', b'=', b'0', b'.', b'*', b'#', b'z'] {
            for n in (bpe::SMALL + 1..=700).chain([1023, 1024, 1025, 4096, 4097]) {
                check(&vec![byte; n]);
            }
        }
        for byte in [b' ', b'\t', b'\n', b'a', b'-'] {
            for head in edges {
                for tail in edges {
                    for n in [
                        97, 98, 99, 100, 127, 128, 129, 255, 256, 257, 300, 301, 1001,
                    ] {
                        let mut piece = head.to_vec();
                        piece.extend(std::iter::repeat_n(byte, n));
                        piece.extend_from_slice(tail);
                        check(&piece);
                    }
                }
            }
        }
        // Not runs: left to the queue merge.
        let mut mixed = vec![b' '; 200];
        mixed[50] = b'x';
        assert!(!run::merge(&enc.ranks, &mixed, |_, _| {}));
        assert!(!run::merge(&enc.ranks, &[b' '; 96], |_, _| {}));
    }
}

/// `"a" * 100_000` and friends through the public count: equal to the ids' count and to the
/// queue merge.
#[test]
fn very_long_runs() {
    let enc = Encoding::builtin(EncodingName::O200kBase).expect("built-in tables");
    for text in [
        "a".repeat(100_000),
        " ".repeat(100_001),
        "\n".repeat(99_999),
    ] {
        let mut want = 0;
        bpe::merge_large(&enc.ranks, text.as_bytes(), |_, _, _| want += 1);
        assert_eq!(enc.count(&text), want);
    }
}
