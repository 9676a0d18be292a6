"""LiteLLM end to end, unpatched and with ``fast_litellm.patch()``: ``litellm.acompletion``,
``litellm.Router.acompletion`` (one deployment, simple-shuffle; and ``STRATEGY_DEPLOYMENTS``
deployments with latency-based routing and with usage-based routing v2) and a streamed
``acompletion`` against the local mock server (``benches/mock_server.py``), ``CONCURRENCY``
requests in flight.

    python -m benches.litellm_e2e_cases [--requests 2000] [--rounds 3]

Every (case, state) runs in an interpreter of its own, so neither the patch nor a cache warmed
by the other state carries over (a quick run, which only proves the code works, runs every case
of one state in one interpreter: most of a quick worker's time is importing litellm). After a
warm-up (clients, connections, LiteLLM's caches) the measured requests are timed in that
process: its CPU time (``time.process_time()``: every thread, LiteLLM's logging threads
included) per request, requests per second, and the p50/p99 latency of one request (a streamed
one until its last chunk). The server is one thread, so the client
has the other core of a 2-core machine to itself; it answers at once and serves far more than
LiteLLM asks of it. With ``rounds`` > 1 the states alternate and each figure is the median over
the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from .mock_server import MockServer, cargo_missing  # noqa: E402

__all__ = [
    "CASES",
    "CONCURRENCY",
    "E2EResult",
    "conversation",
    "format_result",
    "markdown",
    "run_cases",
    "skip_reason",
]

CONCURRENCY = 64
REQUESTS = 2_000
QUICK_REQUESTS = CONCURRENCY  # one wave: a quick run proves the code works, it measures nothing
# "patched": patch() with its default features (token counting, the request cost, routing);
# "patched+http": LiteLLM's async HTTP through our transport as well (opt-in, as with
# FAST_LITELLM_PATCH_HTTP=1).
STATES = ("unpatched", "patched", "patched+http")
CASES = (
    "litellm.acompletion",
    "Router.acompletion",
    "Router.acompletion, latency-based",
    "acompletion, streamed",
)
# The stateful-strategy cases: one model group of this many deployments (the same server).
STRATEGY_DEPLOYMENTS = 10
_STRATEGIES = {
    "Router.acompletion, latency-based": "latency-based-routing",
}
MODEL = "gpt-4o"
# Content events per streamed answer (plus LiteLLM's own closing chunk).
STREAM_EVENTS = 16
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_WORKER_TIMEOUT = 600.0


@dataclass
class E2EResult:
    case: str
    state: str
    requests: int
    cpu_seconds: float
    wall_seconds: float
    p50_seconds: float
    p99_seconds: float

    @property
    def requests_per_cpu_second(self) -> float:
        return self.requests / self.cpu_seconds if self.cpu_seconds > 0 else float("inf")

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.wall_seconds if self.wall_seconds > 0 else float("inf")


def skip_reason() -> Optional[str]:
    """Why the cases cannot run here, or None."""
    import importlib.util

    if importlib.util.find_spec("litellm") is None:
        return "litellm is not installed (pip install litellm)"
    return cargo_missing()


def conversation(index: int) -> List[Dict[str, Any]]:
    """A short chat whose last message's length (and so the server's answer) varies by index."""
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": f"Question {index}: " + "what is the capital? " * (index % 7)},
    ]


def make_call(case: str, base_url: str) -> Callable[[int], Awaitable[Any]]:
    """One request of ``case``, as a LiteLLM user makes it."""
    import litellm

    common = {"api_base": base_url, "api_key": "sk-test"}
    if case == "litellm.acompletion":
        return lambda index: litellm.acompletion(
            model=f"openai/{MODEL}", messages=conversation(index), **common
        )
    if case == "Router.acompletion":
        router = litellm.Router(
            model_list=[
                {"model_name": MODEL, "litellm_params": {"model": f"openai/{MODEL}", **common}}
            ]
        )
        return lambda index: router.acompletion(model=MODEL, messages=conversation(index))
    if case in _STRATEGIES:
        router = litellm.Router(
            model_list=[
                {
                    "model_name": MODEL,
                    "litellm_params": {"model": f"openai/{MODEL}", "rpm": 100_000, **common},
                    "model_info": {"id": f"deployment-{i}"},
                }
                for i in range(STRATEGY_DEPLOYMENTS)
            ],
            routing_strategy=_STRATEGIES[case],
        )
        return lambda index: router.acompletion(model=MODEL, messages=conversation(index))
    if case == "acompletion, streamed":

        async def streamed(index: int) -> List[Any]:
            stream = await litellm.acompletion(
                model=f"openai/{MODEL}", messages=conversation(index), stream=True, **common
            )
            return [chunk async for chunk in stream]

        return streamed
    raise ValueError(f"unknown case {case!r}; expected one of {CASES}")


async def timed_requests(
    call: Callable[[int], Awaitable[Any]], requests: int, concurrency: int
) -> List[float]:
    """Seconds per request of ``requests`` calls, at most ``concurrency`` in flight."""
    slots = asyncio.Semaphore(concurrency)
    clock = time.perf_counter
    latencies: List[float] = []

    async def one(index: int) -> None:
        async with slots:
            started = clock()
            await call(index)
            latencies.append(clock() - started)

    await asyncio.gather(*(one(i) for i in range(requests)))
    return latencies


def set_state(state: str) -> None:
    """Runs in the worker interpreter: patches (or not) as ``state`` says."""
    import fast_litellm

    if state == "patched":
        fast_litellm.patch()
    elif state == "patched+http":
        from fast_litellm.litellm_patch import default_features

        fast_litellm.patch(features=[*default_features(), "http"])
    elif state == "unpatched":
        fast_litellm.unpatch()
    else:
        raise ValueError(f"unknown state {state!r}; expected one of {STATES}")


def measure(case: str, state: str, base_url: str, requests: int) -> E2EResult:
    """Runs in the worker interpreter, after ``set_state(state)``: warms up, then measures."""
    if requests < 2:
        raise ValueError(f"requests must be at least 2 to have percentiles, not {requests}")

    async def main() -> E2EResult:
        call = make_call(case, base_url)
        await timed_requests(call, max(CONCURRENCY, requests // 10), CONCURRENCY)
        cpu, wall = time.process_time(), time.perf_counter()
        latencies = await timed_requests(call, requests, CONCURRENCY)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        return E2EResult(case, state, requests, cpu, wall, cuts[49], cuts[98])

    return asyncio.run(main())


def run_worker(cases: List[str], state: str, base_url: str, requests: int) -> List[E2EResult]:
    """``measure`` of each case in turn, in one fresh interpreter in ``state``; its results are
    the lines it prints that start with ``RESULT``."""
    env = dict(os.environ)
    env.pop("FAST_LITELLM_AUTO_PATCH", None)  # the state is the worker's argument alone
    command = [sys.executable, "-m", "benches.litellm_e2e_cases", "--requests", str(requests),
               "--worker", state, base_url, *cases]  # fmt: skip
    worker = subprocess.run(
        command, cwd=_ROOT, env=env, capture_output=True, text=True, timeout=_WORKER_TIMEOUT
    )
    found = [
        E2EResult(**json.loads(line[len("RESULT ") :]))
        for line in worker.stdout.splitlines()
        if line.startswith("RESULT ")
    ]
    if worker.returncode != 0 or [result.case for result in found] != cases:
        raise RuntimeError(
            f"the {state} worker for {cases} failed ({worker.returncode}):\n{worker.stderr[-4000:]}"
        )
    return found


def run_cases(
    quick: bool = False,
    rounds: Optional[int] = None,
    requests: Optional[int] = None,
    cases: Optional[List[str]] = None,
) -> List[E2EResult]:
    """Every case in both states against one server; ``quick`` sends few requests in one round
    (a smoke run that only proves the code works). Empty when ``skip_reason()`` says why."""
    if skip_reason() is not None:
        return []
    requests = requests or (QUICK_REQUESTS if quick else REQUESTS)
    rounds = rounds or (1 if quick else 3)
    results = []
    cases = list(cases or CASES)
    with MockServer(stream_events=STREAM_EVENTS) as server:
        if quick:
            for state in STATES:
                results += run_worker(cases, state, server.base_url, requests)
            # Case by case, as a full run lists them.
            return sorted(results, key=lambda r: (cases.index(r.case), STATES.index(r.state)))
        for case in cases:
            runs: Dict[str, List[E2EResult]] = {state: [] for state in STATES}
            for round_index in range(rounds):
                # Alternating which state goes first spreads any drift of the machine over both.
                order = STATES if round_index % 2 == 0 else STATES[::-1]
                for state in order:
                    runs[state] += run_worker([case], state, server.base_url, requests)
            for state in STATES:
                results.append(_median(runs[state]))
    return results


def _median(runs: List[E2EResult]) -> E2EResult:
    def middle(name: str) -> float:
        return statistics.median(getattr(run, name) for run in runs)

    return E2EResult(
        runs[0].case,
        runs[0].state,
        runs[0].requests,
        middle("cpu_seconds"),
        middle("wall_seconds"),
        middle("p50_seconds"),
        middle("p99_seconds"),
    )


def patched_ratio(results: List[E2EResult], result: E2EResult) -> Optional[float]:
    """Requests per CPU-second of ``result`` over those of the unpatched run of its case."""
    for other in results:
        if other.case == result.case and other.state == "unpatched":
            return result.requests_per_cpu_second / other.requests_per_cpu_second
    return None


def format_result(result: E2EResult) -> str:
    return (
        f"{result.case:<24} {result.state:<12} {result.requests_per_cpu_second:>8,.0f} req/CPU-s "
        f"({result.cpu_seconds / result.requests * 1e6:7.0f} µs CPU/req)  "
        f"{result.requests_per_second:>7,.0f} req/s   p50 {result.p50_seconds * 1e3:6.2f} ms   "
        f"p99 {result.p99_seconds * 1e3:6.2f} ms"
    )


def markdown(results: List[E2EResult]) -> List[str]:
    """The BENCHMARKS.md section: requests per CPU-second, latency, and patched vs unpatched."""
    lines = [
        "## LiteLLM end to end",
        "",
        f"LiteLLM against the local mock server (`benches/mock_server/`, answers at once), "
        f"{CONCURRENCY} requests in flight, {results[0].requests if results else REQUESTS:,} "
        "measured requests after a warm-up, each state in a fresh process; CPU is the client "
        "process's (every thread). Streamed: "
        f"{STREAM_EVENTS} content events per answer, read to the end. "
        "See `benches/litellm_e2e_cases.py`.",
        "",
    ]
    if not results:
        return lines + [f"Not measured: {skip_reason() or 'no results'}.", ""]
    lines += [
        "| case | state | requests/CPU-s | CPU µs/request | req/s | p50 ms | p99 ms "
        "| patched vs unpatched |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = patched_ratio(results, r) if r.state != "unpatched" else None
        lines.append(
            f"| {r.case} | {r.state} | {r.requests_per_cpu_second:,.0f} | "
            f"{r.cpu_seconds / r.requests * 1e6:,.0f} | {r.requests_per_second:,.0f} | "
            f"{r.p50_seconds * 1e3:.2f} | {r.p99_seconds * 1e3:.2f} | "
            f"{f'**{ratio:.2f}x**' if ratio is not None else ''} |"
        )
    return lines + [""]


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--case", choices=CASES, action="append", help="only these cases")
    parser.add_argument(
        "--worker", nargs="+", metavar="STATE BASE_URL CASE", help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.worker:
        state, base_url, *cases = args.worker
        set_state(state)
        for case in cases:
            result = measure(case, state, base_url, args.requests)
            print("RESULT " + json.dumps(asdict(result)), flush=True)
        return
    reason = skip_reason()
    if reason is not None:
        sys.exit(f"skipped: {reason}")
    results = run_cases(rounds=args.rounds, requests=args.requests, cases=args.case)
    for result in results:
        ratio = patched_ratio(results, result) if result.state != "unpatched" else None
        print(format_result(result) + (f"  ({ratio:.2f}x)" if ratio else ""))


if __name__ == "__main__":
    main()
