"""Pure-Python twin of the native budget tracker (``fast_litellm._native.BudgetTracker``).

Same constructor, same methods, same answers: the rule is the one of ``src/budget/mod.rs``.

The rule, in integer nanodollars and Unix nanoseconds
-----------------------------------------------------
Amounts are whole nanodollars (``round(dollars * 1e9)``, half to even; an int of dollars is
multiplied exactly), at most ``MAX_NANODOLLARS = 2**53 - 1`` (about $9,007,199.25, what the Redis
script computes exactly). A tracker has one or two windows, each with a limit:

- ``daily``: the UTC day holding ``now`` (id ``now // DAY_NS``);
- ``monthly``: the UTC calendar month (id ``year * 12 + month - 1``);
- ``period``: ``period_ns`` from the first spend of a key once the previous period is over
  (id: its start); it cannot be combined with the others.

A key keeps ``(id, spent, requests)`` per window; a window whose id is not the current one (or a
period that is over) holds nothing. ``record(key, cost)`` adds the cost (spent saturates at
``MAX_NANODOLLARS``) and one request to every window, starting a new one first where needed.
``check(key, estimate)`` refuses when in any window ``spent >= limit`` (exhausted) or
``spent + estimate > limit``; the result describes the refusing window that resets last, or, when
allowed, the window with the least left (the first in order on a tie). ``retry_after`` is the
time until that window resets, ``inf`` when the estimate alone exceeds a limit.
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .. import _fork
from .ratelimit import MAX_NS, _clock_reader, check_key

__all__ = [
    "DAY_NS",
    "MAX_NANODOLLARS",
    "BudgetCheck",
    "BudgetTracker",
    "civil_from_days",
    "days_from_civil",
    "format_dollars",
    "month_of_day",
    "nanodollars",
    "verdict",
]

MAX_NANODOLLARS = (1 << 53) - 1
NANODOLLARS_PER_DOLLAR = 10**9
DAY_NS = 86_400 * 10**9
_SWEEP_MIN = 4096

# A window: (name, limit, period_ns or None).
Window = Tuple[str, int, Optional[int]]
# What a window holds at a time: (window, spent, requests, reset_at_ns or None).
View = Tuple[Window, int, int, Optional[int]]

_MAX_TEXT = f"${MAX_NANODOLLARS / 1e9:.2f} (2^53 - 1 nanodollars)"


def nanodollars(value: Any, what: str) -> int:
    """A cost in dollars (int or float, not bool) as whole nanodollars."""
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{what} must be a finite number of dollars >= 0, got {value!r}")
        scaled = value * 1e9
        # A huge finite amount scales to infinity, which round() cannot take: refuse it first.
        if scaled > MAX_NANODOLLARS + 1:
            raise ValueError(f"{what} must be at most {_MAX_TEXT}, got {value!r}")
        nanos = round(scaled)
        if nanos > MAX_NANODOLLARS:
            raise ValueError(f"{what} must be at most {_MAX_TEXT}, got {value!r}")
        return nanos
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{what} must be a number of dollars (int or float), not {type(value).__name__}"
        )
    if value < 0:
        raise ValueError(f"{what} must be a finite number of dollars >= 0, got {value}")
    if value > MAX_NANODOLLARS // NANODOLLARS_PER_DOLLAR:
        raise ValueError(f"{what} must be at most {_MAX_TEXT}, got {value}")
    return int(value) * NANODOLLARS_PER_DOLLAR


def format_dollars(nanos: int) -> str:
    """``nanos`` as dollars, exactly: ``$12.50``, ``$0.0000015``."""
    whole, rest = divmod(nanos, NANODOLLARS_PER_DOLLAR)
    fraction = f"{rest:09d}"
    digits = fraction.rstrip("0")
    if len(digits) < 2:
        digits = fraction[:2]
    return f"${whole}.{digits}"


# ---- the calendar (Howard Hinnant's algorithms, as src/budget/calendar.rs) ---------------------


def civil_from_days(days: int) -> Tuple[int, int, int]:
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def days_from_civil(year: int, month: int, day: int) -> int:
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    mp = month - 3 if month > 2 else month + 9
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def month_of_day(days: int) -> Tuple[int, int]:
    """``(year * 12 + month - 1, first day of the next month)`` of day number ``days``."""
    year, month, _ = civil_from_days(days)
    nxt = days_from_civil(year + 1, 1, 1) if month == 12 else days_from_civil(year, month + 1, 1)
    return year * 12 + month - 1, nxt


def _calendar(name: str, now: int) -> Tuple[int, int]:
    day = now // DAY_NS
    if name == "daily":
        return day, (day + 1) * DAY_NS
    month, next_day = month_of_day(day)
    return month, next_day * DAY_NS


# ---- the rule -----------------------------------------------------------------------------------


def _is_current(window: Window, state: List[int], now: int) -> bool:
    if state[2] == 0:
        return False
    period = window[2]
    if period is not None:
        return now < state[0] + period
    return state[0] == _calendar(window[0], now)[0]


def _view(window: Window, state: Optional[List[int]], now: int) -> View:
    current = state is not None and _is_current(window, state, now)
    period = window[2]
    if period is not None:
        reset = state[0] + period if current else None  # type: ignore[index]
    else:
        reset = _calendar(window[0], now)[1]
    if current:
        return window, state[1], state[2], reset  # type: ignore[index]
    return window, 0, 0, reset


def _record(window: Window, state: List[int], now: int, amount: int) -> None:
    if _is_current(window, state, now):
        state[1] = min(state[1] + amount, MAX_NANODOLLARS)
        state[2] += 1
    else:
        state[0] = now if window[2] is not None else _calendar(window[0], now)[0]
        state[1] = min(amount, MAX_NANODOLLARS)
        state[2] = 1


def verdict(views: Sequence[View], now: int, estimate: int) -> "BudgetCheck":
    """The check rule over the views of one key's windows (in process and on Redis)."""
    refused: Optional[View] = None
    refused_exhausted = False
    never = False
    tightest: Optional[View] = None
    for view in views:
        window, spent, _, reset = view
        limit = window[1]
        exhausted = spent >= limit
        if exhausted or spent + estimate > limit:
            never = never or estimate > limit
            later = refused is None or (MAX_NS * 4 if reset is None else reset) > (
                MAX_NS * 4 if refused[3] is None else refused[3]
            )
            if later:
                refused, refused_exhausted = view, exhausted
        if tightest is None or max(limit - spent, 0) < max(tightest[0][1] - tightest[1], 0):
            tightest = view
    if refused is not None:
        reset = refused[3]
        retry = math.inf if never else (0 if reset is None else max(reset - now, 0)) / 1e9
        return BudgetCheck._make(False, refused, estimate, refused_exhausted, retry)
    assert tightest is not None
    return BudgetCheck._make(True, tightest, estimate, False, 0.0)


class BudgetCheck:
    """The answer to one check: truthy when the call fits every budget."""

    __slots__ = (
        "allowed",
        "window",
        "limit",
        "spent",
        "remaining",
        "estimated_cost",
        "reset_at",
        "retry_after",
        "reason",
    )

    allowed: bool
    window: str
    limit: float
    spent: float
    remaining: float
    estimated_cost: float
    reset_at: Optional[float]
    retry_after: float
    reason: Optional[str]

    @classmethod
    def _make(
        cls, allowed: bool, view: View, estimate: int, exhausted: bool, retry_after: float
    ) -> "BudgetCheck":
        (name, limit, _), spent, _, reset = view
        self = cls.__new__(cls)
        self.allowed = allowed
        self.window = name
        self.limit = limit / 1e9
        self.spent = spent / 1e9
        self.remaining = max(limit - spent, 0) / 1e9
        self.estimated_cost = estimate / 1e9
        self.reset_at = None if reset is None else reset / 1e9
        self.retry_after = retry_after
        if allowed:
            self.reason = None
        elif exhausted:
            self.reason = (
                f"{name} budget of {format_dollars(limit)} is exhausted: "
                f"{format_dollars(spent)} spent"
            )
        else:
            self.reason = (
                f"{name} budget of {format_dollars(limit)} would be exceeded: "
                f"{format_dollars(spent)} spent + {format_dollars(estimate)} estimated"
            )
        return self

    def __bool__(self) -> bool:
        return self.allowed

    def to_dict(self) -> Dict[str, Any]:
        """The fields as a dict (the same keys on every path)."""
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        reason = "None" if self.reason is None else f"'{self.reason}'"
        return (
            f"BudgetCheck(allowed={self.allowed}, window='{self.window}', "
            f"remaining={format_dollars(round(self.remaining * 1e9))}, reason={reason})"
        )


def windows(
    daily: Optional[int],
    monthly: Optional[int],
    period_ns: Optional[int],
    period_limit: Optional[int],
) -> List[Window]:
    """The windows of a tracker (limits in nanodollars), checked as the native module does."""
    result: List[Window] = []
    for name, limit in (("daily", daily), ("monthly", monthly)):
        if limit is not None:
            result.append((name, limit, None))
    if (period_ns is None) != (period_limit is None):
        raise ValueError("period and its limit go together")
    if period_ns is not None and period_limit is not None:
        if result:
            raise ValueError(
                "period (a budget per fixed period) cannot be combined with daily or monthly"
            )
        if not 1 <= period_ns <= MAX_NS:
            raise ValueError(f"period must be between 1 ns and {MAX_NS} ns, got {period_ns} ns")
        result.append(("period", period_limit, period_ns))
    if not result:
        raise ValueError("at least one budget is required: daily, monthly, or limit with period")
    for name, limit, _ in result:
        if limit > MAX_NANODOLLARS:
            raise ValueError(f"{name} must be at most {_MAX_TEXT}, got {limit} nanodollars")
    return result


class BudgetTracker:
    """The in-process tracker: the rule above over a dict ``key -> [[id, spent, requests], ...]``
    behind one lock (a record is a read-modify-write; the lock makes it exact under threads)."""

    def __init__(
        self,
        daily: Optional[int],
        monthly: Optional[int],
        period_ns: Optional[int],
        period_limit: Optional[int],
        *,
        clock: Any = None,
    ) -> None:
        self._windows = windows(daily, monthly, period_ns, period_limit)
        self._now = time.time_ns if clock is None else _clock_reader(clock)
        self._table: Dict[str, List[List[int]]] = {}
        # A record updates every window in turn: a fork must not copy one half-way (the child
        # would find it in the daily window and not the monthly one).
        self._lock = _fork.StateLock()
        self._sweep_at = _SWEEP_MIN
        self._recorded = self._allowed = self._denied = 0

    def record(self, key: str, cost: Any) -> None:
        """Adds ``cost`` dollars (and one request) to every window of ``key``."""
        check_key(key)
        amount = nanodollars(cost, "cost")
        now = self._now()
        with self._lock:
            self._recorded += 1
            states = self._table.get(key)
            if states is None:
                if len(self._table) >= self._sweep_at:
                    self._sweep(now)
                states = self._table[key] = [[0, 0, 0] for _ in self._windows]
            for window, state in zip(self._windows, states, strict=True):
                _record(window, state, now, amount)

    def _views(self, key: str, now: int) -> List[View]:
        states = self._table.get(key)
        if states is None:
            return [_view(w, None, now) for w in self._windows]
        return [_view(w, list(s), now) for w, s in zip(self._windows, states, strict=True)]

    def check(self, key: str, estimated_cost: Any = None) -> BudgetCheck:
        """Whether ``estimated_cost`` dollars more fit every budget of ``key``."""
        check_key(key)
        estimate = 0 if estimated_cost is None else nanodollars(estimated_cost, "estimated_cost")
        now = self._now()
        with self._lock:
            views = self._views(key, now)
            answer = verdict(views, now, estimate)
            if answer.allowed:
                self._allowed += 1
            else:
                self._denied += 1
        return answer

    def status(self, key: str) -> Tuple[int, List[tuple]]:
        """``(now_ns, [(window, limit, spent, requests, reset_at_ns), ...])`` in nanodollars."""
        check_key(key)
        now = self._now()
        with self._lock:
            views = self._views(key, now)
        return now, [(w[0], w[1], spent, requests, reset) for w, spent, requests, reset in views]

    def reset(self, key: str) -> bool:
        """Forgets ``key``; whether it was tracked."""
        check_key(key)
        with self._lock:
            return self._table.pop(key, None) is not None

    def _sweep(self, now: int) -> int:
        table = self._table
        over = [
            k
            for k, states in table.items()
            if not any(_is_current(w, s, now) for w, s in zip(self._windows, states, strict=True))
        ]
        for key in over:
            del table[key]
        self._sweep_at = max(_SWEEP_MIN, 2 * len(table))
        return len(over)

    def cleanup(self) -> int:
        """Drops every key whose windows are all over; returns how many."""
        now = self._now()
        with self._lock:
            return self._sweep(now)

    def stats(self) -> Dict[str, int]:
        """``{"keys", "recorded", "allowed", "denied"}``."""
        with self._lock:
            return {
                "keys": len(self._table),
                "recorded": self._recorded,
                "allowed": self._allowed,
                "denied": self._denied,
            }
