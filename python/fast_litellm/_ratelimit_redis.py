"""The Redis backend of ``SimpleRateLimiter``: many processes, one limit.

``SimpleRateLimiter(..., backend="redis://...")`` builds a :class:`RedisBackend` and delegates its
checks to it. Each check is one atomic Lua script on the server (``_lua/gcra.lua``), the same
script on both paths:

- native: ``fast_litellm._native.RedisRateLimiter`` (the Rust ``redis`` crate on the process-wide
  tokio runtime, one auto-reconnecting multiplexed connection shared by every thread and event
  loop; sync calls wait without the GIL, async calls are asyncio awaitables);
- Python: ``redis-py`` (``redis.Redis`` / ``redis.asyncio``, ``RedisCluster`` for clusters), used
  when the native path is off or unavailable. Install it with ``pip install redis``.

Both build the same key names and run the same script, so native and Python instances can share
one limit. The script takes the time from the server (``TIME``), so instance clocks do not matter.

Backends: ``redis://[user:password@]host:port/db``, ``rediss://...`` (TLS), ``unix:///path.sock``,
and Redis Cluster as ``redis+cluster://host:port,host:port`` (``rediss+cluster://`` with TLS) or a
list of node URLs.

Failure policy (``on_backend_error``), when Redis is down, slow (no answer within ``timeout``
seconds) or broken:

- ``"allow"`` (default): the call is allowed (fail open);
- ``"deny"``: the call is refused, with ``retry_after`` the time until Redis is tried again;
- ``"local"``: the in-process limiter given as ``local`` decides, until Redis answers again.

After a failure, Redis is left alone for ``retry_interval`` seconds (the policy decides
meanwhile, at no cost); then one call probes it, and the first success closes the circuit. Every
failure and every policy decision is counted in ``stats()``; ``health()`` gives the state and the
last latency. A check that timed out may still reach Redis and consume (its command was already
sent); the policy answers it all the same.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import weakref
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

from . import _flags
from .errors import NativeError, RateLimitBackendError

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "DEFAULT_RETRY_INTERVAL",
    "DEFAULT_TIMEOUT",
    "MAX_WINDOW_NS",
    "POLICIES",
    "RedisBackend",
    "backends_health",
    "parse_backend",
    "redis_keys",
    "script_text",
]

DEFAULT_KEY_PREFIX = "fast_litellm"
DEFAULT_TIMEOUT = 0.05
DEFAULT_RETRY_INTERVAL = 1.0
POLICIES = ("allow", "deny", "local")
# The longest window (burst x interval) the script computes exactly: Lua numbers are doubles.
MAX_WINDOW_NS = 1 << 52
MAX_KEY_LENGTH = 4096
_U64_MAX = (1 << 64) - 1

_SCRIPT_PATH = os.path.join(os.path.dirname(__file__), "_lua", "gcra.lua")
_SCHEMES = "redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://"

_state = _flags.feature("RATE_LIMITING")


def script_text() -> str:
    """The Lua source of the check script (the file the native module embeds)."""
    with open(_SCRIPT_PATH, encoding="utf-8") as f:
        return f.read()


# --- URLs and key names (the native path has the same rules in src/ratelimit/redis.rs) ---------


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = len(rest)
    for stop in "/?#":
        i = rest.find(stop)
        if i != -1:
            end = min(end, i)
    at = rest.rfind("@", 0, end)
    if at == -1:
        return url
    userinfo = rest[:at]
    masked = f"{userinfo.split(':', 1)[0]}:***" if ":" in userinfo else "***"
    return f"{scheme}://{masked}{rest[at:]}"


def _invalid(url: str, reason: str) -> ValueError:
    return ValueError(f"invalid Redis backend {_redact(url)!r}: {reason}")


def _check_server_url(url: str) -> None:
    if not isinstance(url, str):
        raise TypeError(f"a Redis backend URL must be a str, not {type(url).__name__}")
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise _invalid(url, f"not a URL (expected {_SCHEMES})")
    scheme = scheme.lower()
    if scheme not in ("redis", "rediss", "unix", "redis+unix"):
        raise _invalid(url, f"unsupported scheme '{scheme}://' (expected {_SCHEMES})")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _invalid(url, str(exc)) from None
    if scheme in ("unix", "redis+unix"):
        if not parts.path:
            raise _invalid(url, "missing socket path")
        return
    if not parts.hostname:
        raise _invalid(url, "missing hostname")
    if parts.hostname in ("0.0.0.0", "::"):
        raise _invalid(url, "cannot connect to a wildcard address (0.0.0.0 or ::)")
    if port == 0:
        raise _invalid(url, "port 0 is not a server port")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise _invalid(url, f"the database must be a number, not {db!r}")


def _cluster_node_urls(url: str, scheme_len: int, node_scheme: str) -> List[str]:
    rest = url[scheme_len:]
    end = len(rest)
    for stop in "/?#":
        i = rest.find(stop)
        if i != -1:
            end = min(end, i)
    authority, tail = rest[:end], rest[end:]
    at = authority.rfind("@")
    userinfo, hosts = (authority[: at + 1], authority[at + 1 :]) if at != -1 else ("", authority)
    nodes = [f"{node_scheme}{userinfo}{h.strip()}{tail}" for h in hosts.split(",") if h.strip()]
    if not nodes:
        raise _invalid(url, "no host:port given for the cluster")
    return nodes


def parse_backend(backend: Union[str, Sequence[str]]) -> Tuple[str, List[str]]:
    """``("single", [url])`` or ``("cluster", [node urls])``; ``ValueError`` for a bad URL.

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
        _check_server_url(url)
        return "single", [url]
    if isinstance(backend, (bytes, bytearray)) or not isinstance(backend, (list, tuple)):
        raise TypeError(
            "backend must be a Redis URL or a list of Redis Cluster node URLs, "
            f"not {type(backend).__name__}"
        )
    if not backend:
        raise ValueError("a Redis Cluster backend needs at least one node URL")
    nodes = []
    for url in backend:
        _check_server_url(url)
        url = url.strip()
        parts = urlsplit(url)
        if parts.scheme.lower() in ("unix", "redis+unix"):
            raise _invalid(url, "Redis Cluster nodes are reached over TCP, not unix://")
        if parts.path.strip("/") not in ("", "0"):
            raise _invalid(url, "Redis Cluster has only database 0")
        nodes.append(url)
    return "cluster", nodes


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


def _validate_key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, not {type(key).__name__}")
    if not key:
        raise ValueError("key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(
            f"key is {len(key)} characters long; the longest accepted is {MAX_KEY_LENGTH}"
        )
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("key must be valid Unicode text (it holds a lone surrogate)") from None
    return key


def _amount(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")
    # Amounts beyond u64 exceed every burst: never allowed, as on the in-process path.
    return min(value, _U64_MAX)


# --- the limits spec -----------------------------------------------------------------------------


class _Spec:
    """The integers the script needs, read from the limiter's ``_Limits`` spec."""

    __slots__ = ("request_interval_ns", "burst", "token_interval_ns", "token_burst")

    def __init__(self, limits: Any) -> None:
        self.request_interval_ns = _first(limits, "request_interval_ns", "interval_ns")
        self.burst = getattr(limits, "burst", None) if self.request_interval_ns else None
        self.token_interval_ns = _first(limits, "token_interval_ns")
        self.token_burst = getattr(limits, "token_burst", None) if self.token_interval_ns else None
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


def _first(obj: Any, *names: str) -> Optional[int]:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return int(value)
    return None


def _result_type() -> Any:
    from ._fallback.ratelimit import RateLimitResult

    return RateLimitResult


def _seconds(ns: int) -> float:
    return float("inf") if ns < 0 else ns / 1e9


def _result_from_reply(reply: Sequence[Any], spec: _Spec) -> Any:
    """The ``RateLimitResult`` of one script reply (the native path builds the same in Rust)."""
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
    has_requests = spec.request_interval_ns is not None
    has_tokens = spec.token_interval_ns is not None
    remaining = max(request_remaining if has_requests else token_remaining, 0)
    return _result_type()(
        allowed=bool(allowed),
        remaining=remaining,
        retry_after=_seconds(retry_after),
        reset_after=reset_after / 1e9,
        limit=spec.burst if has_requests else spec.token_burst,
        remaining_tokens=max(token_remaining, 0) if has_tokens else None,
        token_limit=spec.token_burst if has_tokens else None,
    )


# --- the Python path (redis-py) ------------------------------------------------------------------


def _redis_module() -> Any:
    try:
        import redis
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the Python path of the Redis backend needs redis-py: pip install redis"
        ) from None
    return redis


class _PythonRedis:
    """The script through redis-py; failures raise ``RateLimitBackendError``."""

    path = "python"

    def __init__(self, kind: str, urls: List[str], spec: _Spec, prefix: str, timeout: float):
        self._redis = _redis_module()
        self.kind, self.urls, self.spec = kind, urls, spec
        self.prefix, self.timeout = prefix, timeout
        self.script = script_text()
        import hashlib

        self.sha = hashlib.sha1(self.script.encode("utf-8")).hexdigest()
        self._sync: Any = None
        self._sync_lock = threading.Lock()
        # redis.asyncio clients belong to the event loop they were made in: one per loop.
        self._async: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()

    def _options(self) -> Dict[str, Any]:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No retries of our own: a check is bounded by one timeout, and the policy covers failures.
        return {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "retry": Retry(NoBackoff(), 0),
        }

    def _sync_client(self) -> Any:
        client = self._sync
        if client is None:
            with self._sync_lock:
                client = self._sync
                if client is None:
                    client = self._sync = self._make_sync()
        return client

    def _make_sync(self) -> Any:
        redis = self._redis
        if self.kind == "cluster":
            from redis.cluster import ClusterNode, RedisCluster

            return RedisCluster(**self._cluster_args(ClusterNode, RedisCluster), **self._options())
        return redis.Redis.from_url(self.urls[0], **self._options())

    def _make_async(self) -> Any:
        if self.kind == "cluster":
            from redis.asyncio.cluster import ClusterNode, RedisCluster

            return RedisCluster(
                **self._cluster_args(ClusterNode, RedisCluster), **self._async_options()
            )
        import redis.asyncio

        return redis.asyncio.Redis.from_url(self.urls[0], **self._async_options())

    def _cluster_args(self, node_type: Any, cluster_type: Any) -> Dict[str, Any]:
        nodes = [urlsplit(url) for url in self.urls]
        args: Dict[str, Any] = {
            "startup_nodes": [node_type(p.hostname, p.port or 6379) for p in nodes],
            "username": nodes[0].username,
            "password": nodes[0].password,
            "ssl": nodes[0].scheme.lower() == "rediss",
        }
        args.update(_cluster_options(cluster_type))
        return args

    def _async_options(self) -> Dict[str, Any]:
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        options = self._options()
        options["retry"] = Retry(NoBackoff(), 0)
        return options

    def _async_client(self) -> "_AsyncClient":
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is None:
            entry = self._async[loop] = _AsyncClient(self._make_async())
        return entry

    def _failed(self, exc: BaseException) -> RateLimitBackendError:
        if isinstance(exc, (asyncio.TimeoutError, self._redis.exceptions.TimeoutError)):
            return RateLimitBackendError(
                f"Redis did not answer within {round(self.timeout * 1000)} ms"
            )
        return RateLimitBackendError(f"Redis error: {type(exc).__name__}: {exc}")

    def _evalsha(self, client: Any, keys: Tuple[str, str], args: List[int]) -> Any:
        try:
            return client.evalsha(self.sha, 2, *keys, *args)
        except self._redis.exceptions.NoScriptError:
            client.script_load(self.script)
            return client.evalsha(self.sha, 2, *keys, *args)

    async def _aevalsha(self, entry: "_AsyncClient", keys: Tuple[str, str], args: List[int]) -> Any:
        client = entry.client
        if not entry.loaded:
            # Load the script before a new client's first EVALSHA, once for all the tasks that
            # start at the same time, instead of letting each of them hit NOSCRIPT.
            load = entry.loading
            if load is None or (load.done() and (load.cancelled() or load.exception())):
                load = entry.loading = asyncio.ensure_future(client.script_load(self.script))
            await asyncio.shield(load)
            entry.loaded = True
        try:
            return await client.evalsha(self.sha, 2, *keys, *args)
        except self._redis.exceptions.NoScriptError:
            # One SCRIPT LOAD shared by every task that hit NOSCRIPT at once: a burst of
            # concurrent loads through redis-py's cluster client can break its connections.
            load = entry.loading
            if load is None or load.done():
                load = entry.loading = asyncio.ensure_future(client.script_load(self.script))
            await asyncio.shield(load)
            return await client.evalsha(self.sha, 2, *keys, *args)

    def check(self, key: str, cost: int, tokens: int, consume: bool = True) -> Any:
        keys = redis_keys(self.prefix, key)
        args = self.spec.args(consume, cost, tokens)
        try:
            reply = self._evalsha(self._sync_client(), keys, args)
        except (self._redis.exceptions.RedisError, OSError) as exc:
            self._drop_sync_if_cluster()
            raise self._failed(exc) from exc
        return _result_from_reply(reply, self.spec)

    async def acheck(self, key: str, cost: int, tokens: int, consume: bool = True) -> Any:
        keys = redis_keys(self.prefix, key)
        args = self.spec.args(consume, cost, tokens)
        try:
            entry = self._async_client()
            reply = await asyncio.wait_for(self._aevalsha(entry, keys, args), self.timeout)
        except (self._redis.exceptions.RedisError, OSError, asyncio.TimeoutError) as exc:
            self._drop_async_if_cluster()
            raise self._failed(exc) from exc
        return _result_from_reply(reply, self.spec)

    def reset(self, key: str) -> bool:
        try:
            return bool(self._sync_client().delete(*redis_keys(self.prefix, key)))
        except (self._redis.exceptions.RedisError, OSError) as exc:
            self._drop_sync_if_cluster()
            raise self._failed(exc) from exc

    async def areset(self, key: str) -> bool:
        try:
            client = self._async_client().client
            deleted = await asyncio.wait_for(
                client.delete(*redis_keys(self.prefix, key)), self.timeout
            )
        except (self._redis.exceptions.RedisError, OSError, asyncio.TimeoutError) as exc:
            self._drop_async_if_cluster()
            raise self._failed(exc) from exc
        return bool(deleted)

    def ping(self) -> None:
        try:
            self._sync_client().ping()
        except (self._redis.exceptions.RedisError, OSError) as exc:
            self._drop_sync_if_cluster()
            raise self._failed(exc) from exc

    def _drop_sync_if_cluster(self) -> None:
        # A cluster client that lost every node may not rediscover the slots by itself; a fresh
        # one does, on the next call. A single-server client reconnects on its own.
        if self.kind == "cluster":
            self.close()

    def _drop_async_if_cluster(self) -> None:
        if self.kind == "cluster":
            try:
                self._async.pop(asyncio.get_running_loop(), None)
            except RuntimeError:
                pass

    async def aclose(self) -> None:
        """Closes the current event loop's client."""
        entry = self._async.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry.client.aclose()

    def close(self) -> None:
        client, self._sync = self._sync, None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass


class _AsyncClient:
    """A redis.asyncio client of one event loop, and its pending SCRIPT LOAD (if any)."""

    __slots__ = ("client", "loading", "loaded")

    def __init__(self, client: Any) -> None:
        self.client = client
        self.loading: Optional["asyncio.Future[Any]"] = None
        self.loaded = False


def _cluster_options(cls: Any) -> Dict[str, Any]:
    """Options that keep a redis-py cluster client from retrying on its own (names vary by
    version)."""
    import inspect

    try:
        accepted = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return {}
    wanted = {"cluster_error_retry_attempts": 0, "reinitialize_steps": 1}
    return {k: v for k, v in wanted.items() if k in accepted}


# --- the native path -----------------------------------------------------------------------------


class _NativeRedis:
    """``fast_litellm._native.RedisRateLimiter``: the same script through the Rust client."""

    path = "native"

    def __init__(self, kind: str, urls: List[str], spec: _Spec, prefix: str, timeout: float):
        backend: Union[str, List[str]] = urls[0] if kind == "single" else list(urls)
        self.inner = _flags.native.RedisRateLimiter(
            backend,
            spec.request_interval_ns,
            spec.burst,
            spec.token_interval_ns,
            spec.token_burst,
            key_prefix=prefix,
            timeout=timeout,
        )

    def check(self, key: str, cost: int, tokens: int, consume: bool = True) -> Any:
        if consume:
            return self.inner.check(key, cost, tokens)
        return self.inner.peek(key, cost, tokens)

    def acheck(self, key: str, cost: int, tokens: int, consume: bool = True) -> Any:
        if consume:
            return self.inner.acheck(key, cost, tokens)
        return self.inner.apeek(key, cost, tokens)

    def reset(self, key: str) -> bool:
        return self.inner.reset(key)

    def areset(self, key: str) -> Any:
        return self.inner.areset(key)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        pass


# --- the backend ---------------------------------------------------------------------------------

_live: "weakref.WeakSet[RedisBackend]" = weakref.WeakSet()


def backends_health() -> List[Dict[str, Any]]:
    """``health()`` of every live Redis backend (for ``fast_litellm.health_check()``)."""
    return [backend.health() for backend in list(_live)]


class RedisBackend:
    """The shared state of one ``SimpleRateLimiter`` in Redis (see the module docstring).

    ``path`` forces ``"native"`` or ``"python"``; by default the ``RATE_LIMITING`` feature flag
    decides, as for every feature.
    """

    def __init__(
        self,
        backend: Union[str, Sequence[str]],
        limits: Any,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        on_backend_error: str = "allow",
        timeout: float = DEFAULT_TIMEOUT,
        local: Any = None,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        path: Optional[str] = None,
    ) -> None:
        kind, urls = parse_backend(backend)
        if not isinstance(key_prefix, str):
            raise TypeError(f"key_prefix must be a str, not {type(key_prefix).__name__}")
        if "{" in key_prefix or "}" in key_prefix:
            raise ValueError(
                f"key_prefix {key_prefix!r} must not contain '{{' or '}}' (they would move the "
                "Redis Cluster hash tag)"
            )
        if on_backend_error not in POLICIES:
            raise ValueError(
                f"on_backend_error must be one of {', '.join(map(repr, POLICIES))}, "
                f"got {on_backend_error!r}"
            )
        if on_backend_error == "local" and local is None:
            raise ValueError('on_backend_error="local" needs an in-process limiter (local=...)')
        for value, what in ((timeout, "timeout"), (retry_interval, "retry_interval")):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
        if not 0 < timeout <= 3600:
            raise ValueError(f"timeout must be a number of seconds in (0, 3600], got {timeout!r}")
        if not 0 <= retry_interval <= 3600:
            raise ValueError(f"retry_interval must be in [0, 3600] seconds, got {retry_interval!r}")
        if path not in (None, "native", "python"):
            raise ValueError(f"path must be 'native', 'python' or None, got {path!r}")
        self.kind = kind
        self.urls = urls
        self.spec = _Spec(limits)
        self.key_prefix = key_prefix
        self.on_backend_error = on_backend_error
        self.timeout = float(timeout)
        self.retry_interval = float(retry_interval)
        self.local = local
        self.description = (
            _redact(urls[0]) if kind == "single" else f"cluster [{', '.join(map(_redact, urls))}]"
        )
        # The path is chosen once, when the backend is built (as for every limiter): native
        # when the RATE_LIMITING feature takes it, else redis-py. Both share keys, so instances
        # on different paths still enforce one limit.
        if path is None:
            native = _flags.native is not None and (
                _state.mode == _flags.NATIVE
                or (_state.mode == _flags.PARTIAL and _state.take_native())
            )
            path = "native" if native else "python"
        elif path == "native" and _flags.native is None:
            raise RuntimeError(f"native module unavailable: {_flags.native_import_error}")
        impl_type = _NativeRedis if path == "native" else _PythonRedis
        self._active: Any = impl_type(kind, urls, self.spec, key_prefix, self.timeout)
        self._lock = threading.Lock()
        self._counts = {
            "allowed": 0,
            "denied": 0,
            "backend_errors": 0,
            "policy_allowed": 0,
            "policy_denied": 0,
            "local_checks": 0,
            "local_allowed": 0,
            "local_denied": 0,
        }
        self._down_since: Optional[float] = None
        self._retry_at = 0.0
        self._probing = False
        self._last_latency: Optional[float] = None
        self._last_error: Optional[str] = None
        self._last_success: Optional[float] = None
        _live.add(self)

    @property
    def path(self) -> str:
        """The path this backend's checks take: ``"native"`` or ``"python"``."""
        return self._active.path

    # -- circuit and policy --------------------------------------------------------------------

    def _should_try(self) -> bool:
        """Whether this call goes to Redis: always while it is up; after a failure, one probe per
        ``retry_interval``."""
        if self._down_since is None:
            return True
        with self._lock:
            if self._down_since is None:
                return True
            if self._probing or time.monotonic() < self._retry_at:
                return False
            self._probing = True
            return True

    def _succeeded(self, started: float, allowed: Optional[bool]) -> None:
        """Records an answer from Redis (``allowed`` is None for a peek, which is not counted)."""
        now = time.perf_counter()
        with self._lock:
            self._last_latency = now - started
            self._last_success = time.time()
            if allowed is not None:
                self._counts["allowed" if allowed else "denied"] += 1
            if self._down_since is not None:
                self._down_since = None
                self._probing = False

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            self._counts["backend_errors"] += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
            if self._down_since is None:
                self._down_since = now
            self._retry_at = now + self.retry_interval
            self._probing = False

    def _decide_without_redis(self, key: str, cost: int, tokens: int, consume: bool) -> Any:
        if self.on_backend_error == "local":
            local = self.local
            result = local.check(key, cost, tokens) if consume else local.peek(key, cost, tokens)
            with self._lock:
                self._counts["local_checks"] += 1
                self._counts["local_allowed" if result.allowed else "local_denied"] += 1
            return result
        allowed = self.on_backend_error == "allow"
        with self._lock:
            self._counts["policy_allowed" if allowed else "policy_denied"] += 1
            retry_after = max(self._retry_at - time.monotonic(), 0.0) if not allowed else 0.0
        spec = self.spec
        has_requests = spec.request_interval_ns is not None
        has_tokens = spec.token_interval_ns is not None
        limit = spec.burst if has_requests else spec.token_burst
        return _result_type()(
            allowed=allowed,
            remaining=limit if allowed else 0,
            retry_after=retry_after,
            reset_after=0.0,
            limit=limit,
            remaining_tokens=(spec.token_burst if allowed else 0) if has_tokens else None,
            token_limit=spec.token_burst if has_tokens else None,
        )

    def _native_failure(self, exc: BaseException) -> None:
        _state.record_failure(exc, _flags.settings.max_consecutive_errors)

    # -- the limiter API -----------------------------------------------------------------------

    def check(self, key: str, cost: int = 1, tokens: int = 0, *, consume: bool = True) -> Any:
        key = _validate_key(key)
        cost = _amount(cost, "cost")
        tokens = _amount(tokens, "tokens")
        if not self._should_try():
            return self._decide_without_redis(key, cost, tokens, consume)
        impl = self._active
        started = time.perf_counter()
        try:
            result = impl.check(key, cost, tokens, consume)
        except RateLimitBackendError as exc:
            self._failed(exc)
            return self._decide_without_redis(key, cost, tokens, consume)
        except NativeError as exc:
            self._native_failure(exc)
            raise
        self._succeeded(started, result.allowed if consume else None)
        return result

    def allow(self, key: str, cost: int = 1, tokens: int = 0) -> bool:
        return bool(self.check(key, cost, tokens).allowed)

    def peek(self, key: str, cost: int = 1, tokens: int = 0) -> Any:
        return self.check(key, cost, tokens, consume=False)

    async def acheck(
        self, key: str, cost: int = 1, tokens: int = 0, *, consume: bool = True
    ) -> Any:
        key = _validate_key(key)
        cost = _amount(cost, "cost")
        tokens = _amount(tokens, "tokens")
        if not self._should_try():
            return self._decide_without_redis(key, cost, tokens, consume)
        impl = self._active
        started = time.perf_counter()
        try:
            result = await impl.acheck(key, cost, tokens, consume)
        except RateLimitBackendError as exc:
            self._failed(exc)
            return self._decide_without_redis(key, cost, tokens, consume)
        except NativeError as exc:
            self._native_failure(exc)
            raise
        self._succeeded(started, result.allowed if consume else None)
        return result

    async def aallow(self, key: str, cost: int = 1, tokens: int = 0) -> bool:
        return bool((await self.acheck(key, cost, tokens)).allowed)

    async def apeek(self, key: str, cost: int = 1, tokens: int = 0) -> Any:
        return await self.acheck(key, cost, tokens, consume=False)

    def reset(self, key: str) -> bool:
        """Forgets ``key`` in Redis (and in the local limiter, if any); whether Redis held it.
        Raises ``RateLimitBackendError`` when Redis cannot be reached: a reset is not a check,
        and no policy can stand in for it."""
        key = _validate_key(key)
        if self.local is not None:
            self.local.reset(key)
        return self._active.reset(key)

    async def areset(self, key: str) -> bool:
        key = _validate_key(key)
        if self.local is not None:
            self.local.reset(key)
        return await self._active.areset(key)

    def cleanup(self) -> int:
        """Nothing to do: Redis expires every key when its bucket is full again."""
        if self.local is not None and hasattr(self.local, "cleanup"):
            self.local.cleanup()
        return 0

    def ping(self) -> float:
        """One round trip to Redis (bounded by the timeout); its latency in seconds."""
        started = time.perf_counter()
        self._active.ping()
        return time.perf_counter() - started

    # -- observability -------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``"ok"`` (last call answered), ``"down"`` (failing; the policy decides) or
        ``"unknown"`` (no call yet)."""
        if self._down_since is not None:
            return "down"
        return "ok" if self._last_success is not None else "unknown"

    def health(self) -> Dict[str, Any]:
        with self._lock:
            latency = self._last_latency
            down_since = self._down_since
            info: Dict[str, Any] = {
                "backend": "redis",
                "url": self.description,
                "cluster": self.kind == "cluster",
                "path": self.path,
                "state": self.state,
                "status": "degraded" if down_since is not None else "ok",
                "on_backend_error": self.on_backend_error,
                "last_latency_ms": None if latency is None else round(latency * 1000, 3),
                "last_error": self._last_error,
                "down_for_seconds": (
                    None if down_since is None else round(time.monotonic() - down_since, 3)
                ),
                "backend_errors": self._counts["backend_errors"],
            }
        return info

    def stats(self) -> Dict[str, Any]:
        with self._lock:
            counts = dict(self._counts)
            latency = self._last_latency
        stats: Dict[str, Any] = {
            "backend": "redis",
            "path": self.path,
            "state": self.state,
            # Every answer given, whoever gave it (Redis, the policy, the local limiter).
            "allowed": counts["allowed"] + counts["policy_allowed"] + counts["local_allowed"],
            "denied": counts["denied"] + counts["policy_denied"] + counts["local_denied"],
            "redis_allowed": counts["allowed"],
            "redis_denied": counts["denied"],
            "backend_errors": counts["backend_errors"],
            "fail_open": counts["policy_allowed"],
            "fail_closed": counts["policy_denied"],
            "local_checks": counts["local_checks"],
            "last_latency_ms": None if latency is None else round(latency * 1000, 3),
            "last_error": self._last_error,
        }
        if self.local is not None and hasattr(self.local, "stats"):
            stats["local"] = self.local.stats()
        return stats

    def close(self) -> None:
        """Releases the Python path's connections and stops reporting in ``health_check()``."""
        _live.discard(self)
        self._active.close()

    async def aclose(self) -> None:
        """``close()``, plus the Python path's client of the running event loop."""
        self.close()
        if isinstance(self._active, _PythonRedis):
            await self._active.aclose()

    def __repr__(self) -> str:
        return f"<RedisBackend {self.description} path={self.path} state={self.state}>"
