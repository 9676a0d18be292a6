"""fast_litellm.http against a real server on 127.0.0.1 (tests/http_server.py), on both engines,
through ``Client`` and ``AsyncClient`` alike; then the parts both engines must agree on exactly
(the event-stream parser, ``Retry-After``, the backoff), with hypothesis.

Every API test runs four times: native and fallback engine, blocking and asyncio client. The
asyncio clients run on one event loop in a background thread, so a test drives both kinds the
same way from its own thread (``Api``) and can look at the pool while a request is in flight.

Nothing here waits on a wall clock to decide a result: a slow server is far slower than the
timeout under test (and stops when the test ends), and a state that takes a moment to settle
(a connection closed on its event loop's next turn, a keep-alive that must expire) is polled
for with a generous deadline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import email.utils
import gzip
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Coroutine, Dict, Iterator, List, Optional, Tuple

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import fast_litellm
from fast_litellm import _flags, http
from fast_litellm._fallback import http as fallback
from fast_litellm.errors import (
    ConnectError,
    ConnectTimeout,
    HTTPStatusError,
    PoolTimeout,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    WriteTimeout,
)

from . import http_server as servers
from .conftest import LOOP_KINDS, new_loop
from .http_proxy import ForwardProxy
from .http_server import HttpTestServer, pattern
from .redis_server import free_port

http_server = servers.http_server

# The native engine joins these tests once the extension has it: every test below then runs on
# it too, and the parity tests compare it with the fallback.
NATIVE_HTTP = _flags.native is not None and hasattr(_flags.native, "HttpClient")
requires_native_http = pytest.mark.skipif(
    not NATIVE_HTTP, reason="the native module has no HttpClient yet"
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEADLINE = 30.0  # for states that settle on their own; a test never takes this long unless broken
FAST_RETRY = http.RetryConfig(backoff_base=0.001, backoff_max=0.01)
SHORT_READ = http.TimeoutConfig(read=0.2)
TEN_MB = 10 * 1024 * 1024


# ---- driving both kinds of client from the test's thread --------------------------------------


class BackgroundLoop:
    """An event loop running in its own thread for the asyncio clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def submit(self, work: Coroutine[Any, Any, Any]) -> "concurrent.futures.Future[Any]":
        return asyncio.run_coroutine_threadsafe(work, self.loop)

    def run(self, work: Coroutine[Any, Any, Any]) -> Any:
        return self.submit(work).result(DEADLINE * 4)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(DEADLINE)
        self.loop.close()


class Api:
    """One client, blocking or asyncio, driven the same way."""

    def __init__(self, client: Any, loop: Optional[BackgroundLoop]) -> None:
        self.client = client
        self.loop = loop
        self._threads = concurrent.futures.ThreadPoolExecutor(max_workers=4)

    @property
    def native(self) -> bool:
        return bool(self.client.native)

    def request(self, method: str, url: str, **options: Any) -> http.Response:
        if self.loop is not None:
            return self.loop.run(self.client.request(method, url, **options))
        return self.client.request(method, url, **options)

    def get(self, url: str, **options: Any) -> http.Response:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> http.Response:
        return self.request("POST", url, **options)

    def background(self, method: str, url: str, **options: Any) -> "concurrent.futures.Future[Any]":
        """A request left running while the test looks on."""
        if self.loop is not None:
            return self.loop.submit(self.client.request(method, url, **options))
        return self._threads.submit(self.client.request, method, url, **options)

    def repeat(self, calls: List[Tuple[str, str]]) -> List[int]:
        """The status of each ``(method, url)``, one after the other."""
        if self.loop is None:
            return [self.client.request(method, url).status_code for method, url in calls]

        async def run() -> List[int]:
            return [(await self.client.request(m, u)).status_code for m, u in calls]

        return self.loop.run(run())

    def stream(self, method: str, url: str, *, raw: bool = False, **options: Any) -> Any:
        """``(stream, items)``: the stream (closed) and its events, or its chunks with ``raw``."""
        response = self.client.stream(method, url, **options)
        if self.loop is None:
            with response as stream:
                return stream, list(stream.iter_bytes() if raw else stream)

        async def run() -> Any:
            async with response as stream:
                if raw:
                    return stream, [chunk async for chunk in stream.aiter_bytes()]
                return stream, [event async for event in stream]

        return self.loop.run(run())

    def first_event(self, method: str, url: str) -> http.ServerSentEvent:
        """Reads one event of a stream and leaves it."""
        response = self.client.stream(method, url)
        if self.loop is None:
            with response as stream:
                return next(iter(stream))

        async def run() -> http.ServerSentEvent:
            async with response as stream:
                async for event in stream:
                    return event
            raise AssertionError("no event")

        return self.loop.run(run())

    def stats(self) -> Dict[str, Any]:
        return self.client.pool_stats()

    def cleanup(self) -> int:
        return int(self.client.cleanup_expired_connections())

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        if self.loop is not None:
            self.loop.run(self.client.aclose())
        else:
            self.client.close()


# Connections a sequential caller may open beyond one, by path (see
# test_stream_read_and_reuse_after_close).
SEQUENTIAL_SLACK = {True: 1, False: 0}


def settle(condition: Callable[[], bool], what: str) -> None:
    """Waits for ``condition`` (a state reached on another thread's or loop's next turn)."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.005)


# ---- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def background_loop() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.stop()


@contextlib.contextmanager
def engine_for_new_clients(name: str) -> Iterator[str]:
    """New clients get this engine (``CONNECTION_POOL`` on or off); the flag is restored after."""
    state = _flags.feature("CONNECTION_POOL")
    saved = (state.enabled, state.rollout, state.source)
    fast_litellm.configure("connection_pool", rust=name == "native", rollout=100)
    try:
        yield name
    finally:
        fast_litellm.configure("connection_pool", rust=saved[0], rollout=saved[1])
        state.source = saved[2]


@pytest.fixture(params=[pytest.param("native", marks=requires_native_http), "fallback"])
def engine(request: Any) -> Iterator[str]:
    with engine_for_new_clients(request.param) as name:
        yield name


@pytest.fixture(params=["sync", "async"])
def kind(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def make_client(
    engine: str, kind: str, background_loop: BackgroundLoop
) -> Iterator[Callable[..., Api]]:
    """``make_client(base_url, **options)``: a ``Client`` or an ``AsyncClient`` on ``engine``,
    closed at the end of the test."""
    made: List[Api] = []

    def make(base_url: Optional[str] = None, **options: Any) -> Api:
        options.setdefault("retry", FAST_RETRY)
        if kind == "sync":
            api = Api(http.Client(base_url, **options), None)
        else:
            api = Api(http.AsyncClient(base_url, **options), background_loop)
        made.append(api)
        assert api.native == (engine == "native")
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture
def client(make_client: Callable[..., Api], http_server: HttpTestServer) -> Api:
    """A client with the server as its base URL and the default options."""
    return make_client(http_server.url)


def host_of(server: HttpTestServer) -> str:
    return f"{server.host}:{server.port}"


# ---- requests and responses ---------------------------------------------------------------------


def test_json_round_trip(make_client: Callable[..., Api], http_server: HttpTestServer) -> None:
    client = make_client(http_server.url, headers={"Authorization": "Bearer a", "X-Team": "t"})
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "héllo 你好 🙂"}]}
    response = client.post("/echo", json=body, headers={"authorization": "Bearer b"})

    assert response.status_code == 200 and response.is_success
    assert response.retries == 0 and response.elapsed > 0
    assert response.url == f"{http_server.url}/echo"
    assert response.http_version == "HTTP/1.1"
    assert response.headers["content-type"] == "application/json"
    echoed = response.json()
    assert json.loads(response.text) == echoed
    assert echoed["method"] == "POST" and echoed["path"] == "/echo"
    assert json.loads(echoed["body"]) == body
    sent = [(name.lower(), value) for name, value in echoed["headers"]]
    # The request's own header wins over the client's, whatever the case of its name.
    assert [v for n, v in sent if n == "authorization"] == ["Bearer b"]
    assert ("x-team", "t") in sent
    assert ("content-type", "application/json") in sent


def test_headers_of_the_response_keep_order_and_repeats(client: Api) -> None:
    # A Retry-After over backoff_max: returned as it is.
    response = client.get("/status/429?id=h&times=1&retry_after=3600")
    raw = response.headers.raw()
    assert [name.lower() for name, _ in raw][:2] == ["content-type", "retry-after"]
    assert response.headers.get_list("Retry-After") == ["3600"]


# Header values that are not ASCII: UTF-8 where the bytes are UTF-8, Latin-1 (one character per
# byte) otherwise, as httpx reads them; never a replacement character, never an error.
NON_ASCII_HEADER_VALUES = [
    (b"plain", "plain"),
    (b"caf\xc3\xa9 \xe2\x9c\x93", "café ✓"),
    (b"caf\xe9 \xff", "café ÿ"),
]


@pytest.mark.parametrize("raw, text", NON_ASCII_HEADER_VALUES)
def test_non_ascii_response_header_values(client: Api, raw: bytes, text: str) -> None:
    response = client.get(f"/header?hex={raw.hex()}")
    assert response.status_code == 200
    assert response.headers["x-value"] == text


def test_ten_megabyte_bodies(client: Api) -> None:
    upload = pattern(TEN_MB)
    echoed = client.post("/echo?summary=1", content=upload).json()
    assert echoed["body_length"] == TEN_MB
    assert echoed["body_sha256"] == hashlib.sha256(upload).hexdigest()

    response = client.get(f"/bytes/{TEN_MB}")
    assert len(response.content) == TEN_MB and response.content == upload


# Odd splits on purpose: inside CRLF, inside a field name, inside a 3-byte UTF-8 character, a
# comment, an event split over many chunks, data over several lines, a BOM, a lone CR as a line end.
SSE_CHUNKS = [
    b"\xef\xbb",
    b"\xbf: a comment to ignore\r",
    b"\nda",
    b"ta: first\r\n\r",
    b"\nevent: update\nid: 7\nretry: 250\ndata: line one\ndata: line two\n\n",
    b"data: \xe4\xbd",
    b"\xa0\xe5\xa5\xbd\r\r",
    b"data:no space\n",
    b"data:  two spaces\n\n",
    b"event: ignored without data\n\n",
    b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n',
    b"data: [DONE]\n\n",
    b"data: unterminated at the end",
]
SSE_EVENTS = [
    http.ServerSentEvent("first"),
    http.ServerSentEvent("line one\nline two", event="update", id="7", retry=250),
    http.ServerSentEvent("你好"),
    http.ServerSentEvent("no space\n two spaces"),
    http.ServerSentEvent('{"choices": [{"delta": {"content": "hi"}}]}'),
    http.ServerSentEvent("[DONE]"),
]


def test_server_sent_events_with_odd_chunking(client: Api, http_server: HttpTestServer) -> None:
    path = http_server.sse("chat", SSE_CHUNKS)
    stream, events = client.stream("POST", path, json={"stream": True})
    assert events == SSE_EVENTS
    assert events[4].json()["choices"][0]["delta"]["content"] == "hi"
    assert stream.status_code == 200 and stream.retries == 0
    assert stream.headers["content-type"] == "text/event-stream"
    assert stream.time_to_first_byte is not None and stream.time_to_first_event is not None
    assert 0 <= stream.elapsed <= stream.time_to_first_byte <= stream.time_to_first_event


def test_raw_stream_bytes_equal_the_body(client: Api, http_server: HttpTestServer) -> None:
    _, chunks = client.stream("GET", http_server.sse("raw", SSE_CHUNKS), raw=True)
    assert b"".join(chunks) == b"".join(SSE_CHUNKS)
    stream, chunks = client.stream("GET", "/bytes/1000000", raw=True)
    assert b"".join(chunks) == pattern(1000000)
    assert stream.time_to_first_event is None


def test_stream_read_and_reuse_after_close(client: Api, http_server: HttpTestServer) -> None:
    for _ in range(3):
        _, events = client.stream("GET", http_server.sse("again", SSE_CHUNKS))
        assert events == SSE_EVENTS
    settle(
        lambda: client.stats()["active_connections"] == 0, "the streams gave back their connection"
    )
    # Reused. The native path may open one more: hyper-util races a new connection against
    # the one coming back to its pool when a request follows a response at once (the client
    # lets the return settle first, which makes it rare, not impossible, on a loaded machine).
    assert http_server.connections_accepted <= 1 + SEQUENTIAL_SLACK[client.native]
    assert client.stats()["connections_reused"] >= 2 - SEQUENTIAL_SLACK[client.native]


def test_leaving_a_stream_early_frees_its_connection(
    client: Api, http_server: HttpTestServer
) -> None:
    path = http_server.sse("early", [b"data: one\n\n", b"data: two\n\n" * 10000])
    assert client.first_event("GET", path) == http.ServerSentEvent("one")
    # Its body was not read to the end: the connection cannot serve another request.
    settle(
        lambda: client.stats()["active_connections"] == 0 and client.stats()["in_flight"] == 0,
        "the stream gave its connection back",
    )
    assert client.get("/echo").status_code == 200


# ---- retries ----------------------------------------------------------------------------------------


def _past_http_date() -> str:
    return email.utils.formatdate(time.time() - 3600, usegmt=True)


@pytest.mark.parametrize("retry_after", ["0", "date"])
def test_429_with_retry_after_then_success(client: Api, retry_after: str) -> None:
    value = _past_http_date() if retry_after == "date" else retry_after
    response = client.get(
        f"/status/429?id=ra-{retry_after}&times=1&retry_after={value.replace(' ', '%20')}"
    )
    assert response.status_code == 200 and response.retries == 1
    assert response.json() == {"attempts": 2}
    assert client.stats()["retries"] == 1


def test_retry_after_is_what_decides_the_wait(
    make_client: Callable[..., Api], http_server: HttpTestServer
) -> None:
    slow_backoff = http.RetryConfig(backoff_base=3600.0, backoff_max=3600.0)
    client = make_client(http_server.url, retry=slow_backoff)
    response = client.get("/status/429?id=decides&times=1&retry_after=0")
    assert response.status_code == 200 and response.retries == 1


def test_retry_after_longer_than_backoff_max_is_returned(client: Api) -> None:
    response = client.get("/status/429?id=long&times=5&retry_after=3600")
    assert response.status_code == 429 and response.retries == 0
    assert response.headers["retry-after"] == "3600"


def test_503_then_success(client: Api) -> None:
    response = client.get("/status/503?id=once&times=1")
    assert response.status_code == 200 and response.retries == 1


def test_retries_exhausted_returns_the_last_response(
    make_client: Callable[..., Api], http_server: HttpTestServer
) -> None:
    retry = http.RetryConfig(max_retries=3, backoff_base=0.001, backoff_max=0.01)
    client = make_client(http_server.url, retry=retry)
    response = client.get("/status/503?id=always&times=1000")
    assert response.status_code == 503 and response.retries == 3
    assert response.json() == {"attempts": 4}
    stats = client.stats()
    assert stats["retries"] == 3 and stats["requests"] == 4
    with pytest.raises(HTTPStatusError) as raised:
        response.raise_for_status()
    assert raised.value.response is response


def test_a_status_not_listed_is_not_retried(client: Api) -> None:
    response = client.get("/status/500?id=listed&times=1")
    assert response.retries == 1  # 500 is in the default list
    response = client.get("/status/404?id=unlisted&times=1")
    assert response.status_code == 404 and response.retries == 0


def test_no_retry_when_max_retries_is_zero(
    make_client: Callable[..., Api], http_server: HttpTestServer
) -> None:
    client = make_client(http_server.url, retry=http.RetryConfig(max_retries=0))
    response = client.get("/status/429?id=zero&times=1&retry_after=0")
    assert response.status_code == 429 and response.retries == 0


# ---- failures -----------------------------------------------------------------------------------


def test_slow_server_read_timeout_is_not_retried(
    make_client: Callable[..., Api], http_server: HttpTestServer
) -> None:
    client = make_client(http_server.url, timeout_config=SHORT_READ)
    with pytest.raises(ReadTimeout):
        client.get("/slow")
    assert isinstance(ReadTimeout("x"), TimeoutError)
    # The server may have acted on it: it is not sent again.
    assert http_server.requests_served == 1
    stats = client.stats()
    assert stats["errors"]["read_timeout"] == 1 and stats["retries"] == 0


def test_closed_port_is_a_connect_error_retried(make_client: Callable[..., Api]) -> None:
    client = make_client(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConnectError):
        client.get("/")
    stats = client.stats()
    # Nothing reached a server: each retry was safe, and each failed the same way.
    assert stats["retries"] == FAST_RETRY.max_retries
    assert stats["errors"]["connect"] == FAST_RETRY.max_retries + 1
    assert stats["requests"] == 0 and stats["connections_opened"] == 0


@contextlib.contextmanager
def listener_that_never_connects() -> Iterator[int]:
    """A port on 127.0.0.1 whose accept queue is full (``listen(0)``, one connection waiting,
    never accepted): the kernel drops further connection requests, so a connect hangs."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.socket()
    try:
        filler.connect(("127.0.0.1", port))  # completes: it fills the queue
        yield port
    finally:
        filler.close()
        listener.close()


def test_a_requests_own_connect_timeout_replaces_the_clients(
    make_client: Callable[..., Api],
) -> None:
    # As httpx's per-request Timeout(..., connect=...) (the OpenAI SDK's connect=5.0 through
    # the transport): the client's own connect limit here is none at all.
    with listener_that_never_connects() as port:
        client = make_client(
            f"http://127.0.0.1:{port}",
            timeout_config=http.TimeoutConfig(connect=None),
            retry=http.RetryConfig(max_retries=0),
        )
        outcome: List[BaseException] = []

        def request() -> None:
            try:
                client.get("/", timeout=http.TimeoutConfig(connect=0.2))
            except BaseException as exc:  # noqa: BLE001 - what it raised is the answer
                outcome.append(exc)

        thread = threading.Thread(target=request, daemon=True)
        thread.start()
        thread.join(DEADLINE)  # a bound on "never returns", not a speed
        assert outcome and isinstance(outcome[0], ConnectTimeout), outcome


@pytest.mark.parametrize("limit", ["max_connections", "max_concurrency"])
def test_pool_exhausted_is_a_pool_timeout(
    make_client: Callable[..., Api], http_server: HttpTestServer, limit: str
) -> None:
    options: Dict[str, Any] = {"timeout_config": http.TimeoutConfig(pool=0.2)}
    if limit == "max_connections":
        options["pool"] = http.ConnectionPoolConfig(max_connections=1)
    else:
        options["max_concurrency"] = 1
    client = make_client(http_server.url, **options)
    busy = client.background("GET", http_server.hold("busy"))
    assert http_server.wait_arrived("busy")
    with pytest.raises(PoolTimeout):
        client.get("/echo")
    http_server.release("busy")
    assert busy.result(DEADLINE).status_code == 200
    stats = client.stats()
    assert stats["errors"]["pool_timeout"] == 1
    assert stats["pool_wait_ms"]["count"] >= 2 and stats["pool_wait_ms"]["max"] > 0
    assert client.get("/echo").status_code == 200


@pytest.fixture
def half_closing_server() -> Iterator[int]:
    """A port on 127.0.0.1 whose server reads the first KB of each connection, then closes its
    side for writing (a FIN, no answer) and never reads again, with a tiny receive buffer: an
    upload stalls at once on a connection whose peer has half closed it."""
    import socket

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.05)
    stop = threading.Event()
    kept: List[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            connection.recv(1024)
            connection.shutdown(socket.SHUT_WR)
            kept.append(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(DEADLINE)
        for connection in kept:
            connection.close()
        listener.close()


def test_a_server_half_closing_during_an_upload_ends_the_request(
    make_client: Callable[..., Api], half_closing_server: int, http_server: HttpTestServer
) -> None:
    # The upload stalls on a connection whose peer has closed its side: the request ends with an
    # error (the native engines notice the close: RemoteProtocolError; httpx does not read while
    # it writes: WriteTimeout), and the client goes on. The loop engine once spun in place here
    # (a write that would block was retried for ever, the event loop frozen).
    client = make_client(timeout=http.TimeoutConfig(write=0.5))
    with pytest.raises((RemoteProtocolError, WriteTimeout)):
        client.post(f"http://127.0.0.1:{half_closing_server}/upload", content=b"x" * TEN_MB)
    assert client.get(f"{http_server.url}/echo").status_code == 200


@pytest.mark.parametrize("path", ["/reset", "/reset?rst=1", "/garbage"])
def test_broken_response_is_a_remote_protocol_error(client: Api, path: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        client.get(path)
    # a reset is the subclass httpx calls a ReadError, on both engines
    assert isinstance(caught.value, ReadError) == ("rst=1" in path), caught.value
    stats = client.stats()
    assert stats["errors"]["protocol"] == 1 and stats["retries"] == 0
    assert client.get("/echo").status_code == 200
    settle(lambda: client.stats()["active_connections"] == 0, "no connection left busy")


def test_broken_stream_is_a_remote_protocol_error(client: Api) -> None:
    with pytest.raises(RemoteProtocolError):
        client.stream("GET", "/reset", raw=True)
    settle(lambda: client.stats()["in_flight"] == 0, "the stream is over")


# ---- connections --------------------------------------------------------------------------------


def test_server_closing_keep_alive_connections(client: Api, http_server: HttpTestServer) -> None:
    assert client.repeat([("GET", "/close")] * 5) == [200] * 5
    settle(lambda: client.stats()["connections_closed"] == 5, "the client saw each close")
    stats = client.stats()
    assert stats["connections_opened"] == http_server.connections_accepted == 5
    assert stats["connections_reused"] == 0


def test_server_dropping_idle_connections(client: Api, http_server: HttpTestServer) -> None:
    # Each response's connection is closed by the server once it is sent, without notice: the
    # client must notice and open a new one rather than fail the next request. (The test waits
    # for the close to be done at both ends: a request written after the server closed but before
    # the client read the end of stream meets a closed connection, which no client can tell from
    # a server that failed mid-request. The native client reads it on its I/O thread, which can
    # lag on a loaded machine; httpx checks a pooled connection when it takes it.)
    for _ in range(5):
        assert client.get("/drop").status_code == 200
        settle(lambda: http_server.open_connections == 0, "the server closed the connection")
        if client.native:
            settle(
                lambda: client.stats()["idle_connections"] == 0,
                "the client saw the connection close",
            )
    assert client.get("/echo").status_code == 200
    assert client.stats()["connections_opened"] == http_server.connections_accepted == 6


def test_pool_stats_match_reality(client: Api, http_server: HttpTestServer) -> None:
    host = host_of(http_server)
    pending = client.background("GET", http_server.hold("during"))
    assert http_server.wait_arrived("during")
    # The server can read the request before the client's write call has returned.
    settle(lambda: client.stats()["active_connections"] == 1, "the request's connection is busy")
    during = client.stats()
    assert during["active_connections"] == 1 and during["idle_connections"] == 0
    assert during["in_flight"] == 1
    assert during["hosts"][host]["active_connections"] == 1
    http_server.release("during")
    assert pending.result(DEADLINE).json() == {"held": "during"}

    settle(lambda: client.stats()["idle_connections"] == 1, "the connection went back idle")
    after = client.stats()
    assert after["active_connections"] == 0 and after["in_flight"] == 0
    assert after["hosts"][host] == {
        "active_connections": 0,
        "idle_connections": 1,
        "requests": 1,
        "connections_opened": 1,
    }

    assert client.get("/echo").status_code == 200
    reused = client.stats()
    assert reused["connections_reused"] == 1 and reused["connections_opened"] == 1
    assert reused["requests"] == 2 and reused["hosts"][host]["requests"] == 2
    assert http_server.connections_accepted == 1
    assert reused["native"] is client.native
    assert reused["max_connections"] == 100 and reused["concurrency_limit"] is None
    assert set(reused["errors"]) == set(fallback.ERROR_KINDS)
    assert set(reused["pool_wait_ms"]) == {"count", "p50", "p95", "p99", "max"}


def test_close_lets_requests_in_flight_finish(client: Api, http_server: HttpTestServer) -> None:
    # Closing closes the idle connections at once; a response still coming in is read to its
    # end (httpx's own close would cut it), and the stats keep counting it.
    host = host_of(http_server)
    busy = client.background("GET", http_server.hold("busy"))
    done = client.background("GET", http_server.hold("done"))
    for name in ("busy", "done"):
        assert http_server.wait_arrived(name)
    http_server.release("done")
    assert done.result(DEADLINE).json() == {"held": "done"}
    settle(lambda: client.stats()["idle_connections"] == 1, "one connection idle, one busy")
    # The client alone: `Api.close` also waits for the test's threads, one of which is held.
    if client.loop is not None:
        client.loop.run(client.client.aclose())
    else:
        client.client.close()
    settle(lambda: client.stats()["idle_connections"] == 0, "the idle connection closed")
    during = client.stats()
    assert during["active_connections"] == 1 and during["in_flight"] == 1, during
    assert during["hosts"][host]["active_connections"] == 1
    with pytest.raises(RuntimeError, match="closed"):
        client.get("/echo")
    http_server.release("busy")
    assert busy.result(DEADLINE).json() == {"held": "busy"}
    settle(
        lambda: client.stats()["active_connections"] + client.stats()["idle_connections"] == 0,
        "the last response is over and its connection closed",
    )
    after = client.stats()
    assert after["in_flight"] == 0 and after["requests"] == 2, after


def test_concurrent_requests_share_the_pool(
    make_client: Callable[..., Api], http_server: HttpTestServer
) -> None:
    pool = http.ConnectionPoolConfig(max_connections=4, max_keepalive_connections=4)
    client = make_client(http_server.url, pool=pool)
    names = [f"c{i}" for i in range(4)]
    pending = [client.background("GET", http_server.hold(name)) for name in names]
    for name in names:
        assert http_server.wait_arrived(name)
    # The server can read a request before the client's write call has returned.
    settle(lambda: client.stats()["active_connections"] == 4, "four busy connections")
    for name in names:
        http_server.release(name)
    assert [p.result(DEADLINE).status_code for p in pending] == [200] * 4
    settle(lambda: client.stats()["idle_connections"] == 4, "all four went back idle")
    assert http_server.connections_accepted == 4


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_threads_sharing_a_client_stay_within_max_connections(
    engine: str, http_server: HttpTestServer, limit: int
) -> None:
    # Each thread asks for a connection as soon as its last answer is in; the answer's
    # connection must be back in the pool by then, or a waiting thread opens one more.
    pool = http.ConnectionPoolConfig(max_connections=limit, max_keepalive_connections=8)
    client = http.Client(http_server.url, pool=pool, retry=FAST_RETRY)
    assert client.native == (engine == "native")
    accepted = http_server.connections_accepted

    def work() -> List[int]:
        return [client.get("/echo").status_code for _ in range(60)]

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as threads:
            answers = [
                answer for done in threads.map(lambda _: work(), range(6)) for answer in done
            ]
        assert answers == [200] * 360
        stats = client.pool_stats()
        assert stats["requests"] == 360
        assert stats["connections_opened"] <= limit, stats
        assert http_server.connections_accepted - accepted <= limit
        assert stats["idle_connections"] <= limit
    finally:
        client.close()


def test_cleanup_expired_connections(
    make_client: Callable[..., Api], http_server: HttpTestServer
) -> None:
    short = make_client(http_server.url, pool=http.ConnectionPoolConfig(keepalive_expiry=0.05))
    kept = make_client(http_server.url)
    assert short.get("/echo").status_code == 200 and kept.get("/echo").status_code == 200
    settle(lambda: short.stats()["idle_connections"] == 1, "the short-lived connection is idle")
    # Waiting for the keep-alive to run out is the point of the test: 50 ms, polled.
    closed = 0

    def expired() -> bool:
        nonlocal closed
        closed += short.cleanup()
        return closed >= 1

    settle(expired, "the idle connection expired")
    assert closed == 1
    settle(lambda: short.stats()["idle_connections"] == 0, "the expired connection left the pool")
    settle(lambda: short.stats()["connections_closed"] == 1, "and was closed")
    assert kept.cleanup() == 0 and kept.stats()["idle_connections"] == 1
    assert http.cleanup_expired_connections() == 0
    assert short.get("/echo").status_code == 200  # a new connection replaces it


def test_a_connection_past_its_keepalive_expiry_is_not_reused(
    make_client: Callable[..., Api], http_server: HttpTestServer
) -> None:
    # Checked when a request takes a connection, not only by the sweeps: an expiry of 0 keeps
    # no connection for a second request (as in httpx), however soon it follows.
    client = make_client(http_server.url, pool=http.ConnectionPoolConfig(keepalive_expiry=0))
    accepted = http_server.connections_accepted
    for _ in range(3):
        assert client.get("/echo").status_code == 200
        settle(lambda: client.stats()["in_flight"] == 0, "the response is over")
    assert client.stats()["connections_reused"] == 0
    assert http_server.connections_accepted - accepted == 3


def test_no_file_descriptor_growth(client: Api) -> None:
    def open_descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    calls = [("GET", "/echo"), ("POST", "/echo"), ("GET", "/close"), ("GET", "/nowhere")]
    assert set(client.repeat(calls * 5)) == {200, 404}  # warm up: everything made lazily exists
    settle(lambda: client.stats()["active_connections"] == 0, "warm-up done")
    before = open_descriptors()
    # 10,000 requests on the native pool; the fallback (httpx's pool) gets a fifth of that,
    # which is as telling for it and keeps the suite's time down.
    count = 10_000 if client.native else 2_000
    statuses = client.repeat(calls * (count // len(calls)))
    assert len(statuses) == count and set(statuses) == {200, 404}
    # The last connections the server closes may take a turn of its loop to go.
    settle(lambda: open_descriptors() <= before, f"descriptors back to {before}")


@pytest.mark.parametrize("kind", ["async"])  # a blocking request cannot be cancelled
def test_cancelled_request_frees_its_connection(
    make_client: Callable[..., Api], http_server: HttpTestServer
) -> None:
    client = make_client(http_server.url)
    path = http_server.hold("cancelled")

    async def cancel_mid_request() -> None:
        task = asyncio.ensure_future(client.client.get(path))
        arrived = await asyncio.get_running_loop().run_in_executor(
            None, http_server.wait_arrived, "cancelled"
        )
        assert arrived
        # The server can read the request before the client's write call has returned.
        settle(
            lambda: client.client.pool_stats()["active_connections"] == 1,
            "the request's connection is busy",
        )
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert client.loop is not None
    client.loop.run(cancel_mid_request())
    settle(lambda: client.stats()["active_connections"] == 0, "the connection was freed")
    assert client.stats()["in_flight"] == 0
    http_server.release("cancelled")
    assert client.get("/echo").status_code == 200


@requires_native_http
@pytest.mark.parametrize("loop_kind", LOOP_KINDS)
def test_results_reach_each_loop(http_server: HttpTestServer, loop_kind: str) -> None:
    # Results are handed to a loop through a socket it watches, or with call_soon_threadsafe
    # where it cannot watch one; both deliver every result, to every loop in turn.
    async def batch() -> List[int]:
        async with http.AsyncClient(http_server.url) as client:
            responses = await asyncio.gather(*(client.get("/echo") for _ in range(20)))
        return [r.status_code for r in responses]

    for _ in range(3):
        loop = new_loop(loop_kind)
        try:
            assert loop.run_until_complete(batch()) == [200] * 20
        finally:
            loop.close()


# ---- URLs, options, precedence ------------------------------------------------------------------


@pytest.mark.parametrize("base_path", ["/v1", "/v1/"])
@pytest.mark.parametrize("path", ["/echo?x=1", "echo?x=1"])
def test_base_url_joining(
    make_client: Callable[..., Api], http_server: HttpTestServer, base_path: str, path: str
) -> None:
    client = make_client(http_server.url + base_path)
    response = client.get(path)
    assert response.json()["path"] == "/v1/echo?x=1"
    assert response.url == f"{http_server.url}/v1/echo?x=1"
    # An absolute URL ignores the base.
    assert client.get(f"{http_server.url}/echo").json()["path"] == "/echo"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "http://",
        "http:///path",
        "http://host:port/x",
        "relative/without/base",
    ],
)
def test_bad_url_is_a_value_error(make_client: Callable[..., Api], url: str) -> None:
    client = make_client()
    with pytest.raises(ValueError):
        client.get(url)
    assert client.stats()["requests"] == 0


@pytest.mark.parametrize("base_url", ["ftp://example.com", "example.com", "http://"])
def test_bad_base_url_is_a_value_error(engine: str, base_url: str) -> None:
    with pytest.raises(ValueError):
        http.Client(base_url)


@pytest.mark.parametrize(
    "options, error",
    [
        ({"pool": {"max_connections": 1}}, TypeError),
        ({"retry": 3}, TypeError),
        ({"timeout": "10"}, TypeError),
        ({"timeout": -1.0}, ValueError),
        ({"timeout": float("nan")}, ValueError),
        ({"timeout_config": 10.0}, TypeError),
        ({"max_concurrency": 0}, ValueError),
        ({"max_concurrency": 1.5}, TypeError),
        ({"gzip_threshold": -1}, ValueError),
        ({"gzip_threshold": True}, TypeError),
        ({"headers": [("a",)]}, TypeError),
        ({"headers": {"a": 1}}, TypeError),
        ({"base_url": 42}, TypeError),
    ],
)
def test_bad_options(engine: str, options: Dict[str, Any], error: type) -> None:
    options = dict(options)  # the parameter is shared by both engines' runs
    base_url = options.pop("base_url", None)
    with pytest.raises(error):
        http.Client(base_url, **options)
    with pytest.raises(error):
        http.AsyncClient(base_url, **options)


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda: http.ConnectionPoolConfig(max_connections=0), ValueError),
        (lambda: http.ConnectionPoolConfig(max_keepalive_connections=-1), ValueError),
        (lambda: http.ConnectionPoolConfig(keepalive_expiry=-1), ValueError),
        (lambda: http.TimeoutConfig(read=0), ValueError),
        (lambda: http.RetryConfig(max_retries=-1), ValueError),
        (lambda: http.RetryConfig(retry_on_status=(99,)), ValueError),
        (lambda: http.RetryConfig(backoff_base="1"), TypeError),
        (lambda: http.ConnectionPoolConfig(max_connections=2**70), ValueError),
        (lambda: http.TimeoutConfig(read=1e10), ValueError),
        (lambda: http.Client(timeout=1e10), ValueError),
    ],
)
def test_bad_config_values(make: Callable[[], Any], error: type) -> None:
    with pytest.raises(error):
        make()


def test_bad_request_arguments(client: Api) -> None:
    with pytest.raises(TypeError):
        client.post("/echo", json={"a": 1}, content=b"x")
    with pytest.raises(TypeError):
        client.post("/echo", content=12)
    with pytest.raises(ValueError):
        client.post("/echo", json={"a": float("nan")})
    with pytest.raises(ValueError):
        client.get("/echo", headers={"x-bad": "a\r\nb"})
    assert client.get("/echo").status_code == 200


def test_raise_for_status(client: Api) -> None:
    ok = client.get("/echo")
    assert ok.raise_for_status() is ok
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and not missing.is_success
    with pytest.raises(HTTPStatusError, match="Client error '404'"):
        missing.raise_for_status()
    failing = client.get("/status/500?id=rfs&times=100")
    with pytest.raises(HTTPStatusError, match="Server error '500'"):
        failing.raise_for_status()


def test_timeout_precedence(make_client: Callable[..., Api], http_server: HttpTestServer) -> None:
    # A plain number sets every limit.
    with pytest.raises(ReadTimeout):
        make_client(http_server.url, timeout=0.2).get("/slow")
    # timeout_config wins over timeout=.
    with pytest.raises(ReadTimeout):
        make_client(http_server.url, timeout=60.0, timeout_config=SHORT_READ).get("/slow")
    patient = make_client(http_server.url, timeout=0.2, timeout_config=http.TimeoutConfig())
    assert patient.get("/slow?seconds=0.5").status_code == 200
    # A request's own timeout wins over the client's.
    with pytest.raises(ReadTimeout):
        patient.get("/slow", timeout=0.2)
    with pytest.raises(ReadTimeout):
        patient.get("/slow", timeout=SHORT_READ)
    # ... and when it is longer, the client's does not cut the request short (as in httpx:
    # LiteLLM sends its own, often minutes, through a transport built with the defaults).
    hasty = make_client(http_server.url, timeout_config=SHORT_READ)
    assert hasty.get("/slow?seconds=0.5", timeout=30.0).status_code == 200
    assert hasty.get("/slow?seconds=0.5", timeout=http.TimeoutConfig(read=None)).status_code == 200
    with pytest.raises(ReadTimeout):
        hasty.get("/slow")


def test_an_upload_longer_than_the_read_timeout_is_not_a_read_timeout(
    make_client: Callable[..., Api], http_server: HttpTestServer
) -> None:
    # The server reads nothing of the body for 2.5x the read timeout (32 MB is more than the
    # kernel's buffers on both sides take, so the upload stalls), then all of it. The read
    # timeout counts from the end of the upload, as httpx counts it: during a stalled upload only
    # the write timeout runs. (After the last write the server still drains the kernel's buffers
    # and hashes 32 MB before it answers: the read timeout leaves room for a busy machine.)
    body = pattern(32 * 1024 * 1024)
    stalled = "/slow-upload?seconds=2.0&summary=1"
    short = http.TimeoutConfig(read=0.8, write=30.0)
    # The client's read timeout, then a request's own.
    for client_timeout, own in ((short, {}), (http.TimeoutConfig(write=30.0), {"timeout": short})):
        client = make_client(http_server.url, timeout_config=client_timeout)
        echoed = client.post(stalled, content=body, **own).json()
        assert echoed["body_length"] == len(body)
        assert echoed["body_sha256"] == hashlib.sha256(body).hexdigest()
    # A server that is silent after the upload still times out.
    client = make_client(http_server.url, timeout_config=short)
    with pytest.raises(ReadTimeout):
        client.post("/slow", content=body)


def test_a_refusal_whose_body_stalls_times_out_with_the_request(
    make_client: Callable[..., Api], http_server: HttpTestServer
) -> None:
    # Before a retry the client reads the 503's body; the request's own read timeout bounds
    # that too (the client's read timeout here is far longer).
    client = make_client(http_server.url, retry=FAST_RETRY, timeout_config=http.TimeoutConfig())
    with pytest.raises(ReadTimeout):
        client.get("/status/503?id=stall&times=5&retry_after=0&stall=1", timeout=0.3)


def test_limits_beyond_any_machine_mean_no_limit(
    make_client: Callable[..., Api], http_server: HttpTestServer
) -> None:
    # sys.maxsize as "no limit" is accepted and works (it made every native request fail).
    pool = http.ConnectionPoolConfig(
        max_connections=sys.maxsize, max_keepalive_connections=sys.maxsize
    )
    errors = _flags.feature("CONNECTION_POOL").errors
    client = make_client(http_server.url, pool=pool, max_concurrency=sys.maxsize)
    assert all(client.get("/echo").status_code == 200 for _ in range(3))
    assert _flags.feature("CONNECTION_POOL").errors == errors


@pytest.mark.parametrize(
    "target",
    [
        "/echo/r\u00e9sum\u00e9.txt?q=caf\u00e9 au lait",
        '/echo/a b/{x}`<y>"?q="<{x}>`&e=\U0001f642',
        "/echo?url=https://example.com/a?b=c",
        "/echo/already%20encoded?x=%41#fragment",
        # dot segments, removed as httpx removes them
        "/x/../echo",
        "/echo/./a/b/..",
        "/../../echo/a/../../echo",
        "/echo/%2e%2e/a/.../..x",
        "/echo/a/..?q=../x",
    ],
)
def test_request_targets_are_sent_as_httpx_sends_them(
    make_client: Callable[..., Api], http_server: HttpTestServer, target: str
) -> None:
    import httpx

    sent = httpx.URL(http_server.url + target).raw_path.decode("ascii")
    assert make_client(http_server.url).get(target).json()["path"] == sent


def test_content_encoding_is_decoded_as_httpx_decodes_it(
    client: Api, http_server: HttpTestServer
) -> None:
    # Bodies (whole, as bytes read from a stream, as events) with their Content-Encoding undone
    # on both engines, as httpx undoes it; the headers stay as received.
    import zlib

    body = json.dumps({"text": "compressed " * 400}).encode()
    raw_deflate = zlib.compressobj(wbits=-15)
    encodings = {
        "gzip": gzip.compress(body),
        "deflate": zlib.compress(body),  # zlib-wrapped, as the standard says
        "Deflate ": raw_deflate.compress(body) + raw_deflate.flush(),  # raw, as some servers
        "deflate, gzip": gzip.compress(zlib.compress(body)),
        "identity": body,
    }
    # What httpx does not decode either (x-gzip; br without the brotli package): as received.
    as_received = {"x-gzip": gzip.compress(body), "br": body}
    for name, encoded in [*encodings.items(), *as_received.items()]:
        want = body if name in encodings else encoded
        headers = (("Content-Encoding", name), ("Content-Type", "application/json"))
        label = re.sub("[^a-z]+", "-", name.lower())
        path = http_server.answer(f"encoded-{len(encoded)}-{label}", 200, headers, encoded)
        response = client.get(path + "/x")
        assert response.content == want, name
        assert response.headers["content-encoding"] == name.strip()
        _, chunks = client.stream("GET", path + "/x", raw=True)
        assert b"".join(chunks) == want, name
    # What follows the end of the compressed data (a newline, a second gzip member) is not
    # part of it, as zlib's unused_data is not to httpx.
    for label, trailing in (("newline", b"\n"), ("member", gzip.compress(b"second"))):
        encoded = gzip.compress(body) + trailing
        gzipped = (("Content-Encoding", "gzip"),)
        path = http_server.answer(f"encoded-trailing-{label}", 200, gzipped, encoded)
        assert client.get(path + "/x").content == body, label
        assert b"".join(client.stream("GET", path + "/x", raw=True)[1]) == body, label
    events = b"".join(SSE_CHUNKS)
    headers = (("Content-Encoding", "gzip"), ("Content-Type", "text/event-stream"))
    path = http_server.answer("encoded-events", 200, headers, gzip.compress(events))
    assert client.stream("GET", path + "/x")[1] == SSE_EVENTS
    # A body that does not decode is a broken response, as httpx's DecodingError is.
    path = http_server.answer("encoded-junk", 200, (("Content-Encoding", "gzip"),), b"not gzip")
    with pytest.raises(RemoteProtocolError):
        client.get(path + "/x")
    # A body cut short (its length declared as cut) is what it decodes to, as for httpx.
    cut = gzip.compress(body)[:-12]
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    prefix = decoder.decompress(cut) + decoder.flush()
    path = http_server.answer("encoded-cut", 200, (("Content-Encoding", "gzip"),), cut)
    assert client.get(path + "/x").content == prefix
    assert b"".join(client.stream("GET", path + "/x", raw=True)[1]) == prefix


def test_credentials_in_the_url_are_basic_authentication(
    make_client: Callable[..., Api], http_server: HttpTestServer
) -> None:
    # As httpx does: percent-decoded, in place of an Authorization header given, and never
    # sent in the URL.
    import httpx

    client = make_client()
    host = http_server.url.split("://", 1)[1]
    for userinfo, headers in [
        ("user:pass", None),
        ("us%20er:p%40ss%C3%A9", None),
        ("only-user", None),
        ("user:pass", {"Authorization": "Bearer mine"}),
    ]:
        url = f"http://{userinfo}@{host}/echo"
        echoed = client.get(url, headers=headers).json()
        sent = {name.lower(): value for name, value in echoed["headers"]}
        want = httpx.Client().build_request("GET", url).url
        auth = httpx.BasicAuth(want.username, want.password)
        flow = auth.auth_flow(httpx.Request("GET", "http://x/"))
        assert sent["authorization"] == next(flow).headers["authorization"], userinfo
        assert "@" not in sent["host"] and echoed["path"] == "/echo"
    # Empty ones (`@host`, `:@host`): no authentication, and the caller's header stays.
    for userinfo in ("", ":"):
        echoed = client.get(f"http://{userinfo}@{host}/echo", headers={"Authorization": "Mine"})
        sent = {name.lower(): value for name, value in echoed.json()["headers"]}
        assert sent["authorization"] == "Mine", userinfo


def test_gzip_threshold(make_client: Callable[..., Api], http_server: HttpTestServer) -> None:
    client = make_client(http_server.url, gzip_threshold=1000)
    big = json.dumps({"text": "compress me " * 500}).encode()
    echoed = client.post("/echo?summary=1", content=big).json()
    assert echoed["content_encoding"] == "gzip"
    assert echoed["body_sha256"] == hashlib.sha256(big).hexdigest()
    assert echoed["wire_length"] < len(big)

    # A Content-Length the caller gave is the uncompressed body's: the compressed one's is sent.
    sized = client.post(
        "/echo?summary=1", content=big, headers={"Content-Length": str(len(big))}
    ).json()
    assert sized["content_encoding"] == "gzip"
    assert sized["body_sha256"] == hashlib.sha256(big).hexdigest()

    small = client.post("/echo?summary=1", content=b"x" * 999).json()
    assert small["content_encoding"] is None and small["body_length"] == 999

    # A body the caller encoded already is left alone.
    encoded = gzip.compress(big)
    own = client.post(
        "/echo?summary=1", content=encoded, headers={"Content-Encoding": "gzip"}
    ).json()
    assert own["wire_length"] == len(encoded)
    assert own["body_sha256"] == hashlib.sha256(big).hexdigest()

    off = make_client(http_server.url).post("/echo?summary=1", content=big).json()
    assert off["content_encoding"] is None


def test_adaptive_concurrency_halves_on_429(
    make_client: Callable[..., Api], http_server: HttpTestServer
) -> None:
    client = make_client(
        http_server.url,
        pool=http.ConnectionPoolConfig(max_connections=8),
        adaptive_concurrency=True,
        retry=http.RetryConfig(max_retries=0),
    )
    assert client.stats()["concurrency_limit"] == 8
    limits = []
    for attempt in range(5):
        assert client.get(f"/status/429?id=aimd{attempt}&times=1").status_code == 429
        limits.append(client.stats()["concurrency_limit"])
    assert limits == [4, 2, 1, 1, 1]
    assert client.get("/echo").status_code == 200


def test_max_concurrency_is_the_reported_limit(
    make_client: Callable[..., Api], http_server: HttpTestServer
) -> None:
    client = make_client(http_server.url, max_concurrency=3)
    assert client.stats()["concurrency_limit"] == 3
    pending = [client.background("GET", "/echo") for _ in range(10)]
    assert [p.result(DEADLINE).status_code for p in pending] == [200] * 10
    assert client.stats()["active_connections"] <= 3


def test_closed_client_refuses_requests(client: Api) -> None:
    assert client.get("/echo").status_code == 200
    client.close()
    with pytest.raises(RuntimeError):
        client.get("/echo")
    client.close()  # idempotent


def test_get_connection_pool_stats_aggregates_clients(
    make_client: Callable[..., Api], http_server: HttpTestServer
) -> None:
    first, second = make_client(http_server.url), make_client(http_server.url)
    assert first.get("/echo").status_code == 200
    assert second.repeat([("GET", "/echo")] * 3) == [200] * 3
    mine = [first.stats(), second.stats()]
    total = http.get_connection_pool_stats()
    # Other live clients (of other tests) may add to the totals: ours are included.
    for name in ("requests", "connections_opened", "idle_connections"):
        assert total[name] >= sum(s[name] for s in mine)
    host = total["hosts"][host_of(http_server)]
    assert host["requests"] == 4
    assert 2 <= host["connections_opened"] <= 2 + 2 * SEQUENTIAL_SLACK[first.native]
    assert total["clients"]["native" if first.native else "fallback"] >= 2


# ---- proxies from the environment ---------------------------------------------------------------


PROXY_VARIABLES = (
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
)


@pytest.fixture
def clean_proxy_environment(monkeypatch: Any) -> Any:
    for name in PROXY_VARIABLES + ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_http_proxy_from_the_environment(
    make_client: Callable[..., Api], http_server: HttpTestServer, clean_proxy_environment: Any
) -> None:
    with ForwardProxy() as proxy:
        clean_proxy_environment.setenv(
            "HTTP_PROXY", proxy.url.replace("http://", "http://user:secret@")
        )
        client = make_client(http_server.url)
        assert client.get("/echo").json()["path"] == "/echo"
        assert client.post("/echo", json={"a": 1}).status_code == 200
        assert proxy.forwarded == 2
        # Credentials in the proxy URL go to the proxy, as Basic, and never to the origin.
        assert set(proxy.authorizations) == {"Basic dXNlcjpzZWNyZXQ="}
        echoed = {name.lower() for name, _ in client.get("/echo").json()["headers"]}
        assert "proxy-authorization" not in echoed


def test_no_proxy_is_honoured(
    make_client: Callable[..., Api], http_server: HttpTestServer, clean_proxy_environment: Any
) -> None:
    with ForwardProxy() as proxy:
        clean_proxy_environment.setenv("HTTP_PROXY", proxy.url)
        clean_proxy_environment.setenv("NO_PROXY", "127.0.0.1")
        client = make_client(http_server.url)
        assert client.get("/echo").status_code == 200
        assert proxy.forwarded == 0


def test_proxy_variables_are_read_as_urllib_reads_them(
    make_client: Callable[..., Api], http_server: HttpTestServer, clean_proxy_environment: Any
) -> None:
    # httpx reads them through urllib.request.getproxies(): NO_PROXY=* bypasses every host
    # (an IP address too), and a lower-case name wins over the upper-case one, even empty.
    with ForwardProxy() as proxy, ForwardProxy() as other:
        env = clean_proxy_environment
        env.setenv("HTTP_PROXY", proxy.url)
        env.setenv("NO_PROXY", "*")
        assert make_client(http_server.url).get("/echo").status_code == 200
        assert proxy.forwarded == 0
        env.delenv("NO_PROXY")
        env.setenv("http_proxy", other.url)
        assert make_client(http_server.url).get("/echo").status_code == 200
        assert (proxy.forwarded, other.forwarded) == (0, 1)
        env.setenv("http_proxy", "")  # an empty lower-case name: no proxy
        assert make_client(http_server.url).get("/echo").status_code == 200
        assert (proxy.forwarded, other.forwarded) == (0, 1)
        env.setenv("no_proxy", "")
        env.setenv("NO_PROXY", "127.0.0.1")
        env.delenv("http_proxy")
        # the empty lower-case no_proxy wins: nothing is bypassed
        assert make_client(http_server.url).get("/echo").status_code == 200
        assert proxy.forwarded == 1


# ---- fork ------------------------------------------------------------------------------------------


def fork_scenario(engine: str) -> None:
    """Run in a fresh interpreter: the parent makes requests, forks a child that makes requests
    with the clients it inherited (and new ones), and carries on while the child runs."""
    from .test_fork import CHILD_TIMEOUT, start_child

    fast_litellm.configure("connection_pool", rust=engine == "native", rollout=100)
    with HttpTestServer() as server:
        blocking = http.Client(server.url)
        asynchronous = http.AsyncClient(server.url)

        async def use_async(count: int) -> List[int]:
            return [(await asynchronous.get("/echo")).status_code for _ in range(count)]

        assert blocking.get("/echo").status_code == 200
        assert asyncio.run(use_async(2)) == [200, 200]
        opened = blocking.pool_stats()["connections_opened"]

        def child_work() -> Dict[str, Any]:
            statuses = [blocking.get("/echo").status_code for _ in range(20)]
            statuses += asyncio.run(use_async(20))
            with http.Client(server.url) as fresh:
                statuses.append(fresh.post("/echo", json={"child": True}).status_code)
            return {"statuses": statuses, "stats": blocking.pool_stats()}

        child = start_child(child_work)
        parent_statuses = [blocking.get("/echo").status_code for _ in range(50)]
        answer = child.result(time.monotonic() + CHILD_TIMEOUT)

        assert answer["statuses"] == [200] * 41, answer
        # The child's pool is its own: it opened its connection, and counts only its requests.
        assert answer["stats"]["requests"] == 20 and answer["stats"]["connections_opened"] >= 1
        assert not any(answer["stats"]["errors"].values()), answer["stats"]["errors"]
        # The parent's connection was neither closed nor used by the child.
        assert parent_statuses == [200] * 50
        assert blocking.get("/echo").status_code == 200
        assert not any(blocking.pool_stats()["errors"].values())
        assert blocking.pool_stats()["connections_opened"] >= opened
        blocking.close()
    print("ok")


def fork_with_full_pool_scenario(engine: str) -> None:
    """Run in a fresh interpreter: every place of a client's pool is taken by a request in flight
    when the process forks. Those requests stay in the parent, so the child's pool (and its
    admission gate) must start empty instead of waiting for places that never come back."""
    from .test_fork import CHILD_TIMEOUT, start_child

    fast_litellm.configure("connection_pool", rust=engine == "native", rollout=100)
    with HttpTestServer() as server:
        # A pool timeout bounds the child's wait if the places were inherited (the defect).
        client = http.Client(
            server.url,
            pool=http.ConnectionPoolConfig(max_connections=2, max_keepalive_connections=2),
            timeout=http.TimeoutConfig(pool=20.0),
        )
        held = [server.hold(f"full-{index}") for index in range(2)]
        answers: List[int] = []
        threads = [
            threading.Thread(target=lambda path=path: answers.append(client.get(path).status_code))
            for path in held
        ]
        for thread in threads:
            thread.start()
        for index in range(2):
            assert server.wait_arrived(f"full-{index}")

        def child_work() -> Dict[str, Any]:
            statuses = [client.get("/echo").status_code for _ in range(5)]
            return {"statuses": statuses, "stats": client.pool_stats()}

        child = start_child(child_work)
        answer = child.result(time.monotonic() + CHILD_TIMEOUT)
        for index in range(2):
            server.release(f"full-{index}")
        for thread in threads:
            thread.join(DEADLINE)
        assert answer["statuses"] == [200] * 5, answer
        assert not any(answer["stats"]["errors"].values()), answer["stats"]["errors"]
        assert answers == [200, 200]
        assert client.get("/echo").status_code == 200
        client.close()
    print("ok")


def fork_with_a_stream_open_scenario(engine: str) -> None:
    """Run in a fresh interpreter: a child forked while the parent reads a stream cannot read
    it (it is the parent's connection): it gets a RuntimeError at once instead of waiting for
    ever, can close it, and makes requests of its own; the parent reads the rest unharmed."""
    from .test_fork import CHILD_TIMEOUT, start_child

    fast_litellm.configure("connection_pool", rust=engine == "native", rollout=100)
    with HttpTestServer() as server:
        client = http.Client(server.url, timeout=http.TimeoutConfig(read=DEADLINE))
        # 20 bytes, one every 50 ms: the end is far from in when the child starts.
        with client.stream("GET", "/drip?bytes=20&every=0.05") as stream:
            pieces = stream.iter_bytes()
            first = next(pieces)

            def child_work() -> Dict[str, Any]:
                try:
                    list(pieces)
                except RuntimeError as exc:
                    error = str(exc)
                else:
                    error = "none"
                stream.close()
                return {"error": error, "status": client.get("/echo").status_code}

            answer = start_child(child_work).result(time.monotonic() + CHILD_TIMEOUT)
            rest = b"".join(pieces)
        assert "before os.fork()" in answer["error"] and answer["status"] == 200, answer
        assert first + rest == b"x" * 20
        assert client.get("/echo").status_code == 200
        client.close()
    print("ok")


def interrupt_scenario(engine: str) -> None:
    """Run in a fresh interpreter (it sends itself SIGINT): Ctrl-C during a blocking request the
    server holds raises KeyboardInterrupt in the caller while the request waits, as it does
    with httpx, and the client works afterwards."""
    fast_litellm.configure("connection_pool", rust=engine == "native", rollout=100)
    with HttpTestServer() as server:
        client = http.Client(server.url, timeout_config=http.TimeoutConfig(read=DEADLINE))
        held = server.hold("interrupt")

        def interrupt() -> None:
            if server.wait_arrived("interrupt"):
                # To the main thread, as a terminal's Ctrl-C reaches it: a process-wide signal
                # may land on the test server's thread, and then nothing cuts the fallback's
                # blocking read short (httpx's behaviour: the handler runs after the read).
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

        threading.Thread(target=interrupt, daemon=True).start()
        try:
            client.get(held)
        except KeyboardInterrupt as exc:
            # Raised while the request waited, not on its way out of a failed one.
            assert exc.__context__ is None, repr(exc.__context__)
        else:
            raise AssertionError("the held request returned")
        finally:
            server.release("interrupt")
        assert client.get("/echo").status_code == 200
        client.close()
    print("ok")


def _run_fork_scenario(name: str, engine: str) -> None:
    """Runs the scenario function `name` of this module in a fresh interpreter."""
    run_in_fresh_interpreter(f"from tests.test_http import {name}; {name}({engine!r})")


def run_in_fresh_interpreter(code: str) -> None:
    """Runs `code` (a scenario that prints "ok") in a fresh interpreter, without the
    FAST_LITELLM_* variables of this one, and fails the test if it did not."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FAST_LITELLM_")}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, environment.get("PYTHONPATH")]))
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the fork scenario hung: {exc.stderr!r}")
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to oneself is POSIX")
def test_ctrl_c_interrupts_a_blocking_request(engine: str) -> None:
    _run_fork_scenario("interrupt_scenario", engine)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_forked_child_makes_requests_while_the_parent_carries_on(engine: str) -> None:
    _run_fork_scenario("fork_scenario", engine)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_forked_child_gets_a_pool_of_its_own_when_the_parents_is_full(engine: str) -> None:
    _run_fork_scenario("fork_with_full_pool_scenario", engine)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_forked_child_cannot_read_the_parents_stream_and_does_not_hang(engine: str) -> None:
    _run_fork_scenario("fork_with_a_stream_open_scenario", engine)


# ---- fallback only ----------------------------------------------------------------------------------


def test_fallback_http2_needs_h2(monkeypatch: pytest.MonkeyPatch) -> None:
    with engine_for_new_clients("fallback"):
        monkeypatch.setitem(sys.modules, "h2", None)
        with pytest.raises(ImportError, match="pip install h2"):
            http.Client(http2=True)
        http.Client(http2=False).close()


def test_fallback_gate_grows_after_a_flat_window_and_halves_once_per_round() -> None:
    gate = fallback._Gate(4, adaptive=True)
    before_cut = time.monotonic()
    gate.congested(before_cut)
    assert gate.limit == 2
    gate.congested(before_cut)  # sent before the cut: the same round of congestion
    assert gate.limit == 2
    for _ in range(2):  # a window of `limit` flat successes
        gate.succeeded(0.010)
    assert gate.limit == 3
    gate.succeeded(0.010)
    gate.succeeded(0.100)  # latency went up tenfold: the window starts again
    gate.succeeded(0.010)
    gate.succeeded(0.010)
    assert gate.limit == 3
    gate.succeeded(0.010)
    assert gate.limit == 4  # the ceiling
    for _ in range(20):
        gate.succeeded(0.010)
    assert gate.limit == 4


def test_fallback_gate_admits_waiters_in_order() -> None:
    gate = fallback._Gate(1, adaptive=False)
    assert gate.acquire(None)
    assert not gate.acquire(0.01)  # full: a short wait runs out (and leaves no waiter behind)
    admitted: List[int] = []

    def wait(index: int) -> None:
        assert gate.acquire(DEADLINE)
        admitted.append(index)
        gate.release()

    threads = []
    for index in range(3):
        thread = threading.Thread(target=wait, args=(index,))
        thread.start()
        threads.append(thread)
        settle(lambda n=index: len(gate._waiters) == n + 1, "the waiter queued")
    gate.release()
    for thread in threads:
        thread.join(DEADLINE)
    assert admitted == [0, 1, 2] and gate.in_use == 0


# ---- the parts both engines must agree on exactly --------------------------------------------------


def requires_native(*names: str) -> Any:
    """Skips a parity test until the native module has ``names``."""
    missing = [name for name in names if not hasattr(_flags.native, name)]
    return pytest.mark.skipif(
        bool(missing), reason=f"the native module has no {', '.join(missing)} yet"
    )


def reference_sse(data: bytes) -> List[fallback.Event]:
    """The event-stream rules applied to the whole body at once, written as plainly as possible:
    what a decoder fed in pieces must give."""
    text = data.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split("\r\n|\r|\n", text)[:-1]  # the last piece is not a line
    events = []
    block: Dict[str, Any] = {"data": [], "event": "", "id": None, "retry": None}
    for line in lines:
        if line == "":
            if block["data"]:
                events.append(
                    (
                        block["event"] or "message",
                        "\n".join(block["data"]),
                        block["id"],
                        block["retry"],
                    )
                )
            block = {"data": [], "event": "", "id": None, "retry": None}
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            block["data"].append(value)
        elif name == "event":
            block["event"] = value
        elif name == "id" and "\0" not in value:
            block["id"] = value
        elif name == "retry" and value and all("0" <= c <= "9" for c in value):
            # ours: a reconnection time beyond 64 bits is no sensible one, and is ignored
            digits = value.lstrip("0") or "0"
            block["retry"] = int(digits) if len(digits) <= 20 and int(digits) < 2**64 else None
    return events


SSE_PIECES = [
    b"data", b"event", b"id", b"retry", b"Data", b"dat", b":", b": ", b" ", b"  ", b"\r", b"\n",
    b"\r\n", b"\n\n", b"\r\n\r\n", b"x", b"7", b"250", b"\x00", b"\xef\xbb\xbf", b"\xe4\xbd\xa0",
    b"\xe4", b"\xbd", b"\xff", b"\xf0\x9f\x99\x82", b"[DONE]", b"\xd9\xa3", b"\xc2\xb2",
]  # fmt: skip
sse_bodies = st.lists(st.sampled_from(SSE_PIECES), max_size=60).map(b"".join) | st.binary(
    max_size=200
)


@st.composite
def sse_streams(draw: Any) -> bytes:
    """Well-formed streams: blocks of fields and comments, any line ends, maybe a BOM and an
    unterminated last block."""
    line_end = st.sampled_from([b"\n", b"\r", b"\r\n"])
    value = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\n"))
    field = st.tuples(st.sampled_from(["data", "event", "id", "retry", ":", "other"]), value)
    out = [b"\xef\xbb\xbf"] if draw(st.booleans()) else []
    for fields in draw(st.lists(st.lists(field, max_size=5), max_size=6)):
        for name, text in fields:
            if name == "retry" and draw(st.booleans()):
                text = str(draw(st.integers(0, 10**15)))
            colon = draw(st.sampled_from([":", ": ", ":  "])) if name != ":" else ""
            out.append(f"{name}{colon}{text}".encode() + draw(line_end))
        out.append(draw(line_end))
    if draw(st.booleans()):
        out.append(b"data: never finished")
    return b"".join(out)


def split_at(data: bytes, cuts: List[int]) -> List[bytes]:
    points = sorted({min(max(cut, 0), len(data)) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def feed_all(decoder: Any, pieces: List[bytes]) -> List[Tuple[Any, ...]]:
    events = []
    for piece in pieces:
        events.extend(tuple(event) for event in decoder.feed(piece))
    events.extend(tuple(event) for event in decoder.finish())
    return events


@given(st.one_of(sse_streams(), sse_bodies), st.lists(st.integers(0, 300), max_size=12))
@example(b"data: a\r\n\r\n", [7])  # inside CRLF
@example(b"data: a\r\n\r\n", [8, 9])
@example(b"data: \xe4\xbd\xa0\n\n", [7, 8])  # inside a UTF-8 character
@example(b"\xef\xbb\xbfdata: a\n\n", [1, 2])  # inside the BOM
@example(b"data: a\r", [8])  # a CR at the very end still ends the line
def test_sse_decoder_follows_the_rules_however_the_stream_is_split(
    data: bytes, cuts: List[int]
) -> None:
    expected = reference_sse(data)
    assert fallback.parse_sse(data) == expected
    assert feed_all(fallback.SseDecoder(), split_at(data, cuts)) == expected
    assert feed_all(fallback.SseDecoder(), [data[i : i + 1] for i in range(len(data))]) == expected


@requires_native("SseDecoder", "parse_sse")
@given(st.one_of(sse_streams(), sse_bodies), st.lists(st.integers(0, 300), max_size=12))
@example(b"retry: 99999999999999999999999\ndata: x\n\n", [])
@example(b"retry: 5\nretry: 18446744073709551616\ndata: x\n\n", [12])
@example(b"retry: " + b"0" * 30 + b"7\ndata: x\n\n", [])
def test_sse_decoder_parity(data: bytes, cuts: List[int]) -> None:
    native = _flags.native
    expected = fallback.parse_sse(data)
    assert [tuple(event) for event in native.parse_sse(data)] == expected
    pieces = split_at(data, cuts)
    assert feed_all(native.SseDecoder(), pieces) == feed_all(fallback.SseDecoder(), pieces)


def test_sse_decoder_examples() -> None:
    parse = fallback.parse_sse
    assert parse(b"data: a\n\n") == [("message", "a", None, None)]
    assert parse(b"data\n\n") == [("message", "", None, None)]
    assert parse(b"data:\ndata:\n\n") == [("message", "\n", None, None)]
    assert parse(b"event: e\n\n") == []
    assert parse(b"data: a") == [] and parse(b"data: a\n") == []
    assert parse(b"id: 1\ndata: a\n\ndata: b\n\n") == [
        ("message", "a", "1", None),
        ("message", "b", None, None),
    ]
    assert parse(b"id: a\x00b\ndata: x\n\n") == [("message", "x", None, None)]
    assert parse(b"id\ndata: x\n\n") == [("message", "x", "", None)]
    assert parse(b"retry: 1a\nretry: \xc2\xb2\ndata: x\n\n") == [("message", "x", None, None)]
    assert parse(b"retry: 007\ndata: x\n\n") == [("message", "x", None, 7)]
    big = [b"18446744073709551616", b"9" * 25, b"9" * 5000]  # 2**64, and beyond int()'s digits
    for value in big:
        assert parse(b"retry: 5\nretry: " + value + b"\ndata: x\n\n") == [
            ("message", "x", None, None)
        ]
    assert parse(b"retry: 18446744073709551615\ndata: x\n\n") == [("message", "x", None, 2**64 - 1)]
    assert parse(b"data: \xff\n\n") == [("message", "\ufffd", None, None)]
    assert parse(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n") == []  # only one BOM is dropped
    assert parse(b"event:\ndata: x\n\n") == [("message", "x", None, None)]
    assert parse(b"DATA: x\n\n") == []
    with pytest.raises(TypeError):
        fallback.SseDecoder().feed("data: x\n\n")  # type: ignore[arg-type]


@pytest.mark.parametrize("engine", ["fallback", pytest.param("native", marks=requires_native_http)])
def test_an_sse_event_that_never_ends_is_an_error_not_unbounded_memory(engine: str) -> None:
    decoders = {"fallback": fallback.SseDecoder, "native": lambda: _flags.native.SseDecoder()}
    megabyte = b"x" * (1 << 20)
    cap = fallback.MAX_EVENT_BYTES >> 20
    # A line that never ends, and a block of data lines that never ends.
    for first, piece in ((b"data: ", megabyte), (b"", b"data: " + megabyte + b"\n")):
        decoder = decoders[engine]()
        assert list(decoder.feed(first)) == []
        with pytest.raises(RemoteProtocolError, match=f"larger than {cap} MiB"):
            for _ in range(cap + 2):
                assert list(decoder.feed(piece)) == []
        # The decoder starts over.
        assert [tuple(e) for e in decoder.feed(b"data: a\n\n")] == [("message", "a", None, None)]


# Retry-After: the three HTTP date forms, and plain seconds.

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0", 0.0),
        ("120", 120.0),
        (" 7\t", 7.0),
        ("0007", 7.0),
        ("9" * 400, float("inf")),
        ("1.5", None),
        ("-1", None),
        ("+1", None),
        ("", None),
        ("soon", None),
        ("\u0663", None),  # an Arabic-Indic three: a digit, but not an ASCII one
        ("Tue, 14 Nov 2023 22:13:50 GMT", 30.0),
        ("Tue, 14 Nov 2023 22:13:20 GMT", 0.0),
        ("Tue, 14 Nov 2023 21:13:20 GMT", 0.0),  # in the past
        ("Tuesday, 14-Nov-23 22:14:20 GMT", 60.0),
        ("Tue Nov 14 22:15:20 2023", 120.0),
        ("Wed Nov  1 00:00:00 2023", 0.0),
        ("Sat, 01 Jan 2000 00:00:00 GMT", 0.0),
        ("Fri, 14 Nov 2023 22:13:50 GMT", None),  # the weekday must be the date's
        ("Tue, 14 Nov 2023 22:13:50 UTC", None),
        ("tue, 14 nov 2023 22:13:50 GMT", None),
        ("Tue, 31 Nov 2023 22:13:50 GMT", None),
        ("Tue, 14 Nov 2023 24:00:00 GMT", None),
        ("Tue, 14 Nov 2023 22:13:61 GMT", None),
        ("Tue,  14 Nov 2023 22:13:50 GMT", None),
        ("Wed Nov 01 00:00:00 2023", 0.0),
        ("Tue Nov 1 00:00:00 2023", None),
        ("Thu, 29 Feb 2024 00:00:00 GMT", 9_164_800.0),
        ("Tue, 14 Nov 2023 22:13:60 GMT", None),
        ("Thu, 01 Jan 1969 00:00:00 GMT", None),
        ("Tue, 29 Feb 2023 00:00:00 GMT", None),
    ],
)
def test_parse_retry_after(value: str, expected: Optional[float]) -> None:
    assert fallback.parse_retry_after(value, NOW) == expected


http_dates = st.datetimes(
    min_value=datetime.datetime(1970, 1, 1),
    max_value=datetime.datetime(2069, 12, 31, 23, 59, 59),
)


def formats(moment: Any) -> List[str]:
    return [
        moment.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        moment.strftime("%A, %d-%b-%y %H:%M:%S GMT"),
        moment.strftime("%a %b ") + f"{moment.day:2d}" + moment.strftime(" %H:%M:%S %Y"),
    ]


@given(http_dates, st.floats(0, 4e9))
def test_retry_after_dates_in_every_form(moment: Any, now: float) -> None:
    moment = moment.replace(microsecond=0)
    timestamp = (moment - datetime.datetime(1970, 1, 1)).total_seconds()
    for text in formats(moment):
        assert fallback.parse_retry_after(text, now) == max(0.0, timestamp - now), text


retry_after_values = (
    st.text(max_size=40)
    | st.integers(0, 10**30).map(str)
    | http_dates.map(lambda moment: formats(moment.replace(microsecond=0))[0])
    | st.sampled_from(["Tue, 14 Nov 2023 22:13:50 GMT", "Tuesday, 14-Nov-23 22:14:20 GMT"])
)


@requires_native("parse_retry_after")
@given(retry_after_values, st.floats(0, 4e9))
def test_parse_retry_after_parity(value: str, now: float) -> None:
    native = _flags.native
    assert native.parse_retry_after(value, now) == fallback.parse_retry_after(value, now)


@given(
    st.integers(1, 2000),
    st.floats(0, 100, allow_subnormal=False),
    st.floats(0, 1000, allow_subnormal=False),
    st.floats(0, 1),
)
def test_backoff_is_equal_jitter_under_the_cap(
    attempt: int, base: float, cap: float, rand: float
) -> None:
    wait = fallback.backoff_delay(attempt, base, cap, rand)
    full = min(cap, base * 2.0 ** min(attempt - 1, 1023))
    assert full / 2 <= wait <= full
    assert fallback.backoff_delay(attempt, base, cap, 0.0) == full / 2
    assert fallback.backoff_delay(attempt, base, cap, 1.0) == full


def test_backoff_examples() -> None:
    assert fallback.backoff_delay(1, 0.5, 30.0, 0.0) == 0.25
    assert fallback.backoff_delay(3, 0.5, 30.0, 1.0) == 2.0
    assert fallback.backoff_delay(10, 0.5, 30.0, 0.5) == 22.5
    with pytest.raises(ValueError):
        fallback.backoff_delay(0, 0.5, 30.0, 0.5)
    with pytest.raises(ValueError):
        fallback.backoff_delay(1, 0.5, 30.0, 1.5)


@requires_native("backoff_delay")
@given(
    st.integers(1, 2000),
    st.floats(0, 100, allow_subnormal=False),
    st.floats(0, 1000, allow_subnormal=False),
    st.floats(0, 1),
)
def test_backoff_parity(attempt: int, base: float, cap: float, rand: float) -> None:
    assert _flags.native.backoff_delay(attempt, base, cap, rand) == fallback.backoff_delay(
        attempt, base, cap, rand
    )
