"""``python -m fast_litellm``: a status report, then a short side-by-side timing of the public API.

Options: ``--status`` (report only), ``--json`` (``health_check()`` as JSON), ``--iterations N``
(timed batches per measurement), ``--strict`` (exit status 1 when the status is "degraded", as
CI runs it). The timing compares the native path, the pure-Python fallback and what a user would
call otherwise (Python tiktoken, ``litellm.token_counter``) on a small sample; a contender whose
package is not installed is skipped and the reason printed. The full benchmark suite is
``python scripts/run_benchmarks.py`` in a checkout of the repository.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import platform
import statistics
import sys
import timeit
from typing import Any, Callable, Dict, List, Optional, Tuple

# The comparison may import litellm: keep it on its bundled model map and offline.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from . import (  # noqa: E402
    SimpleRateLimiter,
    __version__,
    configure,
    count_message_tokens,
    count_tokens,
    get_feature_status,
    health_check,
)

_ENCODING = "cl100k_base"
_CHAT_MODEL = "gpt-4o"
_PROSE = (
    "Rate limits protect a shared service from any single caller. A proxy in front of several "
    "language-model providers counts the tokens of every request before it is sent, because "
    "the budget of a team is expressed in tokens per minute, and it refuses or delays the "
    "requests that would exceed it. Counting must give exactly the number the provider will "
    "bill, or budgets drift; it must also be cheap, since it runs on every call. "
)
_CHAT = [
    {"role": "system", "content": "You are a helpful assistant that answers briefly."},
    {"role": "user", "content": "What is the capital of France, and why is it famous?"},
    {"role": "assistant", "content": "Paris. It is known for art, food and the Eiffel Tower."},
]


def _status_report(health: Dict[str, Any]) -> None:
    print(
        f"fast_litellm {__version__} on Python {platform.python_version()} ({platform.machine()})"
    )
    print(f"status: {health['status']}")
    native = health["native"]
    if native["available"]:
        version, allocator = native.get("version"), native.get("allocator")
        print(f"native module: loaded (version {version}, allocator {allocator})")
    else:
        print(f"native module: NOT loaded, every feature runs on the fallback ({native['error']})")
    print("features:")
    status = get_feature_status()["features"]
    for name, check in health["features"].items():
        flags = status[name]
        detail = f" ({check['reason']})" if "reason" in check else ""
        print(f"  {name:<16} {check['status']:<9} path={flags['active_path']}{detail}")
    others = [n for n in status if n not in health["features"]]
    if others:
        print(f"  not built yet: {', '.join(others)}")
    patch = health.get("litellm_patch") or {}
    if patch.get("patched"):
        entry_points = patch.get("features", {}).get("token_counting", {}).get("entry_points", {})
        patched = sum(1 for e in entry_points.values() if e.get("status") == "patched")
        print(
            f"litellm {patch.get('litellm_version')}: patched ({patched} token_counter entry points)"
        )
    else:
        print("litellm: not patched (fast_litellm.patch() or FAST_LITELLM_AUTO_PATCH=1)")


def _samples() -> Dict[str, str]:
    """Three sizes of input; the code sample is this module's own source."""
    with open(__file__, encoding="utf-8") as handle:
        source = handle.read()
    return {
        "13 B English": "Hello, world!",
        "1 KB English": (_PROSE * 4)[:1024],
        "4 KB Python source": (source * 2)[:4096],
    }


def _per_call(fn: Callable[[], Any], iterations: int) -> float:
    """Median seconds per call over ``iterations`` batches of 10-100 ms each: long enough that
    the timer's own cost does not count, short enough to keep the whole timing brief."""
    timer = timeit.Timer(fn)
    number = 1
    while timer.timeit(number) < 0.01 and number < 10**7:
        number *= 10
    return statistics.median(timer.repeat(repeat=max(1, iterations), number=number)) / number


def _not_installed(module: str) -> Optional[str]:
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed (pip install {module})"
    return None


def _tiktoken_count(encoding: Any, text: str) -> int:
    """What a user of Python tiktoken writes to count a text as LiteLLM does."""
    return len(encoding.encode(text, disallowed_special=()))


Timings = Dict[str, Dict[str, float]]  # case -> contender -> seconds per call


def _time_paths(
    feature: str,
    paths: List[Tuple[str, bool]],
    cases: Dict[str, Callable[[], Callable[[], Any]]],
    iterations: int,
    answers: Dict[str, Dict[str, Any]],
    timings: Timings,
) -> None:
    """Times each case on each path of ``feature`` (``(name, rust)``); a case is a factory of
    the call to time, made after the switch, so objects built by it take that path."""
    for name, rust in paths:
        configure(feature, rust=rust, rollout=100)
        try:
            for case, make in cases.items():
                call = make()
                answers.setdefault(case, {})[name] = call()
                timings.setdefault(case, {})[name] = _per_call(call, iterations)
        finally:
            configure(reload_environment=True)


def _short_timing(health: Dict[str, Any], iterations: int) -> None:
    skipped: Dict[str, str] = {}
    native_paths = [("native", True)]
    if not health["native"]["available"]:
        skipped["native"] = f"native module unavailable ({health['native']['error']})"
        native_paths = []
    no_tiktoken = _not_installed("tiktoken")
    token_paths = native_paths + [("fallback", False)]
    if no_tiktoken is not None:
        # The fallback tokenizer is Python tiktoken over the vocabularies shipped here.
        skipped["fallback token counting"] = skipped["tiktoken"] = no_tiktoken
        token_paths = native_paths
    no_litellm = _not_installed("litellm")
    if no_litellm is not None:
        skipped["litellm"] = no_litellm

    answers: Dict[str, Dict[str, Any]] = {}
    timings: Timings = {}
    chat_case = f"count_message_tokens, 3 messages, {_CHAT_MODEL}"
    token_cases: Dict[str, Callable[[], Callable[[], Any]]] = {
        f"count_tokens, {label}": functools.partial(
            functools.partial, count_tokens, text, encoding=_ENCODING
        )
        for label, text in _samples().items()
    }
    token_cases[chat_case] = functools.partial(
        functools.partial, count_message_tokens, _CHAT, model=_CHAT_MODEL
    )
    _time_paths("token_counting", token_paths, token_cases, iterations, answers, timings)
    # A native failure of a counting call is answered by the fallback: the native timings would
    # then belong to the wrong path.
    status = get_feature_status()["features"]["token_counting"]
    if status["errors"]:
        raise RuntimeError(f"native token counting failed during the timing: {status}")

    references: Dict[str, Tuple[str, Callable[[], Any]]] = {}
    if no_tiktoken is None:
        from ._fallback.tokens import get_encoding

        encoding = get_encoding(_ENCODING)  # Python tiktoken, built from the shipped files
        for label, text in _samples().items():
            references[f"count_tokens, {label}"] = (
                "tiktoken",
                functools.partial(_tiktoken_count, encoding, text),
            )
    if no_litellm is None:
        import litellm

        references[chat_case] = (
            "litellm",
            functools.partial(litellm.token_counter, model=_CHAT_MODEL, messages=_CHAT),
        )
    for case, (name, call) in references.items():
        answers[case][name] = call()
        timings[case][name] = _per_call(call, iterations)

    # Each limiter is built on the path under test; after its burst every call is a refusal,
    # the steady state of a key being hammered.
    limiter_case = "SimpleRateLimiter.allow, one hot key"
    limiter_cases: Dict[str, Callable[[], Callable[[], Any]]] = {
        limiter_case: lambda: functools.partial(SimpleRateLimiter(6000).allow, "hot-key")
    }
    limiter_paths = native_paths + [("fallback", False)]
    _time_paths("rate_limiting", limiter_paths, limiter_cases, iterations, answers, timings)

    print()
    print(f"short timing: median per call over {iterations} timed batches (each case repeats one")
    print("text, which the native per-thread piece cache helps; see BENCHMARKS.md for new text)")
    for case, seconds in timings.items():
        if len(set(answers[case].values())) > 1:
            raise AssertionError(f"{case}: the contenders disagree: {answers[case]}")
        shown = ", ".join(f"{name} {s * 1e6:.3f} µs" for name, s in seconds.items())
        print(f"  {case:<44} {shown}")
    speedups = [
        f"  {case:<44} {seconds[other] / seconds['native']:6.1f}x vs {other}"
        for case, seconds in timings.items()
        for other in ("fallback", "tiktoken", "litellm")
        if "native" in seconds and other in seconds and seconds["native"] > 0
    ]
    if speedups:
        print("speed-up of native:")
        print("\n".join(speedups))
    for name, reason in skipped.items():
        print(f"skipped: {name}: {reason}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fast_litellm", description=__doc__)
    parser.add_argument("--status", action="store_true", help="print the status report only")
    parser.add_argument("--json", action="store_true", help="print health_check() as JSON only")
    parser.add_argument("--iterations", type=int, default=15, help="timed batches per measurement")
    parser.add_argument(
        "--strict", action="store_true", help='exit with status 1 when the status is "degraded"'
    )
    args = parser.parse_args(argv)
    health = health_check()
    if args.json:
        print(json.dumps(health, indent=2))
    else:
        _status_report(health)
        if not args.status:
            _short_timing(health, args.iterations)
    if args.strict and health["status"] != "ok":
        print(f"--strict: the status is {health['status']!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
