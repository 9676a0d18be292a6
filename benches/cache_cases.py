"""Response-cache and monitoring benchmark cases, shared by ``scripts/run_benchmarks.py`` and
``benches/test_bench_cache.py``.

Cache contenders, each holding ``ENTRIES`` entries of a chat-response dict:

- ``native``: ``fast_litellm.ResponseCache`` on the native path (the public API);
- ``fallback``: the same API on the pure-Python path;
- ``litellm``: LiteLLM's ``InMemoryCache`` (``litellm.caching.in_memory_cache``), ``get_cache`` /
  ``set_cache``, with the same size bound; for keys, ``litellm.Cache().get_cache_key(**request)``.

Monitoring overhead: the two hottest calls of the package (a 13-byte ``count_tokens`` and a
rate-limit ``allow`` on a hot key) with native self-timing off, on as shipped (every call counted,
one in 32 timed) and timing every call.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, List, Optional, Tuple

from fast_litellm import _flags

from .token_cases import Result, median_seconds, missing, native_missing

CONTENDERS = ("native", "fallback", "litellm")
ENTRIES = 1_000
RESPONSE = {
    "id": "chatcmpl-123",
    "object": "chat.completion",
    "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}}],
    "usage": {"prompt_tokens": 14, "completion_tokens": 2, "total_tokens": 16},
}
REQUEST = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant. Answer in one word."},
        {"role": "user", "content": "What is the capital of France?"},
    ],
    "temperature": 0.2,
    "max_tokens": 16,
    "stream": False,
}


def skip_reason(contender: str) -> Optional[str]:
    if contender == "native":
        return native_missing()
    if contender == "litellm":
        return missing("litellm", "litellm")
    return None


class _LiteLLM:
    """InMemoryCache behind the same two calls."""

    def __init__(self) -> None:
        from litellm.caching.in_memory_cache import InMemoryCache

        self.inner = InMemoryCache(max_size_in_memory=ENTRIES, default_ttl=600)
        self.get = self.inner.get_cache
        self.set = self.inner.set_cache


def make_cache(contender: str) -> Any:
    """A cache of ``contender``'s kind with ``get(key)``/``set(key, value)``, filled with
    ``ENTRIES`` keys ``k0``... (None when the contender is not installed)."""
    if skip_reason(contender) is not None:
        return None
    if contender == "litellm":
        cache: Any = _LiteLLM()
    else:
        from fast_litellm.cache import ResponseCache

        _flags.configure("cache", rust=contender == "native")
        try:
            cache = ResponseCache(ENTRIES, 600)
        finally:
            _flags.configure("cache", reload_environment=True)
        assert cache.implementation == contender
    for i in range(ENTRIES):
        cache.set(f"k{i}", RESPONSE)
    return cache


def make_key(contender: str) -> Optional[Callable[[Dict[str, Any]], str]]:
    if skip_reason(contender) is not None:
        return None
    if contender == "litellm":
        import litellm

        keyer = litellm.Cache()  # the default: in memory
        return lambda request: keyer.get_cache_key(**request)
    from fast_litellm import cache as cache_module

    if contender == "native":
        assert _flags.native is not None
        return _flags.native.cache_key
    return cache_module._fallback.cache_key


def cases() -> List[Tuple[str, Callable[[Any], Callable[[], Any]]]]:
    """(case, given a filled cache: the call to time)."""
    return [
        ("get, hit", lambda c: functools.partial(c.get, "k500")),
        ("get, miss", lambda c: functools.partial(c.get, "absent")),
        ("set, replace", lambda c: functools.partial(c.set, "k500", RESPONSE)),
    ]


def run_cases(iterations: int) -> List[Result]:
    results: List[Result] = []
    skipped = {c: r for c in CONTENDERS if (r := skip_reason(c)) is not None}
    caches = {c: make_cache(c) for c in CONTENDERS if c not in skipped}
    for case, call in cases():
        result = Result("response cache", case, f"{ENTRIES:,} entries", skipped=dict(skipped))
        for contender, cache in caches.items():
            result.seconds[contender] = median_seconds(call(cache), iterations)
        results.append(result)
    # New keys: every set inserts one and evicts the oldest (the cache stays full).
    result = Result(
        "response cache", "set, new key (evicts)", f"{ENTRIES:,} entries", skipped=dict(skipped)
    )
    for contender, cache in caches.items():
        counter = iter(range(10**12))
        setter = cache.set

        def insert(setter: Any = setter, counter: Any = counter) -> None:
            setter(f"n{next(counter)}", RESPONSE)

        result.seconds[contender] = median_seconds(insert, iterations)
    results.append(result)
    keys = Result("response cache", "key of a chat request", "-", skipped=dict(skipped))
    for contender in CONTENDERS:
        key = make_key(contender)
        if key is not None:
            keys.seconds[contender] = median_seconds(functools.partial(key, REQUEST), iterations)
    results.append(keys)
    _flags.configure("cache", reload_environment=True)
    return results


# ---- monitoring overhead ----------------------------------------------------------------------

OVERHEAD_SETTINGS = ("monitoring off", "as shipped", "every call timed")


def _with_setting(setting: str, fn: Callable[[], float]) -> float:
    native = _flags.native
    assert native is not None
    before_timing = native.metrics_self_timing(setting != "monitoring off")
    default = native.metrics_sample_every()
    before_every = native.metrics_sample_every(1 if setting == "every call timed" else default)
    try:
        return fn()
    finally:
        native.metrics_self_timing(before_timing)
        native.metrics_sample_every(before_every)


def run_overhead_cases(iterations: int) -> List[Result]:
    """The hottest native calls with monitoring off, as shipped, and timing every call."""
    reason = native_missing()
    import fast_litellm

    limiter = fast_litellm.SimpleRateLimiter(6000)
    calls = [
        ("count_tokens, 13 B", functools.partial(fast_litellm.count_tokens, "Hello, world!")),
        ("rate limit allow(), hot key", functools.partial(limiter.allow, "hot-key")),
    ]
    results = []
    for case, call in calls:
        result = Result("monitoring overhead", case, "native")
        for setting in OVERHEAD_SETTINGS:
            if reason is not None:
                result.skipped[setting] = reason
                continue
            call()
            result.seconds[setting] = _with_setting(
                setting, functools.partial(median_seconds, call, iterations)
            )
        results.append(result)
    return results


def format_overhead(result: Result) -> str:
    base = result.seconds.get("monitoring off")
    parts = []
    for setting, seconds in result.seconds.items():
        extra = (
            ""
            if base is None or setting == "monitoring off"
            else f" (+{(seconds - base) * 1e9:.1f} ns)"
        )
        parts.append(f"{setting} {seconds * 1e9:.1f} ns{extra}")
    return f"{result.case:<30} " + ", ".join(parts)


def main(iterations: int = 31) -> None:
    """``python -m benches.cache_cases``: the response-cache rows, ns per call and ratios."""
    for result in run_cases(iterations):
        parts = [f"{name} {seconds * 1e9:,.1f} ns" for name, seconds in result.seconds.items()]
        ratios = [
            f"{fast} {ratio:.1f}x faster than litellm"
            for fast in ("native", "fallback")
            if (ratio := result.ratio(fast, "litellm")) is not None
        ]
        print(f"{result.case:<24} " + ", ".join(parts + ratios))


if __name__ == "__main__":
    main()
