"""Exception classes raised by fast_litellm.

They are defined here, in Python, and raised by the native module as well (through PyO3's
``import_exception!``), so the native path and the fallback raise exactly the same classes.
"""

from __future__ import annotations

__all__ = [
    "FastLiteLLMError",
    "NativeError",
    "RateLimitTimeout",
    "RateLimitBackendError",
    "TokenizerUnavailableError",
    "UnsupportedContentError",
    "UnsupportedModelError",
]


class FastLiteLLMError(Exception):
    """Base class of every error fast_litellm raises on its own account."""


class NativeError(FastLiteLLMError):
    """The native extension failed unexpectedly (a Rust panic surfaces as this).

    The call that raised it had no effect; later calls keep working.
    """


class TokenizerUnavailableError(FastLiteLLMError, RuntimeError):
    """No tokenizer is available for the requested path (e.g. the fallback needs ``tiktoken``)."""


class UnsupportedModelError(FastLiteLLMError, ValueError):
    """The model is counted with a tokenizer fast_litellm does not implement, and ``litellm``
    (which could count it) is not installed."""


class UnsupportedContentError(FastLiteLLMError, ValueError):
    """A message holds content LiteLLM prices only with the network or an optional package (a
    high-detail image given by an http(s) URL, a PDF document). ``count_message_tokens`` hands
    such requests to ``litellm.token_counter`` when litellm is installed, and raises this
    otherwise."""


class RateLimitBackendError(FastLiteLLMError):
    """The shared backend of a rate limiter (Redis) failed or did not answer within its timeout.

    A limiter with a backend handles this itself, by its ``on_backend_error`` policy, and counts
    it in ``stats()``; it reaches callers only from the backend objects themselves.
    """


class RateLimitTimeout(FastLiteLLMError, TimeoutError):
    """``SimpleRateLimiter.acquire(..., timeout=...)`` could not be admitted within ``timeout``
    seconds. ``retry_after`` is the wait the limiter last asked for (``inf`` if never)."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
