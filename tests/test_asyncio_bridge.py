"""The bridge that hands native results to asyncio: every result reaches its loop, whatever the
number of loops, threads and runtime workers finishing at once, with cancellations and forks in
between, and loops leave nothing open behind them.

The natively counted ``acount_request_tokens`` is the awaitable used: it needs no server, and its
counts finish on several worker threads at once, which is what can race a loop's wake-up.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
from typing import Any, List

import pytest

import fast_litellm
from fast_litellm import _flags

from .conftest import LOOP_KINDS, new_loop, run_python

pytestmark = pytest.mark.skipif(
    _flags.native is None, reason=f"native module unavailable: {_flags.native_import_error}"
)

# A hang would be the failure here, never slowness: generous enough for a loaded CI machine.
HANG_GUARD = 120.0


def _body(i: int) -> bytes:
    words = " ".join(f"word{j}" for j in range(i % 37))
    messages = [{"role": "user", "content": f"{i}: {words}"}]
    return json.dumps({"model": "gpt-4o", "messages": messages}).encode()


BODIES = [_body(i) for i in range(97)]


@pytest.fixture
def native() -> Any:
    fast_litellm.configure(rust=True, rollout=100)
    fast_litellm.reset_errors()
    yield
    fast_litellm.configure(reload_environment=True)
    fast_litellm.reset_errors()


def _expected() -> List[int]:
    return [fast_litellm.count_request_tokens(b) for b in BODIES]


async def _rounds(rounds: int, width: int) -> List[int]:
    got: List[int] = []
    for r in range(rounds):
        batch = [BODIES[(r * width + i) % len(BODIES)] for i in range(width)]
        got.extend(await asyncio.gather(*(fast_litellm.acount_request_tokens(b) for b in batch)))
    return got


def _want(rounds: int, width: int, expected: List[int]) -> List[int]:
    return [expected[(r * width + i) % len(BODIES)] for r in range(rounds) for i in range(width)]


@pytest.mark.parametrize("loop_kind", LOOP_KINDS)
def test_every_result_reaches_loops_on_several_threads(native: Any, loop_kind: str) -> None:
    # Two loops on two threads, each with counts finishing on the runtime's worker threads at the
    # same moments: a lost wake-up would leave a gather waiting for ever. Many small batches make
    # many drains, each a chance for a result to land while the loop is taking the previous
    # batch (the moment a wrong order of the drain's steps loses a wake-up: caught within a few
    # hundred rounds when it was tried).
    expected = _expected()
    rounds, width = 1500, 8
    results: dict = {}

    def run(name: str) -> None:
        loop = new_loop(loop_kind)
        try:
            results[name] = loop.run_until_complete(
                asyncio.wait_for(_rounds(rounds, width), HANG_GUARD)
            )
        except BaseException as exc:  # reported by the assertion below
            results[name] = exc
        finally:
            loop.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    want = _want(rounds, width, expected)
    assert results["a"] == want
    assert results["b"] == want


def test_one_at_a_time_many_times(native: Any) -> None:
    # One result in flight at a time: each needs its own wake-up, none may be lost.
    expected = _expected()

    async def serial() -> List[int]:
        return [await fast_litellm.acount_request_tokens(b) for b in BODIES * 30]

    assert asyncio.run(asyncio.wait_for(serial(), HANG_GUARD)) == expected * 30


def test_cancelled_awaiters_do_not_stall_the_loop(native: Any) -> None:
    # Results that arrive for cancelled futures are dropped; the ones still awaited arrive, and
    # the loop keeps receiving results afterwards.
    expected = _expected()

    async def main() -> List[int]:
        tasks = [asyncio.ensure_future(fast_litellm.acount_request_tokens(b)) for b in BODIES * 10]
        for task in tasks[::2]:
            task.cancel()
        kept = await asyncio.gather(*tasks[1::2])
        after = await _rounds(5, 100)
        return list(kept) + after

    got = asyncio.run(asyncio.wait_for(main(), HANG_GUARD))
    kept = (expected * 10)[1::2]
    assert got == kept + _want(5, 100, expected)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_closed_loops_leave_no_descriptors_open(native: Any) -> None:
    # Each loop gets a wake-up socket pair; a closed and collected loop's pair is closed too.
    # (A loop is in reference cycles of its own: collected by gc, a few times, as the suite's
    # many objects make each collection slow.)
    def one_loop() -> None:
        loop = asyncio.new_event_loop()
        try:
            assert loop.run_until_complete(fast_litellm.acount_request_tokens(BODIES[5])) > 0
        finally:
            loop.close()

    one_loop()
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    for i in range(200):
        one_loop()
        if i % 50 == 49:
            gc.collect()
    one_loop()  # the loops made since the last collection are forgotten when a new one is made
    gc.collect()
    after = len(os.listdir("/proc/self/fd"))
    assert after - before <= 4, f"{after - before} descriptors left open by 200 loops"


_FORK_IN_A_RUNNING_LOOP = r"""
import asyncio, json, os, sys, threading
import fast_litellm

BODY = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hello there"}]})
WANT = fast_litellm.count_request_tokens(BODY)


def child() -> int:
    # The child counts on a loop of its own (the parent's loop is the parent's to run), on a
    # thread of its own since Pythons before 3.12 keep the parent's loop marked as running.
    out = {}

    def run():
        async def main():
            return await asyncio.gather(
                *(fast_litellm.acount_request_tokens(BODY) for _ in range(500))
            )
        out["got"] = asyncio.run(asyncio.wait_for(main(), 60))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return 0 if out.get("got") == [WANT] * 500 else 1


async def parent() -> None:
    assert await fast_litellm.acount_request_tokens(BODY) == WANT
    pids = []
    for _ in range(3):
        pending = [asyncio.ensure_future(fast_litellm.acount_request_tokens(BODY)) for _ in range(200)]
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = child()
            finally:
                os._exit(code)
        pids.append(pid)
        assert await asyncio.gather(*pending) == [WANT] * 200
    for _ in range(20):
        got = await asyncio.gather(*(fast_litellm.acount_request_tokens(BODY) for _ in range(100)))
        assert got == [WANT] * 100
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(parent(), 90))
    print("ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_fork_inside_a_running_loop(tmp_path: Any) -> None:
    # Forked while results are in flight to the parent's loop: the parent receives them all and
    # carries on; each child counts on a loop of its own.
    script = tmp_path / "fork_in_loop.py"
    script.write_text(_FORK_IN_A_RUNNING_LOOP)
    result = run_python(
        f"import runpy, sys; sys.argv = [{str(script)!r}]; "
        f"runpy.run_path({str(script)!r}, run_name='__main__')",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok"), (result.stdout, result.stderr[-3000:])
