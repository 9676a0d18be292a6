"""Chaos: sync checks from threads and async checks from tasks (some cancelled at random) while
Redis is stopped, killed (SIGKILL), frozen (SIGSTOP) and restarted at random, on both clients.

Asserts what production needs, none of it a speed: no call hangs (every one returns within a
bound), nothing is over-admitted (under "deny" every admission comes from Redis, at most one
burst per server lifetime, since a restarted server starts empty), the backend recovers within
two retry intervals once Redis is back, and no threads or file descriptors are left behind.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import threading
import time

import pytest

from . import redis_server as servers
from .test_ratelimit_redis import backend, limits, redis_path

own_redis_server = servers.own_redis_server
redis_path = redis_path  # the fixture, re-exported for this module's tests

TIMEOUT = 0.05
RETRY_INTERVAL = 0.1
BURST = 20
CALL_BOUND = 5.0  # seconds: "never hangs", not a speed
ROUNDS = 12


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class _Load:
    """Threads checking synchronously and one event loop running async checks, until stopped."""

    def __init__(self, limiter, key: str, seed: int) -> None:
        self.limiter = limiter
        self.key = key
        self.random = random.Random(seed)
        self.stop = threading.Event()
        self.slowest = 0.0
        self.errors: list = []
        self.threads = [threading.Thread(target=self._sync_worker) for _ in range(3)]
        self.threads.append(threading.Thread(target=self._async_worker))

    def _timed(self, started: float) -> None:
        self.slowest = max(self.slowest, time.monotonic() - started)

    def _sync_worker(self) -> None:
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                self.limiter.check(self.key)
                self._timed(started)
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.errors.append(exc)

    def _async_worker(self) -> None:
        async def one(cancel_after):
            started = time.monotonic()
            task = asyncio.ensure_future(self.limiter.acheck(self.key))
            if cancel_after is not None:
                for _ in range(cancel_after):
                    await asyncio.sleep(0)
                task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            self._timed(started)

        async def main():
            while not self.stop.is_set():
                cancels = [
                    self.random.choice([None, None, 0, 1, 3]) for _ in range(8)
                ]  # some tasks are cancelled, at different awaits
                await asyncio.gather(*(one(c) for c in cancels))
            await self.limiter.aclose()

        try:
            asyncio.run(main())
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self) -> "_Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in self.threads), "a worker hung"


@pytest.mark.parametrize("seed", [1, 2])
def test_chaos(own_redis_server, redis_path, seed):
    server = own_redis_server
    rng = random.Random(seed)

    def make():
        return backend(
            server.url,
            limits(burst=BURST),
            redis_path,
            timeout=TIMEOUT,
            retry_interval=RETRY_INTERVAL,
            on_backend_error="deny",
            key_prefix=f"chaos-{redis_path}-{seed}",
        )

    # Warm-up: the process-wide I/O runtime and first connections exist before the baseline.
    warm = make()
    warm.check("warm-up")
    warm.close()
    gc.collect()
    threads_before, fds_before = threading.active_count(), _open_fds()

    limiter = make()
    lifetimes = 1
    with _Load(limiter, "hot-key", seed) as load:
        for _ in range(ROUNDS):
            action = rng.choice(["stop", "kill", "pause", "nothing"])
            if action in ("stop", "kill"):
                server.stop(kill=action == "kill")
            elif action == "pause":
                server.pause()
            time.sleep(rng.uniform(0.02, 0.15))  # let the load meet this state
            if action in ("stop", "kill"):
                server.start()
                lifetimes += 1
            elif action == "pause":
                server.resume()
            time.sleep(rng.uniform(0.02, 0.1))
    assert not load.errors, load.errors
    assert load.slowest < CALL_BOUND, f"a call took {load.slowest:.2f} s"

    stats = limiter.stats()
    # Under "deny" only Redis admits; each server lifetime starts with a full bucket.
    assert stats["allowed"] == stats["redis_allowed"] <= BURST * lifetimes, stats
    assert stats["fail_open"] == 0

    # Redis is back and nothing else is running: within two retry intervals the backend answers
    # from Redis again (the first attempt may meet a connection the restart broke).
    recovered = False
    for _ in range(3):
        time.sleep(RETRY_INTERVAL + TIMEOUT)
        limiter.peek("hot-key")
        if limiter.state == "ok":
            recovered = True
            break
    assert recovered, limiter.health()

    # Exact admission once Redis answers: a fresh key admits one burst, no more.
    answers = [limiter.check("fresh-key").allowed for _ in range(BURST + 5)]
    assert answers == [True] * BURST + [False] * 5, limiter.stats()

    limiter.close()
    del limiter, load
    gc.collect()
    assert threading.active_count() <= threads_before
    assert _open_fds() <= fds_before + 4, (fds_before, _open_fds())
