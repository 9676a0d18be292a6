"""pytest-benchmark: a round of concurrent chat POSTs (and of streams read to the end) of each HTTP
client contender against the local mock server (cases from ``benches/http_cases.py``, which also
measures CPU per request, req/s and p50/p99, each contender in its own interpreter:
``python -m benches.http_cases``).

    pytest benches/test_bench_http.py --benchmark-only

The rounds here share one process and one event loop, so they compare wall time only; the CPU
figures of BENCHMARKS.md come from ``http_cases.run_cases``.
"""

from __future__ import annotations

import asyncio

import pytest

from . import http_cases as cases
from .mock_server import mock_server_fixture

CONCURRENCY = 16
REQUESTS_PER_ROUND = 64

mock_server = mock_server_fixture(stream_events=cases.STREAM_EVENTS)


@pytest.fixture(scope="module")
def loop():
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def _skip_if_missing(contender: str) -> None:
    reason = cases.skipped_contenders().get(contender)
    if reason is not None:
        pytest.skip(reason)


def _bench_rounds(benchmark, loop, server_url: str, contender: str, stream: bool) -> None:
    opened = loop.run_until_complete(cases.open_contender(contender, server_url, stream=stream))
    try:
        # Connections open before the first measured round.
        loop.run_until_complete(cases.send_batch(opened.send, CONCURRENCY, CONCURRENCY))

        def one_round():
            return loop.run_until_complete(
                cases.send_batch(opened.send, REQUESTS_PER_ROUND, CONCURRENCY)
            )

        latencies = benchmark.pedantic(one_round, rounds=5, iterations=1)
    finally:
        loop.run_until_complete(opened.close())
    assert len(latencies) == REQUESTS_PER_ROUND


@pytest.mark.parametrize("contender", cases.CONTENDERS)
def test_post(benchmark, mock_server, loop, contender):
    benchmark.group = f"HTTP chat POST, {REQUESTS_PER_ROUND} requests, {CONCURRENCY} in flight"
    _skip_if_missing(contender)
    _bench_rounds(benchmark, loop, mock_server.url, contender, stream=False)


@pytest.mark.parametrize("contender", cases.STREAMING_CONTENDERS)
def test_stream(benchmark, mock_server, loop, contender):
    benchmark.group = (
        f"HTTP chat stream of {cases.STREAM_EVENTS} events, {REQUESTS_PER_ROUND} streams, "
        f"{CONCURRENCY} in flight"
    )
    _skip_if_missing(contender)
    _bench_rounds(benchmark, loop, mock_server.url, contender, stream=True)


def test_run_case_in_subprocesses(mock_server):
    """The measuring code itself: every contender in its own interpreter, figures and table."""
    contenders = tuple(c for c in cases.CONTENDERS if c not in cases.skipped_contenders())
    if cases.NATIVE not in contenders:
        pytest.skip(cases.skipped_contenders()[cases.NATIVE])
    case = cases.Case("smoke", contenders, 4, 40, 8, server_latency_ms=1)
    result = cases.run_case(case, mock_server.url, quick=True)
    assert list(result.seconds) == list(contenders)
    for name in contenders:
        assert result.seconds[name] > 0 and result.per_second[name] > 0
        # The server waits 1 ms before each answer (the canned-response transport never asks it).
        floor = 0.0 if name == cases.HTTPX_FLOOR else 0.001
        assert result.p99_seconds[name] >= result.p50_seconds[name] >= floor
    table = "\n".join(cases.markdown([result]))
    assert all(f"| smoke | {name} | 4 |" in table for name in contenders)
    assert cases.format_result(result)


def test_a_case_in_rounds_keeps_the_medians(mock_server):
    """A full run measures each contender once per round, taking turns, and reports the median
    with the range of the rounds; a quick run measures once."""
    case = cases.Case("rounds", (cases.LOOP_FLOOR,), 2, 20, 20, rounds=3)
    result = cases.run_case(case, mock_server.url)
    low, high = result.seconds_range[cases.LOOP_FLOOR]
    assert result.rounds == 3 and low <= result.seconds[cases.LOOP_FLOOR] <= high
    row = next(line for line in cases.markdown([result]) if line.startswith("| rounds |"))
    assert f"({low * 1e6:.1f}–{high * 1e6:.1f})" in row
    assert cases.run_case(case, mock_server.url, quick=True).rounds == 1
