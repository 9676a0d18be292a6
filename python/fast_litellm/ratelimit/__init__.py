"""Rate limiting: GCRA (a token bucket with continuous refill) per key, in process or shared
through Redis.

    limiter = SimpleRateLimiter(requests_per_minute=600, tokens_per_minute=100_000)
    result = limiter.check("user-42", tokens=1200)
    if not result:
        wait(result.retry_after)

The rule, in integer nanoseconds, is written out in ``fast_litellm/_fallback/ratelimit.py``; the
native core (``src/ratelimit/``), the fallback and the Redis script all implement it and give the
same answers.

Modules: ``limiter`` (the API below), ``limits`` (validation of the limits), ``redis_protocol``
(URLs, key names, the script's arguments and reply), ``redis_backend`` (the failure policy, the
retry pause, statistics). The redis-py client is ``fast_litellm._fallback.redis_client``.
"""

from __future__ import annotations

from .limiter import (
    DEFAULT_RPM_VARIABLE,
    MAX_KEY_LENGTH,
    ManualClock,
    RateLimitResult,
    SimpleRateLimiter,
    check_rate_limit,
    default_rate_limiter,
    health_probe,
    health_sections,
)

__all__ = [
    "DEFAULT_RPM_VARIABLE",
    "MAX_KEY_LENGTH",
    "ManualClock",
    "RateLimitResult",
    "SimpleRateLimiter",
    "check_rate_limit",
    "default_rate_limiter",
    "health_probe",
    "health_sections",
]
