"""``health_check()``: is the native module there, and does each feature really work on it?"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Dict, Optional

from . import _flags

__all__ = ["health_check"]

# A fixed text with a known count (cl100k_base, as Python tiktoken counts it), so the check proves
# the native path gives the right answer, not merely an answer.
_PROBE_TEXT = "fast_litellm health probe: <|endoftext|> héllo 世界 12345"
_PROBE_ENCODING = "cl100k_base"
_PROBE_EXPECTED = 23  # tests/test_health.py checks this against tiktoken


def _probe(feature: str, what: str, run: Callable[[], Optional[str]]) -> Dict[str, Any]:
    """Exercises one feature on the native path: ``run`` does the real work and returns None when
    the answer is the known one, else what was wrong. Failures are reported, never raised."""
    state = _flags.feature(feature)
    result: Dict[str, Any] = {"path": state.status()["active_path"]}
    if _flags.native is None:
        result.update(status="degraded", reason="native module unavailable; fallback in use")
        return result
    started = time.perf_counter()
    try:
        wrong = run()
    except Exception as exc:  # a health check reports failures, it does not raise them
        result.update(
            status="degraded", reason=f"native {what} failed: {type(exc).__name__}: {exc}"
        )
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


def _rate_limit_probe() -> Optional[str]:
    """A native limiter on a manual clock: 60/min with its default burst of 6 must admit exactly
    6 of 7 immediate calls and ask the 7th to retry in exactly one second."""
    from . import ratelimit

    assert _flags.native is not None
    limits = ratelimit._Limits.build(60, None, burst=None, token_burst=None)
    limiter = ratelimit._local(limits, _flags.native.ManualClock(), native=True)
    allowed = sum(bool(limiter.allow("health-probe")) for _ in range(6))
    refused = limiter.check("health-probe")
    if allowed == 6 and not refused.allowed and refused.retry_after == 1.0:
        return None
    return (
        f"native limiter answered wrongly: {allowed} of 6 admitted, "
        f"7th allowed={refused.allowed} retry_after={refused.retry_after}"
    )


def _token_count_probe() -> Optional[str]:
    from . import tokens

    native = tokens._encoding_tokenizer(_PROBE_ENCODING)
    count = (native.native or native.load_native()).count(_PROBE_TEXT)
    if count == _PROBE_EXPECTED:
        return None
    return f"native count {count} != expected {_PROBE_EXPECTED}"


def health_check() -> Dict[str, Any]:
    """``{"status": "ok" | "degraded", "native": {...}, "features": {...}, "version": ...}``.

    Each native feature is exercised for real: a token count and a rate-limit sequence on a
    manual clock, each compared with its known answer.
    """
    from . import __version__

    features = {
        "token_counting": _probe("TOKEN_COUNTING", "count", _token_count_probe),
        "rate_limiting": _probe("RATE_LIMITING", "check", _rate_limit_probe),
    }
    native_info: Dict[str, Any] = {"available": _flags.native is not None}
    if _flags.native is None:
        native_info["error"] = _flags.native_import_error
    else:
        native_info["version"] = getattr(_flags.native, "__version__", None)
    degraded = _flags.native is None or any(f["status"] != "ok" for f in features.values())
    report: Dict[str, Any] = {
        "status": "degraded" if degraded else "ok",
        "version": __version__,
        "native": native_info,
        "features": features,
    }
    # Shared rate-limit backends of live limiters (Redis): reported only when some exist; one
    # that is failing (its limiter is on its on_backend_error policy) degrades the whole.
    redis_backends = sys.modules.get(f"{__package__}._ratelimit_redis")
    backends = redis_backends.backends_health() if redis_backends is not None else []
    if backends:
        report["rate_limit_backends"] = backends
        if any(b["status"] != "ok" for b in backends):
            report["status"] = "degraded"
    return report
