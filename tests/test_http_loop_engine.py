"""The loop engine of the native HTTP client (src/http/local.rs): asyncio requests driven by the
event loop's own thread. The API tests of test_http.py run on it as well (it is the default for
asyncio callers, and CI runs them once more with it off); these are about the engine itself:
which loops get one, that it goes away with its loop, several loops sharing one client, uvloop,
and its switch. (Cancellation, timeouts, fork and exit are test_http.py's, test_fork.py's and
test_shutdown.py's, which run on it.)
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any, Dict, Iterator, List

import pytest

from fast_litellm import http
from fast_litellm.errors import ConnectError, ReadTimeout

from . import http_server as servers
from .conftest import new_loop
from .http_server import HttpTestServer
from .test_http import (
    SHORT_READ,
    engine_for_new_clients,
    requires_native_http,
    run_in_fresh_interpreter,
    settle,
)

http_server = servers.http_server

pytestmark = requires_native_http

SWITCH = "FAST_LITELLM_HTTP_LOOP_ENGINE"


@pytest.fixture
def native(monkeypatch: pytest.MonkeyPatch, http_server: HttpTestServer) -> Iterator[None]:
    """New clients are native, with the loop engine on unless a test turns it off."""
    monkeypatch.setenv(SWITCH, "1")
    http_server.sse("engine", EVENTS)
    with engine_for_new_clients("native"):
        yield


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


EVENTS = [b"data: 0\n\n", b"data: 1\n", b"\ndata: 2\n\n"]


async def exercise(client: http.AsyncClient) -> List[Any]:
    """A request, a batch, a stream, a timeout: what the engine drives, once each."""
    seen: List[Any] = [json.loads((await client.post("/echo", json={"a": 1})).json()["body"])]
    # Fewer at once than the loop engine takes (8): all of them run on it.
    batch = await asyncio.gather(*(client.get("/echo?summary=1") for _ in range(6)))
    seen.append([r.status_code for r in batch])
    async with client.stream("GET", "/sse/engine") as stream:
        seen.append([event.data async for event in stream])
    with pytest.raises(ReadTimeout):
        await client.get("/slow", timeout=SHORT_READ)
    seen.append(client.pool_stats()["loop_engines"])
    return seen


@pytest.mark.usefixtures("native")
def test_asyncio_requests_run_on_their_loops_engine(http_server: HttpTestServer) -> None:
    client = http.AsyncClient(http_server.url)
    seen = asyncio.run(exercise(client))
    assert seen[0] == {"a": 1}
    assert seen[1] == [200] * 6
    assert seen[2] == ["0", "1", "2"]
    assert seen[3] == 1, "the requests ran on the loop's engine"
    # asyncio.run closed the loop, and its engine with it.
    assert client.pool_stats()["loop_engines"] == 0
    assert client.pool_stats()["in_flight"] == 0


@pytest.mark.usefixtures("native")
def test_the_switch_turns_it_off(
    http_server: HttpTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SWITCH, "0")
    client = http.AsyncClient(http_server.url)
    assert asyncio.run(exercise(client))[3] == 0


@pytest.mark.usefixtures("native")
@pytest.mark.parametrize("value", ["maybe", "2"])
def test_a_bad_switch_value_is_a_value_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(SWITCH, value)
    with pytest.raises(ValueError, match=SWITCH):
        http.AsyncClient()


@pytest.mark.usefixtures("native")
def test_an_engine_goes_away_with_its_loop(http_server: HttpTestServer) -> None:
    # Each loop gets an engine (a poll descriptor, a waker) and connections; closing the loop
    # closes them all, so loop after loop leaves nothing behind.
    # (The server runs in this process: its connections, some held by `/slow` until it stops,
    # are not the client's.)
    client = http.AsyncClient(http_server.url)
    asyncio.run(exercise(client))
    before = open_descriptors() - http_server.open_connections
    for _ in range(30):
        asyncio.run(exercise(client))
    settle(
        lambda: open_descriptors() - http_server.open_connections <= before,
        "the engines and connections of closed loops are gone",
    )
    assert client.pool_stats()["loop_engines"] == 0
    assert client.pool_stats()["active_connections"] == 0


@pytest.mark.usefixtures("native")
def test_loops_in_two_threads_share_one_client(http_server: HttpTestServer) -> None:
    # One client, two loops in two threads: each loop has its own engine and connections, and
    # the client's limit holds over both (they share its gate and its counters): of four held
    # requests, two from each loop, three reach the server and one waits for a place.
    from .test_http import BackgroundLoop

    client = http.AsyncClient(http_server.url, pool=http.ConnectionPoolConfig(max_connections=3))
    loops = [BackgroundLoop(), BackgroundLoop()]
    names = [f"shared-{index}" for index in range(4)]
    paths = [http_server.hold(name) for name in names]
    try:
        answers = [loops[index % 2].submit(client.get(path)) for index, path in enumerate(paths)]
        settle(
            lambda: sum(http_server.arrived(name) for name in names) == 3,
            "three requests reached the server",
        )
        stats = client.pool_stats()
        assert stats["in_flight"] == 4 and stats["active_connections"] == 3, stats
        assert stats["loop_engines"] == 2
        waiting = [name for name in names if not http_server.arrived(name)]
        for name in names:
            if name not in waiting:
                http_server.release(name)
        assert http_server.wait_arrived(waiting[0])
        http_server.release(waiting[0])
        assert [answer.result(60).status_code for answer in answers] == [200] * 4
        settle(lambda: client.pool_stats()["in_flight"] == 0, "every request is over")
        assert client.pool_stats()["requests"] == 4
    finally:
        for loop in loops:
            loop.stop()
    assert client.pool_stats()["loop_engines"] == 0


@pytest.mark.usefixtures("native")
def test_uvloop(http_server: HttpTestServer) -> None:
    uvloop = pytest.importorskip("uvloop")
    loop = uvloop.new_event_loop()
    client = http.AsyncClient(http_server.url)
    try:
        seen = loop.run_until_complete(exercise(client))
    finally:
        loop.close()
    assert seen[1] == [200] * 6 and seen[2] == ["0", "1", "2"]
    assert seen[3] == 1


@pytest.mark.usefixtures("native")
def test_a_loop_that_cannot_watch_sockets_uses_the_runtime(http_server: HttpTestServer) -> None:
    loop = new_loop("without add_reader")
    client = http.AsyncClient(http_server.url)
    try:
        seen = loop.run_until_complete(exercise(client))
    finally:
        loop.close()
    assert seen[1] == [200] * 6
    assert seen[3] == 0


def fork_while_an_engine_is_busy_scenario() -> None:
    """Run in a fresh interpreter: a loop in another thread has requests in flight on its engine
    (held by the server, plus a stream being read) when the main thread forks. The child uses
    the same client from a loop of its own (a new engine, a new pool: nothing of the parent's
    poll or sockets is touched); the parent's requests then finish unharmed."""
    import time

    from .test_fork import CHILD_TIMEOUT, start_child
    from .test_http import BackgroundLoop

    os.environ[SWITCH] = "1"
    with HttpTestServer() as server:
        client = http.AsyncClient(server.url)
        background = BackgroundLoop()
        held = [server.hold(f"busy-{index}") for index in range(10)]
        in_flight = [background.submit(client.get(path)) for path in held]
        server.sse("ticks", [f"data: {index}\n\n".encode() for index in range(50)])

        async def read_stream() -> List[str]:
            async with client.stream("GET", "/sse/ticks") as stream:
                return [event.data async for event in stream]

        for index in range(10):
            assert server.wait_arrived(f"busy-{index}")
        assert client.pool_stats()["loop_engines"] == 1

        async def child_requests() -> List[int]:
            batch = await asyncio.gather(*(client.get("/echo") for _ in range(20)))
            return [r.status_code for r in batch]

        def child_work() -> Dict[str, Any]:
            statuses = asyncio.run(child_requests())
            return {"statuses": statuses, "stats": client.pool_stats()}

        streamed = background.submit(read_stream())
        child = start_child(child_work)
        answer = child.result(time.monotonic() + CHILD_TIMEOUT)
        for index in range(10):
            server.release(f"busy-{index}")
        assert [f.result(60).status_code for f in in_flight] == [200] * 10
        assert streamed.result(60) == [str(index) for index in range(50)]
        assert answer["statuses"] == [200] * 20, answer
        assert answer["stats"]["requests"] == 20, answer["stats"]
        assert not any(answer["stats"]["errors"].values()), answer["stats"]["errors"]
        assert not any(client.pool_stats()["errors"].values())
        background.run(client.aclose())
        background.stop()
    print("ok")


class ChildDone(Exception):
    """Ends the forked child's coroutine (see `fork_inside_the_running_loop_scenario`)."""


def fork_inside_the_running_loop_scenario() -> None:
    """Run in a fresh interpreter: the loop running on the engine forks (requests in flight), and
    the child's coroutine ends with an exception, so `asyncio.run` winds down and closes the loop
    it inherited. The child shares the loop's epoll with the parent: it must not unregister the
    engine's descriptor there (that would unregister it in the parent too) nor read the
    engine's poll. The parent's requests then finish, and new ones work."""
    os.environ[SWITCH] = "1"
    with HttpTestServer() as server:
        held = [server.hold(f"forked-{index}") for index in range(5)]

        async def main() -> List[int]:
            client = http.AsyncClient(server.url)
            assert (await client.get("/echo")).status_code == 200
            in_flight = [asyncio.ensure_future(client.get(path)) for path in held]
            upload = asyncio.ensure_future(client.post("/echo", content=b"x" * (4 << 20)))
            # Polled on the loop, not waited for in an executor thread: a thread pool the
            # child inherits without its threads would hold up its `asyncio.run` at the end.
            while not all(server.arrived(f"forked-{index}") for index in range(5)):
                await asyncio.sleep(0.005)
            pid = os.fork()
            if pid == 0:
                raise ChildDone
            while os.waitpid(pid, os.WNOHANG) == (0, 0):
                await asyncio.sleep(0.005)
            for index in range(5):
                server.release(f"forked-{index}")
            statuses = [(await asyncio.wait_for(r, 30)).status_code for r in in_flight]
            statuses.append((await asyncio.wait_for(upload, 30)).status_code)
            statuses.append((await asyncio.wait_for(client.get("/echo"), 30)).status_code)
            await client.aclose()
            return statuses

        try:
            statuses = asyncio.run(main())
        except ChildDone:
            # The child: asyncio.run has wound down and closed the loop. It leaves now, before
            # the parent's server (not running here) would be stopped.
            os._exit(0)
        assert statuses == [200] * 7
    print("ok")


def run_scenario(scenario: str) -> None:
    """Runs the scenario function of this module in a fresh interpreter."""
    run_in_fresh_interpreter(f"from tests.test_http_loop_engine import {scenario}; {scenario}()")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_fork_while_an_engine_is_busy_in_another_thread() -> None:
    run_scenario("fork_while_an_engine_is_busy_scenario")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_fork_inside_the_running_loop() -> None:
    run_scenario("fork_inside_the_running_loop_scenario")


@pytest.mark.usefixtures("native")
def test_connect_errors_read_the_same_on_both_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    from .redis_server import free_port

    url = f"http://127.0.0.1:{free_port()}/x"

    async def error_of(client: http.AsyncClient) -> str:
        with pytest.raises(ConnectError) as caught:
            await client.get(url)
        return str(caught.value)

    messages = []
    for switch in ("1", "0"):
        monkeypatch.setenv(SWITCH, switch)
        client = http.AsyncClient(retry=http.RetryConfig(max_retries=0))
        messages.append(asyncio.run(error_of(client)))
    assert messages[0] == messages[1] and "tcp connect error" in messages[0], messages
