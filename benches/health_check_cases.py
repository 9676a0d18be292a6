"""Background health checks: the CPU a round of checks costs this process, used by
``scripts/run_benchmarks.py``.

``HealthTracker.start_health_checks`` with 100 deployments, each with the ``/health`` URL of the
mock server (``benches/mock_server``, a separate process, so its own CPU is not counted), run
back to back (``interval`` 1 ms). The figure is this process's CPU time (user + system, from
``resource.getrusage``) over a run of rounds divided by the rounds completed:

- ``native``: a task of the native runtime (the checks of a round at once, no Python thread);
- ``Python thread``: the fallback's Python thread, the checks one after the other through
  ``fast_litellm.http.Client`` on its native engine (the HEALTH feature off, the others on);
- ``Python thread + httpx``: the same thread with every native path off (httpx underneath).

Wall time per round is printed too (not tabled: it is mostly the server's and the loopback's).
"""

from __future__ import annotations

import resource
import time
from typing import Any, Dict, List, Optional, Tuple

from .token_cases import Result, native_missing

DEPLOYMENTS = 100
CONTENDERS = ("native", "Python thread", "Python thread + httpx")
_DEADLINE = 300.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def model_list(size: int) -> List[Dict[str, Any]]:
    return [
        {
            "model_name": "gpt-4o-mini",
            "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "sk-bench"},
            "model_info": {"id": f"deployment-{i}"},
        }
        for i in range(size)
    ]


def skip_reason(contender: str) -> Optional[str]:
    if contender in ("native", "Python thread"):
        return native_missing()
    return None


def _wait_rounds(tracker: Any, rounds: int) -> None:
    deadline = time.monotonic() + _DEADLINE
    while tracker.health_checks_status()["rounds"] < rounds:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the health checks did not reach {rounds} rounds")
        time.sleep(0.005)


def cpu_per_round(contender: str, url: str, rounds: int) -> Tuple[float, float]:
    """(CPU seconds, wall seconds) per round of ``DEPLOYMENTS`` checks."""
    from fast_litellm import HealthTracker, configure

    if contender == "Python thread + httpx":
        configure(rust=False)
    else:
        configure("health", rust=contender == "native")
    try:
        tracker = HealthTracker(model_list(DEPLOYMENTS))
        urls = {f"deployment-{i}": f"{url}/health" for i in range(DEPLOYMENTS)}
        # The client (and its connections) is made on the first round: start measuring after it.
        tracker.start_health_checks(urls, interval=0.001, timeout=10)
        expected = "native" if contender == "native" else "thread"
        if tracker.health_checks_status()["engine"] != expected:
            raise RuntimeError(f"{contender}: the checks run on {tracker.health_checks_status()}")
        try:
            _wait_rounds(tracker, 2)
            first = tracker.health_checks_status()["rounds"]
            cpu, wall = _cpu_seconds(), time.perf_counter()
            _wait_rounds(tracker, first + rounds)
            done = tracker.health_checks_status()["rounds"] - first
            cpu, wall = _cpu_seconds() - cpu, time.perf_counter() - wall
        finally:
            tracker.stop_health_checks()
        if tracker.health_checks_status()["running"]:
            raise RuntimeError("the health checks did not stop")
        passed = tracker.status("deployment-0")["health_checks_passed"]
        if passed < rounds or tracker.status("deployment-0")["health_checks_failed"]:
            raise RuntimeError(f"{contender}: the mock server's /health did not answer 200")
    finally:
        configure(reload_environment=True)
    return cpu / done, wall / done


def run_cases(*, quick: bool = False, progress: Any = None) -> List[Result]:
    from .mock_server import MockServer, cargo_missing

    result = Result("health checks", f"one round, {DEPLOYMENTS} deployments (CPU time)", "-")
    reason = cargo_missing()
    if reason is not None:
        for contender in CONTENDERS:
            result.skipped[contender] = reason
        return [result]
    rounds = 3 if quick else 30
    with MockServer(threads=1) as server:
        for contender in CONTENDERS:
            why = skip_reason(contender)
            if why is not None:
                result.skipped[contender] = why
                continue
            cpu, wall = cpu_per_round(contender, server.url, rounds)
            result.seconds[contender] = cpu
            if progress is not None:
                progress(
                    f"health checks: {contender}: {cpu * 1e3:.2f} ms CPU, "
                    f"{wall * 1e3:.2f} ms wall per round of {DEPLOYMENTS}"
                )
    return [result]
