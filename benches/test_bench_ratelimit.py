"""pytest-benchmark comparisons for the rate limiter: native vs fallback vs a minimal dict token
bucket vs the ``limits`` package, on the cases of ``benches/ratelimit_cases.py`` (which
``scripts/run_benchmarks.py`` also runs).

    pytest benches/testcases.py --benchmark-only
"""

from __future__ import annotations

import functools

import pytest

from . import ratelimit_cases as cases

DISTINCT_KEYS = 100_000


def _allow(contender: str, rpm: int = cases.RPM):
    reason = cases.skip_reason(contender)
    if reason is not None:
        pytest.skip(reason)
    allow = cases.make_allow(contender, rpm)
    assert allow is not None
    return allow


@pytest.mark.parametrize("contender", cases.CONTENDERS)
def test_allow_one_hot_key(benchmark, contender):
    benchmark.group = "rate limit allow(), one hot key"
    allow = _allow(contender)
    benchmark(functools.partial(allow, "hot-key-00000001"))


@pytest.mark.parametrize("contender", cases.CONTENDERS)
def test_allow_distinct_keys(benchmark, contender):
    benchmark.group = f"rate limit allow(), {DISTINCT_KEYS:,} distinct keys (one round)"
    keys = cases.distinct_keys(DISTINCT_KEYS)
    _allow(contender, cases.RPM_DISTINCT)

    def setup():
        return (cases.make_allow(contender, cases.RPM_DISTINCT),), {}

    def one_round(allow):
        for key in keys:
            allow(key)

    benchmark.pedantic(one_round, setup=setup, rounds=3)
