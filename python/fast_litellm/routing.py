"""Deployment health and routing for a LiteLLM ``model_list``.

    router = Router(model_list, strategy="latency-based-routing")
    deployment = router.pick("gpt-4o", input_tokens=1200)   # the very dict from model_list
    router.record_start(deployment)
    ...
    router.record_success(deployment, latency=0.84, tokens=1450, completion_tokens=250)
    # or: router.record_failure(deployment, status_code=429, retry_after=20)

``Router`` chooses among the deployments of a model group as LiteLLM's router strategies do
(``simple-shuffle``, ``least-busy``, ``latency-based-routing``, ``usage-based-routing``,
``cost-based-routing``), skipping the ones cooling down by LiteLLM's cooldown rules (the rules are
written out in ``src/health/mod.rs``). ``HealthTracker`` is the same health tracking without the
routing. Both take the time from ``clock`` (``time.monotonic`` by default; a ``ManualClock`` or any
callable returning seconds in tests).

A ``Router`` runs on the native core (feature ``ROUTING``) or on the Python fallback, chosen when
it is built; a ``HealthTracker`` follows feature ``HEALTH``. Both engines give the same answers
(the same seeded random choices included).

Background health checks (``start_health_checks``) run on the native I/O runtime when the engine
is native and the native side can read the clock (``time.monotonic`` or a native
``ManualClock``): a task writes each answer into the tracker with no Python thread and no GIL
(``src/health/probe.rs``). Otherwise a Python thread runs them. A forked child does not inherit
them: they are reported stopped there (``health_checks_status()["stopped_by_fork"]``,
``health_check()``) until started again.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import sys
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from . import _flags, _fork
from ._fallback import routing as _fallback
from .errors import NativeError, NoDeploymentAvailable

__all__ = [
    "STRATEGIES",
    "HealthTracker",
    "NoDeploymentAvailable",
    "Router",
    "health_probe",
]

_native = _flags.native
_routing_state = _flags.feature("ROUTING")
_health_state = _flags.feature("HEALTH")

STRATEGIES = (
    "simple-shuffle",
    "least-busy",
    "latency-based-routing",
    "usage-based-routing",
    "usage-based-routing-v2",
    "cost-based-routing",
    "cost-based",
)

# LiteLLM's DEFAULT_COOLDOWN_TIME_SECONDS.
DEFAULT_COOLDOWN_TIME = 5.0
# LiteLLM's staleness of a health state: DEFAULT_HEALTH_CHECK_INTERVAL (300 s) times
# DEFAULT_HEALTH_CHECK_STALENESS_MULTIPLIER (2).
DEFAULT_HEALTH_CHECK_STALENESS = 600.0
# LiteLLM prices a deployment missing from its cost map at $5 a token, in and out.
_UNKNOWN_PRICE = 5.0


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}")
    number = float(value)
    if math.isnan(number) or number < 0:
        raise ValueError(f"{what} must be a number >= 0, got {value!r}")
    return number


def _finite(value: Any, what: str) -> float:
    number = _number(value, what)
    if math.isinf(number):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return number


# The largest count the native engine holds; the fallback refuses what it would refuse.
_MAX_COUNT = 2**64 - 1


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value <= _MAX_COUNT:
        raise ValueError(f"{what} must be between 0 and 2**64 - 1, got {value}")
    return value


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a dict, not {type(value).__name__}")
    return value


def _limit(sources: Sequence[Mapping[str, Any]], key: str, what: str) -> Tuple[float, float]:
    """A deployment's rpm or tpm limit as usage-based routing reads it (the first source where
    it is not None) and as latency- and cost-based routing read it (the first truthy one)."""
    present: Optional[float] = None
    truthy: Optional[float] = None
    for source in sources:
        value = source.get(key)
        if value is None:
            continue
        number = _number(value, what)
        if present is None:
            present = number
        if truthy is None and number:
            truthy = number
    return (math.inf if present is None else present, math.inf if truthy is None else truthy)


def _price(params: Mapping[str, Any], info: Mapping[str, Any], key: str, index: int) -> float:
    own = params.get(key)
    if own:
        return _finite(own, f"model_list[{index}].litellm_params.{key}")
    # LiteLLM's cost map, when litellm is loaded (importing it here would cost seconds).
    litellm = sys.modules.get("litellm")
    cost_map = getattr(litellm, "model_cost", None) if litellm is not None else None
    if isinstance(cost_map, Mapping):
        for name in (params.get("model"), info.get("base_model")):
            row = cost_map.get(name) if isinstance(name, str) else None
            if isinstance(row, Mapping) and (
                row.get("input_cost_per_token") is not None
                or row.get("output_cost_per_token") is not None
            ):
                value = row.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    return float(value)
                return _UNKNOWN_PRICE
    return _UNKNOWN_PRICE


def _own_cooldown(info: Mapping[str, Any], params: Mapping[str, Any]) -> Optional[float]:
    # LiteLLM's `_first_present(model_info, litellm_params, key="cooldown_time")`: only a number.
    for source in (info, params):
        value = source.get("cooldown_time")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ValueError(f"cooldown_time must be a finite number, got {value}")
            return float(value)
    return None


class _Parsed:
    def __init__(self, model_list: Any) -> None:
        if isinstance(model_list, (str, bytes, Mapping)) or not isinstance(model_list, Sequence):
            raise TypeError(
                f"model_list must be a list of deployments, not {type(model_list).__name__}"
            )
        if not model_list:
            raise ValueError("model_list is empty: a router needs at least one deployment")
        self.deployments: List[Any] = list(model_list)
        self.groups: Dict[str, int] = {}
        self.group_names: List[str] = []
        self.ids: Dict[str, int] = {}
        self.specs: List[Any] = []
        for index, entry in enumerate(self.deployments):
            where = f"model_list[{index}]"
            if not isinstance(entry, Mapping):
                raise TypeError(f"{where} must be a dict, not {type(entry).__name__}")
            name = entry.get("model_name")
            if not isinstance(name, str) or not name:
                raise ValueError(f"{where} needs a 'model_name' (a non-empty str)")
            if not isinstance(entry.get("litellm_params"), Mapping):
                raise ValueError(f"{where} needs 'litellm_params' (a dict)")
            params = entry["litellm_params"]
            info = _mapping(entry.get("model_info"), f"{where}.model_info")
            raw_id = info.get("id")
            if raw_id is None:
                deployment_id = f"{name}-{index}"
            elif isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool):
                deployment_id = str(raw_id)
            else:
                raise TypeError(f"{where}.model_info.id must be a str, not {type(raw_id).__name__}")
            if deployment_id in self.ids:
                raise ValueError(f"{where}: model_info.id {deployment_id!r} appears twice")
            self.ids[deployment_id] = index
            group = self.groups.get(name)
            if group is None:
                group = self.groups[name] = len(self.group_names)
                self.group_names.append(name)
            weights = tuple(
                0.0
                if params.get(key) is None
                else _finite(params[key], f"{where}.litellm_params.{key}")
                for key in ("weight", "rpm", "tpm")
            )
            sources = (entry, params, info)
            rpm = _limit(sources, "rpm", f"{where} rpm")
            tpm = _limit(sources, "tpm", f"{where} tpm")
            cost = _price(params, info, "input_cost_per_token", index) + _price(
                params, info, "output_cost_per_token", index
            )
            own_fails = info.get("allowed_fails")
            if own_fails is not None:
                own_fails = _count(own_fails, f"{where}.model_info.allowed_fails")
            self.specs.append(
                (
                    group,
                    weights,
                    (rpm[0], tpm[0], rpm[1], tpm[1]),
                    cost,
                    _own_cooldown(info, params),
                    own_fails,
                )
            )
        self.index_ids = [""] * len(self.deployments)
        for deployment_id, index in self.ids.items():
            self.index_ids[index] = deployment_id


def _clock_reader(clock: Any) -> Callable[[], float]:
    if clock is None:
        return time.monotonic
    now = getattr(clock, "now", None)
    if callable(now):
        return now  # type: ignore[no-any-return]
    if callable(clock):
        return clock  # type: ignore[no-any-return]
    raise TypeError(
        "clock must be a ManualClock or a zero-argument callable returning seconds, "
        f"not {type(clock).__name__}"
    )


# `_native_clock_of` when the native side cannot read the clock (it would have to call Python).
_NO_NATIVE_CLOCK = object()


def _native_clock_of(clock: Any) -> Any:
    """The clock as the native health checks read it: None for monotonic time, the native
    ``ManualClock`` itself, or ``_NO_NATIVE_CLOCK``."""
    if clock is None or clock is time.monotonic:
        return None
    if _native is not None and isinstance(clock, _native.ManualClock):
        return clock
    return _NO_NATIVE_CLOCK


def _status_code(status_code: Any, exception: Any) -> int:
    """LiteLLM's `cast_exception_status_to_int`: a status that is not one reads as a 500."""
    value = status_code if status_code is not None else getattr(exception, "status_code", None)
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            return 500
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        return 500
    return value


def _retry_after_of(exception: Any) -> Optional[float]:
    """The ``retry-after`` of the response an exception carries, read as LiteLLM's failure
    callback reads it (``router_rust.core.retry_after_seconds``): the headers of the exception,
    else of its ``response``, else its ``litellm_response_headers``; whole seconds or an HTTP
    date; a negative or unreadable value, or none, is no wait. (Not the HTTP client's
    ``parse_retry_after``: that one reads a past date as 0 s, where LiteLLM, and so the
    cooldown, takes none.)"""
    if exception is None:
        return None
    try:
        headers = getattr(exception, "headers", None)
        if not headers:
            headers = getattr(getattr(exception, "response", None), "headers", None)
        if not headers:
            headers = getattr(exception, "litellm_response_headers", None)
        raw = headers.get("retry-after", "") if headers else ""
    except Exception:  # headers that cannot be read say nothing
        return None
    if not isinstance(raw, str):
        return None
    try:
        seconds = float(int(raw))
    except ValueError:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is None:
            return None
        seconds = float(int(email.utils.mktime_tz(parsed) - time.time()))
    return seconds if seconds >= 0 else None


def _is_timeout(exception: Any) -> bool:
    if exception is None:
        return False
    if isinstance(exception, TimeoutError):
        return True
    litellm = sys.modules.get("litellm")
    timeout = getattr(litellm, "Timeout", None) if litellm is not None else None
    return isinstance(timeout, type) and isinstance(exception, timeout)


class HealthTracker:
    """Health of each deployment of a LiteLLM ``model_list``: successes and failures over the
    last minute, latency (moving average and recent percentiles), time to first token, requests
    in flight, and LiteLLM's cooldowns (optionally with a circuit breaker).

    ``allowed_fails``: ``None`` uses LiteLLM's default rules (a 429 or a failure rate over 50%
    of at least 5 requests this minute cools a deployment down; 401/402/404 at once); a number
    switches to LiteLLM's "allowed fails" rule (more failures than that, each within
    ``cooldown_time`` of the last, cool it down). ``cooldown_time`` defaults to LiteLLM's 5 s;
    a deployment's own ``cooldown_time`` (``model_info`` or ``litellm_params``) or the
    ``retry_after`` of a failure takes precedence, as in LiteLLM. ``circuit_breaker=True`` lets
    one probe request through when a cooldown ends and cools the deployment down again if it
    fails (LiteLLM has no such state, so it is off by default).

    A failed active health check (``check_health``, ``start_health_checks``,
    ``record_health_check``) keeps a deployment out of the picks until a check passes or, as
    LiteLLM treats a stale health state, until it is ``health_check_staleness`` seconds old
    (default 600, LiteLLM's; then the deployment's health is unknown and it is picked again).
    Keep the check interval well below it.

    The ``model_list`` is read once, when the tracker is built: a later change to its dicts
    (an rpm, a price) is not seen; build a new one for a new configuration.
    """

    _state = _health_state
    _strategy = "simple-shuffle"
    _lowest_latency_buffer: Any = 0.0

    def __init__(
        self,
        model_list: Sequence[Mapping[str, Any]],
        *,
        allowed_fails: Optional[int] = None,
        cooldown_time: Optional[float] = None,
        circuit_breaker: bool = False,
        seed: Optional[int] = None,
        clock: Any = None,
        health_check_staleness: float = DEFAULT_HEALTH_CHECK_STALENESS,
    ) -> None:
        parsed = _Parsed(model_list)
        if allowed_fails is not None:
            allowed_fails = _count(allowed_fails, "allowed_fails")
        cooldown = (
            DEFAULT_COOLDOWN_TIME
            if cooldown_time is None
            else _finite(cooldown_time, "cooldown_time")
        )
        if not isinstance(circuit_breaker, bool):
            raise TypeError("circuit_breaker must be True or False")
        buffer = _finite(self._lowest_latency_buffer, "lowest_latency_buffer")
        staleness = _finite(health_check_staleness, "health_check_staleness")
        if staleness < 0:
            raise ValueError(f"health_check_staleness must be >= 0, got {staleness}")
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little")
        elif isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, not {type(seed).__name__}")
        self._now = _clock_reader(clock)
        self._deployments = parsed.deployments
        self._groups = parsed.groups
        self._group_names = parsed.group_names
        self._ids = parsed.ids
        self._index_ids = parsed.index_ids
        self._identity = {id(d): i for i, d in enumerate(parsed.deployments)}
        self.allowed_fails = allowed_fails
        self.cooldown_time = cooldown
        self.circuit_breaker = circuit_breaker
        native = _native is not None and self._state.choose()
        engine: Any = _native.Router if native else _fallback.Router
        self._impl = engine(
            self._strategy,
            len(parsed.group_names),
            parsed.specs,
            allowed_fails=allowed_fails,
            cooldown_time=cooldown,
            circuit_breaker=circuit_breaker,
            lowest_latency_buffer=buffer,
            seed=seed & ((1 << 64) - 1),
            health_check_staleness=staleness,
        )
        self.implementation = "native" if native else "fallback"
        self._native_clock = _native_clock_of(clock)
        self._health_client: Any = None
        self._health_lock = _fork.Lock()
        self._health_thread: Optional[Tuple[threading.Thread, threading.Event]] = None
        self._health_finalizer: Optional[weakref.finalize] = None
        self._health_prober: Any = None
        self._health_checks: Optional[Dict[str, Any]] = None

    # ---- references -----------------------------------------------------------------------------

    @property
    def model_list(self) -> List[Any]:
        """The deployments, in the order given (the same dict objects)."""
        return list(self._deployments)

    def _index(self, deployment: Any) -> int:
        """A deployment given as its dict (the one from ``model_list``, or an equal one with
        the same ``model_info.id``) or as its id."""
        index = self._identity.get(id(deployment))
        if index is not None and self._deployments[index] is deployment:
            return index
        if isinstance(deployment, str):
            deployment_id = deployment
        elif isinstance(deployment, Mapping):
            info = deployment.get("model_info")
            raw = info.get("id") if isinstance(info, Mapping) else None
            if raw is None:
                raise ValueError("the deployment is not one of this router's (no model_info.id)")
            deployment_id = str(raw)
        else:
            raise TypeError(
                f"deployment must be a model_list entry or its id, not {type(deployment).__name__}"
            )
        found = self._ids.get(deployment_id)
        if found is None:
            raise ValueError(f"no deployment with id {deployment_id!r}")
        return found

    def _group(self, model_name: Any) -> int:
        group = self._groups.get(model_name)
        if group is None:
            if not isinstance(model_name, str):
                raise TypeError(f"model_name must be a str, not {type(model_name).__name__}")
            known = ", ".join(sorted(self._groups))
            raise ValueError(f"no deployment of model {model_name!r} (model groups: {known})")
        return group

    def _native_fault(self, exc: NativeError) -> None:
        self._state.native_failed(exc)

    # ---- recording ------------------------------------------------------------------------------

    def record_start(self, deployment: Any) -> None:
        """A request was sent to ``deployment`` (in flight until its success or failure)."""
        try:
            self._impl.record_start(self._index(deployment), self._now())
        except NativeError as exc:
            self._native_fault(exc)
            raise

    def record_success(
        self,
        deployment: Any,
        *,
        latency: float,
        tokens: int = 0,
        completion_tokens: int = 0,
        time_to_first_token: Optional[float] = None,
    ) -> None:
        """A request to ``deployment`` succeeded after ``latency`` seconds, using ``tokens``
        tokens in all (for the tokens-per-minute counts); latency routing compares latency per
        ``completion_token`` when it is given, as LiteLLM does."""
        index = self._index(deployment)
        latency = _finite(latency, "latency")
        tokens = _count(tokens, "tokens")
        completion_tokens = _count(completion_tokens, "completion_tokens")
        if time_to_first_token is not None:
            time_to_first_token = _finite(time_to_first_token, "time_to_first_token")
        try:
            self._impl.record_success(
                index, self._now(), latency, completion_tokens, tokens, time_to_first_token
            )
        except NativeError as exc:
            self._native_fault(exc)
            raise

    def record_failure(
        self,
        deployment: Any,
        *,
        status_code: Optional[int] = None,
        exception: Optional[BaseException] = None,
        retry_after: Optional[float] = None,
        latency: Optional[float] = None,
    ) -> bool:
        """A request to ``deployment`` failed, with ``status_code`` (else the exception's
        ``status_code``, else 500) and ``retry_after`` seconds asked by the server (else the
        ``retry-after`` header of the response the exception carries, as LiteLLM's router reads
        it). Returns whether the deployment is now cooling down."""
        index = self._index(deployment)
        status = _status_code(status_code, exception)
        if retry_after is not None:
            retry_after = _finite(retry_after, "retry_after")
        else:
            # LiteLLM's router cools a deployment down for the Retry-After of the failure.
            retry_after = _retry_after_of(exception)
        if latency is not None:
            latency = _finite(latency, "latency")
        connection_error = exception is not None and "APIConnectionError" in str(exception)
        try:
            cooled: bool = self._impl.record_failure(
                index,
                self._now(),
                status,
                retry_after,
                _is_timeout(exception),
                connection_error,
                latency,
            )
        except NativeError as exc:
            self._native_fault(exc)
            raise
        return cooled

    def clear_cooldown(self, deployment: Any) -> None:
        """Ends a deployment's cooldown now (and closes its circuit)."""
        self._impl.clear_cooldown(self._index(deployment))

    # ---- active health checks -------------------------------------------------------------------

    def record_health_check(
        self,
        deployment: Any,
        *,
        healthy: bool,
        status_code: Optional[int] = None,
        latency: Optional[float] = None,
    ) -> None:
        """The answer of an active health check of ``deployment`` (with its HTTP
        ``status_code`` and ``latency`` in seconds, when known): one that failed takes no
        request until a later check passes (as LiteLLM's health-check routing excludes it). A
        passed check also closes a half-open circuit whose cooldown is over. A check is not a
        request: it counts in the ``health_check*`` fields of ``status()`` only."""
        if not isinstance(healthy, bool):
            raise TypeError("healthy must be True or False")
        index = self._index(deployment)
        if status_code is not None:
            if isinstance(status_code, bool) or not isinstance(status_code, int):
                raise TypeError(f"status_code must be an int, not {type(status_code).__name__}")
            if not 0 <= status_code <= 65535:
                raise ValueError(f"status_code must be an HTTP status, got {status_code}")
        if latency is not None:
            latency = _finite(latency, "latency")
        self._impl.record_health_check(index, self._now(), healthy, status_code, latency)

    def _health_check_targets(self, urls: Optional[Mapping[str, str]]) -> List[Tuple[int, str]]:
        targets = []
        if urls is not None:
            if not isinstance(urls, Mapping):
                raise TypeError(f"urls must be a dict of id -> URL, not {type(urls).__name__}")
            for deployment, url in urls.items():
                if not isinstance(url, str):
                    raise TypeError(f"the health-check URL of {deployment!r} must be a str")
                targets.append((self._index(deployment), url))
            return targets
        for index, entry in enumerate(self._deployments):
            info = entry.get("model_info")
            configured = info.get("health_check_url") if isinstance(info, Mapping) else None
            if isinstance(configured, str):
                targets.append((index, configured))
        return targets

    def _native_checks(self) -> bool:
        """Whether the health checks of this tracker run on the native runtime: its engine is
        native and the native side can read its clock without Python (monotonic time or a
        native ``ManualClock``). Any other clock keeps them on a Python thread."""
        return self.implementation == "native" and self._native_clock is not _NO_NATIVE_CLOCK

    def check_health(
        self, urls: Optional[Mapping[str, str]] = None, *, timeout: float = 5.0
    ) -> Dict[str, bool]:
        """One round of active health checks: a GET of each deployment's health-check URL
        (``urls``: ``{id: url}``; by default each deployment's ``model_info.health_check_url``),
        healthy when it answers 2xx or 3xx within ``timeout`` seconds (no retries). The answers
        are recorded (``record_health_check``, with their status and latency) and returned as
        ``{id: healthy}``. On the native engine the checks run at once on the native runtime
        with the GIL released; on the fallback one after the other through
        ``fast_litellm.http.Client``."""
        timeout = _finite(timeout, "timeout")
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        targets = self._health_check_targets(urls)
        if self._native_checks():
            try:
                answers = self._impl.check_health(
                    targets, timeout, self._native_clock, time.monotonic()
                )
            except NativeError as exc:
                self._native_fault(exc)
                raise
            return {
                self._index_ids[index]: healthy
                for (index, _), healthy in zip(targets, answers, strict=True)
            }
        return self._check_targets(targets, timeout)

    def _check_targets(self, targets: List[Tuple[int, str]], timeout: float) -> Dict[str, bool]:
        from .http import Client, RetryConfig

        client = self._health_client
        if client is None:
            client = self._health_client = Client(timeout=timeout, retry=RetryConfig(max_retries=0))
        answers: Dict[str, bool] = {}
        for index, url in targets:
            started = time.perf_counter()
            status: Optional[int] = None
            try:
                # The whole answer within `timeout`, as the native checks' one deadline: a body
                # trickling in (each piece within the read limit) would otherwise hold this
                # check, and the checks after it, for as long as it trickles. The deadline is
                # looked at as each piece arrives, so a check ends at most one read later.
                deadline = started + timeout
                with client.stream("GET", url, timeout=timeout) as response:
                    for _ in response.iter_bytes():
                        if time.perf_counter() > deadline:
                            raise TimeoutError
                if time.perf_counter() <= deadline:
                    status = response.status_code
            except Exception:  # any failure to answer is an unhealthy answer
                pass
            latency = time.perf_counter() - started
            healthy = status is not None and 200 <= status < 400
            self._impl.record_health_check(index, self._now(), healthy, status, latency)
            answers[self._index_ids[index]] = healthy
        return answers

    def start_health_checks(
        self,
        urls: Optional[Mapping[str, str]] = None,
        *,
        interval: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        """Runs ``check_health`` every ``interval`` seconds in the background until
        ``stop_health_checks()`` (the first round at once, each next one ``interval`` after the
        end of the last). On the native engine it is a task of the native runtime (no Python
        thread, no GIL; the checks of a round run at once); otherwise a Python thread. It also
        stops when the tracker is garbage-collected and at interpreter exit.

        A process forked while they run does not inherit them: in the child they are stopped,
        ``health_checks_status()`` says ``stopped_by_fork`` and ``health_check()`` reports it
        (the last answers stay in force, a failure until it goes stale); call
        ``start_health_checks()`` again there."""
        interval = _finite(interval, "interval")
        timeout = _finite(timeout, "timeout")
        if interval <= 0 or timeout <= 0:
            raise ValueError("interval and timeout must be > 0")
        targets = self._health_check_targets(urls)
        with self._health_lock:
            if self._health_running():
                raise RuntimeError("health checks are already running; stop them first")
            self._drop_health_checks()
            rounds = [0]
            if self._native_checks():
                self._health_prober = self._impl.start_health_checks(
                    targets, interval, timeout, self._native_clock, time.monotonic()
                )
                engine = "native"
            else:
                stop = threading.Event()
                # The thread holds the tracker only during a round, so a tracker dropped with
                # its checks running is garbage-collected (as on the native engine), and its
                # collection ends the thread's wait.
                tracker_ref = weakref.ref(self)
                self._health_finalizer = weakref.finalize(self, stop.set)
                self._health_finalizer.atexit = False

                def run() -> None:
                    while not stop.is_set():
                        tracker = tracker_ref()
                        if tracker is None:
                            return
                        try:
                            tracker._check_targets(targets, timeout)
                        except Exception:  # a failing round must not end the checks
                            logging.getLogger("fast_litellm").debug(
                                "health-check round failed", exc_info=True
                            )
                        del tracker
                        rounds[0] += 1
                        stop.wait(interval)

                thread = threading.Thread(
                    target=run, name="fast_litellm-health-checks", daemon=True
                )
                self._health_thread = (thread, stop)
                thread.start()
                engine = "thread"
            self._health_checks = {
                "engine": engine,
                "pid": os.getpid(),
                "interval": interval,
                "timeout": timeout,
                "deployments": [self._index_ids[index] for index, _ in targets],
                "rounds": rounds,
            }
            _checking.add(self)

    def _health_running(self) -> bool:
        if self._health_prober is not None:
            return bool(self._health_prober.running)
        return self._health_thread is not None and self._health_thread[0].is_alive()

    def _drop_health_checks(self) -> Tuple[Any, Any]:
        prober, self._health_prober = self._health_prober, None
        thread, self._health_thread = self._health_thread, None
        finalizer, self._health_finalizer = self._health_finalizer, None
        if finalizer is not None:
            finalizer.detach()  # the checks it would end are being dropped: one per start, not more
        self._health_checks = None
        _checking.discard(self)
        return prober, thread

    def stop_health_checks(self, timeout: Optional[float] = None) -> None:
        """Stops the background health checks. On a Python thread, waits up to ``timeout``
        seconds for a round in progress (by default until it ends); on the native runtime the
        checks in flight are dropped at once. Nothing is recorded after this returns (within
        ``timeout``)."""
        if timeout is not None:
            timeout = _number(timeout, "timeout")
            if math.isinf(timeout):
                timeout = None
        with self._health_lock:
            prober, thread = self._drop_health_checks()
        if prober is not None:
            prober.stop(timeout)
        if thread is not None:
            thread[1].set()
            if thread[0] is not threading.current_thread():
                thread[0].join(timeout)

    def health_checks_status(self) -> Dict[str, Any]:
        """The background health checks: ``running``, ``engine`` (``"native"``: a task of the
        native runtime; ``"thread"``: a Python thread; None when never started or stopped),
        ``rounds`` completed, ``interval``, ``timeout``, the ``deployments`` checked, and
        ``stopped_by_fork`` (True in a child process forked while they ran: they did not come
        along; start them again there)."""
        checks = self._health_checks
        if checks is None:
            return {
                "running": False,
                "engine": None,
                "rounds": 0,
                "interval": None,
                "timeout": None,
                "deployments": [],
                "stopped_by_fork": False,
            }
        prober = self._health_prober
        rounds = prober.rounds if prober is not None else checks["rounds"][0]
        forked = checks["pid"] != os.getpid()
        return {
            "running": not forked and self._health_running(),
            "engine": checks["engine"],
            "rounds": rounds,
            "interval": checks["interval"],
            "timeout": checks["timeout"],
            "deployments": list(checks["deployments"]),
            "stopped_by_fork": forked,
        }

    # ---- health ---------------------------------------------------------------------------------

    def is_healthy(self, deployment: Any) -> bool:
        """Whether a request may be sent to ``deployment`` now (not cooling down, and not
        half-open with its probe already in flight)."""
        return bool(self._impl.is_available(self._index(deployment), self._now()))

    def healthy_deployments(self, model_name: str) -> List[Any]:
        """The deployments of ``model_name`` a request may be sent to now, in list order."""
        indices = self._impl.available(self._group(model_name), self._now())
        return [self._deployments[i] for i in indices]

    def status(self, deployment: Any = None) -> Dict[str, Any]:
        """One deployment's health (``state`` is ``"healthy"``, ``"cooldown"`` or
        ``"half_open"``; ``successes``/``failures`` count the last 60 s; latencies are seconds,
        percentiles over the last 256 requests; ``health_check`` is the last active check's answer,
        None before any), or ``{id: status}`` of every deployment."""
        now = self._now()
        if deployment is None:
            return {self._index_ids[i]: self._status(i, now) for i in range(len(self._ids))}
        return self._status(self._index(deployment), now)

    def _status(self, index: int, now: float) -> Dict[str, Any]:
        status: Dict[str, Any] = {
            "id": self._index_ids[index],
            "model_name": self._deployments[index]["model_name"],
        }
        status.update(self._impl.status(index, now))
        return status


class Router(HealthTracker):
    """Picks a deployment of a model group as LiteLLM's router would, among the healthy ones.

    ``Router(model_list, *, strategy="simple-shuffle", allowed_fails=None, cooldown_time=None,
    circuit_breaker=False, lowest_latency_buffer=0.0, seed=None, clock=None,
    health_check_staleness=600.0)``; the health
    options are ``HealthTracker``'s. ``seed`` makes the random choices repeatable (the same on
    both engines); ``lowest_latency_buffer`` is LiteLLM's ``routing_strategy_args`` option of the
    same name (a fraction of the lowest latency).
    """

    _state = _routing_state

    def __init__(
        self,
        model_list: Sequence[Mapping[str, Any]],
        *,
        strategy: str = "simple-shuffle",
        allowed_fails: Optional[int] = None,
        cooldown_time: Optional[float] = None,
        circuit_breaker: bool = False,
        lowest_latency_buffer: float = 0.0,
        seed: Optional[int] = None,
        clock: Any = None,
        health_check_staleness: float = DEFAULT_HEALTH_CHECK_STALENESS,
    ) -> None:
        if not isinstance(strategy, str):
            raise TypeError(f"strategy must be a str, not {type(strategy).__name__}")
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; strategies: {', '.join(STRATEGIES)}")
        self._strategy = strategy
        self.strategy = strategy
        self._lowest_latency_buffer = lowest_latency_buffer
        super().__init__(
            model_list,
            allowed_fails=allowed_fails,
            cooldown_time=cooldown_time,
            circuit_breaker=circuit_breaker,
            seed=seed,
            clock=clock,
            health_check_staleness=health_check_staleness,
        )

    def pick(self, model_name: str, *, input_tokens: int = 0, stream: bool = False) -> Any:
        """The deployment (the dict from ``model_list``) to send a request of ``input_tokens``
        tokens to; ``stream=True`` makes latency routing compare time to first token.

        Raises ``NoDeploymentAvailable`` (with ``retry_after``) when none may take it now.
        """
        group = self._groups.get(model_name)
        if group is None:
            group = self._group(model_name)
        if input_tokens.__class__ is not int or not 0 <= input_tokens <= _MAX_COUNT:
            input_tokens = _count(input_tokens, "input_tokens")
        try:
            index = self._impl.pick(group, input_tokens, stream is True, self._now())
        except NoDeploymentAvailable as exc:
            raise self._unavailable(model_name, exc.retry_after) from None
        except NativeError as exc:
            self._native_fault(exc)
            raise
        return self._deployments[index]

    def _unavailable(self, model_name: str, retry_after: Optional[float]) -> NoDeploymentAvailable:
        if retry_after is None:
            detail = (
                "none passed its last health check, or each waits for its circuit-breaker probe"
            )
        else:
            detail = f"the soonest comes back in {retry_after:.3f} s"
        return NoDeploymentAvailable(
            f"no deployment of model {model_name!r} is available now "
            f"(cooling down or over its rpm/tpm limits); {detail}",
            retry_after,
            model_name=model_name,
        )


# Trackers whose background health checks were started and not stopped (for `health_check()`).
_checking: "weakref.WeakSet[HealthTracker]" = weakref.WeakSet()


def health_sections() -> Dict[str, Any]:
    """The background health checks of live trackers, for ``health_check()`` (only when some
    were started): each with its engine, rounds and the deployments that failed their last
    check. Checks that should run and do not (stopped by a fork, or a task that ended) degrade
    the report; a deployment failing its checks does not (that is the tracker's news, not a
    fault of this package)."""
    entries = []
    for tracker in list(_checking):
        status = tracker.health_checks_status()
        if status["engine"] is None:
            continue
        now = tracker._now()
        unhealthy = [
            tracker._index_ids[i]
            for i in range(len(tracker._index_ids))
            if tracker._impl.status(i, now)["health_check"] is False
        ]
        entry: Dict[str, Any] = {
            "name": f"{type(tracker).__name__} of {len(tracker._index_ids)} deployments",
            "status": "ok",
            "engine": status["engine"],
            "rounds": status["rounds"],
            "deployments_checked": len(status["deployments"]),
            "unhealthy": unhealthy,
        }
        if status["stopped_by_fork"]:
            entry.update(
                status="degraded",
                reason="stopped: this process was forked while they ran; "
                "call start_health_checks() again here",
            )
        elif not status["running"]:
            entry.update(status="degraded", reason="the health checks ended on their own")
        entries.append(entry)
    return {"health_checks": entries} if entries else {}


def health_probe() -> Optional[str]:
    """Exercises the native router on a manual clock; None when every answer is the known one."""
    if _native is None:
        return "native module unavailable"
    model_list = [
        {"model_name": "m", "litellm_params": {"model": "a"}, "model_info": {"id": "a"}},
        {"model_name": "m", "litellm_params": {"model": "b"}, "model_info": {"id": "b"}},
    ]
    now = [0.0]
    router = _native.Router(
        "least-busy",
        1,
        _Parsed(model_list).specs,
        allowed_fails=None,
        cooldown_time=DEFAULT_COOLDOWN_TIME,
        circuit_breaker=False,
        lowest_latency_buffer=0.0,
        seed=0,
        health_check_staleness=DEFAULT_HEALTH_CHECK_STALENESS,
    )
    router.record_start(0, now[0])
    if router.pick(0, 0, False, now[0]) != 1:
        return "least-busy did not pick the idle deployment"
    if not router.record_failure(1, now[0], 401, None, False, False, None):
        return "a 401 did not cool the deployment down"
    if router.pick(0, 0, False, 4.0) != 0:
        return "a deployment cooling down was picked"
    if router.pick(0, 0, False, 5.0) not in (0, 1) or not router.is_available(1, 5.0):
        return "the cooldown did not end after its 5 s"
    return None
