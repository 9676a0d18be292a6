"""Budget benchmark cases, shared by ``scripts/run_benchmarks.py`` and
``benches/test_bench_budget.py``.

One call per timed unit, on one hot key of a tracker with a daily and a monthly budget:

- ``record``: ``record(key, cost)`` (adds a request's cost);
- ``check``: ``check(key, estimated_cost)`` (would the next request fit?).

Contenders, in process:

- ``native``: ``BudgetTracker`` on the native path (the public API);
- ``fallback``: the same API on the pure-Python path;
- ``dict``: the minimal pure-Python total a user would write (a dict of float dollars behind a
  lock; no periods, and floats do not add exactly);
- ``litellm``: LiteLLM's own ``litellm.BudgetManager`` (in-memory, ``client_type="local"``):
  ``update_cost(user, completion_obj=response)``, which prices the response itself
  (``completion_cost``) and starts a thread that saves every user to ``user_cost.json``; and for
  ``check`` the pattern of its documentation,
  ``get_current_cost(user) + estimate <= get_total_budget(user)``. It keeps one total per user
  (no day or month) in this process only.

On Redis (a throwaway ``redis-server`` on loopback, one synchronous call at a time, so each
figure is a round trip plus the work on both ends):

- ``native``: ``BudgetTracker(backend="redis://...")`` on the native path (the Rust client);
- ``fallback``: the same through redis-py;
- ``redis-py INCRBYFLOAT``: what a user would write with redis-py: ``INCRBYFLOAT`` and
  ``EXPIRE`` in one pipeline to record, ``GET`` to check (one float total, no periods).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from typing import Any, Callable, Dict, List, Optional

from fast_litellm import _flags

from .token_cases import Result, median_seconds, missing, native_missing

__all__ = ["CONTENDERS", "REDIS_CONTENDERS", "make_calls", "run_cases", "skip_reason"]

CONTENDERS = ("native", "fallback", "dict", "litellm")
REDIS_CONTENDERS = ("native", "fallback", "redis-py INCRBYFLOAT")
KEY = "team-00000001"
COST = 0.000_123
ESTIMATE = 0.001
# Budgets large enough that nothing is refused during a run: the cost measured is the call.
DAILY = 1_000_000.0
MONTHLY = 9_000_000.0


def skip_reason(contender: str, redis: bool = False) -> Optional[str]:
    """Why ``contender`` cannot run here, or None."""
    if contender == "native":
        return native_missing()
    if contender == "litellm":
        return missing("litellm", "litellm")
    if redis:
        from tests.redis_server import redis_server_available

        if redis_server_available() is None:
            return "redis-server is not installed"
        if contender != "native":
            return missing("redis", "redis")
    return None


class DictBudget:
    """The minimal pure-Python budget: float dollars per key behind a lock."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.spent: Dict[str, float] = {}
        self.lock = threading.Lock()

    def record(self, key: str, cost: float) -> None:
        with self.lock:
            self.spent[key] = self.spent.get(key, 0.0) + cost

    def check(self, key: str, estimate: float) -> bool:
        return self.spent.get(key, 0.0) + estimate <= self.limit


def _litellm_calls() -> Dict[str, Callable[[], Any]]:
    import litellm

    manager = litellm.BudgetManager(project_name="bench")
    # BudgetManager saves its users to ./user_cost.json from a new thread on every update. The
    # same work (the thread, the JSON dump of every user) goes to a temporary file instead, so
    # the benchmark leaves the working directory alone.
    path = os.path.join(tempfile.mkdtemp(prefix="fast-litellm-budget-bench-"), "user_cost.json")

    def save_data() -> Dict[str, str]:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(manager.user_dict, handle, indent=4)
        return {"status": "success"}

    manager.save_data = save_data  # type: ignore[method-assign]
    manager.create_budget(total_budget=DAILY, user=KEY)
    response = litellm.ModelResponse(
        model="gpt-4o-mini",
        choices=[{"message": {"role": "assistant", "content": "hi"}}],
        usage={"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
    )

    def record() -> Any:
        return manager.update_cost(user=KEY, completion_obj=response)

    def check() -> bool:
        return bool(manager.get_current_cost(user=KEY) + ESTIMATE <= manager.get_total_budget(KEY))

    return {"record": record, "check": check}


def make_calls(contender: str, url: Optional[str] = None) -> Dict[str, Callable[[], Any]]:
    """``{"record": ..., "check": ...}``: zero-argument calls on a fresh tracker of
    ``contender``'s kind (on Redis at ``url`` when given)."""
    import functools

    from fast_litellm import BudgetTracker

    if contender == "litellm":
        return _litellm_calls()
    if contender == "dict":
        budget = DictBudget(DAILY)
        return {
            "record": functools.partial(budget.record, KEY, COST),
            "check": functools.partial(budget.check, KEY, ESTIMATE),
        }
    if contender == "redis-py INCRBYFLOAT":
        import redis

        assert url is not None
        client = redis.Redis.from_url(url)
        name = f"bench-budget:{KEY}"

        def record_incr() -> Any:
            pipe = client.pipeline(transaction=False)
            pipe.incrbyfloat(name, COST)
            pipe.expire(name, 86_400)
            return pipe.execute()

        def check_get() -> bool:
            spent = client.get(name)
            return (float(spent) if spent else 0.0) + ESTIMATE <= DAILY

        return {"record": record_incr, "check": check_get}
    _flags.configure("budgets", rust=contender == "native")
    try:
        tracker = BudgetTracker(
            daily=DAILY, monthly=MONTHLY, backend=url, key_prefix="bench", backend_timeout=2.0
        )
    finally:
        _flags.configure(reload_environment=True)
    expected = "redis" if url else contender
    assert tracker.implementation == expected, tracker
    return {
        "record": functools.partial(tracker.record, KEY, COST),
        "check": functools.partial(tracker.check, KEY, ESTIMATE),
    }


def run_cases(iterations: int, quick: bool = False) -> List[Result]:
    """Median seconds per call of each contender, in process and on Redis."""
    results: List[Result] = []
    for operation in ("record", "check"):
        result = Result("budgets", f"{operation}(), in process", "-")
        for contender in CONTENDERS:
            reason = skip_reason(contender)
            if reason is not None:
                result.skipped[contender] = reason
                continue
            call = make_calls(contender)[operation]
            result.seconds[contender] = median_seconds(call, iterations)
        results.append(result)
    from tests.redis_server import RedisServer, redis_server_available

    if redis_server_available() is None:
        return results
    with RedisServer() as server:
        for operation in ("record", "check"):
            result = Result("budgets", f"{operation}(), on Redis", "-")
            for contender in REDIS_CONTENDERS:
                reason = skip_reason(contender, redis=True)
                if reason is not None:
                    result.skipped[contender] = reason
                    continue
                call = make_calls(contender, server.url)[operation]
                batches = max(3, iterations // 10) if not quick else 2
                result.seconds[contender] = median_seconds(call, batches, min_batch_seconds=0.01)
            results.append(result)
    return results


if __name__ == "__main__":  # python -m benches.budget_cases [iterations]
    import sys

    from .token_cases import format_row

    for row in run_cases(int(sys.argv[1]) if len(sys.argv) > 1 else 50):
        print(format_row(row))
