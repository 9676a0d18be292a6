"""pytest-benchmark: the Redis rate-limit backend under 64 concurrent asyncio tasks, native acheck
vs redis-py's asyncio client running the same script (cases from ``benches/redis_cases.py``,
which also reports checks/s and p50/p99 latency: ``python -m benches.redis_cases``).

    pytest benches/test_bench_ratelimit_redis.py --benchmark-only

One benchmark round is 64 tasks x 50 checks against a throwaway redis-server on loopback.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.redis_server import RedisServer, require_redis_server

from . import redis_cases as cases

CHECKS_PER_TASK = 50


@pytest.fixture(scope="module")
def server():
    require_redis_server()  # a skip, or a failure under CI
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
    benchmark.group = f"Redis rate limit: {cases.CONCURRENCY} concurrent asyncio tasks"
    skipped = cases.skipped_contenders()
    if contender in skipped:
        pytest.skip(skipped[contender])
    factories = cases.contenders(server.url)
    check = loop.run_until_complete(factories[contender]())
    loop.run_until_complete(cases._round(check, 2))  # connections and script cache warm

    def one_round():
        return loop.run_until_complete(cases._round(check, CHECKS_PER_TASK))

    stats = benchmark.pedantic(one_round, rounds=5, iterations=1)
    assert stats["rate"] > 0


def test_run_cases_quick():
    """The measuring code itself runs every contender that is installed."""
    require_redis_server()
    results = cases.run_cases(iterations=1, quick=True)
    names = [r.contender for r in results]
    expected = ["native acheck", "SimpleRateLimiter.acheck", "redis-py asyncio"]
    assert names == [n for n in expected if n not in cases.skipped_contenders()]
    for result in results:
        assert result.checks_per_second > 0 and result.p99_seconds >= result.p50_seconds
        assert cases.format_result(result)
