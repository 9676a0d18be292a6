"""A pooled HTTP client for LLM APIs: JSON requests, server-sent-event streams, retries on 429 and
overload that honour ``Retry-After``, and live pool statistics.

``AsyncClient`` and ``Client`` choose their path when they are built (``CONNECTION_POOL`` in
``fast_litellm._flags``): the native engine (``fast_litellm._native.HttpClient``: hyper on the
shared tokio runtime, the GIL released while waiting, server-sent events parsed in Rust), or the
fallback engine (``fast_litellm._fallback.http.HttpClient``: httpx with the same limits). Both
engines have one interface, so everything in this module (URLs, JSON, responses, streams, the
statistics of every client) is shared:

- ``HttpClient(**options)``: the options of ``_engine_options``.
- ``request(method, url, headers, body, timeout)`` and ``arequest(...)``: a finished response as
  ``(status, headers, content, elapsed, retries, url, http_version)``.
- ``stream(...)`` and ``astream(...)``: an open response whose body is read piece by piece
  (``read_chunk``/``aread_chunk``: bytes or ``None`` at the end) or as events
  (``read_events``/``aread_events``: a list of ``(event, data, id, retry)`` or ``None``).
- ``stats()``, ``cleanup_expired()``, ``close()``, ``aclose()``.

A request is never re-run on the other path: it may already have reached the server. A native
fault (``NativeError``) is counted and raised.
"""

from __future__ import annotations

import json as _json
import sys
import weakref
from dataclasses import dataclass
from time import perf_counter_ns
from typing import (
    Any,
    AsyncIterator,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _flags
from ._flags import native as _native
from .errors import HTTPStatusError, NativeError

__all__ = [
    "AsyncClient",
    "AsyncStreamResponse",
    "Client",
    "ConnectionPoolConfig",
    "Headers",
    "Response",
    "RetryConfig",
    "ServerSentEvent",
    "StreamResponse",
    "TimeoutConfig",
    "cleanup_expired_connections",
    "get_connection_pool_stats",
    "health_probe",
]

_state = _flags.feature("CONNECTION_POOL")

HeaderPairs = List[Tuple[str, str]]
HeadersArg = Union[Mapping[str, str], Sequence[Tuple[str, str]], None]
TimeoutTuple = Tuple[Optional[float], Optional[float], Optional[float], Optional[float]]


# ---- configuration -------------------------------------------------------------------------------


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    if value > sys.maxsize:
        raise ValueError(f"{name} must be at most sys.maxsize (no limit), got {value}")
    return value


def _seconds(name: str, value: Any, *, allow_none: bool = True, allow_zero: bool = True) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not (value == value and value not in (float("inf"), float("-inf"))):
        raise ValueError(f"{name} must be a finite number of seconds, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound} seconds, got {value}")
    if value > _MAX_SECONDS:
        # The native engine's timers stop at this bound; a longer wait is no limit (None).
        raise ValueError(
            f"{name} must be at most {_MAX_SECONDS:.0e} seconds (None for no limit), got {value}"
        )
    return float(value)


_MAX_SECONDS = 1e9


@dataclass(frozen=True)
class ConnectionPoolConfig:
    """Limits of a client's connection pool.

    ``max_connections``: requests in flight at once, each on a connection of its own (more wait
    up to ``TimeoutConfig.pool``). ``max_keepalive_connections``: idle connections kept per host
    for reuse. ``keepalive_expiry``: seconds an idle connection is kept. ``stream_buffer_size``:
    bytes of a streamed body read before Python is handed the pieces (events split across reads
    are joined first, so a stream of small events does not wake Python for each one).
    """

    max_connections: int = 100
    max_keepalive_connections: int = 20
    keepalive_expiry: float = 300.0
    stream_buffer_size: int = 65536

    def __post_init__(self) -> None:
        _positive_int("max_connections", self.max_connections)
        if isinstance(self.max_keepalive_connections, bool) or not isinstance(
            self.max_keepalive_connections, int
        ):
            raise TypeError("max_keepalive_connections must be an int")
        if self.max_keepalive_connections < 0:
            raise ValueError("max_keepalive_connections must be >= 0")
        _seconds("keepalive_expiry", self.keepalive_expiry, allow_none=False)
        _positive_int("stream_buffer_size", self.stream_buffer_size)


@dataclass(frozen=True)
class TimeoutConfig:
    """Seconds each phase of a request may take; ``None`` is no limit.

    ``connect``: to open a connection (TLS included). ``read``: the longest silence of the
    server, waiting for the response headers or for the next piece of the body. ``write``: the
    longest stall while sending the request body. ``pool``: the longest wait for a free
    connection when ``max_connections`` are busy.
    """

    connect: Optional[float] = 10.0
    read: Optional[float] = 60.0
    write: Optional[float] = 10.0
    pool: Optional[float] = 10.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool"):
            _seconds(name, getattr(self, name), allow_zero=False)

    def as_tuple(self) -> TimeoutTuple:
        return (self.connect, self.read, self.write, self.pool)


@dataclass(frozen=True)
class RetryConfig:
    """When a request is sent again.

    Retried: connection failures (nothing reached the server) and responses whose status is in
    ``retry_on_status``; never a timeout after the request was sent, nor a broken response
    (the server may have acted on it). The wait before retry ``n`` (from 1) is a random share of
    ``backoff_base * 2 ** (n - 1)`` capped at ``backoff_max`` ("equal jitter": between half and
    all of it), or, with ``respect_retry_after``, what the server's ``Retry-After`` asks for
    (seconds or an HTTP date). A ``Retry-After`` longer than ``backoff_max`` is not waited for:
    the response is returned to the caller, who can decide.
    """

    max_retries: int = 2
    retry_on_status: Tuple[int, ...] = (429, 500, 502, 503, 504)
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    respect_retry_after: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise TypeError("max_retries must be an int")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        statuses = tuple(self.retry_on_status)
        for status in statuses:
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status < 600:
                raise ValueError(f"retry_on_status holds {status!r}: expected HTTP status codes")
        object.__setattr__(self, "retry_on_status", statuses)
        _seconds("backoff_base", self.backoff_base, allow_none=False)
        _seconds("backoff_max", self.backoff_max, allow_none=False)


def _timeout_arg(timeout: Any, timeout_config: Optional[TimeoutConfig]) -> TimeoutConfig:
    """``timeout_config`` wins; a plain number sets all four limits, as in httpx."""
    if timeout_config is not None:
        if not isinstance(timeout_config, TimeoutConfig):
            raise TypeError("timeout_config must be a TimeoutConfig")
        return timeout_config
    if timeout is None:
        return TimeoutConfig()
    if isinstance(timeout, TimeoutConfig):
        return timeout
    seconds = _seconds("timeout", timeout, allow_none=False, allow_zero=False)
    return TimeoutConfig(seconds, seconds, seconds, seconds)


def _request_timeout(timeout: Any) -> Optional[TimeoutTuple]:
    if timeout is None:
        return None
    return _timeout_arg(timeout, None).as_tuple()


# ---- headers, responses, events ------------------------------------------------------------------


def _header_pairs(headers: HeadersArg) -> HeaderPairs:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs = []
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise TypeError(
                "headers must be a mapping or a sequence of (name, value) pairs"
            ) from None
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(
                f"header names and values must be str, got {type(name).__name__}: "
                f"{type(value).__name__}"
            )
        pairs.append((name, value))
    return pairs


class Headers(Mapping[str, str]):
    """Response headers: a read-only, case-insensitive mapping. A name sent several times maps to
    its values joined by ``", "``; ``get_list(name)`` gives them apart. A value whose bytes are
    not ASCII reads as UTF-8 when they are UTF-8, else as Latin-1 (one character per byte)."""

    __slots__ = ("_pairs", "_index")

    def __init__(self, pairs: Sequence[Tuple[str, str]]) -> None:
        self._pairs = list(pairs)
        self._index: Optional[Dict[str, List[str]]] = None

    def _lookup(self) -> Dict[str, List[str]]:
        index = self._index
        if index is None:
            index = {}
            for name, value in self._pairs:
                index.setdefault(name.lower(), []).append(value)
            self._index = index
        return index

    def __getitem__(self, name: str) -> str:
        return ", ".join(self._lookup()[name.lower()])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lookup()

    def __iter__(self) -> Iterator[str]:
        return iter(self._lookup())

    def __len__(self) -> int:
        return len(self._lookup())

    def get_list(self, name: str) -> List[str]:
        return list(self._lookup().get(name.lower(), ()))

    def raw(self) -> List[Tuple[str, str]]:
        """The headers as received: names in their case, in order, repeats kept."""
        return list(self._pairs)

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"


def _charset(headers: Headers) -> str:
    content_type = headers.get("content-type", "")
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"


def _raise_for_status(status: int, url: str, response: Any) -> None:
    if status >= 400:
        kind = "Client error" if status < 500 else "Server error"
        raise HTTPStatusError(f"{kind} '{status}' for url '{url}'", response=response)


class Response:
    """A finished response: the whole body has been read."""

    __slots__ = (
        "status_code",
        "headers",
        "content",
        "elapsed",
        "retries",
        "url",
        "http_version",
        "method",
    )

    def __init__(
        self,
        status_code: int,
        headers: Headers,
        content: bytes,
        elapsed: float,
        retries: int,
        url: str,
        http_version: str,
        method: str,
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        # Seconds from sending the first attempt to the last byte of the body, retries included.
        self.elapsed = elapsed
        self.retries = retries
        self.url = url
        self.http_version = http_version
        self.method = method

    @classmethod
    def _from_engine(cls, method: str, raw: Tuple[Any, ...]) -> "Response":
        status, headers, content, elapsed, retries, url, http_version = raw
        return cls(status, Headers(headers), content, elapsed, retries, url, http_version, method)

    @property
    def text(self) -> str:
        """The body decoded with the charset of ``Content-Type`` (UTF-8 when it names none)."""
        try:
            return self.content.decode(_charset(self.headers), errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return _json.loads(self.content)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def raise_for_status(self) -> "Response":
        """Raises ``HTTPStatusError`` for a 4xx or 5xx status; returns the response otherwise."""
        _raise_for_status(self.status_code, self.url, self)
        return self

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"


class ServerSentEvent:
    """One event of a ``text/event-stream`` body: ``event`` (``"message"`` when the stream names
    none), ``data`` (its ``data:`` lines joined by newlines), ``id`` and ``retry`` if given."""

    __slots__ = ("event", "data", "id", "retry")

    def __init__(
        self,
        data: str,
        event: str = "message",
        id: Optional[str] = None,
        retry: Optional[int] = None,
    ) -> None:
        self.event = event
        self.data = data
        self.id = id
        self.retry = retry

    def json(self) -> Any:
        return _json.loads(self.data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return (self.event, self.data, self.id, self.retry) == (
            other.event,
            other.data,
            other.id,
            other.retry,
        )

    def __hash__(self) -> int:
        return hash((self.event, self.data, self.id, self.retry))

    def __repr__(self) -> str:
        return f"ServerSentEvent(event={self.event!r}, data={self.data!r}, id={self.id!r})"


def _events(batch: List[Tuple[str, str, Optional[str], Optional[int]]]) -> List[ServerSentEvent]:
    return [ServerSentEvent(data, event, id_, retry) for event, data, id_, retry in batch]


class _StreamBase:
    __slots__ = ("_open", "_raw", "_method")

    def __init__(self, open_: Any, method: str) -> None:
        self._open = open_
        self._raw: Any = None
        self._method = method

    def _opened(self) -> Any:
        if self._raw is None:
            raise RuntimeError("the stream is not open: use it in `with` / `async with` first")
        return self._raw

    @property
    def status_code(self) -> int:
        return int(self._opened().status_code)

    @property
    def headers(self) -> Headers:
        return Headers(self._opened().headers)

    @property
    def url(self) -> str:
        return str(self._opened().url)

    @property
    def http_version(self) -> str:
        return str(self._opened().http_version)

    @property
    def retries(self) -> int:
        return int(self._opened().retries)

    @property
    def elapsed(self) -> float:
        """Seconds from sending the first attempt to the response headers."""
        return float(self._opened().elapsed)

    @property
    def time_to_first_byte(self) -> Optional[float]:
        """Seconds from sending the request to the first byte of the body (``None`` before)."""
        value = self._opened().time_to_first_byte
        return None if value is None else float(value)

    @property
    def time_to_first_event(self) -> Optional[float]:
        """Seconds from sending the request to the first complete event (``None`` before)."""
        value = self._opened().time_to_first_event
        return None if value is None else float(value)

    def raise_for_status(self) -> None:
        _raise_for_status(self.status_code, self.url, self)


class AsyncStreamResponse(_StreamBase):
    """A response read as it arrives, from ``AsyncClient.stream``.

    ``async with client.stream("POST", url, json=body) as stream:`` then ``async for event in
    stream`` (server-sent events), or ``stream.aiter_bytes()`` (the raw body). Iterating without
    ``async with`` opens the stream on first use and closes it at the end.
    """

    __slots__ = ()

    async def __aenter__(self) -> "AsyncStreamResponse":
        if self._raw is None:
            self._raw = await self._open()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        raw = self._raw
        if raw is not None:
            # The fallback releases its connection asynchronously; the native close is immediate.
            close = getattr(raw, "aclose", None)
            if close is not None:
                await close()
            else:
                raw.close()

    async def __aiter__(self) -> AsyncIterator[ServerSentEvent]:
        async with self:
            raw = self._raw
            # What is already buffered is taken without an await (the native engine buffers
            # while Python is busy); only an empty buffer waits.
            try_read = getattr(raw, "try_read_events", None)
            while True:
                batch = try_read() if try_read is not None else []
                if batch == []:
                    batch = await raw.aread_events()
                if batch is None:
                    return
                for event in _events(batch):
                    yield event

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        async with self:
            raw = self._raw
            try_read = getattr(raw, "try_read_chunk", None)
            while True:
                chunk = try_read() if try_read is not None else b""
                if chunk == b"":
                    chunk = await raw.aread_chunk()
                if chunk is None:
                    return
                yield chunk

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])


class StreamResponse(_StreamBase):
    """A response read as it arrives, from ``Client.stream``: ``with client.stream(...) as s:``
    then ``for event in s`` or ``s.iter_bytes()``."""

    __slots__ = ()

    def __enter__(self) -> "StreamResponse":
        if self._raw is None:
            self._raw = self._open()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        raw = self._raw
        if raw is not None:
            raw.close()

    def __iter__(self) -> Iterator[ServerSentEvent]:
        with self:
            raw = self._raw
            while True:
                batch = raw.read_events()
                if batch is None:
                    return
                yield from _events(batch)

    def iter_bytes(self) -> Iterator[bytes]:
        with self:
            raw = self._raw
            while True:
                chunk = raw.read_chunk()
                if chunk is None:
                    return
                yield chunk

    def read(self) -> bytes:
        return b"".join(self.iter_bytes())


# ---- clients ---------------------------------------------------------------------------------------

# Every engine alive, for `get_connection_pool_stats()` and `cleanup_expired_connections()`.
_engines: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _json_body(value: Any) -> bytes:
    # The encoding httpx uses, so a body is byte-for-byte what LiteLLM would have sent.
    return _json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _body(json: Any, content: Any) -> Tuple[Optional[bytes], Optional[str]]:
    """The body bytes and the content type it implies."""
    if json is not None:
        if content is not None:
            raise TypeError("pass json= or content=, not both")
        return _json_body(json), "application/json"
    if content is None:
        return None, None
    if isinstance(content, str):
        return content.encode(), None
    if isinstance(content, (bytes, bytearray, memoryview)):
        return bytes(content), None
    raise TypeError(f"content must be bytes or str, not {type(content).__name__}")


def _request_headers(headers: HeadersArg, content_type: Optional[str]) -> HeaderPairs:
    pairs = _header_pairs(headers)
    if content_type is not None and not any(n.lower() == "content-type" for n, _ in pairs):
        pairs.append(("content-type", content_type))
    return pairs


def _base_url(base_url: Optional[str]) -> Optional[str]:
    if base_url is None:
        return None
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, not {type(base_url).__name__}")
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
    return base_url


def _engine_options(
    base_url: Optional[str],
    headers: HeadersArg,
    pool: Optional[ConnectionPoolConfig],
    timeout: TimeoutConfig,
    retry: Optional[RetryConfig],
    max_concurrency: Optional[int],
    adaptive_concurrency: bool,
    http2: bool,
    gzip_threshold: Optional[int],
) -> Dict[str, Any]:
    pool = ConnectionPoolConfig() if pool is None else pool
    retry = RetryConfig() if retry is None else retry
    if not isinstance(pool, ConnectionPoolConfig):
        raise TypeError("pool must be a ConnectionPoolConfig")
    if not isinstance(retry, RetryConfig):
        raise TypeError("retry must be a RetryConfig")
    if max_concurrency is not None:
        _positive_int("max_concurrency", max_concurrency)
    if gzip_threshold is not None:
        if isinstance(gzip_threshold, bool) or not isinstance(gzip_threshold, int):
            raise TypeError("gzip_threshold must be an int number of bytes or None")
        if gzip_threshold < 0:
            raise ValueError("gzip_threshold must be >= 0")
    return {
        "base_url": _base_url(base_url),
        "headers": _header_pairs(headers),
        "max_connections": pool.max_connections,
        "max_keepalive_connections": pool.max_keepalive_connections,
        "keepalive_expiry": float(pool.keepalive_expiry),
        "stream_buffer_size": pool.stream_buffer_size,
        "connect_timeout": timeout.connect,
        "read_timeout": timeout.read,
        "write_timeout": timeout.write,
        "pool_timeout": timeout.pool,
        "max_retries": retry.max_retries,
        "retry_on_status": list(retry.retry_on_status),
        "backoff_base": float(retry.backoff_base),
        "backoff_max": float(retry.backoff_max),
        "respect_retry_after": bool(retry.respect_retry_after),
        "max_concurrency": max_concurrency,
        "adaptive_concurrency": bool(adaptive_concurrency),
        "http2": bool(http2),
        "gzip_threshold": gzip_threshold,
    }


def _new_engine(options: Dict[str, Any]) -> Tuple[Any, bool]:
    """The engine of a new client and whether it is native (asked once per client)."""
    if _native is not None and _state.choose():
        try:
            engine = _native.HttpClient(**options)
        except NativeError as exc:
            _state.native_failed(exc)
        else:
            _engines.add(engine)
            return engine, True
    try:
        from ._fallback.http import HttpClient
    except ModuleNotFoundError as exc:
        if exc.name not in ("httpx", "httpcore"):
            raise
        raise ImportError(
            "the HTTP client's fallback engine (used when the native path is off or unavailable) "
            "needs httpx: pip install 'fast-litellm[http]'"
        ) from exc

    fallback = HttpClient(**options)
    _engines.add(fallback)
    return fallback, False


class _ClientBase:
    def __init__(
        self,
        base_url: Optional[str] = None,
        *,
        headers: HeadersArg = None,
        pool: Optional[ConnectionPoolConfig] = None,
        timeout: Union[float, TimeoutConfig, None] = None,
        timeout_config: Optional[TimeoutConfig] = None,
        retry: Optional[RetryConfig] = None,
        max_concurrency: Optional[int] = None,
        adaptive_concurrency: bool = False,
        http2: bool = False,
        gzip_threshold: Optional[int] = None,
    ) -> None:
        options = _engine_options(
            base_url,
            headers,
            pool,
            _timeout_arg(timeout, timeout_config),
            retry,
            max_concurrency,
            adaptive_concurrency,
            http2,
            gzip_threshold,
        )
        self._engine, self.native = _new_engine(options)
        self.base_url = options["base_url"]

    def pool_stats(self) -> Dict[str, Any]:
        """This client's pool: connections active and idle (in total and per host), requests,
        retries, errors by kind, connections opened and reused, pool-wait percentiles, and the
        concurrency limit."""
        return dict(self._engine.stats())

    def cleanup_expired_connections(self) -> int:
        """Closes idle connections older than ``keepalive_expiry``; how many were closed."""
        return int(self._engine.cleanup_expired())

    def _record(self, started: int, response: Optional["Response"]) -> None:
        """Records one request for monitoring: an error when it raised, refused on a 429."""
        if response is None:
            outcome = "error"
        else:
            outcome = "refused" if response.status_code == 429 else "ok"
        path = "native" if self.native else "fallback"
        _flags.record_call("http_request", path, perf_counter_ns() - started, outcome)

    def _record_stream(self, started: int, raw: Any) -> None:
        """Records the opening of a stream (up to its status and headers) for monitoring."""
        if raw is None:
            outcome = "error"
        else:
            outcome = "refused" if getattr(raw, "status_code", None) == 429 else "ok"
        path = "native" if self.native else "fallback"
        _flags.record_call("http_stream", path, perf_counter_ns() - started, outcome)

    def _prepare(
        self, json: Any, content: Any, headers: HeadersArg
    ) -> Tuple[HeaderPairs, Optional[bytes]]:
        body, content_type = _body(json, content)
        return _request_headers(headers, content_type), body


class AsyncClient(_ClientBase):
    """An asyncio HTTP client over one connection pool (see the module notes).

    ``await client.post("/chat/completions", json=body)`` returns a ``Response``;
    ``client.stream("POST", url, json=body)`` reads server-sent events as they arrive. Status
    codes are returned, not raised (``Response.raise_for_status()`` raises).
    """

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: Any = None,
        headers: HeadersArg = None,
        timeout: Union[float, TimeoutConfig, None] = None,
    ) -> Response:
        pairs, body = self._prepare(json, content, headers)
        started = perf_counter_ns()
        try:
            raw = await self._engine.arequest(method, url, pairs, body, _request_timeout(timeout))
        except BaseException as exc:
            self._record(started, None)
            if isinstance(exc, NativeError):
                _state.native_failed(exc)
            raise
        response = Response._from_engine(method, raw)
        self._record(started, response)
        return response

    async def get(
        self,
        url: str,
        *,
        headers: HeadersArg = None,
        timeout: Union[float, TimeoutConfig, None] = None,
    ) -> Response:
        return await self.request("GET", url, headers=headers, timeout=timeout)

    async def post(
        self,
        url: str,
        *,
        json: Any = None,
        content: Any = None,
        headers: HeadersArg = None,
        timeout: Union[float, TimeoutConfig, None] = None,
    ) -> Response:
        return await self.request(
            "POST", url, json=json, content=content, headers=headers, timeout=timeout
        )

    def stream(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: Any = None,
        headers: HeadersArg = None,
        timeout: Union[float, TimeoutConfig, None] = None,
    ) -> AsyncStreamResponse:
        pairs, body = self._prepare(json, content, headers)
        engine, limits = self._engine, _request_timeout(timeout)

        async def open_() -> Any:
            started = perf_counter_ns()
            try:
                raw = await engine.astream(method, url, pairs, body, limits)
            except BaseException as exc:
                self._record_stream(started, None)
                if isinstance(exc, NativeError):
                    _state.native_failed(exc)
                raise
            self._record_stream(started, raw)
            return raw

        return AsyncStreamResponse(open_, method)

    async def aclose(self) -> None:
        """Closes the client: idle connections now; requests and streams still in flight are
        read to their end (and counted in ``pool_stats()``), then their connections close.
        Later requests raise ``RuntimeError``."""
        await self._engine.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()


class Client(_ClientBase):
    """The blocking twin of ``AsyncClient`` (the GIL is released while a request waits)."""

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: Any = None,
        headers: HeadersArg = None,
        timeout: Union[float, TimeoutConfig, None] = None,
    ) -> Response:
        pairs, body = self._prepare(json, content, headers)
        started = perf_counter_ns()
        try:
            raw = self._engine.request(method, url, pairs, body, _request_timeout(timeout))
        except BaseException as exc:
            self._record(started, None)
            if isinstance(exc, NativeError):
                _state.native_failed(exc)
            raise
        response = Response._from_engine(method, raw)
        self._record(started, response)
        return response

    def get(
        self,
        url: str,
        *,
        headers: HeadersArg = None,
        timeout: Union[float, TimeoutConfig, None] = None,
    ) -> Response:
        return self.request("GET", url, headers=headers, timeout=timeout)

    def post(
        self,
        url: str,
        *,
        json: Any = None,
        content: Any = None,
        headers: HeadersArg = None,
        timeout: Union[float, TimeoutConfig, None] = None,
    ) -> Response:
        return self.request(
            "POST", url, json=json, content=content, headers=headers, timeout=timeout
        )

    def stream(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: Any = None,
        headers: HeadersArg = None,
        timeout: Union[float, TimeoutConfig, None] = None,
    ) -> StreamResponse:
        pairs, body = self._prepare(json, content, headers)
        engine, limits = self._engine, _request_timeout(timeout)

        def open_() -> Any:
            started = perf_counter_ns()
            try:
                raw = engine.stream(method, url, pairs, body, limits)
            except BaseException as exc:
                self._record_stream(started, None)
                if isinstance(exc, NativeError):
                    _state.native_failed(exc)
                raise
            self._record_stream(started, raw)
            return raw

        return StreamResponse(open_, method)

    def close(self) -> None:
        """Closes the client as ``AsyncClient.aclose`` does."""
        self._engine.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


# ---- every client at once ------------------------------------------------------------------------

_SUMMED = (
    "active_connections",
    "idle_connections",
    "in_flight",
    "requests",
    "retries",
    "connections_opened",
    "connections_reused",
    "connections_closed",
)


def get_connection_pool_stats() -> Dict[str, Any]:
    """The pools of every live client: totals, errors by kind, and per host
    (``{"127.0.0.1:8000": {"active_connections": ..., "idle_connections": ..., ...}}``)."""
    totals: Dict[str, Any] = {name: 0 for name in _SUMMED}
    errors: Dict[str, int] = {}
    hosts: Dict[str, Dict[str, int]] = {}
    clients = {"native": 0, "fallback": 0}
    for engine in list(_engines):
        stats = engine.stats()
        clients["native" if stats.get("native") else "fallback"] += 1
        for name in _SUMMED:
            totals[name] += stats.get(name, 0)
        for kind, count in stats.get("errors", {}).items():
            errors[kind] = errors.get(kind, 0) + count
        for host, numbers in stats.get("hosts", {}).items():
            merged = hosts.setdefault(host, {})
            for name, value in numbers.items():
                merged[name] = merged.get(name, 0) + value
    totals["errors"] = errors
    totals["hosts"] = hosts
    totals["clients"] = clients
    return totals


def cleanup_expired_connections() -> int:
    """Closes idle connections past their client's ``keepalive_expiry``, in every client; how
    many were closed."""
    return sum(int(engine.cleanup_expired()) for engine in list(_engines))


def health_sections() -> Dict[str, Any]:
    """The pools of live clients, for ``health_check()`` (reported when a client exists)."""
    stats = get_connection_pool_stats()
    if not sum(stats["clients"].values()):
        return {}
    pools = {
        "status": "ok",
        "clients": stats["clients"],
        "active_connections": stats["active_connections"],
        "idle_connections": stats["idle_connections"],
        "in_flight": stats["in_flight"],
        "requests": stats["requests"],
        "errors": stats["errors"],
    }
    return {"http_pools": [pools]}


# An event stream that exercises the parser's rules: a comment, a named event with an id, data
# over two lines, CRLF line ends and a `retry:` field.
_PROBE_STREAM = b": hi\r\nevent: update\r\nid: 7\r\ndata: a\r\ndata: b\r\nretry: 250\r\n\r\n"
_PROBE_EVENTS = [("update", "a\nb", "7", 250)]


def health_probe() -> Optional[str]:
    """Parses a known event stream on the native path: None when right, else what was wrong
    (no network: a health check must not depend on a server)."""
    events = [tuple(event) for event in _native.parse_sse(_PROBE_STREAM)]
    if events == _PROBE_EVENTS:
        return None
    return f"native parse {events!r} != expected {_PROBE_EVENTS!r}"
