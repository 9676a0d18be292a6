"""The Redis backend under the faults of production: a cancelled or broken recovery probe, a
full connection pool, an unreachable cluster, a key of the wrong type, amounts that can never be
admitted. Every test runs on both clients against real throwaway servers (tests/redis_server.py).

Nothing here asserts a speed; waits are bounded so that a hang fails instead of stalling.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import sys
import threading

import pytest

from fast_litellm import SimpleRateLimiter, _flags
from fast_litellm._fallback import ratelimit as fallback
from fast_litellm.errors import NativeError
from fast_litellm.ratelimit import redis_protocol as rp

from . import redis_server as servers
from .test_ratelimit_redis import (
    HOUR_NS,
    backend,
    failing_backend,
    limits,
    redis_path,
    timed,
    wait_until_answering,
)

redis_server = servers.redis_server
own_redis_server = servers.own_redis_server
unique_key = servers.unique_key
redis_path = redis_path  # the fixture, re-exported for this module's tests


def _make_probe_due(limiter):
    # The circuit's pause runs on the real clock; rather than sleep through it, mark the next
    # probe as due now. Everything after this point is the code under test.
    limiter._retry_at = 0.0


def _down(limiter, server, key):
    """Takes Redis away and lets one check fail, so the circuit is open."""
    server.pause()  # connections stay open, nothing answers: a probe hangs until its timeout
    timed(limiter.check, key)
    assert limiter.state == "down"


# ---- the recovery probe -------------------------------------------------------------------------


def test_a_cancelled_probe_frees_the_next_one(own_redis_server, redis_path, unique_key):
    limiter = failing_backend(own_redis_server.url, redis_path, "deny")
    assert timed(limiter.check, unique_key)
    _down(limiter, own_redis_server, unique_key)
    _make_probe_due(limiter)

    async def cancel_the_probe():
        probe = asyncio.ensure_future(limiter.acheck(unique_key))
        for _ in range(1000):  # until the probe is in flight
            await asyncio.sleep(0)
            if limiter._probing:
                break
        assert limiter._probing
        probe.cancel()
        try:
            await probe
        except asyncio.CancelledError:
            pass
        if sys.version_info >= (3, 11):  # where a task can tell that it is being cancelled
            assert probe.cancelled()

    try:
        asyncio.run(cancel_the_probe())
        assert not limiter._probing
    finally:
        own_redis_server.resume()
    wait_until_answering(limiter, unique_key)
    assert fast_health_ok(limiter)


def test_a_connection_the_server_closed_is_replaced_without_an_outage(
    own_redis_server, redis_path, unique_key
):
    # Redis closes idle connections (its `timeout`, a proxy's idle limit, a restart): the next
    # check reconnects and gets Redis's answer; the policy never answers for a healthy server.
    limiter = failing_backend(own_redis_server.url, redis_path, "deny")
    assert timed(limiter.check, unique_key)
    for round_ in range(3):
        own_redis_server.cli("CLIENT", "KILL", "TYPE", "normal")
        assert timed(limiter.check, f"{unique_key}-{round_}")
        assert limiter.state == "ok"
    stats = limiter.stats()
    assert stats["fail_closed"] == 0 and stats["backend_errors"] == 0, stats
    assert stats["redis_allowed"] == 4


def test_the_first_probe_after_an_outage_reaches_the_server(
    own_redis_server, redis_path, unique_key
):
    # The reconnection that failed during the outage must not answer the probe made after it.
    limiter = failing_backend(own_redis_server.url, redis_path, "deny")
    assert timed(limiter.check, unique_key)
    own_redis_server.stop()
    assert not timed(limiter.check, unique_key)  # the policy: Redis is down
    assert limiter.state == "down"
    own_redis_server.start()
    _make_probe_due(limiter)
    assert timed(limiter.check, f"{unique_key}-after")
    assert limiter.state == "ok"


@pytest.mark.skipif(
    sys.version_info < (3, 11), reason="3.10 tasks do not say they are being cancelled"
)
def test_a_check_cancelled_while_pending_ends_cancelled(redis_server, redis_path, unique_key):
    # Cancelled at every step of a check in turn, a task must end cancelled: returning the
    # answer instead would ignore the caller's timeout or shutdown.
    limiter = failing_backend(redis_server.url, redis_path, "deny", burst=1000)

    async def run() -> int:
        await limiter.acheck(unique_key)
        swallowed = 0
        for index in range(240):
            task = asyncio.ensure_future(limiter.acheck(f"{unique_key}-{index}"))
            for _ in range(index % 12):
                await asyncio.sleep(0)
            if task.done():
                continue
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                continue
            swallowed += 1
        return swallowed

    assert asyncio.run(run()) == 0
    assert timed(limiter.check, unique_key)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_one_event_loop_per_call_keeps_no_connection_per_loop(redis_server, redis_path, unique_key):
    # A blocking program that calls async code with asyncio.run() each time: the client of a
    # finished loop must go with it, or each call keeps a connection and a file descriptor.
    limiter = failing_backend(redis_server.url, redis_path, "deny", burst=1000)

    def descriptors() -> int:
        gc.collect()
        return len(os.listdir("/proc/self/fd"))

    assert asyncio.run(limiter.acheck(unique_key))
    before = descriptors()
    for index in range(60):
        assert asyncio.run(limiter.acheck(f"{unique_key}-{index}"))
    assert descriptors() - before <= 4


def test_native_limiters_of_one_backend_share_one_connection(own_redis_server, unique_key):
    # The proxy hook builds a limiter per distinct (rpm, tpm): each one used to open its own
    # connection (500 keys with different limits held 500 connections to one Redis).
    if _flags.native is None:
        pytest.skip("native module unavailable")
    limiters = [
        backend(own_redis_server.url, limits(burst=10 + index), "native") for index in range(40)
    ]
    for index, limiter in enumerate(limiters):
        assert timed(limiter.check, f"{unique_key}-{index}")
    clients = own_redis_server.cli("CLIENT", "LIST").strip().splitlines()
    # Ours, and redis-cli's own.
    assert len(clients) <= 2, clients


def test_an_outage_is_logged_once_and_its_end_once(
    own_redis_server, redis_path, unique_key, caplog
):
    limiter = failing_backend(own_redis_server.url, redis_path, "allow")
    assert timed(limiter.check, unique_key)
    with caplog.at_level("WARNING", logger="fast_litellm"):
        try:
            _down(limiter, own_redis_server, unique_key)
            for _ in range(3):  # more failed probes of the same outage
                _make_probe_due(limiter)
                timed(limiter.check, unique_key)
        finally:
            own_redis_server.resume()
        wait_until_answering(limiter, unique_key)
    said = [r.getMessage() for r in caplog.records if r.name == "fast_litellm"]
    assert len(said) == 2, said
    assert limiter.description in said[0] and "'allow' policy answers" in said[0]
    assert said[1].startswith(f"Redis backend {limiter.description} answers again after")


def test_a_probe_that_raises_something_else_frees_the_next_one(
    own_redis_server, redis_path, unique_key, monkeypatch
):
    limiter = failing_backend(own_redis_server.url, redis_path, "deny")
    assert timed(limiter.check, unique_key)
    _down(limiter, own_redis_server, unique_key)
    own_redis_server.resume()
    _make_probe_due(limiter)

    def broken(*args, **kwargs):
        raise NativeError("injected fault")

    monkeypatch.setattr(limiter._client, "check", broken)
    with pytest.raises(NativeError):
        limiter.check(unique_key)
    assert not limiter._probing
    monkeypatch.undo()
    wait_until_answering(limiter, unique_key)
    assert fast_health_ok(limiter)


def fast_health_ok(limiter):
    health = limiter.health()
    return health["state"] == "ok" and health["status"] == "ok"


# ---- acquire never spins ------------------------------------------------------------------------


def test_acquire_waits_between_refusals_that_say_retry_now(redis_path):
    limiter = SimpleRateLimiter(60, backend="redis://127.0.0.1:1", on_backend_error="deny")
    calls = []
    refusal = fallback.RateLimitResult(
        allowed=False,
        remaining=0,
        retry_after=0.0,
        reset_after=0.0,
        limit=6,
        remaining_tokens=None,
        token_limit=None,
    )

    async def always_retry_now(key, *, cost=1, tokens=0):
        calls.append(key)
        return refusal

    limiter.acheck = always_retry_now  # type: ignore[method-assign]

    async def main():
        with pytest.raises(TimeoutError):
            await limiter.acquire("k", timeout=0.1)

    asyncio.run(main())
    # At least 5 ms between attempts: at most ~20 attempts in 0.1 s (a spin made 100,000).
    assert 1 <= len(calls) <= 25


# ---- a busy pool is back-pressure ---------------------------------------------------------------


def test_500_concurrent_async_checks_on_a_healthy_server(redis_server, redis_path, unique_key):
    limiter = backend(
        redis_server.url, limits(burst=300), redis_path, on_backend_error="deny", timeout=5.0
    )

    async def main():
        return await asyncio.gather(*(limiter.acheck(unique_key) for _ in range(500)))

    results = asyncio.run(main())
    stats = limiter.stats()
    assert stats["backend_errors"] == 0 and stats["fail_closed"] == 0, stats
    assert sum(r.allowed for r in results) == 300


def test_300_threads_on_a_healthy_server(redis_server, redis_path, unique_key):
    limiter = backend(
        redis_server.url,
        limits(burst=100_000, interval_ns=10**9),
        redis_path,
        on_backend_error="deny",
        timeout=5.0,
    )
    answers = []
    start = threading.Barrier(300)

    def worker():
        start.wait(timeout=60)
        answers.extend(limiter.check(unique_key).allowed for _ in range(5))

    threads = [threading.Thread(target=worker) for _ in range(300)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    stats = limiter.stats()
    assert stats["backend_errors"] == 0 and stats["fail_closed"] == 0, stats
    assert answers.count(True) == 1500


# ---- every client error goes through the policy -------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_unreachable_cluster_is_handled_by_the_policy(own_redis_server, redis_path, mode):
    url = f"redis+cluster://127.0.0.1:{own_redis_server.port}"
    own_redis_server.stop()
    limiter = backend(url, limits(burst=3), redis_path, on_backend_error="deny", timeout=0.5)
    if mode == "sync":
        result = timed(limiter.check, "k")
    else:
        result = asyncio.run(limiter.acheck("k"))
    assert not result.allowed
    assert limiter.stats()["backend_errors"] == 1
    assert limiter.health()["status"] == "degraded"


# ---- a poisoned key harms only itself -----------------------------------------------------------


def test_a_key_of_the_wrong_type_does_not_open_the_circuit(redis_server, redis_path, unique_key):
    prefix = f"poison-{redis_path}"
    limiter = backend(
        redis_server.url, limits(burst=2), redis_path, key_prefix=prefix, on_backend_error="deny"
    )
    requests_key, _ = rp.redis_keys(prefix, unique_key)
    redis_server.cli("RPUSH", requests_key, "not-a-bucket")
    # Read as a foreign value: a full bucket, and the key is ours again once consumed.
    assert [limiter.check(unique_key).allowed for _ in range(3)] == [True, True, False]
    assert redis_server.cli("TYPE", requests_key).strip() == "string"
    healthy = [limiter.check(f"{unique_key}-other-{i}").allowed for i in range(20)]
    assert all(healthy)
    stats = limiter.stats()
    assert stats["backend_errors"] == 0 and limiter.state == "ok", stats

    async def main():
        redis_server.cli("DEL", requests_key)
        redis_server.cli("HSET", requests_key, "f", "v")
        return await limiter.acheck(unique_key)

    assert asyncio.run(main()).allowed
    assert limiter.stats()["backend_errors"] == 0


# ---- a full server --------------------------------------------------------------------------


def test_a_full_server_is_answered_by_the_policy_and_recovers(
    own_redis_server, redis_path, unique_key
):
    server = own_redis_server
    limiter = failing_backend(server.url, redis_path, "deny")
    assert timed(limiter.check, unique_key)
    # Out of memory (maxmemory below what is used, no eviction): every write is refused, the
    # check script's included.
    server.cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
    server.cli("CONFIG", "SET", "maxmemory", "1")
    refused = timed(limiter.check, f"{unique_key}-new")
    assert not refused.allowed
    stats = limiter.stats()
    assert stats["backend_errors"] >= 1, stats
    assert "OOM" in stats["last_error"] or "OutOfMemory" in stats["last_error"], stats
    server.cli("CONFIG", "SET", "maxmemory", "0")
    wait_until_answering(limiter, unique_key)
    assert limiter.check(f"{unique_key}-after").allowed
    assert limiter.state == "ok"


# ---- amounts that can never be admitted ---------------------------------------------------------


@pytest.mark.parametrize("policy", ["allow", "deny", "local"])
def test_an_amount_above_the_burst_is_never_admitted_whoever_answers(
    own_redis_server, redis_path, policy, unique_key
):
    limiter = failing_backend(own_redis_server.url, redis_path, policy, burst=3)
    up = timed(limiter.check, unique_key, 4)
    assert not up.allowed and math.isinf(up.retry_after)
    own_redis_server.stop()
    down = timed(limiter.check, unique_key, 4)
    assert not down.allowed and math.isinf(down.retry_after)
    assert timed(limiter.check, unique_key, 1).allowed == (policy != "deny")


def test_the_native_client_refuses_what_the_python_one_refuses():
    if _flags.native is None:
        pytest.skip("native module unavailable")
    with pytest.raises(ValueError):
        backend("redis://127.0.0.1:1", limits(), "native", key_prefix="bad{prefix}")
    with pytest.raises(ValueError):
        backend("redis://127.0.0.1:1", limits(), "python", key_prefix="bad{prefix}")
    with pytest.raises(ValueError, match="surrogate"):
        backend("redis://127.0.0.1:1", limits(), "native", key_prefix="bad\ud800")
    assert HOUR_NS > 0


# ---- one behaviour on both paths ----------------------------------------------------------------


@pytest.mark.parametrize("userinfo", [":secret@", "default:secret@"])
def test_a_password_for_a_server_without_one_is_accepted_on_both_paths(
    redis_server, redis_path, userinfo, unique_key
):
    # redis-py logs in as the default user, which a server without a password lets in; the
    # native client does the same, so one URL works (or fails) alike on both paths.
    url = f"redis://{userinfo}127.0.0.1:{redis_server.port}/0"
    limiter = backend(url, limits(burst=1), redis_path, on_backend_error="deny")
    assert [limiter.check(unique_key).allowed for _ in range(2)] == [True, False]
    assert limiter.stats()["backend_errors"] == 0, limiter.stats()
    assert "secret" not in limiter.description
