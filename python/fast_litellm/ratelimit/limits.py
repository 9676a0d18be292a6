"""The limits of one limiter: validated as given, and as the GCRA rule uses them (integer ns)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Optional, Sequence

from .._fallback.ratelimit import MAX_NS, seconds_to_ns

__all__ = ["Limits"]


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
class Limits:
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
    ) -> "Limits":
        """Validates and derives. The default request burst is ``requests / burst_divisor``
        rounded down, at least 1 (a tenth of a minute's requests at once, as the documents
        promise). The default token burst is the whole token amount: "this many tokens a
        minute" must admit one request of that size, and a tenth would refuse an ordinary
        large prompt for ever."""
        request_rate = _rate(requests, names[0])
        token_rate = _rate(tokens, names[1])
        if request_rate is None and token_rate is None:
            raise ValueError(f"at least one limit is required: {names[0]} or {names[1]}")
        if isinstance(period_seconds, bool) or not isinstance(period_seconds, (int, float)):
            raise TypeError(f"period_seconds must be a number, not {type(period_seconds).__name__}")
        if not math.isfinite(period_seconds) or period_seconds <= 0:
            raise ValueError(f"period_seconds must be a finite number > 0, got {period_seconds!r}")
        period_ns = seconds_to_ns(period_seconds, "period_seconds")
        if period_ns < 1:
            raise ValueError(f"period_seconds must be at least 1 ns, got {period_seconds!r}")

        def side(
            rate: Optional[Fraction], given: Any, name: str, burst_name: str, divisor: int
        ) -> tuple:
            if rate is None:
                if given is not None:
                    raise ValueError(f"{burst_name} given without {name}")
                return None, None
            interval = _interval_ns(rate, period_ns, name)
            size = (
                max(1, math.floor(rate / divisor)) if given is None else _burst(given, burst_name)
            )
            if size * interval > MAX_NS:
                raise ValueError(
                    f"{burst_name}={size} at {name}={float(rate)} spans more than the longest "
                    "supported window (about 146 years)"
                )
            return interval, size

        request_interval, request_burst = side(
            request_rate, burst, names[0], "burst", burst_divisor
        )
        token_interval, token_size = side(token_rate, token_burst, names[1], "token_burst", 1)
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
