"""Exception classes raised by fast_litellm.

They are defined here, in Python, and raised by the native module as well (through PyO3's
``import_exception!``), so the native path and the fallback raise exactly the same classes.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "FastLiteLLMError",
    "HTTPError",
    "HTTPStatusError",
    "NativeError",
    "NoDeploymentAvailable",
    "PoolTimeout",
    "RateLimitTimeout",
    "RateLimitBackendError",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "TimeoutError",
    "TokenizerUnavailableError",
    "UnsupportedContentError",
    "UnsupportedModelError",
    "WriteTimeout",
]


class FastLiteLLMError(Exception):
    """Base class of every error fast_litellm raises on its own account."""


class NativeError(FastLiteLLMError):
    """The native extension failed unexpectedly (a Rust panic surfaces as this).

    The call that raised it had no effect; later calls keep working.
    """


class NoDeploymentAvailable(FastLiteLLMError):
    """``Router.pick`` found no deployment of the model group it may send a request to: every one
    is cooling down (or waiting for its circuit-breaker probe), or over its rpm/tpm limits.

    ``retry_after`` is how many seconds until the soonest cooldown ends (or the minute's usage
    counts start again), ``None`` when that is not a matter of time; ``model_name`` is the group.
    """

    def __init__(
        self, message: str, retry_after: "float | None" = None, *, model_name: "str | None" = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.model_name = model_name


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


class FallbackNeeded(FastLiteLLMError):
    """Raised by the native module for an input only the pure-Python path answers exactly (a
    message text holding a surrogate pair as two characters, which LiteLLM counts in slices of
    the Python ``str``). The public functions catch it and answer from the Python path; it never
    reaches a caller and is not counted as a native fault."""


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


# ---- HTTP client (fast_litellm.http) ------------------------------------------------------------
# One hierarchy for both paths: the native client raises these from Rust, the fallback maps
# httpx's exceptions onto them, so `except fast_litellm.errors.ReadTimeout` works on either.


class HTTPError(FastLiteLLMError):
    """A request could not be completed: no response, or a broken one. HTTP error statuses are
    not errors of this kind: they are returned as responses (see ``Response.raise_for_status``)."""


class TimeoutError(HTTPError, builtins.TimeoutError):
    """A request ran out of one of its ``TimeoutConfig`` limits (the subclass says which)."""


class ConnectTimeout(TimeoutError):
    """No connection to the server within ``TimeoutConfig.connect`` (TLS handshake included)."""


class ReadTimeout(TimeoutError):
    """The server sent nothing for ``TimeoutConfig.read`` seconds (waiting for the response
    headers, or between two pieces of the body)."""


class WriteTimeout(TimeoutError):
    """The request body could not be sent within ``TimeoutConfig.write`` seconds."""


class PoolTimeout(TimeoutError):
    """Every connection of the pool stayed busy for ``TimeoutConfig.pool`` seconds; raise
    ``ConnectionPoolConfig.max_connections`` or lower the concurrency."""


class ConnectError(HTTPError, ConnectionError):
    """The connection could not be made (refused, unreachable, name not resolved, TLS refused)."""


class RemoteProtocolError(HTTPError):
    """The server broke the exchange: it closed or reset the connection mid-response, or sent
    something that is not HTTP."""


class ReadError(RemoteProtocolError):
    """The connection was reset (or aborted) under a read: the ``RemoteProtocolError`` that
    httpx calls a ``ReadError``."""


class HTTPStatusError(HTTPError):
    """Raised by ``Response.raise_for_status()`` for a 4xx or 5xx response, which it carries."""

    def __init__(self, message: str, *, response: Any) -> None:
        super().__init__(message)
        self.response = response
