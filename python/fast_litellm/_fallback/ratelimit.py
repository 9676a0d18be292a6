"""Pure-Python twin of the native rate limiter (``fast_litellm._native.RateLimiter``).

Same constructor, same methods, same answers to the nanosecond: both paths (and the Redis
script, ``fast_litellm/_lua/gcra.lua``) implement this one rule.

The rule: GCRA, a token bucket with continuous refill, in integer nanoseconds
-----------------------------------------------------------------------------
A limit is ``burst`` units refilled at one unit per ``interval`` ns (both positive integers,
``burst * interval <= 2**62``). A key's whole state for one limit is one integer, ``tat`` (the
"theoretical arrival time": the instant its bucket is full again); a key never seen, or forgotten,
has ``tat = 0``. For ``amount`` units at time ``now`` (ns, ``0 <= now <= 2**62``)::

    capacity = burst * interval
    base     = max(tat, now)
    new_tat  = base + amount * interval
    allowed  = amount <= burst and new_tat <= now + capacity
    if allowed:
        tat         = new_tat
        remaining   = (now + capacity - new_tat) // interval
        retry_after = 0
    else:                                   # tat unchanged
        remaining   = max(0, now + capacity - base) // interval
        retry_after = NEVER if amount > burst else new_tat - (now + capacity)
    reset_after = max(tat, now) - now       # with tat as stored after the decision

A call with both a request and a token limit evaluates both first (``cost`` against the request
limit, ``tokens`` against the token limit); it is allowed only if both allow it, and then both
``tat`` are stored, otherwise neither. Its ``retry_after`` is the largest of the refusing limits'
(``NEVER`` if any amount exceeds its burst), ``reset_after`` the largest of both limits'.
``remaining``/``limit`` describe the request limit, or the token limit when it is the only one;
``remaining_tokens``/``token_limit`` describe the token limit (``None`` without one). ``limit`` is
the burst. Durations become seconds as ``ns / 1e9`` (``NEVER`` becomes ``inf``).

A key whose every ``tat <= now`` answers exactly like a fresh key, so it can be forgotten at any
moment: that is what ``cleanup()`` and the automatic sweep do.

Guarantee: in any interval of length ``w`` one key admits at most ``burst + w / interval`` units.

Seconds given by callers (clock readings, ``ManualClock.advance``) become nanoseconds as
``round(seconds * 1e9)``: half to even, exactly what Rust's ``f64::round_ties_even`` does.
"""

from __future__ import annotations

import functools
import math
import operator
import sys
import time
from typing import Any, Callable, Dict, List, Optional

from .. import _fork

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_NS",
    "ManualClock",
    "RateLimitResult",
    "RateLimiter",
    "check_amount",
    "check_key",
    "seconds_to_ns",
]

MAX_NS = 1 << 62
MAX_KEY_LENGTH = 4096
NEVER = (1 << 64) - 1  # retry_after of an amount over the burst (never admitted)
_SWEEP_MIN = 4096  # the table is not swept before it holds this many keys


def _real_seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{what} must be a number of seconds (int or float), not {type(value).__name__}"
        )
    return float(value)


def seconds_to_ns(value: Any, what: str = "seconds") -> int:
    """``round(value * 1e9)`` (half to even) within ``0..2**62``; anything else is an error."""
    seconds = _real_seconds(value, what)
    x = seconds * 1e9
    if not (0.0 <= x <= MAX_NS):  # also false for NaN
        raise ValueError(
            f"{what} must be a number of seconds from 0 to {MAX_NS // 10**9} (about 146 years), "
            f"got {seconds!r}"
        )
    return round(x)


def _ns(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int of nanoseconds, not {type(value).__name__}")
    if not 0 <= value <= MAX_NS:
        raise ValueError(f"{what} must be between 0 and {MAX_NS} ns (about 146 years), got {value}")
    return int(value)


def _seconds(ns: int) -> float:
    return math.inf if ns == NEVER else ns / 1e9


class ManualClock:
    """A clock that moves only when told to (the twin of the native ``ManualClock``)."""

    __slots__ = ("_ns", "__weakref__")

    def __init__(self, start: Optional[float] = None) -> None:
        self._ns = 0 if start is None else seconds_to_ns(start, "start")

    def now(self) -> float:
        """The reading in seconds."""
        return self._ns / 1e9

    def now_ns(self) -> int:
        return self._ns

    def advance(self, seconds: float) -> None:
        """Moves the clock forward by ``seconds`` (rounded to whole nanoseconds)."""
        self._step(seconds_to_ns(seconds, "seconds"))

    def advance_ns(self, nanoseconds: int) -> None:
        self._step(_ns(nanoseconds, "nanoseconds"))

    def _step(self, delta: int) -> None:
        after = self._ns + delta
        if after > MAX_NS:
            raise ValueError(
                f"clock time must be between 0 and {MAX_NS} ns (about 146 years), got {after}"
            )
        self._ns = after

    def set(self, seconds: float) -> None:
        """Sets the reading to ``seconds`` (it may move backwards)."""
        self._ns = seconds_to_ns(seconds, "seconds")

    def set_ns(self, nanoseconds: int) -> None:
        self._ns = _ns(nanoseconds, "nanoseconds")

    def __repr__(self) -> str:
        return f"ManualClock({self.now()!r})"


class RateLimitResult:
    """The answer to one check: truthy when allowed."""

    __slots__ = (
        "allowed",
        "remaining",
        "retry_after",
        "reset_after",
        "limit",
        "remaining_tokens",
        "token_limit",
    )

    def __init__(
        self,
        allowed: bool,
        remaining: int,
        retry_after: float,
        reset_after: float,
        limit: int,
        remaining_tokens: Optional[int] = None,
        token_limit: Optional[int] = None,
    ) -> None:
        self.allowed = allowed
        self.remaining = remaining
        self.retry_after = retry_after
        self.reset_after = reset_after
        self.limit = limit
        self.remaining_tokens = remaining_tokens
        self.token_limit = token_limit

    def __bool__(self) -> bool:
        return self.allowed

    def to_dict(self) -> Dict[str, Any]:
        """The fields as a dict (the same keys on every path)."""
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        text = (
            f"RateLimitResult(allowed={self.allowed}, remaining={self.remaining}, "
            f"retry_after={self.retry_after!r}, reset_after={self.reset_after!r}, "
            f"limit={self.limit}"
        )
        if self.token_limit is not None:
            text += f", remaining_tokens={self.remaining_tokens}, token_limit={self.token_limit}"
        return text + ")"


def _limit(interval: Optional[int], burst: Optional[int], what: str) -> Optional[tuple]:
    if interval is None and burst is None:
        return None
    if interval is None or burst is None:
        raise ValueError(f"{what}: the interval and the burst go together")
    for name, value in (("interval", interval), ("burst", burst)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{what} {name} must be an int, not {type(value).__name__}")
        if value < 0:
            raise OverflowError(f"can't convert negative int to unsigned ({what} {name})")
    if interval == 0:
        raise ValueError("emission interval must be at least 1 ns")
    if burst == 0:
        raise ValueError("burst must be at least 1")
    if burst * interval > MAX_NS:
        raise ValueError(
            f"burst {burst} x interval {interval} ns exceeds the longest supported window "
            f"({MAX_NS} ns, about 146 years)"
        )
    return interval, burst, interval * burst


_read_ns = operator.attrgetter("_ns")


def _clock_reader(clock: Any) -> Callable[[], int]:
    """A zero-argument function giving the time in ns for ``clock``."""
    if clock is None:
        return time.monotonic_ns
    if type(clock) is ManualClock:
        return functools.partial(_read_ns, clock)  # C calls only: no Python frame per read
    if hasattr(clock, "now_ns"):
        read = clock.now_ns

        def now_ns() -> int:
            return _ns(read(), "clock time")

        return now_ns
    if callable(clock):

        def from_seconds() -> int:
            return seconds_to_ns(clock(), "clock time")

        return from_seconds
    raise TypeError(
        "clock must be a ManualClock or a zero-argument callable returning seconds, not "
        f"{type(clock).__name__}"
    )


def check_amount(value: Any, what: str) -> int:
    """A request or token amount: an int >= 0 (the rule every path applies)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")
    return int(value)


def check_key(key: Any) -> str:
    """The key rule of every path (the native limiter applies the same one in Rust): a non-empty
    ``str`` of valid Unicode, at most ``MAX_KEY_LENGTH`` characters. The in-process fallback runs
    it only for keys not in its table (a stored key passed it when it was stored)."""
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, not {type(key).__name__}")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("key must be valid Unicode text (it holds a lone surrogate)") from None
    if not key:
        raise ValueError("key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(
            f"key is {len(key)} characters long; the longest accepted is {MAX_KEY_LENGTH}"
        )
    return key


class RateLimiter:
    """The in-process limiter: the rule above over a dict of ``key -> [tat_requests, tat_tokens]``
    behind one lock (a check is a read-modify-write; the lock makes it atomic under threads)."""

    def __init__(
        self,
        request_interval_ns: Optional[int],
        burst: Optional[int],
        token_interval_ns: Optional[int],
        token_burst: Optional[int],
        *,
        clock: Any = None,
        on_error: Optional[Callable[[BaseException], Any]] = None,
    ) -> None:
        requests = _limit(request_interval_ns, burst, "requests")
        tokens = _limit(token_interval_ns, token_burst, "tokens")
        if requests is None and tokens is None:
            raise ValueError("at least one limit (requests or tokens) is required")
        self._has_requests = requests is not None
        self._has_tokens = tokens is not None
        self._r_interval, self._r_burst, self._r_capacity = requests or (1, 1, 1)
        self._t_interval, self._t_burst, self._t_capacity = tokens or (1, 1, 1)
        self._now = _clock_reader(clock)
        self._table: Dict[str, List[int]] = {}
        self._lock = _fork.Lock()
        self._sweep_at = _SWEEP_MIN
        self._allowed = 0
        self._denied = 0

    # -- the rule ---------------------------------------------------------------------------------

    def _decide(self, state: List[int], now: int, cost: int, tokens: int, commit: bool) -> tuple:
        """``(allowed, retry_after_ns, reset_after_ns, remaining, remaining_tokens)``; stores the
        new ``tat`` values into ``state`` when allowed and ``commit``."""
        r_tat, t_tat = state
        allowed = True
        retry = 0
        if self._has_requests:
            interval = self._r_interval
            r_base = r_tat if r_tat > now else now
            r_limit_at = now + self._r_capacity
            if cost > self._r_burst:
                allowed, retry, r_new = False, NEVER, r_base
            else:
                r_new = r_base + cost * interval
                if r_new > r_limit_at:
                    allowed, retry = False, r_new - r_limit_at
        if self._has_tokens:
            interval = self._t_interval
            t_base = t_tat if t_tat > now else now
            t_limit_at = now + self._t_capacity
            if tokens > self._t_burst:
                allowed, retry, t_new = False, NEVER, t_base
            else:
                t_new = t_base + tokens * interval
                if t_new > t_limit_at:
                    allowed = False
                    if retry != NEVER and t_new - t_limit_at > retry:
                        retry = t_new - t_limit_at
        remaining = remaining_tokens = None
        reset = 0
        if self._has_requests:
            if allowed:
                r_tat = r_new
                remaining = (r_limit_at - r_new) // self._r_interval
            else:
                remaining = max(0, r_limit_at - r_base) // self._r_interval
            if r_tat > now:
                reset = r_tat - now
        if self._has_tokens:
            if allowed:
                t_tat = t_new
                remaining_tokens = (t_limit_at - t_new) // self._t_interval
            else:
                remaining_tokens = max(0, t_limit_at - t_base) // self._t_interval
            if t_tat - now > reset:
                reset = t_tat - now
        if allowed and commit:
            state[0] = r_tat
            state[1] = t_tat
        return allowed, retry, reset, remaining, remaining_tokens

    def _result(self, decision: tuple) -> RateLimitResult:
        allowed, retry, reset, remaining, remaining_tokens = decision
        if self._has_requests:
            return RateLimitResult(
                allowed,
                remaining,
                _seconds(retry),
                reset / 1e9,
                self._r_burst,
                remaining_tokens,
                self._t_burst if self._has_tokens else None,
            )
        return RateLimitResult(
            allowed,
            remaining_tokens,
            _seconds(retry),
            reset / 1e9,
            self._t_burst,
            remaining_tokens,
            self._t_burst,
        )

    # -- the table --------------------------------------------------------------------------------

    def _consume(self, key: Any, cost: Any, tokens: Any) -> tuple:
        if type(cost) is not int or cost < 0 or type(tokens) is not int or tokens < 0:
            if key.__class__ is not str:
                check_key(key)
            cost = check_amount(cost, "cost")
            tokens = check_amount(tokens, "tokens")
        now = self._now()
        with self._lock:
            try:
                state = self._table.get(key)
            except TypeError:  # unhashable: not a str
                check_key(key)
                raise
            if state is not None:
                decision = self._decide(state, now, cost, tokens, True)
            else:
                check_key(key)
                state = [0, 0]
                decision = self._decide(state, now, cost, tokens, True)
                # A refused or empty check leaves a fresh key full: nothing to remember.
                if decision[0] and (state[0] > now or state[1] > now):
                    if len(self._table) >= self._sweep_at:
                        self._sweep(now)
                    self._table[key] = state
            if decision[0]:
                self._allowed += 1
            else:
                self._denied += 1
        return decision

    def _sweep(self, now: int) -> int:
        table = self._table
        full = [k for k, (r, t) in table.items() if r <= now and t <= now]
        for key in full:
            del table[key]
        self._sweep_at = max(_SWEEP_MIN, 2 * len(table))
        return len(full)

    # -- the API (same as the native class) --------------------------------------------------------

    def check(self, key: str, cost: int = 1, tokens: int = 0) -> RateLimitResult:
        """Decides and, when allowed, consumes ``cost`` requests and ``tokens`` tokens."""
        return self._result(self._consume(key, cost, tokens))

    def allow(self, key: str, cost: int = 1, tokens: int = 0) -> bool:
        """``check`` without the result object."""
        return self._consume(key, cost, tokens)[0]

    def peek(self, key: str, cost: int = 1, tokens: int = 0) -> RateLimitResult:
        """What ``check`` would answer now, without consuming."""
        check_key(key)
        cost = check_amount(cost, "cost")
        tokens = check_amount(tokens, "tokens")
        now = self._now()
        with self._lock:
            state = self._table.get(key)
            state = [0, 0] if state is None else list(state)
        return self._result(self._decide(state, now, cost, tokens, False))

    def reset(self, key: str) -> None:
        """Forgets ``key`` (its buckets are full again)."""
        check_key(key)
        with self._lock:
            self._table.pop(key, None)

    def cleanup(self) -> int:
        """Drops every key whose buckets are full again; returns how many."""
        now = self._now()
        with self._lock:
            return self._sweep(now)

    def stats(self) -> Dict[str, int]:
        """``{"keys", "memory_bytes", "allowed", "denied"}``; the size walks the table."""
        with self._lock:
            items = list(self._table.items())
            allowed, denied = self._allowed, self._denied
        size = sys.getsizeof(self._table) + sys.getsizeof(self)
        for key, state in items:
            size += sys.getsizeof(key) + sys.getsizeof(state)
            size += sum(sys.getsizeof(v) for v in state if v > 256)
        return {"keys": len(items), "memory_bytes": size, "allowed": allowed, "denied": denied}
