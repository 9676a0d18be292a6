"""Benchmark of the Redis rate-limit backend: one process, 64 concurrent asyncio tasks checking
against a throwaway ``redis-server`` (``tests/redis_server.py``), each contender running the same
Lua script (EVALSHA) on the same server:

- ``native acheck``: ``fast_litellm._native.RedisRateLimiter.acheck`` (Rust client, one
  multiplexed connection, futures bridged to asyncio);
- ``SimpleRateLimiter.acheck``: the public API on the native path (adds the Python layer:
  argument checks, failure policy, counters);
- ``redis-py asyncio``: ``redis.asyncio.Redis.evalsha`` with its default connection pool (a
  connection per concurrent task), returning the bare reply.

Reported per contender: checks per second (all tasks together) and the p50/p99 latency of one
check as a task sees it, each the median over ``iterations`` measured rounds in one event loop
(after a warm-up round). Used by ``benches/test_bench_ratelimit_redis.py`` and callable as
``run_cases(iterations, quick)`` or ``python -m benches.redis_cases [iterations]`` from the
repository root. Without ``redis-server`` installed, ``run_cases`` returns an empty list
(``skip_reason()`` says why); a contender whose package is missing is left out
(``skipped_contenders()`` says why).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional

from fast_litellm import _flags
from tests.redis_server import RedisServer, redis_server_available

from .token_cases import missing, native_missing

__all__ = [
    "CONCURRENCY",
    "RedisResult",
    "format_result",
    "markdown",
    "run_cases",
    "skip_reason",
    "skipped_contenders",
]

CONCURRENCY = 64
# Limits that admit everything the benchmark asks for: the cost measured is the check, not a
# refusal path.
_INTERVAL_NS = 1_000
_BURST = 10**9


@dataclass
class RedisResult:
    contender: str
    checks_per_second: float
    p50_seconds: float
    p99_seconds: float
    rounds: int
    checks_per_round: int


def skip_reason() -> Optional[str]:
    """Why the benchmark cannot run here, or None."""
    if redis_server_available() is None:
        return "redis-server is not installed (Debian: apt-get install redis-server)"
    return None


def skipped_contenders() -> Dict[str, str]:
    """The contenders that cannot run here, with the reason (what they need is not installed)."""
    skipped: Dict[str, str] = {}
    reason = native_missing()
    if reason is not None:
        skipped["native acheck"] = skipped["SimpleRateLimiter.acheck"] = reason
    reason = missing("redis", "redis")
    if reason is not None:
        skipped["redis-py asyncio"] = reason
    return skipped


def _percentile(sorted_values: List[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


async def _round(check: Callable[[str], Awaitable[Any]], per_task: int) -> Dict[str, float]:
    latencies: List[float] = []

    async def task(index: int) -> None:
        key = f"bench-{index}"
        clock = time.perf_counter
        for _ in range(per_task):
            started = clock()
            await check(key)
            latencies.append(clock() - started)

    started = time.perf_counter()
    await asyncio.gather(*(task(i) for i in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "p50": _percentile(latencies, 0.50),
        "p99": _percentile(latencies, 0.99),
    }


async def _measure(
    name: str,
    make: Callable[[], Awaitable[Callable[[str], Awaitable[Any]]]],
    iterations: int,
    per_task: int,
) -> RedisResult:
    check = await make()
    await _round(check, max(1, per_task // 4))  # warm-up: connections, script cache
    rounds = [await _round(check, per_task) for _ in range(max(1, iterations))]
    return RedisResult(
        contender=name,
        checks_per_second=statistics.median(r["rate"] for r in rounds),
        p50_seconds=statistics.median(r["p50"] for r in rounds),
        p99_seconds=statistics.median(r["p99"] for r in rounds),
        rounds=len(rounds),
        checks_per_round=CONCURRENCY * per_task,
    )


def contenders(url: str) -> Dict[str, Callable[[], Awaitable[Callable[[str], Awaitable[Any]]]]]:
    """``name -> async factory of a check function`` for the contenders available here."""
    from fast_litellm.ratelimit.redis_protocol import redis_keys, script_text

    skipped = skipped_contenders()
    found: Dict[str, Callable[[], Awaitable[Callable[[str], Awaitable[Any]]]]] = {}
    if "native acheck" not in skipped:

        async def native() -> Callable[[str], Awaitable[Any]]:
            limiter = _flags.native.RedisRateLimiter(
                url, _INTERVAL_NS, _BURST, None, None, key_prefix="bench-native", timeout=5.0
            )
            return lambda key: limiter.acheck(key, 1, 0)

        async def public() -> Callable[[str], Awaitable[Any]]:
            from fast_litellm.ratelimit import SimpleRateLimiter

            limiter = SimpleRateLimiter(
                60 * 10**9 // _INTERVAL_NS,
                burst=_BURST,
                backend=url,
                key_prefix="bench-public",
                backend_timeout=5.0,
            )
            return lambda key: limiter.acheck(key)

        found["native acheck"] = native
        found["SimpleRateLimiter.acheck"] = public
    if "redis-py asyncio" not in skipped:

        async def redis_py() -> Callable[[str], Awaitable[Any]]:
            import redis.asyncio

            client = redis.asyncio.Redis.from_url(url, socket_timeout=5.0)
            sha = await client.script_load(script_text())
            args = (1, _INTERVAL_NS, _BURST, 1, 0, 0, 0)

            def check(key: str) -> Awaitable[Any]:
                return client.evalsha(sha, 2, *redis_keys("bench-redis-py", key), *args)

            return check

        found["redis-py asyncio"] = redis_py
    return found


def run_cases(iterations: int = 5, quick: bool = False) -> List[RedisResult]:
    """Runs every contender against one fresh server; ``quick`` makes the rounds small (a smoke
    run that only proves the code works)."""
    if skip_reason() is not None:
        return []
    per_task = 5 if quick else 200
    iterations = 1 if quick else iterations
    with RedisServer() as server:

        async def main() -> List[RedisResult]:
            return [
                await _measure(name, make, iterations, per_task)
                for name, make in contenders(server.url).items()
            ]

        return asyncio.run(main())


def format_result(result: RedisResult) -> str:
    return (
        f"{result.contender:<26} {result.checks_per_second:>10,.0f} checks/s   "
        f"p50 {result.p50_seconds * 1e6:8.1f} µs   p99 {result.p99_seconds * 1e6:8.1f} µs"
    )


def markdown(results: List[RedisResult]) -> List[str]:
    """The BENCHMARKS.md section: checks/s, latency and the ratio to redis-py."""
    lines = [
        "## Rate limiting on Redis",
        "",
        f"One process, {CONCURRENCY} concurrent asyncio tasks, each check one EVALSHA of the same "
        "script on a local `redis-server`; medians over the rounds.",
        "",
    ]
    if not results:
        return lines + [f"Not measured: {skip_reason() or 'no results'}.", ""]
    baseline = next((r for r in results if r.contender == "redis-py asyncio"), None)
    lines += [
        "| contender | checks/s | p50 µs | p99 µs | vs redis-py asyncio |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = (
            f"{r.checks_per_second / baseline.checks_per_second:.2f}x"
            if baseline is not None and baseline.checks_per_second
            else ""
        )
        lines.append(
            f"| {r.contender} | {r.checks_per_second:,.0f} | {r.p50_seconds * 1e6:.0f} | "
            f"{r.p99_seconds * 1e6:.0f} | {ratio} |"
        )
    return lines + [""]


if __name__ == "__main__":  # pragma: no cover - a manual run
    import sys

    reason = skip_reason()
    if reason:
        sys.exit(f"skipped: {reason}")
    results = run_cases(iterations=int(sys.argv[1]) if len(sys.argv) > 1 else 5)
    for r in results:
        print(format_result(r))
    by_name = {r.contender: r for r in results}
    baseline = by_name.get("redis-py asyncio")
    if baseline:
        for r in results:
            if r is not baseline:
                ratio = r.checks_per_second / baseline.checks_per_second
                print(f"{r.contender} vs redis-py asyncio: {ratio:.2f}x the checks/s")
