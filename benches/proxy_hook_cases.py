"""The proxy's pre-call rate-limit check: ``fast_litellm.proxy_hooks.FastRateLimiter`` against
LiteLLM's ``parallel_request_limiter_v3``, both in process, on one key with rpm and tpm limits
of its own, of its team and of its model.

    python -m benches.proxy_hook_cases [--iterations N]

v3 is built as the proxy builds it (an ``InternalUsageCache`` over an in-memory ``DualCache``),
except that its router-backed resolvers (model aliases, counted models, PTU shares, tag limits,
the fail-closed setting) answer "none" without importing ``litellm.proxy.proxy_server``: that is
what a proxy with no aliases, tags or PTU shares answers, and a router lookup would only make v3
slower. Limits are far above what the run sends, so every call is admitted by both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any, Dict, Mapping, Optional

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODEL = "gpt-4o"
LIMIT = 10**9
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
]
CONTENDERS = ("fast_litellm", "v3")


def key_with_limits() -> Any:
    """One ``UserAPIKeyAuth`` with rpm/tpm limits of its own, of its team and of its model."""
    from litellm.proxy._types import UserAPIKeyAuth

    return UserAPIKeyAuth(
        api_key="sk-bench-key",
        user_id="bench-user",
        team_id="bench-team",
        rpm_limit=LIMIT,
        tpm_limit=LIMIT,
        team_rpm_limit=LIMIT,
        team_tpm_limit=LIMIT,
        metadata={"model_rpm_limit": {MODEL: LIMIT}, "model_tpm_limit": {MODEL: LIMIT}},
    )


def v3_limiter(time_provider: Any = None) -> Any:
    """LiteLLM's v3 hook, in process, with resolvers that need no running proxy."""
    from litellm.caching.dual_cache import DualCache
    from litellm.proxy.hooks.parallel_request_limiter_v3 import (
        _PROXY_MaxParallelRequestsHandler_v3,
    )
    from litellm.proxy.utils import InternalUsageCache

    async def no_tag_limits(tags: Any) -> Mapping[str, Any]:
        return {}

    return _PROXY_MaxParallelRequestsHandler_v3(
        InternalUsageCache(dual_cache=DualCache()),
        time_provider=time_provider,
        tag_rate_limit_resolver=no_tag_limits,
        model_group_resolver=lambda model: None,
        counted_models_resolver=lambda model, team_id: (model,),
        media_model_resolver=lambda model, team_id: (model,),
        ptu_team_ceiling_resolver=lambda team_id, model_group: None,
        fail_closed_resolver=lambda: False,
    )


def make_hook(contender: str) -> Any:
    if contender == "fast_litellm":
        from fast_litellm.proxy_hooks import FastRateLimiter

        return FastRateLimiter()
    if contender == "v3":
        return v3_limiter()
    raise ValueError(f"unknown contender {contender!r}")


async def run_calls(hook: Any, auth: Any, cache: Any, count: int) -> None:
    """``count`` admitted pre-call checks, each on a fresh request body (v3 may write to it)."""
    for _ in range(count):
        data = {"model": MODEL, "messages": MESSAGES}
        await hook.async_pre_call_hook(
            user_api_key_dict=auth, cache=cache, data=data, call_type="completion"
        )


async def _per_call_ns(hook: Any, auth: Any, cache: Any, iterations: int) -> list:
    await run_calls(hook, auth, cache, max(10, iterations // 10))  # warm-up: imports, first keys
    timings = []
    for _ in range(iterations):
        data = {"model": MODEL, "messages": MESSAGES}
        started = time.perf_counter_ns()
        await hook.async_pre_call_hook(
            user_api_key_dict=auth, cache=cache, data=data, call_type="completion"
        )
        timings.append(time.perf_counter_ns() - started)
    return timings


def measure(iterations: int = 2000) -> Dict[str, Optional[float]]:
    """Median microseconds per ``async_pre_call_hook`` call for each contender, and
    ``speedup`` (v3's median over ours)."""
    from litellm.caching.dual_cache import DualCache

    auth = key_with_limits()
    medians: Dict[str, Optional[float]] = {}
    for contender in CONTENDERS:
        hook = make_hook(contender)
        timings = asyncio.run(_per_call_ns(hook, auth, DualCache(), iterations))
        medians[contender] = statistics.median(timings) / 1000
    ours, theirs = medians["fast_litellm"], medians["v3"]
    medians["speedup"] = theirs / ours if ours and theirs else None
    return medians


def available() -> bool:
    """Whether litellm and the proxy hook's own needs (fastapi) are installed."""
    import importlib.util

    return all(importlib.util.find_spec(name) for name in ("litellm", "fastapi", "orjson"))


def run_cases(iterations: int) -> list:
    """One ``Result`` for ``scripts/run_benchmarks.py``: ``native`` is our hook, ``v3`` LiteLLM's
    (seconds per pre-call check, medians of one run)."""
    from .token_cases import Result

    medians = measure(max(iterations * 10, 20))
    result = Result("proxy hook", "pre-call check, key + team + model limits", MODEL)
    result.seconds["native"] = medians["fast_litellm"] / 1e6  # type: ignore[operator]
    result.seconds["v3"] = medians["v3"] / 1e6  # type: ignore[operator]
    return [result]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()
    result = measure(args.iterations)
    for contender in CONTENDERS:
        print(f"{contender:>14}: {result[contender]:9.2f} µs per pre-call check (median)")
    print(f"{'speedup':>14}: {result['speedup']:9.1f}x")


if __name__ == "__main__":
    main()
