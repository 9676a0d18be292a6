"""The interpreter exits silently and cleanly, whatever native work is still in flight, and a
native panic that reaches the caller as ``NativeError`` writes nothing to stderr."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fast_litellm import _flags

from . import redis_server as servers

# The server fixture (tests/redis_server.py), made visible to this module's tests.
redis_server = servers.redis_server

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

_CAUGHT_PANIC = """
import logging
from fast_litellm import _flags
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


def test_a_caught_native_panic_writes_nothing_to_stderr():
    done = _run(_CAUGHT_PANIC)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "ok", "")
