"""The budget API: ``BudgetTracker``, ``BudgetCheck`` and ``BudgetStatus``.

Path choice: a tracker holds state, so the native-or-fallback decision is made once per tracker,
when it is built, from ``feature("BUDGETS")`` (as for rate limiters); a tracker never changes
path while it lives. A native failure inside a call is counted against the feature and raised,
never re-run on the fallback (a record may already have been added).
"""

from __future__ import annotations

import abc
import math
from typing import Any, Dict, NamedTuple, Optional, Sequence, Union

from .. import _flags
from .._fallback import budget as _fallback
from .._fallback.ratelimit import _clock_reader, check_key, seconds_to_ns
from ..ratelimit.redis_protocol import DEFAULT_KEY_PREFIX, BackendOptions

__all__ = [
    "MAX_DOLLARS",
    "BudgetCheck",
    "BudgetStatus",
    "BudgetTracker",
    "BudgetWindow",
    "health_probe",
    "health_sections",
]

_state = _flags.feature("BUDGETS")
_native = _flags.native

# The largest amount, limit or spent total, in dollars (2**53 - 1 nanodollars).
MAX_DOLLARS = _fallback.MAX_NANODOLLARS / 1e9


class BudgetCheck(abc.ABC):
    """The answer to ``check``; truthy when the call fits every budget.

    - ``allowed``: whether ``estimated_cost`` more stays within every budget of the key.
    - ``window``: which budget the answer is about (``"daily"``, ``"monthly"`` or ``"period"``):
      when refused, the refusing one that resets last; when allowed, the one with least left.
    - ``limit``, ``spent``, ``remaining``: that budget's dollars (``remaining`` never negative).
    - ``estimated_cost``: the estimate checked, in dollars.
    - ``reset_at``: when that budget starts again (Unix seconds; ``None`` for a period that has
      not started).
    - ``retry_after``: seconds until the refused call could fit (0.0 when allowed; ``inf`` when
      the estimate alone exceeds a budget).
    - ``reason``: why it was refused, in words (``None`` when allowed).

    ``to_dict()`` gives the fields as a dict. Each path returns its own class; both are
    registered here, so ``isinstance(result, BudgetCheck)`` holds for every result.
    """

    allowed: bool
    window: str
    limit: float
    spent: float
    remaining: float
    estimated_cost: float
    reset_at: Optional[float]
    retry_after: float
    reason: Optional[str]


BudgetCheck.register(_fallback.BudgetCheck)
if _native is not None:
    BudgetCheck.register(_native.BudgetCheck)


class BudgetWindow(NamedTuple):
    """What one budget of a key holds now (dollars, and exact nanodollars)."""

    window: str
    limit: float
    spent: float
    remaining: float
    utilization: float
    requests: int
    reset_at: Optional[float]
    limit_nanodollars: int
    spent_nanodollars: int

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> "BudgetWindow":
        name, limit, spent, requests, reset = row
        if limit:
            utilization = spent / limit
        else:
            utilization = 1.0
        return cls(
            window=name,
            limit=limit / 1e9,
            spent=spent / 1e9,
            remaining=max(limit - spent, 0) / 1e9,
            utilization=utilization,
            requests=requests,
            reset_at=None if reset is None else reset / 1e9,
            limit_nanodollars=limit,
            spent_nanodollars=spent,
        )


class BudgetStatus:
    """``status(key)``: every budget of the key (``windows``, by name) and, as attributes, the
    one with least left (the first on a tie): ``window``, ``limit``, ``spent``, ``remaining``,
    ``utilization`` (spent / limit), ``requests`` (recorded in the current period),
    ``reset_at`` (Unix seconds) and ``reset_after`` (seconds from ``now``)."""

    __slots__ = ("key", "now", "windows", "_primary")

    def __init__(self, key: str, now_ns: int, rows: Sequence[Sequence[Any]]) -> None:
        self.key = key
        self.now = now_ns / 1e9
        self.windows: Dict[str, BudgetWindow] = {}
        primary: Optional[BudgetWindow] = None
        for row in rows:
            window = BudgetWindow.from_row(row)
            self.windows[window.window] = window
            if primary is None or window.remaining < primary.remaining:
                primary = window
        assert primary is not None
        self._primary = primary

    def __getattr__(self, name: str) -> Any:
        primary = object.__getattribute__(self, "_primary")
        try:
            return getattr(primary, name)
        except AttributeError:
            raise AttributeError(f"'BudgetStatus' object has no attribute {name!r}") from None

    @property
    def reset_after(self) -> Optional[float]:
        reset_at = self._primary.reset_at
        return None if reset_at is None else max(reset_at - self.now, 0.0)

    def to_dict(self) -> Dict[str, Any]:
        """The primary budget's fields, ``key``, ``reset_after`` and every window as a dict."""
        result: Dict[str, Any] = {"key": self.key, **self._primary._asdict()}
        result["reset_after"] = self.reset_after
        result["windows"] = {name: w._asdict() for name, w in self.windows.items()}
        return result

    def __repr__(self) -> str:
        p = self._primary
        return (
            f"BudgetStatus(key={self.key!r}, window={p.window!r}, spent={p.spent!r}, "
            f"remaining={p.remaining!r}, utilization={p.utilization!r}, requests={p.requests})"
        )


def _limit(value: Any, name: str) -> Optional[int]:
    return None if value is None else _fallback.nanodollars(value, name)


def _spec(daily: Any, monthly: Any, period: Any, limit: Any) -> tuple:
    """``(daily, monthly, period_ns, period_limit)`` validated (nanodollars and ns)."""
    if period is None:
        if limit is not None:
            raise ValueError(
                "limit= is the budget of a fixed period: give period= (seconds) with it, or use "
                "daily= / monthly= for calendar budgets"
            )
        if daily is None and monthly is None:
            raise ValueError(
                "at least one budget is required: daily=, monthly=, or period= with limit="
            )
        return _limit(daily, "daily"), _limit(monthly, "monthly"), None, None
    if daily is not None or monthly is not None:
        raise ValueError(
            "period= (a budget per fixed period) cannot be combined with daily= or monthly=; "
            "use one tracker per kind of budget"
        )
    if isinstance(period, bool) or not isinstance(period, (int, float)):
        raise TypeError(f"period must be a number of seconds, not {type(period).__name__}")
    if not math.isfinite(period) or period <= 0:
        raise ValueError(f"period must be a finite number of seconds > 0, got {period!r}")
    if limit is None:
        raise ValueError("period= needs limit= (the dollars allowed per period)")
    period_ns = seconds_to_ns(period, "period")
    if period_ns < 1:
        raise ValueError(f"period must be at least 1 ns, got {period!r}")
    return None, None, period_ns, _limit(limit, "limit")


def local_tracker(spec: tuple, clock: Any, native: bool) -> Any:
    """An in-process tracker object (native or fallback)."""
    if native:
        assert _native is not None
        return _native.BudgetTracker(*spec, clock=clock)
    return _fallback.BudgetTracker(*spec, clock=clock)


class BudgetTracker:
    """Spend budgets per key, in dollars: per UTC day, per UTC month, or per fixed period.

    ``BudgetTracker(daily=None, monthly=None, period=None, *, limit=None, backend=None,
    key_prefix="fast_litellm", on_backend_error="allow", backend_timeout=None,
    backend_retry_interval=None, clock=None)``

    - ``daily`` / ``monthly``: dollars per UTC day / UTC calendar month (either or both).
    - ``period`` (seconds) with ``limit`` (dollars): a budget per fixed period that starts with
      a key's first spend once the previous period is over (LiteLLM's ``budget_duration``).
    - Amounts are kept as whole nanodollars (10^-9 $), so concurrent records add exactly; an
      amount, limit or spent total is at most ``MAX_DOLLARS`` (about $9,007,199.25).
    - ``clock``: ``None`` (the system clock; with Redis, the server's), a ``ManualClock`` whose
      reading is Unix time, or a zero-argument callable returning Unix seconds.
    - ``backend``: ``None`` keeps the spend in this process; ``"redis://..."`` (and every form
      the rate limiter accepts) shares it through Redis, with the rate limiter's
      ``on_backend_error`` (``"allow"``, ``"deny"``, ``"local"``), timeout and retry options
      (see ``fast_litellm.budget.redis_backend``).

    ``record(key, cost)``, ``check(key, estimated_cost=0)``, ``status(key)``, ``reset(key)``;
    ``arecord``, ``acheck``, ``astatus``, ``areset`` for async code.
    """

    def __init__(
        self,
        daily: Optional[float] = None,
        monthly: Optional[float] = None,
        period: Optional[float] = None,
        *,
        limit: Optional[float] = None,
        backend: Union[None, str, Sequence[str]] = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        on_backend_error: str = "allow",
        backend_timeout: Optional[float] = None,
        backend_retry_interval: Optional[float] = None,
        clock: Any = None,
    ) -> None:
        spec = _spec(daily, monthly, period, limit)
        options = BackendOptions.build(
            key_prefix,
            on_backend_error,
            backend_timeout,
            backend_retry_interval,
            names=("backend_timeout", "backend_retry_interval"),
        )
        self.daily = None if spec[0] is None else spec[0] / 1e9
        self.monthly = None if spec[1] is None else spec[1] / 1e9
        self.period = period
        self.limit = None if spec[3] is None else spec[3] / 1e9
        self.on_backend_error = options.on_backend_error
        native = _native is not None and _state.choose()
        if backend is None:
            self._impl = local_tracker(spec, clock, native)
            self.implementation = "native" if native else "fallback"
            # The hot methods are the implementation's own bound methods: no Python frame of
            # ours per call.
            self.record = self._impl.record  # type: ignore[method-assign]
            self.check = self._impl.check  # type: ignore[method-assign]
            self._backend: Any = None
            return
        local = local_tracker(spec, clock, native) if on_backend_error == "local" else None
        from .redis_backend import BudgetRedisBackend  # loaded only by trackers that use Redis

        reader = None if clock is None else _clock_reader(clock)
        self._impl = self._backend = BudgetRedisBackend(
            backend, spec, options=options, local=local, clock=reader
        )
        self.implementation = "redis"

    # ---- sync -----------------------------------------------------------------------------

    def record(self, key: str, cost: float) -> None:
        """Adds ``cost`` dollars (and one request) to every budget of ``key``."""
        check_key(key)
        self._backend.record(key, cost, _fallback.nanodollars(cost, "cost"))

    def check(self, key: str, estimated_cost: Optional[float] = None) -> BudgetCheck:
        """Whether ``estimated_cost`` dollars more (default 0) fit every budget of ``key``:
        refused once a budget is exhausted or would be exceeded. Records nothing."""
        check_key(key)
        nanos = (
            0 if estimated_cost is None else _fallback.nanodollars(estimated_cost, "estimated_cost")
        )
        return self._backend.check(key, estimated_cost, nanos)

    def status(self, key: str) -> BudgetStatus:
        """Spent, remaining, utilization, requests and reset time of every budget of ``key``."""
        if self._backend is None:
            now, rows = self._impl.status(key)
        else:
            check_key(key)
            now, rows = self._backend.status(key)
        return BudgetStatus(key, now, rows)

    def reset(self, key: str) -> bool:
        """Forgets ``key``'s spend; whether any was tracked."""
        if self._backend is None:
            return bool(self._impl.reset(key))
        check_key(key)
        return bool(self._backend.reset(key))

    def cleanup(self) -> int:
        """Drops every key whose budgets have all reset (in process; Redis expires its keys by
        itself); returns how many. Idle keys are also swept as new keys arrive."""
        return 0 if self._backend is not None else int(self._impl.cleanup())

    def stats(self) -> Dict[str, Any]:
        """Counters of this tracker, and the ``implementation`` answering."""
        stats = dict(self._impl.stats())
        stats.setdefault("implementation", self.implementation)
        return stats

    # ---- async ----------------------------------------------------------------------------

    async def arecord(self, key: str, cost: float) -> None:
        """``record`` for async code (with Redis, the round trip does not block the loop)."""
        if self._backend is None:
            self._impl.record(key, cost)
            return
        check_key(key)
        await self._backend.arecord(key, cost, _fallback.nanodollars(cost, "cost"))

    async def acheck(self, key: str, estimated_cost: Optional[float] = None) -> BudgetCheck:
        """``check`` for async code."""
        if self._backend is None:
            return self._impl.check(key, estimated_cost)
        check_key(key)
        nanos = (
            0 if estimated_cost is None else _fallback.nanodollars(estimated_cost, "estimated_cost")
        )
        return await self._backend.acheck(key, estimated_cost, nanos)

    async def astatus(self, key: str) -> BudgetStatus:
        """``status`` for async code."""
        if self._backend is None:
            return self.status(key)
        check_key(key)
        now, rows = await self._backend.astatus(key)
        return BudgetStatus(key, now, rows)

    async def areset(self, key: str) -> bool:
        """``reset`` for async code."""
        if self._backend is None:
            return self.reset(key)
        check_key(key)
        return bool(await self._backend.areset(key))

    def close(self) -> None:
        """Releases a Redis backend's connections (nothing to do in process)."""
        if self._backend is not None:
            self._backend.close()

    def __repr__(self) -> str:
        parts = []
        for name in ("daily", "monthly", "period", "limit"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value!r}")
        parts.append(f"implementation={self.implementation!r}")
        return f"BudgetTracker({', '.join(parts)})"


# ---- health -------------------------------------------------------------------------------------


def health_probe() -> Optional[str]:
    """A native tracker on a manual clock: $1 a day, ten records of $0.10 must add to exactly
    $1.00 and refuse one more cent; the next UTC day must start from zero. None when right, else
    what was wrong."""
    assert _native is not None
    clock = _native.ManualClock(86_400 * 20_000 + 3_600)
    tracker = local_tracker(_spec(1, None, None, None), clock, native=True)
    for _ in range(10):
        tracker.record("health-probe", 0.1)
    refused = tracker.check("health-probe", 0.01)
    _, rows = tracker.status("health-probe")
    clock.advance(86_400)
    fresh = tracker.check("health-probe", 1)
    if rows[0][2] == 10**9 and rows[0][3] == 10 and not refused.allowed and fresh.allowed:
        return None
    return (
        f"native tracker answered wrongly: spent {rows[0][2]} nanodollars in {rows[0][3]} "
        f"requests, refused={not refused.allowed}, next day allowed={fresh.allowed}"
    )


def health_sections() -> Dict[str, Any]:
    """Redis backends of live trackers, for ``health_check()`` (only when some exist)."""
    import sys

    backend = sys.modules.get(f"{__package__}.redis_backend")
    backends = backend.backends_health() if backend is not None else []
    return {"budget_backends": backends} if backends else {}
