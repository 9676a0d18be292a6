"""``health_check()``: is the native module there, and does each feature really work on it?

Each feature module exposes ``health_probe()`` (exercise the native path, return None when the
answer is the known one, else what was wrong) and may expose ``health_sections()`` (extra parts
of the report, such as shared backends, each a list of entries with a ``status``). This module
only runs them.
"""

from __future__ import annotations

import importlib
import time
from typing import Any, Dict

from . import _flags

__all__ = ["health_check"]

# feature flag -> the module that implements it (loaded when the check runs)
_FEATURE_MODULES = {
    "TOKEN_COUNTING": "tokens",
    "RATE_LIMITING": "ratelimit",
    "CONNECTION_POOL": "http",
    "MONITORING": "monitoring",
    "CACHE": "cache",
    "ROUTING": "routing",
    "HEALTH": "routing",
    "BUDGETS": "budget",
    "COST": "cost",
}


def _feature_module(feature: str) -> Any:
    return importlib.import_module(f"{__package__}.{_FEATURE_MODULES[feature]}")


def _probe(feature: str) -> Dict[str, Any]:
    """Runs one feature's probe on the native path; failures are reported, never raised."""
    state = _flags.feature(feature)
    status = state.status()
    result: Dict[str, Any] = {
        "path": status["active_path"],
        "errors": status["errors"],
        "switched_to_fallback": status["switched_to_fallback"],
        "last_error": status["last_error"],
    }
    if _flags.native is None:
        result.update(status="degraded", reason="native module unavailable; fallback in use")
        return result
    started = time.perf_counter()
    try:
        wrong = _feature_module(feature).health_probe()
    except Exception as exc:  # a health check reports failures, it does not raise them
        result.update(status="degraded", reason=f"native probe failed: {type(exc).__name__}: {exc}")
        return result
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
    if wrong is not None:
        result.update(status="degraded", reason=wrong)
    elif state.tripped:
        result.update(
            status="degraded", reason=f"switched to fallback after errors: {state.last_error}"
        )
    elif not state.enabled:
        result.update(status="ok", reason="native path disabled by configuration")
    else:
        result["status"] = "ok"
    return result


def health_check() -> Dict[str, Any]:
    """``{"status": "ok" | "degraded", "native": {...}, "features": {...}, "version": ...}``.

    Each native feature is exercised for real (a token count, a rate-limit sequence on a manual
    clock), each compared with its known answer. Shared backends in use (Redis) are reported
    too; one that is failing degrades the status.
    """
    features = {name.lower(): _probe(name) for name in _flags.FEATURES}
    native_info: Dict[str, Any] = {"available": _flags.native is not None}
    if _flags.native is None:
        native_info["error"] = _flags.native_import_error
    else:
        native_info["version"] = getattr(_flags.native, "__version__", None)
        native_info["allocator"] = getattr(_flags.native, "ALLOCATOR", None)
    degraded = _flags.native is None or any(f["status"] != "ok" for f in features.values())
    report: Dict[str, Any] = {
        "status": "degraded" if degraded else "ok",
        "version": _flags.version,
        "native": native_info,
        "features": features,
    }
    report["litellm_patch"] = _flags.litellm_patch_status()
    reasons = [f"native module: {native_info['error']}"] if _flags.native is None else []
    reasons += [f"{name}: {f['reason']}" for name, f in features.items() if f["status"] != "ok"]
    # Each module once (one module may serve two features: routing serves ROUTING and HEALTH).
    modules = {id(m): m for m in map(_feature_module, _flags.FEATURES)}
    for module in modules.values():
        sections = getattr(module, "health_sections", None)
        for name, entries in (sections() if sections is not None else {}).items():
            report[name] = entries
            for entry in entries:
                if entry["status"] != "ok":
                    report["status"] = "degraded"
                    what = entry.get("reason") or entry.get("error") or entry["status"]
                    reasons.append(f"{name}: {entry.get('name', entry.get('url', ''))} {what}")
    if reasons:
        report["reasons"] = reasons
    return report
