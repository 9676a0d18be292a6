"""The pure-Python twin of the native metrics registry (``src/metrics/mod.rs``).

Same bucketing as the native ``hdrhistogram`` (two significant digits: 256 sub-buckets, values
from 1 ns, buckets doubling in width), same quantile rule (the highest value equivalent to the
bucket where the running count reaches ``ceil(q * total)``), same mean (bucket midpoints in
bucket order), same recent window (``WINDOW_SLOTS`` slots of ``SLOT_NS``): given the same records
on the same clock, both answer the same numbers. Every call recorded here is timed (the native
registry samples only its own hot operations).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["Histogram", "Registry", "SLOT_NS", "WINDOW_SLOTS"]

SLOT_NS = 10_000_000_000
WINDOW_SLOTS = 6
MAX_LATENCY_NS = 3_600_000_000_000
MAX_OPERATIONS = 128
PATHS = ("native", "fallback")
OUTCOMES = ("ok", "error", "refused")
BUILTIN_OPERATIONS = (
    "count_tokens",
    "count_tokens_batch",
    "count_message_tokens",
    "rate_limit_check",
    "cache_get",
    "cache_set",
    "cache_key",
    "count_request_tokens",
)

# hdrhistogram's layout for lowest value 1 and two significant digits.
_SUB_BUCKET_MASK = 255  # 256 sub-buckets


def _bucket(value: int) -> int:
    return (value | _SUB_BUCKET_MASK).bit_length() - 8


def lowest_equivalent(value: int) -> int:
    b = _bucket(value)
    return (value >> b) << b


def highest_equivalent(value: int) -> int:
    return lowest_equivalent(value) + (1 << _bucket(value)) - 1


def median_equivalent(value: int) -> int:
    return lowest_equivalent(value) + ((1 << _bucket(value)) >> 1)


class Histogram:
    """Counts per bucket, keyed by the bucket's lowest value."""

    __slots__ = ("counts", "total", "max_value")

    def __init__(self) -> None:
        self.counts: Dict[int, int] = {}
        self.total = 0
        self.max_value = 0

    def record(self, value: int) -> None:
        key = lowest_equivalent(value)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.total += 1
        if value > self.max_value:
            self.max_value = value

    def add(self, other: "Histogram") -> None:
        for key, count in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + count
        self.total += other.total
        self.max_value = max(self.max_value, other.max_value)

    def value_at_quantile(self, quantile: float) -> int:
        target = max(1, math.ceil(min(quantile, 1.0) * self.total))
        running = 0
        key = 0
        for key in sorted(self.counts):
            running += self.counts[key]
            if running >= target:
                break
        return lowest_equivalent(key) if quantile == 0.0 else highest_equivalent(key)

    def mean(self) -> float:
        if not self.total:
            return 0.0
        total = 0.0
        for key in sorted(self.counts):
            # The same operations in the same order as the native histogram's mean.
            total = total + float(median_equivalent(key)) * float(self.counts[key]) / float(
                self.total
            )
        return total

    def max(self) -> int:
        return highest_equivalent(self.max_value)


def _summary(counts: Tuple[int, int, int], histogram: Optional[Histogram]) -> Dict[str, Any]:
    calls, errors, refused = counts
    out: Dict[str, Any] = {
        "calls": calls,
        "errors": errors,
        "refused": refused,
        "samples": 0,
        "mean_ns": 0.0,
        "p50_ns": 0,
        "p95_ns": 0,
        "p99_ns": 0,
        "max_ns": 0,
    }
    if histogram is not None and histogram.total:
        out.update(
            samples=histogram.total,
            mean_ns=histogram.mean(),
            p50_ns=histogram.value_at_quantile(0.50),
            p95_ns=histogram.value_at_quantile(0.95),
            p99_ns=histogram.value_at_quantile(0.99),
            max_ns=histogram.max(),
        )
    return out


class _Slot:
    __slots__ = ("epoch", "baseline", "latency")

    def __init__(self) -> None:
        self.epoch = -1
        self.baseline = (0, 0, 0)
        self.latency: Optional[Histogram] = None


class _Counters:
    __slots__ = ("calls", "errors", "refused", "latency", "window")

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.refused = 0
        self.latency: Optional[Histogram] = None
        self.window = [_Slot() for _ in range(WINDOW_SLOTS)]


class Registry:
    """Every operation's counters (see the module notes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._operations: Dict[str, List[_Counters]] = {}
        self._clock: Any = None

    def use_clock(self, clock: Any) -> None:
        """Window time from ``clock.now_ns()`` (tests), or the monotonic clock with None."""
        if clock is not None and not callable(getattr(clock, "now_ns", None)):
            raise TypeError(
                f"clock must be a ManualClock (with a now_ns() method) or None, not "
                f"{type(clock).__name__}"
            )
        self._clock = clock

    def now_ns(self) -> int:
        clock = self._clock
        return time.monotonic_ns() if clock is None else int(clock.now_ns())

    def record(self, operation: str, path: str, latency_ns: int, outcome: str = "ok") -> None:
        index = 0 if path == "native" else 1 if path == "fallback" else -1
        if index < 0:
            raise ValueError(f"path must be 'native' or 'fallback', not {path!r}")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be 'ok', 'error' or 'refused', not {outcome!r}")
        value = min(int(latency_ns), MAX_LATENCY_NS)
        if value < 0:
            raise ValueError(f"latency_ns must be >= 0, got {latency_ns}")
        now = self.now_ns()
        with self._lock:
            paths = self._operations.get(operation)
            if paths is None:
                # Built-in names always have their place (the native registry holds them from
                # the start): only the others count against the limit.
                custom = sum(1 for name in self._operations if name not in BUILTIN_OPERATIONS)
                _check_name(operation, custom)
                paths = self._operations[operation] = [_Counters(), _Counters()]
            counters = paths[index]
            before = (counters.calls, counters.errors, counters.refused)
            counters.calls += 1
            if outcome == "error":
                counters.errors += 1
            elif outcome == "refused":
                counters.refused += 1
            if counters.latency is None:
                counters.latency = Histogram()
            counters.latency.record(value)
            epoch = now // SLOT_NS
            slot = counters.window[epoch % WINDOW_SLOTS]
            if slot.epoch != epoch:
                slot.epoch = epoch
                slot.baseline = before
                slot.latency = None
            if slot.latency is None:
                slot.latency = Histogram()
            slot.latency.record(value)

    def reset(self) -> None:
        with self._lock:
            self._operations.clear()

    def after_fork_in_child(self) -> None:
        """A forked child counts from zero, with a lock no parent thread can be holding."""
        self._lock = threading.Lock()
        self._operations = {}

    def snapshot(self) -> List[Tuple[str, str, Dict[str, Any], Dict[str, Any]]]:
        """``[(operation, scope, lifetime, window), ...]`` as the native ``metrics_snapshot``:
        a row per path with calls, then ``all`` for both paths together."""
        now_epoch = self.now_ns() // SLOT_NS
        out = []
        with self._lock:
            for name, paths in self._operations.items():
                raws = [_raw(counters, now_epoch) for counters in paths]
                merged = _merge(raws)
                for scope, raw in ((PATHS[0], raws[0]), (PATHS[1], raws[1]), ("all", merged)):
                    if raw[0][0]:
                        out.append(
                            (name, scope, _summary(raw[0], raw[1]), _summary(raw[2], raw[3]))
                        )
        return out


_Raw = Tuple[Tuple[int, int, int], Histogram, Tuple[int, int, int], Histogram]


def _raw(counters: _Counters, now_epoch: int) -> _Raw:
    totals = (counters.calls, counters.errors, counters.refused)
    lifetime = Histogram()
    if counters.latency is not None:
        lifetime.add(counters.latency)
    first_epoch = max(0, now_epoch - (WINDOW_SLOTS - 1))
    slots = [s for s in counters.window if s.epoch >= 0 and first_epoch <= s.epoch <= now_epoch]
    window = Histogram()
    window_counts = (0, 0, 0)
    if slots:
        oldest = min(slots, key=lambda s: s.epoch)
        for slot in slots:
            if slot.latency is not None:
                window.add(slot.latency)
        window_counts = (
            max(0, totals[0] - oldest.baseline[0]),
            max(0, totals[1] - oldest.baseline[1]),
            max(0, totals[2] - oldest.baseline[2]),
        )
    return totals, lifetime, window_counts, window


def _merge(raws: List[_Raw]) -> _Raw:
    lifetime, window = Histogram(), Histogram()
    totals = [0, 0, 0]
    window_counts = [0, 0, 0]
    for raw in raws:
        for k in range(3):
            totals[k] += raw[0][k]
            window_counts[k] += raw[2][k]
        lifetime.add(raw[1])
        window.add(raw[3])
    return (
        (totals[0], totals[1], totals[2]),
        lifetime,
        (window_counts[0], window_counts[1], window_counts[2]),
        window,
    )


def _check_name(name: str, custom: int) -> None:
    valid = (
        isinstance(name, str)
        and 0 < len(name) <= 64
        and all(c.isascii() and (c.isalnum() or c in "_.") for c in name)
    )
    if not valid:
        raise ValueError(f"operation names are 1 to 64 characters of [A-Za-z0-9_.], got {name!r}")
    if custom + len(BUILTIN_OPERATIONS) >= MAX_OPERATIONS and name not in BUILTIN_OPERATIONS:
        raise ValueError(f"at most {MAX_OPERATIONS} operations can be recorded")
