#!/usr/bin/env python3
"""Differential test of the Rust token counter against Python tiktoken, plus a speed comparison.

Builds tiktoken encodings offline from the vocabularies in python/fast_litellm/_vocab (the patterns
come from the installed tiktoken_ext.openai_public, whose download helper is replaced by a reader
of the local files), generates a varied corpus, and compares the counts and token ids printed by
the `count_stdin` example with tiktoken's for all four encodings. Mismatches are shrunk to a
minimal string before being printed.

    cargo build --release --example count_stdin   # (with the CARGO_TARGET_DIR you use)
    python scripts/check_exact.py [--bin PATH] [--seed N] [--random N] [--no-speed]
    python scripts/check_exact.py --quick         # CI: the installed extension, a smaller corpus

Exit status 1 if any mismatch was found.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tiktoken
import tiktoken_ext.openai_public as openai_public

ROOT = Path(__file__).resolve().parent.parent
VOCAB = ROOT / "python" / "fast_litellm" / "_vocab"
NAMES = ["r50k_base", "p50k_base", "cl100k_base", "o200k_base", "o200k_harmony"]


# --------------------------------------------------------------------------------------------
# Offline encodings


def read_ranks(name: str) -> dict[bytes, int]:
    ranks = {}
    for line in (VOCAB / f"{name}.tiktoken").read_bytes().splitlines():
        if line.strip():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def build_encodings() -> dict[str, tiktoken.Encoding]:
    def local_bpe(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        return read_ranks(url.rsplit("/", 1)[-1].removesuffix(".tiktoken"))

    # The constructors in tiktoken_ext are the source of truth for the patterns and special tokens;
    # only their download is replaced.
    openai_public.load_tiktoken_bpe = local_bpe
    encodings = {}
    for name in NAMES:
        spec = getattr(openai_public, name)()
        encodings[name] = tiktoken.Encoding(
            name=name,
            pat_str=spec["pat_str"],
            mergeable_ranks=spec["mergeable_ranks"],
            special_tokens=spec["special_tokens"],
        )
    return encodings


# --------------------------------------------------------------------------------------------
# Corpus

PROSE = (
    "The quick brown fox jumps over the lazy dog. It's a well-known pangram; we've used it "
    "since 1885, haven't we? \"Yes,\" she said -- I'd say so. Mr. O'Neil's cat isn't here.\n"
)
CODE = '''def fib(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a

class Foo(Bar):
\tdef __init__(self, x=None, *args, **kwargs):
\t\tself.x = x  # TODO: validate
\t\tif x is not None and x >= 0x1F: raise ValueError(f"bad {x!r}")

// C++: std::vector<int> v{1, 2, 3}; for (auto& i : v) { i <<= 2; }
fn main() { let s: &str = "héllo"; println!("{s:?} {}", s.len()); }
SELECT id, name FROM users WHERE created_at >= '2024-01-01' AND status != 'x';
<div class="a-b"><a href="https://example.com/path?q=1&r=2#frag">link</a></div>
'''
JSON = '{"id": 12345, "name": "Zoë", "tags": ["a", "b"], "nested": {"x": -1.5e-7, "y": null}}'
CJK = "日本語のテキストです。東京は日本の首都であり、人口は約1400万人です。中文文本测试，你好世界！한국어 텍스트도 있습니다."
ARABIC = "اللغة العربية هي إحدى أكثر اللغات انتشاراً في العالم، يتحدثها أكثر من ٤٢٢ مليون نسمة."
HINDI = "हिन्दी भारत की राजभाषा है। यह देवनागरी लिपि में लिखी जाती है और इसमें १२३ अंक हैं।"
THAI = "ภาษาไทยเป็นภาษาราชการของประเทศไทย มีผู้พูดประมาณ ๖๕ ล้านคน"
EUROPEAN = (
    "Größenwahn ist keine Lösung. Ça va très bien, merci! Пример русского текста с ЁЛКОЙ. "
    "Ελληνικά κείμενα ΣΊΣΥΦΟΣ. Łódź, Kraków, İstanbul, ǅemal, ǈuba. ǲ ᾈ ᾼ ﬀ ﬁ."
)
EMOJI = "Hi 👋🏽 family: 👨‍👩‍👧‍👦 flags 🇺🇸🇯🇵 keycap 1️⃣ heart ❤️‍🔥 and ☕️!"
SPECIALS = "<|endoftext|> <|fim_prefix|>x<|fim_middle|>y<|fim_suffix|> <|endofprompt|><|im_start|>"
WS_CHARS = [
    " ",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\x0b",
    "\x0c",
    "\x85",
    "\xa0",
    "\u1680",
    "\u2000",
    "\u2003",
    "\u2028",
    "\u2029",
    "\u202f",
    "\u205f",
    "\u3000",
    "\u200b",
    "\ufeff",
]
CONTRACTIONS = [
    "'s",
    "'S",
    "'t",
    "'T",
    "'re",
    "'RE",
    "'Re",
    "'rE",
    "'ve",
    "'VE",
    "'m",
    "'M",
    "'ll",
    "'LL",
    "'lL",
    "'d",
    "'D",
    "’s",
    "'ſ",
    "'K",
    "'\u212a",
    "'x",
    "'",
    "''",
    "'ss",
    "'lll",
    "'e",
    "'r",
    "'v",
    "'l",
]
# Characters whose classes make the patterns backtrack: marks, modifier letters, title case,
# digits of many scripts, letter-like symbols, Kelvin sign, long s, ...
TRICKY = list("aAzZ0 9'’\"-_/\\.\n\r\t!?@#$%^&*()[]{}<>|~`+=,;:") + [
    "\u0301",
    "\u0308",
    "\u20dd",
    "\u0903",
    "\u093f",
    "\u02b0",
    "\u02c6",
    "\u3005",
    "\u01c5",
    "\u1f88",
    "\u00aa",
    "\u00ba",
    "\u0660",
    "\u0966",
    "\u2160",
    "\u00bd",
    "\u00b2",
    "\u212a",
    "\u017f",
    "\u00df",
    "\u0130",
    "\u0131",
    "\u03a3",
    "\u03c2",
    "\u00e9",
    "e\u0301",
    "E\u0301",
    "\u4e2d",
    "\u3042",
    "\u30a2",
    "\uac00",
    "\u0627",
    "\u05d0",
    "\u0e01",
    "\u1000",
    "\U0001f600",
    "\U0001f3fd",
    "\u200d",
    "\ufe0f",
    "\U0001d400",
    "\U0001d41a",
    "\U00010400",
    "\U00010428",
    "\U000e0001",
    "\U0010fffd",
    "\uffff",
    "\ue000",
    "\x00",
    "\x7f",
    "\x85",
    "\xa0",
    "\u2028",
    "\u3000",
    "\u1680",
    "\u0345",
    "\u1d2c",
    "\u2c7d",
    "\ua7f8",
]


def random_code_point(rng: random.Random) -> str:
    while True:
        # Bias towards the BMP, but cover every plane.
        cp = rng.randrange(0x110000) if rng.random() < 0.4 else rng.randrange(0x10000)
        if not 0xD800 <= cp <= 0xDFFF:
            return chr(cp)


def random_mix(rng: random.Random, length: int) -> str:
    parts = []
    for _ in range(length):
        r = rng.random()
        if r < 0.45:
            parts.append(rng.choice(TRICKY))
        elif r < 0.6:
            parts.append(rng.choice(WS_CHARS))
        elif r < 0.7:
            parts.append(rng.choice(CONTRACTIONS))
        elif r < 0.85:
            parts.append(random_code_point(rng))
        else:
            src = rng.choice(
                [PROSE, CODE, JSON, CJK, ARABIC, HINDI, THAI, EUROPEAN, EMOJI, SPECIALS]
            )
            start = rng.randrange(len(src))
            parts.append(src[start : start + rng.randrange(1, 12)])
    return "".join(parts)


def corpus(rng: random.Random, n_random: int) -> list[str]:
    texts = [
        "",
        " ",
        "a",
        "\n",
        "hello world",
        PROSE,
        CODE,
        JSON,
        CJK,
        ARABIC,
        HINDI,
        THAI,
        EUROPEAN,
        EMOJI,
        SPECIALS,
        PROSE * 20,
        CODE * 5,
        CJK * 10,
    ]
    # Every building block alone, after a letter, before a letter, around spaces.
    for block in TRICKY + WS_CHARS + CONTRACTIONS:
        for fmt in (
            "{}",
            "a{}",
            "{}a",
            "A{}",
            "{}A",
            " {}",
            "{} ",
            "x {} y",
            "{}{}",
            "1{}2",
            "\n{}\n",
            "{}'s",
            "É{}",
        ):
            texts.append(fmt.format(block, block))
    # Contractions in all cases after words in several scripts and cases.
    for word in ["it", "IT", "It", "Zoë", "ΣΊΣ", "中文", "e\u0301", "A\u0301B", "ǅ", "x1"]:
        for c in CONTRACTIONS:
            texts.append(f"{word}{c} {word}{c}x {c}{word}")
    # Whitespace runs of all shapes.
    for _ in range(400):
        run = "".join(rng.choice(WS_CHARS) for _ in range(rng.randrange(1, 12)))
        texts.append(
            rng.choice(["", "a", "!", "1", "中", "\u0301"])
            + run
            + rng.choice(["", "a", "!", "1", "中", "\u0301", "'s"])
        )
    # Numbers.
    for _ in range(200):
        texts.append(
            " ".join(str(rng.randrange(10 ** rng.randrange(1, 15))) for _ in range(5))
            + "".join(rng.choice("0123456789٠١٢३४५.,") for _ in range(rng.randrange(12)))
        )
    # Random code points across the whole range.
    for _ in range(600):
        texts.append("".join(random_code_point(rng) for _ in range(rng.randrange(1, 40))))
    # Mixed tricky sequences.
    for _ in range(n_random):
        texts.append(random_mix(rng, rng.randrange(1, 60)))
    # Long pieces and repeats (>500 bytes), pieces that need the heap merge.
    for unit in [
        "a",
        "ab",
        "abc",
        " ",
        "\n",
        "!",
        "中",
        "é",
        "1",
        "\u0301",
        "👍",
        "ab ",
        "Ab",
        "\t\n",
        "xyz" * 3,
        "ﬁ",
        "👨‍👩‍👧",
    ]:
        for count in (97, 200, 513, 1500):
            texts.append(unit * count)
    texts.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3000)))
    texts.append(
        "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(2000)
        )
    )
    texts.append("".join(rng.choice(CJK) for _ in range(1500)))
    texts.append("".join(rng.choice(THAI) for _ in range(1500)))
    texts.append("".join(random_code_point(rng) for _ in range(5000)))
    texts.append("a" * 100_000)
    # NUL separates texts on the pipe, so it is left out of the corpus (unit tests cover it).
    return [t.replace("\0", "") for t in texts]


# --------------------------------------------------------------------------------------------
# Comparison


# `--bin` value that means the installed extension (fast_litellm._native) instead of the example.
INSTALLED = "installed"
_installed: dict = {}


def run_installed(name: str, texts: list[str], encode: bool) -> list[str]:
    encoding = _installed.get(name)
    if encoding is None:
        from fast_litellm import _native

        # The tables built with the module, as the package loads them.
        encoding = _installed[name] = _native.Encoding.load(name)
    if encode:
        return [" ".join(map(str, encoding.encode(text))) for text in texts]
    return [str(encoding.count(text)) for text in texts]


def run_bin(binary: str, name: str, texts: list[str], encode: bool) -> list[str]:
    if binary == INSTALLED:
        return run_installed(name, texts, encode)
    args = [binary, name] + (["--encode"] if encode else [])
    data = "\0".join(texts).encode("utf-8", "surrogatepass")
    out = subprocess.run(args, input=data, capture_output=True, check=True).stdout.decode()
    lines = out.split("\n")
    assert lines[-1] == "", "output must end with a newline"
    lines = lines[:-1]
    assert len(lines) == len(texts), (len(lines), len(texts))
    return lines


def expected(enc: tiktoken.Encoding, text: str) -> list[int]:
    return enc.encode(text, disallowed_special=())


def mismatching(binary: str, name: str, enc: tiktoken.Encoding, texts: list[str]) -> list[int]:
    counts = run_bin(binary, name, texts, encode=False)
    ids = run_bin(binary, name, texts, encode=True)
    bad = []
    for i, text in enumerate(texts):
        want = expected(enc, text)
        got_ids = [int(x) for x in ids[i].split()]
        if int(counts[i]) != len(want) or got_ids != want:
            bad.append(i)
    return bad


def shrink(binary: str, name: str, enc: tiktoken.Encoding, text: str) -> str:
    """Removes chunks of characters while the mismatch persists (one binary call per round)."""
    chunk = max(1, len(text) // 2)
    while chunk >= 1:
        candidates = [text[:i] + text[i + chunk :] for i in range(0, len(text), chunk)]
        candidates = [c for c in candidates if c]
        bad = mismatching(binary, name, enc, candidates) if candidates else []
        if bad:
            text = candidates[bad[0]]
            chunk = min(chunk, max(1, len(text) // 2))
        else:
            chunk //= 2
    return text


def check(binary: str, encodings: dict[str, tiktoken.Encoding], texts: list[str]) -> int:
    total_bad = 0
    for name, enc in encodings.items():
        bad = mismatching(binary, name, enc, texts)
        print(f"{name}: {len(texts)} strings, {len(bad)} mismatches")
        total_bad += len(bad)
        shown = set()
        for i in bad[:10]:
            small = shrink(binary, name, enc, texts[i])
            if small in shown:
                continue
            shown.add(small)
            got = run_bin(binary, name, [small], encode=True)[0]
            print(
                f"  minimal: {small!r}\n    tiktoken: {expected(enc, small)}\n    ours:     [{got}]"
            )
    return total_bad


# --------------------------------------------------------------------------------------------
# Speed


def speed(binary: str, encodings: dict[str, tiktoken.Encoding], rng: random.Random) -> None:
    english = PROSE * 200
    code = (CODE * 10)[:4096]
    samples = {
        "13 B text": "Hello, world!",
        "1 KB English": english[:1024],
        "4 KB code": code,
        "100 KB English": (english * 10)[:100_000],
        "4 KB CJK": (CJK * 40)[:1365],
        "whitespace runs": ("  \n\t \r\n" * 50 + "x") * 20,
        "'a' * 100_000": "a" * 100_000,
        "random code pts": "".join(random_code_point(rng) for _ in range(2000)),
        "Arabic+Hindi": (ARABIC + " " + HINDI + " ") * 10,
        "European": EUROPEAN * 10,
    }
    print("\nspeed (median per call; ours = Rust core without Python call overhead)")
    print(
        f"{'encoding':<12} {'text':<17} {'bytes':>7} {'tiktoken ns':>12} {'ours ns':>10} {'speedup':>8}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("cl100k_base", "o200k_base"):
            enc = encodings[name]
            for label, text in samples.items():
                size = len(text.encode())
                reps = max(5, min(2000, 2_000_000 // max(size, 1)))
                if label.startswith("'a'"):
                    reps = 3  # tiktoken's merge is quadratic in the piece length
                times = []
                enc.encode(text, disallowed_special=())
                for _ in range(reps):
                    t0 = time.perf_counter_ns()
                    enc.encode(text, disallowed_special=())
                    times.append(time.perf_counter_ns() - t0)
                theirs = statistics.median(times)
                path = os.path.join(tmp, "t.txt")
                Path(path).write_text(text, encoding="utf-8")
                out = subprocess.run(
                    [binary, name, "--bench", path, str(max(reps, 20))],
                    capture_output=True,
                    check=True,
                    text=True,
                ).stdout
                ours = int(out.strip())
                print(
                    f"{name:<12} {label:<17} {size:>7} {theirs:>12.0f} {ours:>10} {theirs / max(ours, 1):>7.1f}x"
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    parser.add_argument("--bin", default=os.path.join(target, "release", "examples", "count_stdin"))
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--random", type=int, default=3000, help="number of random mixed strings")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="check the installed extension on 500 random strings, no speed (what CI runs)",
    )
    args = parser.parse_args()
    if args.quick:
        args.bin, args.random, args.no_speed = INSTALLED, 500, True

    encodings = build_encodings()
    rng = random.Random(args.seed)
    texts = corpus(rng, args.random)
    print(f"tiktoken {tiktoken.__version__}, binary {args.bin}")
    bad = check(args.bin, encodings, texts)
    print(f"total: {len(texts)} strings x {len(encodings)} encodings, {bad} mismatches")
    if not args.no_speed:
        speed(args.bin, encodings, rng)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
