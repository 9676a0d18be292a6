"""pytest-benchmark: the Redis rate-limit backend under 64 concurrent asyncio tasks, native acheck
vs redis-py's asyncio client running the same script (cases from ``fast_litellm._bench_redis``,
which also reports checks/s and p50/p99 latency: ``python -m fast_litellm._bench_redis``).

    pytest benches/test_bench_ratelimit_redis.py --benchmark-only

One benchmark round is 64 tasks x 50 checks against a throwaway redis-server on loopback.
"""

from __future__ import annotations

import asyncio

import pytest

from fast_litellm import _bench_redis
from fast_litellm._redis_server import RedisServer

CHECKS_PER_TASK = 50


@pytest.fixture(scope="module")
def server():
    reason = _bench_redis.skip_reason()
    if reason:
        pytest.skip(reason)
    with RedisServer() as running:
        yield running


@pytest.fixture(scope="module")
def loop():
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.mark.parametrize(
    "contender", ["native acheck", "SimpleRateLimiter.acheck", "redis-py asyncio"]
)
def test_concurrent_checks(benchmark, server, loop, contender):
    benchmark.group = f"Redis rate limit: {_bench_redis.CONCURRENCY} concurrent asyncio tasks"
    factories = _bench_redis.contenders(server.url)
    if contender not in factories:
        pytest.skip(f"{contender} unavailable")
    check = loop.run_until_complete(factories[contender]())
    loop.run_until_complete(_bench_redis._round(check, 2))  # connections and script cache warm

    def one_round():
        return loop.run_until_complete(_bench_redis._round(check, CHECKS_PER_TASK))

    stats = benchmark.pedantic(one_round, rounds=5, iterations=1)
    assert stats["rate"] > 0


def test_run_cases_quick():
    """The measuring code itself runs (and skips cleanly without redis-server)."""
    results = _bench_redis.run_cases(iterations=1, quick=True)
    if _bench_redis.skip_reason():
        assert results == []
        return
    names = [r.contender for r in results]
    assert "redis-py asyncio" in names or "native acheck" in names
    for result in results:
        assert result.checks_per_second > 0 and result.p99_seconds >= result.p50_seconds
        assert _bench_redis.format_result(result)
