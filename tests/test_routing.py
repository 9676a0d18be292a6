"""Deployment health and routing (``fast_litellm.routing``): the cooldown and circuit-breaker
state machine on a manual clock, each strategy's choices, native == fallback, LiteLLM's own
router as the reference, and bad input. Every API test runs on both engines."""

from __future__ import annotations

import asyncio
import collections
import math
import time
import warnings
from typing import Any, Dict, List

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fast_litellm
from fast_litellm import HealthTracker, ManualClock, NoDeploymentAvailable, Router, _flags
from fast_litellm._fallback import routing as fallback_routing
from fast_litellm.routing import _Parsed

needs_native = pytest.mark.skipif(_flags.native is None, reason="native module unavailable")


def deployment(name: str, id_: str, **params: Any) -> Dict[str, Any]:
    info = {"id": id_}
    for key in ("allowed_fails", "cooldown_time"):
        if key in params:
            info[key] = params.pop(key)
    return {
        "model_name": name,
        "litellm_params": {"model": f"openai/{id_}", "api_key": "sk-test", **params},
        "model_info": info,
    }


def group(n: int, name: str = "m", prefix: str = "d", **params: Any) -> List[Dict[str, Any]]:
    return [deployment(name, f"{prefix}{i}", **params) for i in range(n)]


def ids(deployments: List[Dict[str, Any]]) -> List[str]:
    return [d["model_info"]["id"] for d in deployments]


@pytest.fixture
def clock() -> Any:
    return ManualClock(1_000_000.0)


@pytest.fixture
def make(path: str, clock: Any) -> Any:
    def build(model_list: Any, **kwargs: Any) -> Router:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("seed", 7)
        router = Router(model_list, **kwargs)
        assert router.implementation == path
        return router

    return build


# ---- picking and references ---------------------------------------------------------------------


def test_pick_returns_the_very_dict_of_the_model_list(make: Any) -> None:
    model_list = group(3) + group(2, name="other", prefix="o")
    router = make(model_list)
    for _ in range(50):
        picked, other = router.pick("m"), router.pick("other")
        assert any(picked is d for d in model_list[:3])
        assert any(other is d for d in model_list[3:])
    # a deployment is named by its dict or its id
    router.record_start(model_list[0])
    router.record_start("d1")
    assert router.status(model_list[0])["in_flight"] == 1
    assert router.status("d1")["in_flight"] == 1
    assert set(router.status()) == {"d0", "d1", "d2", "o0", "o1"}


def test_least_busy_picks_the_fewest_in_flight(make: Any) -> None:
    model_list = group(4)
    router = make(model_list, strategy="least-busy")
    assert router.pick("m") is model_list[0]
    for d, n in zip(model_list, (3, 1, 2, 1), strict=True):
        for _ in range(n):
            router.record_start(d)
    assert router.pick("m") is model_list[1]  # the first of the two with one in flight
    router.record_success(model_list[0], latency=0.1)
    router.record_success(model_list[0], latency=0.1)
    router.record_success(model_list[0], latency=0.1)
    assert router.pick("m") is model_list[0]


def test_weighted_shuffle_follows_the_weights(make: Any) -> None:
    model_list = [
        deployment("m", "a", weight=1),
        deployment("m", "b", weight=2),
        deployment("m", "c", weight=7),
    ]
    router = make(model_list, seed=12345)
    n = 100_000
    counts = collections.Counter(router.pick("m")["model_info"]["id"] for _ in range(n))
    for id_, p in (("a", 0.1), ("b", 0.2), ("c", 0.7)):
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(counts[id_] - n * p) < 5 * sigma, counts


def test_shuffle_weights_fall_back_to_rpm_then_uniform(make: Any) -> None:
    by_rpm = make([deployment("m", "a", rpm=100), deployment("m", "b", rpm=300)], seed=3)
    counts = collections.Counter(by_rpm.pick("m")["model_info"]["id"] for _ in range(4000))
    assert 800 < counts["a"] < 1200, counts
    # a weight of 0 is never picked while another has one
    zero = make([deployment("m", "a", weight=0), deployment("m", "b", weight=5)])
    assert {zero.pick("m")["model_info"]["id"] for _ in range(200)} == {"b"}
    uniform = make(group(4), seed=9)
    counts = collections.Counter(uniform.pick("m")["model_info"]["id"] for _ in range(4000))
    assert set(counts) == {"d0", "d1", "d2", "d3"} and min(counts.values()) > 850, counts


def test_latency_based_picks_the_lowest_within_the_buffer(make: Any) -> None:
    model_list = group(3)
    router = make(model_list, strategy="latency-based-routing", lowest_latency_buffer=0.5)
    # unused deployments count as 0 s, as in LiteLLM: every one is a candidate
    assert {router.pick("m")["model_info"]["id"] for _ in range(200)} == {"d0", "d1", "d2"}
    for d, latency in zip(model_list, (1.0, 1.4, 2.0), strict=True):
        router.record_success(d, latency=latency)
    assert {router.pick("m")["model_info"]["id"] for _ in range(200)} == {"d0", "d1"}
    strict = make(model_list, strategy="latency-based-routing")
    for d, latency in zip(model_list, (3.0, 1.4, 2.0), strict=True):
        strict.record_success(d, latency=latency)
    assert {strict.pick("m")["model_info"]["id"] for _ in range(50)} == {"d1"}
    # per completion token, as LiteLLM normalizes: 3 s for 300 tokens beats 1.4 s for 10
    strict.record_success(model_list[0], latency=3.0, completion_tokens=300)
    assert strict.status(model_list[0])["latency_p50"] == 3.0
    assert strict.pick("m") is model_list[1]  # d0: mean of [3.0, 0.01] = 1.505 > 1.4
    strict.record_success(model_list[0], latency=3.0, completion_tokens=300)
    assert strict.pick("m") is model_list[0]  # d0: mean of [3.0, 0.01, 0.01] < 1.4


def test_latency_mean_is_over_the_last_ten(make: Any) -> None:
    model_list = group(2)
    router = make(model_list, strategy="latency-based-routing")
    router.record_success(model_list[0], latency=0.5)
    for _ in range(10):
        router.record_success(model_list[1], latency=5.0)
    assert router.pick("m") is model_list[0]
    for _ in range(10):
        router.record_success(model_list[1], latency=0.1)
    assert router.pick("m") is model_list[1]  # the slow ones fell out of the last ten
    # a timeout costs 1000 s in the list, as in LiteLLM
    router.record_failure(model_list[1], exception=TimeoutError("read timed out"))
    assert router.pick("m") is model_list[0]
    # a stream compares time to first token when there is one
    router.record_success(model_list[1], latency=9.0, time_to_first_token=0.05)
    router.record_success(model_list[0], latency=0.2, time_to_first_token=0.4)
    assert router.pick("m", stream=True) is model_list[1]
    assert router.pick("m") is model_list[0]


def test_usage_based_picks_the_fewest_tokens_within_limits(make: Any) -> None:
    model_list = [
        deployment("m", "a", tpm=1000),
        deployment("m", "b", tpm=10_000, rpm=3),
        deployment("m", "c"),
    ]
    router = make(model_list, strategy="usage-based-routing")
    router.record_start("a")
    router.record_success("a", latency=0.1, tokens=100)
    router.record_start("c")
    router.record_success("c", latency=0.1, tokens=50)
    assert router.pick("m") is model_list[1]
    router.record_start("b")
    router.record_success("b", latency=0.1, tokens=500)
    assert router.pick("m") is model_list[2]
    # 'a' cannot take 950 more tokens: 'b' and 'c' remain, 'c' has fewer
    assert router.pick("m", input_tokens=950) is model_list[2]
    router.record_start("b")
    # b has 2 requests this minute and rpm 3: LiteLLM refuses at `count + 1 >= rpm`
    router.record_start("c")
    router.record_success("c", latency=0.1, tokens=5000)
    assert router.pick("m", input_tokens=950) is model_list[2]
    assert router.pick("m") is model_list[0]


def test_usage_counts_start_again_each_minute(make: Any, clock: Any) -> None:
    model_list = [deployment("m", "a", tpm=100)]
    router = make(model_list, strategy="usage-based-routing")
    router.record_start("a")
    router.record_success("a", latency=0.1, tokens=100)
    with pytest.raises(NoDeploymentAvailable) as caught:
        router.pick("m", input_tokens=1)
    assert 0 < caught.value.retry_after <= 60
    clock.advance(caught.value.retry_after)
    assert router.pick("m", input_tokens=1) is model_list[0]


def test_cost_based_picks_the_cheapest(make: Any) -> None:
    model_list = [
        deployment("m", "a", input_cost_per_token=3e-6, output_cost_per_token=1e-6),
        deployment("m", "b", input_cost_per_token=1e-6, output_cost_per_token=1e-6),
        deployment("m", "c"),
        deployment("m", "d", input_cost_per_token=1e-6, output_cost_per_token=1e-6),
    ]
    router = make(model_list, strategy="cost-based-routing")
    assert router.pick("m") is model_list[1]
    # equals in LiteLLM's usage-map order: the one that succeeded first comes first
    router.record_success("d", latency=0.1)
    assert router.pick("m") is model_list[3]


# ---- cooldowns ----------------------------------------------------------------------------------


def test_a_429_cools_down_for_its_retry_after(make: Any, clock: Any) -> None:
    model_list = group(2)
    router = make(model_list)
    assert router.record_failure("d0", status_code=429, retry_after=12.0) is True
    assert not router.is_healthy("d0")
    assert router.healthy_deployments("m") == [model_list[1]]
    assert all(router.pick("m") is model_list[1] for _ in range(20))
    status = router.status("d0")
    assert status["state"] == "cooldown" and status["cooldown_status_code"] == 429
    assert status["cooldown_remaining"] == 12.0
    clock.advance(11.9)
    assert not router.is_healthy("d0")
    clock.advance(0.1)
    assert router.is_healthy("d0")
    assert router.status("d0")["state"] == "healthy"


def test_an_exception_cools_down_for_the_retry_after_of_its_response(make: Any, clock: Any) -> None:
    # As LiteLLM's router reads it (router_rust.core.retry_after_seconds): the header of the
    # response the exception carries, whole seconds or an HTTP date.
    import email.utils

    import httpx
    import litellm
    from litellm.router_rust.core import retry_after_seconds

    request = httpx.Request("POST", "https://api.example.com/v1/chat/completions")

    def rate_limited(value: str) -> Exception:
        response = httpx.Response(429, headers={"retry-after": value}, request=request)
        return litellm.RateLimitError("slow down", "openai", "gpt-4o", response=response)

    router = make(group(4))
    exc = rate_limited("30")
    assert retry_after_seconds(exc) == 30.0
    assert router.record_failure("d0", exception=exc)
    assert router.status("d0")["cooldown_remaining"] == 30.0
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert router.record_failure("d1", exception=rate_limited(in_a_minute))
    assert 55.0 <= router.status("d1")["cooldown_remaining"] <= 60.0
    # An unreadable header is no wait (the default cooldown); an explicit retry_after wins.
    assert router.record_failure("d2", exception=rate_limited("soon"))
    assert router.status("d2")["cooldown_remaining"] == 5.0
    assert router.record_failure("d3", exception=exc, retry_after=2.0)
    assert router.status("d3")["cooldown_remaining"] == 2.0
    with pytest.raises(ValueError, match="finite"):
        router.record_failure("d3", status_code=429, retry_after=math.inf)


def test_auth_and_not_found_cool_down_at_once_other_4xx_never(make: Any, clock: Any) -> None:
    router = make(group(3))
    assert router.record_failure("d0", status_code=401)
    assert router.record_failure("d1", status_code=404)
    for _ in range(10):
        assert not router.record_failure("d2", status_code=400)
        assert not router.record_failure("d2", status_code=403)
    assert router.healthy_deployments("m") == [router.model_list[2]]
    clock.advance(5.0)  # LiteLLM's default cooldown_time
    assert len(router.healthy_deployments("m")) == 3


def test_the_only_deployment_of_a_group_is_spared_a_429(make: Any) -> None:
    router = make(group(1))
    assert not router.record_failure("d0", status_code=429, retry_after=30)
    assert router.is_healthy("d0")
    assert router.record_failure("d0", status_code=401)  # never retried: cooled down anyway


def test_failure_rate_over_half_of_five(make: Any) -> None:
    router = make(group(2))
    for _ in range(3):
        router.record_success("d0", latency=0.2)
    results = [router.record_failure("d0", status_code=500) for _ in range(4)]
    assert results == [False, False, False, True]  # 1/4, 2/5, 3/6 (not over half), 4/7


def test_allowed_fails_mode(make: Any, clock: Any) -> None:
    router = make(group(2), allowed_fails=2, cooldown_time=30)
    assert not router.record_failure("d0", status_code=500)
    assert not router.record_failure("d0", status_code=503)
    assert router.record_failure("d0", status_code=500)
    with pytest.raises(NoDeploymentAvailable):
        router.record_failure("d1", status_code=401)
        router.record_failure("d1", status_code=401)
        router.record_failure("d1", status_code=401)
        router.pick("m")
    clock.advance(30)
    assert router.is_healthy("d0")


def test_allowed_fails_are_forgotten_after_the_cooldown_time_not_the_retry_after(
    make: Any, clock: Any
) -> None:
    router = make(group(2), allowed_fails=1, cooldown_time=10)
    assert not router.record_failure("d0", status_code=429, retry_after=100)
    clock.advance(10)  # the first failure is forgotten after cooldown_time, not Retry-After
    assert not router.record_failure("d0", status_code=429, retry_after=100)
    clock.advance(1)
    assert router.record_failure("d0", status_code=429, retry_after=100)
    assert router.status("d0")["cooldown_remaining"] == 100.0  # the cooldown itself: Retry-After


def test_cooldown_time_precedence_and_zero(make: Any, clock: Any) -> None:
    model_list = [deployment("m", "a", cooldown_time=2), deployment("m", "b")]
    router = make(model_list, cooldown_time=20)
    router.record_failure("a", status_code=429, retry_after=60)  # the deployment's own 2 s wins
    router.record_failure("b", status_code=429)  # the router's 20 s
    assert router.status("a")["cooldown_remaining"] == 2.0
    assert router.status("b")["cooldown_remaining"] == 20.0
    with pytest.raises(NoDeploymentAvailable) as caught:
        router.pick("m")
    assert caught.value.retry_after == 2.0 and caught.value.model_name == "m"
    assert "2.000 s" in str(caught.value)
    assert isinstance(caught.value, fast_litellm.FastLiteLLMError)
    off = make(group(2), cooldown_time=0)
    assert not off.record_failure("d0", status_code=401)


def test_connection_errors_never_cool_down(make: Any) -> None:
    router = make(group(2))
    assert not router.record_failure("d0", exception=RuntimeError("APIConnectionError: refused"))


def test_circuit_breaker_lets_one_probe_through(make: Any, clock: Any) -> None:
    model_list = group(2)
    router = make(model_list, circuit_breaker=True, strategy="least-busy")
    router.record_failure("d0", status_code=401)
    clock.advance(5)
    assert router.status("d0")["state"] == "half_open"
    assert router.is_healthy("d0")
    router.record_start("d1")
    probe = router.pick("m")
    assert probe is model_list[0]
    router.record_start(probe)
    assert not router.is_healthy("d0")  # its probe is in flight
    assert router.pick("m") is model_list[1]
    # the probe fails with a status that alone would not cool it down: open again
    assert router.record_failure("d0", status_code=500)
    assert router.status("d0")["state"] == "cooldown"
    clock.advance(5)
    router.record_start("d0")
    router.record_success("d0", latency=0.3)
    assert router.status("d0")["state"] == "healthy"
    # without the breaker a cooldown's end leaves nothing behind
    plain = make(model_list)
    plain.record_failure("d0", status_code=401)
    clock.advance(5)
    plain.record_start("d0")
    assert plain.is_healthy("d0") and plain.status("d0")["state"] == "healthy"


def test_a_half_open_deployment_goes_to_one_pick(make: Any, clock: Any) -> None:
    # Concurrent requests pick before any of them has called record_start: only the first may
    # probe the deployment whose cooldown just ended.
    model_list = group(2)
    router = make(model_list, circuit_breaker=True, strategy="least-busy")
    router.record_start("d1")
    router.record_failure("d0", status_code=401)
    clock.advance(5)
    assert router.pick("m") is model_list[0]  # the probe
    assert not router.is_healthy("d0")
    assert [router.pick("m") for _ in range(5)] == [model_list[1]] * 5
    router.record_start("d0")
    router.record_success("d0", latency=0.1)
    assert router.status("d0")["state"] == "healthy"
    # a probe picked but never sent stops holding the circuit after the cooldown that opened it
    router.record_failure("d0", status_code=401)
    clock.advance(5)
    assert router.pick("m") is model_list[0]
    assert router.pick("m") is model_list[1]
    clock.advance(5)
    assert router.pick("m") is model_list[0]


def test_a_probe_whose_outcome_never_comes_stops_holding_the_circuit(make: Any, clock: Any) -> None:
    # The probe's task was cancelled between record_start and its outcome: the deployment must
    # come back, not stay half-open and out of rotation for ever.
    model_list = group(2)
    router = make(model_list, circuit_breaker=True)
    assert router.record_failure("d0", status_code=429, retry_after=20.0)
    clock.advance(20)
    assert router.status("d0")["state"] == "half_open"
    router.record_start("d0")  # the probe, never finished
    assert not router.is_healthy("d0")
    router.record_health_check("d0", healthy=True)
    assert router.status("d0")["state"] == "half_open"  # the probe still holds it
    clock.advance(19.9)
    assert not router.is_healthy("d0")
    assert all(router.pick("m") is model_list[1] for _ in range(10))
    clock.advance(0.1)  # as long as the cooldown that opened the circuit
    assert router.is_healthy("d0")
    router.record_health_check("d0", healthy=True)
    assert router.status("d0")["state"] == "healthy"


def test_status_reports_the_window_latency_and_in_flight(make: Any, clock: Any) -> None:
    router = make(group(1))
    for i in range(100):
        router.record_start("d0")
        router.record_success("d0", latency=(i + 1) / 100, tokens=10, time_to_first_token=0.5)
        clock.advance(0.5)
    router.record_start("d0")
    router.record_failure("d0", status_code=500, latency=2.0)
    router.record_start("d0")
    status = router.status("d0")
    assert status["in_flight"] == 1
    # 101 latencies (0.01 .. 1.00 and the failure's 2.0), nearest rank: the 51st and the 100th
    assert status["latency_p50"] == 0.51 and status["latency_p99"] == 1.0
    assert status["time_to_first_token_ewma"] == 0.5
    assert status["successes"] == 100 and status["failures"] == 1
    assert status["consecutive_failures"] == 1
    assert status["latency_ewma"] is not None and 0.9 < status["latency_ewma"] < 2.0
    clock.advance(60)
    later = router.status("d0")
    assert later["successes"] == 0 and later["total_successes"] == 100


def test_health_tracker_follows_the_health_flag(path: str, clock: Any) -> None:
    tracker = HealthTracker(group(2), clock=clock)
    assert tracker.implementation == path
    tracker.record_failure("d0", status_code=401)
    assert [d["model_info"]["id"] for d in tracker.healthy_deployments("m")] == ["d1"]
    assert not hasattr(tracker, "pick")


# ---- active health checks -----------------------------------------------------------------------


def test_a_failed_health_check_holds_a_deployment_back(make: Any, clock: Any) -> None:
    model_list = group(2)
    router = make(model_list, circuit_breaker=True)
    router.record_health_check("d0", healthy=False)
    assert not router.is_healthy("d0") and router.status("d0")["health_check"] is False
    assert all(router.pick("m") is model_list[1] for _ in range(20))
    router.record_health_check("d1", healthy=False)
    with pytest.raises(NoDeploymentAvailable) as caught:
        router.pick("m")
    assert caught.value.retry_after is None
    router.record_health_check("d0", healthy=True)
    assert router.pick("m") is model_list[0]
    # a passed check closes a half-open circuit, but never ends a cooldown
    router.record_failure("d0", status_code=401)
    router.record_health_check("d0", healthy=True)
    assert router.status("d0")["state"] == "cooldown"
    clock.advance(5)
    assert router.status("d0")["state"] == "half_open"
    router.record_health_check("d0", healthy=True)
    assert router.status("d0")["state"] == "healthy"
    with pytest.raises(TypeError):
        router.record_health_check("d0", healthy=1)


def test_a_failed_health_check_goes_stale_as_in_litellm(make: Any, clock: Any) -> None:
    # LiteLLM treats a health state older than its staleness (600 s by default) as unknown, so
    # a deployment whose checks stopped (stop_health_checks, a fork) is not held back for ever.
    model_list = group(2)
    router = make(model_list)
    router.record_health_check("d0", healthy=False)
    clock.advance(599.9)
    assert not router.is_healthy("d0")
    assert all(router.pick("m") is model_list[1] for _ in range(20))
    clock.advance(0.1)
    assert router.is_healthy("d0")
    assert model_list[0] in [router.pick("m") for _ in range(40)]
    assert router.status("d0")["health_check"] is False  # the last answer, now stale
    router.record_health_check("d0", healthy=False)
    assert not router.is_healthy("d0")

    short = make(model_list, health_check_staleness=30)
    short.record_health_check("d1", healthy=False)
    clock.advance(29)
    assert [d["model_info"]["id"] for d in short.healthy_deployments("m")] == ["d0"]
    clock.advance(1)
    assert len(short.healthy_deployments("m")) == 2
    for bad, error in [(-1, ValueError), (float("inf"), ValueError), ("1", TypeError)]:
        with pytest.raises(error, match="health_check_staleness"):
            make(model_list, health_check_staleness=bad)


def test_check_health_gets_each_url(make: Any) -> None:
    from .http_server import HttpTestServer

    model_list = group(3)
    model_list[2]["model_info"]["health_check_url"] = "http://127.0.0.1:9/refused"
    router = make(model_list)
    with HttpTestServer() as server:
        urls = {"d0": f"{server.url}/echo", "d1": f"{server.url}/status/503?times=1000"}
        assert router.check_health(urls, timeout=5) == {"d0": True, "d1": False}
        assert router.check_health(timeout=5) == {"d2": False}  # model_info.health_check_url
        assert [d["model_info"]["id"] for d in router.healthy_deployments("m")] == ["d0"]
        router.start_health_checks({"d1": f"{server.url}/echo"}, interval=0.01, timeout=5)
        with pytest.raises(RuntimeError):
            router.start_health_checks(urls, interval=1)
        deadline = time.monotonic() + 30
        while router.status("d1")["health_check"] is not True and time.monotonic() < deadline:
            time.sleep(0.01)
        router.stop_health_checks()
    assert router.status("d1")["health_check"] is True
    with pytest.raises(ValueError):
        router.start_health_checks(urls, interval=0)
    with pytest.raises(TypeError):
        router.check_health(["http://x"])


# ---- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model_list, error",
    [
        ([], ValueError),
        ("m", TypeError),
        ({"model_name": "m"}, TypeError),
        ([1], TypeError),
        ([{"litellm_params": {"model": "a"}}], ValueError),
        ([{"model_name": "m"}], ValueError),
        ([{"model_name": "m", "litellm_params": "a"}], ValueError),
        ([deployment("m", "a"), deployment("m", "a")], ValueError),
        ([deployment("m", "a", weight=float("nan"))], ValueError),
        ([deployment("m", "a", weight=-1)], ValueError),
        ([deployment("m", "a", weight=float("inf"))], ValueError),
        ([deployment("m", "a", weight="heavy")], TypeError),
        ([deployment("m", "a", rpm=float("nan"))], ValueError),
        ([deployment("m", "a", tpm=-5)], ValueError),
        ([deployment("m", "a", allowed_fails=-1)], ValueError),
    ],
)
def test_malformed_model_lists_are_refused(make: Any, model_list: Any, error: type) -> None:
    with pytest.raises(error):
        make(model_list)


def test_bad_arguments_are_refused(make: Any) -> None:
    router = make(group(2))
    with pytest.raises(ValueError, match="no deployment of model 'x'"):
        router.pick("x")
    with pytest.raises(TypeError):
        router.pick(None)
    with pytest.raises(ValueError):
        router.pick("m", input_tokens=-1)
    with pytest.raises(TypeError):
        router.pick("m", input_tokens=1.5)
    # Beyond what the native engine holds: the same ValueError on both engines.
    with pytest.raises(ValueError, match="2\\*\\*64"):
        router.pick("m", input_tokens=2**64)
    with pytest.raises(ValueError, match="2\\*\\*64"):
        router.record_success("d0", latency=0.1, tokens=2**64)
    for latency in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            router.record_success("d0", latency=latency)
    with pytest.raises(ValueError):
        router.record_success("d0", latency=0.1, time_to_first_token=-1)
    with pytest.raises(ValueError):
        router.record_failure("d0", retry_after=float("nan"))
    with pytest.raises(ValueError):
        router.record_success("nope", latency=0.1)
    with pytest.raises(TypeError):
        router.record_start(3.5)
    with pytest.raises(ValueError):
        make(group(2), strategy="fastest")
    with pytest.raises(ValueError):
        make(group(2), cooldown_time=-1)
    with pytest.raises(ValueError):
        make(group(2), allowed_fails=-1)
    with pytest.raises(TypeError):
        make(group(2), clock="now")
    # nothing was recorded by the refused calls
    assert router.status("d0")["total_successes"] == 0


# ---- native == fallback -------------------------------------------------------------------------

_operation = st.one_of(
    st.tuples(st.just("pick"), st.integers(0, 3000), st.booleans()),
    st.tuples(st.just("start"), st.integers(0, 4)),
    st.tuples(
        st.just("success"),
        st.integers(0, 4),
        st.floats(0, 30, allow_nan=False),
        st.integers(0, 2000),
        st.integers(0, 500),
        st.one_of(st.none(), st.floats(0, 5, allow_nan=False)),
    ),
    st.tuples(
        st.just("failure"),
        st.integers(0, 4),
        st.sampled_from([None, 400, 401, 402, 403, 404, 408, 429, 500, 503]),
        st.one_of(st.none(), st.floats(0, 120, allow_nan=False)),
        st.booleans(),
    ),
    st.tuples(st.just("advance"), st.floats(0, 40, allow_nan=False)),
    st.tuples(st.just("health"), st.integers(0, 4), st.booleans()),
)


@needs_native
@settings(max_examples=150)
@given(
    strategy=st.sampled_from(
        [
            "simple-shuffle",
            "least-busy",
            "latency-based-routing",
            "usage-based-routing",
            "cost-based",
        ]
    ),
    allowed_fails=st.one_of(st.none(), st.integers(0, 3)),
    circuit_breaker=st.booleans(),
    buffer=st.sampled_from([0.0, 0.2, 1.0]),
    seed=st.integers(0, 2**64 - 1),
    staleness=st.sampled_from([0.0, 30.0, 600.0]),
    limits=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 5)),
            st.one_of(st.none(), st.integers(0, 3000)),
            st.one_of(st.none(), st.floats(0, 10, allow_nan=False)),
        ),
        min_size=5,
        max_size=5,
    ),
    operations=st.lists(_operation, max_size=60),
)
def test_native_and_fallback_agree(
    strategy: str,
    allowed_fails: Any,
    circuit_breaker: bool,
    buffer: float,
    seed: int,
    staleness: float,
    limits: Any,
    operations: Any,
) -> None:
    model_list = []
    for i, (rpm, tpm, weight) in enumerate(limits):
        params = {
            k: v for k, v in (("rpm", rpm), ("tpm", tpm), ("weight", weight)) if v is not None
        }
        model_list.append(deployment("m" if i < 4 else "solo", f"d{i}", **params))
    specs = _Parsed(model_list).specs
    groups = 2
    options = dict(
        allowed_fails=allowed_fails,
        cooldown_time=5.0,
        circuit_breaker=circuit_breaker,
        lowest_latency_buffer=buffer,
        seed=seed,
        health_check_staleness=staleness,
    )
    engines = [
        _flags.native.Router(strategy, groups, specs, **options),
        fallback_routing.Router(strategy, groups, specs, **options),
    ]
    now = 1_000.0

    def both(method: str, *args: Any) -> Any:
        answers = []
        for engine in engines:
            try:
                answers.append(("ok", getattr(engine, method)(*args)))
            except NoDeploymentAvailable as exc:
                answers.append(("none", exc.retry_after))
        assert answers[0] == answers[1], (method, args)
        return answers[0]

    for op in operations:
        kind = op[0]
        if kind == "pick":
            both("pick", 0, op[1], op[2], now)
            both("pick", 1, op[1], op[2], now)
        elif kind == "start":
            both("record_start", op[1], now)
        elif kind == "success":
            both("record_success", op[1], now, op[2], op[4], op[3], op[5])
        elif kind == "failure":
            status = 500 if op[2] is None else op[2]
            both("record_failure", op[1], now, status, op[3], op[4], False, None)
        elif kind == "health":
            both("record_health_check", op[1], now, op[2])
        else:
            now += op[1]
        for index in range(5):
            assert engines[0].status(index, now) == engines[1].status(index, now)
        assert both("available", 0, now) == both("available", 0, now)


# ---- LiteLLM's own router as the reference ------------------------------------------------------

litellm = pytest.importorskip("litellm")


def _litellm_router(model_list: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return litellm.Router(model_list=model_list, **kwargs)


def _litellm_pick(router: Any, model: str) -> Any:
    async def pick() -> Any:
        return await router.async_get_available_deployment(
            model=model, messages=[{"role": "user", "content": "hi"}], request_kwargs={}
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return asyncio.run(pick())


def test_cost_based_picks_what_litellm_picks(make: Any) -> None:
    model_list = [
        deployment("m", "a", input_cost_per_token=3e-6, output_cost_per_token=1e-6),
        deployment("m", "b", input_cost_per_token=1e-6, output_cost_per_token=2e-6),
        deployment("m", "c"),
        deployment("m", "gpt", model="gpt-4o-mini"),
    ]
    model_list[3]["litellm_params"]["model"] = "gpt-4o-mini"
    reference = _litellm_router(model_list, routing_strategy="cost-based-routing")
    expected = _litellm_pick(reference, "m")["model_info"]["id"]
    assert make(model_list, strategy="cost-based-routing").pick("m")["model_info"]["id"] == expected


def test_shuffle_picks_only_what_litellm_can_pick(make: Any) -> None:
    model_list = [
        deployment("m", "a", weight=0),
        deployment("m", "b", weight=2),
        deployment("m", "c", weight=1),
    ]
    reference = _litellm_router(model_list, routing_strategy="simple-shuffle")
    theirs = {_litellm_pick(reference, "m")["model_info"]["id"] for _ in range(60)}
    ours = {make(model_list).pick("m")["model_info"]["id"] for _ in range(60)} | {
        make(model_list, seed=s).pick("m")["model_info"]["id"] for s in range(60)
    }
    assert ours == theirs == {"b", "c"}


def test_least_busy_picks_what_litellm_picks_on_an_idle_group(make: Any) -> None:
    model_list = group(3)
    reference = _litellm_router(model_list, routing_strategy="least-busy")
    expected = _litellm_pick(reference, "m")["model_info"]["id"]
    assert make(model_list, strategy="least-busy").pick("m")["model_info"]["id"] == expected


_EXCEPTIONS = {
    400: lambda: litellm.BadRequestError(message="bad", model="m", llm_provider="openai"),
    401: lambda: litellm.AuthenticationError(message="key", llm_provider="openai", model="m"),
    404: lambda: litellm.NotFoundError(message="gone", model="m", llm_provider="openai"),
    429: lambda: litellm.RateLimitError(message="slow", llm_provider="openai", model="m"),
    500: lambda: litellm.InternalServerError(message="oops", llm_provider="openai", model="m"),
    503: lambda: litellm.ServiceUnavailableError(message="down", llm_provider="openai", model="m"),
}


@pytest.mark.parametrize("allowed_fails", [None, 1])
@pytest.mark.parametrize("size", [1, 3])
@pytest.mark.parametrize(
    "statuses",
    [[401], [404], [400, 400, 400], [429], [500], [503, 503, 503], [500, 429], [400, 500, 500]],
)
def test_cooldowns_match_litellm(make: Any, allowed_fails: Any, size: int, statuses: Any) -> None:
    model_list = group(size)
    kwargs = {} if allowed_fails is None else {"allowed_fails": allowed_fails}
    reference = _litellm_router(model_list, **kwargs)
    health = reference._core_ctx.health()
    ours = make(model_list, **kwargs)

    async def record_theirs() -> List[bool]:
        # LiteLLM schedules its cooldown callback on the running loop
        return [health.record_failure("d0", _EXCEPTIONS[s](), s) for s in statuses]

    theirs = asyncio.run(record_theirs())
    assert [ours.record_failure("d0", exception=_EXCEPTIONS[s]()) for s in statuses] == theirs


def _their_picks(pick: Any, tries: int = 40) -> set:
    """Every deployment LiteLLM's strategy picks in ``tries`` tries (its ties are random)."""
    picks = set()
    for _ in range(tries):
        chosen = pick()
        picks.add(None if chosen is None else chosen["model_info"]["id"])
    return picks


@settings(max_examples=25)
@given(
    samples=st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from([0.1, 0.2, 0.25, 0.5, 1.0, 2.0])),
        max_size=12,
    ),
    buffer=st.sampled_from([0.0, 0.5]),
)
def test_latency_based_picks_what_litellm_can_pick(samples: Any, buffer: float) -> None:
    import datetime

    from litellm.caching.dual_cache import DualCache
    from litellm.router_strategy.lowest_latency import LowestLatencyLoggingHandler

    model_list = group(4)
    theirs = LowestLatencyLoggingHandler(
        router_cache=DualCache(), routing_args={"lowest_latency_buffer": buffer}
    )
    started = datetime.datetime.now()
    for index, latency in samples:
        kwargs = {
            "litellm_params": {"metadata": {"model_group": "m"}, "model_info": {"id": f"d{index}"}}
        }
        theirs.log_success_event(
            kwargs, None, started, started + datetime.timedelta(seconds=latency)
        )
    possible = _their_picks(lambda: theirs.get_available_deployments("m", model_list))
    for engine in _engines():
        ours = _router_on(engine, model_list, "latency-based-routing", lowest_latency_buffer=buffer)
        for index, latency in samples:
            ours.record_success(f"d{index}", latency=latency)
        ours_picks = {ours.pick("m")["model_info"]["id"] for _ in range(40)}
        assert ours_picks <= possible, (engine, ours_picks, possible)


def _engines() -> List[str]:
    return ["native", "fallback"] if _flags.native is not None else ["fallback"]


def _router_on(engine: str, model_list: Any, strategy: str, **kwargs: Any) -> Router:
    fast_litellm.configure("routing", rust=engine == "native")
    try:
        router = Router(model_list, strategy=strategy, clock=ManualClock(0.0), **kwargs)
    finally:
        fast_litellm.configure(reload_environment=True)
    assert router.implementation == engine
    return router


@settings(max_examples=25)
@given(
    usage=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 400)), max_size=10),
    starts=st.lists(st.integers(0, 3), max_size=6),
    limits=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(1, 4)), st.one_of(st.none(), st.integers(0, 800))
        ),
        min_size=4,
        max_size=4,
    ),
    input_tokens=st.sampled_from([0, 100]),
)
def test_usage_based_picks_what_litellm_can_pick(
    usage: Any, starts: Any, limits: Any, input_tokens: int
) -> None:
    import datetime

    from litellm.caching.dual_cache import DualCache
    from litellm.router_strategy.lowest_tpm_rpm_v2 import LowestTPMLoggingHandler_v2

    # LiteLLM keys its counters by the wall clock's minute: an example that straddles a minute
    # boundary sees its usage forgotten half way, so it is discarded (never a flaky failure).
    minute = datetime.datetime.now().strftime("%H-%M")
    model_list = [
        deployment("m", f"d{i}", **{k: v for k, v in (("rpm", rpm), ("tpm", tpm)) if v is not None})
        for i, (rpm, tpm) in enumerate(limits)
    ]

    async def handler() -> Any:
        # built in a running loop, which its periodic Redis sync task would otherwise outlive
        built = LowestTPMLoggingHandler_v2(router_cache=DualCache())
        built.cancel_sync_task()
        await asyncio.sleep(0)
        return built

    theirs = asyncio.run(handler())
    for index in starts:
        try:
            theirs.pre_call_check(model_list[index])
        except litellm.RateLimitError:
            pass  # over its rpm: LiteLLM refuses it before the call; it was not started
    for index, tokens in usage:
        theirs.log_success_event(
            {
                "standard_logging_object": {
                    "model_group": "m",
                    "model_id": f"d{index}",
                    "hidden_params": {"litellm_model_name": f"openai/d{index}"},
                    "total_tokens": tokens,
                }
            },
            None,
            None,
            None,
        )
    messages = [{"role": "user", "content": "x"}] if input_tokens else None
    possible = _their_picks(
        lambda: theirs.get_available_deployments("m", model_list, messages=messages)
    )
    assume(datetime.datetime.now().strftime("%H-%M") == minute)
    if input_tokens:
        # LiteLLM counts the messages' tokens itself; use its count
        input_tokens = litellm.token_counter(messages=messages)
    for engine in _engines():
        ours = _router_on(engine, model_list, "usage-based-routing")
        for index in starts:
            requests = ours.status(f"d{index}")["requests_this_minute"]
            rpm = limits[index][0]
            if rpm is None or requests < rpm:
                ours.record_start(f"d{index}")
        for index, tokens in usage:
            ours.record_success(f"d{index}", latency=0.1, tokens=tokens)
        try:
            ours_picks = {
                ours.pick("m", input_tokens=input_tokens)["model_info"]["id"] for _ in range(40)
            }
        except NoDeploymentAvailable:
            ours_picks = {None}
        assert ours_picks <= possible, (engine, ours_picks, possible)


def test_threads_share_a_router(make: Any) -> None:
    import threading

    router = make(group(4), strategy="least-busy")
    per_thread = 500

    def work() -> None:
        for _ in range(per_thread):
            chosen = router.pick("m")
            router.record_start(chosen)
            router.record_success(chosen, latency=0.01, tokens=1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = router.status()
    assert sum(s["total_successes"] for s in statuses.values()) == 4 * per_thread
    assert all(s["in_flight"] == 0 for s in statuses.values())
    assert sum(s["tokens_this_minute"] for s in statuses.values()) == 4 * per_thread
