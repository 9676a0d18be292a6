"""``fast_litellm.httpx.AsyncTransport`` / ``Transport`` under httpx, against the local test
server: what httpx users (LiteLLM, the OpenAI SDK) see must be httpx's own behaviour, with the
native pool underneath. With the native path off the transports are httpx's own, and the same
tests run on them."""

from __future__ import annotations

import asyncio
import gzip
import threading
from datetime import timedelta
from typing import Any, Callable, Iterator, List, Tuple, Type

import httpx
import pytest

from fast_litellm import http
from fast_litellm.httpx import AsyncTransport, Transport

from . import http_server as servers
from .http_server import HttpTestServer, pattern
from .redis_server import free_port
from .test_http import (
    DEADLINE,
    NON_ASCII_HEADER_VALUES,
    SSE_CHUNKS,
    engine_for_new_clients,
    listener_that_never_connects,
    requires_native_http,
)

http_server = servers.http_server


@pytest.fixture(params=[pytest.param("native", marks=requires_native_http), "fallback"])
def engine(request: Any) -> Iterator[str]:
    with engine_for_new_clients(request.param) as name:
        yield name


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_json_round_trip_both_kinds(engine: str, http_server: HttpTestServer) -> None:
    transport = Transport()
    assert transport.native == (engine == "native")
    with httpx.Client(transport=transport, base_url=http_server.url) as client:
        response = client.post("/echo", json={"a": [1, "é"]}, headers={"x-test": "1"})
        assert response.status_code == 200
        echoed = response.json()
        assert echoed["method"] == "POST" and echoed["path"] == "/echo"
        assert ["x-test", "1"] in [[n.lower(), v] for n, v in echoed["headers"]]

    async def main() -> Any:
        async with httpx.AsyncClient(
            transport=AsyncTransport(), base_url=http_server.url
        ) as client:
            return (await client.post("/echo", json={"b": 2})).json()

    assert run(main())["method"] == "POST"


def test_header_bytes_pass_unchanged(engine: str, http_server: HttpTestServer) -> None:
    """httpx keeps header values as bytes: the transport hands them to the server and back as
    they are, and httpx decodes the response's as it would its own (no error, no replacement
    character)."""
    values = [raw for raw, _ in NON_ASCII_HEADER_VALUES]

    def check(responses: List[httpx.Response], echoed: Any) -> None:
        for raw, response in zip(values, responses, strict=True):
            assert response.status_code == 200
            assert (b"x-value", raw) in [(n.lower(), v) for n, v in response.headers.raw]
            reference = httpx.Response(200, headers=[(b"X-Value", raw)])
            assert response.headers["x-value"] == reference.headers["x-value"]
        sent = [(n.lower(), v.encode("latin-1")) for n, v in echoed["headers"]]
        assert [v for n, v in sent if n == "x-sent"] == values

    sent_headers = [(b"X-Sent", raw) for raw in values]
    with httpx.Client(transport=Transport(), base_url=http_server.url) as client:
        responses = [client.get(f"/header?hex={raw.hex()}") for raw in values]
        check(responses, client.post("/echo", headers=sent_headers).json())

    async def main() -> None:
        async with httpx.AsyncClient(
            transport=AsyncTransport(), base_url=http_server.url
        ) as client:
            responses = [await client.get(f"/header?hex={raw.hex()}") for raw in values]
            check(responses, (await client.post("/echo", headers=sent_headers)).json())

    run(main())


def test_large_bodies_and_streams(engine: str, http_server: HttpTestServer) -> None:
    async def main() -> Any:
        async with httpx.AsyncClient(
            transport=AsyncTransport(), base_url=http_server.url
        ) as client:
            big = await client.get("/bytes/10485760")
            async with client.stream("POST", http_server.sse("t", SSE_CHUNKS)) as stream:
                raw = b"".join([chunk async for chunk in stream.aiter_raw()])
            return big, raw

    big, raw = run(main())
    assert big.content == pattern(10485760)
    assert raw == b"".join(SSE_CHUNKS)


def test_errors_are_httpx_errors(engine: str, http_server: HttpTestServer) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(transport=AsyncTransport()) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(http_server.url + "/slow", timeout=httpx.Timeout(5.0, read=0.2))
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{free_port()}/")

    run(main())


def test_request_errors_and_resets_are_httpx_classes(
    engine: str, http_server: HttpTestServer
) -> None:
    # What httpx's own transport raises, so code catching httpx.TransportError catches them.
    cases: List[Tuple[Callable[[httpx.Client], Any], Type[Exception]]] = [
        (
            lambda c: c.get(http_server.url + "/echo", headers={"X-A": "a\nb"}),
            httpx.LocalProtocolError,
        ),
        (
            lambda c: c.get(http_server.url + "/echo", headers={"X A": "1"}),
            httpx.LocalProtocolError,
        ),
        (lambda c: c.get("ftp://127.0.0.1/x"), httpx.UnsupportedProtocol),
        (lambda c: c.get(http_server.url + "/reset?rst=1"), httpx.ReadError),
        (lambda c: c.get(http_server.url + "/reset"), httpx.RemoteProtocolError),
    ]
    for call, error in cases:
        for transport in (httpx.HTTPTransport(), Transport()):
            with httpx.Client(transport=transport) as client, pytest.raises(error) as caught:
                call(client)
            assert type(caught.value) is error, (transport, caught.value)

    async def main() -> None:
        async with httpx.AsyncClient(transport=AsyncTransport()) as client:
            with pytest.raises(httpx.ReadError):
                await client.get(http_server.url + "/reset?rst=1")
            with pytest.raises(httpx.UnsupportedProtocol):
                await client.get("ftp://127.0.0.1/x")

    run(main())


@pytest.mark.parametrize(
    "status, reason", [(200, "Fine Thanks"), (200, ""), (201, "Created"), (599, "Weird"), (599, "")]
)
def test_the_reason_phrase_is_the_one_received(
    engine: str, http_server: HttpTestServer, status: int, reason: str
) -> None:
    name = f"reason-{status}-{reason.replace(' ', '-')}"
    path = http_server.answer(name, status, (), b"ok", reason=reason)
    seen = []
    for transport in (httpx.HTTPTransport(), Transport()):
        with httpx.Client(transport=transport, base_url=http_server.url) as client:
            seen.append(client.get(path + "/x").reason_phrase)
    assert seen == [reason, reason]

    async def main() -> str:
        async with httpx.AsyncClient(
            transport=AsyncTransport(), base_url=http_server.url
        ) as client:
            return (await client.get(path + "/x")).reason_phrase

    assert run(main()) == reason


def test_credentials_in_the_url_are_httpxs_to_use(engine: str, http_server: HttpTestServer) -> None:
    # httpx makes them Basic authentication above the transport, or leaves them out for an
    # auth= of the caller's: the transport sends what httpx decided.
    host = http_server.url.split("://", 1)[1]
    url = f"http://user:pass@{host}/echo"
    for transport in (httpx.HTTPTransport(), Transport()):
        with httpx.Client(transport=transport) as client:
            plain = client.get(url).json()
            own = client.get(url, auth=("other", "secret")).json()
        sent = [{n.lower(): v for n, v in echoed["headers"]} for echoed in (plain, own)]
        assert sent[0]["authorization"] == httpx.BasicAuth("user", "pass")._auth_header
        assert sent[1]["authorization"] == httpx.BasicAuth("other", "secret")._auth_header
        assert "@" not in sent[0]["host"]


def test_httpxs_per_request_connect_timeout_applies(engine: str) -> None:
    # The OpenAI SDK sends Timeout(600, connect=5.0): the transport's client has another.
    with listener_that_never_connects() as port:
        transport = Transport(timeout=http.TimeoutConfig(connect=None))
        outcome: List[BaseException] = []

        def request() -> None:
            with httpx.Client(transport=transport) as client:
                try:
                    client.get(f"http://127.0.0.1:{port}/", timeout=httpx.Timeout(30, connect=0.2))
                except BaseException as exc:  # noqa: BLE001 - what it raised is the answer
                    outcome.append(exc)

        thread = threading.Thread(target=request, daemon=True)
        thread.start()
        thread.join(DEADLINE)  # a bound on "never returns", not a speed
        assert outcome and isinstance(outcome[0], httpx.ConnectTimeout), outcome


def test_statuses_are_returned_not_retried(engine: str, http_server: HttpTestServer) -> None:
    with httpx.Client(transport=Transport(), base_url=http_server.url) as client:
        response = client.get("/status/429?id=transport&times=1&retry_after=0")
        # httpx's transports do not retry a 429; neither does ours unless asked.
        assert response.status_code == 429
        assert client.get("/status/429?id=transport&times=1&retry_after=0").status_code == 200


def test_content_encoding_is_decoded_by_httpx(engine: str, http_server: HttpTestServer) -> None:
    body = b"x" * 5000
    with httpx.Client(transport=Transport(), base_url=http_server.url) as client:
        response = client.post(
            "/echo", content=gzip.compress(body), headers={"content-encoding": "gzip"}
        )
        assert response.status_code == 200


@requires_native_http
def test_the_native_pool_serves_the_transport(http_server: HttpTestServer) -> None:
    with engine_for_new_clients("native"):
        transport = AsyncTransport(pool=http.ConnectionPoolConfig(max_connections=8))

    async def main() -> None:
        async with httpx.AsyncClient(transport=transport, base_url=http_server.url) as client:
            statuses = await asyncio.gather(*(client.get("/echo") for _ in range(32)))
            assert {response.status_code for response in statuses} == {200}

    run(main())
    stats = transport.client.pool_stats()
    assert stats["native"] and stats["requests"] == 32
    # Connections were reused (hyper may open one more while another returns to its pool; see
    # tests/test_http.py, SEQUENTIAL_SLACK).
    assert stats["connections_opened"] < 16
    assert stats["connections_reused"] >= 32 - stats["connections_opened"]


def test_a_body_that_came_whole_reads_as_httpx_reads_it(
    engine: str, http_server: HttpTestServer
) -> None:
    """A small body arrives with its headers and is handed to httpx already read: content,
    elapsed, the raw stream (still iterable), a compressed body decoded by httpx, and a body
    cut off are what httpx's own transport gives."""

    def check_sync() -> None:
        with httpx.Client(transport=Transport(), base_url=http_server.url) as client:
            response = client.get("/bytes/100")
            assert response.content == pattern(100)
            assert response.headers["content-length"] == "100"
            assert response.http_version == "HTTP/1.1"
            assert response.elapsed >= timedelta(0)
            assert client.get("/bytes/5000?gzip=1").content == pattern(5000)
            with client.stream("GET", "/bytes/100") as stream:
                assert b"".join(stream.iter_raw()) == pattern(100)
            with pytest.raises(httpx.RemoteProtocolError):
                client.get("/reset")

    async def check_async() -> None:
        async with httpx.AsyncClient(
            transport=AsyncTransport(), base_url=http_server.url
        ) as client:
            response = await client.get("/bytes/100")
            assert response.content == pattern(100)
            assert response.text == pattern(100).decode("latin-1")
            assert response.headers["content-length"] == "100"
            assert response.http_version == "HTTP/1.1"
            assert response.elapsed >= timedelta(0)
            await response.aclose()
            assert (await client.get("/bytes/5000?gzip=1")).content == pattern(5000)
            async with client.stream("GET", "/bytes/100") as stream:
                assert b"".join([chunk async for chunk in stream.aiter_raw()]) == pattern(100)
            async with client.stream("GET", "/bytes/5000?gzip=1") as stream:
                raw = b"".join([chunk async for chunk in stream.aiter_raw()])
                assert gzip.decompress(raw) == pattern(5000)
            async with client.stream("GET", "/bytes/300") as stream:
                assert await stream.aread() == pattern(300)
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get("/reset")

    check_sync()
    run(check_async())


def _what_httpx_shows(response: httpx.Response) -> Tuple[Any, ...]:
    """What a caller of httpx can see of a response, but for the time it took and the order
    and case of the header names (kept by httpx's transport, lower-cased by ours)."""
    return (
        response.status_code,
        response.reason_phrase,
        response.http_version,
        sorted(response.headers.multi_items()),
        response.is_closed,
        response.is_stream_consumed,
        response.num_bytes_downloaded,
        response.content if response.is_stream_consumed else None,
        type(response.elapsed) if response.is_closed else None,
    )


def test_a_response_shows_what_httpxs_own_transport_shows(
    engine: str, http_server: HttpTestServer
) -> None:
    """The same requests through httpx's transport and ours: a caller sees the same response,
    read (a request) or not yet (``stream``), then read, then closed."""
    http_server.answer("not-found", 404, (("X-Kind", "missing"),), b'{"error": "no"}')
    paths = ["/bytes/100", "/bytes/0", "/bytes/5000?gzip=1", "/answer/not-found/x"]

    def sync(transport: httpx.BaseTransport) -> List[Any]:
        seen = []
        with httpx.Client(transport=transport, base_url=http_server.url) as client:
            for path in paths:
                response = client.get(path)
                seen.append(_what_httpx_shows(response))
                response.close()
                seen.append(_what_httpx_shows(response))
                with client.stream("GET", path) as stream:
                    seen.append(_what_httpx_shows(stream))
                    stream.read()
                    seen.append(_what_httpx_shows(stream))
                seen.append(_what_httpx_shows(stream))
        return seen

    async def asynchronous(transport: httpx.AsyncBaseTransport) -> List[Any]:
        seen = []
        async with httpx.AsyncClient(transport=transport, base_url=http_server.url) as client:
            for path in paths:
                response = await client.get(path)
                seen.append(_what_httpx_shows(response))
                await response.aclose()
                seen.append(_what_httpx_shows(response))
                async with client.stream("GET", path) as stream:
                    seen.append(_what_httpx_shows(stream))
                    await stream.aread()
                    seen.append(_what_httpx_shows(stream))
                seen.append(_what_httpx_shows(stream))
        return seen

    assert sync(Transport()) == sync(httpx.HTTPTransport())
    assert run(asynchronous(AsyncTransport())) == run(asynchronous(httpx.AsyncHTTPTransport()))
