"""Benchmark cases shared by ``python -m fast_litellm``, ``scripts/run_benchmarks.py`` and
``benches/``: one definition of the sample data and of what each contender runs.

The sample texts ship with the package (``_samples/``) or come from the Python standard library
(real English documentation and real source code), so every machine measures the same inputs.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
import statistics
import timeit
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

_SAMPLES = os.path.join(os.path.dirname(__file__), "_samples")


def _sample(name: str) -> str:
    with open(os.path.join(_SAMPLES, name), encoding="utf-8") as handle:
        return handle.read()


def _fit(text: str, size: int) -> str:
    """``text`` repeated or cut to ``size`` UTF-8 bytes, cut on a character boundary."""
    raw = text.encode("utf-8")
    raw = raw * (size // len(raw) + 1)
    return raw[:size].decode("utf-8", "ignore")


@functools.lru_cache(maxsize=None)
def english_corpus() -> str:
    """About 300 KB of real English prose: CPython's own reference documentation topics."""
    try:
        from pydoc_data.topics import topics

        return "\n\n".join(topics[key] for key in sorted(topics))
    except ImportError:  # pragma: no cover - a Python built without pydoc_data
        return _fit(_sample("english.txt"), 300_000)


@functools.lru_cache(maxsize=None)
def code_corpus() -> str:
    """Real Python source: standard-library modules that ship with every CPython."""
    import inspect
    import json.decoder
    import textwrap

    return inspect.getsource(textwrap) + inspect.getsource(json.decoder)


def _random_code_points(count: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    chars: List[str] = []
    while len(chars) < count:
        point = rng.randrange(0x20, 0x110000)
        if not 0xD800 <= point < 0xE000:
            chars.append(chr(point))
    return "".join(chars)


@functools.lru_cache(maxsize=None)
def texts() -> Dict[str, Any]:
    """The single-text inputs, by case name (a ``Rotating`` input is a new text on every call)."""
    english = english_corpus()
    return {
        "13 B English": "Hello, world!",
        "1 KB English": _fit(_sample("english.txt"), 1024),
        "4 KB code": _fit(code_corpus(), 4096),
        "100 KB English": _fit(english, 100_000),
        "4 KB CJK": _fit(_sample("cjk.txt"), 4096),
        "4 KB CJK, never-seen text": Rotating(fresh_cjk_texts()),
        "4 KB European/Arabic/Indic": _fit(_sample("multilingual.txt"), 4096),
        "10 KB whitespace runs": _fit("indent" + " " * 300 + "\n\n\n" + "\t" * 40 + "x ", 10_000),
        '"a" * 100_000': "a" * 100_000,
        "2,000 random code points": _random_code_points(2000),
    }


@functools.lru_cache(maxsize=None)
def fresh_cjk_texts(count: int = 256, size: int = 4096, seed: int = 11) -> List[str]:
    """``count`` distinct ~4 KB CJK texts whose clauses never repeat: clauses of 3-26 characters
    drawn from the sample's own characters, each closed by a CJK punctuation mark. A case that
    cycles through them measures counting text seen for the first time (the native path keeps a
    small per-thread cache of merged pieces, which repeated text would hit)."""
    sample = _sample("cjk.txt")
    chars = sorted({c for c in sample if ord(c) >= 0x2E80 and c not in "，。、；：？！"})
    rng = random.Random(seed)
    result = []
    for _ in range(count):
        clauses: List[str] = []
        size_now = 0
        while size_now < size:
            clause = "".join(rng.choice(chars) for _ in range(rng.randint(3, 26)))
            clause += rng.choice("，。、；：？！")
            clauses.append(clause)
            size_now += len(clause.encode("utf-8"))
        result.append(_fit("".join(clauses), size))
    return result


class Rotating:
    """A case input that is a different text on every call (``next_text``)."""

    def __init__(self, texts: List[str]) -> None:
        self.texts = texts
        self._next = itertools.cycle(texts).__next__

    def next_text(self) -> str:
        return self._next()


@functools.lru_cache(maxsize=None)
def batch_texts(count: int = 10_000, size: int = 1024) -> List[str]:
    """``count`` distinct ~1 KB windows of the English corpus."""
    english = english_corpus()
    step = max(1, (len(english) - size) // count)
    return [english[i * step : i * step + size] for i in range(count)]


def chat(total_bytes: Optional[int] = None) -> List[Dict[str, Any]]:
    """A three-message chat, or one grown to about ``total_bytes`` of English content."""
    messages: List[Dict[str, Any]] = [
        {"role": "system", "content": "You are a helpful assistant that answers briefly."},
        {"role": "user", "content": "What is the capital of France, and why is it famous?"},
        {"role": "assistant", "content": "Paris. It is known for art, food and the Eiffel Tower."},
    ]
    if total_bytes:
        english = english_corpus()
        chunk = 2000
        offset = 0
        while sum(len(m["content"]) for m in messages) < total_bytes:
            role = "user" if len(messages) % 2 else "assistant"
            messages.append({"role": role, "content": english[offset : offset + chunk]})
            offset += chunk
    return messages


@dataclass
class Result:
    group: str
    case: str
    encoding: str
    seconds: Dict[str, float] = field(default_factory=dict)  # contender -> median s per call

    def ratio(self, fast: str, slow: str) -> Optional[float]:
        if fast in self.seconds and slow in self.seconds and self.seconds[fast] > 0:
            return self.seconds[slow] / self.seconds[fast]
        return None


def median_seconds(
    fn: Callable[[], Any], iterations: int, min_batch_seconds: float = 2e-4
) -> float:
    """Median seconds per call over ``iterations`` timed batches; each batch repeats the call
    enough times to take at least ``min_batch_seconds``, so timer overhead does not dominate
    sub-microsecond calls."""
    timer = timeit.Timer(fn)
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= min_batch_seconds or number >= 1_000_000:
            break
        number *= 2 if elapsed <= 0 else max(2, min(10, int(min_batch_seconds / elapsed) + 1))
    runs = timer.repeat(repeat=max(1, iterations), number=number)
    return statistics.median(runs) / number


def reference_encoding(name: str) -> Any:
    """Python tiktoken for ``name``, built offline from the shipped vocabularies."""
    from ._fallback.tokens import get_encoding

    return get_encoding(name)


def token_contenders(encoding: str) -> Dict[str, Callable[[str], int]]:
    """What each contender runs to count one text: our native path, our fallback, and what a user
    would otherwise write with tiktoken."""
    from . import _flags
    from .tokens import _encoding_tokenizer

    tokenizer = _encoding_tokenizer(encoding)
    contenders: Dict[str, Callable[[str], int]] = {}
    if _flags.native is not None:
        native = tokenizer.native or tokenizer.load_native()
        # Through the public API, dispatch included, whenever the native path is switched on.
        from .tokens import count_tokens

        contenders["native"] = (
            functools.partial(count_tokens, encoding=encoding)
            if _flags.feature("TOKEN_COUNTING").mode == _flags.NATIVE
            else native.count
        )
    contenders["fallback"] = (tokenizer.fallback or tokenizer.load_fallback()).count
    try:
        reference = reference_encoding(encoding)
    except Exception:  # tiktoken missing: nothing to compare with
        return contenders
    contenders["tiktoken"] = lambda text: len(reference.encode(text, disallowed_special=()))
    return contenders


ENCODINGS = ("cl100k_base", "o200k_base")


def run_token_cases(
    iterations: int,
    encodings: Any = ENCODINGS,
    cases: Optional[List[str]] = None,
    progress: Callable[[str], None] = lambda line: None,
) -> List[Result]:
    """``count_tokens`` on every sample text, each contender, each encoding."""
    results = []
    for encoding in encodings:
        contenders = token_contenders(encoding)
        for case, text in texts().items():
            if cases is not None and case not in cases:
                continue
            result = Result("count_tokens", case, encoding)
            samples = text.texts[:8] if isinstance(text, Rotating) else [text]
            for sample in samples:
                counts = {name: fn(sample) for name, fn in contenders.items()}
                if len(set(counts.values())) != 1:
                    raise AssertionError(f"contenders disagree on {case} ({encoding}): {counts}")
            for name, fn in contenders.items():
                if isinstance(text, Rotating):
                    # A fresh rotation per contender: every one sees the texts in the same order.
                    rotation = Rotating(text.texts)
                    call = functools.partial(_count_next, fn, rotation)
                else:
                    call = functools.partial(fn, text)
                result.seconds[name] = median_seconds(call, iterations)
            results.append(result)
            progress(format_row(result))
    return results


def _count_next(fn: Callable[[str], int], rotation: Rotating) -> int:
    return fn(rotation.next_text())


def run_batch_case(iterations: int, count: int = 10_000) -> Result:
    """``count_tokens_batch`` against a loop of single native counts (our own single thread)."""
    from .tokens import count_tokens, count_tokens_batch

    batch = batch_texts(count)
    result = Result("count_tokens_batch", f"{count:,} x 1 KB English", "cl100k_base")
    result.seconds["native"] = median_seconds(
        lambda: count_tokens_batch(batch, encoding="cl100k_base"), iterations
    )
    result.seconds["single-thread loop"] = median_seconds(
        lambda: [count_tokens(t, encoding="cl100k_base") for t in batch], iterations
    )
    try:
        reference = reference_encoding("cl100k_base")
        result.seconds["tiktoken"] = median_seconds(
            lambda: [len(t) for t in reference.encode_ordinary_batch(batch)], iterations
        )
    except Exception:
        pass
    return result


def run_message_cases(iterations: int) -> List[Result]:
    """``count_message_tokens`` against ``litellm.token_counter`` (and our fallback)."""
    from . import _flags
    from .tokens import count_message_tokens

    results = []
    litellm: Any
    try:
        import litellm
    except ImportError:
        litellm = None
    for label, messages in (("3-message chat", chat()), ("50 KB chat", chat(50_000))):
        for model in ("gpt-4o", "gpt-3.5-turbo"):
            result = Result("count_message_tokens", f"{label}, {model}", model)
            state = _flags.feature("TOKEN_COUNTING")
            saved = state.enabled
            try:
                for name, enabled in (("native", True), ("fallback", False)):
                    if name == "native" and _flags.native is None:
                        continue
                    _flags.configure("token_counting", rust=enabled)
                    result.seconds[name] = median_seconds(
                        functools.partial(count_message_tokens, messages, model=model), iterations
                    )
            finally:
                _flags.configure("token_counting", rust=saved)
            if litellm is not None:
                result.seconds["litellm"] = median_seconds(
                    functools.partial(litellm.token_counter, model=model, messages=messages),
                    iterations,
                )
            results.append(result)
    return results


def format_seconds(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e3:.2f} ms"


def format_row(result: Result) -> str:
    parts = [f"{name} {format_seconds(s)}" for name, s in result.seconds.items()]
    return f"{result.group:<22} {result.case:<30} {result.encoding:<13} " + ", ".join(parts)
