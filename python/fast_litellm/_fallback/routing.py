"""Pure-Python deployment health and routing: the same rules, the same arithmetic and the same
random generator as the native core (``src/health/mod.rs``, ``src/routing/mod.rs``), so given one
seed and one sequence of calls both make the same choices. The rules are described there."""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from .. import _fork
from ..errors import NoDeploymentAvailable

__all__ = ["Router"]

DEFAULT_COOLDOWN_SECONDS = 5.0
FAILURE_THRESHOLD_PERCENT = 0.5
FAILURE_THRESHOLD_MINIMUM_REQUESTS = 5
SINGLE_DEPLOYMENT_TRAFFIC_FAILURE_THRESHOLD = 1000
LATENCY_SAMPLES = 10
TIMEOUT_PENALTY_SECONDS = 1000.0
PERCENTILE_SAMPLES = 256
EWMA_ALPHA = 0.2
WINDOW_SECONDS = 60
_MINUTE_COUNTER_TTL = 60.0
_MASK = (1 << 64) - 1
_U64_MAX = _MASK

_STRATEGIES = {
    "simple-shuffle": "shuffle",
    "least-busy": "least_busy",
    "latency-based-routing": "latency",
    "usage-based-routing": "usage",
    "usage-based-routing-v2": "usage",
    "cost-based-routing": "cost",
    "cost-based": "cost",
}


class _SplitMix64:
    __slots__ = ("state",)

    def __init__(self, seed: int) -> None:
        self.state = seed & _MASK

    def next_f64(self) -> float:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        z ^= z >> 31
        return (z >> 11) * (1.0 / (1 << 53))

    def below(self, n: int) -> int:
        return min(int(self.next_f64() * n), n - 1)


def _minute_of(now: float) -> int:
    return math.floor(now / 60.0)


class _Recent:
    """The last ``size`` samples, oldest first."""

    __slots__ = ("samples", "next", "size")

    def __init__(self, size: int) -> None:
        self.samples: List[float] = []
        self.next = 0
        self.size = size

    def push(self, sample: float) -> None:
        if len(self.samples) < self.size:
            self.samples.append(sample)
        else:
            self.samples[self.next] = sample
            self.next = (self.next + 1) % self.size

    def ordered(self) -> List[float]:
        return self.samples[self.next :] + self.samples[: self.next]

    def mean(self) -> float:
        if not self.samples:
            return 0.0
        total = 0.0
        for sample in self.ordered():
            total += sample
        return total / len(self.samples)

    def percentile(self, q: float) -> Optional[float]:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        rank = math.ceil(q * len(ordered))
        return ordered[min(max(rank, 1), len(ordered)) - 1]


class _Health:
    __slots__ = (
        "in_flight",
        "probe_started",
        "probe_lease",
        "cooldown_until",
        "cooldown_status",
        "half_open",
        "consecutive_failures",
        "total_successes",
        "total_failures",
        "window",
        "successes_minute",
        "failures_minute",
        "allowed_fails",
        "routing_latency",
        "routing_ttft",
        "latencies",
        "latency_ewma",
        "ttft_ewma",
        "started_minute",
        "succeeded_minute",
        "tokens_minute",
        "first_success",
        "health_check",
        "checks_passed",
        "checks_failed",
        "checks_consecutive_failures",
        "check_status",
        "check_latency",
        "check_at",
    )

    def __init__(self) -> None:
        self.in_flight = 0
        # See `Health::probe_started` and `probe_lease` in src/health/mod.rs.
        self.probe_started: Optional[float] = None
        self.probe_lease = 0.0
        self.cooldown_until = 0.0
        self.cooldown_status = 0
        self.half_open = False
        self.consecutive_failures = 0
        self.total_successes = 0
        self.total_failures = 0
        # second -> [successes, failures]
        self.window: Dict[int, List[int]] = {}
        # expiring counters: [value, expires_at]
        self.successes_minute = [0, 0.0]
        self.failures_minute = [0, 0.0]
        self.allowed_fails = [0, 0.0]
        self.routing_latency = _Recent(LATENCY_SAMPLES)
        self.routing_ttft = _Recent(LATENCY_SAMPLES)
        self.latencies = _Recent(PERCENTILE_SAMPLES)
        self.latency_ewma: Optional[float] = None
        self.ttft_ewma: Optional[float] = None
        # minute counters: [minute, value]
        self.started_minute = [0, 0]
        self.succeeded_minute = [0, 0]
        self.tokens_minute = [0, 0]
        self.first_success: Optional[int] = None
        self.health_check: Optional[bool] = None
        # The active health checks' own record (not counted as requests).
        self.checks_passed = 0
        self.checks_failed = 0
        self.checks_consecutive_failures = 0
        self.check_status: Optional[int] = None
        self.check_latency: Optional[float] = None
        self.check_at: Optional[float] = None

    def state(self, now: float) -> str:
        if now < self.cooldown_until:
            return "cooldown"
        return "half_open" if self.half_open else "healthy"

    def available(self, now: float, staleness: float) -> bool:
        if (
            self.health_check is False
            and self.check_at is not None
            and now - self.check_at < staleness
        ):
            return False
        state = self.state(now)
        return state == "healthy" or (state == "half_open" and not self.probing(now))

    def picked(self, now: float) -> None:
        """A pick (or a start) gave it a request: a half-open circuit's probe is that request's
        from now on, so a second pick before its start sends no second probe."""
        if self.state(now) == "half_open":
            self.probe_started = now

    def probing(self, now: float) -> bool:
        return self.probe_started is not None and now < self.probe_started + self.probe_lease


def _expiring_get(counter: List[Any], now: float) -> int:
    return int(counter[0]) if now < counter[1] else 0


def _expiring_increment(counter: List[Any], now: float, ttl: float) -> int:
    counter[0] = _expiring_get(counter, now) + 1
    counter[1] = now + ttl
    return int(counter[0])


def _minute_get(counter: List[int], now: float) -> int:
    return counter[1] if counter[0] == _minute_of(now) else 0


def _minute_add(counter: List[int], now: float, amount: int) -> None:
    minute = _minute_of(now)
    if counter[0] != minute:
        counter[0] = minute
        counter[1] = 0
    counter[1] = min(counter[1] + amount, _U64_MAX)


def _ewma(previous: Optional[float], sample: float) -> float:
    return sample if previous is None else previous + EWMA_ALPHA * (sample - previous)


def _cooldown_required(status: int, connection_error: bool) -> bool:
    if connection_error:
        return False
    if 400 <= status < 500:
        return status in (429, 401, 402, 408, 404)
    return True


def _should_retry(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def _finite_non_negative(value: float, what: str) -> float:
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{what} must be a finite number >= 0")
    return value


def _index(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise OverflowError(f"{what} must be >= 0")
    return value


SpecTuple = Tuple[
    int,
    Tuple[float, float, float],
    Tuple[float, float, float, float],
    float,
    Optional[float],
    Optional[int],
]


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _locked(method: _Method) -> _Method:
    """One call at a time per router, as the native core's mutex does: a pick reads several
    deployments' state, and a thread switch in between would mix two moments."""

    @functools.wraps(method)
    def run(self: "Router", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return run  # type: ignore[return-value]


class Router:
    """The fallback of ``fast_litellm._native.Router``: same constructor, same methods."""

    def __init__(
        self,
        strategy: str,
        groups: int,
        deployments: Sequence[SpecTuple],
        *,
        allowed_fails: Optional[int],
        cooldown_time: float,
        circuit_breaker: bool,
        lowest_latency_buffer: float,
        seed: int,
        health_check_staleness: float,
    ) -> None:
        kind = _STRATEGIES.get(strategy)
        if kind is None:
            raise ValueError(f"unknown strategy {strategy!r}")
        self._kind = kind
        self._allowed_fails = allowed_fails
        self._cooldown_time = _finite_non_negative(float(cooldown_time), "cooldown_time")
        self._circuit_breaker = bool(circuit_breaker)
        self._buffer = _finite_non_negative(float(lowest_latency_buffer), "lowest_latency_buffer")
        self._staleness = _finite_non_negative(
            float(health_check_staleness), "health_check_staleness"
        )
        self._specs = list(deployments)
        self._groups: List[List[int]] = [[] for _ in range(groups)]
        for index, (group, weights, limits, cost, _own_cooldown, _own_fails) in enumerate(
            self._specs
        ):
            for weight in weights:
                _finite_non_negative(weight, "weight")
            _finite_non_negative(cost, "cost")
            for limit in limits:
                if math.isnan(limit) or limit < 0.0:
                    raise ValueError("rpm/tpm must be a finite number >= 0")
            if not 0 <= group < groups:
                raise ValueError(
                    f"deployment {index} belongs to group {group}, which does not exist"
                )
            self._groups[group].append(index)
        self._health = [_Health() for _ in self._specs]
        self._rng = _SplitMix64(seed)
        self._successes = 0
        # fork() waits for a call in progress, so a child never sees half of one (and the lock free)
        self._lock = _fork.StateLock()

    def __len__(self) -> int:
        return len(self._specs)

    def _check(self, index: int) -> _Health:
        index = _index(index, "index")
        if index >= len(self._specs):
            raise ValueError(f"no deployment {index}")
        return self._health[index]

    def _members(self, group: int) -> List[int]:
        group = _index(group, "group")
        if group >= len(self._groups):
            raise ValueError(f"no model group {group}")
        return self._groups[group]

    @_locked
    def available(self, group: int, now: float) -> List[int]:
        return [i for i in self._members(group) if self._health[i].available(now, self._staleness)]

    @_locked
    def is_available(self, index: int, now: float) -> bool:
        return self._check(index).available(now, self._staleness)

    @_locked
    def pick(self, group: int, input_tokens: int, stream: bool, now: float) -> int:
        members = self._members(group)
        input_tokens = _index(input_tokens, "input_tokens")
        health = self._health
        candidates = [i for i in members if health[i].available(now, self._staleness)]
        if not candidates:
            waits = [health[i].cooldown_until - now for i in members]
            waits = [w for w in waits if w > 0.0]
            raise NoDeploymentAvailable("no deployment available", min(waits) if waits else None)
        kind = self._kind
        chosen: Optional[int]
        if kind == "shuffle":
            chosen = self._shuffle(candidates)
        elif kind == "least_busy":
            chosen = min(candidates, key=lambda i: health[i].in_flight)
        elif kind == "latency":
            chosen = self._lowest_latency(candidates, input_tokens, stream, now)
        elif kind == "usage":
            chosen = self._lowest_usage(candidates, input_tokens, now)
        else:
            chosen = self._lowest_cost(candidates, input_tokens, now)
        if chosen is None:
            raise NoDeploymentAvailable("no deployment available", 60.0 - (now % 60.0))
        health[chosen].picked(now)
        return chosen

    def _shuffle(self, candidates: List[int]) -> int:
        specs = self._specs
        for metric in range(3):
            largest = 0.0
            for i in candidates:
                largest = max(largest, specs[i][1][metric])
            if largest <= 0.0:
                continue
            cumulative = []
            total = 0.0
            for i in candidates:
                total += specs[i][1][metric] / largest
                cumulative.append(total)
            if total <= 0.0:
                continue
            target = self._rng.next_f64() * total
            last = len(candidates) - 1
            position = 0
            while position < last and cumulative[position] <= target:
                position += 1
            return candidates[position]
        return candidates[self._rng.below(len(candidates))]

    def _over_limits_truthy(self, i: int, input_tokens: int, now: float) -> bool:
        h = self._health[i]
        limits = self._specs[i][2]
        return (
            _minute_get(h.tokens_minute, now) + input_tokens > limits[3]
            or _minute_get(h.succeeded_minute, now) + 1 > limits[2]
        )

    def _lowest_latency(
        self, candidates: List[int], input_tokens: int, stream: bool, now: float
    ) -> Optional[int]:
        kept: List[Tuple[int, float]] = []
        lowest = math.inf
        for i in candidates:
            if self._over_limits_truthy(i, input_tokens, now):
                continue
            h = self._health[i]
            if stream and h.routing_ttft.samples:
                latency = h.routing_ttft.mean()
            else:
                latency = h.routing_latency.mean()
            lowest = min(lowest, latency)
            kept.append((i, latency))
        if not kept:
            return None
        limit = lowest + self._buffer * lowest
        within = [i for i, latency in kept if latency <= limit]
        return within[self._rng.below(len(within))]

    def _lowest_usage(self, candidates: List[int], input_tokens: int, now: float) -> Optional[int]:
        lowest = _U64_MAX
        kept: List[int] = []
        for i in candidates:
            h = self._health[i]
            limits = self._specs[i][2]
            tokens = _minute_get(h.tokens_minute, now)
            requests = _minute_get(h.started_minute, now)
            if tokens + input_tokens > limits[1] or (requests > 0 and requests + 1 >= limits[0]):
                continue
            if tokens < lowest:
                lowest = tokens
                kept = []
            if tokens == lowest:
                kept.append(i)
        if not kept:
            return None
        return kept[self._rng.below(len(kept))]

    def _lowest_cost(self, candidates: List[int], input_tokens: int, now: float) -> Optional[int]:
        best: Optional[Tuple[float, int, int]] = None
        for i in candidates:
            if self._over_limits_truthy(i, input_tokens, now):
                continue
            first = self._health[i].first_success
            key = (self._specs[i][3], _U64_MAX if first is None else first, i)
            if best is None or key < best:
                best = key
        return None if best is None else best[2]

    @_locked
    def record_start(self, index: int, now: float) -> None:
        h = self._check(index)
        h.picked(now)
        h.in_flight += 1
        _minute_add(h.started_minute, now, 1)

    @staticmethod
    def _finish(h: _Health) -> None:
        h.in_flight = max(h.in_flight - 1, 0)
        h.probe_started = None

    @_locked
    def record_success(
        self,
        index: int,
        now: float,
        latency: float,
        completion_tokens: int,
        total_tokens: int,
        time_to_first_token: Optional[float],
    ) -> None:
        h = self._check(index)
        _finite_non_negative(latency, "latency")
        if time_to_first_token is not None:
            _finite_non_negative(time_to_first_token, "time_to_first_token")
        sequence = self._successes
        self._successes += 1
        self._finish(h)
        h.half_open = False
        h.consecutive_failures = 0
        h.total_successes += 1
        self._window_add(h, now, 0)
        _expiring_increment(h.successes_minute, now, _MINUTE_COUNTER_TTL)
        _minute_add(h.succeeded_minute, now, 1)
        _minute_add(h.tokens_minute, now, total_tokens)
        if h.first_success is None:
            h.first_success = sequence
        normalized = latency / completion_tokens if completion_tokens > 0 else latency
        h.routing_latency.push(normalized)
        h.latencies.push(latency)
        h.latency_ewma = _ewma(h.latency_ewma, latency)
        if time_to_first_token is not None:
            h.routing_ttft.push(time_to_first_token)
            h.ttft_ewma = _ewma(h.ttft_ewma, time_to_first_token)

    @staticmethod
    def _window_add(h: _Health, now: float, which: int) -> None:
        second = math.floor(now)
        window = h.window
        for old in [s for s in window if s <= second - WINDOW_SECONDS]:
            del window[old]
        window.setdefault(second, [0, 0])[which] += 1

    @_locked
    def record_failure(
        self,
        index: int,
        now: float,
        status: int,
        retry_after: Optional[float],
        timeout: bool,
        connection_error: bool,
        latency: Optional[float],
    ) -> bool:
        h = self._check(index)
        if latency is not None:
            _finite_non_negative(latency, "latency")
        if retry_after is not None and math.isnan(retry_after):
            raise ValueError("retry_after must be a finite number >= 0")
        group, _w, _l, _c, own_cooldown, own_fails = self._specs[index]
        single = len(self._groups[group]) == 1
        was_probe = h.state(now) == "half_open"
        self._finish(h)
        h.consecutive_failures += 1
        h.total_failures += 1
        self._window_add(h, now, 1)
        _expiring_increment(h.failures_minute, now, _MINUTE_COUNTER_TTL)
        if timeout:
            h.routing_latency.push(TIMEOUT_PENALTY_SECONDS)
        if latency is not None:
            h.latencies.push(latency)
            h.latency_ewma = _ewma(h.latency_ewma, latency)
        if own_cooldown is not None and own_cooldown >= 0.0:
            duration = own_cooldown
        elif retry_after is not None and retry_after >= 0.0:
            duration = retry_after
        else:
            duration = self._cooldown_time
        if self._circuit_breaker and was_probe and duration > 1e-9:
            self._open(h, now, duration, status, True)
            return True
        if not _cooldown_required(status, connection_error) or abs(duration) <= 1e-9:
            return False
        # The failures counted against `allowed_fails` live as long as the cooldown time of the
        # settings (not a Retry-After), 5 s when that is 0, as LiteLLM keys its counter.
        router_ttl = self._cooldown_time if self._cooldown_time > 0.0 else DEFAULT_COOLDOWN_SECONDS
        if own_fails is not None:
            ttl = own_cooldown if own_cooldown is not None else router_ttl
            cool = not single and _expiring_increment(h.allowed_fails, now, ttl) > own_fails
        elif self._allowed_fails is not None:
            cool = (
                not single
                and _expiring_increment(h.allowed_fails, now, router_ttl) > self._allowed_fails
            )
        else:
            cool = self._failure_rate_says_cool(h, now, status, single)
        if cool:
            self._open(h, now, duration, status, self._circuit_breaker)
        return cool

    @staticmethod
    def _failure_rate_says_cool(h: _Health, now: float, status: int, single: bool) -> bool:
        if status == 402 and single:
            return False
        successes = _expiring_get(h.successes_minute, now)
        failures = _expiring_get(h.failures_minute, now)
        total = successes + failures
        percent = failures / total if total > 0 else 0.0
        if status == 429 and not single:
            return True
        if percent == 1.0 and total >= SINGLE_DEPLOYMENT_TRAFFIC_FAILURE_THRESHOLD:
            return True
        if (
            percent > FAILURE_THRESHOLD_PERCENT
            and total >= FAILURE_THRESHOLD_MINIMUM_REQUESTS
            and not single
        ):
            return True
        return not _should_retry(status)

    @staticmethod
    def _open(h: _Health, now: float, duration: float, status: int, half_open: bool) -> None:
        h.cooldown_until = now + duration
        h.cooldown_status = status
        h.half_open = half_open
        h.probe_started = None
        h.probe_lease = max(duration, DEFAULT_COOLDOWN_SECONDS)

    @_locked
    def record_health_check(
        self,
        index: int,
        now: float,
        healthy: bool,
        status_code: Optional[int] = None,
        latency: Optional[float] = None,
    ) -> None:
        h = self._check(index)
        if latency is not None:
            latency = _finite_non_negative(latency, "latency")
        h.health_check = bool(healthy)
        if healthy:
            h.checks_passed += 1
            h.checks_consecutive_failures = 0
        else:
            h.checks_failed += 1
            h.checks_consecutive_failures += 1
        h.check_status = status_code
        h.check_latency = latency
        h.check_at = now
        if healthy and now >= h.cooldown_until and not h.probing(now):
            h.half_open = False

    @_locked
    def clear_cooldown(self, index: int) -> None:
        h = self._check(index)
        h.cooldown_until = 0.0
        h.half_open = False
        h.probe_started = None
        h.allowed_fails = [0, 0.0]

    @_locked
    def status(self, index: int, now: float) -> Dict[str, Any]:
        h = self._check(index)
        state = h.state(now)
        current = math.floor(now)
        successes = failures = 0
        for second, (ok, failed) in h.window.items():
            if current - WINDOW_SECONDS < second <= current:
                successes += ok
                failures += failed
        return {
            "state": state,
            "cooldown_remaining": max(h.cooldown_until - now, 0.0),
            "cooldown_status_code": (
                h.cooldown_status if state != "healthy" and h.cooldown_status else None
            ),
            "successes": successes,
            "failures": failures,
            "total_successes": h.total_successes,
            "total_failures": h.total_failures,
            "consecutive_failures": h.consecutive_failures,
            "in_flight": h.in_flight,
            "latency_ewma": h.latency_ewma,
            "latency_p50": h.latencies.percentile(0.50),
            "latency_p95": h.latencies.percentile(0.95),
            "latency_p99": h.latencies.percentile(0.99),
            "time_to_first_token_ewma": h.ttft_ewma,
            "requests_this_minute": _minute_get(h.started_minute, now),
            "tokens_this_minute": _minute_get(h.tokens_minute, now),
            "health_check": h.health_check,
            "health_checks_passed": h.checks_passed,
            "health_checks_failed": h.checks_failed,
            "consecutive_health_check_failures": h.checks_consecutive_failures,
            "health_check_status_code": h.check_status,
            "health_check_latency": h.check_latency,
            "health_check_age": None if h.check_at is None else max(now - h.check_at, 0.0),
        }
