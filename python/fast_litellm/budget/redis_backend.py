"""The Redis backend of ``BudgetTracker``: many processes, one spent total per key.

``BudgetTracker(..., backend="redis://...")`` builds a :class:`BudgetRedisBackend`. Each call is
one atomic Lua script (``_lua/budget.lua``), the same on both paths, so native and Python
instances share spend:

- native: ``fast_litellm._native.RedisBudget`` (the rate limiter's Rust connection: one
  auto-reconnecting multiplexed connection on the process-wide runtime, sync calls without the
  GIL, async calls as asyncio awaitables);
- Python: redis-py (``fast_litellm._fallback.redis_client.RedisPyBudgetClient``, the rate
  limiter's client running another script).

The connection handling, the timeout, the circuit (after a failure Redis is left alone for
``retry_interval`` seconds, then one call probes it), the counters and the health report are the
rate limiter's (``ratelimit.redis_backend.RedisBackend``, which this class extends). The failure
policy (``on_backend_error``) reads, for budgets:

- ``"allow"`` (default, fail open): ``check`` allows; a ``record`` that cannot reach Redis is
  lost, and counted (``records_lost``, ``nanodollars_lost`` in ``stats()``);
- ``"deny"`` (fail closed): ``check`` refuses, with ``retry_after`` the time until Redis is
  tried again; a ``record`` is lost and counted, as above;
- ``"local"``: an in-process tracker with the same budgets records and decides until Redis
  answers again (what it recorded meanwhile is not copied to Redis afterwards).

``status`` and ``reset`` are not decisions: without Redis they raise ``RateLimitBackendError``
(``status`` answers from the in-process tracker under ``"local"``).

Without an injected clock the server's clock (``TIME``) decides the windows, so the clocks of
the instances do not matter; with one (tests), the caller's time is sent along.
"""

from __future__ import annotations

import math
import time
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from .. import _flags
from .._fallback import budget as _fallback
from ..errors import RateLimitBackendError
from ..ratelimit import redis_backend as _ratelimit_backend
from ..ratelimit.redis_backend import _SKIP
from ..ratelimit.redis_protocol import BackendOptions

__all__ = ["BudgetRedisBackend", "backends_health"]

# (daily, monthly, period_ns, period_limit), nanodollars and ns, as the trackers take them.
Spec = Tuple[Optional[int], Optional[int], Optional[int], Optional[int]]


class _NativeClient(_ratelimit_backend.NativeClient):
    """``fast_litellm._native.RedisBudget``."""

    def __init__(self, backend: Any, spec: Spec, prefix: str, timeout: float) -> None:
        assert _flags.native is not None
        super().__init__(
            _flags.native.RedisBudget(backend, *spec, key_prefix=prefix, timeout=timeout)
        )

    def record(self, key: str, cost: Any, amount: int, now_ns: Optional[int]) -> None:
        self.inner.record(key, cost, now_ns)

    def arecord(self, key: str, cost: Any, amount: int, now_ns: Optional[int]) -> Any:
        return self.inner.arecord(key, cost, now_ns)

    def check(self, key: str, estimate: Any, nanos: int, now_ns: Optional[int]) -> Any:
        return self.inner.check(key, estimate, now_ns)

    def acheck(self, key: str, estimate: Any, nanos: int, now_ns: Optional[int]) -> Any:
        return self.inner.acheck(key, estimate, now_ns)

    def status(self, key: str, now_ns: Optional[int]) -> Any:
        return self.inner.status(key, now_ns)

    def astatus(self, key: str, now_ns: Optional[int]) -> Any:
        return self.inner.astatus(key, now_ns)


def _rows(answer: Tuple[int, List[Any]]) -> Tuple[int, List[tuple]]:
    now, views = answer
    return now, [(w[0], w[1], spent, requests, reset) for w, spent, requests, reset in views]


class _PythonClient:
    """The budget script through redis-py; decisions by the fallback's rule."""

    path = "python"

    def __init__(self, backend: Any, spec: Spec, prefix: str, timeout: float) -> None:
        from .._fallback.redis_client import RedisPyBudgetClient  # imports redis-py

        self.client = RedisPyBudgetClient(backend, _fallback.windows(*spec), prefix, timeout)
        self.kind = self.client.kind
        self.description = self.client.description

    def record(self, key: str, cost: Any, amount: int, now_ns: Optional[int]) -> None:
        self.client.record(key, amount, now_ns)

    async def arecord(self, key: str, cost: Any, amount: int, now_ns: Optional[int]) -> None:
        await self.client.arecord(key, amount, now_ns)

    def check(self, key: str, estimate: Any, nanos: int, now_ns: Optional[int]) -> Any:
        now, views = self.client.read(key, now_ns)
        return _fallback.verdict(views, now, nanos)

    async def acheck(self, key: str, estimate: Any, nanos: int, now_ns: Optional[int]) -> Any:
        now, views = await self.client.aread(key, now_ns)
        return _fallback.verdict(views, now, nanos)

    def status(self, key: str, now_ns: Optional[int]) -> Any:
        return _rows(self.client.read(key, now_ns))

    async def astatus(self, key: str, now_ns: Optional[int]) -> Any:
        return _rows(await self.client.aread(key, now_ns))

    def reset(self, key: str) -> bool:
        return self.client.reset(key)

    async def areset(self, key: str) -> bool:
        return await self.client.areset(key)

    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        self.client.close()

    async def aclose(self) -> None:
        await self.client.aclose()


_live: "weakref.WeakSet[BudgetRedisBackend]" = weakref.WeakSet()


def backends_health() -> List[Dict[str, Any]]:
    """``health()`` of every live budget backend (for ``fast_litellm.health_check()``)."""
    return [backend.health() for backend in list(_live)]


_NO_ANSWER = object()  # Redis gave no answer: the policy gives it


def _decision(verdict: Any) -> Optional[bool]:
    return bool(verdict.allowed)


def _no_decision(answer: Any) -> Optional[bool]:
    return None


class BudgetRedisBackend(_ratelimit_backend.RedisBackend):
    """The shared spend of one ``BudgetTracker`` in Redis (see the module docstring).

    ``path`` forces ``"native"`` or ``"python"``; by default the ``BUDGETS`` feature flag decides.
    """

    _feature = "BUDGETS"

    def __init__(
        self,
        backend: Union[str, Sequence[str]],
        spec: Spec,
        *,
        options: BackendOptions,
        local: Any = None,
        clock: Optional[Callable[[], int]] = None,
        path: Optional[str] = None,
    ) -> None:
        path = self._configure(options, local, path, "tracker")
        self.windows = _fallback.windows(*spec)
        self._clock = clock
        make = _NativeClient if path == "native" else _PythonClient
        self._client: Any = make(backend, spec, self.key_prefix, self.timeout)
        self._start_circuit(
            "recorded",
            "records_lost",
            "nanodollars_lost",
            "policy_allowed",
            "policy_denied",
            "local_records",
            "local_checks",
        )
        # Reported with the budgets, not with the rate limiters.
        _ratelimit_backend._live.discard(self)
        _live.add(self)

    def _now(self) -> Optional[int]:
        return None if self._clock is None else self._clock()

    # ---- the policy -----------------------------------------------------------------------

    def _policy_check(self, key: str, estimate: Any, nanos: int) -> Any:
        if self.on_backend_error == "local":
            answer = self.local.check(key, estimate)
            with self._lock:
                self._counts["local_checks"] += 1
            return answer
        allowed = self.on_backend_error == "allow"
        with self._lock:
            self._counts["policy_allowed" if allowed else "policy_denied"] += 1
            wait = max(self._retry_at - time.monotonic(), 0.0)
            if self._probing or wait == 0.0:
                wait = max(wait, self.timeout)
        window = self.windows[0]
        never = not allowed and any(nanos > w[1] for w in self.windows)
        answer = _fallback.BudgetCheck._make(
            allowed,
            (window, 0, 0, None),
            nanos,
            False,
            0.0 if allowed else (math.inf if never else wait),
        )
        if not allowed:
            answer.reason = (
                f"the budget backend ({self.description}) is unavailable and "
                "on_backend_error='deny'"
            )
        return answer

    def _policy_record(self, key: str, cost: Any, amount: int) -> None:
        if self.on_backend_error == "local":
            self.local.record(key, cost)
            with self._lock:
                self._counts["local_records"] += 1
            return
        with self._lock:
            self._counts["records_lost"] += 1
            self._counts["nanodollars_lost"] += amount

    # ---- the tracker API ------------------------------------------------------------------
    #
    # Each call asks Redis through the circuit (``_ask``/``_aask``): ``_NO_ANSWER`` when Redis is
    # left alone or failed, and the policy answers instead.

    def _ask(self, call: Callable[..., Any], *args: Any, allowed: Any) -> Any:
        attempt = self._attempt()
        if attempt == _SKIP:
            return _NO_ANSWER
        started = time.perf_counter()
        try:
            outcome = call(*args, self._now())
        except BaseException as exc:
            outcome = exc
        return _NO_ANSWER if self._settle(attempt, started, outcome, allowed) else outcome

    async def _aask(self, call: Callable[..., Any], *args: Any, allowed: Any) -> Any:
        attempt = self._attempt()
        if attempt == _SKIP:
            return _NO_ANSWER
        started = time.perf_counter()
        try:
            outcome = await call(*args, self._now())
        except BaseException as exc:  # cancellation included: a probe must not stay taken
            outcome = exc
        return _NO_ANSWER if self._settle(attempt, started, outcome, allowed) else outcome

    def _recorded(self) -> None:
        with self._lock:
            self._counts["recorded"] += 1

    def record(self, key: str, cost: Any, amount: int) -> None:
        if self._ask(self._client.record, key, cost, amount, allowed=_no_decision) is _NO_ANSWER:
            self._policy_record(key, cost, amount)
        else:
            self._recorded()

    async def arecord(self, key: str, cost: Any, amount: int) -> None:
        answer = await self._aask(self._client.arecord, key, cost, amount, allowed=_no_decision)
        if answer is _NO_ANSWER:
            self._policy_record(key, cost, amount)
        else:
            self._recorded()

    def check(self, key: str, estimate: Any, nanos: int) -> Any:  # type: ignore[override]
        answer = self._ask(self._client.check, key, estimate, nanos, allowed=_decision)
        return self._policy_check(key, estimate, nanos) if answer is _NO_ANSWER else answer

    async def acheck(self, key: str, estimate: Any, nanos: int) -> Any:  # type: ignore[override]
        answer = await self._aask(self._client.acheck, key, estimate, nanos, allowed=_decision)
        return self._policy_check(key, estimate, nanos) if answer is _NO_ANSWER else answer

    def status(self, key: str) -> Any:
        """``(now_ns, rows)`` from Redis; under ``"local"`` from the in-process tracker while
        Redis fails, otherwise ``RateLimitBackendError``."""
        try:
            return self._client.status(key, self._now())
        except RateLimitBackendError:
            if self.on_backend_error != "local":
                raise
            return self.local.status(key)

    async def astatus(self, key: str) -> Any:
        try:
            return await self._client.astatus(key, self._now())
        except RateLimitBackendError:
            if self.on_backend_error != "local":
                raise
            return self.local.status(key)

    def reset(self, key: str) -> bool:
        if self.local is not None:
            self.local.reset(key)
        return self._client.reset(key)

    async def areset(self, key: str) -> bool:
        if self.local is not None:
            self.local.reset(key)
        return await self._client.areset(key)

    # ---- observability --------------------------------------------------------------------

    def health(self) -> Dict[str, Any]:
        report = super().health()
        report["feature"] = "budgets"
        return report

    def stats(self) -> Dict[str, Any]:
        counts = self._counts_now()
        return self._stats(
            counts,
            {
                "recorded": counts["recorded"],
                "records_lost": counts["records_lost"],
                "nanodollars_lost": counts["nanodollars_lost"],
                "allowed": counts["allowed"] + counts["policy_allowed"],
                "denied": counts["denied"] + counts["policy_denied"],
                "local_records": counts["local_records"],
            },
        )

    def close(self) -> None:
        _live.discard(self)
        self._client.close()

    def __repr__(self) -> str:
        return f"<BudgetRedisBackend {self.description} path={self.path} state={self.state}>"
