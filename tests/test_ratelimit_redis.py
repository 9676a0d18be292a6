"""The Redis backend of the rate limiter, against real throwaway servers (tests/redis_server.py).

No assertion here is about speed. Redis's own clock (``TIME``) drives the refill, so the tests
use rates so low that refill during a test is negligible (one unit per hour or slower) and count
what one burst admits; nothing sleeps to let time pass.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fast_litellm
from fast_litellm import SimpleRateLimiter, _flags
from fast_litellm._fallback import ratelimit as fallback
from fast_litellm.errors import RateLimitBackendError
from fast_litellm.ratelimit import RateLimitResult
from fast_litellm.ratelimit import redis_backend as rb
from fast_litellm.ratelimit import redis_protocol as rp
from fast_litellm.ratelimit.limits import Limits

from . import redis_server as servers
from .redis_server import require_redis_py

# The server fixtures (tests/redis_server.py), made visible to this module's tests.
redis_server = servers.redis_server
own_redis_server = servers.own_redis_server
redis_cluster = servers.redis_cluster
unique_key = servers.unique_key

HOUR_NS = 3_600 * 10**9
PATHS = ["native", "python"]


def limits(burst=5, token_burst=None, interval_ns=HOUR_NS, token_interval_ns=HOUR_NS // 1000):
    """A spec whose refill is negligible during a test (one request per hour by default)."""
    return Limits(
        requests_per_minute=None,
        tokens_per_minute=None,
        burst=burst,
        token_burst=token_burst,
        period_seconds=60.0,
        requests_per_period=None,
        tokens_per_period=None,
        request_interval_ns=interval_ns if burst is not None else None,
        token_interval_ns=token_interval_ns if token_burst is not None else None,
    )


@pytest.fixture(params=PATHS)
def redis_path(request):
    """Runs a test on the native client and on redis-py."""
    if request.param == "native" and _flags.native is None:
        pytest.skip(f"native module unavailable: {_flags.native_import_error}")
    if request.param == "python":
        require_redis_py()
    return request.param


def backend(url, spec, path, **options):
    options.setdefault("timeout", 2.0)
    options.setdefault("key_prefix", "test")
    return rb.RedisBackend(url, spec, path=path, **options)


def fields(result):
    return (result.allowed, result.remaining, result.remaining_tokens)


# ---- configuration ------------------------------------------------------------------------------

BAD_URLS = [
    "http://127.0.0.1:6379",
    "127.0.0.1:6379",
    "redis://",
    "redis://127.0.0.1:notaport",
    "redis://127.0.0.1:6379/notadb",
    "redis+cluster://",
    "redis://0.0.0.0:6379",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_urls_raise_a_clear_value_error(url):
    with pytest.raises(ValueError, match="Redis"):
        rp.parse_backend(url)
    if _flags.native is not None:
        with pytest.raises(ValueError, match="Redis"):
            _flags.native.RedisRateLimiter(url, HOUR_NS, 5, None, None)
    with pytest.raises(ValueError):
        SimpleRateLimiter(60, backend=url)


@pytest.mark.parametrize(
    "nodes", [[], ["redis://127.0.0.1:7000/3"], ["unix:///tmp/redis.sock"], ["ftp://h:1"]]
)
def test_bad_cluster_node_lists(nodes):
    with pytest.raises(ValueError):
        rp.parse_backend(nodes)
    if _flags.native is not None:
        with pytest.raises(ValueError):
            _flags.native.RedisRateLimiter(nodes, HOUR_NS, 5, None, None)


def test_backend_types_and_passwords_in_messages():
    with pytest.raises(TypeError):
        rp.parse_backend(b"redis://127.0.0.1")
    with pytest.raises(TypeError):
        rp.parse_backend(6379)
    with pytest.raises(ValueError) as excinfo:
        rp.parse_backend("redis://user:hunter2@127.0.0.1:notaport")
    assert "hunter2" not in str(excinfo.value)
    if _flags.native is not None:
        with pytest.raises(ValueError) as excinfo:
            _flags.native.RedisRateLimiter("redis://u:hunter2@:1/x", HOUR_NS, 5, None, None)
        assert "hunter2" not in str(excinfo.value)


def test_urls_parse_alike_on_both_paths():
    assert rp.parse_backend("redis+cluster://u:p@h1:7000,h2:7001/0") == (
        "cluster",
        ["redis://u:p@h1:7000/0", "redis://u:p@h2:7001/0"],
    )
    assert rp.parse_backend("rediss+cluster://h1:7000") == ("cluster", ["rediss://h1:7000"])
    assert rp.parse_backend(["redis://h1:7000"]) == ("cluster", ["redis://h1:7000"])
    for url in ("redis://h:1/2", "rediss://h:6380", "unix:///tmp/r.sock"):
        assert rp.parse_backend(url) == ("single", [url])
        if _flags.native is not None:
            _flags.native.RedisRateLimiter(url, HOUR_NS, 5, None, None)


def test_options_are_validated():
    spec = limits()
    url = "redis://127.0.0.1:1"
    with pytest.raises(ValueError, match="on_backend_error"):
        rb.RedisBackend(url, spec, on_backend_error="retry")
    with pytest.raises(ValueError, match="local"):
        rb.RedisBackend(url, spec, on_backend_error="local")
    with pytest.raises(ValueError, match="hash tag"):
        rb.RedisBackend(url, spec, key_prefix="a{b}")
    with pytest.raises(ValueError, match="timeout"):
        rb.RedisBackend(url, spec, timeout=0)
    with pytest.raises(TypeError):
        rb.RedisBackend(url, spec, timeout="1")
    with pytest.raises(ValueError, match="too long for the Redis backend"):
        rb.RedisBackend(url, limits(burst=2, interval_ns=rp.MAX_WINDOW_NS))


def test_script_is_the_one_the_native_module_embeds():
    if _flags.native is None:
        pytest.skip("native module unavailable")
    assert _flags.native.REDIS_GCRA_SCRIPT == rp.script_text()


_KEY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@given(key=_KEY_TEXT, prefix=st.sampled_from(["", "p", "p:", "a:b"]))
def test_key_names_agree_between_paths(key, prefix):
    requests_key, tokens_key = rp.redis_keys(prefix, key)
    # One hash tag covering the whole (escaped) key, the same in both names.
    tag = requests_key[requests_key.index("{") + 1 : requests_key.index("}")]
    assert tag.replace("%7D", "}").replace("%25", "%") == key
    assert tokens_key == requests_key[: -len(":requests")] + ":tokens"
    if _flags.native is not None:
        native = _flags.native.RedisRateLimiter(
            "redis://127.0.0.1:1", HOUR_NS, 5, None, None, key_prefix=prefix
        )
        assert native.redis_keys(key) == (requests_key, tokens_key)


# ---- against one server -------------------------------------------------------------------------


def test_one_burst_then_denied(redis_server, redis_path, unique_key):
    limiter = backend(redis_server.url, limits(burst=5), redis_path)
    results = [limiter.check(unique_key) for _ in range(7)]
    assert [r.allowed for r in results] == [True] * 5 + [False] * 2
    assert [r.remaining for r in results] == [4, 3, 2, 1, 0, 0, 0]
    assert all(isinstance(r, RateLimitResult) for r in results)
    assert results[0].limit == 5 and results[0].retry_after == 0.0
    # The next unit comes an hour after the first (less the few ms the test took).
    assert 3_590 < results[-1].retry_after <= 3_600
    assert 5 * 3_590 < results[-1].reset_after <= 5 * 3_600
    stats = limiter.stats()
    assert (stats["allowed"], stats["denied"], stats["backend_errors"]) == (5, 2, 0)
    assert stats["path"] == redis_path and limiter.health()["state"] == "ok"


def test_request_and_token_limits_are_consumed_together(redis_server, redis_path, unique_key):
    limiter = backend(redis_server.url, limits(burst=3, token_burst=1000), redis_path)
    assert fields(limiter.check(unique_key, 1, 600)) == (True, 2, 400)
    # Tokens refuse: nothing is consumed, not even the request.
    refused = limiter.check(unique_key, 1, 500)
    assert fields(refused) == (False, 2, 400) and refused.retry_after > 0
    assert fields(limiter.check(unique_key, 1, 400)) == (True, 1, 0)
    assert fields(limiter.check(unique_key, 1, 0)) == (True, 0, 0)
    assert fields(limiter.check(unique_key, 1, 0)) == (False, 0, 0)


def test_amount_above_burst_is_never_allowed(redis_server, redis_path, unique_key):
    limiter = backend(redis_server.url, limits(burst=3, token_burst=100), redis_path)
    result = limiter.check(unique_key, 4, 0)
    assert not result and result.retry_after == float("inf")
    result = limiter.check(unique_key, 1, 101)
    assert not result and result.retry_after == float("inf")
    assert limiter.check(unique_key, 3, 100)


def test_token_only_limiter(redis_server, redis_path, unique_key):
    limiter = backend(redis_server.url, limits(burst=None, token_burst=100), redis_path)
    result = limiter.check(unique_key, 1, 60)
    assert (result.allowed, result.remaining, result.limit) == (True, 40, 100)
    assert (result.remaining_tokens, result.token_limit) == (40, 100)
    assert not limiter.check(unique_key, 1, 41)


def test_peek_does_not_consume_and_reset_forgets(redis_server, redis_path, unique_key):
    limiter = backend(redis_server.url, limits(burst=2), redis_path)
    assert limiter.peek(unique_key).remaining == 1
    assert limiter.peek(unique_key, 0).remaining == 2
    assert limiter.check(unique_key) and limiter.check(unique_key)
    assert not limiter.peek(unique_key)
    assert limiter.reset(unique_key) is True
    assert limiter.reset(unique_key) is False
    assert limiter.check(unique_key).remaining == 1


def test_bad_arguments(redis_server, redis_path):
    limiter = backend(redis_server.url, limits(), redis_path)
    with pytest.raises(ValueError, match="empty"):
        limiter.check("")
    with pytest.raises(TypeError):
        limiter.check(b"key")
    with pytest.raises(ValueError):
        limiter.check("k" * 4097)
    with pytest.raises(ValueError):
        limiter.check("k", -1)
    with pytest.raises(TypeError):
        limiter.check("k", True)
    # An amount beyond 64 bits exceeds every burst: refused, as in process.
    assert limiter.check("huge-amount", 1 << 70).retry_after == float("inf")


def test_key_layout_and_expiry(redis_server, redis_path, unique_key):
    limiter = backend(
        redis_server.url, limits(burst=2, token_burst=10), redis_path, key_prefix="layout"
    )
    key = f"{unique_key}-a}}b%c"
    limiter.check(key, 1, 5)
    requests_key, tokens_key = rp.redis_keys("layout", key)
    assert requests_key == "layout:{" + rp._key_tag(key) + "}:requests"
    import redis

    client = redis.Redis.from_url(redis_server.url)
    token_interval_ms = HOUR_NS // 1000 // 10**6
    for name in (requests_key, tokens_key):
        assert re.fullmatch(r"\d+:\d{1,9}", client.get(name).decode())
    # Each key expires when its bucket is full again: after one request (of 2 per hour), in one
    # hour; after 5 tokens (at 1000 per hour), in 5 token intervals (18 s).
    assert HOUR_NS // 10**6 - 10_000 < client.pttl(requests_key) <= HOUR_NS // 10**6
    # (a bound on the expiry set, with room for a slow machine between the check and the read)
    assert 5 * token_interval_ms - 10_000 < client.pttl(tokens_key) <= 5 * token_interval_ms
    client.close()


def test_native_and_python_instances_share_one_limit(redis_server, unique_key):
    if _flags.native is None:
        pytest.skip("native module unavailable")
    require_redis_py()
    spec = limits(burst=10, token_burst=1000)
    native = backend(redis_server.url, spec, "native")
    python = backend(redis_server.url, spec, "python")
    answers = []
    for i in range(14):
        answers.append(fields((native if i % 2 else python).check(unique_key, 1, 50)))
    # The same answers one in-process limiter gives, with its clock standing still.
    local = fallback.RateLimiter(HOUR_NS, 10, HOUR_NS // 1000, 1000, clock=fallback.ManualClock(1))
    assert answers == [fields(local.check("k", 1, 50)) for _ in range(14)]
    assert sum(a[0] for a in answers) == 10


@given(steps=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 300)), min_size=1, max_size=12))
def test_answers_match_the_in_process_rule(redis_server, steps):
    """The script is the in-process rule: same decisions and remaining counts for any sequence
    (the clock barely moves against one-hour intervals), through either client."""
    paths = ["python"] + ([] if _flags.native is None else ["native"])
    require_redis_py()
    for path in paths:
        key = f"rule-{path}-{time.monotonic_ns()}"
        remote = backend(redis_server.url, limits(burst=3, token_burst=500), path)
        local = fallback.RateLimiter(
            HOUR_NS, 3, HOUR_NS // 1000, 500, clock=fallback.ManualClock(1)
        )
        for cost, tokens in steps:
            expected = local.check(key, cost, tokens)
            got = remote.check(key, cost, tokens)
            assert fields(got) == fields(expected), path
            if expected.retry_after == float("inf"):
                assert got.retry_after == float("inf")
            else:
                assert abs(got.retry_after - expected.retry_after) < 5
            assert abs(got.reset_after - expected.reset_after) < 5
        remote.close()


def test_script_reloaded_after_script_flush(redis_server, redis_path, unique_key):
    limiter = backend(redis_server.url, limits(burst=3), redis_path)
    assert limiter.check(unique_key)
    redis_server.cli("SCRIPT", "FLUSH")
    assert limiter.check(unique_key).remaining == 1
    assert limiter.stats()["backend_errors"] == 0


def test_unix_socket(redis_server, redis_path, unique_key):
    limiter = backend(redis_server.unix_url, limits(burst=2), redis_path)
    assert [limiter.check(unique_key).allowed for _ in range(3)] == [True, True, False]


def test_through_simple_rate_limiter(redis_server, path, unique_key):
    """The public API: ``SimpleRateLimiter(..., backend=...)`` on either flag setting."""
    if path == "fallback":
        require_redis_py()
    limiter = SimpleRateLimiter(6, burst=3, backend=redis_server.url, backend_timeout=2.0)
    other = SimpleRateLimiter(6, burst=3, backend=redis_server.url, backend_timeout=2.0)
    assert limiter.implementation == "redis"
    assert limiter.check(unique_key) and other.check(unique_key) and limiter.allow(unique_key)
    assert not other.check(unique_key)
    assert limiter.peek(unique_key, cost=0).remaining == 0
    limiter.reset(unique_key)
    assert other.check(unique_key).remaining == 2
    stats = limiter.stats()
    assert stats["implementation"] == "redis" and stats["backend"] == "redis"
    assert stats["path"] == ("native" if path == "native" else "python")


def test_backend_options_reach_the_backend(redis_server):
    limiter = SimpleRateLimiter(
        6, backend=redis_server.url, backend_timeout=0.25, backend_retry_interval=7.5
    )
    assert (limiter._impl.timeout, limiter._impl.retry_interval) == (0.25, 7.5)
    default = SimpleRateLimiter(6, backend=redis_server.url)
    assert (default._impl.timeout, default._impl.retry_interval) == (
        rp.DEFAULT_TIMEOUT,
        rp.DEFAULT_RETRY_INTERVAL,
    )


# ---- asyncio ------------------------------------------------------------------------------------


def test_64_concurrent_async_checks_on_one_key(redis_server, redis_path, unique_key):
    limiter = backend(redis_server.url, limits(burst=50), redis_path)

    async def main():
        results = await asyncio.gather(*(limiter.acheck(unique_key) for _ in range(64)))
        await limiter.aclose()
        return results

    results = asyncio.run(main())
    assert sum(r.allowed for r in results) == 50
    assert sorted(r.remaining for r in results if r.allowed) == list(range(50))
    assert limiter.stats()["backend_errors"] == 0


def test_async_checks_over_many_keys_and_loops(redis_server, redis_path, unique_key):
    limiter = backend(redis_server.url, limits(burst=2), redis_path)

    async def main(round_):
        keys = [f"{unique_key}-{i}" for i in range(16)]
        results = await asyncio.gather(*(limiter.acheck(k) for k in keys for _ in range(4)))
        peeks = await asyncio.gather(*(limiter.apeek(k, 0) for k in keys))
        await limiter.aclose()
        return results, peeks

    # A fresh event loop each time: the clients of an ended loop must not be reused.
    for round_ in range(2):
        results, peeks = asyncio.run(main(round_))
        assert sum(r.allowed for r in results) == (32 if round_ == 0 else 0)
        assert all(p.remaining == 0 for p in peeks)


def test_acquire_with_timeout_through_redis(redis_server, unique_key):
    limiter = SimpleRateLimiter(1, burst=1, backend=redis_server.url, backend_timeout=2.0)

    async def main():
        first = await limiter.acquire(unique_key, timeout=0)
        with pytest.raises(fast_litellm.RateLimitTimeout):
            await limiter.acquire(unique_key, timeout=0.5)
        return first

    assert asyncio.run(main()).allowed


# ---- many processes -----------------------------------------------------------------------------

_HAMMER = textwrap.dedent(
    """
    import sys
    from fast_litellm.ratelimit import redis_backend as rb
    from fast_litellm.ratelimit.limits import Limits
    url, key, path, attempts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    spec = Limits.build(200, None, period_seconds=86_400, burst=200)
    limiter = rb.RedisBackend(url, spec, path=path, timeout=5.0, on_backend_error="deny")
    allowed = sum(limiter.check(key).allowed for _ in range(attempts))
    print(allowed, limiter.stats()["backend_errors"])
    """
)


@pytest.mark.parametrize("attempts", [30, 100])
def test_four_processes_hammering_one_key(redis_server, unique_key, attempts):
    """200 per day, burst 200: 4 x 30 attempts are all admitted; 4 x 100 admit exactly 200."""
    paths = ["native", "python", "native", "python"]
    if _flags.native is None:
        paths = ["python"] * 4
    require_redis_py()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _HAMMER, redis_server.url, unique_key, p, str(attempts)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in paths
    ]
    allowed = 0
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        count, errors = map(int, out.split())
        assert errors == 0
        allowed += count
    assert allowed == min(200, 4 * attempts)


# ---- Redis down, slow, back ---------------------------------------------------------------------

TIMEOUT = 0.05
BOUND = TIMEOUT + 1.0  # generous: this is about never hanging, not about speed


def timed(call, *args):
    started = time.monotonic()
    result = call(*args)
    elapsed = time.monotonic() - started
    assert elapsed < BOUND, f"a check took {elapsed:.3f} s with a {TIMEOUT} s timeout"
    return result


def failing_backend(url, path, policy, burst=3):
    spec = limits(burst=burst)
    local = None
    if policy == "local":
        local = fallback.RateLimiter(spec.request_interval_ns, spec.burst, None, None)
    return backend(
        url, spec, path, timeout=TIMEOUT, on_backend_error=policy, local=local, retry_interval=0.05
    )


def wait_until_answering(limiter, key, deadline_seconds=20.0):
    """Checks until Redis answers again (the circuit closes); returns the number of calls."""
    deadline = time.monotonic() + deadline_seconds
    calls = 0
    while limiter.state != "ok":
        assert time.monotonic() < deadline, f"no recovery: {limiter.health()}"
        timed(limiter.peek, key)
        calls += 1
        time.sleep(0.01)
    return calls


def _after_fork(limiter, url, key, answers):
    """Child process body: the inherited limiter must still reach Redis, sync and async."""
    sync = limiter.check(key)

    async def both():
        return await limiter.acheck(key), await SimpleRateLimiter(
            60, burst=1, backend=url, backend_timeout=2.0, on_backend_error="deny"
        ).acheck(key + ":new")

    inherited, fresh = asyncio.run(both())
    stats = limiter.stats()
    answers.put([sync.allowed, inherited.allowed, fresh.allowed, stats["backend_errors"]])


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork()")
def test_a_forked_worker_keeps_using_an_inherited_limiter(redis_server, path, unique_key):
    """Servers fork their workers after the app is loaded (gunicorn --preload, uvicorn
    --workers): a limiter that already talked to Redis in the parent, sync and async, must keep
    working in the child, answered by Redis (not by the failure policy), and in the parent."""
    import multiprocessing

    if path == "fallback":
        require_redis_py()
    limiter = SimpleRateLimiter(
        60, burst=10, backend=redis_server.url, backend_timeout=2.0, on_backend_error="deny"
    )
    assert limiter.check(unique_key)
    assert asyncio.run(limiter.acheck(unique_key))
    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    child = context.Process(
        target=_after_fork, args=(limiter, redis_server.url, unique_key, answers)
    )
    child.start()
    try:
        # A bound, not a wait for time to pass: before the fix the child hung here forever.
        result = answers.get(timeout=60)
    finally:
        child.join(timeout=60)
        if child.is_alive():
            child.kill()
    assert result == [True, True, True, 0]
    assert child.exitcode == 0
    assert limiter.check(unique_key).remaining == 10 - 5
    assert limiter.stats()["backend_errors"] == 0


@pytest.mark.parametrize("policy", rp.POLICIES)
def test_redis_down_each_policy_is_honoured(own_redis_server, redis_path, policy, unique_key):
    limiter = failing_backend(own_redis_server.url, redis_path, policy)
    assert timed(limiter.check, unique_key)  # Redis answers: 2 left of 3
    own_redis_server.stop()
    results = [timed(limiter.check, unique_key) for _ in range(6)]
    allowed = [r.allowed for r in results]
    if policy == "allow":
        assert allowed == [True] * 6
    elif policy == "deny":
        assert allowed == [False] * 6
        assert all(0 <= r.retry_after <= 0.05 + 1e-6 for r in results)
    else:  # the in-process limiter takes over with its own full bucket
        assert allowed == [True, True, True, False, False, False]
    stats = limiter.stats()
    assert stats["backend_errors"] >= 1
    assert stats["fail_open"] + stats["fail_closed"] + stats["local_checks"] == 6
    health = limiter.health()
    assert health["state"] == "down" and health["status"] == "degraded"
    report = fast_litellm.health_check()
    assert report["status"] == "degraded"
    assert any(b["url"] == limiter.description for b in report["rate_limit_backends"])

    # Back up (empty: nothing was persisted): the limiter recovers by itself.
    own_redis_server.start()
    wait_until_answering(limiter, unique_key)
    assert [timed(limiter.check, unique_key).allowed for _ in range(4)] == [True] * 3 + [False]
    assert limiter.health()["state"] == "ok" and limiter.health()["last_latency_ms"] >= 0
    limiter.close()
    assert all(b["url"] != limiter.description for b in rb.backends_health())


@pytest.mark.parametrize("policy", ["allow", "deny"])
def test_redis_frozen_calls_still_return_within_the_timeout(
    own_redis_server, redis_path, policy, unique_key
):
    limiter = failing_backend(own_redis_server.url, redis_path, policy)
    assert timed(limiter.check, unique_key)
    own_redis_server.pause()  # connections stay open, nothing answers
    try:
        results = [timed(limiter.check, unique_key) for _ in range(5)]

        async def concurrent():
            return await asyncio.gather(*(limiter.acheck(unique_key) for _ in range(16)))

        started = time.monotonic()
        results += asyncio.run(concurrent())
        assert time.monotonic() - started < BOUND
    finally:
        own_redis_server.resume()
    assert all(r.allowed == (policy == "allow") for r in results)
    assert limiter.stats()["backend_errors"] >= 1
    wait_until_answering(limiter, unique_key)
    # Checks that timed out were still in the socket and ran when Redis woke up: a timed-out
    # check may have consumed. What matters is that the limiter answers from Redis again.
    limiter.check(unique_key)
    assert limiter.state == "ok"


def test_redis_down_from_the_start_and_async(own_redis_server, redis_path, unique_key):
    url = own_redis_server.url
    own_redis_server.stop()
    limiter = failing_backend(url, redis_path, "deny")

    async def main():
        return await asyncio.gather(*(limiter.acheck(unique_key) for _ in range(8)))

    started = time.monotonic()
    assert not any(r.allowed for r in asyncio.run(main()))
    assert time.monotonic() - started < BOUND
    own_redis_server.start()
    wait_until_answering(limiter, unique_key)
    assert limiter.check(unique_key)


def test_tls_url_against_a_plain_server_fails_by_policy(redis_server, redis_path, unique_key):
    url = f"rediss://127.0.0.1:{redis_server.port}/0"
    limiter = failing_backend(url, redis_path, "deny")
    assert not timed(limiter.check, unique_key)
    assert limiter.stats()["backend_errors"] == 1


def test_native_errors_on_the_backend_object_itself(own_redis_server):
    if _flags.native is None:
        pytest.skip("native module unavailable")
    native = _flags.native.RedisRateLimiter(
        own_redis_server.url, HOUR_NS, 3, None, None, timeout=TIMEOUT
    )
    native.ping()
    own_redis_server.stop()
    with pytest.raises(RateLimitBackendError):
        native.check("k")

    async def acheck():
        return await native.acheck("k")

    with pytest.raises(RateLimitBackendError):
        asyncio.run(acheck())


# ---- Redis Cluster ------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["url", "list"])
def test_cluster_limits_hold_across_all_slots(redis_cluster, redis_path, form):
    url = redis_cluster.url if form == "url" else redis_cluster.urls
    prefix = f"cluster-{redis_path}-{form}-{time.monotonic_ns()}"
    # "deny": a check the cluster did not answer (under load, a timeout) is refused, so an exact
    # count proves every admission came from Redis; the backend's errors explain a failure.
    limiter = backend(
        url,
        limits(burst=2, token_burst=100),
        redis_path,
        key_prefix=prefix,
        on_backend_error="deny",
        timeout=5.0,
    )
    keys = [f"key-{i}" for i in range(150)]
    allowed = {k: sum(limiter.check(k, 1, 10).allowed for _ in range(3)) for k in keys}
    assert set(allowed.values()) == {2}, limiter.stats()
    assert limiter.stats()["backend_errors"] == 0, limiter.stats()

    async def main():
        results = await asyncio.gather(*(limiter.acheck(k, 1, 10) for k in keys[:64]))
        await limiter.aclose()
        return results

    assert not any(r.allowed for r in asyncio.run(main())), limiter.stats()
    assert limiter.stats()["backend_errors"] == 0, limiter.stats()
    # The keys really are spread over every master.
    counts = [
        len(node.cli("--scan", "--pattern", f"{prefix}:*").split()) for node in redis_cluster.nodes
    ]
    assert all(count > 0 for count in counts) and sum(counts) == 2 * len(keys)
    assert limiter.reset(keys[0]) is True
    assert limiter.check(keys[0], 1, 10)
