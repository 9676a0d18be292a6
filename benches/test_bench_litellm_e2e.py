"""pytest-benchmark: LiteLLM end to end against the local mock server, unpatched vs patched
(cases from ``benches/litellm_e2e_cases.py``, which also reports CPU per request, req/s and
p50/p99, each state in a fresh process: ``python -m benches.litellm_e2e_cases``).

    pytest benches/test_bench_litellm_e2e.py --benchmark-only

One benchmark round is ``ROUND_REQUESTS`` requests, ``CONCURRENCY`` in flight, in this process
(the patch state is set per test and restored after it).
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("litellm")

from . import litellm_e2e_cases as cases  # noqa: E402
from .litellm_patch_cases import set_patched  # noqa: E402
from .mock_server import mock_server_fixture  # noqa: E402

ROUND_REQUESTS = 128

mock_server = mock_server_fixture(stream_events=cases.STREAM_EVENTS)


@pytest.fixture
def restore_patch_state():
    import fast_litellm

    was_patched = fast_litellm.patch_status()["patched"]
    yield
    set_patched(was_patched)


@pytest.fixture(scope="module")
def loop():
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.mark.parametrize("state", cases.STATES)
@pytest.mark.parametrize("case", cases.CASES)
def test_litellm_end_to_end(benchmark, mock_server, loop, restore_patch_state, case, state):
    benchmark.group = f"LiteLLM {case}, {ROUND_REQUESTS} requests, {cases.CONCURRENCY} in flight"
    cases.set_state(state)
    call = cases.make_call(case, mock_server.base_url)
    loop.run_until_complete(cases.timed_requests(call, cases.CONCURRENCY, cases.CONCURRENCY))

    def one_round():
        return loop.run_until_complete(
            cases.timed_requests(call, ROUND_REQUESTS, cases.CONCURRENCY)
        )

    latencies = benchmark.pedantic(one_round, rounds=3, iterations=1)
    assert len(latencies) == ROUND_REQUESTS


def test_worker_quick(mock_server):
    """The measuring code itself: two cases of one state in a fresh process, few requests."""
    measured = ["acompletion, streamed", "litellm.acompletion"]
    results = cases.run_worker(measured, "patched", mock_server.base_url, 16)
    assert [result.case for result in results] == measured
    for result in results:
        assert result.state == "patched"
        assert result.requests == 16 and result.cpu_seconds > 0
        assert result.p99_seconds >= result.p50_seconds > 0
        assert cases.format_result(result)
    assert sum("| patched |" in line for line in cases.markdown(results)) == 2
