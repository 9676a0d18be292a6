"""The Redis protocol of budgets: what both clients (native and redis-py) agree on.

- the key name: ``<prefix>:budget:{<key>}``, the rate limiter's hash tag (``%``/``}`` escaped);
- the script (``_lua/budget.lua``, embedded by the native module too), its arguments
  (``script_args``) and its reply (``views``).

URLs, options and their validation are the rate limiter's (``ratelimit.redis_protocol``).
"""

from __future__ import annotations

import os
from typing import Any, List, Optional, Sequence, Tuple

from .._fallback.budget import View, Window
from ..errors import RateLimitBackendError
from ..ratelimit.redis_protocol import _key_tag

__all__ = ["redis_key", "script_args", "script_text", "views"]

_SCRIPT_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "_lua", "budget.lua")


def script_text() -> str:
    """The Lua source of the budget script (the file the native module embeds)."""
    with open(_SCRIPT_PATH, encoding="utf-8") as f:
        return f.read()


def redis_key(prefix: str, key: str) -> str:
    """The one Redis key (a hash) holding ``key``'s spend."""
    if prefix and not prefix.endswith(":"):
        prefix += ":"
    return f"{prefix}budget:{{{_key_tag(key)}}}"


def _window_arg(window: Window) -> str:
    name, _, period_ns = window
    if period_ns is None:
        return name
    return f"period:{max(-(-period_ns // 1000), 1)}"


def script_args(
    windows: Sequence[Window], record: bool, amount: int, now_ns: Optional[int]
) -> List[Any]:
    """ARGV of one call: the script keeps time in microseconds ("" = the server's clock)."""
    now = "" if now_ns is None else str(now_ns // 1000)
    return ["record" if record else "read", now, amount, *map(_window_arg, windows)]


def views(windows: Sequence[Window], reply: Any) -> Tuple[int, List[View]]:
    """``(now_ns, views)`` of one script reply (the native client reads it the same way)."""
    try:
        values = [int(v) for v in reply]
    except (TypeError, ValueError):
        raise RateLimitBackendError(f"unexpected reply from the budget script: {reply!r}") from None
    if len(values) != 1 + 3 * len(windows) or any(v < -1 for v in values):
        raise RateLimitBackendError(f"unexpected reply from the budget script: {reply!r}")
    result: List[View] = []
    for i, window in enumerate(windows):
        spent, requests, reset = values[1 + 3 * i : 4 + 3 * i]
        if spent < 0 or requests < 0:
            raise RateLimitBackendError(f"unexpected reply from the budget script: {reply!r}")
        result.append((window, spent, requests, None if reset < 0 else reset * 1000))
    return values[0] * 1000, result
