"""The Redis backend's protocol: what both clients (native and redis-py) agree on.

- backend URLs: parsing, validation and password redaction (``parse_backend``, ``redact``);
- key names: ``<prefix>:{<key>}:requests`` and ``...:tokens``, one hash tag per limiter key so
  that both live in one Redis Cluster slot (``redis_keys``);
- the check script (``_lua/gcra.lua``, embedded by the native module too), its arguments
  (``ScriptLimits.args``) and its reply (``ScriptLimits.result``);
- the backend options and their one validation (``BackendOptions``).

The native client applies the same URL and key rules in Rust (``src/ratelimit/redis.rs``); the
tests hold the two equal.
"""

from __future__ import annotations

import math
import os
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

from .._fallback.ratelimit import RateLimitResult, check_amount, check_key
from ..errors import RateLimitBackendError

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "DEFAULT_RETRY_INTERVAL",
    "DEFAULT_TIMEOUT",
    "MAX_WINDOW_NS",
    "POLICIES",
    "SCHEMES",
    "BackendOptions",
    "ScriptLimits",
    "check_amount",
    "check_key",
    "parse_backend",
    "redact",
    "redis_keys",
    "script_text",
]

DEFAULT_KEY_PREFIX = "fast_litellm"
DEFAULT_TIMEOUT = 0.05
DEFAULT_RETRY_INTERVAL = 1.0
# What a limiter does while Redis fails: admit, refuse, or let an in-process limiter decide.
POLICIES = ("allow", "deny", "local")
SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
# The longest window (burst x interval) the script computes exactly: Lua numbers are doubles.
MAX_WINDOW_NS = 1 << 52
# Longer than this a wait is a misconfiguration, not a pause.
MAX_OPTION_SECONDS = 3600
_U64_MAX = (1 << 64) - 1

_SCRIPT_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "_lua", "gcra.lua")
_SCHEME_LIST = ", ".join(SCHEMES)


def script_text() -> str:
    """The Lua source of the check script (the file the native module embeds)."""
    with open(_SCRIPT_PATH, encoding="utf-8") as f:
        return f.read()


# ---- URLs ---------------------------------------------------------------------------------------


def _authority_end(rest: str) -> int:
    end = len(rest)
    for stop in "/?#":
        i = rest.find(stop)
        if i != -1:
            end = min(end, i)
    return end


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and reports)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    at = rest.rfind("@", 0, _authority_end(rest))
    if at == -1:
        return url
    userinfo = rest[:at]
    masked = f"{userinfo.split(':', 1)[0]}:***" if ":" in userinfo else "***"
    return f"{scheme}://{masked}{rest[at:]}"


def _invalid(url: str, reason: str) -> ValueError:
    return ValueError(f"invalid Redis backend {redact(url)!r}: {reason}")


def _check_server_url(url: Any) -> str:
    if not isinstance(url, str):
        raise TypeError(f"a Redis backend URL must be a str, not {type(url).__name__}")
    url = url.strip()
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise _invalid(url, f"not a URL (expected {_SCHEME_LIST})")
    scheme = scheme.lower()
    if scheme not in ("redis", "rediss", "unix", "redis+unix"):
        raise _invalid(url, f"unsupported scheme '{scheme}://' (expected {_SCHEME_LIST})")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _invalid(url, str(exc)) from None
    if scheme in ("unix", "redis+unix"):
        if not parts.path:
            raise _invalid(url, "missing socket path")
        return url
    if not parts.hostname:
        raise _invalid(url, "missing hostname")
    if parts.hostname in ("0.0.0.0", "::"):
        raise _invalid(url, "cannot connect to a wildcard address (0.0.0.0 or ::)")
    if port == 0:
        raise _invalid(url, "port 0 is not a server port")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise _invalid(url, f"the database must be a number, not {db!r}")
    return url


def _cluster_node_urls(url: str, scheme_len: int, node_scheme: str) -> List[str]:
    rest = url[scheme_len:]
    end = _authority_end(rest)
    authority, tail = rest[:end], rest[end:]
    at = authority.rfind("@")
    userinfo, hosts = (authority[: at + 1], authority[at + 1 :]) if at != -1 else ("", authority)
    nodes = [f"{node_scheme}{userinfo}{h.strip()}{tail}" for h in hosts.split(",") if h.strip()]
    if not nodes:
        raise _invalid(url, "no host:port given for the cluster")
    return nodes


def parse_backend(backend: Union[str, Sequence[str]]) -> Tuple[str, List[str]]:
    """``("single", [url])`` or ``("cluster", [node urls])``; ``ValueError`` for a bad URL,
    ``TypeError`` for something that is not one.

    A list (or tuple) of URLs always means the nodes of one Redis Cluster.
    """
    if isinstance(backend, str):
        url = backend.strip()
        lower = url.lower()
        for cluster_scheme, node_scheme in (
            ("redis+cluster://", "redis://"),
            ("rediss+cluster://", "rediss://"),
        ):
            if lower.startswith(cluster_scheme):
                return parse_backend(_cluster_node_urls(url, len(cluster_scheme), node_scheme))
        return "single", [_check_server_url(url)]
    if isinstance(backend, (bytes, bytearray)) or not isinstance(backend, (list, tuple)):
        raise TypeError(
            "backend must be a Redis URL or a list of Redis Cluster node URLs, "
            f"not {type(backend).__name__}"
        )
    if not backend:
        raise ValueError("a Redis Cluster backend needs at least one node URL")
    nodes = []
    for node in backend:
        url = _check_server_url(node)
        parts = urlsplit(url)
        if parts.scheme.lower() in ("unix", "redis+unix"):
            raise _invalid(url, "Redis Cluster nodes are reached over TCP, not unix://")
        if parts.path.strip("/") not in ("", "0"):
            raise _invalid(url, "Redis Cluster has only database 0")
        nodes.append(url)
    return "cluster", nodes


# ---- key names ----------------------------------------------------------------------------------


def _key_tag(key: str) -> str:
    if "%" not in key and "}" not in key:
        return key
    return key.replace("%", "%25").replace("}", "%7D")


def redis_keys(prefix: str, key: str) -> Tuple[str, str]:
    """The two Redis keys of one limiter key, ``(requests, tokens)``, sharing one hash tag."""
    tag = _key_tag(key)
    if prefix and not prefix.endswith(":"):
        prefix += ":"
    return f"{prefix}{{{tag}}}:requests", f"{prefix}{{{tag}}}:tokens"


# ---- options ------------------------------------------------------------------------------------


def _seconds_option(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not (math.isfinite(value) and 0 < value <= MAX_OPTION_SECONDS):
        raise ValueError(
            f"{name} must be a number of seconds > 0 and at most {MAX_OPTION_SECONDS}, "
            f"got {value!r}"
        )
    return float(value)


class BackendOptions(NamedTuple):
    """The options of a Redis backend, validated (``build`` is the one place that checks them)."""

    key_prefix: str
    on_backend_error: str
    timeout: float
    retry_interval: float

    @classmethod
    def build(
        cls,
        key_prefix: Any = DEFAULT_KEY_PREFIX,
        on_backend_error: Any = "allow",
        timeout: Any = None,
        retry_interval: Any = None,
        *,
        names: Tuple[str, str] = ("timeout", "retry_interval"),
    ) -> "BackendOptions":
        """``names``: what the caller calls the two durations, for the messages."""
        if not isinstance(key_prefix, str):
            raise TypeError(f"key_prefix must be a str, not {type(key_prefix).__name__}")
        if "{" in key_prefix or "}" in key_prefix:
            raise ValueError(
                f"key_prefix {key_prefix!r} must not contain '{{' or '}}' (they would move the "
                "Redis Cluster hash tag)"
            )
        try:
            key_prefix.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                "key_prefix must be valid Unicode text (it holds a lone surrogate)"
            ) from None
        if on_backend_error not in POLICIES:
            raise ValueError(
                f"on_backend_error must be one of {', '.join(map(repr, POLICIES))}, "
                f"got {on_backend_error!r}"
            )
        return cls(
            key_prefix=key_prefix,
            on_backend_error=on_backend_error,
            timeout=DEFAULT_TIMEOUT if timeout is None else _seconds_option(timeout, names[0]),
            retry_interval=(
                DEFAULT_RETRY_INTERVAL
                if retry_interval is None
                else _seconds_option(retry_interval, names[1])
            ),
        )


# ---- the script's arguments and reply -----------------------------------------------------------


def _seconds(ns: int) -> float:
    return float("inf") if ns < 0 else ns / 1e9


class ScriptLimits:
    """The integers the script needs, read from a limiter's ``Limits``."""

    __slots__ = ("request_interval_ns", "burst", "token_interval_ns", "token_burst")

    def __init__(self, limits: Any) -> None:
        self.request_interval_ns: Optional[int] = limits.request_interval_ns
        self.burst: Optional[int] = limits.burst if self.request_interval_ns else None
        self.token_interval_ns: Optional[int] = limits.token_interval_ns
        self.token_burst: Optional[int] = limits.token_burst if self.token_interval_ns else None
        if self.request_interval_ns is None and self.token_interval_ns is None:
            raise ValueError("at least one limit (requests or tokens) is required")
        for interval, burst, what in (
            (self.request_interval_ns, self.burst, "request"),
            (self.token_interval_ns, self.token_burst, "token"),
        ):
            if interval is not None and burst is not None and interval * burst >= MAX_WINDOW_NS:
                raise ValueError(
                    f"the {what} limit's window (burst x interval = {interval * burst} ns) is too "
                    f"long for the Redis backend, which handles windows shorter than "
                    f"{MAX_WINDOW_NS} ns (about 52 days)"
                )

    @property
    def limit(self) -> int:
        """What ``RateLimitResult.limit`` reports: the request burst, or the token burst when
        tokens are the only limit."""
        return self.burst if self.request_interval_ns is not None else self.token_burst  # type: ignore[return-value]

    def args(self, consume: bool, cost: int, tokens: int) -> List[int]:
        return [
            1 if consume else 0,
            self.request_interval_ns or 0,
            self.burst or 0,
            cost,
            self.token_interval_ns or 0,
            self.token_burst or 0,
            tokens,
        ]

    def request(self, key: Any, cost: Any, tokens: Any) -> Tuple[str, int, int]:
        """The validated arguments of one check (amounts beyond u64 exceed every burst: never
        allowed, as on the in-process path)."""
        return (
            check_key(key),
            min(check_amount(cost, "cost"), _U64_MAX),
            min(check_amount(tokens, "tokens"), _U64_MAX),
        )

    def result(self, reply: Sequence[Any]) -> RateLimitResult:
        """The ``RateLimitResult`` of one script reply (the native client builds the same in
        Rust)."""
        try:
            allowed, retry_after, reset_after, request_remaining, token_remaining = (
                int(v) for v in reply
            )
        except (TypeError, ValueError):
            raise RateLimitBackendError(
                f"unexpected reply from the rate-limit script: {reply!r}"
            ) from None
        if allowed not in (0, 1) or retry_after < -1 or reset_after < 0:
            raise RateLimitBackendError(f"unexpected reply from the rate-limit script: {reply!r}")
        has_tokens = self.token_interval_ns is not None
        remaining = request_remaining if self.request_interval_ns is not None else token_remaining
        return RateLimitResult(
            allowed=bool(allowed),
            remaining=max(remaining, 0),
            retry_after=_seconds(retry_after),
            reset_after=reset_after / 1e9,
            limit=self.limit,
            remaining_tokens=max(token_remaining, 0) if has_tokens else None,
            token_limit=self.token_burst if has_tokens else None,
        )

    def policy_result(self, allowed: bool, retry_after: float) -> RateLimitResult:
        """The answer of the ``allow``/``deny`` policy while Redis cannot be asked."""
        has_tokens = self.token_interval_ns is not None
        return RateLimitResult(
            allowed=allowed,
            remaining=self.limit if allowed else 0,
            retry_after=retry_after,
            reset_after=0.0,
            limit=self.limit,
            remaining_tokens=(self.token_burst if allowed else 0) if has_tokens else None,
            token_limit=self.token_burst if has_tokens else None,
        )
