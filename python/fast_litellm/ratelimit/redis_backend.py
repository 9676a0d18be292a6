"""The Redis backend of ``SimpleRateLimiter``: many processes, one limit.

``SimpleRateLimiter(..., backend="redis://...")`` builds a :class:`RedisBackend` and delegates its
checks to it. Each check is one atomic Lua script on the server (``_lua/gcra.lua``), the same
script on both paths, so native and Python instances can share one limit:

- native: ``fast_litellm._native.RedisRateLimiter`` (the Rust ``redis`` crate on the process-wide
  tokio runtime, one auto-reconnecting multiplexed connection shared by every thread and event
  loop; sync calls wait without the GIL, async calls are asyncio awaitables);
- Python: redis-py (``fast_litellm._fallback.redis_client``), when the native path is off or
  unavailable (``pip install redis``).

The script takes the time from the server (``TIME``), so instance clocks do not matter. URLs, key
names and the script's arguments and reply are in ``redis_protocol``; this module is the policy.

Failure policy (``on_backend_error``), when Redis is down, slow (no answer within ``timeout``
seconds) or broken:

- ``"allow"`` (default): the call is allowed (fail open);
- ``"deny"``: the call is refused, with ``retry_after`` the time until Redis is tried again;
- ``"local"``: the in-process limiter given as ``local`` decides, until Redis answers again.

An amount above its burst can never be admitted: it is refused with ``retry_after=inf`` under
every policy, as Redis itself would refuse it.

After a failure, Redis is left alone for ``retry_interval`` seconds (the policy decides
meanwhile, at no cost); then one call probes it, and the first success closes the circuit. A
probe that ends any other way (cancelled, or an error that is not Redis's) frees the next probe
after another ``retry_interval``. A busy connection pool (every connection in use for the whole
timeout) is answered by the policy for that call but is not taken for an outage. Every failure
and every policy decision is counted in ``stats()``; ``health()`` gives the state and the last
latency.

A check that timed out, or whose caller was cancelled, may still reach Redis and consume (its
command may already have been sent), on both paths; the policy answers a timed-out one all the
same.
"""

from __future__ import annotations

import math
import time
import weakref
from time import perf_counter_ns
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from .. import _flags, _fork
from ..errors import NativeError, RateLimitBackendError
from .redis_protocol import DEFAULT_KEY_PREFIX, BackendOptions, ScriptLimits

__all__ = ["NativeClient", "RedisBackend", "backends_health"]


def _logger() -> Any:
    import logging

    return logging.getLogger("fast_litellm")


# What _attempt answers: Redis is up (ask it), this call probes a Redis that failed, or the policy
# decides without asking.
_ASK, _PROBE, _SKIP = 0, 1, 2


class NativeClient:
    """What every native Redis client of a backend shares (the rate limiter's
    ``fast_litellm._native.RedisRateLimiter``, the budget tracker's ``RedisBudget``): the
    connection's description, and the calls that are the same on both. ``inner`` is the native
    object (it parses and checks the URL itself)."""

    path = "native"

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.kind = "cluster" if inner.is_cluster else "single"
        self.description = inner.backend

    def reset(self, key: str) -> bool:
        return self.inner.reset(key)  # type: ignore[no-any-return]

    def areset(self, key: str) -> Any:
        return self.inner.areset(key)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        pass


class _NativeClient(NativeClient):
    """``fast_litellm._native.RedisRateLimiter``."""

    def __init__(self, backend: Any, limits: ScriptLimits, prefix: str, timeout: float) -> None:
        assert _flags.native is not None
        super().__init__(
            _flags.native.RedisRateLimiter(
                backend,
                limits.request_interval_ns,
                limits.burst,
                limits.token_interval_ns,
                limits.token_burst,
                key_prefix=prefix,
                timeout=timeout,
            )
        )

    def check(self, key: str, cost: int, tokens: int, consume: bool = True) -> Any:
        if consume:
            return self.inner.check(key, cost, tokens)
        return self.inner.peek(key, cost, tokens)

    def acheck(self, key: str, cost: int, tokens: int, consume: bool = True) -> Any:
        if consume:
            return self.inner.acheck(key, cost, tokens)
        return self.inner.apeek(key, cost, tokens)


def _python_client(backend: Any, limits: ScriptLimits, prefix: str, timeout: float) -> Any:
    from .._fallback.redis_client import RedisPyClient  # imports redis-py: only when used

    return RedisPyClient(backend, limits, prefix, timeout)


_live: "weakref.WeakSet[RedisBackend]" = weakref.WeakSet()


def backends_health() -> List[Dict[str, Any]]:
    """``health()`` of every live Redis backend (for ``fast_litellm.health_check()``)."""
    return [backend.health() for backend in list(_live)]


def _allowed(answer: Any) -> Optional[bool]:
    return bool(answer.allowed)


def _not_counted(answer: Any) -> Optional[bool]:
    return None


class RedisBackend:
    """The shared state of one ``SimpleRateLimiter`` in Redis (see the module docstring).

    ``path`` forces ``"native"`` or ``"python"``; by default the ``RATE_LIMITING`` feature flag
    decides, as for every feature.
    """

    _feature = "RATE_LIMITING"  # whose native faults this backend's count against

    def __init__(
        self,
        backend: Union[str, Sequence[str]],
        limits: Any,
        *,
        key_prefix: Any = None,
        on_backend_error: Any = "allow",
        timeout: Any = None,
        local: Any = None,
        retry_interval: Any = None,
        path: Optional[str] = None,
        options: Optional[BackendOptions] = None,
    ) -> None:
        if options is None:
            options = BackendOptions.build(
                key_prefix=DEFAULT_KEY_PREFIX if key_prefix is None else key_prefix,
                on_backend_error=on_backend_error,
                timeout=timeout,
                retry_interval=retry_interval,
            )
        path = self._configure(options, local, path, "limiter")
        self.limits = ScriptLimits(limits)
        make = _NativeClient if path == "native" else _python_client
        self._client: Any = make(backend, self.limits, self.key_prefix, self.timeout)
        self._start_circuit(
            "policy_allowed", "policy_denied", "local_checks", "local_allowed", "local_denied"
        )

    def _configure(
        self, options: BackendOptions, local: Any, path: Optional[str], local_kind: str
    ) -> str:
        """Checks and keeps the options every Redis backend takes (this one, and the budget
        tracker's); returns the path its client takes. The path is chosen once, when the backend
        is built (by the backend's feature flag unless forced). Both paths share keys, so
        instances on different paths still share one state."""
        if options.on_backend_error == "local" and local is None:
            raise ValueError(
                f'on_backend_error="local" needs an in-process {local_kind} (local=...)'
            )
        if path not in (None, "native", "python"):
            raise ValueError(f"path must be 'native', 'python' or None, got {path!r}")
        self.key_prefix = options.key_prefix
        self.on_backend_error = options.on_backend_error
        self.timeout = options.timeout
        self.retry_interval = options.retry_interval
        self.local = local
        if path is None:
            native = _flags.native is not None and _flags.feature(self._feature).choose()
            return "native" if native else "python"
        if path == "native" and _flags.native is None:
            raise RuntimeError(f"native module unavailable: {_flags.native_import_error}")
        return path

    def _start_circuit(self, *counters: str) -> None:
        """The state every Redis backend shares (this one, and the budget tracker's): the
        circuit, its counters (``counters`` adds the backend's own) and the health report."""
        self.kind: str = self._client.kind
        self.description: str = self._client.description
        self._lock = _fork.Lock()
        self._counts = dict.fromkeys(("allowed", "denied", "backend_errors", "busy", *counters), 0)
        self._down_since: Optional[float] = None
        self._retry_at = 0.0
        self._probing = False
        self._last_latency: Optional[float] = None
        self._last_error: Optional[str] = None
        self._last_success: Optional[float] = None
        _live.add(self)

    @property
    def path(self) -> str:
        """The path this backend's checks take: ``"native"`` or ``"python"``."""
        return self._client.path

    # ---- circuit and policy ------------------------------------------------------------------

    def _attempt(self) -> int:
        """Whether this call goes to Redis: always while it is up; after a failure, one probe per
        ``retry_interval``."""
        if self._down_since is None:
            return _ASK
        with self._lock:
            if self._down_since is None:
                return _ASK
            if self._probing or time.monotonic() < self._retry_at:
                return _SKIP
            self._probing = True
            return _PROBE

    def _succeeded(self, started: float, allowed: Optional[bool]) -> None:
        """Records an answer from Redis (``allowed`` is None for a peek, which is not counted)."""
        now = time.perf_counter()
        with self._lock:
            self._last_latency = now - started
            self._last_success = time.time()
            if allowed is not None:
                self._counts["allowed" if allowed else "denied"] += 1
            down_since, self._down_since = self._down_since, None
            self._probing = False
        if down_since is not None:
            _logger().warning(
                "Redis backend %s answers again after %.1f s",
                self.description,
                time.monotonic() - down_since,
            )

    def _failed(self, exc: RateLimitBackendError) -> None:
        from .._fallback.redis_client import RateLimitBackendBusy

        now = time.monotonic()
        with self._lock:
            self._last_error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, RateLimitBackendBusy):
                # Redis answers; this process has more checks in flight than connections.
                self._counts["busy"] += 1
                return
            self._counts["backend_errors"] += 1
            went_down = self._down_since is None
            if went_down:
                self._down_since = now
            self._retry_at = now + self.retry_interval
            self._probing = False
            error = self._last_error
        if went_down:
            # Once per outage (and once when it ends, above): the policy's answers are counted
            # in stats(), but an operator should not have to poll to learn that limits are not
            # shared any more.
            _logger().warning(
                "Redis backend %s failed (%s): the %r policy answers until it answers again "
                "(tried every %g s)",
                self.description,
                error,
                self.on_backend_error,
                self.retry_interval,
            )

    def _settle(
        self, attempt: int, started: float, outcome: Any, allowed: Callable[[Any], Optional[bool]]
    ) -> bool:
        """Records what the client did, ``outcome`` being its answer or the exception it raised:
        True when Redis failed (the policy answers), False for an answer (``allowed(outcome)``
        is counted: True, False, or None for an answer that is not a decision). Any other
        exception (a cancellation, a native fault) frees a probe and is raised."""
        if isinstance(outcome, RateLimitBackendError):
            self._failed(outcome)
            return True
        if isinstance(outcome, BaseException):
            if isinstance(outcome, NativeError):
                _flags.feature(self._feature).native_failed(outcome)
            self._abandoned(attempt)
            raise outcome
        self._succeeded(started, allowed(outcome))
        return False

    def _abandoned(self, attempt: int) -> None:
        """The call ended without an answer from Redis or a failure of Redis (cancelled, or an
        error of another kind): a probe frees the way for the next one."""
        if attempt == _PROBE:
            with self._lock:
                self._probing = False
                self._retry_at = time.monotonic() + self.retry_interval

    def _without_redis(self, key: str, cost: int, tokens: int, consume: bool) -> Any:
        limits = self.limits
        if (limits.burst is not None and cost > limits.burst) or (
            limits.token_burst is not None and tokens > limits.token_burst
        ):
            # Never admissible, whoever answers: the same answer Redis gives.
            return limits.policy_result(False, math.inf)
        if self.on_backend_error == "local":
            local = self.local
            result = local.check(key, cost, tokens) if consume else local.peek(key, cost, tokens)
            with self._lock:
                self._counts["local_checks"] += 1
                self._counts["local_allowed" if result.allowed else "local_denied"] += 1
            return result
        allowed = self.on_backend_error == "allow"
        with self._lock:
            self._counts["policy_allowed" if allowed else "policy_denied"] += 1
            # Refused until the next probe can run; while one is in flight, at least until it
            # could have timed out.
            wait = max(self._retry_at - time.monotonic(), 0.0)
            if self._probing or wait == 0.0:
                wait = max(wait, self.timeout)
        return limits.policy_result(allowed, 0.0 if allowed else wait)

    # ---- the limiter API ---------------------------------------------------------------------

    def _begin(self, key: Any, cost: Any, tokens: Any, consume: bool) -> Tuple[tuple, Any]:
        """Shared by ``check`` and ``acheck`` before the client is asked: the validated call
        (with whether it probes), or the policy's answer when Redis is left alone."""
        key, cost, tokens = self.limits.request(key, cost, tokens)
        attempt = self._attempt()
        if attempt == _SKIP:
            return (), self._without_redis(key, cost, tokens, consume)
        return (key, cost, tokens, consume, attempt, time.perf_counter()), None

    def _finish(self, call: tuple, outcome: Any) -> Any:
        """Shared by ``check`` and ``acheck`` once the client answered or raised: ``outcome`` is
        the result or the exception."""
        key, cost, tokens, consume, attempt, started = call
        if self._settle(attempt, started, outcome, _allowed if consume else _not_counted):
            return self._without_redis(key, cost, tokens, consume)
        return outcome

    def check(self, key: str, cost: int = 1, tokens: int = 0, *, consume: bool = True) -> Any:
        call, answer = self._begin(key, cost, tokens, consume)
        if answer is not None:
            return answer
        started = perf_counter_ns()
        try:
            outcome = self._client.check(*call[:4])
        except BaseException as exc:
            outcome = exc
        self._record(started, outcome)
        return self._finish(call, outcome)

    async def acheck(
        self, key: str, cost: int = 1, tokens: int = 0, *, consume: bool = True
    ) -> Any:
        call, answer = self._begin(key, cost, tokens, consume)
        if answer is not None:
            return answer
        started = perf_counter_ns()
        try:
            outcome = await self._client.acheck(*call[:4])
        except BaseException as exc:  # cancellation included: a probe must not stay taken
            outcome = exc
        self._record(started, outcome)
        return self._finish(call, outcome)

    def _record(self, started: int, outcome: Any) -> None:
        """One Redis round trip for monitoring (``redis_rate_limit_check``)."""
        path = "native" if self.path == "native" else "fallback"
        failed = isinstance(outcome, BaseException)
        _flags.record_call(
            "redis_rate_limit_check",
            path,
            perf_counter_ns() - started,
            "error" if failed else "ok",
        )

    def allow(self, key: str, cost: int = 1, tokens: int = 0) -> bool:
        return bool(self.check(key, cost, tokens).allowed)

    def peek(self, key: str, cost: int = 1, tokens: int = 0) -> Any:
        return self.check(key, cost, tokens, consume=False)

    async def aallow(self, key: str, cost: int = 1, tokens: int = 0) -> bool:
        return bool((await self.acheck(key, cost, tokens)).allowed)

    async def apeek(self, key: str, cost: int = 1, tokens: int = 0) -> Any:
        return await self.acheck(key, cost, tokens, consume=False)

    def reset(self, key: str) -> bool:
        """Forgets ``key`` in Redis (and in the local limiter, if any); whether Redis held it.
        Raises ``RateLimitBackendError`` when Redis cannot be reached: a reset is not a check,
        and no policy can stand in for it."""
        key = self._forget_locally(key)
        return self._client.reset(key)

    async def areset(self, key: str) -> bool:
        key = self._forget_locally(key)
        return await self._client.areset(key)

    def _forget_locally(self, key: Any) -> str:
        key = self.limits.request(key, 0, 0)[0]
        if self.local is not None:
            self.local.reset(key)
        return key

    def cleanup(self) -> int:
        """Nothing to do: Redis expires every key when its bucket is full again."""
        if self.local is not None and hasattr(self.local, "cleanup"):
            self.local.cleanup()
        return 0

    def ping(self) -> float:
        """One round trip to Redis (bounded by the timeout); its latency in seconds."""
        started = time.perf_counter()
        self._client.ping()
        return time.perf_counter() - started

    # ---- observability -----------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``"ok"`` (last call answered), ``"down"`` (failing; the policy decides) or
        ``"unknown"`` (no call yet)."""
        if self._down_since is not None:
            return "down"
        return "ok" if self._last_success is not None else "unknown"

    def health(self) -> Dict[str, Any]:
        with self._lock:
            latency = self._last_latency
            down_since = self._down_since
            return {
                "backend": "redis",
                "url": self.description,
                "cluster": self.kind == "cluster",
                "path": self.path,
                "state": self.state,
                "status": "degraded" if down_since is not None else "ok",
                "on_backend_error": self.on_backend_error,
                "last_latency_ms": None if latency is None else round(latency * 1000, 3),
                "last_error": self._last_error,
                "down_for_seconds": (
                    None if down_since is None else round(time.monotonic() - down_since, 3)
                ),
                "backend_errors": self._counts["backend_errors"],
            }

    def stats(self) -> Dict[str, Any]:
        counts = self._counts_now()
        return self._stats(
            counts,
            {
                # Every answer given, whoever gave it (Redis, the policy, the local limiter).
                "allowed": counts["allowed"] + counts["policy_allowed"] + counts["local_allowed"],
                "denied": counts["denied"] + counts["policy_denied"] + counts["local_denied"],
                "redis_allowed": counts["allowed"],
                "redis_denied": counts["denied"],
            },
        )

    def _counts_now(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def _stats(self, counts: Dict[str, int], own: Dict[str, Any]) -> Dict[str, Any]:
        """``stats()`` of a Redis backend: what every one reports around its ``own`` counts."""
        latency = self._last_latency
        stats: Dict[str, Any] = {"backend": "redis", "path": self.path, "state": self.state}
        stats.update(own)
        stats.update(
            backend_errors=counts["backend_errors"],
            busy=counts["busy"],
            fail_open=counts["policy_allowed"],
            fail_closed=counts["policy_denied"],
            local_checks=counts["local_checks"],
            last_latency_ms=None if latency is None else round(latency * 1000, 3),
            last_error=self._last_error,
        )
        if self.local is not None and hasattr(self.local, "stats"):
            stats["local"] = self.local.stats()
        return stats

    def close(self) -> None:
        """Releases the Python path's connections and stops reporting in ``health_check()``."""
        _live.discard(self)
        self._client.close()

    async def aclose(self) -> None:
        """``close()``, plus the Python path's client of the running event loop."""
        self.close()
        aclose = getattr(self._client, "aclose", None)
        if aclose is not None:
            await aclose()

    def __repr__(self) -> str:
        return f"<RedisBackend {self.description} path={self.path} state={self.state}>"
