"""Rate limiting: GCRA (a token bucket with continuous refill) per key, in process or shared
through Redis.

    limiter = SimpleRateLimiter(requests_per_minute=600, tokens_per_minute=100_000)
    result = limiter.check("user-42", tokens=1200)
    if not result:
        wait(result.retry_after)

The rule, in integer nanoseconds, is written out in ``fast_litellm/_fallback/ratelimit.py``; the
native core (``src/ratelimit/``), the fallback and the Redis script all implement it and give the
same answers.

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
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Dict, Optional, Sequence, Union

from . import _flags, _fork
from ._fallback import ratelimit as _fallback
from .errors import RateLimitTimeout

__all__ = [
    "DEFAULT_RPM_VARIABLE",
    "MAX_KEY_LENGTH",
    "ManualClock",
    "RateLimitResult",
    "RateLimitTimeout",
    "SimpleRateLimiter",
    "check_rate_limit",
    "default_rate_limiter",
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


# ---- limits --------------------------------------------------------------------------------------


def _rate(value: Any, name: str) -> Optional[Fraction]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return Fraction(value)


def _burst(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 1, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _interval_ns(rate: Fraction, period_ns: int, name: str) -> int:
    """Nanoseconds per unit, rounded up: never more than the rate, at most 1 ns slower."""
    if rate > period_ns:
        raise ValueError(f"{name} is too high: more than one unit per nanosecond")
    return math.ceil(Fraction(period_ns) / rate)


@dataclass(frozen=True)
class _Limits:
    """The limits of one limiter, as given and as the rule uses them (integer ns).

    Backends (the in-process paths, the Redis backend) read only ``request_interval_ns``,
    ``burst``, ``token_interval_ns`` and ``token_burst``; ``None`` means no such limit.
    """

    requests_per_minute: Optional[float]
    tokens_per_minute: Optional[float]
    burst: Optional[int]
    token_burst: Optional[int]
    period_seconds: float
    requests_per_period: Optional[float]
    tokens_per_period: Optional[float]
    request_interval_ns: Optional[int]
    token_interval_ns: Optional[int]

    @property
    def period_ns(self) -> int:
        return round(self.period_seconds * 1e9)

    @property
    def request_capacity_ns(self) -> Optional[int]:
        if self.request_interval_ns is None or self.burst is None:
            return None
        return self.request_interval_ns * self.burst

    @property
    def token_capacity_ns(self) -> Optional[int]:
        if self.token_interval_ns is None or self.token_burst is None:
            return None
        return self.token_interval_ns * self.token_burst

    @classmethod
    def build(
        cls,
        requests: Any,
        tokens: Any,
        *,
        period_seconds: Any = 60,
        burst: Any = None,
        token_burst: Any = None,
        burst_divisor: int = 10,
        names: Sequence[str] = ("requests_per_minute", "tokens_per_minute"),
    ) -> "_Limits":
        """Validates and derives. A default burst is ``amount / burst_divisor`` rounded down,
        at least 1."""
        request_rate = _rate(requests, names[0])
        token_rate = _rate(tokens, names[1])
        if request_rate is None and token_rate is None:
            raise ValueError(f"at least one limit is required: {names[0]} or {names[1]}")
        if isinstance(period_seconds, bool) or not isinstance(period_seconds, (int, float)):
            raise TypeError(f"period_seconds must be a number, not {type(period_seconds).__name__}")
        if not math.isfinite(period_seconds) or period_seconds <= 0:
            raise ValueError(f"period_seconds must be a finite number > 0, got {period_seconds!r}")
        period_ns = _fallback.seconds_to_ns(period_seconds, "period_seconds")
        if period_ns < 1:
            raise ValueError(f"period_seconds must be at least 1 ns, got {period_seconds!r}")

        def side(rate: Optional[Fraction], given: Any, name: str, burst_name: str) -> tuple:
            if rate is None:
                if given is not None:
                    raise ValueError(f"{burst_name} given without {name}")
                return None, None
            interval = _interval_ns(rate, period_ns, name)
            size = (
                max(1, math.floor(rate / burst_divisor))
                if given is None
                else _burst(given, burst_name)
            )
            if size * interval > _fallback.MAX_NS:
                raise ValueError(
                    f"{burst_name}={size} at {name}={float(rate)} spans more than the longest "
                    "supported window (about 146 years)"
                )
            return interval, size

        request_interval, request_burst = side(request_rate, burst, names[0], "burst")
        token_interval, token_size = side(token_rate, token_burst, names[1], "token_burst")
        per_minute = Fraction(60) / Fraction(period_seconds)
        return cls(
            requests_per_minute=None if request_rate is None else float(request_rate * per_minute),
            tokens_per_minute=None if token_rate is None else float(token_rate * per_minute),
            burst=request_burst,
            token_burst=token_size,
            period_seconds=float(period_seconds),
            requests_per_period=None if request_rate is None else float(request_rate),
            tokens_per_period=None if token_rate is None else float(token_rate),
            request_interval_ns=request_interval,
            token_interval_ns=token_interval,
        )


def _native_failed(exc: BaseException) -> None:
    _state.record_failure(exc, _flags.settings.max_consecutive_errors)


def _local(limits: _Limits, clock: Any, native: bool) -> Any:
    """An in-process limiter object (native or fallback) for ``limits``."""
    cls = _native.RateLimiter if native else _fallback.RateLimiter
    options: Dict[str, Any] = {"clock": clock}
    if native:
        options["on_error"] = _native_failed
    return cls(
        limits.request_interval_ns,
        limits.burst,
        limits.token_interval_ns,
        limits.token_burst,
        **options,
    )


def _choose_native() -> bool:
    mode = _state.mode
    if mode == _flags.NATIVE:
        return True
    if mode == _flags.PARTIAL:
        return _state.take_native()
    return False


_BACKEND_SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
_BACKEND_ERROR_POLICIES = ("allow", "deny", "local")


class SimpleRateLimiter:
    """Per-key rate limits: requests per minute, tokens per minute, or both.

    ``SimpleRateLimiter(requests_per_minute=None, *, tokens_per_minute=None, burst=None,
    token_burst=None, backend=None, key_prefix="fast_litellm", on_backend_error="allow",
    backend_timeout=None, backend_retry_interval=None, clock=None)``

    - ``burst``: requests admitted at once on a full bucket; default ``requests_per_minute / 10``
      rounded down, at least 1. ``token_burst`` likewise for tokens.
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
        key_prefix: str = "fast_litellm",
        on_backend_error: str = "allow",
        backend_timeout: Optional[float] = None,
        backend_retry_interval: Optional[float] = None,
        clock: Any = None,
    ) -> None:
        limits = _Limits.build(
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
        key_prefix: str = "fast_litellm",
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
        limits = _Limits.build(
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
        limits: _Limits,
        backend: Any,
        key_prefix: Any,
        on_backend_error: Any,
        backend_timeout: Any,
        backend_retry_interval: Any,
        clock: Any,
    ) -> None:
        if not isinstance(key_prefix, str):
            raise TypeError(f"key_prefix must be a str, not {type(key_prefix).__name__}")
        if on_backend_error not in _BACKEND_ERROR_POLICIES:
            raise ValueError(
                f"on_backend_error must be one of {', '.join(_BACKEND_ERROR_POLICIES)}, "
                f"got {on_backend_error!r}"
            )
        for value, name in (
            (backend_timeout, "backend_timeout"),
            (backend_retry_interval, "backend_retry_interval"),
        ):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number of seconds or None")
            if not math.isfinite(value) or value <= 0 or value > 3600:
                raise ValueError(f"{name} must be > 0 and at most 3600 seconds, got {value!r}")
        self.limits = limits
        self.key_prefix = key_prefix
        self.on_backend_error = on_backend_error
        self._clock = clock
        native = _native is not None and _choose_native()
        if backend is None:
            self._impl = _local(limits, clock, native)
            self.implementation = "native" if native else "fallback"
            # The hot methods are the implementation's own bound methods: a call goes straight
            # into the native (or fallback) object with no Python frame of ours in between.
            self.check = self._impl.check  # type: ignore[method-assign]
            self.allow = self._impl.allow  # type: ignore[method-assign]
            return
        _validate_backend(backend)
        local = _local(limits, clock, native) if on_backend_error == "local" else None
        from ._ratelimit_redis import RedisBackend

        options: Dict[str, Any] = {} if backend_timeout is None else {"timeout": backend_timeout}
        if backend_retry_interval is not None:
            options["retry_interval"] = backend_retry_interval
        self._impl = RedisBackend(
            backend,
            limits,
            key_prefix=key_prefix,
            on_backend_error=on_backend_error,
            local=local,
            **options,
        )
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

        Between attempts it sleeps ``retry_after`` with ``asyncio.sleep``, so the event loop
        keeps running. With ``timeout`` (seconds of event-loop time) it raises
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
            wait = result.retry_after
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


def _validate_backend(backend: Any) -> None:
    nodes = [backend] if isinstance(backend, str) else backend
    if isinstance(backend, (bytes, bytearray)) or not isinstance(nodes, (list, tuple)):
        raise TypeError(
            f"backend must be None, a Redis URL or a list of them, not {type(backend).__name__}"
        )
    if not nodes:
        raise ValueError("backend: the list of Redis nodes is empty")
    for node in nodes:
        if not isinstance(node, str):
            raise TypeError(f"backend URLs must be str, not {type(node).__name__}")
        if not node.startswith(_BACKEND_SCHEMES):
            raise ValueError(
                f"backend {node!r} is not a Redis URL (expected one of "
                f"{', '.join(_BACKEND_SCHEMES)})"
            )


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
                _default = SimpleRateLimiter(_default_rpm())
            limiter = _default
    return limiter


def check_rate_limit(key: str, *, cost: int = 1, tokens: int = 0) -> RateLimitResult:
    """``default_rate_limiter().check(key, cost=cost, tokens=tokens)``."""
    return (_default or default_rate_limiter()).check(key, cost=cost, tokens=tokens)
