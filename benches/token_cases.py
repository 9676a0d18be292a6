"""Token-counting benchmark cases, shared by ``scripts/run_benchmarks.py`` and
``benches/test_bench_tokens.py``: one definition of the sample data and of what each contender
runs, plus the timing and formatting helpers the other case modules use.

The sample texts are in ``benches/samples/`` or come from the Python standard library (real
English documentation and real source code), so every machine measures the same inputs.

A contender whose package is not installed (Python tiktoken, litellm, the native module) is
skipped and the reason recorded in ``Result.skipped``; any other error of a contender propagates,
so a broken one fails the run.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import os
import random
import statistics
import timeit
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from fast_litellm import _flags

_SAMPLES = os.path.join(os.path.dirname(__file__), "samples")


def _sample(name: str) -> str:
    with open(os.path.join(_SAMPLES, name), encoding="utf-8") as handle:
        return handle.read()


def _fit(text: str, size: int) -> str:
    """``text`` repeated or cut to ``size`` UTF-8 bytes, cut on a character boundary."""
    raw = text.encode("utf-8")
    raw = raw * (size // len(raw) + 1)
    return raw[:size].decode("utf-8", "ignore")


def _windows(text: str, size: int, count: int) -> List[str]:
    """``count`` consecutive, non-overlapping windows of ``size`` UTF-8 bytes of ``text``."""
    raw = text.encode("utf-8")
    if len(raw) < size * count:
        raise ValueError(f"corpus of {len(raw)} bytes is too small for {count} x {size} bytes")
    return [raw[i * size : (i + 1) * size].decode("utf-8", "ignore") for i in range(count)]


@functools.lru_cache(maxsize=None)
def english_corpus() -> str:
    """About 460 KB of real English prose: CPython's own reference documentation topics."""
    try:
        from pydoc_data.topics import topics

        return "\n\n".join(topics[key] for key in sorted(topics))
    except ImportError:  # pragma: no cover - a Python built without pydoc_data
        return _fit(_sample("english.txt"), 460_000)


@functools.lru_cache(maxsize=None)
def code_corpus() -> str:
    """Real Python source: standard-library modules that ship with every CPython."""
    import inspect
    import json.decoder
    import textwrap

    return inspect.getsource(textwrap) + inspect.getsource(json.decoder)


@functools.lru_cache(maxsize=None)
def large_code_corpus() -> str:
    """About 650 KB of real Python source, for texts that never repeat."""
    import argparse
    import ast
    import configparser
    import dataclasses
    import inspect
    import pathlib
    import tarfile
    import typing

    modules = (argparse, ast, configparser, dataclasses, inspect, pathlib, tarfile, typing)
    return "\n\n".join(inspect.getsource(module) for module in modules)


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
        "1 KB English, never-seen text": Rotating(fresh_english_texts()),
        "4 KB code": _fit(code_corpus(), 4096),
        "4 KB code, never-seen text": Rotating(fresh_code_texts()),
        "100 KB English": _fit(english, 100_000),
        "4 KB CJK": _fit(_sample("cjk.txt"), 4096),
        "4 KB CJK, never-seen text": Rotating(fresh_cjk_texts()),
        "4 KB European/Arabic/Indic": _fit(_sample("multilingual.txt"), 4096),
        "10 KB whitespace runs": _fit("indent" + " " * 300 + "\n\n\n" + "\t" * 40 + "x ", 10_000),
        '"a" * 100_000': "a" * 100_000,
        "2,000 random code points": _random_code_points(2000),
    }


# The never-seen cases cycle through this many distinct texts: hundreds of kilobytes of text
# between two visits of the same one, far more than the native per-thread piece cache holds
# (1,024 pieces), so what they measure is counting text the counter has not just seen.
_FRESH_ENGLISH_TEXTS = 256
_FRESH_CODE_TEXTS = 128


@functools.lru_cache(maxsize=None)
def fresh_english_texts() -> List[str]:
    """Distinct 1 KB windows of the English corpus, none overlapping another."""
    return _windows(english_corpus(), 1024, _FRESH_ENGLISH_TEXTS)


@functools.lru_cache(maxsize=None)
def fresh_code_texts() -> List[str]:
    """Distinct 4 KB windows of real Python source, none overlapping another."""
    return _windows(large_code_corpus(), 4096, _FRESH_CODE_TEXTS)


@functools.lru_cache(maxsize=None)
def fresh_cjk_texts(count: int = 256, size: int = 4096, seed: int = 11) -> List[str]:
    """``count`` distinct ~4 KB CJK texts whose clauses never repeat: clauses of 3-26 characters
    drawn from the sample's own characters, each closed by a CJK punctuation mark. A CJK piece
    is a whole clause, so unlike English (whose common words recur in any text) real CJK text
    would hit the piece cache only where it repeats itself; these texts never do."""
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
    skipped: Dict[str, str] = field(default_factory=dict)  # contender -> why it did not run

    def ratio(self, fast: str, slow: str) -> Optional[float]:
        if fast in self.seconds and slow in self.seconds and self.seconds[fast] > 0:
            return self.seconds[slow] / self.seconds[fast]
        return None


# Timed batches of one contender in a row, and the untimed calls before them (see
# ``median_seconds_each``).
_TURN_BATCHES = 25
_TURN_WARM_UP_SECONDS = 0.005


def median_seconds(
    fn: Callable[[], Any], iterations: int, min_batch_seconds: float = 2e-4
) -> float:
    """Median seconds per call over ``iterations`` timed batches; each batch repeats the call
    enough times to take at least ``min_batch_seconds``, so timer overhead does not dominate
    sub-microsecond calls."""
    return median_seconds_each({"call": fn}, iterations, min_batch_seconds)["call"]


def median_seconds_each(
    calls: Mapping[str, Callable[[], Any]], iterations: int, min_batch_seconds: float = 2e-4
) -> Dict[str, float]:
    """``median_seconds`` of several contenders, their batches interleaved: turn after turn,
    ``_TURN_BATCHES`` timed batches of each (the first one rotating), so that every contender
    meets the same states of a shared machine (another tenant's load, the CPU it is scheduled
    on) and the ratios between them do not depend on which one ran while the machine was slow.

    Each turn starts with ``_TURN_WARM_UP_SECONDS`` of untimed calls: on this machine a call
    that follows other work, or a pause, runs slower for a few milliseconds (a 100 KB count
    takes ~5x its time right after a 20 ms sleep and ~20 calls to get back to it), which
    would charge a fast contender, whose turn is short, for the switch."""
    timers = {name: timeit.Timer(fn) for name, fn in calls.items()}
    numbers = {}
    warm_ups = {}
    for name, timer in timers.items():
        number = 1
        while True:
            elapsed = timer.timeit(number)
            if elapsed >= min_batch_seconds or number >= 1_000_000:
                break
            number *= 2 if elapsed <= 0 else max(2, min(10, int(min_batch_seconds / elapsed) + 1))
        numbers[name] = number
        warm_ups[name] = max(1, int(_TURN_WARM_UP_SECONDS / max(elapsed, 1e-9)) + 1)
    names = list(timers)
    runs: Dict[str, List[float]] = {name: [] for name in names}
    total = max(1, iterations)
    for turn in range(-(-total // _TURN_BATCHES)):
        start = turn % len(names)
        batches = min(_TURN_BATCHES, total - turn * _TURN_BATCHES)
        for name in names[start:] + names[:start]:
            timers[name].timeit(warm_ups[name] * numbers[name])
            runs[name] += [t / numbers[name] for t in timers[name].repeat(batches, numbers[name])]
    return {name: statistics.median(times) for name, times in runs.items()}


def missing(module: str, install: str) -> Optional[str]:
    """Why a contender that needs ``module`` cannot run (it is not installed), or None."""
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed (pip install {install})"
    return None


def native_missing() -> Optional[str]:
    """Why the native contenders cannot run (the extension did not load), or None."""
    if _flags.native is None:
        return f"native module unavailable ({_flags.native_import_error})"
    return None


def check_no_native_errors(feature: str = "token_counting") -> None:
    """Raises if a native call of ``feature`` failed during the run: the public API answers such
    a call on the fallback, so the timings would belong to the wrong path."""
    import fast_litellm

    status = fast_litellm.get_feature_status()["features"][feature]
    if status["errors"]:
        raise RuntimeError(
            f"{status['errors']} native {feature} calls failed during the benchmark and were "
            f"answered by the fallback (last: {status['last_error']})"
        )


def reference_encoding(name: str) -> Any:
    """Python tiktoken for ``name``, built offline from the shipped vocabularies."""
    from fast_litellm._fallback.tokens import get_encoding

    return get_encoding(name)


def token_contenders(encoding: str) -> Tuple[Dict[str, Callable[[str], int]], Dict[str, str]]:
    """What each contender runs to count one text: our native path, our fallback, and what a user
    would otherwise write with tiktoken; and the contenders skipped, with the reason."""
    from fast_litellm.tokens import _encoding_tokenizer, count_tokens

    tokenizer = _encoding_tokenizer(encoding)
    contenders: Dict[str, Callable[[str], int]] = {}
    skipped: Dict[str, str] = {}
    reason = native_missing()
    if reason is None:
        native = tokenizer.native or tokenizer.load_native()
        # Through the public API, dispatch included, whenever the native path is switched on.
        contenders["native"] = (
            functools.partial(count_tokens, encoding=encoding)
            if _flags.feature("TOKEN_COUNTING").mode == _flags.NATIVE
            else native.count
        )
    else:
        skipped["native"] = reason
    # The fallback is Python tiktoken over the shipped vocabularies: both need the package.
    reason = missing("tiktoken", "tiktoken")
    if reason is not None:
        skipped["fallback"] = skipped["tiktoken"] = reason
        return contenders, skipped
    contenders["fallback"] = (tokenizer.fallback or tokenizer.load_fallback()).count
    reference = reference_encoding(encoding)
    contenders["tiktoken"] = lambda text: len(reference.encode(text, disallowed_special=()))
    upstream, reason = litellm_native_tokenizer()
    if upstream is None:
        skipped["litellm native"] = reason
    else:
        contenders["litellm native"] = functools.partial(
            upstream.from_tiktoken(encoding).count, fast=True
        )
    return contenders, skipped


def litellm_native_tokenizer() -> Tuple[Any, str]:
    """The Rust tokenizer class litellm 1.110 ships (off by default in litellm), or None and why.
    It is called in its count-only ``fast=True`` mode, its fastest: the plain encode
    (``fast=False``) is several times slower and would flatter us. Every run checks that all the
    contenders give the same count."""
    try:
        from litellm.rust_bridge._native import Tokenizer
    except ImportError as exc:
        return None, f"litellm.rust_bridge is not available ({exc})"
    return Tokenizer, ""


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
        contenders, skipped = token_contenders(encoding)
        for case, text in texts().items():
            if cases is not None and case not in cases:
                continue
            result = Result("count_tokens", case, encoding, skipped=dict(skipped))
            samples = text.texts[:8] if isinstance(text, Rotating) else [text]
            for sample in samples:
                counts = {name: fn(sample) for name, fn in contenders.items()}
                if len(set(counts.values())) > 1:
                    raise AssertionError(f"contenders disagree on {case} ({encoding}): {counts}")
            calls = {}
            for name, fn in contenders.items():
                if isinstance(text, Rotating):
                    # A fresh rotation per contender: every one sees the texts in the same order.
                    calls[name] = functools.partial(_count_next, fn, Rotating(text.texts))
                else:
                    calls[name] = functools.partial(fn, text)
            result.seconds.update(median_seconds_each(calls, iterations))
            results.append(result)
            progress(format_row(result))
    check_no_native_errors()
    return results


def _count_next(fn: Callable[[str], int], rotation: Rotating) -> int:
    return fn(rotation.next_text())


def run_batch_case(iterations: int, count: int = 10_000) -> Result:
    """``count_tokens_batch`` against a loop of single native counts (our own single thread),
    a plain loop of tiktoken counts (what a user would write) and tiktoken's own
    ``encode_ordinary_batch`` (a thread pool, slower per text than the plain loop here)."""
    from fast_litellm.tokens import count_tokens, count_tokens_batch

    batch = batch_texts(count)
    result = Result("count_tokens_batch", f"{count:,} x 1 KB English", "cl100k_base")
    reason = native_missing()
    if reason is None:
        result.seconds["native"] = median_seconds(
            lambda: count_tokens_batch(batch, encoding="cl100k_base"), iterations
        )
        result.seconds["single-thread loop"] = median_seconds(
            lambda: [count_tokens(t, encoding="cl100k_base") for t in batch], iterations
        )
        check_no_native_errors()
    else:
        result.skipped["native"] = result.skipped["single-thread loop"] = reason
    reason = missing("tiktoken", "tiktoken")
    if reason is not None:
        result.skipped["tiktoken loop"] = result.skipped["tiktoken batch"] = reason
        return result
    reference = reference_encoding("cl100k_base")
    expected = [len(reference.encode_ordinary(t)) for t in batch]
    if "native" in result.seconds and count_tokens_batch(batch, encoding="cl100k_base") != expected:
        raise AssertionError("count_tokens_batch disagrees with tiktoken on the batch")
    result.seconds["tiktoken loop"] = median_seconds(
        lambda: [len(reference.encode_ordinary(t)) for t in batch], iterations
    )
    result.seconds["tiktoken batch"] = median_seconds(
        lambda: [len(t) for t in reference.encode_ordinary_batch(batch)], iterations
    )
    return result


def run_message_cases(iterations: int) -> List[Result]:
    """``count_message_tokens`` against ``litellm.token_counter`` (and our fallback)."""
    from fast_litellm.tokens import count_message_tokens

    skipped: Dict[str, str] = {}
    paths = []
    reason = native_missing()
    if reason is None:
        paths.append(("native", True))
    else:
        skipped["native"] = reason
    reason = missing("tiktoken", "tiktoken")
    if reason is None:
        paths.append(("fallback", False))
    else:
        skipped["fallback"] = reason
    litellm: Any = None
    reason = missing("litellm", "litellm")
    if reason is None:
        import litellm
    else:
        skipped["litellm"] = reason
    results = []
    for label, messages in (("3-message chat", chat()), ("50 KB chat", chat(50_000))):
        for model in ("gpt-4o", "gpt-3.5-turbo"):
            result = Result(
                "count_message_tokens", f"{label}, {model}", model, skipped=dict(skipped)
            )
            state = _flags.feature("TOKEN_COUNTING")
            saved = state.enabled
            try:
                for name, enabled in paths:
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
    check_no_native_errors()
    return results


def format_seconds(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e3:.2f} ms"


def format_row(result: Result) -> str:
    parts = [f"{name} {format_seconds(s)}" for name, s in result.seconds.items()]
    parts += [f"{name} skipped" for name in result.skipped]
    return f"{result.group:<22} {result.case:<30} {result.encoding:<13} " + ", ".join(parts)


def skip_reasons(results: List[Result]) -> List[str]:
    """One line per contender that did not run, with the reason, for the whole run."""
    reasons: Dict[str, str] = {}
    for result in results:
        for name, reason in result.skipped.items():
            reasons.setdefault(name, reason)
    return [f"{name} skipped: {reason}" for name, reason in reasons.items()]


# ---- Hugging Face tokenizers (Claude, DeepSeek) and request bodies -----------------------------

HF_MODELS = {"claude-opus-4-5": "anthropic", "deepseek-v3": "deepseek"}


def hf_texts() -> List[Tuple[str, str, str]]:
    """(case, model, text): real English prose, 1 KB and 100 KB, for each model."""
    english = english_corpus()
    return [
        (f"{size // 1024} KB English", model, _fit(english, size))
        for model in HF_MODELS
        for size in (1024, 100 * 1024)
    ]


def hf_contenders(model: str) -> Tuple[Dict[str, Callable[[str], int]], Dict[str, str]]:
    """``native`` (``count_tokens(text, model=...)``), ``litellm`` (``litellm.token_counter``
    on its default Python path), ``tokenizers`` (Python ``tokenizers`` on the same file, as
    litellm calls it) and ``litellm native`` (the Rust tokenizer litellm 1.110 ships, off by
    default, called directly in its fast mode), each where installed."""
    from fast_litellm import _models
    from fast_litellm.tokens import count_tokens

    contenders: Dict[str, Callable[[str], int]] = {}
    skipped: Dict[str, str] = {}
    path = _models.huggingface_tokenizer_file(HF_MODELS[model])
    reason = native_missing()
    if reason is None and path is None:
        reason = "litellm (with its tokenizer files) or tokenizers is not installed"
    if reason is None:
        contenders["native"] = functools.partial(count_tokens, model=model)
    else:
        skipped["native"] = reason
    reason = missing("litellm", "litellm")
    if reason is None:
        import litellm

        contenders["litellm"] = lambda text: litellm.token_counter(model=model, text=text)
    else:
        skipped["litellm"] = reason
    reason = missing("tokenizers", "tokenizers")
    if reason is None and path is not None:
        from tokenizers import Tokenizer

        reference = Tokenizer.from_file(path)
        contenders["tokenizers"] = lambda text: len(reference.encode_batch_fast([text])[0])
    else:
        skipped["tokenizers"] = reason or "no tokenizer file"
    upstream, reason = litellm_native_tokenizer()
    if upstream is None:
        skipped["litellm native"] = reason
    elif path is None:
        skipped["litellm native"] = "no tokenizer file"
    else:
        # `fast=True` is ~10x on the Claude file and no change on DeepSeek's in 1.110.2.
        with open(path, encoding="utf-8") as handle:
            contenders["litellm native"] = functools.partial(
                upstream.from_json(handle.read()).count, fast=True
            )
    return contenders, skipped


def run_hf_cases(iterations: int) -> List[Result]:
    results = []
    for case, model, text in hf_texts():
        contenders, skipped = hf_contenders(model)
        counts = {name: fn(text) for name, fn in contenders.items()}
        if len(set(counts.values())) > 1:
            raise AssertionError(f"contenders disagree on {case} ({model}): {counts}")
        result = Result("count_tokens (Hugging Face)", case, model, skipped=skipped)
        calls = {name: functools.partial(fn, text) for name, fn in contenders.items()}
        result.seconds.update(median_seconds_each(calls, iterations))
        results.append(result)
    check_no_native_errors()
    return results


def request_body(total_bytes: int = 50_000, model: str = "gpt-4o") -> bytes:
    """A chat-completions request body of about ``total_bytes``: the 50 KB chat and one tool."""
    import json

    tool = {
        "type": "function",
        "function": {
            "name": "search_docs",
            "description": "Search the documentation",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["query"],
            },
        },
    }
    body = {"model": model, "messages": chat(total_bytes), "tools": [tool], "stream": True}
    return json.dumps(body).encode()


def _loads_and_count(body: bytes) -> int:
    import json

    from fast_litellm.tokens import count_message_tokens

    request = json.loads(body)
    return count_message_tokens(
        request["messages"],
        model=request["model"],
        tools=request.get("tools"),
        tool_choice=request.get("tool_choice"),
    )


def run_request_cases(iterations: int) -> List[Result]:
    """``count_request_tokens(body)`` against ``json.loads`` + ``count_message_tokens`` (both
    on the native path) on a 50 KB body."""
    from fast_litellm.tokens import count_request_tokens

    results = []
    for model in ("gpt-4o", "claude-opus-4-5"):
        body = request_body(50_000, model)
        result = Result("count_request_tokens", "50 KB request body", model)
        reason = native_missing()
        if reason is not None:
            result.skipped["native"] = reason
            results.append(result)
            continue
        if count_request_tokens(body) != _loads_and_count(body):
            raise AssertionError(f"count_request_tokens disagrees on the {model} body")
        calls = {
            "native": functools.partial(count_request_tokens, body),
            "json.loads + count_message_tokens": functools.partial(_loads_and_count, body),
        }
        result.seconds.update(median_seconds_each(calls, iterations))
        results.append(result)
    check_no_native_errors()
    return results
