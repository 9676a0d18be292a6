"""httpx transports over the pooled client: ``httpx.AsyncClient(transport=AsyncTransport())``, and
LiteLLM or the OpenAI SDK through it, send every request through ``fast_litellm.http`` with no
other change, streaming included.

httpx keeps doing what it does above a transport (URLs, cookies, redirects, auth, decoding
``Content-Encoding``, raising for status when asked); the transport sends the request as httpx
built it and hands back the raw body as it arrives. Its errors are httpx's own exception types
(``httpx.ReadTimeout``, ``httpx.ConnectError``...), which is what code written for httpx
catches.

Retries: off by default (``RetryConfig(max_retries=0)``), as in httpx's own transport; the
clients above (the OpenAI SDK, LiteLLM) retry themselves. Pass ``retry=RetryConfig()`` to have
429s and overloads retried here instead, honouring ``Retry-After``.

When the native path is off (``CONNECTION_POOL``), the transports are httpx's own
(``httpx.AsyncHTTPTransport``/``HTTPTransport``) with the same limits.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional, Tuple, Type, Union

try:
    import httpx
except ModuleNotFoundError as exc:  # pragma: no cover - exercised in a bare virtualenv
    if exc.name != "httpx":
        raise
    raise ImportError(
        "fast_litellm.httpx provides httpx transports and needs httpx: "
        "pip install 'fast-litellm[http]'"
    ) from exc

from . import errors
from .http import (
    AsyncClient,
    Client,
    ConnectionPoolConfig,
    RetryConfig,
    TimeoutConfig,
    TimeoutTuple,
)

__all__ = ["AsyncTransport", "Transport"]

_NO_RETRIES = RetryConfig(max_retries=0)

# Ours, most specific first, to httpx's.
_ERRORS: Tuple[Tuple[Type[BaseException], Type[httpx.TransportError]], ...] = (
    (errors.ConnectTimeout, httpx.ConnectTimeout),
    (errors.ReadTimeout, httpx.ReadTimeout),
    (errors.WriteTimeout, httpx.WriteTimeout),
    (errors.PoolTimeout, httpx.PoolTimeout),
    (errors.ConnectError, httpx.ConnectError),
    (errors.ReadError, httpx.ReadError),
    (errors.RemoteProtocolError, httpx.RemoteProtocolError),
    (errors.HTTPError, httpx.TransportError),
)


def _httpx_error(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    for ours, theirs in _ERRORS:
        if isinstance(exc, ours):
            return theirs(str(exc), request=request)
    return httpx.TransportError(str(exc), request=request)


def _request_error(exc: ValueError, request: httpx.Request) -> httpx.TransportError:
    """httpx's class for a request its own transport refuses: a URL scheme it does not speak,
    or a header h11 would not send."""
    if request.url.scheme not in ("http", "https"):
        return httpx.UnsupportedProtocol(
            f"Request URL has an unsupported protocol '{request.url.scheme}://'.",
            request=request,
        )
    return httpx.LocalProtocolError(str(exc), request=request)


def _target(url: httpx.URL) -> str:
    """The URL to send to: without ``user:password@``, which httpx has already turned into
    authentication above the transport (or left out for an ``auth=`` of the caller's); the
    client would make it Basic authentication again."""
    return str(url.copy_with(userinfo=b"")) if url.userinfo else str(url)


def _timeouts(request: httpx.Request) -> Optional[TimeoutTuple]:
    timeout: Dict[str, Optional[float]] = request.extensions.get("timeout") or {}
    if not timeout:
        return None
    return (timeout.get("connect"), timeout.get("read"), timeout.get("write"), timeout.get("pool"))


def _response(
    status: int,
    headers: List[Tuple[bytes, bytes]],
    http_version: bytes,
    reason: Optional[bytes],
    stream: Union[httpx.SyncByteStream, httpx.AsyncByteStream],
    kind: Type[httpx.Response] = httpx.Response,
) -> httpx.Response:
    # Header bytes both ways, as httpx keeps them: a value that is not ASCII passes unchanged.
    # The reason phrase as received, as httpx's own transport gives it (none over HTTP/2).
    extensions = (
        {"http_version": http_version}
        if reason is None
        else {"http_version": http_version, "reason_phrase": reason}
    )
    return kind(status, headers=headers, stream=stream, extensions=extensions)


class _WholeResponse(httpx.Response):
    """A response whose body came whole with its headers (see `_finished`). Reading it (what
    httpx's client does for a request that is not streamed) marks it read and closed, as reading
    the stream would: ``is_stream_consumed``, ``is_closed`` and ``num_bytes_downloaded`` are
    what httpx's own transport leaves, without the generators that reading the stream takes."""

    def read(self) -> bytes:
        self._read_whole()
        return self._content

    async def aread(self) -> bytes:
        self._read_whole()
        return self._content

    def _read_whole(self) -> None:
        if not self.is_stream_consumed:
            self.is_stream_consumed = True
            self.is_closed = True
            self._num_bytes_downloaded = len(self._content)


def _finished(
    status: int,
    headers: List[Tuple[bytes, bytes]],
    http_version: bytes,
    reason: Optional[bytes],
    content: bytes,
    elapsed: float,
) -> httpx.Response:
    """A response whose body came whole with its headers. httpx would read it by iterating the
    stream (several generators per request, most of what the transport cost); a body without
    ``Content-Encoding`` is handed over as read, ``Response.content`` set as ``Response.read()``
    sets it, the stream left unread for whoever iterates it (``aiter_raw`` of a streamed
    request). An encoded body is left to httpx, which decodes it as it reads."""
    stream = httpx.ByteStream(content)
    for name, _ in headers:
        if name == b"content-encoding":  # names come lower-cased
            return _response(status, headers, http_version, reason, stream)
    response = _response(status, headers, http_version, reason, stream, _WholeResponse)
    response._content = content
    # httpx sets it when the stream is closed, which a response read already never is.
    response.elapsed = timedelta(seconds=elapsed)
    return response


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, raw: Any, request: httpx.Request) -> None:
        self._raw = raw
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                chunk = await self._raw.aread_chunk()
            except errors.HTTPError as exc:
                raise _httpx_error(exc, self._request) from exc
            if chunk is None:
                return
            yield chunk

    async def aclose(self) -> None:
        self._raw.close()


class _SyncBody(httpx.SyncByteStream):
    def __init__(self, raw: Any, request: httpx.Request) -> None:
        self._raw = raw
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                chunk = self._raw.read_chunk()
            except errors.HTTPError as exc:
                raise _httpx_error(exc, self._request) from exc
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        self._raw.close()


def _limits(pool: Optional[ConnectionPoolConfig]) -> httpx.Limits:
    pool = pool or ConnectionPoolConfig()
    return httpx.Limits(
        max_connections=pool.max_connections,
        max_keepalive_connections=pool.max_keepalive_connections,
        keepalive_expiry=pool.keepalive_expiry,
    )


def _client_options(
    pool: Optional[ConnectionPoolConfig],
    timeout: Optional[TimeoutConfig],
    retry: Optional[RetryConfig],
    max_concurrency: Optional[int],
    adaptive_concurrency: bool,
    http2: bool,
) -> Dict[str, Any]:
    return {
        "pool": pool,
        "timeout_config": timeout,
        "retry": retry or _NO_RETRIES,
        "max_concurrency": max_concurrency,
        "adaptive_concurrency": adaptive_concurrency,
        "http2": http2,
    }


class AsyncTransport(httpx.AsyncBaseTransport):
    """An httpx async transport over a pooled ``AsyncClient`` (built from the same options, or
    given as ``client=``)."""

    def __init__(
        self,
        *,
        pool: Optional[ConnectionPoolConfig] = None,
        timeout: Optional[TimeoutConfig] = None,
        retry: Optional[RetryConfig] = None,
        max_concurrency: Optional[int] = None,
        adaptive_concurrency: bool = False,
        http2: bool = False,
        client: Optional[AsyncClient] = None,
    ) -> None:
        self.client = client or AsyncClient(
            **_client_options(pool, timeout, retry, max_concurrency, adaptive_concurrency, http2)
        )
        self.native = self.client.native
        self._engine = self.client._engine
        # Native path off: httpx's own transport, with the same limits.
        self._httpx: Optional[httpx.AsyncHTTPTransport] = (
            None if self.native else httpx.AsyncHTTPTransport(limits=_limits(pool), http2=http2)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._httpx is not None:
            return await self._httpx.handle_async_request(request)
        body = await request.aread()
        try:
            # A small body of known length (the usual JSON answer) comes with the headers: the
            # whole exchange is one await (see `HttpClient.send`).
            status, headers, version, content, raw, elapsed, reason = await self._engine.asend(
                request.method,
                _target(request.url),
                request.headers.raw,
                body or None,
                _timeouts(request),
            )
        except errors.HTTPError as exc:
            raise _httpx_error(exc, request) from exc
        except ValueError as exc:
            raise _request_error(exc, request) from exc
        if raw is None:
            return _finished(status, headers, version, reason, content, elapsed)
        return _response(status, headers, version, reason, _AsyncBody(raw, request))

    async def aclose(self) -> None:
        if self._httpx is not None:
            await self._httpx.aclose()
        await self.client.aclose()


class Transport(httpx.BaseTransport):
    """An httpx transport over a pooled ``Client`` (the GIL is released while it waits)."""

    def __init__(
        self,
        *,
        pool: Optional[ConnectionPoolConfig] = None,
        timeout: Optional[TimeoutConfig] = None,
        retry: Optional[RetryConfig] = None,
        max_concurrency: Optional[int] = None,
        adaptive_concurrency: bool = False,
        http2: bool = False,
        client: Optional[Client] = None,
    ) -> None:
        self.client = client or Client(
            **_client_options(pool, timeout, retry, max_concurrency, adaptive_concurrency, http2)
        )
        self.native = self.client.native
        self._engine = self.client._engine
        self._httpx: Optional[httpx.HTTPTransport] = (
            None if self.native else httpx.HTTPTransport(limits=_limits(pool), http2=http2)
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._httpx is not None:
            return self._httpx.handle_request(request)
        body = request.read()
        try:
            status, headers, version, content, raw, elapsed, reason = self._engine.send(
                request.method,
                _target(request.url),
                request.headers.raw,
                body or None,
                _timeouts(request),
            )
        except errors.HTTPError as exc:
            raise _httpx_error(exc, request) from exc
        except ValueError as exc:
            raise _request_error(exc, request) from exc
        if raw is None:
            return _finished(status, headers, version, reason, content, elapsed)
        return _response(status, headers, version, reason, _SyncBody(raw, request))

    def close(self) -> None:
        if self._httpx is not None:
            self._httpx.close()
        self.client.close()
