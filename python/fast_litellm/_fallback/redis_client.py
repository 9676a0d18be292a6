"""The Python path of the Redis rate-limit backend: the check script through redis-py.

The twin of ``fast_litellm._native.RedisRateLimiter``: the same script, key names and replies
(``fast_litellm.ratelimit.redis_protocol``). Every failure of the client library while it runs a
command, whatever its class (``RedisError``, ``RedisClusterException``, ``OSError``, a timeout),
is raised as ``RateLimitBackendError``, so the backend's failure policy sees all of them.

Concurrency: at most ``POOL_SIZE`` commands are in flight per client; a call beyond that waits
for a free connection (within the timeout) instead of failing, because a busy pool is
back-pressure, not an outage. A wait that runs out raises ``RateLimitBackendBusy``.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from typing import Any, Dict, List, Optional, Tuple, Type
from urllib.parse import urlsplit

from .. import _fork
from ..errors import RateLimitBackendError
from ..ratelimit.redis_protocol import (
    ScriptLimits,
    parse_backend,
    redact,
    redis_keys,
    script_text,
)
from ._aio import bounded

__all__ = ["POOL_SIZE", "RateLimitBackendBusy", "RedisPyBudgetClient", "RedisPyClient"]

# Connections per client (per event loop for asyncio): redis-py's own default pool size.
POOL_SIZE = 100

# How long a call waits for one of those connections, in timeouts (at least a second). Waiting
# for our own connections is not waiting for Redis: each holder is done within one timeout, but
# under a burst the wait also holds the event loop's own work for the calls ahead (1,000 records
# at once on one loop, with the default 50 ms timeout, lost ~45% of them to a healthy Redis;
# the native path, one pipelined connection, lost none). The bound only stops a call queued
# behind a pool that never frees.
SLOT_WAIT_TIMEOUTS = 20


class RateLimitBackendBusy(RateLimitBackendError):
    """Every connection stayed busy for the whole wait (``SLOT_WAIT_TIMEOUTS`` timeouts): this
    call is answered by the policy, but Redis itself answered and is not taken for down."""


def _redis_module() -> Any:
    try:
        import redis
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the Python path of the Redis backend needs redis-py: pip install redis"
        ) from None
    return redis


class RedisPyClient:
    """The script through redis-py; every failure raises ``RateLimitBackendError``."""

    path = "python"

    def __init__(self, backend: Any, limits: ScriptLimits, prefix: str, timeout: float) -> None:
        kind, urls = parse_backend(backend)
        self.description = (
            redact(urls[0]) if kind == "single" else f"cluster [{', '.join(map(redact, urls))}]"
        )
        redis = _redis_module()
        self._redis = redis
        # Whatever the client library raises while it runs a command is a failure of that call,
        # answered by the policy: its own errors, RedisClusterException (not a RedisError), OSError,
        # timeouts, and also the ValueError its socket reader raises when a connection is torn
        # down under it by a concurrent disconnect (seen under load with redis-py 8). Our own
        # input is validated before a command starts, so nothing of the caller's is hidden here.
        self._errors: Tuple[Type[BaseException], ...] = (Exception,)
        self.kind, self.urls, self.limits = kind, urls, limits
        self.prefix, self.timeout = prefix, timeout
        self.slot_wait = max(1.0, SLOT_WAIT_TIMEOUTS * timeout)
        self.script = script_text()
        self.sha = hashlib.sha1(self.script.encode("utf-8")).hexdigest()
        self._sync: Any = None
        self._sync_lock = _fork.Lock()
        # Fork-safe: a child gets every slot back (threads holding them stay in the parent).
        self._slots = _fork.BoundedSemaphore(POOL_SIZE)
        # redis.asyncio clients belong to the event loop they were made in: one per loop.
        self._async: "weakref.WeakKeyDictionary[Any, _AsyncClient]" = weakref.WeakKeyDictionary()

    # ---- clients --------------------------------------------------------------------------

    def _options(self, retry_type: Any) -> Dict[str, Any]:
        from redis.backoff import NoBackoff

        # No retries of our own: a check is bounded by one timeout, and the policy covers failures.
        return {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "retry": retry_type(NoBackoff(), 0),
            "max_connections": POOL_SIZE,
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
        from redis.retry import Retry

        if self.kind == "cluster":
            from redis.cluster import ClusterNode, RedisCluster

            return RedisCluster(
                **self._cluster_args(ClusterNode, RedisCluster), **self._options(Retry)
            )
        return self._redis.Redis.from_url(self.urls[0], **self._options(Retry))

    def _make_async(self) -> Any:
        from redis.asyncio.retry import Retry

        if self.kind == "cluster":
            from redis.asyncio.cluster import ClusterNode, RedisCluster

            return RedisCluster(
                **self._cluster_args(ClusterNode, RedisCluster), **self._options(Retry)
            )
        import redis.asyncio

        return redis.asyncio.Redis.from_url(self.urls[0], **self._options(Retry))

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

    def _async_client(self) -> "_AsyncClient":
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is None:
            # A client's connections hold its loop, so a weak key never lets go of a finished
            # loop: the clients of closed loops are dropped here, with their sockets (one loop
            # per `asyncio.run(...)` kept a connection and a descriptor each, until the process
            # ran out of them).
            for closed in [other for other in self._async if other.is_closed()]:
                del self._async[closed]
            entry = self._async[loop] = _AsyncClient(self._make_async())
        return entry

    # ---- errors ---------------------------------------------------------------------------

    def _failed(self, exc: BaseException) -> RateLimitBackendError:
        """The one error a failed call raises."""
        if isinstance(exc, self._redis.exceptions.MaxConnectionsError):
            return RateLimitBackendBusy(f"every Redis connection is busy: {exc}")
        if isinstance(exc, (asyncio.TimeoutError, self._redis.exceptions.TimeoutError)):
            return RateLimitBackendError(
                f"Redis did not answer within {round(self.timeout * 1000)} ms"
            )
        return RateLimitBackendError(f"Redis error: {type(exc).__name__}: {exc}")

    def _busy(self) -> RateLimitBackendBusy:
        return RateLimitBackendBusy(
            f"all {POOL_SIZE} Redis connections stayed busy for {round(self.slot_wait * 1000)} ms"
        )

    # ---- sync -----------------------------------------------------------------------------

    def _run(self, command: Any) -> Any:
        slots = self._slots
        if not slots.acquire(timeout=self.slot_wait):
            raise self._busy()
        try:
            return command(self._sync_client())
        except self._errors as exc:
            if self.kind == "cluster":
                # A cluster client that lost every node may not rediscover the slots by
                # itself; a fresh one does, on the next call.
                self.close()
            raise self._failed(exc) from exc
        finally:
            slots.release()

    def _evalsha(self, client: Any, keys: Tuple[str, str], args: List[int]) -> Any:
        try:
            return client.evalsha(self.sha, 2, *keys, *args)
        except self._redis.exceptions.NoScriptError:
            client.script_load(self.script)
            return client.evalsha(self.sha, 2, *keys, *args)

    def check(self, key: str, cost: int, tokens: int, consume: bool = True) -> Any:
        keys = redis_keys(self.prefix, key)
        args = self.limits.args(consume, cost, tokens)
        reply = self._run(lambda client: self._evalsha(client, keys, args))
        return self.limits.result(reply)

    def reset(self, key: str) -> bool:
        keys = redis_keys(self.prefix, key)
        return bool(self._run(lambda client: client.delete(*keys)))

    def ping(self) -> None:
        self._run(lambda client: client.ping())

    # ---- async ----------------------------------------------------------------------------

    async def _arun(self, command: Any) -> Any:
        try:
            entry = self._async_client()
        except self._errors as exc:  # a cluster client may reach for its nodes when built
            raise self._failed(exc) from exc
        try:
            await bounded(entry.slots.acquire(), self.slot_wait)
        except asyncio.TimeoutError:
            raise self._busy() from None
        cancelling = getattr(asyncio.current_task(), "cancelling", None)
        cancels_before = cancelling() if cancelling is not None else 0
        try:
            result = await bounded(command(entry), self.timeout)
        except self._errors as exc:
            if self.kind == "cluster":
                self._async.pop(asyncio.get_running_loop(), None)
            _raise_if_cancelling(exc)
            raise self._failed(exc) from exc
        finally:
            entry.slots.release()
        if cancelling is not None and cancelling() > cancels_before:
            # redis-py can take a cancellation that arrives while it reads the reply and return
            # the reply anyway (2 cancels in 3 of pending checks, redis-py 8.2): the caller asked
            # to stop, and carrying on would ignore its timeout or shutdown. (3.10 tasks do not
            # say they are being cancelled; there the cancellation stays lost.)
            raise asyncio.CancelledError()
        return result

    async def _aevalsha(self, entry: "_AsyncClient", keys: Tuple[str, str], args: List[int]) -> Any:
        client = entry.client
        if not entry.loaded:
            # Load the script before a new client's first EVALSHA, once for all the tasks that
            # start at the same time, instead of letting each of them hit NOSCRIPT.
            await entry.load_script(self.script)
        try:
            return await client.evalsha(self.sha, 2, *keys, *args)
        except self._redis.exceptions.NoScriptError:
            # SCRIPT FLUSH on the server: one reload, shared by the tasks that hit it at once.
            await entry.load_script(self.script, again=True)
            return await client.evalsha(self.sha, 2, *keys, *args)

    async def acheck(self, key: str, cost: int, tokens: int, consume: bool = True) -> Any:
        keys = redis_keys(self.prefix, key)
        args = self.limits.args(consume, cost, tokens)
        reply = await self._arun(lambda entry: self._aevalsha(entry, keys, args))
        return self.limits.result(reply)

    async def areset(self, key: str) -> bool:
        keys = redis_keys(self.prefix, key)
        return bool(await self._arun(lambda entry: entry.client.delete(*keys)))

    # ---- closing --------------------------------------------------------------------------

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
            except Exception:  # closing a broken client must not raise over the real error
                pass


def _raise_if_cancelling(exc: BaseException) -> None:
    """A cancellation that reached redis-py in the middle of a read can come out as its
    TimeoutError (and a timeout may then return it instead of cancelling): the caller asked
    to cancel, so that is what it gets (Python 3.11+, where tasks say so)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    if cancelling is not None and cancelling():
        raise asyncio.CancelledError() from exc


class _AsyncClient:
    """A redis.asyncio client of one event loop, its connection slots and its script load."""

    __slots__ = ("client", "slots", "loading", "loaded")

    def __init__(self, client: Any) -> None:
        self.client = client
        self.slots = asyncio.Semaphore(POOL_SIZE)
        self.loading: Optional["asyncio.Future[Any]"] = None
        self.loaded = False

    async def load_script(self, script: str, again: bool = False) -> None:
        """One SCRIPT LOAD shared by every task that needs it at once (a burst of concurrent
        loads through redis-py's cluster client can break its connections). A load that was
        cancelled or failed is started again by the next caller."""
        load = self.loading
        if load is None or (
            load.done() and (again or load.cancelled() or load.exception() is not None)
        ):
            load = self.loading = asyncio.ensure_future(self.client.script_load(script))
        await asyncio.shield(load)
        self.loaded = True


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


class RedisPyBudgetClient(RedisPyClient):
    """The budget script through redis-py (``fast_litellm.budget.redis_protocol``): the
    connections, bounds and error mapping of the rate limiter's client, another script."""

    def __init__(self, backend: Any, windows: Any, prefix: str, timeout: float) -> None:
        from ..budget import redis_protocol as budget_protocol

        super().__init__(backend, None, prefix, timeout)  # type: ignore[arg-type]
        self.protocol = budget_protocol
        self.windows = windows
        self.script = budget_protocol.script_text()
        self.sha = hashlib.sha1(self.script.encode("utf-8")).hexdigest()

    def _call(self, key: str, record: bool, amount: int, now_ns: Optional[int]) -> Any:
        name = self.protocol.redis_key(self.prefix, key)
        args = self.protocol.script_args(self.windows, record, amount, now_ns)

        def command(client: Any) -> Any:
            try:
                return client.evalsha(self.sha, 1, name, *args)
            except self._redis.exceptions.NoScriptError:
                client.script_load(self.script)
                return client.evalsha(self.sha, 1, name, *args)

        return self.protocol.views(self.windows, self._run(command))

    async def _acall(self, key: str, record: bool, amount: int, now_ns: Optional[int]) -> Any:
        name = self.protocol.redis_key(self.prefix, key)
        args = self.protocol.script_args(self.windows, record, amount, now_ns)

        async def command(entry: _AsyncClient) -> Any:
            if not entry.loaded:
                await entry.load_script(self.script)
            try:
                return await entry.client.evalsha(self.sha, 1, name, *args)
            except self._redis.exceptions.NoScriptError:
                await entry.load_script(self.script, again=True)
                return await entry.client.evalsha(self.sha, 1, name, *args)

        return self.protocol.views(self.windows, await self._arun(command))

    def record(self, key: str, amount: int, now_ns: Optional[int]) -> Any:
        return self._call(key, True, amount, now_ns)

    def read(self, key: str, now_ns: Optional[int]) -> Any:
        return self._call(key, False, 0, now_ns)

    async def arecord(self, key: str, amount: int, now_ns: Optional[int]) -> Any:
        return await self._acall(key, True, amount, now_ns)

    async def aread(self, key: str, now_ns: Optional[int]) -> Any:
        return await self._acall(key, False, 0, now_ns)

    def reset(self, key: str) -> bool:
        name = self.protocol.redis_key(self.prefix, key)
        return bool(self._run(lambda client: client.delete(name)))

    async def areset(self, key: str) -> bool:
        name = self.protocol.redis_key(self.prefix, key)
        return bool(await self._arun(lambda entry: entry.client.delete(name)))
