"""pytest-benchmark comparison of the proxy's pre-call rate-limit check: our
``FastRateLimiter`` against LiteLLM's ``parallel_request_limiter_v3``, both in process, on the
key and request of ``proxy_hook_cases``.

    pytest benches/test_bench_proxy_hook.py --benchmark-only
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("litellm")
pytest.importorskip("fastapi")

from . import proxy_hook_cases as bench  # noqa: E402

# Calls per measured round: one event loop turn is timed around many checks, so the loop's own
# start-up does not swamp a check of a few microseconds.
CALLS_PER_ROUND = 100


@pytest.mark.parametrize("contender", bench.CONTENDERS)
def test_pre_call_hook(benchmark, contender):
    if contender == "v3":
        pytest.importorskip("orjson")
    from litellm.caching.dual_cache import DualCache

    benchmark.group = f"proxy pre-call rate-limit check, {CALLS_PER_ROUND} requests"
    hook = bench.make_hook(contender)
    auth = bench.key_with_limits()
    cache = DualCache()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(bench.run_calls(hook, auth, cache, CALLS_PER_ROUND))
        benchmark(
            lambda: loop.run_until_complete(bench.run_calls(hook, auth, cache, CALLS_PER_ROUND))
        )
    finally:
        loop.close()
