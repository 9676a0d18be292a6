"""pytest-benchmark comparisons for the response cache (native vs fallback vs LiteLLM's
``InMemoryCache``) and for the cost of monitoring on the hottest native calls, on the cases of
``benches/cache_cases.py`` (which ``scripts/run_benchmarks.py`` also runs).

    pytest benches/test_bench_cache.py --benchmark-only
"""

from __future__ import annotations

import functools

import pytest

from . import cache_cases as cases


def _cache(contender: str):
    reason = cases.skip_reason(contender)
    if reason is not None:
        pytest.skip(reason)
    return cases.make_cache(contender)


@pytest.mark.parametrize("contender", cases.CONTENDERS)
@pytest.mark.parametrize("case", [name for name, _ in cases.cases()])
def test_cache(benchmark, contender, case):
    benchmark.group = f"response cache: {case}"
    call = dict(cases.cases())[case]
    benchmark(call(_cache(contender)))


@pytest.mark.parametrize("contender", cases.CONTENDERS)
def test_key_of_a_request(benchmark, contender):
    benchmark.group = "response cache: key of a chat request"
    if cases.skip_reason(contender) is not None:
        pytest.skip(cases.skip_reason(contender))
    key = cases.make_key(contender)
    benchmark(functools.partial(key, cases.REQUEST))


@pytest.mark.parametrize("setting", cases.OVERHEAD_SETTINGS)
def test_monitoring_overhead_count_tokens(benchmark, setting):
    from fast_litellm import _flags

    if _flags.native is None:
        pytest.skip("native module unavailable")
    import fast_litellm

    benchmark.group = "monitoring overhead: count_tokens, 13 B"
    call = functools.partial(fast_litellm.count_tokens, "Hello, world!")
    cases._with_setting(setting, lambda: benchmark(call) or 0.0)
