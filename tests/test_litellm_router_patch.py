"""The ``routing`` feature of ``patch()``: LiteLLM's latency-based Router picks the same
deployment, leaves the same router cache and request metadata behind, draws the same numbers from
``random`` and raises the same exceptions, patched or not.

The selection step is compared on its own (hypothesis: model lists with rpm/tpm in each place
LiteLLM reads them, recorded latencies and times to first token, this minute's usage, buffers,
percentiles, malformed entries), then through ``litellm.Router`` (sync and async picks, with
deployments cooling down). End to end against the mock server: tests/test_litellm_e2e.py.
The clock is LiteLLM's module-level ``datetime``, replaced by a frozen one in every test.
"""

from __future__ import annotations

import copy
import datetime as _datetime
import random
import threading
import warnings
from typing import Any, Dict, List

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

pytest.importorskip("litellm")

import litellm  # noqa: E402
from litellm.router_strategy import lowest_cost, lowest_latency  # noqa: E402

import fast_litellm  # noqa: E402
from fast_litellm import litellm_patch  # noqa: E402

PLACE = (
    "litellm.router_strategy.lowest_latency.LowestLatencyLoggingHandler._get_available_deployments"
)
HANDLER = lowest_latency.LowestLatencyLoggingHandler
NOW = _datetime.datetime(2026, 3, 4, 10, 59, 30)
MINUTE = "2026-03-04-10-59"
IDS = ("a", "b", "c", "d", "e")
MESSAGES = [{"role": "user", "content": "Say hello to the router."}]


class FrozenDatetime(_datetime.datetime):
    @classmethod
    def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
        return NOW


COST_PLACE = (
    "litellm.router_strategy.lowest_cost.LowestCostLoggingHandler.async_get_available_deployments"
)
COST_HANDLER = lowest_cost.LowestCostLoggingHandler


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr(lowest_latency, "datetime", FrozenDatetime)
    monkeypatch.setattr(lowest_cost, "datetime", FrozenDatetime)


@pytest.fixture(autouse=True)
def restore_patch_state():
    """Patching is process-wide: every test leaves it as it found it."""
    was_patched = fast_litellm.patch_status()["patched"]
    fast_litellm.unpatch()
    yield
    fast_litellm.unpatch()
    if was_patched:
        fast_litellm.patch()


def original_and_replacement() -> Any:
    original = HANDLER.__dict__["_get_available_deployments"]
    fast_litellm.patch(features=["routing"])
    replacement = HANDLER.__dict__["_get_available_deployments"]
    fast_litellm.unpatch()
    assert replacement is not original and replacement.__wrapped__ is original
    return original, replacement


# ---- the selection step, on generated state ----------------------------------------------------

limits = st.one_of(st.none(), st.sampled_from([0, 1, 2, 50, 10_000]))
samples = st.lists(
    st.one_of(
        st.floats(min_value=0, max_value=5, allow_nan=False),
        st.sampled_from([0, 1, 0.25, -1.0, float("nan"), float("inf")]),
    ),
    max_size=6,
)


@st.composite
def deployments(draw: Any) -> Dict[str, Any]:
    params: Dict[str, Any] = {"model": "openai/gpt-4o"}
    info: Dict[str, Any] = {"id": draw(st.sampled_from(IDS))}
    deployment: Dict[str, Any] = {"model_name": "group", "litellm_params": params}
    for place in (deployment, params, info):
        for key in ("tpm", "rpm"):
            value = draw(limits)
            if value is not None:
                place[key] = value
    base = draw(st.sampled_from(["missing", None, "http://one", "http://two", "unique"]))
    if base == "unique":
        params["api_base"] = f"http://{info['id']}"
    elif base != "missing":
        params["api_base"] = base
    if draw(st.integers(0, 40)) == 0:
        return {"litellm_params": params}  # no model_info: LiteLLM's KeyError
    deployment["model_info"] = info
    return deployment


@st.composite
def cache_entries(draw: Any) -> Any:
    if draw(st.integers(0, 40)) == 0:
        return None
    entries: Dict[Any, Any] = {}
    for deployment_id in draw(st.lists(st.sampled_from(IDS + ("gone",)), unique=True)):
        entry: Dict[str, Any] = {}
        if draw(st.booleans()):
            entry["latency_normalized"] = draw(samples)
        if draw(st.booleans()):
            entry["time_to_first_token_seconds"] = draw(samples)
        if draw(st.booleans()):
            entry[MINUTE] = {
                key: draw(st.integers(0, 60)) for key in ("tpm", "rpm") if draw(st.booleans())
            }
        if draw(st.booleans()):
            entry["2026-03-04-10-58"] = {"tpm": 5, "rpm": 5}
        if draw(st.integers(0, 40)) == 0:
            entry["latency_normalized"] = ["junk"]  # LiteLLM's TypeError
        entries[deployment_id] = entry
    return entries


request_kwargs = st.sampled_from(
    [
        None,
        {},
        {"stream": True},
        {"stream": False, "metadata": {}},
        {"stream": True, "metadata": {"user": "x"}},
        {"litellm_metadata": {}, "stream": True},
    ]
)


def run(function: Any, handler: Any, arguments: Dict[str, Any], seed: int) -> Dict[str, Any]:
    state = copy.deepcopy(arguments["request_count_dict"])
    kwargs = copy.deepcopy(arguments["request_kwargs"])
    random.seed(seed)
    try:
        picked = function(
            handler,
            "group",
            arguments["healthy_deployments"],
            arguments["messages"],
            None,
            kwargs,
            state,
        )
        outcome: Any = ("picked", None if picked is None else id(picked))
    except Exception as exc:  # the exception is what is compared
        outcome = ("raised", type(exc), str(exc))
    # repr: NaN samples compare equal to themselves as text
    return {
        "outcome": outcome,
        "cache": repr(state),
        "request_kwargs": repr(kwargs),
        "random": random.getstate(),
    }


@given(
    healthy=st.lists(deployments(), max_size=7),
    state=cache_entries(),
    kwargs=request_kwargs,
    messages=st.sampled_from([None, MESSAGES]),
    buffer=st.sampled_from([0, 0.5, 2.0]),
    percentile=st.sampled_from([None, 0.5, 1.0]),
    seed=st.integers(0, 2**32),
)
def test_the_selection_matches_litellm(healthy, state, kwargs, messages, buffer, percentile, seed):
    original, replacement = original_and_replacement()
    args = {"lowest_latency_buffer": buffer}
    if percentile is not None:
        args["ttft_percentile"] = percentile
    handler = HANDLER(router_cache=litellm.DualCache(), routing_args=args)
    arguments = {
        "healthy_deployments": healthy,
        "messages": messages,
        "request_kwargs": kwargs,
        "request_count_dict": state,
    }
    expected = run(original, handler, arguments, seed)
    assert run(replacement, handler, arguments, seed) == expected
    event(f"{expected['outcome'][0]}{' None' if expected['outcome'][1:] == (None,) else ''}")


def test_every_deployment_can_be_picked_and_the_draws_are_litellms():
    """Many deployments at the same latency: the pick is random, and seeded alike it is the same."""
    original, replacement = original_and_replacement()
    handler = HANDLER(router_cache=litellm.DualCache(), routing_args={})
    healthy = [
        {"model_name": "group", "litellm_params": {"model": "m"}, "model_info": {"id": f"d{i}"}}
        for i in range(30)
    ]
    seen = set()
    for seed in range(60):
        picks = []
        for function in (original, replacement):
            random.seed(seed)
            picks.append(function(handler, "group", healthy, None, None, {}, {}))
        assert picks[0] is picks[1]
        seen.add(picks[0]["model_info"]["id"])
    assert len(seen) > 10


# ---- through litellm.Router ------------------------------------------------------------------


def make_router(size: int, args: Dict[str, Any]) -> Any:
    model_list = [
        {
            "model_name": "group",
            "litellm_params": {
                "model": "openai/gpt-4o",
                "api_key": "sk-test",
                "api_base": f"http://127.0.0.1:9/v{i}",
                "rpm": 3 + i % 4,
            },
            "model_info": {"id": f"deployment-{i}"},
        }
        for i in range(size)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return litellm.Router(
            model_list=model_list,
            routing_strategy="latency-based-routing",
            routing_strategy_args=args,
        )


def router_picks(
    patched: bool, state: Dict[str, Any], cooling: List[str], args: Dict[str, Any], seed: int
) -> List[Any]:
    """Sync and async picks of a fresh router holding ``state``, some deployments cooling down."""
    import asyncio

    if patched:
        fast_litellm.patch(features=["routing"])
    else:
        fast_litellm.unpatch()
    router = make_router(6, args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cache = router.cache
    cache.set_cache("group_map", copy.deepcopy(state))
    for deployment_id in cooling:
        router.cooldown_cache.add_deployment_to_cooldown(deployment_id, Exception("x"), 429, 60)
    random.seed(seed)
    answers: List[Any] = []

    def record(pick: Any) -> None:
        try:
            answers.append(pick()["model_info"]["id"])
        except Exception as exc:  # the exception is what is compared
            answers.append((type(exc).__name__, str(exc)))

    def pick_sync(stream: bool) -> Any:
        return router.get_available_deployment(
            model="group", messages=MESSAGES, request_kwargs={"stream": stream}
        )

    async def pick(stream: bool) -> Any:
        return await router.async_get_available_deployment(
            model="group", messages=MESSAGES, request_kwargs={"stream": stream}
        )

    for stream in (False, True):
        record(lambda: pick_sync(stream))  # noqa: B023  (called at once)
        record(lambda: asyncio.run(pick(stream)))  # noqa: B023  (called at once)
    answers.append(repr(cache.get_cache("group_map")))
    answers.append(random.getstate())
    return answers


# A Router per example and state: a few dozen examples keep the test to seconds.
@settings(max_examples=25)
@given(
    latencies=st.lists(
        st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=4),
        min_size=6,
        max_size=6,
    ),
    usage=st.lists(st.integers(0, 6), min_size=6, max_size=6),
    cooling=st.lists(st.sampled_from([f"deployment-{i}" for i in range(6)]), unique=True),
    buffer=st.sampled_from([0, 0.3, 5.0]),
    seed=st.integers(0, 2**32),
)
def test_router_picks_match_litellm(latencies, usage, cooling, buffer, seed):
    state = {
        f"deployment-{i}": {
            "latency_normalized": latency,
            "time_to_first_token_seconds": latency[::-1],
            MINUTE: {"tpm": 10 * rpm, "rpm": rpm},
        }
        for i, (latency, rpm) in enumerate(zip(latencies, usage, strict=True))
    }
    args = {"lowest_latency_buffer": buffer}
    assert router_picks(True, state, cooling, args, seed) == router_picks(
        False, state, cooling, args, seed
    )


# ---- patch(), unpatch(), patch_status() --------------------------------------------------------


def test_patch_status_names_every_strategy_and_unpatch_restores_identity():
    original = HANDLER.__dict__["_get_available_deployments"]
    assert "routing" in litellm_patch.default_features()
    status = fast_litellm.patch(features=["routing"])["features"]["routing"]
    assert status["patched"] and status["entry_points"][PLACE] == {"status": "patched"}
    skipped = {p: e for p, e in status["entry_points"].items() if e["status"] == "skipped"}
    assert status["entry_points"][COST_PLACE] == {"status": "patched"}
    assert {p.rsplit(".", 1)[1] for p in skipped} == {
        "LeastBusyLoggingHandler",
        "LowestTPMLoggingHandler",
        "LowestTPMLoggingHandler_v2",
    }
    assert all(entry["reason"] for entry in skipped.values())
    replacement = HANDLER.__dict__["_get_available_deployments"]
    fast_litellm.patch(features=["routing"])  # idempotent
    assert HANDLER.__dict__["_get_available_deployments"] is replacement
    status = fast_litellm.unpatch()["features"]["routing"]
    assert HANDLER.__dict__["_get_available_deployments"] is original
    assert status == {
        "patched": False,
        "entry_points": {
            PLACE: {"status": "not patched"},
            COST_PLACE: {"status": "not patched"},
        },
    }
    fast_litellm.patch(features=["routing"])  # the same replacement again
    assert HANDLER.__dict__["_get_available_deployments"] is replacement


def test_patching_from_many_threads_patches_once():
    original = HANDLER.__dict__["_get_available_deployments"]
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(5):
            fast_litellm.patch(features=["routing"])
            fast_litellm.unpatch()
        fast_litellm.patch(features=["routing"])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    patched = HANDLER.__dict__["_get_available_deployments"]
    assert patched.__wrapped__ is original
    assert fast_litellm.patch_status()["features"]["routing"]["patched"]
    fast_litellm.unpatch()
    assert HANDLER.__dict__["_get_available_deployments"] is original


def test_another_signature_is_left_alone(monkeypatch):
    def _get_available_deployments(self, model_group, healthy_deployments, extra=None):
        return None

    monkeypatch.setattr(HANDLER, "_get_available_deployments", _get_available_deployments)
    status = fast_litellm.patch(features=["routing"])["features"]["routing"]
    entry = status["entry_points"][PLACE]
    assert entry["status"] == "skipped" and "signature" in entry["reason"]
    assert HANDLER.__dict__["_get_available_deployments"] is _get_available_deployments


# ---- cost-based routing --------------------------------------------------------------------

COST_MODELS = ("openai/gpt-4o", "openai/gpt-4o-mini", "openai/no-such-model", "gpt-3.5-turbo")
prices = st.one_of(st.none(), st.sampled_from([0, 0.0, 1e-6, 3e-6, 2]))


@st.composite
def priced_deployments(draw: Any) -> Dict[str, Any]:
    deployment = draw(deployments())
    params = deployment["litellm_params"]
    params["model"] = draw(st.sampled_from(COST_MODELS))
    for key in ("input_cost_per_token", "output_cost_per_token"):
        price = draw(prices)
        if price is not None:
            params[key] = price
    return deployment


@st.composite
def usage_entries(draw: Any) -> Dict[str, Any]:
    entries: Dict[str, Any] = {}
    for deployment_id in draw(st.lists(st.sampled_from(IDS + ("gone",)), unique=True)):
        entries[deployment_id] = {}
        if draw(st.booleans()):
            entries[deployment_id][MINUTE] = {
                key: draw(st.integers(0, 60)) for key in ("tpm", "rpm") if draw(st.booleans())
            }
    return entries


class Records(list):
    def write(self, record: Any) -> None:  # a logging handler's emit, through a list
        self.append(record.getMessage())


def cost_pick(function: Any, healthy: List[Any], state: Dict[str, Any], messages: Any) -> Any:
    import asyncio
    import logging

    handler = COST_HANDLER(router_cache=litellm.DualCache(), routing_args={})
    handler.router_cache.set_cache("cost_map:group", copy.deepcopy(state))
    records = Records()
    sink = logging.Handler(logging.DEBUG)
    sink.emit = records.write  # type: ignore[method-assign]
    logger = lowest_cost.verbose_router_logger
    level = logger.level
    logger.addHandler(sink)
    logger.setLevel(logging.DEBUG)
    try:
        picked = asyncio.run(function(handler, "group", healthy, messages, None, {}))
        outcome: Any = ("picked", None if picked is None else id(picked))
    except Exception as exc:  # the exception is what is compared
        outcome = ("raised", type(exc), str(exc))
    finally:
        logger.removeHandler(sink)
        logger.setLevel(level)
    return outcome, repr(handler.router_cache.get_cache("cost_map:group")), list(records)


@given(
    healthy=st.lists(priced_deployments(), max_size=7),
    state=usage_entries(),
    messages=st.sampled_from([None, MESSAGES]),
)
def test_cost_based_selection_matches_litellm(healthy, state, messages):
    original = COST_HANDLER.__dict__["async_get_available_deployments"]
    fast_litellm.patch(features=["routing"])
    replacement = COST_HANDLER.__dict__["async_get_available_deployments"]
    fast_litellm.unpatch()
    assert replacement is not original
    expected = cost_pick(original, healthy, state, messages)
    assert cost_pick(replacement, healthy, state, messages) == expected
    event(expected[0][0] + (" None" if expected[0][1:] == (None,) else ""))


@pytest.mark.parametrize("api_base", [["http://a"], {"u": 1}, None, "http://b"])
def test_cost_based_selection_with_an_odd_api_base_matches_litellm(api_base):
    healthy = [
        {
            "model_name": "group",
            "litellm_params": {"model": "openai/gpt-4o", "api_base": api_base},
            "model_info": {"id": "d1"},
        }
    ]
    original = COST_HANDLER.__dict__["async_get_available_deployments"]
    fast_litellm.patch(features=["routing"])
    replacement = COST_HANDLER.__dict__["async_get_available_deployments"]
    fast_litellm.unpatch()
    expected = cost_pick(original, healthy, {}, None)
    assert cost_pick(replacement, healthy, {}, None) == expected
