"""Routing benchmark cases, shared by ``scripts/run_benchmarks.py`` and
``benches/test_bench_routing.py``.

Contenders, for one model group of 10, 100 and 1,000 deployments:

- ``native``: ``fast_litellm.Router.pick(model)`` on the native path (the public API: the clock
  read, the pick, the dict returned);
- ``fallback``: the same API on the pure-Python path;
- ``litellm``: ``litellm.Router.async_get_available_deployment(model, messages, request_kwargs={})``
  with the same ``routing_strategy`` (in-memory state, no Redis), timed in batches inside one
  running event loop.

Strategies: ``simple-shuffle`` (weights), ``latency-based-routing`` and ``usage-based-routing``.
Our routers carry some recorded history (a latency and tokens per deployment); LiteLLM's start
fresh, which can only make its picks cheaper. Recording: ``record_start`` + ``record_success``
(one request's bookkeeping) on each path.

With ``patch()`` (``run_patch_cases``): ``litellm.Router.async_get_available_deployment`` with
``latency-based-routing`` and ``cost-based-routing``, ``unpatched`` and after
``fast_litellm.patch(features=["routing"])``, the router cache holding a latency history for
every deployment; the two pick the same deployment from the same ``random`` seed, checked
before timing.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from typing import Any, Callable, Dict, List, Optional

from fast_litellm import _flags

from .token_cases import Result, median_seconds, missing, native_missing

STRATEGIES = ("simple-shuffle", "latency-based-routing", "usage-based-routing")
SIZES = (10, 100, 1000)
CONTENDERS = ("native", "fallback", "litellm")
MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Say hello."}]


def model_list(size: int) -> List[Dict[str, Any]]:
    return [
        {
            "model_name": MODEL,
            "litellm_params": {
                "model": f"openai/{MODEL}",
                "api_key": "sk-bench",
                "api_base": f"http://127.0.0.1:9/v{i}",
                "rpm": 10_000 + i,
                "tpm": 10_000_000,
                "weight": 1 + i % 3,
            },
            "model_info": {"id": f"deployment-{i}"},
        }
        for i in range(size)
    ]


def skip_reason(contender: str) -> Optional[str]:
    if contender == "native":
        return native_missing()
    if contender == "litellm":
        return missing("litellm", "litellm")
    return None


def our_router(strategy: str, size: int, native: bool) -> Any:
    from fast_litellm import Router, configure

    configure("routing", rust=native)
    try:
        router = Router(model_list(size), strategy=strategy, seed=1)
    finally:
        configure(reload_environment=True)
    for i, deployment in enumerate(router.model_list):
        router.record_start(deployment)
        router.record_success(deployment, latency=0.2 + (i % 7) / 100, tokens=100 + i)
    return router


def make_pick(contender: str, strategy: str, size: int) -> Callable[[], Any]:
    if contender in ("native", "fallback"):
        router = our_router(strategy, size, contender == "native")
        assert router.implementation == contender
        pick = router.pick
        return lambda: pick(MODEL)
    raise ValueError(contender)


def latency_history(size: int) -> Dict[str, Any]:
    """What LiteLLM's latency handler has recorded after some traffic: ten latencies each."""
    return {
        f"deployment-{i}": {"latency_normalized": [0.2 + (i * 7 + j) % 11 / 100 for j in range(10)]}
        for i in range(size)
    }


def litellm_router(strategy: str, size: int, history: bool = False) -> Any:
    import litellm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        router = litellm.Router(model_list=model_list(size), routing_strategy=strategy)
        if history:
            router.cache.set_cache(f"{MODEL}_map", latency_history(size))
    return router


def litellm_seconds(
    strategy: str, size: int, iterations: int, batch: int = 20, history: bool = False
) -> float:
    """Median seconds per LiteLLM pick, over ``iterations`` batches run in one event loop."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        router = litellm_router(strategy, size, history)

        async def run() -> List[float]:
            pick = router.async_get_available_deployment
            for _ in range(3):  # warm-up
                await pick(model=MODEL, messages=MESSAGES, request_kwargs={})
            times = []
            for _ in range(iterations):
                started = time.perf_counter()
                for _ in range(batch):
                    await pick(model=MODEL, messages=MESSAGES, request_kwargs={})
                times.append((time.perf_counter() - started) / batch)
            return times

        times = asyncio.run(run())
    times.sort()
    return times[len(times) // 2]


def make_record(contender: str) -> Callable[[], Any]:
    router = our_router("least-busy", 10, contender == "native")
    deployment = router.model_list[3]
    start, success = router.record_start, router.record_success

    def record() -> None:
        start(deployment)
        success(deployment, latency=0.25, tokens=120)

    return record


def run_cases(iterations: int, *, quick: bool = False) -> List[Result]:
    results = []
    sizes = SIZES[:2] if quick else SIZES
    for strategy in STRATEGIES:
        for size in sizes:
            result = Result("routing", f"pick(), {strategy}, {size:,} deployments", "-")
            for contender in CONTENDERS:
                reason = skip_reason(contender)
                if reason is not None:
                    result.skipped[contender] = reason
                elif contender == "litellm":
                    result.seconds[contender] = litellm_seconds(
                        strategy, size, max(5, iterations // (1 if size < 1000 else 10))
                    )
                else:
                    result.seconds[contender] = median_seconds(
                        make_pick(contender, strategy, size), iterations
                    )
            results.append(result)
    record = Result("routing", "record_start + record_success", "-")
    for contender in ("native", "fallback"):
        reason = skip_reason(contender)
        if reason is not None:
            record.skipped[contender] = reason
        else:
            record.seconds[contender] = median_seconds(make_record(contender), iterations)
    results.append(record)
    if _flags.native is not None:
        from .token_cases import check_no_native_errors

        check_no_native_errors("routing")
    return results


PATCH_STRATEGIES = ("latency-based-routing", "cost-based-routing")


def same_picks(strategy: str, size: int) -> None:
    """The patched and the unpatched router pick the same deployments from the same seeds."""
    import random

    import fast_litellm

    picks = []
    for patched in (False, True):
        if patched:
            fast_litellm.patch(features=["routing"])
        else:
            fast_litellm.unpatch()
        router = litellm_router(strategy, size, history=True)

        async def run(router: Any = router) -> List[Any]:
            chosen = []
            for seed in range(5):
                random.seed(seed)
                picked = await router.async_get_available_deployment(
                    model=MODEL, messages=MESSAGES, request_kwargs={}
                )
                chosen.append(picked["model_info"]["id"])
            return chosen

        picks.append(asyncio.run(run()))
    fast_litellm.unpatch()
    if picks[0] != picks[1]:
        raise AssertionError(f"patched picks {picks[1]} differ from LiteLLM's {picks[0]}")


def run_patch_cases(iterations: int, *, quick: bool = False) -> List[Result]:
    """LiteLLM's latency- and cost-based picks, ``unpatched`` and ``patched`` (see the module
    docstring)."""
    import fast_litellm

    results = []
    reason = skip_reason("litellm")
    for strategy in PATCH_STRATEGIES:
        for size in SIZES[:2] if quick else SIZES:
            result = Result("routing", f"pick(), {strategy}, {size:,} deployments", "-")
            if reason is not None:
                result.skipped["unpatched"] = result.skipped["patched"] = reason
                results.append(result)
                continue
            same_picks(strategy, size)
            runs = max(5, iterations // (1 if size < 1000 else 10))
            try:
                for state in ("unpatched", "patched"):
                    if state == "patched":
                        fast_litellm.patch(features=["routing"])
                    else:
                        fast_litellm.unpatch()
                    result.seconds[state] = litellm_seconds(strategy, size, runs, history=True)
            finally:
                fast_litellm.unpatch()
            results.append(result)
    return results
