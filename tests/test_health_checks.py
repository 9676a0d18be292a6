"""Active health checks of a ``HealthTracker`` (``check_health``, ``start_health_checks``) against
a real HTTP server on 127.0.0.1: what each kind of answer records, both engines recording the
same state for the same answers (a task of the native runtime, a Python thread on the fallback),
an endpoint that hangs or answers junk holding back only its own deployment, the tracker's
injected clock, stopping, garbage collection, interpreter exit and fork.

Waiting is on conditions with a generous deadline, never on a length of time.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
import weakref
from typing import Any, Callable, Dict, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fast_litellm
from fast_litellm import HealthTracker, ManualClock, Router, _flags

from . import http_server as http_servers
from .http_server import HttpTestServer

http_server = http_servers.http_server

needs_native = pytest.mark.skipif(_flags.native is None, reason="native module unavailable")

DEADLINE = 30.0
# A port nothing listens on (the discard service is not run on test machines).
REFUSED = "http://127.0.0.1:9/health"
# Fields that measure the wall clock (the rest must be equal on both engines).
TIMED = ("health_check_latency",)


def model_list(n: int) -> List[Dict[str, Any]]:
    return [
        {
            "model_name": "m",
            "litellm_params": {"model": f"openai/d{i}", "api_key": "sk-test"},
            "model_info": {"id": f"d{i}"},
        }
        for i in range(n)
    ]


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def untimed(status: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in status.items() if k not in TIMED}


@pytest.fixture
def clock() -> Any:
    return ManualClock(1000.0)


@pytest.fixture
def tracker(path: str, clock: Any) -> Any:
    def build(n: int, **kwargs: Any) -> HealthTracker:
        kwargs.setdefault("clock", clock)
        built = HealthTracker(model_list(n), **kwargs)
        assert built.implementation == path
        return built

    return build


def status_url(server: HttpTestServer, code: int) -> str:
    # `times` large: every request gets `code`.
    return f"{server.url}/status/{code}?id={code}&times=1000000000"


# ---- what a round records -------------------------------------------------------------------------


def test_a_round_records_each_kind_of_answer(
    tracker: Any, clock: Any, http_server: HttpTestServer
) -> None:
    health = tracker(5)
    urls = {
        "d0": f"{http_server.url}/echo",
        "d1": status_url(http_server, 503),
        "d2": f"{http_server.url}/garbage",
        "d3": REFUSED,
        "d4": status_url(http_server, 302),
    }
    answers = health.check_health(urls, timeout=10)
    assert answers == {"d0": True, "d1": False, "d2": False, "d3": False, "d4": True}
    assert list(answers) == list(urls)
    status = health.status()
    assert {d: (s["health_check"], s["health_check_status_code"]) for d, s in status.items()} == {
        "d0": (True, 200),
        "d1": (False, 503),
        "d2": (False, None),
        "d3": (False, None),
        "d4": (True, 302),
    }
    for s in status.values():
        assert s["health_check_latency"] >= 0.0
        assert s["health_check_age"] == 0.0
        assert s["consecutive_health_check_failures"] == (0 if s["health_check"] else 1)
        # a check is not a request
        assert (s["successes"], s["failures"], s["total_successes"], s["total_failures"]) == (
            0,
            0,
            0,
            0,
        )
    assert [d["model_info"]["id"] for d in health.healthy_deployments("m")] == ["d0", "d4"]
    clock.advance(7)
    health.check_health({"d1": status_url(http_server, 503)}, timeout=10)
    d1 = health.status("d1")
    assert (d1["health_checks_failed"], d1["consecutive_health_check_failures"]) == (2, 2)
    assert (d1["health_check_age"], health.status("d0")["health_check_age"]) == (0.0, 7.0)


def test_a_hung_endpoint_times_out_and_holds_back_only_its_deployment(
    tracker: Any, http_server: HttpTestServer
) -> None:
    health = tracker(2)
    hold = http_server.hold("stuck")
    answers = health.check_health(
        {"d0": f"{http_server.url}{hold}", "d1": f"{http_server.url}/echo"}, timeout=0.2
    )
    http_server.release("stuck")
    assert answers == {"d0": False, "d1": True}
    assert health.status("d0")["health_check_status_code"] is None
    assert [d["model_info"]["id"] for d in health.healthy_deployments("m")] == ["d1"]


def test_an_answer_that_trickles_in_past_the_timeout_is_unhealthy(
    tracker: Any, http_server: HttpTestServer
) -> None:
    # Each byte comes well within the read limit; the whole answer does not come within the
    # check's timeout. Every path (the native runtime, the Python thread) says unhealthy.
    health = tracker(2)
    answers = health.check_health(
        {"d0": f"{http_server.url}/drip?bytes=40&every=0.05", "d1": f"{http_server.url}/echo"},
        timeout=0.5,
    )
    assert answers == {"d0": False, "d1": True}
    assert health.status("d0")["health_check_status_code"] is None


def test_record_health_check_takes_a_status_and_latency(tracker: Any) -> None:
    health = tracker(1)
    health.record_health_check("d0", healthy=False, status_code=500, latency=0.25)
    s = health.status("d0")
    assert (s["health_check"], s["health_check_status_code"], s["health_check_latency"]) == (
        False,
        500,
        0.25,
    )
    with pytest.raises(TypeError):
        health.record_health_check("d0", healthy=True, status_code="200")
    with pytest.raises(ValueError):
        health.record_health_check("d0", healthy=True, status_code=-1)
    with pytest.raises(ValueError):
        health.record_health_check("d0", healthy=True, latency=float("nan"))
    with pytest.raises(ValueError):
        health.check_health({"d0": REFUSED}, timeout=0)


# ---- both engines, same state ---------------------------------------------------------------------

_ANSWERS = st.sampled_from(["ok", "garbage", "refused", 201, 301, 307, 400, 401, 404, 429, 500])


def _url(server: HttpTestServer, answer: Any) -> str:
    if answer == "ok":
        return f"{server.url}/echo"
    if answer == "garbage":
        return f"{server.url}/garbage"
    if answer == "refused":
        return REFUSED
    return status_url(server, answer)


@needs_native
@settings(max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "200")) // 10 or 1)
@given(
    rounds=st.lists(
        st.tuples(st.lists(_ANSWERS, min_size=3, max_size=3), st.floats(0, 10)),
        min_size=1,
        max_size=4,
    ),
    circuit_breaker=st.booleans(),
)
def test_native_and_fallback_record_the_same_state(
    parity_server: HttpTestServer, rounds: Any, circuit_breaker: bool
) -> None:
    clock = ManualClock(500.0)
    trackers = []
    for native in (True, False):
        fast_litellm.configure(rust=native, rollout=100)
        try:
            built = HealthTracker(model_list(3), clock=clock, circuit_breaker=circuit_breaker)
        finally:
            fast_litellm.configure(reload_environment=True)
        assert built.implementation == ("native" if native else "fallback")
        # a cooldown on d0 that the checks must not end (and a half-open circuit they may close)
        built.record_failure("d0", status_code=401)
        trackers.append(built)
    for answers, step in rounds:
        urls = {f"d{i}": _url(parity_server, a) for i, a in enumerate(answers)}
        results = [t.check_health(urls, timeout=10) for t in trackers]
        assert results[0] == results[1]
        statuses = [{d: untimed(s) for d, s in t.status().items()} for t in trackers]
        assert statuses[0] == statuses[1]
        for t in trackers:
            t.record_health_check("d1", healthy=True)
        clock.advance(step)


@pytest.fixture(scope="module")
def parity_server() -> Any:
    with HttpTestServer() as server:
        yield server


# ---- in the background ----------------------------------------------------------------------------


def test_background_checks_run_rounds_until_stopped(
    path: str, tracker: Any, http_server: HttpTestServer
) -> None:
    health = tracker(2)
    assert health.health_checks_status() == {
        "running": False,
        "engine": None,
        "rounds": 0,
        "interval": None,
        "timeout": None,
        "deployments": [],
        "stopped_by_fork": False,
    }
    urls = {"d0": f"{http_server.url}/echo", "d1": status_url(http_server, 500)}
    health.start_health_checks(urls, interval=0.001, timeout=10)
    try:
        with pytest.raises(RuntimeError):
            health.start_health_checks(urls, interval=1)
        wait_until(lambda: health.health_checks_status()["rounds"] >= 3, "three rounds")
        status = health.health_checks_status()
        assert status["running"] and status["engine"] == (
            "native" if path == "native" else "thread"
        )
        assert (status["interval"], status["timeout"], status["deployments"]) == (
            0.001,
            10.0,
            ["d0", "d1"],
        )
        section = fast_litellm.health_check()["health_checks"]
        assert [(e["status"], e["engine"], e["unhealthy"]) for e in section] == [
            ("ok", status["engine"], ["d1"])
        ]
    finally:
        health.stop_health_checks()
    assert health.health_checks_status()["running"] is False
    assert "health_checks" not in fast_litellm.health_check()
    d0, d1 = health.status("d0"), health.status("d1")
    assert d0["health_checks_passed"] >= 3 and d1["health_checks_failed"] >= 3
    assert d1["health_check_status_code"] == 500
    passed = d0["health_checks_passed"]
    # stopped means stopped: a check round by hand is the only new answer
    health.check_health({"d0": f"{http_server.url}/echo"}, timeout=10)
    assert health.status("d0")["health_checks_passed"] == passed + 1
    health.start_health_checks(urls, interval=30, timeout=10)  # may start again
    health.stop_health_checks()


def test_a_hung_endpoint_never_blocks_picks(
    path: str, clock: Any, http_server: HttpTestServer
) -> None:
    router = Router(model_list(2), clock=clock, seed=1)
    assert router.implementation == path
    hold = http_server.hold("stuck")
    router.start_health_checks(
        {"d0": f"{http_server.url}{hold}", "d1": f"{http_server.url}/echo"},
        interval=0.001,
        timeout=0.3,
    )
    try:
        assert http_server.wait_arrived("stuck")
        # its check is in flight: d0 is still available, and picks go on
        assert {router.pick("m")["model_info"]["id"] for _ in range(200)} <= {"d0", "d1"}
        wait_until(lambda: router.status("d0")["health_check"] is False, "d0's check to time out")
        assert all(router.pick("m")["model_info"]["id"] == "d1" for _ in range(100))
        wait_until(lambda: router.status("d1")["health_checks_passed"] >= 1, "d1's check")
    finally:
        router.stop_health_checks()
        http_server.release("stuck")


def test_the_checks_record_at_the_trackers_clock(
    tracker: Any, clock: Any, http_server: HttpTestServer
) -> None:
    health = tracker(2, circuit_breaker=True)
    health.record_failure("d0", status_code=401)
    health.start_health_checks({"d0": f"{http_server.url}/echo"}, interval=0.001, timeout=10)
    try:
        wait_until(lambda: health.status("d0")["health_checks_passed"] >= 2, "two checks")
        # a passed check never ends a cooldown ...
        assert health.status("d0")["state"] == "cooldown"
        clock.advance(5)
        seen = health.status("d0")["health_checks_passed"]
        # ... but closes the half-open circuit once the cooldown is over on the tracker's clock
        # (the second check recorded from now on read the clock after it moved)
        wait_until(lambda: health.status("d0")["health_checks_passed"] >= seen + 2, "two more")
        assert health.status("d0")["state"] == "healthy"
    finally:
        health.stop_health_checks()
    clock.advance(2.5)
    assert health.status("d0")["health_check_age"] == 2.5


@needs_native
def test_a_clock_the_native_side_cannot_read_keeps_the_checks_on_a_thread(
    http_server: HttpTestServer,
) -> None:
    fast_litellm.configure(rust=True, rollout=100)
    try:
        now = [1000.0]
        health = HealthTracker(model_list(1), clock=lambda: now[0])
        monotonic = HealthTracker(model_list(1))
    finally:
        fast_litellm.configure(reload_environment=True)
    assert health.implementation == monotonic.implementation == "native"
    for built, engine in ((health, "thread"), (monotonic, "native")):
        built.start_health_checks({"d0": f"{http_server.url}/echo"}, interval=0.001, timeout=10)
        try:
            assert built.health_checks_status()["engine"] == engine
            wait_until(lambda b=built: b.status("d0")["health_check"] is True, "a check")
        finally:
            built.stop_health_checks()
    now[0] += 4
    assert health.status("d0")["health_check_age"] == 4.0
    assert 0.0 <= monotonic.status("d0")["health_check_age"] < 3600


@needs_native
def test_a_tracker_with_native_checks_running_is_garbage_collected(
    http_server: HttpTestServer,
) -> None:
    fast_litellm.configure(rust=True, rollout=100)
    try:
        health = HealthTracker(model_list(1))
    finally:
        fast_litellm.configure(reload_environment=True)
    health.start_health_checks({"d0": f"{http_server.url}/echo"}, interval=0.001, timeout=10)
    wait_until(lambda h=health: h.health_checks_status()["rounds"] >= 1, "a round")
    ref = weakref.ref(health)
    del health
    gc.collect()
    assert ref() is None
    assert "health_checks" not in fast_litellm.health_check()


def test_a_tracker_with_thread_checks_running_is_garbage_collected(
    http_server: HttpTestServer,
) -> None:
    # a clock the native side cannot read keeps the checks on a Python thread on both engines
    health = HealthTracker(model_list(1), clock=lambda: time.monotonic())
    health.start_health_checks({"d0": f"{http_server.url}/echo"}, interval=3600, timeout=10)
    assert health.health_checks_status()["engine"] == "thread"
    thread = health._health_thread[0]
    wait_until(lambda h=health: h.health_checks_status()["rounds"] >= 1, "a round")
    ref = weakref.ref(health)
    del health
    gc.collect()
    assert ref() is None
    thread.join(30)  # the collection ends the thread's wait between rounds
    assert not thread.is_alive()
    assert "health_checks" not in fast_litellm.health_check()


def test_stopping_thread_checks_leaves_nothing_behind(http_server: HttpTestServer) -> None:
    # Each start arms the end of its thread at the tracker's collection; a stop disarms it, so
    # a tracker started and stopped many times holds no more than one.
    health = HealthTracker(model_list(1), clock=lambda: time.monotonic())
    armed = len(weakref.finalize._registry)  # type: ignore[attr-defined]
    for _ in range(20):
        health.start_health_checks({"d0": f"{http_server.url}/echo"}, interval=3600, timeout=10)
        health.stop_health_checks()
    assert len(weakref.finalize._registry) == armed  # type: ignore[attr-defined]


# ---- interpreter exit and fork --------------------------------------------------------------------

# Starts checks of endpoints that answer, hang and refuse, lets them run, and exits without
# stopping them.
_EXIT_WITH_CHECKS_RUNNING = """
import sys, time
import fast_litellm

url = sys.argv[1]
model_list = [
    {"model_name": "m", "litellm_params": {"model": f"openai/d{i}"}, "model_info": {"id": f"d{i}"}}
    for i in range(30)
]
tracker = fast_litellm.HealthTracker(model_list)
assert tracker.implementation == "native"
urls = {f"d{i}": (f"{url}/echo", f"{url}/slow?seconds=30", "http://127.0.0.1:9/")[i % 3]
        for i in range(30)}
tracker.start_health_checks(urls, interval=0.001, timeout=20)
deadline = time.monotonic() + 30
while tracker.status("d0")["health_check"] is None and time.monotonic() < deadline:
    time.sleep(0.001)
assert tracker.health_checks_status()["running"]
"""


@needs_native
def test_exit_with_native_checks_running_is_silent(http_server: HttpTestServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAST_LITELLM_")}
    for run in range(6):
        done = subprocess.run(
            [sys.executable, "-c", _EXIT_WITH_CHECKS_RUNNING, http_server.url],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (done.returncode, done.stderr) == (0, ""), f"run {run}: {done.stderr}"


_INTERRUPTED_ROUND = """
import sys
import fast_litellm

model_list = [
    {"model_name": "m", "litellm_params": {"model": f"openai/d{i}"}, "model_info": {"id": f"d{i}"}}
    for i in range(2)
]
tracker = fast_litellm.HealthTracker(model_list)
assert tracker.implementation == "native"
print("ready", flush=True)
try:
    tracker.check_health({"d0": sys.argv[1]}, timeout=60)
except KeyboardInterrupt:
    # Stopped while its check waited: nothing was recorded for it.
    assert tracker.status("d0")["health_check"] is None, tracker.status("d0")
    print("interrupted", flush=True)
"""


@needs_native
@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="POSIX signals")
def test_ctrl_c_stops_a_native_round_while_its_checks_wait(http_server: HttpTestServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAST_LITELLM_")}
    held = http_server.hold("interrupted-round")
    child = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED_ROUND, http_server.url + held],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert http_server.wait_arrived("interrupted-round")
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        http_server.release("interrupted-round")
        if child.poll() is None:
            child.kill()
            child.wait()
    assert out.split() == ["ready", "interrupted"], (out, err)


_FORK_WHILE_CHECKING = os.path.join(os.path.dirname(__file__), "health_checks_fork.py")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork()")
@pytest.mark.parametrize("engine", ["native", "thread"])
def test_a_child_forked_while_checks_run_has_them_stopped_and_can_restart_them(
    engine: str, http_server: HttpTestServer
) -> None:
    if engine == "native" and _flags.native is None:
        pytest.skip("native module unavailable")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAST_LITELLM_")}
    if engine == "thread":
        env["FAST_LITELLM_DISABLE_RUST"] = "1"
    done = subprocess.run(
        [sys.executable, _FORK_WHILE_CHECKING, http_server.url, engine],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stdout + done.stderr
    assert done.stdout.strip().endswith("children ok"), done.stdout
