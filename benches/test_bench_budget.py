"""pytest-benchmark comparisons for budgets: ``record``/``check`` per call, native vs fallback vs a
minimal dict vs LiteLLM's ``BudgetManager`` in process, and native vs redis-py vs a hand-written
redis-py ``INCRBYFLOAT`` on a throwaway Redis (cases from ``benches/budget_cases.py``, which
``scripts/run_benchmarks.py`` also runs).

    pytest benches/test_bench_budget.py --benchmark-only
"""

from __future__ import annotations

import pytest

from tests.redis_server import RedisServer, require_redis_server

from . import budget_cases as cases


@pytest.fixture(scope="module")
def server():
    require_redis_server()  # a skip, or a failure under CI
    with RedisServer() as running:
        yield running


@pytest.mark.parametrize("operation", ["record", "check"])
@pytest.mark.parametrize("contender", cases.CONTENDERS)
def test_in_process(benchmark, contender, operation):
    benchmark.group = f"budget {operation}(), in process"
    reason = cases.skip_reason(contender)
    if reason is not None:
        pytest.skip(reason)
    benchmark(cases.make_calls(contender)[operation])


@pytest.mark.parametrize("operation", ["record", "check"])
@pytest.mark.parametrize("contender", cases.REDIS_CONTENDERS)
def test_on_redis(benchmark, server, contender, operation):
    benchmark.group = f"budget {operation}(), on Redis (one call at a time)"
    reason = cases.skip_reason(contender, redis=True)
    if reason is not None:
        pytest.skip(reason)
    benchmark(cases.make_calls(contender, server.url)[operation])
