"""A real HTTP/1.1 server on 127.0.0.1 for the HTTP client's tests, whose misbehaviour is scripted.

It runs an asyncio loop in a background thread and speaks HTTP/1.1 itself over asyncio streams
(no framework), so it can do what real servers do on a bad day: answer late, reset a connection
mid-body, close keep-alive connections with or without saying so, send garbage. It counts the
connections it accepts, so a client's claims about reuse can be checked against reality.

Routes (the path picks the behaviour, with or without a ``/v1`` prefix as an API's base URL
has; query parameters tune it):

- ``/echo``: the request as JSON: ``method``, ``path``, ``headers`` (pairs, as received),
  ``body`` (text; a gzip body is decompressed first), ``body_length``, ``body_sha256``,
  ``wire_length`` (bytes on the wire). ``?summary=1`` leaves out ``body``.
- ``/bytes/<n>``: ``n`` bytes of ``pattern(n)``; ``?gzip=1`` sends them gzip-compressed
  (``Content-Encoding: gzip``).
- ``/sse/<name>``: the chunks registered with ``sse(name, chunks)``, each one written and flushed
  on its own (chunked transfer encoding), as ``text/event-stream``.
- ``/status/<code>?id=<id>&times=<n>&retry_after=<value>``: ``code`` (with ``Retry-After`` when
  given) for the first ``n`` requests of ``id``, then 200 with ``{"attempts": k}``; with
  ``&stall=1`` the refusal's body stops short and the server waits until it stops.
- ``/slow?seconds=30``: answers after that long, or when the server stops (for read timeouts).
- ``/slow-upload?seconds=1``: waits that long after the request head before it reads the body
  (an upload that stalls, then completes), then answers as ``/echo?summary=1``.
- ``/drip?bytes=8&every=0.5``: the head at once (``Content-Length`` of ``bytes``), then the body
  one byte every ``every`` seconds.
- ``/reset?rst=1``: declares ``Content-Length: 1000``, sends 10 bytes, closes (with ``rst``: a TCP
  reset).
- ``/garbage``: answers bytes that are not HTTP, then closes.
- ``/close``: answers with ``Connection: close`` and closes.
- ``/drop``: answers as if keeping the connection, then closes it without a word.
- ``/hold/<name>``: answers only once ``release(name)`` is called (``wait_arrived(name)`` tells
  when the request is in), or the server stops.
- ``/answer/<name>/...``: the response registered with ``answer(name, status, headers, body)``
  (any path below the name, so an API base URL can point at it), every time; the requests are
  counted per name (``answered(name)``).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import socket
import struct
import threading
from typing import AsyncIterator, Dict, Iterator, List, Optional, Set, Tuple
from urllib.parse import parse_qs, urlsplit

import pytest

__all__ = ["HttpTestServer", "Request", "http_server", "pattern"]

_START_TIMEOUT = 10.0


def pattern(size: int) -> bytes:
    """``size`` bytes that are not all alike (a shifted or truncated body shows)."""
    block = bytes(range(251))  # a prime length: no power-of-two boundary lines up with it
    return (block * (size // len(block) + 1))[:size]


class Request:
    __slots__ = ("method", "target", "path", "query", "headers", "body")

    def __init__(
        self, method: str, target: str, headers: List[Tuple[str, str]], body: bytes
    ) -> None:
        self.method = method
        self.target = target
        parts = urlsplit(target)
        self.path = parts.path
        self.query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        self.headers = headers
        self.body = body

    def header(self, name: str) -> Optional[str]:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


def _response(
    status: int,
    body: bytes = b"",
    headers: Tuple[Tuple[str, str], ...] = (),
    *,
    close: bool = False,
    content_length: Optional[int] = None,
    reason: Optional[str] = None,
) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status') if reason is None else reason}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _json(status: int, value: object, *, close: bool = False) -> bytes:
    body = json.dumps(value).encode()
    return _response(status, body, (("Content-Type", "application/json"),), close=close)


_REASONS = {
    200: "OK",
    307: "Temporary Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Unavailable",
}


class HttpTestServer:
    """The server; ``start()`` and ``stop()`` (or a ``with`` block) bound its life."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.connections_accepted = 0
        self.requests_served = 0
        self._scripts: Dict[str, List[bytes]] = {}
        self._answers: Dict[str, bytes] = {}
        self._answered: Dict[str, int] = {}
        self._attempts: Dict[str, int] = {}
        self._arrived: Dict[str, threading.Event] = {}
        self._released: Dict[str, threading.Event] = {}
        self._open: Set[asyncio.StreamWriter] = set()
        self._tasks: Set["asyncio.Task[None]"] = set()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping: Optional[asyncio.Event] = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def open_connections(self) -> int:
        return len(self._open)

    # -- scripting, from the test's thread --

    def sse(self, name: str, chunks: List[bytes]) -> str:
        """Registers the chunks of ``/sse/<name>``; returns that path."""
        self._scripts[name] = list(chunks)
        return f"/sse/{name}"

    def answer(
        self,
        name: str,
        status: int,
        headers: Tuple[Tuple[str, str], ...],
        body: bytes,
        reason: Optional[str] = None,
    ) -> str:
        """Registers the response of every path under ``/answer/<name>/`` (with ``reason`` as
        its status line's reason phrase when given); returns that path (without the slash)."""
        self._answers[name] = _response(status, body, headers, reason=reason)
        self._answered[name] = 0
        return f"/answer/{name}"

    def answered(self, name: str) -> int:
        """How many requests ``/answer/<name>/...`` has had."""
        return self._answered[name]

    def hold(self, name: str) -> str:
        """Prepares ``/hold/<name>``; returns that path."""
        self._arrived[name] = threading.Event()
        self._released[name] = threading.Event()
        return f"/hold/{name}"

    def arrived(self, name: str) -> bool:
        """Whether the request of ``/hold/<name>`` has reached the server."""
        return self._arrived[name].is_set()

    def wait_arrived(self, name: str, timeout: float = 30.0) -> bool:
        return self._arrived[name].wait(timeout)

    def release(self, name: str) -> None:
        self._released[name].set()

    # -- life --

    def start(self) -> "HttpTestServer":
        ready = threading.Event()
        failure: List[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._stopping = asyncio.Event()
                server = loop.run_until_complete(
                    asyncio.start_server(self._serve, self.host, 0, backlog=1024)
                )
                self.port = server.sockets[0].getsockname()[1]
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                server.close()
                loop.run_until_complete(server.wait_closed())

        self._thread = threading.Thread(target=run, name="http-test-server", daemon=True)
        self._thread.start()
        if not ready.wait(_START_TIMEOUT) or failure:
            raise RuntimeError(f"the test HTTP server did not start: {failure}")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(_START_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_START_TIMEOUT)
        loop.close()

    async def _shutdown(self) -> None:
        assert self._stopping is not None
        self._stopping.set()
        for event in self._released.values():
            event.set()
        for writer in list(self._open):
            writer.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> "HttpTestServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the protocol --

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections_accepted += 1
        self._open.add(writer)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                self.requests_served += 1
                if not await self._respond(request, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, asyncio.CancelledError):
                pass
            # Only now: once a test sees the count drop, the socket is closed (on loopback the
            # client has its FIN already).
            self._open.discard(writer)

    async def _until_stopped(self, seconds: Optional[float] = None) -> None:
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _respond(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        """Answers ``request``; whether the connection stays open."""
        path = request.path[3:] if request.path.startswith("/v1/") else request.path
        route, _, rest = path.strip("/").partition("/")
        keep_alive = (request.header("connection") or "").lower() != "close"
        if route == "echo" or route == "slow-upload":
            writer.write(_json(200, _echo(request)))
        elif route == "bytes":
            if request.query.get("gzip") == "1":
                body = gzip.compress(pattern(int(rest)))
                writer.write(_response(200, body, (("Content-Encoding", "gzip"),)))
            else:
                writer.write(_response(200, pattern(int(rest))))
        elif route == "sse":
            await self._sse(self._scripts[rest], writer)
        elif route == "status":
            answer = self._status(int(rest), request)
            if request.query.get("stall") == "1" and not answer.startswith(b"HTTP/1.1 200"):
                # The refusal's head and part of its body, then nothing until the server stops.
                writer.write(answer[:-5])
                await writer.drain()
                await self._until_stopped()
                return False
            writer.write(answer)
        elif route == "slow":
            await self._until_stopped(float(request.query.get("seconds", "30")))
            writer.write(_json(200, {"slow": True}))
        elif route == "drip":
            # The head at once, then the body a byte at a time, `every` seconds apart.
            pieces, every = int(request.query.get("bytes", "8")), float(request.query["every"])
            writer.write(_response(200, b"", content_length=pieces))
            for _ in range(pieces):
                await writer.drain()
                await self._until_stopped(every)
                writer.write(b"x")
        elif route == "reset":
            writer.write(_response(200, pattern(10), content_length=1000))
            await writer.drain()
            if request.query.get("rst") == "1":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            return False
        elif route == "header":
            # A header whose value is the bytes given in hex (?hex=), which need not be ASCII.
            value = bytes.fromhex(request.query.get("hex", "")).decode("latin-1")
            writer.write(_response(200, b"ok", (("X-Value", value),)))
        elif route == "answer":
            name = rest.partition("/")[0]
            self._answered[name] += 1
            writer.write(self._answers[name])
        elif route == "garbage":
            writer.write(b"this is not HTTP at all\r\n\r\n")
            await writer.drain()
            return False
        elif route == "close":
            writer.write(_json(200, {"closing": True}, close=True))
            await writer.drain()
            return False
        elif route == "drop":
            writer.write(_json(200, {"dropping": True}))
            await writer.drain()
            return False
        elif route == "hold":
            self._arrived[rest].set()
            released = self._released[rest]
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, released.wait)
            writer.write(_json(200, {"held": rest}))
        else:
            writer.write(_json(404, {"error": f"no route {request.path}"}))
        await writer.drain()
        return keep_alive

    def _status(self, status: int, request: Request) -> bytes:
        key = request.query.get("id", "")
        attempts = self._attempts.get(key, 0) + 1
        self._attempts[key] = attempts
        if attempts > int(request.query.get("times", "1")):
            return _json(200, {"attempts": attempts})
        headers: Tuple[Tuple[str, str], ...] = ()
        if "retry_after" in request.query:
            headers = (("Retry-After", request.query["retry_after"]),)
        body = json.dumps({"attempts": attempts}).encode()
        return _response(status, body, (("Content-Type", "application/json"), *headers))

    @staticmethod
    async def _sse(chunks: List[bytes], writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for chunk in chunks:
            if chunk:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                # One turn of the loop between chunks, so they tend to leave as separate segments.
                await asyncio.sleep(0)
        writer.write(b"0\r\n\r\n")


def _echo(request: Request) -> Dict[str, object]:
    body = request.body
    encoding = (request.header("content-encoding") or "").lower()
    if encoding == "gzip":
        body = gzip.decompress(body)
    echoed: Dict[str, object] = {
        "method": request.method,
        "path": request.target,
        "headers": [list(pair) for pair in request.headers],
        "content_encoding": encoding or None,
        "body_length": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "wire_length": len(request.body),
    }
    if request.query.get("summary") != "1":
        echoed["body"] = body.decode("utf-8", "replace")
    return echoed


async def _read_request(reader: asyncio.StreamReader) -> Optional[Request]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed the connection between requests
    lines = head[:-4].decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name, value.strip()))
    lowered = {name.lower(): value for name, value in headers}
    if "/slow-upload" in target:
        await asyncio.sleep(float(parse_qs(urlsplit(target).query).get("seconds", ["1"])[0]))
    if lowered.get("transfer-encoding", "").lower() == "chunked":
        body = b"".join([piece async for piece in _chunks(reader)])
    else:
        body = await reader.readexactly(int(lowered.get("content-length", "0")))
    return Request(method, target, headers, body)


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return
        yield await reader.readexactly(size)
        await reader.readexactly(2)


@pytest.fixture
def http_server() -> "Iterator[HttpTestServer]":
    """A server of the test's own (its connection counts are the test's alone)."""
    server = HttpTestServer().start()
    try:
        yield server
    finally:
        server.stop()
