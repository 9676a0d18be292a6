"""The LiteLLM proxy rate-limit callback (``fast_litellm.proxy_hooks``), with litellm's own
objects (``UserAPIKeyAuth``, ``DualCache``, ``ModelResponse``), LiteLLM's v3 limiter as the
reference for the shape of a refusal, a manual clock for exact admissions, and real Redis
servers (tests/redis_server.py) for limits shared by several proxy processes.

Needs ``litellm`` and ``fastapi`` (the proxy's exception type is a FastAPI ``HTTPException``);
the v3 comparisons also need ``orjson``. Without them the module is skipped, except under CI,
where a missing dependency is a failure.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import subprocess
import sys
import textwrap
from datetime import datetime, timezone

import pytest


def _require(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        message = f"the proxy hook tests need {module!r}: {exc}"
        if os.environ.get("CI"):
            raise ImportError(message) from exc
        pytest.skip(message, allow_module_level=True)


for _module in ("litellm", "fastapi", "orjson"):
    _require(_module)

from fastapi import HTTPException  # noqa: E402
from litellm import ModelResponse  # noqa: E402
from litellm.caching.dual_cache import DualCache  # noqa: E402
from litellm.exceptions import RateLimitError  # noqa: E402
from litellm.integrations.custom_logger import CustomLogger  # noqa: E402
from litellm.proxy._types import UserAPIKeyAuth  # noqa: E402
from litellm.types.utils import Usage  # noqa: E402

import fast_litellm  # noqa: E402
from fast_litellm import ManualClock, proxy_hooks  # noqa: E402
from fast_litellm.proxy_hooks import FastRateLimiter  # noqa: E402

from . import redis_server as servers  # noqa: E402

redis_server = servers.redis_server
redis_cluster = servers.redis_cluster
unique_key = servers.unique_key

MODEL = "gpt-4o"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def run(coro):
    return asyncio.run(coro)


def request(call_id: str = "call-1", model: str = MODEL, messages=MESSAGES) -> dict:
    data = {"model": model, "litellm_call_id": call_id}
    if messages is not None:
        data["messages"] = [dict(m) for m in messages]
    return data


async def admitted(hook, auth, count: int, model: str = MODEL) -> int:
    """How many of ``count`` requests the hook admits, one after another."""
    admitted = 0
    for i in range(count):
        try:
            await hook.async_pre_call_hook(auth, DualCache(), request(f"c{i}", model), "completion")
        except HTTPException as exc:
            assert exc.status_code == 429
        else:
            admitted += 1
    return admitted


async def served(hook, auth, data, response) -> None:
    """One request through the hooks the proxy calls around a successful call, in one task as
    the proxy runs them (the hooks of one request share its context)."""
    await hook.async_pre_call_hook(auth, DualCache(), data, "completion")
    await hook.async_post_call_success_hook(data, auth, response)
    kwargs = {"litellm_call_id": data["litellm_call_id"]}
    await hook.async_log_success_event(kwargs, response, None, None)


async def refusal(hook, auth, data=None) -> HTTPException:
    with pytest.raises(HTTPException) as info:
        await hook.async_pre_call_hook(auth, DualCache(), data or request(), "completion")
    return info.value


def key(**fields) -> UserAPIKeyAuth:
    fields.setdefault("api_key", "sk-test-key")
    return UserAPIKeyAuth(**fields)


def v3_key(**fields) -> UserAPIKeyAuth:
    """A key for the v3 comparisons. It names a per-model limit for another model: without one,
    v3 looks for deployment defaults in the running proxy's router, which a test does not have."""
    other = {"another-model": 1000}
    return key(metadata={"model_rpm_limit": other, "model_tpm_limit": other}, **fields)


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def hook(clock):
    return FastRateLimiter(clock=clock)


# ---- admissions -----------------------------------------------------------------------------------


def test_key_without_limits_passes_untouched(hook):
    auth = key(user_id="u", team_id="t", metadata={"tags": ["a"]})
    data = request()
    before = {k: (list(v) if isinstance(v, list) else v) for k, v in data.items()}
    assert run(hook.async_pre_call_hook(auth, DualCache(), data, "completion")) is None
    assert data == before
    assert run(admitted(hook, auth, 1000)) == 1000
    response = ModelResponse()
    run(hook.async_post_call_success_hook(data, auth, response))
    assert "additional_headers" not in response._hidden_params


def test_rpm_admits_the_burst_then_one_per_interval(hook, clock):
    auth = key(rpm_limit=60)  # burst 6, then one a second
    assert run(admitted(hook, auth, 10)) == 6
    clock.advance(0.999)
    assert run(admitted(hook, auth, 1)) == 0
    clock.advance(0.001)
    assert run(admitted(hook, auth, 3)) == 1
    clock.advance(60)
    assert run(admitted(hook, auth, 100)) == 6


def test_burst_ratio_one_admits_a_whole_minute_at_once(clock):
    hook = FastRateLimiter(clock=clock, burst_ratio=1.0)
    auth = key(rpm_limit=25)
    assert run(admitted(hook, auth, 40)) == 25
    clock.advance(60 / 25)
    assert run(admitted(hook, auth, 5)) == 1


def test_refusal_is_v3s_429_with_retry_after_and_ratelimit_headers(hook, clock):
    auth = key(rpm_limit=7)  # burst 1, one every 60/7 s
    run(admitted(hook, auth, 1))
    exc = run(refusal(hook, auth))
    assert type(exc).__name__ == "ProxyRateLimitError"
    assert isinstance(exc, HTTPException) and isinstance(exc, RateLimitError)
    assert exc.status_code == 429
    assert re.fullmatch(
        rf"Rate limit exceeded for api_key: {auth.api_key}\. Limit type: requests\. "
        r"Current limit: 7, Remaining: 0\. Limit resets at: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC",
        exc.detail,
    )
    assert exc.headers["retry-after"] == "9"  # 60/7 = 8.57 s, rounded up
    assert exc.headers["rate_limit_type"] == "requests"
    assert exc.headers["x-ratelimit-api_key-remaining-requests"] == "0"
    assert exc.headers["x-ratelimit-api_key-limit-requests"] == "7"
    assert exc.descriptor_key == "api_key"
    # Retry-After is a promise: obeying it is admitted.
    clock.advance(int(exc.headers["retry-after"]))
    assert run(admitted(hook, auth, 1)) == 1


def test_refusal_matches_v3s_exception_and_headers(hook):
    from benches.proxy_hook_cases import v3_limiter

    auth = v3_key(rpm_limit=1)
    v3 = v3_limiter()
    assert run(admitted(v3, auth, 3)) == 1
    assert run(admitted(hook, auth, 3)) == 1
    theirs, ours = run(refusal(v3, auth)), run(refusal(hook, auth))
    assert type(ours) is type(theirs)
    assert ours.status_code == theirs.status_code == 429
    assert set(theirs.headers) <= set(ours.headers)
    assert ours.headers["rate_limit_type"] == theirs.headers["rate_limit_type"]
    shape = re.compile(
        r"(Rate limit exceeded for api_key: \w+\. Limit type: \w+\. Current limit: 1)"
    )
    assert shape.match(ours.detail).group(1) == shape.match(theirs.detail).group(1)


def test_success_response_carries_v3s_ratelimit_headers(hook):
    auth = key(rpm_limit=600, tpm_limit=10_000, team_id="team-a", team_rpm_limit=1200)
    response = ModelResponse()
    run(served(hook, auth, request(), response))
    tokens = fast_litellm.count_message_tokens(MESSAGES, model=MODEL)
    assert response._hidden_params["additional_headers"] == {
        "x-ratelimit-api_key-remaining-requests": 59,  # burst 60, one used
        "x-ratelimit-api_key-limit-requests": 600,
        "x-ratelimit-api_key-remaining-tokens": 10_000 - tokens,
        "x-ratelimit-api_key-limit-tokens": 10_000,
        "x-ratelimit-team-remaining-requests": 119,
        "x-ratelimit-team-limit-requests": 1200,
    }


# ---- scopes ---------------------------------------------------------------------------------------


def test_scopes_are_independent(hook):
    team_a_1 = key(api_key="sk-a1", team_id="team-a", team_rpm_limit=30)  # team burst 3
    team_a_2 = key(api_key="sk-a2", team_id="team-a", team_rpm_limit=30)
    team_b = key(api_key="sk-b", team_id="team-b", team_rpm_limit=30)
    assert run(admitted(hook, team_a_1, 2)) == 2
    assert run(admitted(hook, team_a_2, 5)) == 1  # the team's third, shared with its other key
    exc = run(refusal(hook, team_a_1))
    assert exc.detail.startswith("Rate limit exceeded for team: team-a.")
    assert run(admitted(hook, team_b, 5)) == 3
    # Same limits, different keys: one limiter, separate buckets.
    assert len({k for k in hook._limiters if k == (30, None)}) == 1


def test_user_and_key_scopes_stack(hook):
    first = key(api_key="sk-1", user_id="alice", rpm_limit=100, user_rpm_limit=20)
    second = key(api_key="sk-2", user_id="alice", rpm_limit=100)
    assert run(admitted(hook, first, 5)) == 2  # alice's burst
    assert run(admitted(hook, second, 5)) == 5  # the second key sets no user limit
    exc = run(refusal(hook, first))
    assert exc.headers["x-ratelimit-user-limit-requests"] == "20"


def test_model_limits_are_per_key_and_per_model(hook):
    auth = key(metadata={"model_rpm_limit": {MODEL: 10, "gpt-4o-mini": 50}})
    assert run(admitted(hook, auth, 4, MODEL)) == 1
    exc = run(refusal(hook, auth))
    assert exc.detail.startswith(f"Rate limit exceeded for model_per_key: {auth.api_key}:{MODEL}.")
    assert run(admitted(hook, auth, 9, "gpt-4o-mini")) == 5
    assert run(admitted(hook, auth, 9, "claude-3")) == 9  # no limit for it
    other_key = key(api_key="sk-other", metadata=auth.metadata)
    assert run(admitted(hook, other_key, 4, MODEL)) == 1


def test_model_limits_from_budget_and_team_metadata(hook):
    from_budget = key(api_key="sk-b", model_max_budget={MODEL: {"rpm_limit": 20}})
    from_team = key(api_key="sk-t", team_id="t", team_metadata={"model_rpm_limit": {MODEL: 30}})
    assert run(admitted(hook, from_budget, 5)) == 2
    assert run(admitted(hook, from_team, 5)) == 3


def test_refused_request_is_charged_by_no_scope(hook):
    auth = key(rpm_limit=100, team_id="t", team_rpm_limit=10)  # team burst 1, key burst 10
    assert run(admitted(hook, auth, 5)) == 1
    other = key(api_key="sk-2", rpm_limit=100)
    # The key's own bucket lost only the admitted request: 9 left of its burst of 10.
    lone = key(api_key=auth.api_key, rpm_limit=100)
    assert run(admitted(hook, lone, 20)) == 9
    assert run(admitted(hook, other, 20)) == 10


def test_retry_after_is_the_longest_wait_of_the_refusing_scopes(hook, clock):
    # The key refuses for 6 s (rpm 10, burst 1), the model limit for 10 s (rpm 6): a client
    # that obeys retry-after must be admitted, not refused again by the other scope.
    auth = key(rpm_limit=10, metadata={"model_rpm_limit": {MODEL: 6}})
    assert run(admitted(hook, auth, 1)) == 1
    exc = run(refusal(hook, auth))
    assert exc.headers["retry-after"] == "10"
    assert exc.detail.startswith("Rate limit exceeded for model_per_key")
    clock.advance(10)
    assert run(admitted(hook, auth, 1)) == 1


def test_limits_beyond_one_a_nanosecond_mean_no_limit(hook):
    # "Unlimited" written as a huge number: admitted, not an error on every request.
    auth = key(rpm_limit=2**63 - 1, tpm_limit=10**11, user_id="u", user_rpm_limit=10**12)
    assert run(admitted(hook, auth, 100)) == 100
    both = key(api_key="sk-2", rpm_limit=10, tpm_limit=10**15)  # rpm 10 still limits
    assert run(admitted(hook, both, 5)) == 1


@pytest.mark.parametrize("odd", ["x" * 5000, "\ud800", "y" * 4100 + "\udfff"])
def test_an_end_user_id_the_client_chose_is_limited_whatever_it_is(hook, odd):
    # Too long for a key, or not valid Unicode (a lone surrogate in the request's JSON): the
    # request is limited like any other, not failed.
    auth = key(end_user_id=odd, end_user_rpm_limit=10)
    assert run(admitted(hook, auth, 3)) == 1
    neighbour = key(end_user_id=odd[:-1] + "z", end_user_rpm_limit=10)
    assert run(admitted(hook, neighbour, 3)) == 1


# ---- tokens ---------------------------------------------------------------------------------------


def test_tpm_charges_the_estimate_then_the_usage_beyond_it(hook, clock):
    auth = key(tpm_limit=600)  # a token bucket of 600, refilled 10 a second
    estimate = fast_litellm.count_message_tokens(MESSAGES, model=MODEL)
    usage = Usage(prompt_tokens=estimate, completion_tokens=400, total_tokens=estimate + 400)
    run(served(hook, auth, request("call-1"), ModelResponse(usage=usage)))
    # 600 - estimate - 400 left: the next request's estimate fits only if it is that small.
    left = 600 - estimate - 400
    assert left > estimate
    assert run(admitted(hook, auth, 100)) == left // estimate
    exc = run(refusal(hook, auth))
    assert exc.headers["rate_limit_type"] == "tokens"
    assert "Limit type: tokens. Current limit: 600" in exc.detail
    remaining = int(exc.headers["x-ratelimit-api_key-remaining-tokens"])
    assert remaining == left % estimate
    # The wait it promises is the refill of the missing tokens, at 10 a second.
    assert int(exc.headers["retry-after"]) == -(-(estimate - remaining) // 10)


def test_usage_below_the_estimate_gives_nothing_back(hook):
    auth = key(tpm_limit=60)
    estimate = fast_litellm.count_message_tokens(MESSAGES, model=MODEL)
    usage = Usage(prompt_tokens=1, completion_tokens=0, total_tokens=1)
    run(served(hook, auth, request("c"), ModelResponse(usage=usage)))
    assert (
        hook.limiter_for(None, 60).peek(f"api_key:{auth.api_key}", cost=0).remaining_tokens
        == 60 - estimate
    )


def test_usage_beyond_what_the_bucket_holds_empties_it(hook, clock):
    auth = key(tpm_limit=100)
    usage = Usage(prompt_tokens=10, completion_tokens=5000, total_tokens=5010)
    run(served(hook, auth, request("c"), ModelResponse(usage=usage)))
    peeked = hook.limiter_for(None, 100).peek(f"api_key:{auth.api_key}", cost=0)
    assert peeked.remaining_tokens == 0
    clock.advance(60)  # no debt is carried: a minute later the bucket is full
    assert (
        hook.limiter_for(None, 100).peek(f"api_key:{auth.api_key}", cost=0).remaining_tokens == 100
    )


def test_cached_prompt_tokens_are_not_charged(hook):
    auth = key(tpm_limit=1000)
    estimate = fast_litellm.count_message_tokens(MESSAGES, model=MODEL)
    usage = {
        "prompt_tokens": 300,
        "completion_tokens": 100,
        "total_tokens": 400,
        "prompt_tokens_details": {"cached_tokens": 250},
    }
    run(served(hook, auth, request("c"), {"usage": usage}))
    remaining = (
        hook.limiter_for(None, 1000).peek(f"api_key:{auth.api_key}", cost=0).remaining_tokens
    )
    assert remaining == 1000 - 150  # the estimate, then 150 - estimate beyond it
    assert estimate < 150


def test_a_request_without_messages_still_takes_one_token(hook):
    auth = key(tpm_limit=3)
    body = {"model": "text-embedding-3-small", "input": "hello", "litellm_call_id": "e"}
    for _ in range(3):
        run(hook.async_pre_call_hook(auth, DualCache(), dict(body), "aembedding"))
    exc = run(refusal(hook, auth, dict(body)))
    assert exc.headers["rate_limit_type"] == "tokens"


def test_more_tokens_than_the_limit_admits_is_refused_without_retry_after(hook):
    auth = key(tpm_limit=5)
    exc = run(refusal(hook, auth))
    assert "retry-after" not in exc.headers
    assert "can never be admitted" in exc.detail


def test_failure_keeps_the_charge_and_forgets_the_request(hook):
    auth = key(rpm_limit=10)
    data = request("f")

    async def failed():
        await hook.async_pre_call_hook(auth, DualCache(), data, "completion")
        assert proxy_hooks._admission.get() is not None
        await hook.async_post_call_failure_hook(data, RuntimeError("guardrail"), auth)
        await hook.async_log_failure_event({"litellm_call_id": "f"}, None, None, None)
        return proxy_hooks._admission.get()

    assert run(failed()) is None
    assert run(admitted(hook, auth, 3)) == 0  # burst 1, already spent


def test_success_of_another_call_does_not_touch_this_one(hook):
    auth = key(tpm_limit=1000)
    response = ModelResponse(usage=Usage(prompt_tokens=1, completion_tokens=800, total_tokens=801))

    async def nested_success():
        await hook.async_pre_call_hook(auth, DualCache(), request("mine"), "completion")
        await hook.async_log_success_event({"litellm_call_id": "nested"}, response, None, None)

    run(nested_success())
    remaining = (
        hook.limiter_for(None, 1000).peek(f"api_key:{auth.api_key}", cost=0).remaining_tokens
    )
    assert remaining == 1000 - fast_litellm.count_message_tokens(MESSAGES, model=MODEL)


# ---- bad metadata ---------------------------------------------------------------------------------


def test_numeric_strings_in_metadata_are_read_as_v3_reads_them(hook):
    auth = key(metadata={"model_rpm_limit": {MODEL: "20"}})
    assert run(admitted(hook, auth, 5)) == 2


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({"model_rpm_limit": {MODEL: "lots"}}, r"metadata\['model_rpm_limit'\]\['gpt-4o'\]"),
        ({"model_tpm_limit": "100"}, r"metadata\['model_tpm_limit'\] must map model names"),
        ({"model_rpm_limit": {MODEL: [5]}}, r"whole number"),
    ],
)
def test_unreadable_metadata_raises_a_clear_error(hook, metadata, message):
    with pytest.raises(ValueError, match=message):
        run(hook.async_pre_call_hook(key(metadata=metadata), DualCache(), request(), "completion"))


@pytest.mark.parametrize("limit", [0, -3])
def test_non_positive_limit_refuses_every_request_as_v3_does(hook, limit):
    from benches.proxy_hook_cases import v3_limiter

    auth = v3_key(rpm_limit=limit)
    assert run(admitted(v3_limiter(), auth, 3)) == 0
    exc = run(refusal(hook, auth))
    assert f"Current limit: {limit}, Remaining: 0" in exc.detail
    assert exc.headers["retry-after"] == "60"


def test_bad_options_fail_at_start_up():
    with pytest.raises(ValueError, match="burst_ratio"):
        FastRateLimiter(burst_ratio=0)
    with pytest.raises(ValueError):
        FastRateLimiter(on_backend_error="sometimes")
    with pytest.raises(ValueError, match="FAST_LITELLM_PROXY_BURST_RATIO"):
        FastRateLimiter.from_env({"FAST_LITELLM_PROXY_BURST_RATIO": "half"})


# ---- configuration --------------------------------------------------------------------------------


def test_config_yaml_name_resolves_to_a_callback_instance():
    from litellm.proxy.types_utils.utils import get_instance_fn

    instance = get_instance_fn("fast_litellm.proxy_hooks.proxy_rate_limiter")
    assert isinstance(instance, FastRateLimiter) and isinstance(instance, CustomLogger)
    assert instance is proxy_hooks.proxy_rate_limiter


def test_from_env_reads_the_proxy_variables(redis_server):
    hook = FastRateLimiter.from_env(
        {
            "FAST_LITELLM_PROXY_REDIS_URL": redis_server.url,
            "FAST_LITELLM_PROXY_KEY_PREFIX": "proxy-env",
            "FAST_LITELLM_PROXY_ON_BACKEND_ERROR": "deny",
            "FAST_LITELLM_PROXY_BACKEND_TIMEOUT": "0.5",
            "FAST_LITELLM_PROXY_BURST_RATIO": "0.5",
        }
    )
    assert (hook.backend, hook.key_prefix, hook.on_backend_error) == (
        redis_server.url,
        "proxy-env",
        "deny",
    )
    assert hook.limiter_for(100, None).limits.burst == 50
    assert FastRateLimiter.from_env({}).backend is None


def test_importing_fast_litellm_does_not_import_the_hook_or_litellm():
    code = "import sys, fast_litellm; print('litellm' in sys.modules, 'fast_litellm.proxy_hooks' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["False", "False"]


# ---- Redis: several proxy processes ---------------------------------------------------------------


def test_two_proxy_processes_share_limits_through_redis(redis_server, unique_key):
    # Two hooks with separate limiters on one Redis, as two proxy processes have. Burst 12 and
    # one request every 5 s: the test's few milliseconds admit exactly the burst.
    first = FastRateLimiter(backend=redis_server.url, key_prefix=unique_key, burst_ratio=1.0)
    second = FastRateLimiter(backend=redis_server.url, key_prefix=unique_key, burst_ratio=1.0)
    auth = key(rpm_limit=12, team_id="t", team_rpm_limit=1000)

    async def alternate():
        counts = [0, 0]
        for i in range(24):
            counts[i % 2] += await admitted((first, second)[i % 2], auth, 1)
        return counts

    assert sum(run(alternate())) == 12
    exc = run(refusal(second, auth))
    assert exc.headers["x-ratelimit-api_key-limit-requests"] == "12"
    assert 1 <= int(exc.headers["retry-after"]) <= 5


def test_tokens_reconciled_in_one_process_limit_the_other(redis_server, unique_key):
    first = FastRateLimiter(backend=redis_server.url, key_prefix=unique_key)
    second = FastRateLimiter(backend=redis_server.url, key_prefix=unique_key)
    auth = key(tpm_limit=100_000)

    async def scenario():
        usage = Usage(prompt_tokens=14, completion_tokens=99_980, total_tokens=99_994)
        await served(first, auth, request("big"), ModelResponse(usage=usage))
        return await refusal(second, auth)

    exc = run(scenario())
    assert exc.headers["rate_limit_type"] == "tokens"


def test_a_proxy_process_in_a_subprocess_shares_the_limit(redis_server, unique_key):
    # Burst 3, one request every 20 s: this process takes 2, the other process gets exactly 1.
    hook = FastRateLimiter(backend=redis_server.url, key_prefix=unique_key, burst_ratio=1.0)
    auth = key(rpm_limit=3)
    assert run(admitted(hook, auth, 2)) == 2
    child = textwrap.dedent(
        f"""
        import asyncio
        import os
        from fastapi import HTTPException
        from litellm.caching.dual_cache import DualCache
        from litellm.proxy._types import UserAPIKeyAuth
        from fast_litellm.proxy_hooks import FastRateLimiter

        hook = FastRateLimiter(backend={redis_server.url!r}, key_prefix={unique_key!r}, burst_ratio=1.0)
        auth = UserAPIKeyAuth(api_key="sk-test-key", rpm_limit=3)

        async def main():
            admitted = 0
            for i in range(5):
                try:
                    await hook.async_pre_call_hook(auth, DualCache(), {{"model": "m"}}, "completion")
                    admitted += 1
                except HTTPException:
                    pass
            print(admitted, flush=True)

        asyncio.run(main())
        # Leave without the interpreter's shutdown: the native Redis client's I/O thread can
        # still be inside the event loop's wake-up call when the interpreter finalizes, which
        # aborts the process; that exit path is not what this test is about.
        os._exit(0)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


def test_redis_cluster_backend(redis_cluster, unique_key):
    hook = FastRateLimiter(backend=redis_cluster.url, key_prefix=unique_key, burst_ratio=1.0)
    auth = key(rpm_limit=5, team_id="t", team_rpm_limit=5)
    assert run(admitted(hook, auth, 8)) == 5


def test_on_redis_the_scopes_that_admitted_a_refused_request_keep_its_charge(
    redis_server, unique_key
):
    # Scopes are checked concurrently on Redis (one round trip): the key admits all five, the
    # team only the first, and the key's bucket pays for all five.
    hook = FastRateLimiter(backend=redis_server.url, key_prefix=unique_key, burst_ratio=1.0)
    auth = key(rpm_limit=10, team_id="t", team_rpm_limit=1)
    assert run(admitted(hook, auth, 5)) == 1
    peeked = hook.limiter_for(10, None).peek(f"api_key:{auth.api_key}", cost=0)
    assert peeked.remaining == 5


def test_success_headers_have_v3s_names(hook):
    from benches.proxy_hook_cases import v3_limiter

    auth = v3_key(rpm_limit=600, tpm_limit=10_000, team_id="t", team_rpm_limit=1200)

    async def headers_of(limiter):
        data = request()
        response = ModelResponse()
        await limiter.async_pre_call_hook(auth, DualCache(), data, "completion")
        await limiter.async_post_call_success_hook(data, auth, response)
        return response._hidden_params["additional_headers"]

    theirs, ours = run(headers_of(v3_limiter())), run(headers_of(hook))
    assert set(ours) == set(theirs)
    limits = {name: value for name, value in ours.items() if "-limit-" in name}
    assert limits == {name: value for name, value in theirs.items() if "-limit-" in name}


def test_the_response_headers_are_ours_when_v3_runs_after_us(hook):
    # The proxy calls each hook in the order of litellm.callbacks (this callback, then v3, which
    # it registers later), builds the response's headers from the success hooks'
    # additional_headers, then applies what the response-headers hooks return.
    from benches.proxy_hook_cases import v3_limiter

    v3 = v3_limiter()
    # A window of 10 for v3, a burst of 2 here: the two answer differently.
    auth = v3_key(rpm_limit=20, tpm_limit=10_000)

    async def proxy_request(call_id):
        data = request(call_id)
        response = ModelResponse()
        for callback in (hook, v3):
            await callback.async_pre_call_hook(auth, DualCache(), data, "completion")
        for callback in (hook, v3):
            await callback.async_post_call_success_hook(data, auth, response)
        headers = {k: str(v) for k, v in response._hidden_params["additional_headers"].items()}
        for callback in (hook, v3):
            extra = await callback.async_post_call_response_headers_hook(data, auth, response)
            headers.update(extra or {})
        return headers

    first, second = run(proxy_request("c1")), run(proxy_request("c2"))
    tokens = fast_litellm.count_message_tokens(MESSAGES, model=MODEL)
    assert first["x-ratelimit-api_key-remaining-requests"] == "1"  # burst 2, one used
    assert second["x-ratelimit-api_key-remaining-requests"] == "0"
    assert second["x-ratelimit-api_key-limit-requests"] == "20"
    assert first["x-ratelimit-api_key-remaining-tokens"] == str(10_000 - tokens)
    # In the proxy's capability check: the hook is on the class itself, not inherited.
    assert "async_post_call_response_headers_hook" in vars(FastRateLimiter)


def test_the_response_headers_hook_reports_only_this_requests_admission(hook):
    auth = key(rpm_limit=600)

    async def scenario():
        data = request("mine")
        assert await hook.async_post_call_response_headers_hook(data, auth, {}) is None
        await hook.async_pre_call_hook(auth, DualCache(), data, "completion")
        ours = await hook.async_post_call_response_headers_hook(data, auth, ModelResponse())
        other = await hook.async_post_call_response_headers_hook(
            request("a nested call"), auth, ModelResponse()
        )
        failed = await hook.async_post_call_response_headers_hook(data, auth, None)
        return ours, other, failed

    ours, other, failed = run(scenario())
    assert ours == {
        "x-ratelimit-api_key-remaining-requests": "59",
        "x-ratelimit-api_key-limit-requests": "600",
    }
    assert other is None and failed is None


# ---- budgets (FastBudgetLimiter) ----------------------------------------------------------------------


def utc(*args: int) -> float:
    """Unix seconds of a UTC date and time."""
    return datetime(*args, tzinfo=timezone.utc).timestamp()


async def _proxy_request(hook, auth, call_id, cost):
    """One request through the hook: the pre-call check, then the success event with what
    LiteLLM logged as its ``response_cost``. Returns the refusal, or None."""
    from litellm.exceptions import BudgetExceededError

    try:
        await hook.async_pre_call_hook(
            auth, DualCache(), {"model": "gpt-4o", "litellm_call_id": call_id}, "completion"
        )
    except BudgetExceededError as exc:
        return exc
    await hook.async_log_success_event(
        {"litellm_call_id": call_id, "response_cost": cost}, None, None, None
    )
    return None


def test_the_budget_hook_refuses_a_key_whose_budget_is_spent(path):
    clock = ManualClock(utc(2026, 3, 14, 12))
    hook = proxy_hooks.FastBudgetLimiter(daily=1.0, clock=clock)
    alice, bob = UserAPIKeyAuth(api_key="hashed-alice"), UserAPIKeyAuth(api_key="hashed-bob")

    async def scenario():
        outcomes = []
        for i in range(4):
            outcomes.append(await _proxy_request(hook, alice, f"a{i}", 0.4))
        outcomes.append(await _proxy_request(hook, bob, "b0", 0.4))
        clock.advance(12 * 3600)  # the next UTC day
        outcomes.append(await _proxy_request(hook, alice, "a-next-day", 0.4))
        return outcomes

    outcomes = asyncio.run(scenario())
    # 0.4 + 0.4 + 0.4 crosses $1 on the third request (its cost is known only afterwards);
    # the fourth is refused, another key and the next day are not.
    assert [o is None for o in outcomes] == [True, True, True, False, True, True]
    refusal = outcomes[3]
    assert refusal.max_budget == 1.0 and refusal.current_cost == pytest.approx(1.2)
    assert refusal.entity_type == "api_key" and refusal.entity_id == "hashed-alice"
    assert "daily budget of $1.00 is exhausted: $1.20 spent" in refusal.message
    assert "2026-03-15 00:00:00 UTC" in refusal.message
    assert hook.tracker.status("api_key:hashed-alice").spent == pytest.approx(0.4)


def test_the_budget_hook_ignores_requests_without_a_key_and_bad_costs(path):
    hook = proxy_hooks.FastBudgetLimiter(
        monthly=1.0, scope="team", clock=ManualClock(utc(2026, 1, 5))
    )
    no_team, team = UserAPIKeyAuth(api_key="k"), UserAPIKeyAuth(api_key="k", team_id="t1")

    async def scenario():
        assert await _proxy_request(hook, no_team, "x", 5.0) is None
        for cost in (None, "0.5", float("nan"), True):
            assert await _proxy_request(hook, team, f"t-{cost}", cost) is None
        return hook.tracker.status("team:t1")

    assert asyncio.run(scenario()).requests == 0
    with pytest.raises(ValueError, match="scope"):
        proxy_hooks.FastBudgetLimiter(daily=1, scope="org")
    configured = proxy_hooks.FastBudgetLimiter.from_env(
        {"FAST_LITELLM_PROXY_DAILY_BUDGET": "25", "FAST_LITELLM_PROXY_BUDGET_SCOPE": "user"}
    )
    assert configured.scope == "user" and configured.tracker.daily == 25.0
