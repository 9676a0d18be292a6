"""Monitoring: counts, latency statistics, the recent window, Prometheus text, recommendations,
health, on the native registry and on the fallback one (the ``path`` fixture switches both)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

import fast_litellm
from fast_litellm import _flags, monitoring
from fast_litellm._fallback import monitoring as fallback_monitoring
from fast_litellm._fallback.ratelimit import ManualClock as FallbackClock

from . import redis_server as servers
from .conftest import run_python

# The server fixtures (tests/redis_server.py), made visible to this module's tests.
redis_server = servers.redis_server
unique_key = servers.unique_key

native = _flags.native
needs_native = pytest.mark.skipif(native is None, reason="native module unavailable")


@pytest.fixture
def registry(path):
    """The registry of `path` (native or fallback), empty, on a manual window clock."""
    clock = native.ManualClock() if native is not None else FallbackClock()
    monitoring.reset_stats()
    monitoring._use_clock(clock)
    assert fast_litellm.get_performance_stats()["registry"] == path
    yield clock
    monitoring._use_clock(None)
    monitoring.reset_stats()


def _within(value: float, expected: float, precision: float = 0.01) -> bool:
    return abs(value - expected) <= expected * precision


def test_a_known_latency_sequence_gives_its_statistics(registry):
    for micros in range(1, 1001):
        monitoring.record("known", micros / 1e6, path="fallback")
    monitoring.record("known", 0.5, path="native", outcome="error")
    stats = fast_litellm.get_performance_stats()["operations"]["known"]
    fallback = stats["fallback"]
    assert fallback["calls"] == fallback["latency_samples"] == 1000
    assert _within(fallback["p50_us"], 500)
    assert _within(fallback["p95_us"], 950)
    assert _within(fallback["p99_us"], 990)
    assert _within(fallback["max_us"], 1000)
    assert _within(fallback["mean_us"], 500.5)
    assert (stats["calls"], stats["native_calls"], stats["fallback_calls"]) == (1001, 1, 1000)
    assert stats["errors"] == stats["native"]["errors"] == 1
    assert _within(stats["max_us"], 500_000)
    # The whole sequence is in the recent window.
    assert stats["recent"]["calls"] == 1001
    assert stats["recent"]["fallback"]["p99_us"] == fallback["p99_us"]


def test_the_recent_window_moves_with_the_clock(registry):
    monitoring.record("op", 0.001)
    registry.advance(35)
    monitoring.record("op", 0.002, outcome="refused")
    monitoring.record("op", 0.003)
    stats = fast_litellm.get_performance_stats()["operations"]["op"]
    assert (stats["calls"], stats["recent"]["calls"], stats["recent"]["refused"]) == (3, 3, 1)
    registry.advance(30)  # t = 65 s: the first call's slot left the window
    recent = fast_litellm.get_performance_stats()["operations"]["op"]["recent"]
    assert (recent["calls"], recent["latency_samples"], recent["refused"]) == (2, 2, 1)
    assert _within(recent["p50_us"], 2000)
    registry.advance(600)
    stats = fast_litellm.get_performance_stats()["operations"]["op"]
    assert stats["recent"]["calls"] == 0 and stats["calls"] == 3
    monitoring.reset_stats()
    assert fast_litellm.get_performance_stats()["operations"] == {}


def test_calls_of_the_package_are_counted_on_their_path(registry, path):
    for _ in range(50):
        fast_litellm.count_tokens("hello world")
    limiter = fast_litellm.SimpleRateLimiter(60, burst=2)
    allowed = [limiter.allow("key") for _ in range(5)]
    assert allowed == [True, True, False, False, False]
    stats = fast_litellm.get_performance_stats()["operations"]
    count = stats["count_tokens"]
    assert count[f"{path}_calls"] == count["calls"] == 50
    assert 1 <= count["latency_samples"] <= 50
    check = stats["rate_limit_check"]
    assert (check["calls"], check["refused"], check[f"{path}_calls"]) == (5, 3, 5)
    with pytest.raises(TypeError):
        fast_litellm.count_tokens(b"bytes")  # type: ignore[arg-type]
    assert fast_litellm.get_performance_stats()["operations"]["count_tokens"]["errors"] == 1


def _calls_by_operation(path):
    stats = fast_litellm.get_performance_stats()["operations"]
    return {name: entry[f"{path}_calls"] for name, entry in stats.items()}


def test_request_counts_are_recorded_as_request_counts(registry, path):
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    for _ in range(3):
        fast_litellm.count_request_tokens(body)
    calls = _calls_by_operation(path)
    assert calls["count_request_tokens"] == 3
    # The fallback counts the parsed messages with count_message_tokens, recorded as such.
    assert set(calls) <= {"count_request_tokens", "count_message_tokens"}, calls


def test_hugging_face_counts_are_recorded_on_their_path(registry, path):
    pytest.importorskip("tokenizers")
    model = "claude-opus-4-5"  # counted with a Hugging Face tokenizer
    fast_litellm.count_tokens("warm the tokenizer up", model=model)
    monitoring.reset_stats()
    messages = [{"role": "user", "content": "hello there"}]
    body = json.dumps({"model": model, "messages": messages})
    for _ in range(4):
        fast_litellm.count_tokens("hello world", model=model)
    fast_litellm.count_tokens_batch(["a", "b", "c"], model=model)
    fast_litellm.count_message_tokens(messages, model=model)
    fast_litellm.count_request_tokens(body)
    calls = _calls_by_operation(path)
    assert (calls["count_tokens"], calls["count_tokens_batch"]) == (4, 1), calls
    assert calls["count_request_tokens"] == 1, calls
    # One call of count_message_tokens, and on the fallback one more inside the request count.
    assert calls["count_message_tokens"] == (1 if path == "native" else 2), calls


@needs_native
def test_hot_native_calls_are_sampled_but_counted_exactly(registry, path):
    if path != "native":
        pytest.skip("sampling is the native registry's")
    before = monitoring.set_latency_sampling(8)
    try:
        for _ in range(80):
            fast_litellm.count_tokens("abc")
    finally:
        monitoring.set_latency_sampling(before)
    count = fast_litellm.get_performance_stats()["operations"]["count_tokens"]
    assert count["calls"] == count["recent"]["calls"] == 80
    # One in 8 timed; the thread's countdown may carry up to 31 calls (of the default one in
    # 32) from before, which delays the first sample.
    assert 7 <= count["latency_samples"] <= 10


def test_prometheus_text_parses(registry, path):
    monitoring.record("alpha", 0.000_250, path="native")
    monitoring.record("alpha", 0.001, path="fallback", outcome="error")
    monitoring.record("beta", 0.002, path="native", outcome="refused")
    families = {f.name: f for f in text_string_to_metric_families(monitoring.prometheus_metrics())}
    calls = {
        (s.labels["operation"], s.labels["path"]): s.value
        for s in families["fast_litellm_calls"].samples
    }
    assert calls == {("alpha", "native"): 1, ("alpha", "fallback"): 1, ("beta", "native"): 1}
    errors = {
        (s.labels["operation"], s.labels["path"]): s.value
        for s in families["fast_litellm_errors"].samples
    }
    assert errors[("alpha", "fallback")] == 1
    latency = families["fast_litellm_latency_seconds"]
    assert latency.type == "summary"
    p50 = [
        s.value
        for s in latency.samples
        if s.labels.get("quantile") == "0.5"
        and s.labels["operation"] == "alpha"
        and s.labels["path"] == "native"
    ]
    assert len(p50) == 1 and _within(p50[0], 0.000_250)
    counts = [s.value for s in latency.samples if s.name.endswith("_count")]
    assert sorted(counts) == [1, 1, 1]
    features = {
        s.labels["feature"]: s.value for s in families["fast_litellm_feature_native"].samples
    }
    assert set(features) == {name.lower() for name in _flags.FEATURES}
    assert features["token_counting"] == (1.0 if path == "native" else 0.0)
    assert families["fast_litellm_native_available"].samples[0].value == (native is not None)


def test_recommendations_carry_the_numbers_behind_them(registry):
    assert monitoring.get_recommendations() == []
    for _ in range(30):
        monitoring.record("count_tokens", 20e-6, path="native")
        monitoring.record("count_tokens", 2e-6, path="fallback")
    for i in range(40):
        monitoring.record("http_request", 0.05, outcome="refused" if i % 4 == 0 else "ok")
    advice = {r["kind"]: r for r in monitoring.get_recommendations()}
    slower = advice["slower_path"]
    assert slower["subject"] == "count_tokens"
    assert _within(slower["numbers"]["native_p50_us"], 20)
    assert _within(slower["numbers"]["fallback_p50_us"], 2)
    assert 'configure("token_counting", rust=False)' in slower["message"]
    throttled = advice["throttled"]
    assert throttled["numbers"] == {"refused": 10, "calls": 40, "refused_rate": 0.25}
    assert "25.0%" in throttled["message"]


def test_a_tripped_feature_is_recommended_and_degrades_health(path):
    state = _flags.feature("TOKEN_COUNTING")
    try:
        for _ in range(_flags.settings.max_consecutive_errors):
            state.record_failure(RuntimeError("boom"), _flags.settings.max_consecutive_errors)
        advice = [r for r in monitoring.get_recommendations() if r["kind"] == "feature_tripped"]
        assert advice and advice[0]["numbers"]["last_error"] == "RuntimeError: boom"
        report = fast_litellm.health_check()
        assert report["status"] == "degraded"
        assert any("token_counting" in reason for reason in report["reasons"])
    finally:
        fast_litellm.reset_errors()


def test_health_check_covers_monitoring_and_cache(path):
    report = fast_litellm.health_check()
    if native is None:
        assert report["status"] == "degraded" and report["reasons"]
        return
    assert report["status"] == "ok", report
    assert "reasons" not in report
    for feature in ("monitoring", "cache"):
        assert report["features"][feature]["status"] == "ok"
        assert report["features"][feature]["errors"] == 0


def test_huge_finite_latencies_are_clamped(registry):
    # The rule is "a finite number >= 0": 1e300 seconds is one, and is held as the longest.
    for latency in (2**80, 1e300, 1.7e308):
        monitoring.record("huge", latency)
    stats = fast_litellm.get_performance_stats()["operations"]["huge"]
    assert stats["calls"] == 3


def test_bad_input_is_refused(registry):
    with pytest.raises(TypeError):
        monitoring.record(3, 0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        monitoring.record("op", "1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        monitoring.record("op", True)  # type: ignore[arg-type]
    for bad in (-1, math.nan, math.inf):
        with pytest.raises(ValueError):
            monitoring.record("op", bad)
    with pytest.raises(ValueError):
        monitoring.record("op", 0.1, path="rust")
    with pytest.raises(ValueError):
        monitoring.record("op", 0.1, outcome="maybe")
    with pytest.raises(ValueError, match="operation names"):
        monitoring.record("has space", 0.1)
    # Quoted as Python quotes it, and a lone surrogate is a bad name too, on both registries.
    with pytest.raises(ValueError, match="got 'é'$"):
        monitoring.record("é", 0.1)
    with pytest.raises(ValueError, match="got 'a\\\\ud800'$"):
        monitoring.record("a\ud800", 0.1)
    with pytest.raises(ValueError):
        monitoring.set_latency_sampling(0)
    with pytest.raises(TypeError):
        monitoring.set_latency_sampling(2.0)  # type: ignore[arg-type]
    assert fast_litellm.get_performance_stats()["operations"] == {}


def test_the_fallback_registry_takes_as_many_names_as_the_native_one():
    # The native registry holds the built-in names from the start: recording some of them must
    # not use up the places of other names.
    registry = fallback_monitoring.Registry()
    for builtin in list(fallback_monitoring.BUILTIN_OPERATIONS)[:3]:
        registry.record(builtin, "native", 100)
    room = fallback_monitoring.MAX_OPERATIONS - len(fallback_monitoring.BUILTIN_OPERATIONS)
    for index in range(room):
        registry.record(f"custom{index}", "native", 100)
    with pytest.raises(ValueError, match="at most"):
        registry.record("one.too.many", "native", 100)
    registry.record(list(fallback_monitoring.BUILTIN_OPERATIONS)[-1], "native", 100)


_records = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c.d"]),
        st.sampled_from(["native", "fallback"]),
        st.one_of(st.integers(0, 10**12), st.integers(0, 300)),
        st.sampled_from(["ok", "error", "refused"]),
        st.integers(0, 25),  # seconds the clock moves before the record
    ),
    max_size=60,
)


@needs_native
@given(records=_records)
def test_native_and_fallback_registries_agree(records):
    clock = native.ManualClock()
    native.metrics_reset()
    native.metrics_use_clock(clock)
    try:
        fallback = fallback_monitoring.Registry()
        fallback.use_clock(clock)
        for operation, path, latency_ns, outcome, step in records:
            clock.advance(step)
            native.metrics_record(operation, path, latency_ns, outcome)
            fallback.record(operation, path, latency_ns, outcome)
        clock.advance(7)
        assert sorted(native.metrics_snapshot()) == sorted(fallback.snapshot())
    finally:
        native.metrics_use_clock(None)
        native.metrics_reset()


@needs_native
def test_a_forked_child_counts_from_zero():
    code = """
import os, sys
import fast_litellm
from fast_litellm import monitoring
for _ in range(10):
    fast_litellm.count_tokens("hi")
monitoring.record("mine", 0.001, path="fallback")
pid = os.fork()
if pid == 0:
    ops = fast_litellm.get_performance_stats()["operations"]
    fast_litellm.count_tokens("hi")
    after = fast_litellm.get_performance_stats()["operations"]["count_tokens"]["calls"]
    os._exit(0 if ops == {} and after == 1 else 1)
_, status = os.waitpid(pid, 0)
parent = fast_litellm.get_performance_stats()["operations"]["count_tokens"]["calls"]
print(os.waitstatus_to_exitcode(status), parent)
"""
    for env in ({}, {"FAST_LITELLM_RUST_MONITORING": "false"}):
        result = run_python(code, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["0", "10"], (env, result.stdout)


def test_python_timing_steps_the_fast_paths_aside(path):
    # With monitoring on the fallback registry, native calls must pass through `run` to be timed.
    fast_litellm.configure("monitoring", rust=False)
    try:
        assert _flags.timing.python
        assert not _flags.feature("TOKEN_COUNTING").fast
        monitoring.reset_stats()
        fast_litellm.count_tokens("hello")
        stats = fast_litellm.get_performance_stats()
        assert stats["registry"] == "fallback"
        count = stats["operations"]["count_tokens"]
        assert count[f"{path}_calls"] == 1 and count["latency_samples"] == 1
    finally:
        fast_litellm.configure("monitoring", rust=True)
        monitoring.reset_stats()
    assert _flags.timing.python == (native is None)
    assert _flags.feature("TOKEN_COUNTING").fast == (path == "native")


def test_http_requests_are_recorded_with_429_as_refused(registry, path):
    from fast_litellm import http
    from fast_litellm.errors import HTTPError

    from .http_server import HttpTestServer

    if path == "native" and not hasattr(native, "HttpClient"):
        pytest.skip("no native HTTP client")
    with HttpTestServer() as server:
        with http.Client(server.url, retry=http.RetryConfig(max_retries=0)) as client:
            assert client.native == (path == "native")
            for _ in range(4):
                client.get("/echo")
            for i in range(2):
                assert client.get(f"/status/429?id=m{i}&times=1").status_code == 429
            with pytest.raises(HTTPError):
                client.get("http://127.0.0.1:1/unreachable")
            path_sse = server.sse("m", [b"data: a\n\n", b"data: b\n\n"])
            with client.stream("GET", path_sse) as stream:
                assert [event.data for event in stream] == ["a", "b"]
        streams = fast_litellm.get_performance_stats()["operations"]["http_stream"]
        assert (streams["calls"], streams[f"{path}_calls"], streams["errors"]) == (1, 1, 0)
        stats = fast_litellm.get_performance_stats()["operations"]["http_request"]
        assert (stats["calls"], stats[f"{path}_calls"]) == (7, 7)
        assert (stats["refused"], stats["errors"]) == (2, 1)
        assert stats["latency_samples"] == 7
        families = {
            f.name: f for f in text_string_to_metric_families(monitoring.prometheus_metrics())
        }
        assert families["fast_litellm_http_requests"].samples[0].value >= 6
        report = fast_litellm.health_check()
        assert report["http_pools"][0]["clients"][path] >= 1


def test_redis_round_trips_are_recorded(registry, redis_server, unique_key):
    servers.require_redis_py()
    limiter = fast_litellm.SimpleRateLimiter(60, burst=2, backend=redis_server.url)
    allowed = [bool(limiter.check(unique_key)) for _ in range(3)]
    assert allowed == [True, True, False]
    redis_calls = fast_litellm.get_performance_stats()["operations"]["redis_rate_limit_check"]
    assert redis_calls["calls"] == 3 and redis_calls["errors"] == 0
    assert redis_calls["latency_samples"] == 3


def test_slow_redis_is_recommended(registry):
    for _ in range(25):
        monitoring.record("redis_rate_limit_check", 0.012)
    slow = [r for r in monitoring.get_recommendations() if r["kind"] == "slow_redis"]
    assert len(slow) == 1 and _within(slow[0]["numbers"]["p95_us"], 12_000)


@needs_native
def test_switching_the_registry_back_never_counts_a_call_twice():
    fast_litellm.configure("monitoring", rust=False)
    try:
        limiter = fast_litellm.SimpleRateLimiter(60, burst=5)  # built while Python times calls
    finally:
        fast_litellm.configure("monitoring", rust=True)
    monitoring.reset_stats()
    for _ in range(3):
        limiter.allow("key")
    assert fast_litellm.get_performance_stats()["operations"]["rate_limit_check"]["calls"] == 3
    monitoring.reset_stats()


def test_everything_works_without_the_native_module():
    code = """
import sys
sys.modules["fast_litellm._native"] = None
import fast_litellm
from fast_litellm import monitoring
fast_litellm.count_tokens("hello")
cache = fast_litellm.ResponseCache(4, 60)
cache.set({"model": "m", "messages": []}, "r")
assert cache.get({"messages": [], "model": "m", "stream": True}) == "r"
stats = fast_litellm.get_performance_stats()
assert stats["registry"] == "fallback", stats
ops = stats["operations"]
assert ops["count_tokens"]["fallback_calls"] == 1, ops
assert ops["cache_get"]["fallback_calls"] == 1 and ops["cache_set"]["fallback_calls"] == 1
assert "fast_litellm_calls_total" in fast_litellm.prometheus_metrics()
assert monitoring.set_latency_sampling(4) == 1
report = fast_litellm.health_check()
assert report["status"] == "degraded" and report["reasons"][0].startswith("native module")
print("ok")
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
