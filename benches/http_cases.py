"""Benchmark of the HTTP client: ``fast_litellm.AsyncClient`` against aiohttp, httpx and httpx over
LiteLLM's own aiohttp transport, each posting an OpenAI-shaped chat request to
``/v1/chat/completions`` of the local mock server (``benches/mock_server``, a small hyper binary
started once for the whole run).

Measured per contender and case: the client process's CPU time per request
(``getrusage(RUSAGE_SELF)``, user + system, which counts every thread of the process, so the native
client's runtime threads are billed too), requests per second, and the p50/p99 latency of one
request as its caller sees it, over one batch sent after a warm-up batch (connections open, code
paths warm). Each contender runs in a fresh interpreter of its own (``_WORKER``), so nothing of
one contender (imports, threads, garbage, open connections) is billed to another; each run is
bounded by a timeout and any error fails the run.

Contenders (pools of 1,000 connections everywhere, every timeout generous):

- ``native``: ``fast_litellm.AsyncClient`` on the native path (its requests driven by the event
  loop's own thread: the loop engine, the default);
- ``native, runtime engine``: the same with ``FAST_LITELLM_HTTP_LOOP_ENGINE=0``: requests driven
  by the tokio runtime's threads and handed to the loop;
- ``fallback``: the same API with the native path off, as ``FAST_LITELLM_RUST_CONNECTION_POOL=false``
  turns it off (the httpx-based engine);
- ``aiohttp``: ``aiohttp.ClientSession`` over ``TCPConnector(limit=1000)``;
- ``httpx``: ``httpx.AsyncClient`` with ``Limits`` of 1,000;
- ``httpx + LiteLLM aiohttp transport``: ``httpx.AsyncClient`` over the transport LiteLLM sends its
  async traffic through by default, built by LiteLLM itself
  (``AsyncHTTPHandler.create_aiohttp_transport()``: a ``LiteLLMAiohttpTransport`` whose connector
  limit is ``AIOHTTP_CONNECTOR_LIMIT``, 1,000 unless set);
- ``httpx + fast_litellm transport``: ``httpx.AsyncClient(transport=fast_litellm.httpx.AsyncTransport(...))``;
- ``httpx + canned-response transport``: ``httpx.AsyncClient`` over a transport that sends
  nothing and answers every request with the bytes and headers the mock server gave once: what
  httpx itself costs above any transport, the floor of the transports' row;
- ``native, fresh connections``: ``native`` with ``max_keepalive_connections=0``, a new connection
  per request;
- ``asyncio protocol, no HTTP library``: an ``asyncio.Protocol`` per keep-alive connection that
  writes the request bytes and cuts the answer by its Content-Length (``_loop_floor``): what the
  event loop itself costs per request, the floor under every asyncio client (non-streaming cases).

Cases (``CASES``): non-streaming at 1, 64 and 512 requests in flight; 512 in flight with 20 ms of
server latency; streams of 50 events read to the end, event by event; the httpx transports at 64
in flight; keep-alive against fresh connections at 64 in flight. Used by
``scripts/run_benchmarks.py`` and ``benches/test_bench_http.py``; the section alone:

    python -m benches.http_cases [--quick]

Without cargo (the mock server is built on first use) ``run_cases`` returns an empty list
(``skip_reason()`` says why); a contender whose package is missing is left out
(``skipped_contenders()`` says why).
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Tuple

from fast_litellm import _flags

from .mock_server import MockServer, cargo_missing
from .token_cases import Result, chat, missing, native_missing

__all__ = [
    "CASES",
    "CONTENDERS",
    "STREAMING_CONTENDERS",
    "STREAM_EVENTS",
    "Case",
    "HttpResult",
    "format_result",
    "markdown",
    "measure",
    "open_contender",
    "run_case",
    "run_cases",
    "send_batch",
    "skip_reason",
    "skipped_contenders",
    "worker_main",
]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NATIVE = "native"
FALLBACK = "fallback"
AIOHTTP = "aiohttp"
HTTPX = "httpx"
HTTPX_LITELLM = "httpx + LiteLLM aiohttp transport"
HTTPX_OURS = "httpx + fast_litellm transport"
HTTPX_FLOOR = "httpx + canned-response transport"
NATIVE_FRESH = "native, fresh connections"
NATIVE_RUNTIME = "native, runtime engine"
LOOP_FLOOR = "asyncio protocol, no HTTP library"
CONTENDERS = (
    NATIVE,
    NATIVE_RUNTIME,
    FALLBACK,
    AIOHTTP,
    HTTPX,
    HTTPX_LITELLM,
    HTTPX_OURS,
    HTTPX_FLOOR,
    NATIVE_FRESH,
    LOOP_FLOOR,
)
STREAMING_CONTENDERS = (NATIVE, NATIVE_RUNTIME, FALLBACK, AIOHTTP, HTTPX)

CHAT_PATH = "/v1/chat/completions"
POOL_SIZE = 1000
STREAM_EVENTS = 50
# A stream of N content events also carries the finish-reason event and `data: [DONE]`.
EVENTS_PER_STREAM = STREAM_EVENTS + 2
SERVER_LATENCY_MS = 20
# No request may time out: at 512 in flight an httpx request waits seconds (its pool bookkeeping).
REQUEST_TIMEOUT = 300.0
# The bound on one contender's whole run (interpreter start, imports, warm-up, the batch).
_WORKER_TIMEOUT = 900.0
GROUP = "HTTP client"


@dataclass(frozen=True)
class Case:
    """One row group of the table: its contenders (the first is ours, the others are compared
    with it), requests in flight, and the requests of a full and of a quick run. A full run
    measures every contender ``rounds`` times, the contenders taking turns, and keeps each
    figure's median: on a shared machine a single run of each can land on a busy moment of
    the other processes, and the ratios between contenders are what the table is for."""

    title: str
    contenders: Tuple[str, ...]
    concurrency: int
    requests: int
    quick_requests: int
    stream: bool = False
    server_latency_ms: int = 0
    rounds: int = 1


_NON_STREAMING = (NATIVE, NATIVE_RUNTIME, FALLBACK, AIOHTTP, HTTPX, HTTPX_LITELLM, LOOP_FLOOR)
CASES = (
    Case("non-streaming", _NON_STREAMING, 1, 1000, 30, rounds=3),
    Case("non-streaming", _NON_STREAMING, 64, 3000, 256, rounds=3),
    Case("non-streaming", _NON_STREAMING, 512, 3000, 512),
    Case(
        f"non-streaming, {SERVER_LATENCY_MS} ms server latency",
        (NATIVE, AIOHTTP, HTTPX),
        512,
        3000,
        512,
        server_latency_ms=SERVER_LATENCY_MS,
    ),
    Case(f"streaming, {STREAM_EVENTS} events", STREAMING_CONTENDERS, 64, 1000, 64, stream=True),
    Case("through httpx", (HTTPX_OURS, HTTPX, HTTPX_LITELLM, HTTPX_FLOOR), 64, 3000, 256, rounds=5),
    Case("keep-alive vs fresh connections", (NATIVE, NATIVE_FRESH), 64, 3000, 256),
)


@dataclass
class HttpResult(Result):
    """One case: ``seconds`` is CPU seconds per request (per stream) of each contender, so
    ``ratio(ours, other)`` is how many times less CPU ours spends."""

    concurrency: int = 1
    requests: int = 0
    server_latency_ms: int = 0
    ours: str = NATIVE
    per_second: Dict[str, float] = field(default_factory=dict)
    p50_seconds: Dict[str, float] = field(default_factory=dict)
    p99_seconds: Dict[str, float] = field(default_factory=dict)
    rounds: int = 1
    # The least and most CPU seconds per request of each contender's rounds.
    seconds_range: Dict[str, Tuple[float, float]] = field(default_factory=dict)


def skip_reason() -> Optional[str]:
    """Why the benchmark cannot run here (the mock server cannot be built), or None."""
    return cargo_missing()


def skipped_contenders() -> Dict[str, str]:
    """The contenders that cannot run here, with the reason (what they need is missing)."""
    needs = {
        NATIVE: ["native"],
        NATIVE_FRESH: ["native"],
        NATIVE_RUNTIME: ["native"],
        FALLBACK: ["fallback", "httpx"],
        AIOHTTP: ["aiohttp"],
        HTTPX: ["httpx"],
        HTTPX_LITELLM: ["httpx", "aiohttp", "litellm"],
        HTTPX_OURS: ["native", "httpx"],
        HTTPX_FLOOR: ["httpx"],
        LOOP_FLOOR: [],
    }
    reasons = {name: missing(name, name) for name in ("httpx", "aiohttp", "litellm")}
    reasons["native"] = native_missing()
    if reasons["native"] is None and not hasattr(_flags.native, "HttpClient"):
        reasons["native"] = "the native module has no HTTP client (rebuild the extension)"
    reasons["fallback"] = (
        None
        if importlib.util.find_spec("fast_litellm._fallback.http") is not None
        else "the fallback engine (fast_litellm._fallback.http) is not in this build"
    )
    skipped: Dict[str, str] = {}
    for contender, needed in needs.items():
        reason = next((reasons[n] for n in needed if reasons[n] is not None), None)
        if reason is not None:
            skipped[contender] = reason
    return skipped


def chat_body(stream: bool) -> Dict[str, Any]:
    body: Dict[str, Any] = {"model": "gpt-4o-mini", "messages": chat(), "max_tokens": 256}
    if stream:
        body["stream"] = True
    return body


# ---- the contenders --------------------------------------------------------------------------------


@dataclass
class OpenContender:
    """A contender's client, ready: ``send()`` makes one request (or reads one stream to its
    end) and raises on anything but a full, successful answer; ``close()`` closes the client;
    ``stats()`` is its pool statistics where it keeps any."""

    send: Callable[[], Awaitable[None]]
    close: Callable[[], Awaitable[Any]]
    stats: Callable[[], Dict[str, Any]] = dict


def _check(status: int, body: Optional[bytes] = None) -> None:
    """Raises unless the answer is a 200 (with a body, where one is given to check)."""
    if status != 200 or body == b"":
        raise RuntimeError(f"the mock server answered {status} (body: {body!r})")


def _check_events(events: int) -> None:
    if events != EVENTS_PER_STREAM:
        raise RuntimeError(f"a stream carried {events} events, expected {EVENTS_PER_STREAM}")


def _build_ours(native: bool, build: Callable[[], Any]) -> Any:
    """``build()`` with the native path of CONNECTION_POOL forced on or off (a client asks
    once, when it is built), checked, and the flag restored."""
    state = _flags.feature("CONNECTION_POOL")
    saved = state.enabled
    try:
        _flags.configure("connection_pool", rust=native)
        built = build()
    finally:
        _flags.configure("connection_pool", rust=saved)
    if built.native != native:
        raise RuntimeError(f"the client was built on the wrong path (native={built.native})")
    return built


def _httpx_like_send(
    client: Any,
    url: str,
    body: Dict[str, Any],
    headers: Any,
    count_events: Optional[Callable[[Any], Awaitable[int]]],
) -> Callable[[], Awaitable[None]]:
    """One request of a client with httpx's API (``post``, ``stream``), ours included: a POST
    read whole, or, given ``count_events``, a stream read to its end."""

    async def post() -> None:
        response = await client.post(url, json=body, headers=headers)
        _check(response.status_code, response.content)

    if count_events is None:
        return post
    count = count_events

    async def read_stream() -> None:
        async with client.stream("POST", url, json=body, headers=headers) as answer:
            _check(answer.status_code)
            events = await count(answer)
        _check_events(events)

    return read_stream


def _ours(name: str, url: str, body: Dict[str, Any], stream: bool, headers: Any) -> OpenContender:
    from fast_litellm import AsyncClient, ConnectionPoolConfig

    keepalive = 0 if name == NATIVE_FRESH else POOL_SIZE
    # Read when a client is built; this interpreter runs this contender only.
    os.environ["FAST_LITELLM_HTTP_LOOP_ENGINE"] = "0" if name == NATIVE_RUNTIME else "1"
    pool = ConnectionPoolConfig(max_connections=POOL_SIZE, max_keepalive_connections=keepalive)
    client = _build_ours(name != FALLBACK, lambda: AsyncClient(pool=pool, timeout=REQUEST_TIMEOUT))

    async def count_events(answer: Any) -> int:
        events = 0
        async for _event in answer:
            events += 1
        return events

    send = _httpx_like_send(client, url, body, headers, count_events if stream else None)
    return OpenContender(send, client.aclose, client.pool_stats)


def _aiohttp(url: str, body: Dict[str, Any], stream: bool, headers: Any) -> OpenContender:
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=POOL_SIZE),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
    )

    async def post() -> None:
        async with session.post(url, json=body, headers=headers) as response:
            _check(response.status, await response.read())

    async def read_stream() -> None:
        events = 0
        async with session.post(url, json=body, headers=headers) as response:
            _check(response.status)
            async for line in response.content:
                if line.startswith(b"data:"):
                    events += 1
        _check_events(events)

    return OpenContender(read_stream if stream else post, session.close)


def _canned_transport(url: str, body: Dict[str, Any], headers: Any) -> Any:
    """An httpx transport that answers every request with what the server answered ``body``
    once (status, headers, bytes), sending nothing: httpx's own cost per request."""
    import httpx

    answer = httpx.post(url, json=body, headers=headers, timeout=REQUEST_TIMEOUT)
    status, raw_headers, content = answer.status_code, answer.headers.raw, answer.content

    class Canned(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await request.aread()
            return httpx.Response(status, headers=raw_headers, content=content)

    return Canned()


class _Http1Protocol(asyncio.Protocol):
    """One keep-alive connection of ``_loop_floor``: answers are read by their Content-Length
    and nothing else of HTTP is looked at."""

    def __init__(self) -> None:
        self.transport: Optional[asyncio.Transport] = None
        self.answer: Optional[asyncio.Future[Tuple[int, bytes]]] = None
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.answer is None:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self.answer.set_exception(RuntimeError("an answer without a Content-Length"))
            return
        line_end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
        if len(self.buffer) < end + 4 + length:
            return
        status, body = int(self.buffer[9:12]), bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        self.answer.set_result((status, body))

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionError("the server closed the connection"))


def _loop_floor(url: str, body: Dict[str, Any], headers: Any) -> OpenContender:
    """The least an HTTP/1.1 client on asyncio does per request: serialize the body, write the
    request on an idle keep-alive connection, wake when the answer's bytes arrive and cut it by
    its Content-Length. No HTTP library, no parsing of headers, no pool bookkeeping: what the
    event loop itself costs, which every asyncio client pays on top of its own work."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    idle: List[_Http1Protocol] = []
    opened: List[_Http1Protocol] = []

    async def post() -> None:
        loop = asyncio.get_running_loop()
        if idle:
            connection = idle.pop()
        else:
            _, connection = await loop.create_connection(_Http1Protocol, host, port)
            opened.append(connection)
        payload = json.dumps(body).encode()
        request = (
            f"POST {parts.path} HTTP/1.1\r\nhost: {host}:{port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n{extra}\r\n"
        ).encode()
        connection.answer = loop.create_future()
        assert connection.transport is not None
        connection.transport.write(request + payload)
        status, answer = await connection.answer
        connection.answer = None
        idle.append(connection)
        _check(status, answer)

    async def close() -> None:
        for connection in opened:
            if connection.transport is not None:
                connection.transport.close()

    return OpenContender(post, close)


def _httpx(name: str, url: str, body: Dict[str, Any], stream: bool, headers: Any) -> OpenContender:
    import httpx

    if name == HTTPX:
        client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
            timeout=REQUEST_TIMEOUT,
        )
    elif name == HTTPX_LITELLM:
        from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

        transport = AsyncHTTPHandler.create_aiohttp_transport()
        client = httpx.AsyncClient(transport=transport, timeout=REQUEST_TIMEOUT)
    elif name == HTTPX_FLOOR:
        client = httpx.AsyncClient(transport=_canned_transport(url, body, headers))
    else:
        from fast_litellm import ConnectionPoolConfig
        from fast_litellm.httpx import AsyncTransport

        pool = ConnectionPoolConfig(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
        ours = _build_ours(True, lambda: AsyncTransport(pool=pool))
        client = httpx.AsyncClient(transport=ours, timeout=REQUEST_TIMEOUT)

    async def count_events(answer: Any) -> int:
        events = 0
        async for line in answer.aiter_lines():
            if line.startswith("data:"):
                events += 1
        return events

    send = _httpx_like_send(client, url, body, headers, count_events if stream else None)
    return OpenContender(send, client.aclose)


async def open_contender(
    name: str, server_url: str, *, stream: bool = False, server_latency_ms: int = 0
) -> OpenContender:
    """``name``'s client, built inside the running event loop (aiohttp binds its session to it)."""
    url = server_url + CHAT_PATH
    body = chat_body(stream)
    headers = {"x-mock-latency-ms": str(server_latency_ms)} if server_latency_ms else None
    if name in (NATIVE, NATIVE_RUNTIME, FALLBACK, NATIVE_FRESH):
        return _ours(name, url, body, stream, headers)
    if name == AIOHTTP:
        return _aiohttp(url, body, stream, headers)
    if name == LOOP_FLOOR and not stream:
        return _loop_floor(url, body, headers)
    if name in (HTTPX, HTTPX_LITELLM, HTTPX_OURS, HTTPX_FLOOR):
        return _httpx(name, url, body, stream, headers)
    raise ValueError(f"unknown contender {name!r}; expected one of {CONTENDERS}")


async def send_batch(
    send: Callable[[], Awaitable[None]], total: int, concurrency: int
) -> List[float]:
    """``total`` requests, ``concurrency`` of them in flight at any time; the seconds each took."""
    latencies: List[float] = []
    remaining = total

    async def sender() -> None:
        nonlocal remaining
        clock = time.perf_counter
        while remaining > 0:
            remaining -= 1
            started = clock()
            await send()
            latencies.append(clock() - started)

    await asyncio.gather(*(sender() for _ in range(min(concurrency, total))))
    return latencies


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure_here(spec: Mapping[str, Any]) -> Dict[str, Any]:
    contender = await open_contender(
        spec["contender"],
        spec["url"],
        stream=spec["stream"],
        server_latency_ms=spec["server_latency_ms"],
    )
    try:
        await send_batch(contender.send, spec["warmup"], spec["concurrency"])
        gc.collect()
        cpu_before, started = _cpu_seconds(), time.perf_counter()
        latencies = await send_batch(contender.send, spec["requests"], spec["concurrency"])
        elapsed, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_before
        stats = contender.stats()
    finally:
        await contender.close()
    latencies.sort()
    if len(latencies) > 1:
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        p50, p99 = cuts[49], cuts[98]
    else:
        p50 = p99 = latencies[0]
    return {
        "requests": len(latencies),
        "cpu_seconds": cpu,
        "wall_seconds": elapsed,
        "p50_seconds": p50,
        "p99_seconds": p99,
        "connections_opened": stats.get("connections_opened"),
    }


def worker_main(spec_json: str) -> None:
    """The body of a contender's own interpreter: measure, print the figures as one JSON line."""
    print(json.dumps(asyncio.run(_measure_here(json.loads(spec_json)))), flush=True)


_WORKER = """
import sys
sys.path.insert(0, sys.argv[1])  # the repository root, where ``benches`` is
from benches.http_cases import worker_main
worker_main(sys.argv[2])
"""


def measure(
    contender: str,
    server_url: str,
    *,
    concurrency: int,
    requests: int,
    warmup: int,
    stream: bool = False,
    server_latency_ms: int = 0,
    timeout: float = _WORKER_TIMEOUT,
) -> Dict[str, Any]:
    """One contender's figures, measured in a fresh interpreter (``requests``, ``cpu_seconds``,
    ``wall_seconds``, ``p50_seconds``, ``p99_seconds``, ``connections_opened`` where the client
    counts them)."""
    spec = {
        "contender": contender,
        "url": server_url,
        "concurrency": concurrency,
        "requests": requests,
        "warmup": warmup,
        "stream": stream,
        "server_latency_ms": server_latency_ms,
    }
    try:
        out = subprocess.run(
            [sys.executable, "-c", _WORKER, _ROOT, json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        # subprocess.run has killed the interpreter by its pid before raising.
        raise RuntimeError(f"{contender} did not finish in {timeout:.0f} s") from exc
    if out.returncode != 0:
        raise RuntimeError(f"{contender} failed ({out.returncode}):\n{out.stderr.strip()}")
    lines = out.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{contender} printed no figures:\n{out.stderr.strip()}")
    return dict(json.loads(lines[-1]))


def run_case(case: Case, server_url: str, quick: bool = False) -> HttpResult:
    requests = case.quick_requests if quick else case.requests
    # The warm-up has every connection open (all requests in flight at once) and the code
    # paths warm before the CPU clock is read. A quick run measures nothing: no warm-up.
    warmup = 0 if quick else max(case.concurrency, requests // 10)
    skipped = skipped_contenders()
    result = HttpResult(
        GROUP,
        case.title,
        "-",
        concurrency=case.concurrency,
        requests=requests,
        server_latency_ms=case.server_latency_ms,
        ours=case.contenders[0],
    )
    rounds = 1 if quick else case.rounds
    result.rounds = rounds
    measured = [name for name in case.contenders if name not in skipped]
    for name in case.contenders:
        if name in skipped:
            result.skipped[name] = skipped[name]
    figures: Dict[str, List[Dict[str, Any]]] = {name: [] for name in measured}
    for _ in range(rounds):
        for name in measured:
            one = measure(
                name,
                server_url,
                concurrency=case.concurrency,
                requests=requests,
                warmup=warmup,
                stream=case.stream,
                server_latency_ms=case.server_latency_ms,
            )
            opened = one["connections_opened"]
            if name == NATIVE_FRESH and (opened is None or opened < requests):
                raise RuntimeError(f"{name} opened {opened} connections for {requests} requests")
            figures[name].append(one)
    for name in measured:
        cpu = [one["cpu_seconds"] / one["requests"] for one in figures[name]]
        result.seconds[name] = statistics.median(cpu)
        result.seconds_range[name] = (min(cpu), max(cpu))
        result.per_second[name] = statistics.median(
            one["requests"] / one["wall_seconds"] for one in figures[name]
        )
        result.p50_seconds[name] = statistics.median(one["p50_seconds"] for one in figures[name])
        result.p99_seconds[name] = statistics.median(one["p99_seconds"] for one in figures[name])
    return result


def run_cases(
    quick: bool = False,
    cases: Tuple[Case, ...] = CASES,
    progress: Callable[[str], None] = lambda line: None,
) -> List[HttpResult]:
    """Every case against one mock server started here (and stopped by its pid at the end);
    ``quick`` sends few requests (a smoke run that only proves the code works)."""
    if skip_reason() is not None:
        return []
    results = []
    # One server thread leaves the other core of a small machine to the client measured.
    with MockServer(stream_events=STREAM_EVENTS) as server:
        for case in cases:
            results.append(run_case(case, server.url, quick))
            for line in format_result(results[-1]):
                progress(line)
    return results


# ---- reporting -------------------------------------------------------------------------------------


def _times_less(result: HttpResult, name: str) -> str:
    ratio = result.ratio(result.ours, name) if name != result.ours else None
    return f"**{ratio:.1f}x**" if ratio is not None else "-"


def _throughput_ratio(result: HttpResult, name: str) -> str:
    if name == result.ours or result.ours not in result.per_second:
        return "-"
    return f"{result.per_second[result.ours] / result.per_second[name]:.2f}x"


def _cpu(result: HttpResult, name: str) -> str:
    """CPU µs per request: the median, and the least and most of the rounds when there were
    several."""
    median = f"{result.seconds[name] * 1e6:.1f}"
    if result.rounds < 2:
        return median
    low, high = result.seconds_range[name]
    return f"{median} ({low * 1e6:.1f}–{high * 1e6:.1f})"


def format_result(result: HttpResult) -> List[str]:
    """Console lines: one per contender measured."""
    case = f"{result.case}, {result.concurrency} in flight"
    lines = []
    for name in result.seconds:
        lines.append(
            f"{case:<50} {name:<34} {_cpu(result, name):>20} µs CPU  "
            f"{result.per_second[name]:9,.0f} req/s  p50 {result.p50_seconds[name] * 1e3:8.2f} ms"
            f"  p99 {result.p99_seconds[name] * 1e3:8.2f} ms  {result.ours} vs it: "
            f"{_times_less(result, name)} less CPU"
        )
    lines += [f"{case:<50} {name:<34} skipped" for name in result.skipped]
    return lines


def _notes(results: List[HttpResult]) -> List[str]:
    """What the table cannot show at a glance: latency above the server's, keep-alive's saving."""
    notes = []
    for result in results:
        if result.server_latency_ms:
            over = ", ".join(
                f"{name} +{(result.p50_seconds[name] * 1e3 - result.server_latency_ms):.1f} ms "
                f"(p50) / +{(result.p99_seconds[name] * 1e3 - result.server_latency_ms):.1f} ms "
                "(p99)"
                for name in result.seconds
            )
            notes.append(
                f"- {result.case}, {result.concurrency} in flight: latency above the server's {result.server_latency_ms} ms: "
                f"{over}."
            )
        if LOOP_FLOOR in result.seconds and result.ours in result.seconds:
            ours, floor = result.seconds[result.ours], result.seconds[LOOP_FLOOR]
            notes.append(
                f"- {result.case}, {result.concurrency} in flight: {result.ours} spends "
                f"{(ours - floor) * 1e6:.1f} µs of CPU per request above the event loop's own "
                f"{floor * 1e6:.1f} µs (`{LOOP_FLOOR}`)."
            )
        if NATIVE_FRESH in result.seconds and NATIVE in result.seconds:
            fresh, kept = result.seconds[NATIVE_FRESH], result.seconds[NATIVE]
            notes.append(
                f"- Keep-alive saves {(fresh - kept) * 1e6:.1f} µs of CPU per request "
                f"({(fresh - kept) / fresh:.0%} of a request on a fresh connection) and serves "
                f"{result.per_second[NATIVE] / result.per_second[NATIVE_FRESH]:.2f}x the "
                "requests per second."
            )
    return notes


def markdown(results: List[HttpResult]) -> List[str]:
    """The BENCHMARKS.md section: one row per case and contender."""
    lines = [
        f"## {GROUP}",
        "",
        "POSTs of an OpenAI-shaped chat request to a local mock server (`benches/mock_server`, "
        "one thread); each contender in a fresh interpreter of its own. *CPU* is the client "
        "process's CPU time (user + system, all its threads) per request, or per stream read "
        f"to its end ({STREAM_EVENTS} content events); p50/p99 are the latency of one request "
        "as its caller sees it. `ours vs this` compares the case's first row with each other "
        "row: how many times less CPU ours spends per request, and its requests per second "
        "over theirs. `native` is `fast_litellm.AsyncClient` (its requests driven by the event "
        "loop's own thread, the default); `native, runtime engine` the same with "
        "`FAST_LITELLM_HTTP_LOOP_ENGINE=0` (driven by the tokio runtime's threads, the results "
        "handed to the loop); `fallback` the same API with the native path off; `httpx + LiteLLM aiohttp transport` is the transport LiteLLM builds "
        "for its async traffic by default; `asyncio protocol, no HTTP library` writes the "
        "request bytes on a keep-alive connection and cuts the answer by its Content-Length, "
        "nothing else: what the event loop itself costs per request, under every asyncio "
        "client (a lone request in flight pays the loop's sleep and wake-up each time; many "
        "share them). Pools of 1,000 connections. Where a CPU figure has a range after it, the "
        "case was measured in several rounds, the contenders taking turns: the figure and "
        "every other column are the medians of the rounds, the range is the least and the "
        "most of its CPU figures. See `benches/http_cases.py`.",
        "",
    ]
    if not results:
        return lines + [f"Not measured: {skip_reason() or 'no results'}.", ""]
    lines += [
        "| case | contender | in flight | CPU µs/request | req/s | p50 ms | p99 ms "
        "| ours vs this: CPU | ours vs this: req/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for name in result.seconds:
            lines.append(
                f"| {result.case} | {name} | {result.concurrency} | {_cpu(result, name)} | "
                f"{result.per_second[name]:,.0f} | {result.p50_seconds[name] * 1e3:.2f} | "
                f"{result.p99_seconds[name] * 1e3:.2f} | {_times_less(result, name)} | "
                f"{_throughput_ratio(result, name)} |"
            )
    lines.append("")
    notes = _notes(results)
    if notes:
        lines += notes + [""]
    skipped: Dict[str, str] = {}
    for result in results:
        for name, reason in result.skipped.items():
            skipped.setdefault(name, reason)
    if skipped:
        lines += [f"Not measured: {name} ({reason})." for name, reason in skipped.items()] + [""]
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few requests: a smoke run")
    args = parser.parse_args(argv)
    reason = skip_reason()
    if reason is not None:
        print(f"skipped: {reason}")
        return 1
    results = run_cases(quick=args.quick, progress=print)
    print()
    print("\n".join(markdown(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
