"""The interpreter exits silently and cleanly, whatever native work is still in flight, and a
native panic that reaches the caller as ``NativeError`` writes nothing to stderr."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fast_litellm import _flags, _models

from . import http_server as http_servers
from . import redis_server as servers

# The server fixtures (tests/redis_server.py, tests/http_server.py), made visible to this module's
# tests.
redis_server = servers.redis_server
http_server = http_servers.http_server

pytestmark = pytest.mark.skipif(_flags.native is None, reason="native module unavailable")

RUNS = 24

# Starts many async checks, lets them reach Redis, and ends the program without awaiting them:
# their answers arrive while the interpreter shuts down.
_EXIT_WITH_CHECKS_IN_FLIGHT = """
import asyncio, sys
import fast_litellm

async def main():
    limiter = fast_litellm.SimpleRateLimiter(
        requests_per_minute=1_000_000, backend=sys.argv[1], on_backend_error="deny"
    )
    tasks = [asyncio.ensure_future(limiter.acheck(f"user-{i}")) for i in range(300)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return len(tasks)

if __name__ == "__main__":
    asyncio.run(main())
"""

# Ends the program with HTTP work of every kind in flight on the native client: async requests
# (asyncio.run cancels them), an open event stream, and a blocking request in a daemon thread that
# waits with the GIL released while the interpreter finalizes. The server answers some of them
# around the moment of exit (argv[2] seconds late), so answers land before, during and after it.
_EXIT_WITH_HTTP_IN_FLIGHT = """
import asyncio, sys, threading
import fast_litellm

url, delay = sys.argv[1], sys.argv[2]

def blocking():
    try:
        fast_litellm.Client(url).get(f"/slow?seconds={delay}")
    except Exception as exc:
        print("blocking request failed:", exc, file=sys.stderr)

async def main():
    client = fast_litellm.AsyncClient(url)
    tasks = [asyncio.ensure_future(client.post("/echo", json={"i": i})) for i in range(100)]
    tasks += [asyncio.ensure_future(client.get(f"/slow?seconds={delay}")) for _ in range(8)]
    stream = await client.stream("GET", "/sse/ticks").__aenter__()
    threading.Thread(target=blocking, daemon=True).start()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return len(tasks), stream

if __name__ == "__main__":
    assert fast_litellm.get_feature_status()["features"]["connection_pool"]["active_path"] == "native"
    asyncio.run(main())
"""

# Ends the program with token counting of every kind in flight: batches and a long text counted
# on the pool by daemon threads (the GIL released), and awaitable request counts (on the runtime,
# large enough to be split over the pool) that asyncio.run cancels. Claude's tokenizer too.
_EXIT_WITH_COUNTS_IN_FLIGHT = """
import asyncio, json, sys, threading
import fast_litellm
text = "The quick brown fox jumps over the lazy dog. " * 20_000
body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
counting = threading.Barrier(len(sys.argv))
def count(model):
    fast_litellm.count_tokens(text[:100], model=model)
    counting.wait()
    while True:
        fast_litellm.count_tokens_batch([text[: 5000 + i] for i in range(64)], model=model)
        fast_litellm.count_tokens(text, model=model)
for model in sys.argv[1:]:
    threading.Thread(target=count, args=(model,), daemon=True).start()
async def main():
    # Every thread is past its first count (its tokenizer loaded) and into the long ones.
    await asyncio.get_running_loop().run_in_executor(None, counting.wait)
    tasks = [asyncio.ensure_future(fast_litellm.acount_request_tokens(body)) for _ in range(8)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return len(tasks)
if __name__ == "__main__":
    asyncio.run(main())
"""

_CAUGHT_PANIC = """
import logging
from fast_litellm import _flags, _models
from fast_litellm.errors import NativeError

records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
logger = logging.getLogger("fast_litellm")
logger.addHandler(Keep())
logger.setLevel(logging.DEBUG)
logger.propagate = False

for _ in range(3):
    try:
        _flags.native._testing_panic("boom")
    except NativeError as exc:
        assert "boom" in str(exc), exc
    else:
        raise AssertionError("no NativeError")
assert len(records) == 3 and "panicked at" in records[0], records
print("ok")
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAST_LITELLM_")}
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_exit_with_async_redis_checks_in_flight_is_silent(redis_server):
    for run in range(RUNS):
        done = _run(_EXIT_WITH_CHECKS_IN_FLIGHT, redis_server.url)
        assert (done.returncode, done.stderr) == (0, ""), f"run {run}: {done.stderr}"


def test_exit_with_http_requests_in_flight_is_silent(http_server):
    http_server.sse("ticks", [b"data: %d\n\n" % i for i in range(1000)])
    for run in range(RUNS):
        delay = ("0", "0.001", "0.01", "30")[run % 4]
        done = _run(_EXIT_WITH_HTTP_IN_FLIGHT, http_server.url, delay)
        assert (done.returncode, done.stderr) == (0, ""), f"run {run} ({delay} s): {done.stderr}"


def test_exit_with_token_counts_in_flight_is_silent():
    models = ["gpt-4o", "gpt-3.5-turbo"]
    if _models.huggingface_tokenizer_file("anthropic") is not None:
        models.append("claude-opus-4-5")
    for run in range(RUNS // 2):
        done = _run(_EXIT_WITH_COUNTS_IN_FLIGHT, *models)
        assert (done.returncode, done.stderr) == (0, ""), f"run {run}: {done.stderr}"


def test_a_caught_native_panic_writes_nothing_to_stderr():
    done = _run(_CAUGHT_PANIC)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "ok", "")
