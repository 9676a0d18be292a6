"""pytest-benchmark comparisons for the rate limiter: native vs fallback vs a minimal dict token
bucket vs the ``limits`` package, on the cases of ``fast_litellm._bench_ratelimit`` (which
``scripts/run_benchmarks.py`` also runs).

    pytest benches/test_bench_ratelimit.py --benchmark-only
"""

from __future__ import annotations

import functools

import pytest

from fast_litellm import _bench_ratelimit

DISTINCT_KEYS = 100_000


def _allow(contender: str, rpm: int = _bench_ratelimit.RPM):
    allow = _bench_ratelimit.make_allow(contender, rpm)
    if allow is None:
        pytest.skip(f"{contender} unavailable")
    return allow


@pytest.mark.parametrize("contender", _bench_ratelimit.CONTENDERS)
def test_allow_one_hot_key(benchmark, contender):
    benchmark.group = "rate limit allow(), one hot key"
    allow = _allow(contender)
    benchmark(functools.partial(allow, "hot-key-00000001"))


@pytest.mark.parametrize("contender", _bench_ratelimit.CONTENDERS)
def test_allow_distinct_keys(benchmark, contender):
    benchmark.group = f"rate limit allow(), {DISTINCT_KEYS:,} distinct keys (one round)"
    keys = _bench_ratelimit.distinct_keys(DISTINCT_KEYS)
    _allow(contender, _bench_ratelimit.RPM_DISTINCT)

    def setup():
        return (_bench_ratelimit.make_allow(contender, _bench_ratelimit.RPM_DISTINCT),), {}

    def one_round(allow):
        for key in keys:
            allow(key)

    benchmark.pedantic(one_round, setup=setup, rounds=3)
