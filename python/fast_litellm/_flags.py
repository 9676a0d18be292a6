"""Feature flags: which path (native Rust or the Python fallback) each feature takes.

Resolution order, for each feature: ``configure(...)`` at run time, then the environment, then the
default. The environment is read once, at import; the hot path reads one precomputed attribute
(``FeatureState.mode``) and never looks at ``os.environ``.

Environment variables (read at import):

- ``FAST_LITELLM_DISABLE_RUST=1``: every feature runs on the fallback.
- ``FAST_LITELLM_RUST_<FEATURE>=true|false``: the native path of one feature on or off.
- ``FAST_LITELLM_<FEATURE>_ROLLOUT=0..100``: the percentage (a whole number) of calls that take
  the native path (deterministic per key where the call has one, evenly spread otherwise).
- ``FAST_LITELLM_MAX_CONSECUTIVE_ERRORS=N``: after N native failures in a row a feature switches
  itself to the fallback until ``reset_errors()`` (default 5; 0 never switches).

Features: ``TOKEN_COUNTING``, ``RATE_LIMITING``, ``CONNECTION_POOL``, ``ROUTING`` (``Router``),
``HEALTH`` (``HealthTracker``), ``BUDGETS`` (``BudgetTracker``), ``COST`` (the price table),
``MONITORING``, ``CACHE`` (a feature is listed here once it is built).
A variable naming any other feature is reported once, with a ``RuntimeWarning``.

Dispatch lives here too, so every feature module follows the same rules:

- ``FeatureState.choose(key)``: whether this call (or a stateful object built now) takes the
  native path: the flag, the rollout and a tripped state decide.
- ``FeatureState.run(sides, method, *args)``: a pure call (counting) runs native first; a fault
  of the native code (``NativeError``) is counted and the call re-run on the fallback.
- ``FeatureState.native_failed(exc)``: records a native fault (a call with side effects records it
  and raises, it is never re-run).

Monitoring (``MONITORING``): every call is counted per operation and path. With the native
registry (the default), native calls time themselves inside Rust and the Python side records only
what it ran itself (fallback calls, HTTP requests) through ``record_call``; with the fallback
registry, native self-timing is off and Python times every call, native ones included (``fast``
is then false for every feature, so the inline fast paths step aside for ``run``).

Only ``NativeError`` is a native fault. Errors of the caller's input (``TypeError``,
``ValueError``) and exceptions raised by the caller's own objects (a generator that raises, a
``str`` subclass) propagate unchanged and are never counted.
"""

from __future__ import annotations

import os
import sys
import warnings
import zlib
from time import perf_counter_ns
from typing import Any, Callable, Dict, Optional

from . import _fork
from ._fallback import monitoring as _fallback_monitoring
from .errors import FallbackNeeded, NativeError

__all__ = [
    "FEATURES",
    "FeatureState",
    "configure",
    "feature",
    "get_feature_status",
    "litellm_patch_status",
    "native",
    "native_import_error",
    "record_call",
    "reset_errors",
    "timed_call",
    "timed_method",
    "version",
]

# The features that exist; one that is planned joins this list when it is built.
FEATURES = (
    "TOKEN_COUNTING",
    "RATE_LIMITING",
    "CONNECTION_POOL",
    "ROUTING",
    "HEALTH",
    "BUDGETS",
    "COST",
    "MONITORING",
    "CACHE",
)

# Where measurement showed no gain the default would be False; every feature built so far is
# faster on the native path (see BENCHMARKS.md).
_DEFAULT_ENABLED = {name: True for name in FEATURES}
_DEFAULT_MAX_CONSECUTIVE_ERRORS = 5

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

# Dispatch modes, precomputed so the per-call check is one attribute read and a comparison.
FALLBACK = 0
NATIVE = 1
PARTIAL = 2

try:  # The extension failing to load is not an error: everything runs on the fallback.
    from . import _native as native  # type: ignore[attr-defined]

    native_import_error: Optional[str] = None
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    native = None  # type: ignore[assignment]
    if isinstance(exc, ModuleNotFoundError) and exc.name == f"{__package__}._native":
        native_import_error = (
            f"the native module {exc.name} is not installed in {os.path.dirname(__file__)} "
            "(a source checkout that was never built, or a broken install: reinstall the package)"
        )
    else:
        native_import_error = f"{type(exc).__name__}: {exc}"

if native is not None:
    # Cargo.toml is the one source of the version; the native module carries it.
    version: str = native.__version__
else:  # pragma: no cover - only without the extension (importlib.metadata costs ~30 ms)
    try:
        from importlib.metadata import version as _distribution_version

        version = _distribution_version("fast-litellm")
    except Exception:
        version = "0+unknown"


def _parse_bool(variable: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{variable}={raw!r}: expected one of true/false/1/0/yes/no/on/off")


def _rollout_percent(value: float, shown: str) -> int:
    """A rollout is a whole percentage: 0.5 could mean half the calls or half a percent, so it
    is refused rather than guessed."""
    if not 0 <= value <= 100:
        raise ValueError(f"{shown}: expected a whole percentage from 0 to 100")
    if value != int(value):
        raise ValueError(
            f"{shown}: expected a whole percentage from 0 to 100 (write 50 for half the calls; "
            "fractions of a percent are not supported)"
        )
    return int(value)


def _parse_rollout(variable: str, raw: str) -> int:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError(f"{variable}={raw!r}: expected a whole percentage from 0 to 100") from None
    return _rollout_percent(value, f"{variable}={raw!r}")


def _parse_count(variable: str, raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(f"{variable}={raw!r}: expected a whole number >= 0") from None
    if value < 0:
        raise ValueError(f"{variable}={raw!r}: expected a whole number >= 0")
    return value


class FeatureState:
    """The resolved flag of one feature plus its error counters.

    ``mode`` is what dispatch reads on every call; it is recomputed whenever an input changes.
    ``fast`` is true when every call goes native and no failure streak is open, so the hottest
    paths need one attribute read and nothing else.
    Counters are updated under a lock only on the rare paths (failures, fallback decisions), so
    the native hot path takes no lock.
    """

    __slots__ = (
        "name",
        "enabled",
        "rollout",
        "source",
        "mode",
        "fast",
        "errors",
        "consecutive_errors",
        "tripped",
        "last_error",
        "fallback_calls",
        "operations",
        "_spread",
        "_lock",
    )

    def __init__(self, name: str, enabled: bool, rollout: int, source: str) -> None:
        self.name = name
        self.enabled = enabled
        self.rollout = rollout
        self.source = source
        self.errors = 0
        self.consecutive_errors = 0
        self.tripped = False
        self.last_error: Optional[str] = None
        self.fallback_calls = 0
        # method name given to `run` -> the operation name its calls are recorded under
        self.operations: Dict[str, str] = {}
        self._spread = 0
        self._lock = _fork.Lock()
        self.mode = FALLBACK
        self.fast = False
        self._recompute()

    def _recompute(self) -> None:
        if native is None or not self.enabled or self.tripped or self.rollout <= 0:
            self.mode = FALLBACK
        elif self.rollout >= 100:
            self.mode = NATIVE
        else:
            self.mode = PARTIAL
        self.fast = self.mode == NATIVE and self.consecutive_errors == 0 and not timing.python
        if self.name == "MONITORING":
            _monitoring_changed(self.mode != FALLBACK)

    def take_native(self, key: Optional[str] = None) -> bool:
        """For ``mode == PARTIAL``: whether this call takes the native path.

        With a key the answer is a stable hash of the key, so one key always takes the same path;
        without one, calls are spread evenly (exactly ``rollout`` of every 100 calls).
        """
        if key is not None:
            return zlib.crc32(key.encode("utf-8", "surrogatepass")) % 100 < self.rollout
        with self._lock:
            slot = self._spread
            self._spread = (slot + 1) % 100
        # Spread the native calls over the cycle instead of bunching them at its start.
        return (slot * self.rollout) % 100 < self.rollout

    def record_failure(self, exc: BaseException, max_consecutive: int) -> None:
        with self._lock:
            self.errors += 1
            self.consecutive_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            if max_consecutive and self.consecutive_errors >= max_consecutive:
                self.tripped = True
            self._recompute()

    def record_success(self) -> None:
        # Called only after a failure streak has started (see dispatch helpers), not per call.
        with self._lock:
            self.consecutive_errors = 0
            self._recompute()

    # ---- dispatch: the one place that decides and records -----------------------------------

    def choose(self, key: Optional[str] = None) -> bool:
        """Whether this call, or a stateful object built now, takes the native path.

        A stateful object (a limiter) asks once, when it is built, and keeps its answer for its
        life; a pure call asks every time. A fallback answer is counted in ``fallback_calls``.
        """
        mode = self.mode
        if mode == NATIVE or (mode == PARTIAL and self.take_native(key)):
            return True
        self.fallback_calls += 1
        return False

    def native_failed(self, exc: BaseException) -> None:
        """Records a fault of the native code (after enough in a row, the feature switches
        itself to the fallback)."""
        self.record_failure(exc, settings.max_consecutive_errors)

    def run(self, sides: Callable[[bool], Any], method: str, *args: Any, **kwargs: Any) -> Any:
        """A pure call, native first: ``sides(True)`` is the native object and ``sides(False)``
        the fallback one; ``method`` is called on the chosen one with ``args``.

        A ``NativeError`` is counted and the same call re-run on the fallback (a pure call has
        no side effect to repeat); so is a ``FallbackNeeded`` (an input only the fallback answers
        exactly), uncounted. Every other exception, the caller's input errors and whatever
        the caller's own objects raise, propagates unchanged and is not counted.

        The call is recorded under ``operations.get(method, method)``: native calls time
        themselves in Rust, except while Python times every call (see the module notes).
        """
        # `fast` first: on the common path (all native, no failure streak, native timing) this
        # is one attribute read instead of a call.
        if self.fast:
            try:
                return getattr(sides(True), method)(*args, **kwargs)
            except NativeError as exc:
                self.native_failed(exc)
                self.fallback_calls += 1
            except FallbackNeeded:
                # An input only the fallback answers exactly: no fault.
                pass
        elif self.choose():
            try:
                if timing.python:
                    operation = self.operations.get(method, method)
                    result = timed_call(
                        operation, "native", getattr(sides(True), method), *args, **kwargs
                    )
                else:
                    result = getattr(sides(True), method)(*args, **kwargs)
            except NativeError as exc:
                self.native_failed(exc)
                self.fallback_calls += 1
            except FallbackNeeded:
                pass
            else:
                if self.consecutive_errors:
                    self.record_success()
                return result
        operation = self.operations.get(method, method)
        return timed_call(operation, "fallback", getattr(sides(False), method), *args, **kwargs)

    def status(self) -> Dict[str, Any]:
        return {
            "rust_enabled": self.enabled,
            "native_available": native is not None,
            "rollout_percent": self.rollout,
            "active_path": {FALLBACK: "fallback", NATIVE: "native", PARTIAL: "partial"}[self.mode],
            "source": self.source,
            "errors": self.errors,
            "consecutive_errors": self.consecutive_errors,
            "switched_to_fallback": self.tripped,
            "last_error": self.last_error,
            "fallback_calls": self.fallback_calls,
        }


class _Settings:
    max_consecutive_errors = _DEFAULT_MAX_CONSECUTIVE_ERRORS


# ---- monitoring: where calls are recorded ------------------------------------------------------


class _Timing:
    """``python``: Python times every call (the MONITORING feature on its fallback registry);
    otherwise native calls time themselves and ``record_call`` goes to the native registry."""

    python = native is None


timing = _Timing()
fallback_registry = _fallback_monitoring.Registry()
# A forked child counts from zero (the native registry is replaced by `_fork`'s native hook).
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=fallback_registry.after_fork_in_child)


def record_call(operation: str, path: str, latency_ns: int, outcome: str = "ok") -> None:
    """Records one call timed in Python into the registry in use."""
    if timing.python:
        fallback_registry.record(operation, path, latency_ns, outcome)
    else:
        native.metrics_record(operation, path, latency_ns, outcome)


def timed_call(
    operation: str, path: str, function: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """``function(*args, **kwargs)``, timed and recorded; an exception counts as an error."""
    started = perf_counter_ns()
    try:
        result = function(*args, **kwargs)
    except BaseException:
        record_call(operation, path, perf_counter_ns() - started, "error")
        raise
    record_call(operation, path, perf_counter_ns() - started)
    return result


def timed_method(
    function: Callable[..., Any],
    operation: str,
    path: str,
    allowed: Optional[Callable[[Any], bool]] = None,
) -> Callable[..., Any]:
    """``function`` wrapped to record each call (for objects whose methods are handed out as they
    are, such as a limiter's ``check``); with ``allowed``, a result it says no to is recorded as
    refused."""

    native_path = path == "native"

    def call(*args: Any, **kwargs: Any) -> Any:
        if native_path and not timing.python:
            return function(*args, **kwargs)  # native code records itself again
        started = perf_counter_ns()
        try:
            result = function(*args, **kwargs)
        except BaseException:
            record_call(operation, path, perf_counter_ns() - started, "error")
            raise
        refused = allowed is not None and not allowed(result)
        record_call(operation, path, perf_counter_ns() - started, "refused" if refused else "ok")
        return result

    call.__doc__ = function.__doc__
    return call


def _monitoring_changed(native_registry: bool) -> None:
    """The MONITORING feature changed path: switch native self-timing and every feature's
    ``fast`` (native calls must pass through Python to be timed on the fallback registry)."""
    python = not native_registry or native is None
    if python == timing.python:
        return
    timing.python = python
    if native is not None:
        native.metrics_self_timing(not python)
    for state in _states.values():
        if state.name != "MONITORING":
            state._recompute()


settings = _Settings()
_states: Dict[str, FeatureState] = {}


def _load_from_environment(environ: "os._Environ[str] | Dict[str, str]") -> None:
    disable_all = _parse_bool(
        "FAST_LITELLM_DISABLE_RUST", environ.get("FAST_LITELLM_DISABLE_RUST", "false")
    )
    raw_max = environ.get("FAST_LITELLM_MAX_CONSECUTIVE_ERRORS")
    settings.max_consecutive_errors = (
        _parse_count("FAST_LITELLM_MAX_CONSECUTIVE_ERRORS", raw_max)
        if raw_max is not None
        else _DEFAULT_MAX_CONSECUTIVE_ERRORS
    )
    for name in FEATURES:
        enabled, source = _DEFAULT_ENABLED[name], "default"
        variable = f"FAST_LITELLM_RUST_{name}"
        if variable in environ:
            enabled, source = _parse_bool(variable, environ[variable]), "env"
        if disable_all:
            enabled, source = False, "env:FAST_LITELLM_DISABLE_RUST"
        rollout_variable = f"FAST_LITELLM_{name}_ROLLOUT"
        rollout = 100
        if rollout_variable in environ:
            rollout = _parse_rollout(rollout_variable, environ[rollout_variable])
            source = "env" if source == "default" else source
        state = _states.get(name)
        if state is None:
            _states[name] = FeatureState(name, enabled, rollout, source)
        else:
            state.enabled, state.rollout, state.source = enabled, rollout, source
            state._recompute()
    _warn_unknown_features(environ)


_warned: "set[str]" = set()


def _warn_unknown_features(environ: "os._Environ[str] | Dict[str, str]") -> None:
    """A flag for a feature that does not exist is most likely a typo, or a feature not built
    yet: either way it has no effect, which is worth saying once rather than ignoring."""
    for variable in environ:
        if variable.startswith("FAST_LITELLM_RUST_"):
            name = variable[len("FAST_LITELLM_RUST_") :]
        elif variable.startswith("FAST_LITELLM_") and variable.endswith("_ROLLOUT"):
            name = variable[len("FAST_LITELLM_") : -len("_ROLLOUT")]
        else:
            continue
        if name in FEATURES or variable in _warned:
            continue
        _warned.add(variable)
        warnings.warn(
            f"{variable} has no effect: {name!r} is not a feature of fast_litellm "
            f"(features: {', '.join(FEATURES)})",
            RuntimeWarning,
            stacklevel=2,
        )


_load_from_environment(os.environ)


def _feature_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"feature must be a str, not {type(name).__name__}")
    key = name.strip().upper().replace("-", "_")
    if key not in _states:
        valid = ", ".join(n.lower() for n in FEATURES)
        raise ValueError(f"unknown feature {name!r}; valid features: {valid}")
    return key


def feature(name: str) -> FeatureState:
    """The state object of one feature (dispatch code keeps a reference to it)."""
    return _states[_feature_name(name)]


def configure(
    feature: Optional[str] = None,
    *,
    rust: Optional[bool] = None,
    rollout: Optional[float] = None,
    max_consecutive_errors: Optional[int] = None,
    reload_environment: bool = False,
) -> None:
    """Change flags at run time.

    ``configure(rust=False)`` turns the native path off for every feature;
    ``configure("token_counting", rollout=25)`` sends a quarter of the counting calls to it;
    ``configure(max_consecutive_errors=10)`` changes when a failing feature switches itself off;
    ``configure(reload_environment=True)`` reads the ``FAST_LITELLM_*`` variables again.
    """
    if reload_environment:
        _load_from_environment(os.environ)
    if rust is not None and not isinstance(rust, bool):
        raise TypeError(f"rust must be True, False or None, not {type(rust).__name__}")
    if rollout is not None:
        if isinstance(rollout, bool) or not isinstance(rollout, (int, float)):
            raise TypeError(f"rollout must be a number from 0 to 100, not {type(rollout).__name__}")
        rollout = _rollout_percent(rollout, f"rollout={rollout!r}")
    if max_consecutive_errors is not None:
        if isinstance(max_consecutive_errors, bool) or not isinstance(max_consecutive_errors, int):
            raise TypeError("max_consecutive_errors must be an int >= 0")
        if max_consecutive_errors < 0:
            raise ValueError(f"max_consecutive_errors must be >= 0, got {max_consecutive_errors}")
        settings.max_consecutive_errors = max_consecutive_errors
    targets = [_states[_feature_name(feature)]] if feature is not None else list(_states.values())
    for state in targets:
        if rust is not None:
            state.enabled = rust
            state.source = "configure"
        if rollout is not None:
            state.rollout = rollout
            state.source = "configure"
        state._recompute()


def reset_errors(feature: Optional[str] = None) -> None:
    """Clear error counters and switch features that turned themselves off back on."""
    targets = [_states[_feature_name(feature)]] if feature is not None else list(_states.values())
    for state in targets:
        with state._lock:
            state.errors = 0
            state.consecutive_errors = 0
            state.tripped = False
            state.last_error = None
            state._recompute()


def get_feature_status() -> Dict[str, Any]:
    """Every feature's resolved flag, the path its calls take, and its error counters."""
    return {
        "native_available": native is not None,
        "native_import_error": native_import_error,
        "max_consecutive_errors": settings.max_consecutive_errors,
        "features": {name.lower(): state.status() for name, state in _states.items()},
        "litellm_patch": litellm_patch_status(),
    }


def litellm_patch_status() -> Dict[str, Any]:
    """``litellm_patch.patch_status()`` once that module is loaded (it is not imported here:
    nothing can be patched before it is)."""
    module = sys.modules.get(f"{__package__}.litellm_patch")
    if module is None:
        return {"patched": False}
    status: Dict[str, Any] = module.patch_status()
    return status
