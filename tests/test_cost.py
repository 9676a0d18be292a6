"""Request cost: ``fast_litellm.completion_cost`` / ``cost_per_token`` equal the installed
LiteLLM's, float for float (``==``), on the native table and on the fallback, for every model in
LiteLLM's cost map; prices registered at run time are seen; a patched LiteLLM logs the same
``response_cost`` as an unpatched one.
"""

from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

litellm = pytest.importorskip("litellm")

import fast_litellm  # noqa: E402
from fast_litellm import _flags, cost  # noqa: E402
from fast_litellm._fallback import cost as fallback_cost  # noqa: E402

native = _flags.native
needs_native = pytest.mark.skipif(native is None, reason="native module unavailable")

# Providers whose name resolution in LiteLLM logs in to a remote service (device-code sign-in,
# retried with waits): every call for them is LiteLLM's own anyway, and would need the network.
NETWORK_PROVIDERS = frozenset({"github_copilot", "chatgpt"})
ALL_MODELS = sorted(
    name
    for name, entry in litellm.model_cost.items()
    if entry.get("litellm_provider") not in NETWORK_PROVIDERS
)
# Models priced on the table, where a difference would be ours.
TABLE_MODELS = [
    name
    for name in ALL_MODELS
    if (entry := litellm.model_cost[name]).get("mode") in ("chat", "completion", None)
    and entry.get("litellm_provider") not in cost._OWN_CALCULATOR
]


@pytest.fixture(params=["native", "fallback"])
def path(request: Any) -> Iterator[str]:
    if request.param == "native" and native is None:
        pytest.skip("native module unavailable")
    _flags.configure("cost", rust=request.param == "native")
    yield request.param
    _flags.configure("cost", rust=True)


def outcome(call: Any) -> Any:
    """A result, or the class and message of the exception raised."""
    try:
        return call()
    except Exception as exc:
        return (type(exc), str(exc))


def usage_of(
    prompt: int,
    completion: int,
    cached: Optional[int],
    written: Optional[int],
    reasoning: Optional[int],
    audio_in: Optional[int],
    audio_out: Optional[int],
) -> Any:
    prompt_details: Dict[str, int] = {}
    if cached is not None:
        prompt_details["cached_tokens"] = cached
    if written is not None:
        prompt_details["cache_creation_tokens"] = written
    if audio_in is not None:
        prompt_details["audio_tokens"] = audio_in
    completion_details: Dict[str, int] = {}
    if reasoning is not None:
        completion_details["reasoning_tokens"] = reasoning
    if audio_out is not None:
        completion_details["audio_tokens"] = audio_out
    return litellm.Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=prompt_details or None,
        completion_tokens_details=completion_details or None,
    )


counts = st.one_of(st.integers(0, 3), st.integers(0, 5_000), st.integers(100_000, 1_200_000))
optional_counts = st.one_of(st.none(), st.integers(0, 3_000))
usages = st.builds(
    usage_of,
    counts,
    st.integers(0, 20_000),
    optional_counts,
    optional_counts,
    optional_counts,
    st.one_of(st.none(), st.integers(0, 500)),
    st.one_of(st.none(), st.integers(0, 500)),
)


def random_usage(rng: random.Random) -> Tuple[int, int, int, int]:
    prompt = rng.choice([0, 1, rng.randint(0, 5_000), rng.randint(100_000, 1_200_000)])
    cached = rng.choice([0, 0, rng.randint(0, max(prompt, 1))])
    written = rng.choice([0, 0, rng.randint(0, 300)])
    return prompt, rng.randint(0, 20_000), cached, written


# ---- every model in the cost map ---------------------------------------------------------------


def test_cost_per_token_equals_litellm_for_every_model(path):
    rng = random.Random(14)
    for name in ALL_MODELS:
        for _ in range(2):
            prompt, completion, cached, written = random_usage(rng)
            want = outcome(
                lambda: litellm.cost_per_token(
                    model=name,  # noqa: B023  (called at once)
                    prompt_tokens=prompt,  # noqa: B023  (called at once)
                    completion_tokens=completion,  # noqa: B023  (called at once)
                    cache_read_input_tokens=cached,  # noqa: B023  (called at once)
                    cache_creation_input_tokens=written,  # noqa: B023  (called at once)
                )
            )
            got = outcome(
                lambda: fast_litellm.cost_per_token(
                    name,  # noqa: B023  (called at once)
                    prompt,  # noqa: B023  (called at once)
                    completion,  # noqa: B023  (called at once)
                    cache_read_input_tokens=cached,  # noqa: B023  (called at once)
                    cache_creation_input_tokens=written,  # noqa: B023  (called at once)
                )
            )
            assert got == want, (name, prompt, completion, cached, written)


def test_completion_cost_equals_litellm_for_every_table_model(path):
    """Two responses per model: the first of a model is priced by LiteLLM (and checks the table's
    answer), the second on the table."""
    rng = random.Random(15)
    cost.reset_cost_stats()
    for name in TABLE_MODELS:
        for _ in range(2):
            prompt, completion, cached, _written = random_usage(rng)

            def response() -> Any:
                return litellm.ModelResponse(
                    model=name,  # noqa: B023  (called at once)
                    usage=usage_of(prompt, completion, cached or None, None, None, None, None),  # noqa: B023  (called at once)
                )

            want = outcome(
                lambda: litellm.completion_cost(completion_response=response(), model=name)  # noqa: B023  (called at once)
            )
            got = outcome(lambda: fast_litellm.completion_cost(response(), model=name))  # noqa: B023  (called at once)
            assert got == want, (name, prompt, completion, cached)
    counted = cost.stats()
    assert counted["native" if path == "native" else "fallback"] > len(TABLE_MODELS) // 2


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(TABLE_MODELS or ["gpt-4o"]), usage=usages)
def test_generated_usage_objects_price_as_litellm(name, usage):
    for rust in [True, False] if native is not None else [False]:
        _flags.configure("cost", rust=rust)
        try:
            want = outcome(lambda: litellm.cost_per_token(model=name, usage_object=usage))
            got = outcome(lambda: fast_litellm.cost_per_token(name, usage_object=usage))
            assert got == want, (rust, name, usage)
            want_total = outcome(
                lambda: litellm.completion_cost(
                    completion_response=litellm.ModelResponse(model=name, usage=usage), model=name
                )
            )
            for _ in range(2):  # the first response of a model is LiteLLM's, the second ours
                got_total = outcome(
                    lambda: fast_litellm.completion_cost(
                        litellm.ModelResponse(model=name, usage=usage), model=name
                    )
                )
                assert got_total == want_total, (rust, name, usage)
        finally:
            _flags.configure("cost", rust=True)


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4.1", "openai/gpt-5", "claude-sonnet-4-5"])
@pytest.mark.parametrize("calls", [0, 2])
def test_server_side_web_search_calls_price_as_litellm(model, calls):
    # LiteLLM bills web-search calls reported in `server_side_tool_usage_details` for any
    # provider; the first response of a model is LiteLLM's, later ones go through the table.
    def response() -> Any:
        usage = usage_of(1_000, 200, None, None, None, None, None)
        usage.server_side_tool_usage_details = {"web_search_calls": calls}
        return litellm.ModelResponse(model=model, usage=usage)

    for rust in [True, False] if native is not None else [False]:
        _flags.configure("cost", rust=rust)
        try:
            plain = litellm.ModelResponse(
                model=model, usage=usage_of(1_000, 200, None, None, None, None, None)
            )
            fast_litellm.completion_cost(plain, model=model)
            want = outcome(
                lambda: litellm.completion_cost(completion_response=response(), model=model)
            )
            for _ in range(2):
                got = outcome(lambda: fast_litellm.completion_cost(response(), model=model))
                assert got == want, (rust, model, calls)
        finally:
            _flags.configure("cost", rust=True)


@pytest.mark.parametrize("prompt", [2**63 - 1, 2**63, 10**30])
def test_token_counts_beyond_64_bits_price_as_litellm(prompt):
    for rust in [True, False] if native is not None else [False]:
        _flags.configure("cost", rust=rust)
        try:
            usage = usage_of(prompt, 5, None, None, None, None, None)
            want = outcome(
                lambda: litellm.completion_cost(
                    completion_response=litellm.ModelResponse(model="gpt-4o", usage=usage),  # noqa: B023
                    model="gpt-4o",
                )
            )
            for _ in range(2):  # the first response of a model is LiteLLM's, the second ours
                got = outcome(
                    lambda: fast_litellm.completion_cost(
                        litellm.ModelResponse(model="gpt-4o", usage=usage),  # noqa: B023
                        model="gpt-4o",
                    )
                )
                assert got == want, (rust, prompt)
        finally:
            _flags.configure("cost", rust=True)


@pytest.mark.parametrize(
    "details",
    [
        {"text_tokens": 2**62, "cached_tokens": 2**62},
        {"cached_tokens": 2**63 - 1, "cache_creation_tokens": 2**63 - 1, "audio_tokens": 2**62},
    ],
)
def test_counts_whose_sums_pass_64_bits_price_as_litellm(details):
    # Each count fits the native table; their sums do not, and must not wrap.
    for rust in [True, False] if native is not None else [False]:
        _flags.configure("cost", rust=rust)
        try:
            for model in ("gpt-4o", "claude-sonnet-4-5"):
                usage = litellm.Usage(
                    prompt_tokens=100, completion_tokens=5, prompt_tokens_details=details
                )
                want = outcome(lambda: litellm.cost_per_token(model=model, usage_object=usage))  # noqa: B023
                for _ in range(2):
                    got = outcome(lambda: fast_litellm.cost_per_token(model, usage_object=usage))  # noqa: B023
                    assert got == want, (rust, model, details)
        finally:
            _flags.configure("cost", rust=True)


def test_no_model_with_custom_prices_raises_as_litellm():
    prices = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    want = outcome(
        lambda: litellm.cost_per_token(
            model=None, prompt_tokens=100, completion_tokens=10, custom_cost_per_token=prices
        )
    )
    assert isinstance(want, tuple) and want[0] is Exception, want
    got = outcome(lambda: fast_litellm.cost_per_token(None, 100, 10, custom_cost_per_token=prices))
    assert got == want


def _edited_usages() -> Iterator[Any]:
    """Usages changed after they were built (pydantic does not check an assignment)."""
    for field, value in [
        ("prompt_tokens_details", {"cached_tokens": 400}),
        ("completion_tokens_details", {"reasoning_tokens": 20}),
        ("prompt_tokens_details", SimpleNamespace(cached_tokens=400)),
        ("prompt_tokens", None),
        ("completion_tokens", None),
        ("prompt_tokens", 1000.0),
    ]:
        usage = litellm.Usage(prompt_tokens=1000, completion_tokens=50, total_tokens=1050)
        setattr(usage, field, value)
        yield usage


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet-4-5"])
def test_a_usage_edited_after_it_was_built_prices_as_litellm(model):
    for rust in [True, False] if native is not None else [False]:
        _flags.configure("cost", rust=rust)
        try:
            plain = litellm.Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2)
            fast_litellm.completion_cost(litellm.ModelResponse(model=model, usage=plain))
            for usage in _edited_usages():
                want = outcome(
                    lambda u=usage: litellm.completion_cost(
                        completion_response=litellm.ModelResponse(model=model, usage=u)
                    )
                )
                got = outcome(
                    lambda u=usage: fast_litellm.completion_cost(
                        litellm.ModelResponse(model=model, usage=u)
                    )
                )
                assert got == want, (rust, usage)
                want = outcome(lambda: litellm.cost_per_token(model=model, usage_object=usage))  # noqa: B023
                got = outcome(lambda: fast_litellm.cost_per_token(model, usage_object=usage))  # noqa: B023
                assert got == want, (rust, usage)
        finally:
            _flags.configure("cost", rust=True)


@pytest.mark.parametrize("field", ["prompt", "completion", "cache_read", "cache_creation"])
@pytest.mark.parametrize("count", [2**63, 10**30])
def test_token_count_arguments_beyond_64_bits_price_as_litellm(field, count):
    counts = {"prompt": 10, "completion": 5, "cache_read": 0, "cache_creation": 0, field: count}
    for rust in [True, False] if native is not None else [False]:
        _flags.configure("cost", rust=rust)
        try:
            for model in ("gpt-4o", "claude-sonnet-4-5"):
                kwargs = dict(
                    model=model,
                    prompt_tokens=counts["prompt"],
                    completion_tokens=counts["completion"],
                    cache_read_input_tokens=counts["cache_read"],
                    cache_creation_input_tokens=counts["cache_creation"],
                )
                want = outcome(lambda: litellm.cost_per_token(**kwargs))  # noqa: B023
                assert isinstance(want[0], float), want  # LiteLLM prices it
                for _ in range(2):
                    assert outcome(lambda: fast_litellm.cost_per_token(**kwargs)) == want  # noqa: B023
        finally:
            _flags.configure("cost", rust=True)


def test_the_table_prices_most_chat_models_itself():
    cost.reset_cost_stats()
    for name in TABLE_MODELS:
        outcome(lambda: fast_litellm.cost_per_token(name, 10, 10))  # noqa: B023  (called at once)
    counted = cost.stats()
    # The rest carry prices the table leaves to LiteLLM (tiered tables, off-peak windows, ...).
    assert counted["native"] + counted["fallback"] >= 0.7 * len(TABLE_MODELS), counted


# ---- prices passed in the call, provider prefixes, thresholds -----------------------------------

rates = st.floats(min_value=0, max_value=1e-3, allow_nan=False, allow_subnormal=False)


@settings(max_examples=200, deadline=None)
@given(
    prompt=st.integers(0, 10**6),
    completion=st.integers(0, 10**6),
    cached=st.integers(0, 10**4),
    written=st.integers(0, 10**4),
    input_rate=rates,
    output_rate=rates,
    read_rate=st.one_of(st.none(), rates),
    write_rate=st.one_of(st.none(), rates),
)
def test_custom_prices_equal_litellm(
    prompt, completion, cached, written, input_rate, output_rate, read_rate, write_rate
):
    custom: Dict[str, float] = {
        "input_cost_per_token": input_rate,
        "output_cost_per_token": output_rate,
    }
    if read_rate is not None:
        custom["cache_read_input_token_cost"] = read_rate
    if write_rate is not None:
        custom["cache_creation_input_token_cost"] = write_rate
    want = litellm.cost_per_token(
        model="my-own-model",
        prompt_tokens=prompt,
        completion_tokens=completion,
        cache_read_input_tokens=cached,
        cache_creation_input_tokens=written,
        custom_cost_per_token=custom,
    )
    for rust in [True, False] if native is not None else [False]:
        _flags.configure("cost", rust=rust)
        try:
            got = fast_litellm.cost_per_token(
                "my-own-model",
                prompt,
                completion,
                cache_read_input_tokens=cached,
                cache_creation_input_tokens=written,
                custom_cost_per_token=custom,
            )
        finally:
            _flags.configure("cost", rust=True)
        assert got == want


@pytest.mark.parametrize(
    "model, provider",
    [
        ("gpt-4o", None),
        ("openai/gpt-4o", None),
        ("gpt-4o", "openai"),
        ("openai/gpt-4o", "openai"),
        ("openai/openai/gpt-4o", "openai"),
        ("claude-sonnet-4-5", None),
        ("anthropic/claude-sonnet-4-5", "anthropic"),
        ("groq/llama-3.3-70b-versatile", None),
        ("openrouter/openai/gpt-4o", None),
        ("azure/gpt-4o", None),
    ],
)
def test_provider_prefixes(path, model, provider):
    for prompt in (0, 1_000, 150_000, 250_000, 300_000):
        kwargs: Dict[str, Any] = {} if provider is None else {"custom_llm_provider": provider}
        want = outcome(
            lambda: litellm.cost_per_token(
                model=model,
                prompt_tokens=prompt,  # noqa: B023  (called at once)
                completion_tokens=77,
                **kwargs,  # noqa: B023  (called at once)
            )
        )
        got = outcome(lambda: fast_litellm.cost_per_token(model, prompt, 77, **kwargs))  # noqa: B023  (called at once)
        assert got == want


def test_a_threshold_model_prices_above_the_threshold(path):
    name = next(
        n
        for n in TABLE_MODELS
        if any(k.startswith("input_cost_per_token_above_") for k in litellm.model_cost[n])
    )
    entry = litellm.model_cost[name]
    key = next(k for k in entry if k.startswith("input_cost_per_token_above_"))
    threshold = int(cost._parse_threshold(cost._THRESHOLD_KEY.search(key).group(1)))  # type: ignore[union-attr]
    below = fast_litellm.cost_per_token(name, threshold, 0)
    above = fast_litellm.cost_per_token(name, threshold + 1, 0)
    assert below == litellm.cost_per_token(model=name, prompt_tokens=threshold, completion_tokens=0)
    assert above == litellm.cost_per_token(
        model=name, prompt_tokens=threshold + 1, completion_tokens=0
    )
    assert above[0] / (threshold + 1) != below[0] / threshold


# ---- the cost map changes at run time -----------------------------------------------------------


# register_model changes LiteLLM's process-wide tables (its cost map and the known-model sets that
# tests/test_models.py compares with its snapshot), so the registering runs in a fresh interpreter.
_REGISTER_AT_RUN_TIME = """
import sys
import litellm
import fast_litellm

fast_litellm.configure("cost", rust=sys.argv[1] == "native")
name = "fast-litellm-test-" + sys.argv[1]
for input_rate in (1e-06, 3e-06):
    litellm.register_model(
        {
            name: {
                "input_cost_per_token": input_rate,
                "output_cost_per_token": 2e-06,
                "litellm_provider": "openai",
                "mode": "chat",
            }
        }
    )
    got = fast_litellm.cost_per_token(name, 1_000, 10)
    assert got == litellm.cost_per_token(model=name, prompt_tokens=1_000, completion_tokens=10)
    assert got[0] == 1_000 * input_rate, got
print("ok")
"""


def _run_fresh(script: str, path: str) -> None:
    """Runs ``script`` in a fresh interpreter (its first argument the path to take), with no
    FAST_LITELLM_ variable inherited, and checks that it printed "ok" last (LiteLLM may print
    notices of its own before)."""
    import os
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if not k.startswith("FAST_LITELLM_")}
    done = subprocess.run(
        [sys.executable, "-c", script, path],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout.split()[-1:] == ["ok"], done.stderr


def test_register_model_at_run_time_is_seen(path):
    _run_fresh(_REGISTER_AT_RUN_TIME, path)


_UNPATCH_ON_A_FRESH_LITELLM = """
import sys
import litellm
import fast_litellm
from litellm import cost_calculator

fast_litellm._flags.configure("cost", rust=sys.argv[1] == "native")
original = cost_calculator.completion_cost
fast_litellm.patch(features=["cost"])  # litellm.completion_cost never read before
assert litellm.completion_cost is cost_calculator.completion_cost is not original
fast_litellm.unpatch()
assert cost_calculator.completion_cost is original, cost_calculator.completion_cost
assert litellm.completion_cost is original, litellm.completion_cost
print("ok")
"""


def test_unpatch_restores_litellms_lazy_name(path):
    # litellm resolves ``litellm.completion_cost`` on first access and keeps what it found; a
    # patch() that is the first to read it must still leave the original there on unpatch().
    _run_fresh(_UNPATCH_ON_A_FRESH_LITELLM, path)


# The start of the scripts below: LiteLLM's logging object whose attribute LiteLLM reads while
# it prices pauses there once (until `release`), which holds a pricing call open.
_PAUSING_PRICING = """
import sys, threading, time
import litellm
import fast_litellm
from litellm import cost_calculator
from litellm.litellm_core_utils.litellm_logging import Logging

fast_litellm._flags.configure("cost", rust=sys.argv[1] == "native")
original = cost_calculator.cost_per_token
inside, release = threading.Event(), threading.Event()


class PausingLogging(Logging):
    @property
    def model_call_details(self):
        if not inside.is_set():
            inside.set()
            release.wait(30)
        return self._details

    @model_call_details.setter
    def model_call_details(self, value):
        self._details = value


"""

_PRICING_WHILE_ANOTHER_THREAD_CALLS = (
    _PAUSING_PRICING
    + """
patched = sys.argv[2] == "patched"
assert "cost_per_token" not in vars(litellm)
logging_obj = PausingLogging(
    model="gpt-4o-mini", messages=[], stream=False, call_type="acompletion",
    start_time=time.time(), litellm_call_id="x", function_id="x",
)
response = litellm.ModelResponse(
    model="gpt-4o-mini", usage=litellm.Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15)
)
if patched:
    fast_litellm.patch(features=["cost"])
    price = lambda: litellm.cost_calculator.completion_cost(
        completion_response=response, model="gpt-4o-mini", litellm_logging_obj=logging_obj
    )
else:
    price = lambda: fast_litellm.completion_cost(
        response, model="gpt-4o-mini", litellm_logging_obj=logging_obj
    )
priced = []
thread = threading.Thread(target=lambda: priced.append(price()))
thread.start()
assert inside.wait(30)
during = (litellm.cost_per_token("gpt-4o-mini", 10, 5), cost_calculator.cost_per_token("gpt-4o-mini", 10, 5))
release.set()
thread.join(30)
want = original("gpt-4o-mini", 10, 5)
assert during == (want, want), during
assert priced == [sum(want)], priced
assert litellm.cost_per_token is original, litellm.cost_per_token
assert cost_calculator.cost_per_token is original
print("ok")
"""
)


# Two threads price the first response of two models at once: the second waits for the first
# (one stand-in at a time), and LiteLLM's own cost_per_token is what stays.
_TWO_FIRST_RESPONSES_AT_ONCE = (
    _PAUSING_PRICING
    + """
def response(model):
    usage = litellm.Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15)
    return litellm.ModelResponse(model=model, usage=usage)


logging_obj = PausingLogging(
    model="gpt-4o", messages=[], stream=False, call_type="acompletion",
    start_time=time.time(), litellm_call_id="x", function_id="x",
)
first = threading.Thread(
    target=lambda: fast_litellm.completion_cost(
        response("gpt-4o"), model="gpt-4o", litellm_logging_obj=logging_obj
    )
)
first.start()
assert inside.wait(30)
second = threading.Thread(
    target=lambda: fast_litellm.completion_cost(response("gpt-4o-mini"), model="gpt-4o-mini")
)
second.start()
second.join(0.2)  # it gets as far as it can while the first holds the stand-in in place
release.set()
first.join(30)
second.join(30)
assert cost_calculator.cost_per_token is original, cost_calculator.cost_per_token
print("ok")
"""
)


def test_two_first_responses_at_once_leave_litellms_cost_per_token(path):
    _run_fresh(_TWO_FIRST_RESPONSES_AT_ONCE, path)


@pytest.mark.parametrize("how", ["direct", "patched"])
def test_pricing_a_first_response_leaves_litellms_cost_per_token_alone(path, how):
    import os
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if not k.startswith("FAST_LITELLM_")}
    done = subprocess.run(
        [sys.executable, "-c", _PRICING_WHILE_ANOTHER_THREAD_CALLS, path, how],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout.split()[-1:] == ["ok"], done.stderr


# ---- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prompt_tokens": -1},
        {"completion_tokens": -5},
        {"cache_read_input_tokens": -1},
        {"cache_creation_input_tokens": -2},
    ],
)
def test_negative_counts_are_refused(path, kwargs):
    arguments: Dict[str, Any] = {"prompt_tokens": 1, "completion_tokens": 1, **kwargs}
    with pytest.raises(ValueError, match=">= 0"):
        fast_litellm.cost_per_token("gpt-4o", **arguments)


def test_counts_must_be_ints(path):
    with pytest.raises(TypeError, match="prompt_tokens must be an int"):
        fast_litellm.cost_per_token("gpt-4o", "10", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="completion_tokens must be an int"):
        fast_litellm.cost_per_token("gpt-4o", 1, True)
    with pytest.raises(TypeError, match="needs a response"):
        fast_litellm.completion_cost()


def test_an_unknown_model_raises_what_litellm_raises(path):
    want = outcome(
        lambda: litellm.cost_per_token(
            model="no-such-model-xyz", prompt_tokens=1, completion_tokens=1
        )
    )
    got = outcome(lambda: fast_litellm.cost_per_token("no-such-model-xyz", 1, 1))
    assert got == want and isinstance(want, tuple) and issubclass(want[0], Exception)
    response = litellm.ModelResponse(model="no-such-model-xyz", usage=usage_of(1, 1, *[None] * 5))
    want = outcome(lambda: litellm.completion_cost(completion_response=response))
    got = outcome(lambda: fast_litellm.completion_cost(response))
    assert got == want


def test_token_count_totals_are_the_sum_of_cost_per_token(path):
    prompt_part, completion_part = litellm.cost_per_token(
        model="gpt-4o-mini", prompt_tokens=20, completion_tokens=5
    )
    assert fast_litellm.completion_cost(
        model="gpt-4o-mini", prompt_tokens=20, completion_tokens=5
    ) == (prompt_part + completion_part)
    usage = usage_of(2_000, 30, 1_000, None, 10, None, None)
    prompt_part, completion_part = litellm.cost_per_token(model="gpt-4o", usage_object=usage)
    assert (
        fast_litellm.completion_cost(model="gpt-4o", usage=usage) == prompt_part + completion_part
    )


# ---- the two tables agree -------------------------------------------------------------------------


@needs_native
@settings(max_examples=300, deadline=None)
@given(
    rates=st.lists(st.one_of(st.none(), rates), min_size=8, max_size=8),
    thresholds=st.lists(
        st.tuples(
            st.integers(0, 300_000).map(float),
            st.one_of(st.none(), rates),
            st.one_of(st.none(), rates),
            st.one_of(st.none(), rates),
            st.one_of(st.none(), rates),
        ),
        max_size=3,
    ).map(lambda ts: sorted(ts, key=lambda t: t[0])),
    usage=st.tuples(
        st.integers(0, 400_000),
        st.integers(0, 10**5),
        st.booleans(),
        st.integers(0, 10**4),
        st.integers(0, 10**4),
        st.integers(0, 10**4),
        st.integers(0, 10**3),
        st.booleans(),
        st.integers(0, 10**4),
        st.integers(0, 10**4),
        st.integers(0, 10**3),
    ),
)
def test_native_table_equals_fallback_table(rates, thresholds, usage):
    mine = native.CostTable()
    theirs = fallback_cost.CostTable()
    assert mine.add(*rates, thresholds) == theirs.add(*rates, thresholds) == 0
    assert mine.cost(0, *usage) == theirs.cost(0, *usage)
    assert len(mine) == len(theirs) == 1


@needs_native
def test_a_bad_index_is_an_index_error():
    with pytest.raises(IndexError):
        native.CostTable().cost(3, 1, 1, False, 0, 0, 0, 0, False, 0, 0, 0)


def test_health_probe():
    if native is None:
        assert cost.health_probe() is not None
    else:
        assert cost.health_probe() is None


# ---- patch(features=["cost"]): the same logged cost -----------------------------------------------

REQUESTS = 15


_capture: List[Any] = []


def capture() -> Any:
    """One logger for the module: LiteLLM registers a callback object once (a second instance
    set later through ``litellm.callbacks`` would not be called)."""
    if not _capture:
        from litellm.integrations.custom_logger import CustomLogger

        class Capture(CustomLogger):
            def __init__(self) -> None:
                super().__init__()
                self.items: List[Tuple[Any, ...]] = []

            async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):  # type: ignore[no-untyped-def]
                payload = kwargs.get("standard_logging_object") or {}
                self.items.append(
                    (
                        kwargs.get("response_cost"),
                        payload.get("response_cost"),
                        payload.get("cost_breakdown"),
                    )
                )

        _capture.append(Capture())
    return _capture[0]


def logged_costs(
    base_url: str, features: Optional[List[str]], through_router: bool = False
) -> List[Tuple[Any, ...]]:
    from benches.litellm_e2e_cases import conversation

    logger = capture()

    async def main() -> List[Tuple[Any, ...]]:
        logger.items.clear()
        saved = litellm.callbacks
        litellm.callbacks = [logger]
        fast_litellm.unpatch()
        if features is not None:
            fast_litellm.patch(features=features)
        common = {"api_base": base_url, "api_key": "sk-test"}
        # A router with a deployment that has prices of its own (LiteLLM's to price).
        router = litellm.Router(
            model_list=[
                {"model_name": name, "litellm_params": {"model": f"openai/{name}", **common}}
                for name in ("gpt-4o", "gpt-4o-mini")
            ]
            + [
                {
                    "model_name": "gpt-4.1",
                    "litellm_params": {
                        "model": "openai/gpt-4.1",
                        "input_cost_per_token": 1e-06,
                        "output_cost_per_token": 3e-06,
                        **common,
                    },
                }
            ]
        )
        try:
            for index in range(REQUESTS):
                name = ("gpt-4o", "gpt-4o-mini", "gpt-4.1")[index % 3]
                if through_router:
                    await router.acompletion(model=name, messages=conversation(index))
                else:
                    await litellm.acompletion(
                        model=f"openai/{name}", messages=conversation(index), **common
                    )
            for _ in range(500):  # the success callbacks run after the answer is returned
                if len(logger.items) >= REQUESTS:
                    break
                await asyncio.sleep(0.01)
        finally:
            litellm.callbacks = saved
            fast_litellm.unpatch()
        return list(logger.items)

    return asyncio.run(main())


@pytest.mark.parametrize("through_router", [False, True], ids=["acompletion", "Router"])
def test_patched_litellm_logs_the_same_response_cost(path, through_router):
    from benches.mock_server import MockServer, cargo_missing

    if cargo_missing():
        pytest.skip(cargo_missing())
    with MockServer() as server:
        unpatched = logged_costs(server.base_url, None, through_router)
        cost.reset_cost_stats()
        patched = logged_costs(server.base_url, ["cost"], through_router)
    assert len(unpatched) == len(patched) == REQUESTS
    assert sorted(map(repr, patched)) == sorted(map(repr, unpatched))
    assert all(isinstance(item[0], float) and item[0] > 0 for item in patched)
    counted = cost.stats()
    # Through the router a third of the requests go to a deployment with prices of its own.
    expected = (REQUESTS * 2 // 3 - 2) if through_router else REQUESTS - 3
    assert counted["native" if path == "native" else "fallback"] >= expected, counted
    assert fast_litellm.patch_status()["features"]["cost"]["patched"] is False


# ---- the cost breakdown on the logging object ---------------------------------------------------


def _logging_object() -> Any:
    import time

    from litellm.litellm_core_utils.litellm_logging import Logging

    return Logging(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        stream=False,
        call_type="acompletion",
        start_time=time.time(),
        litellm_call_id="cost-test",
        function_id="cost-test",
    )


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    name=st.sampled_from(["gpt-4o", "gpt-4.1", "gpt-5", "o3", "claude-sonnet-4-5"]), usage=usages
)
def test_patched_calculator_stores_the_same_breakdown(name, usage):
    """What LiteLLM's per-request calculator returns and stores on the logging object (the cost
    breakdown of the logged payload), unpatched and patched, for the same response."""
    if name not in litellm.model_cost:
        return

    def priced() -> Tuple[Any, Any]:
        logging_obj = _logging_object()
        result = outcome(
            lambda: litellm.cost_calculator.response_cost_calculator(
                response_object=litellm.ModelResponse(model=name, usage=usage),
                model=name,
                custom_llm_provider=None,
                call_type="acompletion",
                optional_params={},
                litellm_logging_obj=logging_obj,
                custom_pricing=False,
                standard_built_in_tools_params={"web_search_options": None, "file_search": None},
            )
        )
        return result, logging_obj.cost_breakdown

    fast_litellm.unpatch()
    want = priced()
    fast_litellm.patch(features=["cost"])
    try:
        for _ in range(2):  # the first response of a plan is LiteLLM's, the second ours
            assert priced() == want, (name, usage)
    finally:
        fast_litellm.unpatch()


def test_direct_calls_while_litellm_is_patched_give_litellms_answer(path):
    # With patch() in place, LiteLLM's name is our wrapper: a direct call that hands a first
    # response to LiteLLM must reach LiteLLM's own function (not come back into the wrapper).
    response = litellm.ModelResponse(model="gpt-4o-mini", usage=usage_of(120, 30, *[None] * 5))
    want = litellm.completion_cost(completion_response=response)
    fast_litellm.cost._tables.clear()  # forget what earlier tests priced: a first response again
    fast_litellm.patch(features=["cost"])
    try:
        assert litellm.completion_cost is not litellm.cost_calculator.response_cost_calculator
        for _ in range(3):
            assert fast_litellm.completion_cost(response) == want
            assert litellm.completion_cost(completion_response=response) == want
    finally:
        fast_litellm.unpatch()
