"""Performance monitoring: calls, errors and latency percentiles of every public operation.

Every operation of the package is recorded per path (``native`` or ``fallback``): token counts,
rate-limit checks, HTTP requests, cache lookups. ``get_performance_stats()`` reports them for
the process lifetime and for the recent window (the last 50 to 60 seconds, in 10-second slots);
``prometheus_metrics()`` gives them in the Prometheus text format; ``get_recommendations()``
turns them into advice, each piece with the numbers behind it.

Where the numbers come from (feature ``MONITORING``): on the native path a registry in Rust
(``src/metrics``) that native operations record into themselves, without a Python frame; the
hottest of them (a token count, a rate-limit check, a cache lookup) count every call but time
one call in ``latency_sample_every`` (default 32), which keeps the cost of monitoring a
rate-limit check to a few nanoseconds (see ``src/metrics/mod.rs`` and the README). On the
fallback path a Python registry with the same bucketing, which times every call.

Latencies are kept in histograms with two significant digits: a percentile is within 1% of the
value recorded.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Dict, List, Optional, Tuple

from . import _flags
from ._fallback import monitoring as _fallback

__all__ = [
    "get_performance_stats",
    "get_recommendations",
    "health_probe",
    "prometheus_metrics",
    "record",
    "reset_stats",
    "set_latency_sampling",
]

_state = _flags.feature("MONITORING")
_native = _flags.native

WINDOW_SECONDS = _fallback.SLOT_NS * _fallback.WINDOW_SLOTS // 1_000_000_000
_PERIOD_KEYS = ("calls", "errors", "refused")


def _registry_name() -> str:
    return "fallback" if _flags.timing.python else "native"


def _snapshot() -> List[Tuple[str, str, Dict[str, Any], Dict[str, Any]]]:
    if _flags.timing.python:
        return _flags.fallback_registry.snapshot()
    assert _native is not None
    return list(_native.metrics_snapshot())


def record(
    operation: str,
    latency_seconds: float,
    *,
    path: str = "native",
    outcome: str = "ok",
) -> None:
    """Records one call of ``operation`` (your own, or one of ours timed elsewhere) that took
    ``latency_seconds``; ``outcome`` is ``"ok"``, ``"error"`` or ``"refused"``."""
    if not isinstance(operation, str):
        raise TypeError(f"operation must be a str, not {type(operation).__name__}")
    if isinstance(latency_seconds, bool) or not isinstance(latency_seconds, (int, float)):
        raise TypeError(f"latency_seconds must be a number, not {type(latency_seconds).__name__}")
    if not math.isfinite(latency_seconds) or latency_seconds < 0:
        raise ValueError(f"latency_seconds must be a finite number >= 0, got {latency_seconds!r}")
    if path not in _fallback.PATHS:
        raise ValueError(f"path must be 'native' or 'fallback', not {path!r}")
    if outcome not in _fallback.OUTCOMES:
        raise ValueError(f"outcome must be 'ok', 'error' or 'refused', not {outcome!r}")
    nanoseconds = latency_seconds * 1e9  # may be infinite for a huge finite latency
    latency_ns = (
        _fallback.MAX_LATENCY_NS if nanoseconds >= _fallback.MAX_LATENCY_NS else int(nanoseconds)
    )
    _flags.record_call(operation, path, latency_ns, outcome)


def reset_stats() -> None:
    """Clears every counter and histogram (of both registries)."""
    if _native is not None:
        _native.metrics_reset()
    _flags.fallback_registry.reset()


def set_latency_sampling(every: int) -> int:
    """Times one call in ``every`` of the hot native operations (1: every call); returns the
    previous setting. Counts stay exact whatever the setting."""
    if isinstance(every, bool) or not isinstance(every, int):
        raise TypeError(f"every must be an int, not {type(every).__name__}")
    if not 1 <= every <= 2**32 - 1:
        raise ValueError(f"every must be between 1 and 2**32 - 1, got {every}")
    if _native is None:
        return 1
    return int(_native.metrics_sample_every(every))


def _use_clock(clock: Any) -> None:
    """Window time from a ``ManualClock`` (tests): the native one for the native registry, any
    clock with ``now_ns()`` for the fallback one; None goes back to the monotonic clock."""
    _flags.fallback_registry.use_clock(clock)
    if _native is not None and (clock is None or isinstance(clock, _native.ManualClock)):
        _native.metrics_use_clock(clock)


# ---- get_performance_stats -----------------------------------------------------------------------


def _period(summary: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "calls": summary["calls"],
        "errors": summary["errors"],
        "refused": summary["refused"],
        "latency_samples": summary["samples"],
        "mean_us": summary["mean_ns"] / 1000,
        "p50_us": summary["p50_ns"] / 1000,
        "p95_us": summary["p95_ns"] / 1000,
        "p99_us": summary["p99_ns"] / 1000,
        "max_us": summary["max_ns"] / 1000,
    }


_EMPTY = _period(
    {
        k: 0
        for k in ("calls", "errors", "refused", "samples", "p50_ns", "p95_ns", "p99_ns", "max_ns")
    }
    | {"mean_ns": 0.0}
)


def get_performance_stats() -> Dict[str, Any]:
    """Per operation, for the process lifetime and the recent window (``recent``): ``calls``,
    ``native_calls``, ``fallback_calls``, ``errors`` (calls that raised), ``refused`` (rate-limit
    denials, HTTP 429 answers), ``latency_samples`` and ``mean_us``/``p50_us``/``p95_us``/
    ``p99_us``/``max_us``; the same per path under ``native`` and ``fallback``."""
    rows: Dict[str, Dict[str, Tuple[Dict[str, Any], Dict[str, Any]]]] = {}
    for name, scope, lifetime, window in _snapshot():
        rows.setdefault(name, {})[scope] = (lifetime, window)
    operations: Dict[str, Any] = {}
    for name in sorted(rows):
        scopes = rows[name]
        entry: Dict[str, Any] = {}
        for index, key in ((0, None), (1, "recent")):
            overall = _period(scopes["all"][index]) if "all" in scopes else dict(_EMPTY)
            paths = {
                path: _period(scopes[path][index]) if path in scopes else dict(_EMPTY)
                for path in _fallback.PATHS
            }
            block = {
                "calls": overall["calls"],
                "native_calls": paths["native"]["calls"],
                "fallback_calls": paths["fallback"]["calls"],
                **{k: v for k, v in overall.items() if k != "calls"},
                **paths,
            }
            if key is None:
                entry.update(block)
            else:
                entry[key] = block
        operations[name] = entry
    return {
        "registry": _registry_name(),
        "window_seconds": WINDOW_SECONDS,
        "latency_sample_every": _sample_every(),
        "operations": operations,
    }


def _sample_every() -> int:
    if _native is None or _flags.timing.python:
        return 1
    return int(_native.metrics_sample_every())


# ---- prometheus_metrics ---------------------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def prometheus_metrics() -> str:
    """Every counter in the Prometheus text exposition format (version 0.0.4): calls, errors and
    refusals per operation and path (counters), latency per operation and path (a summary with
    the 0.5/0.95/0.99 quantiles, in seconds), the state of each feature, and the HTTP pools when
    a client exists."""
    stats = get_performance_stats()["operations"]
    lines: List[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    for metric, key, help_text in (
        (
            "fast_litellm_calls_total",
            "calls",
            "Calls of each operation, by the path that answered.",
        ),
        ("fast_litellm_errors_total", "errors", "Calls that raised, by operation and path."),
        (
            "fast_litellm_refused_total",
            "refused",
            "Calls refused for capacity (rate-limit denials, HTTP 429), by operation and path.",
        ),
    ):
        family(metric, "counter", help_text)
        for name, entry in stats.items():
            for path in _fallback.PATHS:
                if entry[path]["calls"]:
                    lines.append(f"{metric}{_labels(operation=name, path=path)} {entry[path][key]}")
    family(
        "fast_litellm_latency_seconds",
        "summary",
        "Latency of each operation by path (hot native operations are sampled).",
    )
    for name, entry in stats.items():
        for path in _fallback.PATHS:
            period = entry[path]
            if not period["latency_samples"]:
                continue
            for quantile, key in (("0.5", "p50_us"), ("0.95", "p95_us"), ("0.99", "p99_us")):
                labels = _labels(operation=name, path=path, quantile=quantile)
                lines.append(f"fast_litellm_latency_seconds{labels} {_number(period[key] / 1e6)}")
            labels = _labels(operation=name, path=path)
            total = period["mean_us"] * period["latency_samples"] / 1e6
            lines.append(f"fast_litellm_latency_seconds_sum{labels} {_number(total)}")
            lines.append(f"fast_litellm_latency_seconds_count{labels} {period['latency_samples']}")

    status = _flags.get_feature_status()
    family("fast_litellm_native_available", "gauge", "1 when the native extension is loaded.")
    lines.append(f"fast_litellm_native_available {_number(bool(status['native_available']))}")
    features = status["features"]
    family(
        "fast_litellm_feature_native",
        "gauge",
        "Share of each feature's calls sent to the native path (0 to 1).",
    )
    for feature, info in features.items():
        share = 0.0 if info["active_path"] == "fallback" else info["rollout_percent"] / 100
        lines.append(f"fast_litellm_feature_native{_labels(feature=feature)} {_number(share)}")
    family(
        "fast_litellm_feature_switched_to_fallback",
        "gauge",
        "1 when a feature switched itself to the fallback after native failures.",
    )
    for feature, info in features.items():
        value = _number(bool(info["switched_to_fallback"]))
        lines.append(f"fast_litellm_feature_switched_to_fallback{_labels(feature=feature)} {value}")
    family("fast_litellm_feature_native_errors_total", "counter", "Native failures per feature.")
    for feature, info in features.items():
        lines.append(
            f"fast_litellm_feature_native_errors_total{_labels(feature=feature)} {info['errors']}"
        )

    pools = _pool_stats()
    if pools is not None:
        family("fast_litellm_http_connections", "gauge", "Open HTTP connections by state.")
        for state in ("active", "idle"):
            value = pools.get(f"{state}_connections", 0)
            lines.append(f"fast_litellm_http_connections{_labels(state=state)} {value}")
        family("fast_litellm_http_in_flight", "gauge", "HTTP requests in flight.")
        lines.append(f"fast_litellm_http_in_flight {pools.get('in_flight', 0)}")
        for key, help_text in (
            ("requests", "HTTP requests sent by every pool."),
            ("retries", "HTTP requests retried."),
            ("connections_opened", "HTTP connections opened."),
            ("connections_reused", "HTTP requests that reused a connection."),
        ):
            metric = f"fast_litellm_http_{key}_total"
            family(metric, "counter", help_text)
            lines.append(f"{metric} {pools.get(key, 0)}")
        family("fast_litellm_http_errors_total", "counter", "HTTP failures by kind.")
        for kind, count in sorted(pools.get("errors", {}).items()):
            lines.append(f"fast_litellm_http_errors_total{_labels(kind=kind)} {count}")
    return "\n".join(lines) + "\n"


def _pool_stats() -> Optional[Dict[str, Any]]:
    """The HTTP pools' statistics when the HTTP module is in use (never imported for this)."""
    http = sys.modules.get(f"{__package__}.http")
    if http is None:
        return None
    stats: Dict[str, Any] = http.get_connection_pool_stats()
    if not sum(stats.get("clients", {}).values()):
        return None
    return stats


# ---- get_recommendations -------------------------------------------------------------------------

# Which feature flag decides the path of each operation.
_FEATURE_OF = {
    "count_tokens": "token_counting",
    "count_tokens_batch": "token_counting",
    "count_message_tokens": "token_counting",
    "count_request_tokens": "token_counting",
    "rate_limit_check": "rate_limiting",
    "redis_rate_limit_check": "rate_limiting",
    "http_request": "connection_pool",
    "http_stream": "connection_pool",
    "cache_get": "cache",
    "cache_set": "cache",
    "cache_key": "cache",
}
# Below this many calls (or samples) a rate or a comparison says nothing.
MIN_CALLS = 20
ERROR_RATE = 0.05
THROTTLED_RATE = 0.05
DENIED_RATE = 0.5
SLOWER_BY = 1.25
SLOW_REDIS_P95_US = 5_000.0
LOW_HIT_RATE = 0.1
MIN_LOOKUPS = 100


def get_recommendations() -> List[Dict[str, Any]]:
    """Advice derived from the measured numbers: each item has a ``kind``, the ``subject`` it is
    about, a ``message``, and the ``numbers`` that triggered it. Empty when nothing stands out
    (or too little was measured to say)."""
    out: List[Dict[str, Any]] = []
    stats = get_performance_stats()["operations"]
    features = _flags.get_feature_status()["features"]

    def add(kind: str, subject: str, message: str, **numbers: Any) -> None:
        out.append({"kind": kind, "subject": subject, "message": message, "numbers": numbers})

    for name, entry in stats.items():
        native, fallback = entry["native"], entry["fallback"]
        feature = _FEATURE_OF.get(name)
        if min(native["latency_samples"], fallback["latency_samples"]) >= MIN_CALLS and feature:
            if fallback["p50_us"] * SLOWER_BY < native["p50_us"]:
                add(
                    "slower_path",
                    name,
                    f"{name}: the native path is slower than the fallback for this workload "
                    f"(median {native['p50_us']:.3g} µs vs {fallback['p50_us']:.3g} µs); "
                    f'consider configure("{feature}", rust=False) and measure again',
                    native_p50_us=native["p50_us"],
                    fallback_p50_us=fallback["p50_us"],
                    native_samples=native["latency_samples"],
                    fallback_samples=fallback["latency_samples"],
                )
            elif native["p50_us"] * SLOWER_BY < fallback["p50_us"]:
                add(
                    "slower_path",
                    name,
                    f"{name}: {entry['fallback_calls']} calls ran on the fallback, "
                    f"{fallback['p50_us'] / max(native['p50_us'], 1e-9):.1f}x slower at the median "
                    f"({fallback['p50_us']:.3g} µs vs {native['p50_us']:.3g} µs native); "
                    f"send them to the native path (rollout, errors: see get_feature_status())",
                    native_p50_us=native["p50_us"],
                    fallback_p50_us=fallback["p50_us"],
                    fallback_calls=entry["fallback_calls"],
                )
        if entry["calls"] >= MIN_CALLS and entry["errors"] / entry["calls"] > ERROR_RATE:
            add(
                "error_rate",
                name,
                f"{name}: {entry['errors']} of {entry['calls']} calls raised "
                f"({entry['errors'] / entry['calls']:.1%})",
                errors=entry["errors"],
                calls=entry["calls"],
                error_rate=entry["errors"] / entry["calls"],
            )
        refused_rate = entry["refused"] / entry["calls"] if entry["calls"] else 0.0
        if name in ("http_request", "http_stream") and entry["calls"] >= MIN_CALLS:
            if refused_rate > THROTTLED_RATE:
                add(
                    "throttled",
                    name,
                    f"{name}: {entry['refused']} of {entry['calls']} requests answered 429 "
                    f"({refused_rate:.1%}): lower the concurrency (ConnectionPoolConfig / "
                    f"max_concurrency, or adaptive_concurrency=True) or raise the provider quota",
                    refused=entry["refused"],
                    calls=entry["calls"],
                    refused_rate=refused_rate,
                )
        if name == "rate_limit_check" and entry["calls"] >= MIN_CALLS:
            if refused_rate > DENIED_RATE:
                add(
                    "rate_limit_denials",
                    name,
                    f"{refused_rate:.1%} of {entry['calls']} rate-limit checks were refused: "
                    "callers send faster than their limits allow; pace them (acquire()) or "
                    "raise the limits",
                    refused=entry["refused"],
                    calls=entry["calls"],
                    refused_rate=refused_rate,
                )
        if name.startswith("redis") and entry["latency_samples"] >= MIN_CALLS:
            if entry["p95_us"] > SLOW_REDIS_P95_US:
                add(
                    "slow_redis",
                    name,
                    f"{name}: Redis round trips are slow (p95 {entry['p95_us'] / 1000:.1f} ms, "
                    f"p99 {entry['p99_us'] / 1000:.1f} ms): check the network path and the "
                    "server's load, or use on_backend_error='local' with a backend_timeout",
                    p95_us=entry["p95_us"],
                    p99_us=entry["p99_us"],
                    samples=entry["latency_samples"],
                )

    for feature, info in features.items():
        if info["switched_to_fallback"]:
            add(
                "feature_tripped",
                feature,
                f"{feature} switched itself to the fallback after {info['errors']} native "
                f"failures (last: {info['last_error']}); fix the cause, then reset_errors()",
                errors=info["errors"],
                consecutive_errors=info["consecutive_errors"],
                last_error=info["last_error"],
            )

    pools = _pool_stats()
    if pools is not None:
        pool_timeouts = pools.get("errors", {}).get("pool_timeout", 0)
        if pool_timeouts:
            add(
                "pool_exhausted",
                "connection_pool",
                f"{pool_timeouts} requests timed out waiting for a free connection "
                f"({pools.get('active_connections', 0)} active, {pools.get('in_flight', 0)} in "
                "flight): raise ConnectionPoolConfig.max_connections or TimeoutConfig.pool",
                pool_timeouts=pool_timeouts,
                active_connections=pools.get("active_connections", 0),
                in_flight=pools.get("in_flight", 0),
            )

    cache = sys.modules.get(f"{__package__}.cache")
    for index, cache_stats in enumerate(cache.live_cache_stats() if cache is not None else []):
        lookups = cache_stats["hits"] + cache_stats["misses"]
        subject = f"response_cache[{index}]"
        if lookups >= MIN_LOOKUPS and cache_stats["hit_rate"] < LOW_HIT_RATE:
            add(
                "cache_hit_rate",
                subject,
                f"a response cache answered {cache_stats['hits']} of {lookups} lookups "
                f"({cache_stats['hit_rate']:.1%}): its requests rarely repeat within "
                "the time to live; a longer ttl_seconds, or no cache, fits this workload better",
                hits=cache_stats["hits"],
                lookups=lookups,
                hit_rate=cache_stats["hit_rate"],
            )
        if lookups >= MIN_LOOKUPS and cache_stats["evictions"] > cache_stats["hits"]:
            add(
                "cache_too_small",
                subject,
                f"a response cache evicted {cache_stats['evictions']} entries while answering "
                f"{cache_stats['hits']} hits with max_entries={cache_stats['max_entries']}: "
                "a larger cache would keep more of the repeats",
                evictions=cache_stats["evictions"],
                hits=cache_stats["hits"],
                max_entries=cache_stats["max_entries"],
            )
    return out


# ---- health ----------------------------------------------------------------------------------------

_PROBE_LATENCIES_NS = [1, 255, 256, 1_000, 12_345, 99_999, 1_000_000, 123_456_789]


def health_probe() -> Optional[str]:
    """Records known latencies into a throwaway native registry and compares its statistics
    with the fallback's for the same records: None when they agree, else what differed."""
    assert _native is not None
    native = dict(_native._metrics_probe(_PROBE_LATENCIES_NS))
    registry = _fallback.Registry()
    for value in _PROBE_LATENCIES_NS:
        registry.record("probe", "native", value)
    expected = registry.snapshot()[0][2]
    if native == expected:
        return None
    return f"native statistics {native!r} != expected {expected!r}"
