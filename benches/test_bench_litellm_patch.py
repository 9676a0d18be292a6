"""pytest-benchmark: ``litellm.token_counter`` unpatched vs patched (cases from
``litellm_patch_cases``).

    pytest benches/test_bench_litellm_patch.py --benchmark-only
"""

from __future__ import annotations

import pytest

pytest.importorskip("litellm")

from .litellm_patch_cases import MODEL, cases, contenders, set_patched  # noqa: E402

CASES = cases()


@pytest.fixture
def restore_patch_state():
    import fast_litellm

    was_patched = fast_litellm.patch_status()["patched"]
    yield
    set_patched(was_patched)


@pytest.mark.parametrize("contender", ["unpatched", "patched"])
@pytest.mark.parametrize("case", list(CASES))
def test_litellm_token_counter(benchmark, restore_patch_state, case, contender):
    benchmark.group = f"litellm.token_counter {case}, {MODEL}"
    messages = CASES[case]
    patched, call = contenders(messages)[contender]
    set_patched(False)
    expected = call()
    set_patched(patched)
    assert benchmark(call) == expected
