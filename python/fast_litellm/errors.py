"""Exception classes raised by fast_litellm.

They are defined here, in Python, and raised by the native module as well (through PyO3's
``import_exception!``), so the native path and the fallback raise exactly the same classes.
"""

from __future__ import annotations

__all__ = [
    "FastLiteLLMError",
    "NativeError",
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
