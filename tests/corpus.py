"""A deterministic corpus of awkward texts for exactness tests."""

from __future__ import annotations

import random
from typing import List

_PIECES = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure you'll see they've done it; we'd know. IT'S DONE, WE'LL SEE, THEY'VE, I'D",
    "don’t won’t it’s 'S 'T 'RE 'VE 'M 'LL 'D 'ſ 'K 'k",
    "def f(x):\n    return x ** 2  # square\n\n\nclass A(B):\n\tpass\n",
    '{"key": [1, 2.5, -3e10, null, true], "nested": {"a": "b\\n"}}',
    "SELECT * FROM users WHERE id = 42 AND name LIKE '%o%';",
    "<|endoftext|> <|fim_prefix|><|fim_middle|><|fim_suffix|><|endofprompt|> <|im_start|>",
    "你好，世界！这是一个测试。東京都渋谷区 한국어 텍스트입니다",
    "مرحبا بالعالم، هذا اختبار. नमस्ते दुनिया, यह एक परीक्षण है। สวัสดีชาวโลก",
    "Привет, мир! Γειά σου Κόσμε! שלום עולם Ελληνικά ÀÉÎÕÜ ñ ß ẞ ǅ ǈ",
    "👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️‍🔥 🇺🇸🇬🇧 ©®™ ∑∫√ ≤≥≠",
    "   leading and trailing   ",
    "\n\n\n\r\n\r\r\n\t\t \t\u00a0\u2003\u3000\u200b\u2028\u2029 x",
    "123456789 1,234,567.89 ٣٤٥ ४५६ ½ ² ⅷ 0x1F 1e-9",
    "a" * 600,
    "ab" * 400,
    " " * 500 + "x",
    "\n" * 300,
    "https://example.com/path?query=1&b=2#frag user@example.org /usr/bin/env",
    "CamelCaseWord lowerUPPER ABCdef éÉ ǅungla Dž",
    "x\u0301\u0302\u0303 e\u0301 Å ñ \u0915\u094d\u0937",
]


def corpus(seed: int = 1234, random_count: int = 400) -> List[str]:
    rng = random.Random(seed)
    texts = ["", " ", "\n", "a", "'s"] + list(_PIECES)
    for _ in range(random_count):
        # Glue several pieces with random separators, cut at random places.
        glued = rng.choice(["", " ", "\n", "  ", "\t"]).join(
            rng.choice(_PIECES) for _ in range(rng.randint(1, 5))
        )
        start = rng.randrange(len(glued) + 1)
        texts.append(glued[start : start + rng.randint(0, 400)])
    for _ in range(200):
        points = []
        for _ in range(rng.randint(1, 60)):
            point = rng.choice(
                [
                    rng.randrange(0x20, 0x80),
                    rng.randrange(0x80, 0x800),
                    rng.randrange(0x800, 0x10000),
                    rng.randrange(0x10000, 0x110000),
                ]
            )
            if not 0xD800 <= point < 0xE000:
                points.append(chr(point))
        texts.append("".join(points))
    return texts
