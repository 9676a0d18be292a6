"""fast_litellm: Rust accelerators for LiteLLM's hot paths.

Every feature runs on a native (Rust) path or on a pure-Python fallback that gives the same
answers; ``get_feature_status()`` says which, and the ``FAST_LITELLM_*`` environment variables
(see ``fast_litellm._flags``) choose.
"""

import os as _os
import typing as _typing

from . import (
    _fork,  # noqa: F401  (its os.register_at_fork hook must be in place before any fork)
    errors,
)
from ._flags import configure, get_feature_status, reset_errors
from ._flags import version as __version__
from .errors import (
    FastLiteLLMError,
    NativeError,
    NoDeploymentAvailable,
    RateLimitBackendError,
    RateLimitTimeout,
    TokenizerUnavailableError,
    UnsupportedContentError,
    UnsupportedModelError,
)
from .health import health_check
from .tokens import (
    SimpleTokenCounter,
    acount_request_tokens,
    count_message_tokens,
    count_request_tokens,
    count_tokens,
    count_tokens_batch,
    encoding_for_model,
)

if _typing.TYPE_CHECKING:
    from .budget import BudgetCheck, BudgetStatus, BudgetTracker
    from .cache import ResponseCache, cache_key
    from .cost import completion_cost, cost_per_token
    from .http import (
        AsyncClient,
        Client,
        ConnectionPoolConfig,
        RetryConfig,
        TimeoutConfig,
        cleanup_expired_connections,
        get_connection_pool_stats,
    )
    from .litellm_patch import patch, patch_status, unpatch
    from .monitoring import (
        get_performance_stats,
        get_recommendations,
        prometheus_metrics,
        reset_stats,
    )
    from .ratelimit import (
        ManualClock,
        RateLimitResult,
        SimpleRateLimiter,
        check_rate_limit,
        default_rate_limiter,
    )
    from .routing import HealthTracker, Router

# The rate limiter and the HTTP client load on first use: `import fast_litellm` stays cheap for
# callers that only count tokens (their modules pull in dataclasses, fractions and json, ~10 ms
# on a slow machine).
_LAZY = {
    "BudgetCheck": "budget",
    "BudgetStatus": "budget",
    "BudgetTracker": "budget",
    "AsyncClient": "http",
    "Client": "http",
    "ConnectionPoolConfig": "http",
    "RetryConfig": "http",
    "TimeoutConfig": "http",
    "cleanup_expired_connections": "http",
    "get_connection_pool_stats": "http",
    "ManualClock": "ratelimit",
    "RateLimitResult": "ratelimit",
    "SimpleRateLimiter": "ratelimit",
    "check_rate_limit": "ratelimit",
    "default_rate_limiter": "ratelimit",
    "completion_cost": "cost",
    "cost_per_token": "cost",
    "patch": "litellm_patch",
    "patch_status": "litellm_patch",
    "unpatch": "litellm_patch",
    "get_performance_stats": "monitoring",
    "get_recommendations": "monitoring",
    "prometheus_metrics": "monitoring",
    "reset_stats": "monitoring",
    "ResponseCache": "cache",
    "cache_key": "cache",
    "HealthTracker": "routing",
    "Router": "routing",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fast_litellm' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


# FAST_LITELLM_AUTO_PATCH=1: patch litellm when it is imported (the hook never imports it).
if "FAST_LITELLM_AUTO_PATCH" in _os.environ:
    from .litellm_patch import install_from_environment as _install_from_environment

    _install_from_environment(_os.environ)


def __dir__() -> _typing.List[str]:
    # The public namespace is exactly __all__ (plus the submodules a user may import).
    return sorted(__all__)


__all__ = [
    "AsyncClient",
    "BudgetCheck",
    "BudgetStatus",
    "BudgetTracker",
    "Client",
    "ConnectionPoolConfig",
    "FastLiteLLMError",
    "HealthTracker",
    "ManualClock",
    "NativeError",
    "NoDeploymentAvailable",
    "RateLimitBackendError",
    "RateLimitResult",
    "RateLimitTimeout",
    "ResponseCache",
    "RetryConfig",
    "Router",
    "SimpleRateLimiter",
    "SimpleTokenCounter",
    "TimeoutConfig",
    "TokenizerUnavailableError",
    "UnsupportedContentError",
    "UnsupportedModelError",
    "__version__",
    "cache_key",
    "acount_request_tokens",
    "check_rate_limit",
    "cleanup_expired_connections",
    "completion_cost",
    "configure",
    "count_message_tokens",
    "count_request_tokens",
    "count_tokens",
    "count_tokens_batch",
    "cost_per_token",
    "default_rate_limiter",
    "encoding_for_model",
    "errors",
    "get_connection_pool_stats",
    "get_feature_status",
    "get_performance_stats",
    "get_recommendations",
    "health_check",
    "patch",
    "patch_status",
    "prometheus_metrics",
    "reset_errors",
    "reset_stats",
    "unpatch",
]
