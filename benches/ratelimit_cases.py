"""Rate-limiter benchmark cases, shared by ``scripts/run_benchmarks.py`` and
``benches/test_bench_ratelimit.py``.

Contenders, all configured as 6,000 requests per minute:

- ``native``: ``SimpleRateLimiter.allow`` on the native path (the public API);
- ``fallback``: the same API on the pure-Python path;
- ``dict bucket``: the minimal pure-Python token bucket a user would write (below: a dict of
  ``key -> (tokens, last)``, float seconds, no lock, so not thread-safe);
- ``limits``: the ``limits`` package's in-memory moving window (``MovingWindowRateLimiter`` over
  ``MemoryStorage``), ``hit(item, key)``.

Cases: one hot key (after its burst every call is a refusal: the steady state of a key being
hammered), and 1M distinct 16-character keys each used once (every call inserts a key).
Memory: bytes per key for 1M distinct keys, from the limiter's own ``stats()`` and from the
process's resident memory, each contender in a fresh interpreter.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional

from fast_litellm import _flags

from .token_cases import Result, format_seconds, median_seconds, missing, native_missing

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RPM = 6000
# The distinct-key and memory cases use one request per minute, so that every key is still live
# (its bucket not yet full) when the run ends and none is swept: the table holds all of them.
RPM_DISTINCT = 1
CONTENDERS = ("native", "fallback", "dict bucket", "limits")


class DictTokenBucket:
    """The minimal pure-Python token bucket: what the native path has to beat."""

    def __init__(self, requests_per_minute: float, burst: int) -> None:
        self.rate = requests_per_minute / 60.0
        self.burst = burst
        self.buckets: Dict[str, tuple] = {}

    def allow(self, key: str, cost: int = 1) -> bool:
        now = time.monotonic()
        bucket = self.buckets.get(key)
        if bucket is None:
            tokens = self.burst
        else:
            tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        if tokens >= cost:
            self.buckets[key] = (tokens - cost, now)
            return True
        self.buckets[key] = (tokens, now)
        return False


def skip_reason(contender: str) -> Optional[str]:
    """Why ``contender`` cannot run here (what it needs is not installed), or None."""
    if contender == "native":
        return native_missing()
    if contender == "limits":
        return missing("limits", "limits")
    return None


def make_allow(contender: str, rpm: int = RPM) -> Optional[Callable[[str], Any]]:
    """A fresh limiter of ``contender``'s kind; returns its one-key ``allow`` (None when the
    contender is not installed: ``skip_reason`` says why)."""
    from fast_litellm.ratelimit import SimpleRateLimiter

    if skip_reason(contender) is not None:
        return None
    if contender in ("native", "fallback"):
        state = _flags.feature("RATE_LIMITING")
        saved = (state.enabled, state.rollout)
        try:
            _flags.configure("rate_limiting", rust=contender == "native", rollout=100)
            limiter = SimpleRateLimiter(rpm)
        finally:
            _flags.configure("rate_limiting", rust=saved[0], rollout=saved[1])
        assert limiter.implementation == contender
        return limiter.allow
    if contender == "dict bucket":
        return DictTokenBucket(rpm, max(1, rpm // 10)).allow
    if contender == "limits":
        from limits import parse, storage, strategies

        window = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        item = parse(f"{rpm}/minute")
        return lambda key: window.hit(item, key)
    raise ValueError(f"unknown contender {contender!r}")


def distinct_keys(count: int) -> List[str]:
    """``count`` distinct 16-character keys, like API-key or user ids."""
    return [f"user-{i:011d}" for i in range(count)]


def run_cases(iterations: int, quick: bool = False) -> List[Result]:
    """``allow()`` per call on one hot key and on many distinct keys, every contender."""
    results = []
    skipped = {c: reason for c in CONTENDERS if (reason := skip_reason(c)) is not None}
    available = [c for c in CONTENDERS if c not in skipped]
    hot = Result("rate limit allow()", "one hot key", f"{RPM}/min", skipped=dict(skipped))
    for contender in available:
        allow = make_allow(contender)
        assert allow is not None
        hot.seconds[contender] = median_seconds(
            functools.partial(allow, "hot-key-00000001"), iterations
        )
    results.append(hot)

    count = 10_000 if quick else 1_000_000
    keys = distinct_keys(count)
    many = Result(
        "rate limit allow()",
        f"{count:,} distinct keys, each once",
        f"{RPM_DISTINCT}/min",
        skipped=dict(skipped),
    )
    runs = 1 if quick else max(1, min(iterations, 3))
    for contender in available:
        timings = []
        for _ in range(runs):
            allow = make_allow(contender, RPM_DISTINCT)
            assert allow is not None
            start = time.perf_counter()
            for key in keys:
                allow(key)
            timings.append((time.perf_counter() - start) / count)
            del allow
        many.seconds[contender] = statistics.median(timings)
    results.append(many)
    return results


_MEMORY_SCRIPT = """
import gc, json, sys
sys.path.insert(0, sys.argv[3])  # the repository root, where ``benches`` is
from benches.ratelimit_cases import RPM_DISTINCT, make_allow

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0

contender, count = sys.argv[1], int(sys.argv[2])
allow = make_allow(contender, RPM_DISTINCT)
if allow is None:  # not installed
    print("null")
    sys.exit()
gc.collect()
before = rss()
for i in range(count):
    allow(f"user-{i:011d}")  # each key made here and dropped: the limiter keeps its own copy
gc.collect()
after = rss()
owner = getattr(allow, "__self__", None)
stats = owner.stats() if hasattr(owner, "stats") else None
print(json.dumps({"rss": after - before, "stats": stats and stats["memory_bytes"],
                  "keys": stats and stats["keys"]}))
"""


def memory_results(keys: int = 1_000_000) -> List[Dict[str, Any]]:
    """Bytes per key held for ``keys`` distinct 16-character keys, each contender in a fresh
    interpreter: ``stats_bytes_per_key`` (the limiter's own account, where it has one) and
    ``rss_bytes_per_key`` (growth of the process's resident memory)."""
    rows = []
    for contender in CONTENDERS:
        if skip_reason(contender) is not None:
            continue
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_SCRIPT, contender, str(keys), _ROOT],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise RuntimeError(f"memory run of {contender} failed:\n{out.stderr}")
        data = json.loads(out.stdout.strip().splitlines()[-1])
        if data is None:
            continue
        rows.append(
            {
                "contender": contender,
                "keys": keys,
                "keys_tracked": data["keys"],
                "stats_bytes_per_key": None if data["stats"] is None else data["stats"] / keys,
                "rss_bytes_per_key": data["rss"] / keys,
            }
        )
    return rows


def markdown(results: List[Result], memory: List[Dict[str, Any]]) -> List[str]:
    """The rate-limiting section of BENCHMARKS.md."""
    lines = [
        "## Rate limiting",
        "",
        f"`allow()` per call: {RPM} requests per minute on the hot key, {RPM_DISTINCT} per minute "
        "on the distinct keys (so none is swept during the run). `dict bucket` is a minimal "
        "pure-Python token bucket (dict + `time.monotonic()`, no lock); `limits` is the "
        "`limits` package's in-memory moving window. See `benches/ratelimit_cases.py`.",
        "",
    ]
    header = ["case", *CONTENDERS, "native vs dict bucket", "vs fallback", "vs limits"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for result in results:
        row = [result.case]
        row += [
            format_seconds(result.seconds[c]) if c in result.seconds else "-" for c in CONTENDERS
        ]
        for reference in ("dict bucket", "fallback", "limits"):
            ratio = result.ratio("native", reference)
            row.append(f"**{ratio:.1f}x**" if ratio is not None else "-")
        lines.append("| " + " | ".join(row) + " |")
    if memory:
        lines += [
            "",
            f"Memory for {memory[0]['keys']:,} distinct 16-character keys, bytes per key "
            "including the key (each contender in a fresh interpreter):",
            "",
            "| contender | `stats()` | process RSS growth |",
            "|---|---|---|",
        ]
        for measured in memory:
            stats = measured["stats_bytes_per_key"]
            lines.append(
                f"| {measured['contender']} | {'-' if stats is None else f'{stats:.0f}'} | "
                f"{measured['rss_bytes_per_key']:.0f} |"
            )
    lines.append("")
    return lines


def format_memory(row: Dict[str, Any]) -> str:
    stats = row["stats_bytes_per_key"]
    shown = "-" if stats is None else f"{stats:.0f} B/key"
    return (
        f"rate limit memory       {row['contender']:<12} stats {shown}, "
        f"RSS {row['rss_bytes_per_key']:.0f} B/key"
    )
