"""End to end: LiteLLM against a local OpenAI-compatible server (``benches/mock_server``) gives
the same answers with ``fast_litellm.patch()`` as without it.

Each test sends the same requests, a few hundred at a modest concurrency, once unpatched and once
patched, through ``litellm.acompletion``, ``litellm.Router.acompletion`` and streaming, and
compares every answer: its ``model_dump()`` and its hidden parameters. The server answers
deterministically (a fixed ``created``, an id and a text that depend on the request only), so
what may differ between two runs is only what LiteLLM itself makes anew on every call; running the
same request twice in one state shows exactly these, and only these are left out:

- ``_hidden_params["_response_ms"]`` and ``["litellm_overhead_time_ms"]``: timings;
- ``_hidden_params["litellm_call_id"]``: a fresh UUID per call;
- a streamed chunk's ``created`` (LiteLLM stamps the stream with its own clock, in seconds,
  instead of the server's) and its ``_hidden_params["created_at"]`` (``time.time()`` per chunk).

Today streaming is where the patch is on the path (LiteLLM counts the streamed answer's tokens
with ``token_counter``); the other cases hold every later patch (HTTP, routing) to the same
answers.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any, Awaitable, Callable, Dict, List

import pytest

pytest.importorskip("litellm")

import litellm  # noqa: E402

import fast_litellm  # noqa: E402
from benches.litellm_e2e_cases import conversation  # noqa: E402
from benches.mock_server import mock_server_fixture  # noqa: E402

mock_server = mock_server_fixture()

REQUESTS = 100
CONCURRENCY = 16
MODELS = ("gpt-4o", "gpt-4o-mini")
# See the module's docstring: what LiteLLM makes anew on every call.
VARYING_HIDDEN_PARAMS = frozenset(
    {"_response_ms", "litellm_overhead_time_ms", "litellm_call_id", "created_at"}
)
VARYING_STREAM_FIELDS = frozenset({"created"})


def snapshot(response: Any, varying_fields: frozenset = frozenset()) -> Dict[str, Any]:
    dump = response.model_dump()
    hidden = dict(getattr(response, "_hidden_params", None) or {})
    return {
        "dump": {k: v for k, v in dump.items() if k not in varying_fields},
        "hidden": {k: v for k, v in hidden.items() if k not in VARYING_HIDDEN_PARAMS},
    }


async def run_requests(call: Callable[[int], Awaitable[Any]]) -> List[Any]:
    """``REQUESTS`` calls, at most ``CONCURRENCY`` in flight, answers in request order."""
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> Any:
        async with slots:
            return await call(index)

    return list(await asyncio.gather(*(one(i) for i in range(REQUESTS))))


# What "patched" patches in each run: token counting, the request cost and the Router's
# latency-based selection (the defaults; the cost shows in `_hidden_params["response_cost"]`),
# and with LiteLLM's async HTTP through fast_litellm's transport as well
# (FAST_LITELLM_PATCH_HTTP=1).
PATCHES = {
    "defaults": ["token_counting", "cost", "routing"],
    "defaults+http": ["token_counting", "cost", "routing", "http"],
}


@pytest.fixture(params=sorted(PATCHES))
def patch_features(request: Any) -> List[str]:
    return PATCHES[request.param]


def unpatched_and_patched(
    make_call: Callable[[], Callable[[int], Awaitable[Any]]], features: List[str]
) -> Any:
    """The snapshots of every request unpatched, then patched with ``features`` (one event
    loop, as an application has); ``make_call`` is called once per state, after the state is
    set."""

    async def main() -> Any:
        fast_litellm.unpatch()
        unpatched = await run_requests(make_call())
        status = fast_litellm.patch(features=features)
        assert status["patched"]
        if "http" in features:
            assert status["features"]["http"]["patched"]
        patched = await run_requests(make_call())
        if "http" in features:
            # The requests went through the native pool.
            used = fast_litellm.patch_status()["features"]["http"]
            assert used["transports"]["ours"] >= 1 and used["pool"]["requests"] >= REQUESTS
        return unpatched, patched

    return asyncio.run(main())


@pytest.fixture(autouse=True)
def restore_patch_state():
    """Patching is process-wide: every test leaves it as it found it."""
    was_patched = fast_litellm.patch_status()["patched"]
    yield
    fast_litellm.unpatch()
    if was_patched:
        fast_litellm.patch()


def assert_same_answers(unpatched: List[Any], patched: List[Any]) -> None:
    assert len(unpatched) == len(patched) == REQUESTS
    for index, (before, after) in enumerate(zip(unpatched, patched, strict=True)):
        assert after == before, f"request {index} answered differently once patched"


def test_acompletion(mock_server, patch_features):
    def make_call() -> Callable[[int], Awaitable[Any]]:
        async def call(index: int) -> Any:
            response = await litellm.acompletion(
                model=f"openai/{MODELS[index % 2]}",
                messages=conversation(index),
                api_base=mock_server.base_url,
                api_key="sk-test",
            )
            return snapshot(response)

        return call

    unpatched, patched = unpatched_and_patched(make_call, patch_features)
    assert_same_answers(unpatched, patched)
    first = unpatched[0]["dump"]
    assert first["model"] == MODELS[0] and first["created"] == 1_700_000_000
    assert first["choices"][0]["message"]["content"]
    assert first["usage"]["total_tokens"] > first["usage"]["prompt_tokens"] > 0


def test_router_acompletion(mock_server, patch_features):
    def make_call() -> Callable[[int], Awaitable[Any]]:
        # A router of the state being measured, as an application builds one at start-up.
        router = litellm.Router(
            model_list=[
                {
                    "model_name": f"group-{model}",
                    "litellm_params": {
                        "model": f"openai/{model}",
                        "api_base": mock_server.base_url,
                        "api_key": "sk-test",
                    },
                }
                for model in MODELS
            ]
        )

        async def call(index: int) -> Any:
            response = await router.acompletion(
                model=f"group-{MODELS[index % 2]}", messages=conversation(index)
            )
            return snapshot(response)

        return call

    unpatched, patched = unpatched_and_patched(make_call, patch_features)
    assert_same_answers(unpatched, patched)
    assert {answer["dump"]["model"] for answer in unpatched} == set(MODELS)


def test_router_latency_based_routing(mock_server, patch_features):
    """Three deployments of one group, the third recorded as far slower: both states serve every
    request from the two fast ones (which of them depends on the latencies measured as the
    requests run, so the deployment id is compared as a set) with the same answers."""
    slow = "deployment-slow"

    def make_call() -> Callable[[int], Awaitable[Any]]:
        router = litellm.Router(
            model_list=[
                {
                    "model_name": "group-latency",
                    "litellm_params": {
                        "model": f"openai/{MODELS[0]}",
                        "api_base": mock_server.base_url,
                        "api_key": "sk-test",
                    },
                    "model_info": {"id": deployment_id},
                }
                for deployment_id in ("deployment-a", "deployment-b", slow)
            ],
            routing_strategy="latency-based-routing",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Router.cache is deprecated, and still the store
            router.cache.set_cache("group-latency_map", {slow: {"latency_normalized": [50.0]}})

        async def call(index: int) -> Any:
            response = await router.acompletion(model="group-latency", messages=conversation(index))
            answer = snapshot(response)
            return answer, answer["hidden"].pop("model_id", None)

        return call

    unpatched, patched = unpatched_and_patched(make_call, patch_features)
    assert_same_answers([a for a, _ in unpatched], [a for a, _ in patched])
    for served in ({d for _, d in unpatched}, {d for _, d in patched}):
        assert served and slow not in served and served <= {"deployment-a", "deployment-b"}


@pytest.mark.parametrize("include_usage", [False, True], ids=["usage-counted", "usage-sent"])
def test_streaming(mock_server, include_usage, patch_features):
    def make_call() -> Callable[[int], Awaitable[Any]]:
        async def call(index: int) -> Any:
            options = {"stream_options": {"include_usage": True}} if include_usage else {}
            stream = await litellm.acompletion(
                model=f"openai/{MODELS[index % 2]}",
                messages=conversation(index),
                api_base=mock_server.base_url,
                api_key="sk-test",
                stream=True,
                extra_headers={"x-mock-stream-events": str(4 + index % 5)},
                **options,
            )
            return [snapshot(chunk, VARYING_STREAM_FIELDS) async for chunk in stream]

        return call

    unpatched, patched = unpatched_and_patched(make_call, patch_features)
    assert_same_answers(unpatched, patched)
    chunks = unpatched[1]  # 4 + 1 content events
    text = "".join(c["dump"]["choices"][0]["delta"]["content"] or "" for c in chunks[:5])
    assert len(text.split()) == 5
    if include_usage:
        assert chunks[-1]["dump"]["usage"]["completion_tokens"] == 5


def test_rate_limited_answers_raise_the_same(mock_server, patch_features):
    """A 429 from the server: the same exception, with the same message, in both states."""

    def make_call() -> Callable[[int], Awaitable[Any]]:
        async def call(index: int) -> Any:
            try:
                await litellm.acompletion(
                    model=f"openai/{MODELS[index % 2]}",
                    messages=conversation(index),
                    api_base=mock_server.base_url,
                    api_key="sk-test",
                    # No retries: the SDK would wait out the Retry-After first.
                    max_retries=0,
                    extra_headers={"x-mock-status": "429", "x-mock-retry-after": "7"},
                )
            except Exception as error:  # the exception is what is compared
                response = getattr(error, "response", None)
                retry_after = response.headers.get("retry-after") if response is not None else None
                return type(error), str(error), getattr(error, "status_code", None), retry_after
            raise AssertionError("a 429 answer did not raise")

        return call

    unpatched, patched = unpatched_and_patched(make_call, patch_features)
    assert_same_answers(unpatched, patched)
    kind, message, status, retry_after = unpatched[0]
    assert issubclass(kind, litellm.RateLimitError) and status == 429 and retry_after == "7"
    assert "error requested by x-mock-status" in message


def test_mock_server_stops_by_pid():
    from benches.mock_server import MockServer, cargo_missing

    if cargo_missing():
        pytest.skip(cargo_missing() or "")
    server = MockServer(stream_events=2).start()
    process = server._process
    assert server.running and server.base_url.endswith(f":{server.port}/v1")
    server.stop()
    assert not server.running and process is not None and process.returncode is not None
    server.stop()  # stopping twice is harmless
