"""pytest-benchmark comparisons of request cost: native vs fallback vs LiteLLM, on the cases of
``benches/cost_cases.py`` (the same ones ``scripts/run_benchmarks.py`` times).

    pytest benches/test_bench_cost.py --benchmark-only
"""

from __future__ import annotations

import pytest

import fast_litellm
from fast_litellm import _flags

from . import cost_cases as cases

pytestmark = pytest.mark.skipif(not cases.available(), reason="litellm is not installed")


@pytest.mark.parametrize("contender", ["native", "fallback", "litellm"])
@pytest.mark.parametrize("case", [c[0] for c in cases.CASES])
def test_request_cost(benchmark, case, contender):
    benchmark.group = f"request cost: {case}"
    if contender == "native" and _flags.native is None:
        pytest.skip("native module unavailable")
    contenders = cases.calls(case)
    want = contenders["litellm"]()
    if contender == "litellm":
        assert benchmark(contenders["litellm"]) == want
        return
    _flags.configure("cost", rust=contender == "native")
    if cases.needs_patch(case):  # LiteLLM's own step, with LiteLLM patched
        fast_litellm.patch(features=["cost"])
    try:
        contenders["ours"]()  # the first response of a model is priced by LiteLLM
        assert benchmark(contenders["ours"]) == want
    finally:
        fast_litellm.unpatch()
        _flags.configure("cost", rust=True)
