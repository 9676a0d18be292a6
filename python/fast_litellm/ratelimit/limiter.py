"""The rate limiter API: ``SimpleRateLimiter``, the default limiter and ``check_rate_limit``.

Path choice: a limiter holds state, so the native-or-fallback decision is made once per limiter
object, when it is built, from ``feature("RATE_LIMITING")`` (a partial rollout spreads limiter
objects, not calls, over the two paths); a limiter never changes path while it lives. A native
failure inside a check is counted against the feature and raised, never retried on the fallback
(the check may already have consumed); limiters built after the feature switched itself off use
the fallback.
"""

from __future__ import annotations

import abc
import math
import os
from typing import Any, Dict, Optional, Sequence, Union

from .. import _flags, _fork
from .._fallback import ratelimit as _fallback
from ..errors import RateLimitTimeout
from .limits import Limits
from .redis_protocol import DEFAULT_KEY_PREFIX, BackendOptions

__all__ = [
    "DEFAULT_RPM_VARIABLE",
    "MAX_KEY_LENGTH",
    "ManualClock",
    "RateLimitResult",
    "SimpleRateLimiter",
    "check_rate_limit",
    "default_rate_limiter",
    "health_probe",
]

MAX_KEY_LENGTH = _fallback.MAX_KEY_LENGTH
DEFAULT_RPM_VARIABLE = "FAST_LITELLM_DEFAULT_RPM"

_state = _flags.feature("RATE_LIMITING")
_native = _flags.native

# One public clock class: the native one when the extension loaded (a native limiter reads it
# with no Python call per check), its Python twin otherwise. Both paths accept both.
ManualClock: Any = _native.ManualClock if _native is not None else _fallback.ManualClock


class RateLimitResult(abc.ABC):
    """The answer to one check; truthy when allowed.

    - ``allowed``: whether the call was admitted (and consumed).
    - ``remaining``: whole units left after this call (of the request limit; of the token limit
      when it is the only one). When refused: what is available now.
    - ``retry_after``: seconds until the same call would be admitted; 0.0 when allowed; ``inf``
      when it never can be (an amount above its burst).
    - ``reset_after``: seconds until every bucket of the key is full again.
    - ``limit``: the burst, i.e. the most that can be admitted at once (request limit, or token
      limit when it is the only one).
    - ``remaining_tokens`` / ``token_limit``: the same for the token limit (``None`` without one).

    ``to_dict()`` gives the fields as a dict. Each path returns its own class; both (and the
    Redis backend's) are registered here, so ``isinstance(result, RateLimitResult)`` holds for
    every result.
    """

    allowed: bool
    remaining: int
    retry_after: float
    reset_after: float
    limit: int
    remaining_tokens: Optional[int]
    token_limit: Optional[int]


RateLimitResult.register(_fallback.RateLimitResult)
if _native is not None:
    RateLimitResult.register(_native.RateLimitResult)


def local_limiter(limits: Limits, clock: Any, native: bool) -> Any:
    """An in-process limiter object (native or fallback) for ``limits``."""
    if native:
        assert _native is not None
        return _native.RateLimiter(
            limits.request_interval_ns,
            limits.burst,
            limits.token_interval_ns,
            limits.token_burst,
            clock=clock,
            on_error=_state.native_failed,
        )
    return _fallback.RateLimiter(
        limits.request_interval_ns,
        limits.burst,
        limits.token_interval_ns,
        limits.token_burst,
        clock=clock,
    )


def _allowed(result: Any) -> bool:
    return bool(result.allowed)


# The shortest pause between two attempts of acquire(): short enough to be invisible next to a
# model call, long enough that a stream of "retry now" answers costs no CPU.
_MIN_ACQUIRE_WAIT = 0.005


class SimpleRateLimiter:
    """Per-key rate limits: requests per minute, tokens per minute, or both.

    ``SimpleRateLimiter(requests_per_minute=None, *, tokens_per_minute=None, burst=None,
    token_burst=None, backend=None, key_prefix="fast_litellm", on_backend_error="allow",
    backend_timeout=None, backend_retry_interval=None, clock=None)``

    - With no limit given, ``requests_per_minute`` is the default limiter's:
      ``FAST_LITELLM_DEFAULT_RPM`` (default 60).
    - ``burst``: requests admitted at once on a full bucket; default ``requests_per_minute / 10``
      rounded down, at least 1. ``token_burst``: tokens admitted at once; default the whole
      ``tokens_per_minute`` (one request may use a minute's tokens).
    - ``clock``: ``None`` (monotonic), a ``ManualClock`` (read directly, no Python call per
      check), or any zero-argument callable returning seconds (called before the check, never
      under a lock).
    - ``backend``: ``None`` keeps the state in this process; ``"redis://..."`` (``rediss://``,
      ``unix://``, ``redis+cluster://``, or a list of node URLs) shares it through Redis.
      ``on_backend_error`` and ``backend_timeout`` say what happens when Redis fails or is slow;
      after a failure Redis is retried after ``backend_retry_interval`` seconds (default 1).

    Long periods (a daily budget in any unit) use ``SimpleRateLimiter.per_period``.
    Every instance is independent: two limiters never share keys unless they share a backend.
    """

    def __init__(
        self,
        requests_per_minute: Optional[float] = None,
        *,
        tokens_per_minute: Optional[float] = None,
        burst: Optional[int] = None,
        token_burst: Optional[int] = None,
        backend: Union[None, str, Sequence[str]] = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        on_backend_error: str = "allow",
        backend_timeout: Optional[float] = None,
        backend_retry_interval: Optional[float] = None,
        clock: Any = None,
    ) -> None:
        if requests_per_minute is None and tokens_per_minute is None:
            # No limit given: the default limiter's (FAST_LITELLM_DEFAULT_RPM, 60 a minute).
            requests_per_minute = _default_rpm()
        limits = Limits.build(
            requests_per_minute, tokens_per_minute, burst=burst, token_burst=token_burst
        )
        self._setup(
            limits,
            backend,
            key_prefix,
            on_backend_error,
            backend_timeout,
            backend_retry_interval,
            clock,
        )

    @classmethod
    def per_period(
        cls,
        period_seconds: float,
        *,
        requests: Optional[float] = None,
        tokens: Optional[float] = None,
        burst: Optional[int] = None,
        token_burst: Optional[int] = None,
        backend: Union[None, str, Sequence[str]] = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        on_backend_error: str = "allow",
        backend_timeout: Optional[float] = None,
        backend_retry_interval: Optional[float] = None,
        clock: Any = None,
    ) -> "SimpleRateLimiter":
        """A limit over any period: ``requests`` and/or ``tokens`` (any unit: dollars in cents,
        images...) per ``period_seconds``, refilled continuously.

        The default bursts are the whole amounts (a budget can be spent at once), so
        ``per_period(86_400, tokens=1_000_000)`` is a daily budget of a million tokens that
        refills at a million a day. In any window of length ``w`` at most
        ``burst + amount * w / period`` is admitted: up to twice the amount in one period after
        a full bucket; set ``burst=amount // 2`` to cap every period at the amount.
        """
        limits = Limits.build(
            requests,
            tokens,
            period_seconds=period_seconds,
            burst=burst,
            token_burst=token_burst,
            burst_divisor=1,
            names=("requests", "tokens"),
        )
        self = cls.__new__(cls)
        self._setup(
            limits,
            backend,
            key_prefix,
            on_backend_error,
            backend_timeout,
            backend_retry_interval,
            clock,
        )
        return self

    def _setup(
        self,
        limits: Limits,
        backend: Any,
        key_prefix: Any,
        on_backend_error: Any,
        backend_timeout: Any,
        backend_retry_interval: Any,
        clock: Any,
    ) -> None:
        options = BackendOptions.build(
            key_prefix,
            on_backend_error,
            backend_timeout,
            backend_retry_interval,
            names=("backend_timeout", "backend_retry_interval"),
        )
        self.limits = limits
        self.key_prefix = key_prefix
        self.on_backend_error = on_backend_error
        self._clock = clock
        native = _native is not None and _state.choose()
        if backend is None:
            self._impl = local_limiter(limits, clock, native)
            self.implementation = "native" if native else "fallback"
            # The hot methods are the implementation's own bound methods: a call goes straight
            # into the native (or fallback) object with no Python frame of ours in between.
            self.check = self._impl.check  # type: ignore[method-assign]
            self.allow = self._impl.allow  # type: ignore[method-assign]
            if not native or _flags.timing.python:
                # A native limiter records its checks itself; anything else is timed here.
                path = self.implementation
                self.check = _flags.timed_method(  # type: ignore[method-assign]
                    self._impl.check, "rate_limit_check", path, _allowed
                )
                self.allow = _flags.timed_method(  # type: ignore[method-assign]
                    self._impl.allow, "rate_limit_check", path, bool
                )
            return
        local = local_limiter(limits, clock, native) if on_backend_error == "local" else None
        from .redis_backend import RedisBackend  # loaded only by limiters that use Redis

        self._impl = RedisBackend(backend, limits, local=local, options=options)
        self.implementation = "redis"

    # ---- checks ---------------------------------------------------------------------------------

    def check(self, key: str, *, cost: int = 1, tokens: int = 0) -> RateLimitResult:
        """Decides and, when allowed, consumes ``cost`` requests and ``tokens`` tokens for
        ``key``, both or neither. Returns a ``RateLimitResult`` (truthy when allowed).

        ``cost``/``tokens`` are ints >= 0; an amount above its burst is never allowed (the
        result says ``retry_after=inf``). Keys are non-empty ``str`` of at most
        ``MAX_KEY_LENGTH`` characters.
        """
        return self._impl.check(key, cost, tokens)

    def allow(self, key: str, *, cost: int = 1, tokens: int = 0) -> bool:
        """``check`` without the result object: the fastest call."""
        return self._impl.allow(key, cost, tokens)

    def peek(self, key: str, *, cost: int = 1, tokens: int = 0) -> RateLimitResult:
        """What ``check(key, cost=cost, tokens=tokens)`` would answer now, without consuming.
        ``peek(key, cost=0)`` reports what is available now."""
        return self._impl.peek(key, cost, tokens)

    def reset(self, key: str) -> None:
        """Forgets ``key``: its buckets are full again."""
        self._impl.reset(key)

    def cleanup(self) -> int:
        """Drops every key whose buckets are full again (forgetting them changes no answer);
        returns how many. Idle keys are also swept automatically as new keys arrive."""
        cleanup = getattr(self._impl, "cleanup", None)
        return 0 if cleanup is None else cleanup()

    def stats(self) -> Dict[str, Any]:
        """``keys`` tracked, ``memory_bytes`` held, ``allowed``/``denied`` counts, and the
        ``implementation`` answering (``native``, ``fallback`` or ``redis``)."""
        stats = dict(self._impl.stats())
        stats.setdefault("implementation", self.implementation)
        return stats

    # ---- async ----------------------------------------------------------------------------------

    async def acheck(self, key: str, *, cost: int = 1, tokens: int = 0) -> RateLimitResult:
        """``check`` for async code. In process it answers at once (a check never waits);
        with Redis it awaits the round trip without blocking the event loop."""
        if self.implementation == "redis":
            return await self._impl.acheck(key, cost, tokens)
        return self._impl.check(key, cost, tokens)

    async def aallow(self, key: str, *, cost: int = 1, tokens: int = 0) -> bool:
        """``allow`` for async code (see ``acheck``)."""
        return (await self.acheck(key, cost=cost, tokens=tokens)).allowed

    async def areset(self, key: str) -> None:
        """``reset`` for async code."""
        if self.implementation == "redis":
            await self._impl.areset(key)
        else:
            self._impl.reset(key)

    async def acquire(
        self,
        key: str,
        *,
        cost: int = 1,
        tokens: int = 0,
        timeout: Optional[float] = None,
    ) -> RateLimitResult:
        """Waits until the call is admitted, then returns its result (client-side pacing).

        Between attempts it sleeps ``retry_after`` (at least ``_MIN_ACQUIRE_WAIT``) with
        ``asyncio.sleep``, so the event loop keeps running. With ``timeout`` (seconds of event-loop time) it raises
        ``RateLimitTimeout`` as soon as the wait needed goes past the deadline, without
        sleeping first. An amount above its burst can never be admitted: ``ValueError``.
        """
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise TypeError(
                    f"timeout must be a number of seconds, not {type(timeout).__name__}"
                )
            if math.isnan(timeout) or timeout < 0:
                raise ValueError(f"timeout must be >= 0, got {timeout!r}")
        # Imported here: asyncio costs ~35 ms to import, and `import fast_litellm` must stay cheap.
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            result = await self.acheck(key, cost=cost, tokens=tokens)
            if result.allowed:
                return result
            # Never a spin: a refusal that says "retry now" (a Redis probe in flight, a bucket
            # refilling within microseconds) still waits a few milliseconds.
            wait = max(result.retry_after, _MIN_ACQUIRE_WAIT)
            if math.isinf(wait):
                raise ValueError(
                    f"cost={cost}, tokens={tokens} exceeds the limiter's burst and can never be "
                    "admitted"
                )
            if deadline is not None and loop.time() + wait > deadline:
                raise RateLimitTimeout(
                    f"{key!r} would be admitted in {wait:.3f} s, after the {timeout} s timeout",
                    retry_after=wait,
                )
            await asyncio.sleep(wait)

    def __repr__(self) -> str:
        limits = self.limits
        if limits.period_seconds == 60:
            parts = [
                f"requests_per_minute={limits.requests_per_minute!r}",
                f"tokens_per_minute={limits.tokens_per_minute!r}",
            ]
        else:
            parts = [
                f"period_seconds={limits.period_seconds!r}",
                f"requests={limits.requests_per_period!r}",
                f"tokens={limits.tokens_per_period!r}",
            ]
        parts += [f"burst={limits.burst!r}", f"token_burst={limits.token_burst!r}"]
        return f"SimpleRateLimiter({', '.join(parts)}, implementation={self.implementation!r})"


# ---- the default limiter -------------------------------------------------------------------------

_default: Optional[SimpleRateLimiter] = None
_default_lock = _fork.Lock()


def _default_rpm(environ: Any = os.environ) -> float:
    raw = environ.get(DEFAULT_RPM_VARIABLE)
    if raw is None:
        return 60
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError(f"{DEFAULT_RPM_VARIABLE}={raw!r}: expected a number > 0") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{DEFAULT_RPM_VARIABLE}={raw!r}: expected a number > 0")
    return int(value) if value.is_integer() else value


def default_rate_limiter() -> SimpleRateLimiter:
    """The limiter behind ``check_rate_limit``: ``FAST_LITELLM_DEFAULT_RPM`` requests per minute
    (default 60, burst a tenth of it), in process. Built on first use; the variable is read
    then, once."""
    global _default
    limiter = _default
    if limiter is None:
        with _default_lock:
            if _default is None:
                _default = SimpleRateLimiter()
            limiter = _default
    return limiter


def check_rate_limit(key: str, *, cost: int = 1, tokens: int = 0) -> RateLimitResult:
    """``default_rate_limiter().check(key, cost=cost, tokens=tokens)``."""
    return (_default or default_rate_limiter()).check(key, cost=cost, tokens=tokens)


# ---- health -------------------------------------------------------------------------------------


def health_probe() -> Optional[str]:
    """A native limiter on a manual clock: 60/min with its default burst of 6 must admit exactly
    6 of 7 immediate calls and ask the 7th to retry in exactly one second. None when right,
    else what was wrong."""
    assert _native is not None
    limiter = local_limiter(Limits.build(60, None), _native.ManualClock(), native=True)
    allowed = sum(bool(limiter.allow("health-probe")) for _ in range(6))
    refused = limiter.check("health-probe")
    if allowed == 6 and not refused.allowed and refused.retry_after == 1.0:
        return None
    return (
        f"native limiter answered wrongly: {allowed} of 6 admitted, "
        f"7th allowed={refused.allowed} retry_after={refused.retry_after}"
    )


def health_sections() -> Dict[str, Any]:
    """Shared backends of live limiters (Redis), for ``health_check()``: reported only when
    some exist; one that is failing degrades the whole report."""
    import sys

    backend = sys.modules.get(f"{__package__}.redis_backend")
    backends = backend.backends_health() if backend is not None else []
    return {"rate_limit_backends": backends} if backends else {}
