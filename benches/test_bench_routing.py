"""pytest-benchmark comparisons for ``Router.pick``: native vs fallback vs LiteLLM's own router
with the same strategy, on the cases of ``benches/routing_cases.py`` (which
``scripts/run_benchmarks.py`` also runs).

    pytest benches/test_bench_routing.py --benchmark-only
"""

from __future__ import annotations

import asyncio
import warnings

import pytest

from . import routing_cases as cases


@pytest.mark.parametrize("size", cases.SIZES)
@pytest.mark.parametrize("strategy", cases.STRATEGIES)
@pytest.mark.parametrize("contender", cases.CONTENDERS)
def test_pick(benchmark, contender, strategy, size):
    benchmark.group = f"Router pick(), {strategy}, {size:,} deployments"
    reason = cases.skip_reason(contender)
    if reason is not None:
        pytest.skip(reason)
    if contender != "litellm":
        benchmark(cases.make_pick(contender, strategy, size))
        return
    import litellm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        router = litellm.Router(model_list=cases.model_list(size), routing_strategy=strategy)
        loop = asyncio.new_event_loop()
        try:

            def pick():
                return loop.run_until_complete(
                    router.async_get_available_deployment(
                        model=cases.MODEL, messages=cases.MESSAGES, request_kwargs={}
                    )
                )

            benchmark(pick)
        finally:
            loop.close()


@pytest.mark.parametrize("contender", ("native", "fallback"))
def test_record_start_and_success(benchmark, contender):
    benchmark.group = "Router record_start + record_success"
    reason = cases.skip_reason(contender)
    if reason is not None:
        pytest.skip(reason)
    benchmark(cases.make_record(contender))
