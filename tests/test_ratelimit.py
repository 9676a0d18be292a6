"""The in-process rate limiter: exact answers, both paths, parity, threads, async, bad input."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fast_litellm
from fast_litellm import ManualClock, RateLimitResult, RateLimitTimeout, SimpleRateLimiter, _flags
from fast_litellm import ratelimit as rl
from fast_litellm._fallback import ratelimit as fallback
from fast_litellm.errors import NativeError
from fast_litellm.ratelimit.limits import Limits

from .conftest import run_python

needs_native = pytest.mark.skipif(_flags.native is None, reason="native module unavailable")


def make(path, *args, **kwargs):
    """A limiter built under the `path` fixture, asserting it took that path."""
    limiter = SimpleRateLimiter(*args, **kwargs)
    assert limiter.implementation == path
    return limiter


def clock_for(path):
    return _flags.native.ManualClock() if path == "native" else fallback.ManualClock()


# ---- exact answers ----------------------------------------------------------------------------


def test_sixty_per_minute_admits_six_of_a_hundred(path):
    limiter = make(path, 60)
    assert sum(limiter.allow("any key") for _ in range(100)) == 6
    assert limiter.stats()["allowed"] == 6
    assert limiter.stats()["denied"] == 94


def test_request_limit_exact(path):
    clock = clock_for(path)
    limiter = make(path, requests_per_minute=60, clock=clock)
    results = [limiter.check("k") for _ in range(7)]
    assert [r.allowed for r in results] == [True] * 6 + [False]
    assert [r.remaining for r in results] == [5, 4, 3, 2, 1, 0, 0]
    assert all(r.retry_after == 0.0 and r.limit == 6 for r in results[:6])
    assert [r.reset_after for r in results[:6]] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    refused = results[6]
    assert not refused and refused.retry_after == 1.0 and refused.reset_after == 6.0
    assert refused.remaining_tokens is None and refused.token_limit is None
    clock.advance(0.999999999)
    assert limiter.check("k").retry_after == pytest.approx(1e-9)
    clock.advance_ns(1)
    assert limiter.allow("k")
    assert not limiter.allow("k")
    clock.advance(2.5)  # 2.5 units back: 2 whole
    assert limiter.peek("k", cost=0).remaining == 2
    assert limiter.check("k", cost=2).allowed
    assert limiter.check("k").retry_after == 0.5


def test_sub_second_refill(path):
    clock = clock_for(path)
    limiter = make(path, 6000, burst=1, clock=clock)  # one every 10 ms
    assert limiter.allow("k")
    assert limiter.check("k").retry_after == 0.01
    clock.advance(0.004)
    assert limiter.check("k").retry_after == pytest.approx(0.006)
    clock.advance(0.006)
    assert limiter.allow("k")


def test_token_limit_exact(path):
    clock = clock_for(path)
    limiter = make(path, tokens_per_minute=60_000, token_burst=6000, clock=clock)  # 1000/s
    first = limiter.check("k", tokens=5000)
    assert first.allowed and first.remaining == 1000 and first.limit == 6000
    assert first.remaining_tokens == 1000 and first.token_limit == 6000
    refused = limiter.check("k", tokens=1500)
    assert not refused and refused.retry_after == 0.5 and refused.remaining == 1000
    clock.advance(0.5)
    assert limiter.check("k", tokens=1500).allowed


def test_a_tpm_limit_admits_a_minute_of_tokens_at_once(path):
    # "100,000 tokens a minute" must admit one 20,000-token request (a burst of a tenth of the
    # minute would refuse it for ever); requests keep a tenth of a minute as their burst.
    clock = clock_for(path)
    limiter = make(path, 600, tokens_per_minute=100_000, clock=clock)
    big = limiter.check("k", tokens=20_000)
    assert big.allowed and big.limit == 60 and big.token_limit == 100_000
    assert big.remaining_tokens == 80_000
    assert limiter.check("k", tokens=80_000).allowed
    refused = limiter.check("k", tokens=1000)
    assert not refused and refused.retry_after == 0.6
    assert not limiter.check("k", tokens=100_001) and math.isinf(
        limiter.check("k", tokens=100_001).retry_after
    )


def test_combined_limits_consume_both_or_neither(path):
    clock = clock_for(path)
    limiter = make(path, 60, tokens_per_minute=6000, token_burst=600, clock=clock)
    ok = limiter.check("k", tokens=500)
    assert ok.allowed and (ok.remaining, ok.limit) == (5, 6)
    assert (ok.remaining_tokens, ok.token_limit) == (100, 600)
    refused = limiter.check("k", tokens=200)  # tokens refuse: no request consumed either
    assert not refused
    assert refused.retry_after == 1.0 and refused.remaining == 5 and refused.remaining_tokens == 100
    assert limiter.peek("k", cost=0).remaining == 5
    for _ in range(5):
        assert limiter.allow("k", tokens=0)
    refused = limiter.check("k", tokens=0)  # requests refuse: no tokens consumed
    assert not refused and refused.retry_after == 1.0 and refused.remaining_tokens == 100
    both = limiter.check("k", tokens=300)  # both refuse: the longer wait
    assert both.retry_after == 2.0
    assert both.reset_after == 6.0


def test_cost_above_the_burst_is_never_allowed(path):
    limiter = make(path, 60, tokens_per_minute=600, token_burst=60, clock=clock_for(path))
    never = limiter.check("k", cost=7)
    assert not never and math.isinf(never.retry_after) and never.remaining == 6
    assert math.isinf(limiter.check("k", tokens=61).retry_after)
    assert math.isinf(limiter.check("k", cost=10**30).retry_after)
    assert limiter.stats()["keys"] == 0
    assert limiter.allow("k", cost=6, tokens=60)


def test_zero_cost_is_always_allowed_and_consumes_nothing(path):
    limiter = make(path, 60, burst=1, clock=clock_for(path))
    assert limiter.allow("k")
    assert limiter.allow("k", cost=0)
    assert not limiter.allow("k")


def test_explicit_burst_and_default_burst_rounding(path):
    assert make(path, 60, burst=1).limits.burst == 1
    assert make(path, 15).limits.burst == 1  # 1.5 rounded down
    assert make(path, 5).limits.burst == 1  # at least 1
    assert make(path, 2.5, burst=3).limits.burst == 3
    limiter = make(path, 1, burst=100, clock=clock_for(path))
    assert sum(limiter.allow("k") for _ in range(150)) == 100


def test_fractional_rate(path):
    clock = clock_for(path)
    limiter = make(path, 0.5, clock=clock)  # one every two minutes
    assert limiter.allow("k")
    assert limiter.check("k").retry_after == 120.0


def test_keys_and_limiters_are_independent(path):
    clock = clock_for(path)
    slow = make(path, 60, burst=1, clock=clock)
    fast = make(path, 6000, burst=100, clock=clock)
    assert slow.allow("k") and not slow.allow("k")
    assert slow.allow("other")
    assert sum(fast.allow("k") for _ in range(200)) == 100
    assert not slow.allow("k")
    assert slow.limits.burst == 1 and fast.limits.burst == 100


def test_peek_answers_like_check_without_consuming(path):
    clock = clock_for(path)
    limiter = make(path, 60, clock=clock)
    assert limiter.peek("k").to_dict() == limiter.peek("k").to_dict()
    predicted = limiter.peek("k", cost=2)
    assert predicted.to_dict() == limiter.check("k", cost=2).to_dict()
    assert limiter.peek("k", cost=0).remaining == 4
    assert limiter.stats()["keys"] == 1
    assert limiter.peek("absent").remaining == 5
    assert limiter.stats()["keys"] == 1  # peek remembers nothing


def test_reset(path):
    limiter = make(path, 60, burst=1, clock=clock_for(path))
    assert limiter.allow("k") and not limiter.allow("k")
    assert limiter.reset("k") is None
    assert limiter.allow("k")
    limiter.reset("never seen")


def test_result_type_and_truthiness(path):
    limiter = make(path, 60, burst=1)
    ok, refused = limiter.check("k"), limiter.check("k")
    assert isinstance(ok, RateLimitResult) and isinstance(refused, RateLimitResult)
    assert bool(ok) and not refused
    assert "allowed=True" in repr(ok) and "allowed=False" in repr(refused)
    assert set(ok.to_dict()) == {
        "allowed",
        "remaining",
        "retry_after",
        "reset_after",
        "limit",
        "remaining_tokens",
        "token_limit",
    }


def test_long_period_budget(path):
    clock = clock_for(path)
    day = 86_400
    budget = SimpleRateLimiter.per_period(day, tokens=1_000_000, clock=clock)
    assert budget.implementation == path
    assert budget.limits.token_burst == 1_000_000
    assert budget.allow("team", tokens=999_000)
    refused = budget.check("team", tokens=2_000)
    assert not refused and refused.retry_after == pytest.approx(day * 1_000 / 1_000_000)
    clock.advance(86.4)
    assert budget.allow("team", tokens=2_000)
    capped = SimpleRateLimiter.per_period(day, requests=100, burst=50, clock=clock)
    assert sum(capped.allow("k") for _ in range(100)) == 50
    assert "period_seconds=86400.0" in repr(capped)


def test_callable_clock(path):
    now = [10.0]
    limiter = make(path, 60, burst=1, clock=lambda: now[0])
    assert limiter.allow("k") and not limiter.allow("k")
    now[0] += 1.0
    assert limiter.allow("k")


def test_either_manual_clock_drives_either_path(path):
    for clock in (fallback.ManualClock(), *([] if _flags.native is None else [ManualClock()])):
        limiter = make(path, 60, burst=1, clock=clock)
        assert limiter.allow("k") and not limiter.allow("k")
        clock.advance(1)
        assert limiter.allow("k")


# ---- ManualClock -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["native", "fallback"])
def test_manual_clock_api(kind):
    if kind == "native" and _flags.native is None:
        pytest.skip("native module unavailable")
    cls = _flags.native.ManualClock if kind == "native" else fallback.ManualClock
    clock = cls()
    assert clock.now() == 0.0 and clock.now_ns() == 0
    clock.advance(1.5)
    assert clock.now_ns() == 1_500_000_000 and clock.now() == 1.5
    clock.advance_ns(7)
    assert clock.now_ns() == 1_500_000_007
    clock.set(0.25)
    assert clock.now_ns() == 250_000_000
    clock.set_ns(3)
    assert clock.now_ns() == 3
    clock.advance(2.5e-9)  # half to even: 2
    assert clock.now_ns() == 5
    assert cls(2).now() == 2.0
    for bad, error in ((-1, ValueError), (math.nan, ValueError), (math.inf, ValueError)):
        with pytest.raises(error):
            clock.advance(bad)
        with pytest.raises(error):
            clock.set(bad)
    for bad in ("1", None, True):
        with pytest.raises(TypeError):
            clock.advance(bad)
    with pytest.raises(TypeError):
        clock.advance_ns(1.0)
    with pytest.raises(ValueError):
        clock.advance_ns(-1)
    with pytest.raises(ValueError):
        clock.advance_ns(1 << 62)
    assert clock.now_ns() == 5  # a refused step changes nothing
    assert "ManualClock" in repr(clock)


# ---- threads ----------------------------------------------------------------------------------


def test_threads_never_over_admit(path):
    budget = 5_000
    limiter = make(path, 1, burst=budget, clock=clock_for(path))  # frozen clock
    counts = []
    start = threading.Barrier(8)

    def worker():
        start.wait()
        counts.append(sum(limiter.allow("hot") for _ in range(10_000)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == budget
    assert limiter.stats()["allowed"] == budget
    assert limiter.stats()["denied"] == 80_000 - budget


# ---- async ------------------------------------------------------------------------------------


def test_acheck(path):
    limiter = make(path, 60, burst=1, clock=clock_for(path))

    async def main():
        first = await limiter.acheck("k")
        second = await limiter.acheck("k")
        return first, second, await limiter.aallow("other")

    first, second, other = asyncio.run(main())
    assert first and not second and second.retry_after == 1.0 and other


def test_acquire_paces_without_blocking_the_loop(path):
    clock = clock_for(path)
    limiter = make(path, 60_000, burst=1, clock=clock)  # one per millisecond
    ticks = []

    async def ticker(stop):
        # Another task of the loop: it runs (and moves the clock) while acquire waits.
        while not stop.is_set():
            ticks.append(1)
            clock.advance(0.0005)
            await asyncio.sleep(0)

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(ticker(stop))
        results = [await limiter.acquire("k") for _ in range(10)]
        stop.set()
        await task
        return results

    results = asyncio.run(main())
    assert all(r.allowed for r in results)
    assert limiter.stats()["allowed"] == 10
    assert ticks  # the other task ran while acquire waited


def test_acquire_with_a_manual_clock(path):
    clock = clock_for(path)
    limiter = make(path, 600_000, burst=1, clock=clock)  # 0.1 ms per request

    async def advancer(stop):
        while not stop.is_set():
            clock.advance(0.0001)
            await asyncio.sleep(0)

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(advancer(stop))
        for _ in range(5):
            await limiter.acquire("k")
        stop.set()
        await task

    asyncio.run(main())
    assert limiter.stats()["allowed"] == 5


def test_acquire_timeout_raises(path):
    limiter = make(path, 1, burst=1, clock=clock_for(path))

    async def main():
        await limiter.acquire("k", timeout=0.01)
        with pytest.raises(RateLimitTimeout) as caught:
            await limiter.acquire("k", timeout=0.01)
        return caught.value

    error = asyncio.run(main())
    assert isinstance(error, TimeoutError) and isinstance(error, fast_litellm.FastLiteLLMError)
    assert error.retry_after == 60.0


def test_acquire_bad_input(path):
    limiter = make(path, 60, burst=2, clock=clock_for(path))

    async def main(**kwargs):
        return await limiter.acquire("k", **kwargs)

    with pytest.raises(ValueError, match="never"):
        asyncio.run(main(cost=3))
    with pytest.raises(ValueError):
        asyncio.run(main(timeout=-1))
    with pytest.raises(TypeError):
        asyncio.run(main(timeout="1"))


def test_no_arguments_build_the_default_limiter(path, monkeypatch):
    # The documents create SimpleRateLimiter() with no arguments: the default limiter's limits.
    limiter = SimpleRateLimiter()
    assert (limiter.limits.requests_per_minute, limiter.limits.burst) == (60, 6)
    assert limiter.implementation == path
    assert [limiter.allow("k") for _ in range(7)] == [True] * 6 + [False]
    monkeypatch.setenv(rl.DEFAULT_RPM_VARIABLE, "600")
    assert SimpleRateLimiter().limits.burst == 60


# ---- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"token_burst": 5}, ValueError),  # the default request limit has no token limit
        ({"requests_per_minute": 0}, ValueError),
        ({"requests_per_minute": -5}, ValueError),
        ({"requests_per_minute": math.nan}, ValueError),
        ({"requests_per_minute": math.inf}, ValueError),
        ({"requests_per_minute": True}, TypeError),
        ({"requests_per_minute": "60"}, TypeError),
        ({"requests_per_minute": 1e12}, ValueError),  # more than one per nanosecond
        ({"tokens_per_minute": -1}, ValueError),
        ({"tokens_per_minute": [1]}, TypeError),
        ({"requests_per_minute": 60, "burst": 0}, ValueError),
        ({"requests_per_minute": 60, "burst": -1}, ValueError),
        ({"requests_per_minute": 60, "burst": 1.5}, TypeError),
        ({"requests_per_minute": 60, "burst": True}, TypeError),
        ({"requests_per_minute": 60, "token_burst": 5}, ValueError),  # no token limit
        ({"requests_per_minute": 1e-12, "burst": 10**6}, ValueError),  # window too long
        ({"requests_per_minute": 60, "clock": 5}, TypeError),
        ({"requests_per_minute": 60, "on_backend_error": "ignore"}, ValueError),
        ({"requests_per_minute": 60, "key_prefix": 5}, TypeError),
        ({"requests_per_minute": 60, "backend": 5}, TypeError),
        ({"requests_per_minute": 60, "backend": b"redis://x"}, TypeError),
        ({"requests_per_minute": 60, "backend": "http://localhost"}, ValueError),
        ({"requests_per_minute": 60, "backend": []}, ValueError),
        ({"requests_per_minute": 60, "backend_timeout": 0}, ValueError),
        ({"requests_per_minute": 60, "backend_retry_interval": 0}, ValueError),
        ({"requests_per_minute": 60, "backend_retry_interval": float("inf")}, ValueError),
        ({"requests_per_minute": 60, "backend_retry_interval": "1"}, TypeError),
    ],
)
def test_bad_construction(path, kwargs, error):
    with pytest.raises(error):
        SimpleRateLimiter(**kwargs)


@pytest.mark.parametrize(
    "period, error", [(0, ValueError), (-1, ValueError), (math.nan, ValueError), ("1", TypeError)]
)
def test_bad_period(path, period, error):
    with pytest.raises(error):
        SimpleRateLimiter.per_period(period, requests=10)


@pytest.mark.parametrize(
    "key, error",
    [
        (None, TypeError),
        (5, TypeError),
        (b"key", TypeError),
        (["key"], TypeError),
        ("", ValueError),
        ("\ud800", ValueError),
        ("x" * (rl.MAX_KEY_LENGTH + 1), ValueError),
        ("x" * 1_000_000, ValueError),
    ],
)
def test_bad_keys(path, key, error):
    limiter = make(path, 60, clock=clock_for(path))
    for call in (limiter.check, limiter.allow, limiter.peek):
        with pytest.raises(error):
            call(key)
    with pytest.raises(error):
        limiter.reset(key)
    assert limiter.stats()["keys"] == 0


def test_longest_key_and_unicode_keys(path):
    limiter = make(path, 60, burst=1, clock=clock_for(path))
    longest = "é" * rl.MAX_KEY_LENGTH
    assert limiter.allow(longest) and not limiter.allow(longest)
    assert limiter.allow("日本語キー") and not limiter.allow("日本語キー")
    assert limiter.stats()["memory_bytes"] > rl.MAX_KEY_LENGTH


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"cost": -1}, ValueError),
        ({"tokens": -1}, ValueError),
        ({"cost": 1.0}, TypeError),
        ({"cost": True}, TypeError),
        ({"cost": None}, TypeError),
        ({"tokens": "3"}, TypeError),
        ({"cost": -(10**30)}, ValueError),
    ],
)
def test_bad_amounts(path, kwargs, error):
    limiter = make(path, 60, tokens_per_minute=600, clock=clock_for(path))
    for call in (limiter.check, limiter.allow, limiter.peek):
        with pytest.raises(error):
            call("k", **kwargs)
    assert limiter.stats()["allowed"] == limiter.stats()["denied"] == 0


@pytest.mark.parametrize(
    "reading, error",
    [("now", TypeError), (None, TypeError), (-1.0, ValueError), (math.nan, ValueError)],
)
def test_bad_clock_readings(path, reading, error):
    limiter = make(path, 60, clock=lambda: reading)
    with pytest.raises(error):
        limiter.allow("k")


# ---- memory: cleanup, sweep, stats ------------------------------------------------------------


def test_cleanup_drops_only_full_keys(path):
    clock = clock_for(path)
    limiter = make(path, 60, clock=clock)
    for i in range(100):
        limiter.allow(f"key-{i}")
    limiter.check("busy", cost=6)
    stats = limiter.stats()
    assert stats["keys"] == 101 and stats["memory_bytes"] > 0
    assert limiter.cleanup() == 0
    clock.advance(1)
    assert limiter.cleanup() == 100
    assert limiter.stats()["keys"] == 1
    assert limiter.check("busy").retry_after == 0  # its state survived
    clock.advance(10)
    assert limiter.cleanup() == 1
    assert limiter.stats()["keys"] == 0


def test_idle_keys_are_swept_automatically(path):
    clock = clock_for(path)
    limiter = make(path, 60, clock=clock)
    for i in range(50_000):
        limiter.allow(f"key-{i}")
        clock.advance(0.01)  # each key is full again a second after its one use
    assert limiter.stats()["keys"] < 20_000
    assert limiter.stats()["allowed"] == 50_000


def test_stats_count_decisions(path):
    limiter = make(path, 60, burst=2, clock=clock_for(path))
    for _ in range(5):
        limiter.allow("k")
    limiter.peek("k")
    stats = limiter.stats()
    assert stats["allowed"] == 2 and stats["denied"] == 3 and stats["keys"] == 1
    assert stats["implementation"] == path


# ---- flags and the error path -----------------------------------------------------------------


@needs_native
def test_path_is_chosen_once_per_limiter():
    try:
        fast_litellm.configure("rate_limiting", rust=True, rollout=100)
        native = SimpleRateLimiter(60)
        fast_litellm.configure("rate_limiting", rust=False)
        assert native.implementation == "native"
        assert SimpleRateLimiter(60).implementation == "fallback"
        assert native.allow("k")
        fast_litellm.configure("rate_limiting", rust=True, rollout=50)
        paths = [SimpleRateLimiter(60).implementation for _ in range(100)]
        assert paths.count("native") == 50
    finally:
        fast_litellm.configure(reload_environment=True)


@needs_native
def test_native_failure_is_counted_and_raised_not_retried():
    fast_litellm.configure(rust=True, rollout=100)
    fast_litellm.reset_errors()
    try:
        limiter = SimpleRateLimiter(60, burst=1, clock=ManualClock())
        limiter._impl._testing_fail_next()
        with pytest.raises(NativeError):
            limiter.allow("k")
        status = fast_litellm.get_feature_status()["features"]["rate_limiting"]
        assert status["errors"] == 1 and "injected" in status["last_error"]
        assert limiter.allow("k") and not limiter.allow("k")  # still working, nothing consumed
    finally:
        fast_litellm.configure(reload_environment=True)
        fast_litellm.reset_errors()


def test_default_limiter_reads_the_environment_once():
    code = (
        "import fast_litellm as f; r = [f.check_rate_limit('k') for _ in range(30)]; "
        "print(sum(map(bool, r)), f.default_rate_limiter().limits.burst)"
    )
    result = run_python(code, {"FAST_LITELLM_DEFAULT_RPM": "120"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["12", "12"]
    result = run_python(code)
    assert result.stdout.split() == ["6", "6"]
    result = run_python(code, {"FAST_LITELLM_DEFAULT_RPM": "fast"})
    assert result.returncode != 0 and "FAST_LITELLM_DEFAULT_RPM" in result.stderr


def test_limits_spec_for_backends():
    limits = SimpleRateLimiter(60, tokens_per_minute=90_000, token_burst=1000).limits
    assert (limits.request_interval_ns, limits.burst) == (1_000_000_000, 6)
    assert (limits.token_interval_ns, limits.token_burst) == (666_667, 1000)
    assert limits.request_capacity_ns == 6_000_000_000
    assert limits.period_ns == 60_000_000_000
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.burst = 3


# ---- parity: native == fallback -----------------------------------------------------------------

rates = st.one_of(st.integers(1, 100_000), st.floats(0.01, 100_000, allow_nan=False))
amounts = st.integers(0, 12)
keys = st.sampled_from(["a", "b", "日本", "x" * 30])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.integers(0, 3_000_000_000)),
        st.tuples(st.just("advance_s"), st.floats(0, 2, allow_nan=False)),
        st.tuples(st.sampled_from(["check", "allow", "peek"]), keys, amounts, st.integers(0, 400)),
        st.tuples(st.just("reset"), keys),
        st.tuples(st.just("cleanup")),
    ),
    max_size=60,
)


@needs_native
@given(
    requests=st.one_of(st.none(), rates),
    tokens=st.one_of(st.none(), rates.map(lambda r: r * 100)),
    burst=st.one_of(st.none(), st.integers(1, 10)),
    token_burst=st.one_of(st.none(), st.integers(1, 500)),
    ops=operations,
)
def test_native_equals_fallback(requests, tokens, burst, token_burst, ops):
    if requests is None and tokens is None:
        requests = 60
    if requests is None:
        burst = None
    if tokens is None:
        token_burst = None
    limits = Limits.build(requests, tokens, burst=burst, token_burst=token_burst)
    native_clock, fallback_clock = _flags.native.ManualClock(), fallback.ManualClock()
    native = rl.limiter.local_limiter(limits, native_clock, native=True)
    python = rl.limiter.local_limiter(limits, fallback_clock, native=False)
    for op in ops:
        if op[0] == "advance":
            native_clock.advance_ns(op[1])
            fallback_clock.advance_ns(op[1])
        elif op[0] == "advance_s":
            native_clock.advance(op[1])
            fallback_clock.advance(op[1])
            assert native_clock.now_ns() == fallback_clock.now_ns()
        elif op[0] == "reset":
            assert native.reset(op[1]) == python.reset(op[1])
        elif op[0] == "cleanup":
            native.cleanup()
            python.cleanup()
        else:
            name, key, cost, amount = op
            left = getattr(native, name)(key, cost, amount)
            right = getattr(python, name)(key, cost, amount)
            if name == "allow":
                assert left is right
            else:
                assert left.to_dict() == right.to_dict()
    n, p = native.stats(), python.stats()
    assert (n["allowed"], n["denied"]) == (p["allowed"], p["denied"])


def test_messages_name_the_argument_and_show_the_value_given(path):
    limiter = make(path, 60, clock=clock_for(path))
    with pytest.raises(TypeError, match="^cost must be an int, not float"):
        limiter.check("k", cost=1.0)
    with pytest.raises(TypeError, match="^tokens must be an int, not str"):
        limiter.allow("k", tokens="3")
    with pytest.raises(ValueError, match="^cost must be >= 0, got -1"):
        limiter.peek("k", cost=-1)
    clock = clock_for(path)
    for value, shown in ((math.nan, "got nan"), (1e300, "got 1e+300"), (-1.5, "got -1.5")):
        with pytest.raises(ValueError, match=re.escape(shown)):
            clock.set(value)
