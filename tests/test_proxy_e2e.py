"""End to end: the rate-limit callback in real LiteLLM proxies (``litellm --config``), two
processes sharing one Redis, against the local OpenAI-compatible server (benches/mock_server).

Four proxy processes start with the same models and keys: two list
``fast_litellm.proxy_hooks.proxy_rate_limiter`` in ``litellm_settings.callbacks`` with
``FAST_LITELLM_PROXY_REDIS_URL`` pointing at one ``redis-server`` and a burst ratio of 1.0 (a
key's whole rpm at once); two do not (the control). The keys and their limits come from
``general_settings.custom_auth`` (tests/proxy_auth.py), so no database is needed. Requests go
to the two proxies of a pair alternately.

Every limit refills far more slowly than a test runs: rpm 2 gives one request back every 30 s,
tpm 1000 gives the smallest token margin a test relies on back in 13 s or more, so the counts
are exact without a clock. LiteLLM's own ``parallel_request_limiter_v3`` runs in every proxy
too, counting per process: each scenario stays within what it admits per process (two requests
a key; ``max_tokens: 1`` so its token reservation is the input's), which the control pair
shows by answering every request; each 429 is therefore this callback's.

Needs LiteLLM's proxy dependencies (the test extra installs those the proxy imports at start).
Without them the module is skipped, except under CI, where they are a failure.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Sequence

import pytest

# The modules `litellm --config` imports at start-up beyond litellm's own dependencies (see
# the test extra in pyproject.toml), and what this file uses.
_PROXY_MODULES = (
    "litellm",
    "fastapi",
    "httpx",
    "redis",
    "apscheduler",
    "expression",
    "fastapi_sso",
    "jwt",
    "mcp",
    "multipart",
    "semver",
    "soundfile",
    "uvicorn",
    "uvloop",
    "websockets",
)
_missing = [m for m in _PROXY_MODULES if importlib.util.find_spec(m) is None]
if _missing:
    _message = f"the proxy end-to-end tests need {', '.join(_missing)} (pip install '.[test]')"
    if os.environ.get("CI"):
        raise ImportError(_message)
    pytest.skip(_message, allow_module_level=True)

import httpx  # noqa: E402

from benches.mock_server import MockServer, cargo_missing  # noqa: E402
from fast_litellm import SimpleRateLimiter, count_message_tokens  # noqa: E402

from . import redis_server as servers  # noqa: E402
from .proxy_auth import KEYS_VARIABLE  # noqa: E402

redis_server = servers.redis_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "gpt-4o"
# Served by an upstream that answers 800 words: a request that counts few tokens before the
# call and uses many.
LONG_MODEL = "gpt-4o-mini"
LONG_ANSWER_WORDS = 800
# A proxy starts in about 12 s on an idle 2-core machine; four start at once.
_START_TIMEOUT = 180.0
_STOP_TIMEOUT = 15.0
_REQUEST_TIMEOUT = 60.0

RPM = 2
TPM = 1000
KEYS: Dict[str, Dict[str, Any]] = {
    "sk-rpm-a": {"rpm_limit": RPM},
    "sk-rpm-b": {"rpm_limit": RPM},
    "sk-rpm-c": {"rpm_limit": RPM},
    "sk-tpm": {"tpm_limit": TPM},
    "sk-usage": {"tpm_limit": TPM},
}


def scope_id(token: str) -> str:
    """The id of a key's scope in a 429 (``UserAPIKeyAuth`` keeps a token's sha256)."""
    return hashlib.sha256(token.encode()).hexdigest()


def digits(count: int) -> List[Dict[str, str]]:
    """A user message of ``count`` digits, about two tokens each (the mock server counts four
    bytes a token, so it reports fewer than are estimated before the call)."""
    return [{"role": "user", "content": " ".join(str(i % 10) for i in range(count))}]


HI = [{"role": "user", "content": "hi"}]


# ---- processes ------------------------------------------------------------------------------------


def _litellm_command() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "litellm")
    found = beside if os.access(beside, os.X_OK) else shutil.which("litellm")
    if found is None:
        pytest.fail("the `litellm` command is not installed beside this Python")
    return found


def _proxy_environment(extra: Dict[str, str]) -> Dict[str, str]:
    # Nothing of the developer's own LiteLLM, fast_litellm, database or Redis settings, and no
    # HTTP proxy between the proxy and the upstream on loopback.
    dropped = ("FAST_LITELLM_", "LITELLM_", "DATABASE_URL", "REDIS_", "PROXY_E2E_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONPATH=os.pathsep.join([ROOT, env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Proxy:
    """One ``litellm --config <config> --host 127.0.0.1 --port <port>`` process, its output in
    a log file; ``stop()`` ends it by its process id."""

    def __init__(self, name: str, config: str, env: Dict[str, str], directory: str) -> None:
        self.name = name
        self.port = servers.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(directory, f"{name}.log")
        self._log = open(self.log_path, "wb")
        command = [_litellm_command(), "--config", config, "--host", "127.0.0.1"]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log_tail(self, lines: int = 40) -> str:
        with open(self.log_path, "rb") as log:
            return b"\n".join(log.read().splitlines()[-lines:]).decode(errors="replace")

    def ready(self, client: httpx.Client) -> bool:
        """Whether it answers its liveness probe; fails the test if it has exited."""
        if self.process.poll() is not None:
            pytest.fail(
                f"proxy {self.name} exited with {self.process.returncode} while starting:\n"
                + self.log_tail()
            )
        try:
            return client.get(self.url + "/health/liveliness", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> Optional[int]:
        """SIGTERM, then SIGKILL after a bounded wait; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=_STOP_TIMEOUT)
        self._log.close()
        return self.process.returncode


def _config(upstream: MockServer, long_upstream: MockServer, *, callback: bool) -> str:
    # JSON is YAML: the proxy reads this file with yaml.safe_load.
    def model(name: str, server: MockServer) -> Dict[str, Any]:
        params = {"model": f"openai/{name}", "api_base": server.base_url, "api_key": "sk-mock"}
        return {"model_name": name, "litellm_params": params}

    config: Dict[str, Any] = {
        "model_list": [model(MODEL, upstream), model(LONG_MODEL, long_upstream)],
        "general_settings": {
            # The proxy refuses to start without a master key; no request here uses it.
            "master_key": "sk-master-" + uuid.uuid4().hex,
            "custom_auth": "tests.proxy_auth.user_api_key_auth",
        },
    }
    if callback:
        config["litellm_settings"] = {"callbacks": ["fast_litellm.proxy_hooks.proxy_rate_limiter"]}
    return json.dumps(config, indent=2)


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Sequence[MockServer]]:
    reason = cargo_missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with MockServer() as upstream, MockServer(stream_events=LONG_ANSWER_WORDS) as long_upstream:
        yield upstream, long_upstream


@pytest.fixture(scope="module")
def key_prefix() -> str:
    """The Redis namespace of this run's buckets (one server serves every test file)."""
    return f"fast_litellm:e2e:{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def proxies(upstreams, redis_server, key_prefix, tmp_path_factory) -> Iterator[Dict[str, Any]]:
    """Two proxies with the callback on one Redis (``"limited"``) and two without
    (``"control"``), started together and stopped by their process ids."""
    servers.require_redis_server()
    directory = str(tmp_path_factory.mktemp("proxies"))
    env = _proxy_environment(
        {
            KEYS_VARIABLE: json.dumps(KEYS),
            "FAST_LITELLM_PROXY_REDIS_URL": redis_server.url,
            "FAST_LITELLM_PROXY_KEY_PREFIX": key_prefix,
            "FAST_LITELLM_PROXY_BURST_RATIO": "1.0",
            # The default 50 ms is a production latency budget: on a loaded 2-core machine a
            # check can take longer, and the default policy (allow) then admits the request
            # and skips Redis for a retry interval (seen: 3 of 4 admitted at a load of 8).
            "FAST_LITELLM_PROXY_BACKEND_TIMEOUT": "10",
        }
    )
    pairs: Dict[str, List[Proxy]] = {}
    started = time.monotonic()
    try:
        for kind, callback in (("limited", True), ("control", False)):
            config = os.path.join(directory, f"{kind}.json")
            with open(config, "w") as file:
                file.write(_config(*upstreams, callback=callback))
            pairs[kind] = []
            for i in (1, 2):  # one at a time, so the finally stops those started before a failure
                pairs[kind].append(Proxy(f"{kind}-{i}", config, env, directory))
        waiting = [proxy for pair in pairs.values() for proxy in pair]
        with httpx.Client(trust_env=False) as client:
            deadline = started + _START_TIMEOUT
            while waiting:
                waiting = [proxy for proxy in waiting if not proxy.ready(client)]
                if waiting and time.monotonic() > deadline:
                    pytest.fail(
                        f"proxy {waiting[0].name} not ready in {_START_TIMEOUT:.0f} s:\n"
                        + waiting[0].log_tail()
                    )
                if waiting:
                    time.sleep(0.1)  # polling the probe, not timing the test
        yield {**pairs, "start_seconds": time.monotonic() - started}
    finally:
        for pair in pairs.values():
            for proxy in pair:
                proxy.stop()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=_REQUEST_TIMEOUT) as client:
        yield client


# ---- requests -------------------------------------------------------------------------------------


def chat(
    client: httpx.Client,
    proxy: Proxy,
    token: str,
    messages: List[Dict[str, str]],
    model: str = MODEL,
) -> httpx.Response:
    # max_tokens: 1 keeps LiteLLM's own limiter's token reservation to the input (it reserves
    # the input again for the output otherwise); the upstream answers as usual.
    body = {"model": model, "messages": messages, "max_tokens": 1}
    headers = {"Authorization": f"Bearer {token}"}
    return client.post(proxy.url + "/chat/completions", json=body, headers=headers)


def alternately(
    client: httpx.Client,
    pair: Sequence[Proxy],
    token: str,
    count: int,
    messages: List[Dict[str, str]] = HI,
) -> List[httpx.Response]:
    """``count`` requests with ``token``, to the first proxy of the pair, then the second..."""
    return [chat(client, pair[i % 2], token, messages) for i in range(count)]


def statuses(responses: Sequence[httpx.Response]) -> List[int]:
    return [response.status_code for response in responses]


def assert_statuses(responses: Sequence[httpx.Response], expected: List[int]) -> None:
    assert statuses(responses) == expected, [(r.status_code, r.text[:300]) for r in responses]


def assert_refusal(
    response: httpx.Response, token: str, kind: str, limit: int, max_retry_after: float
) -> None:
    """LiteLLM's 429 for a key's limit, as its v3 limiter answers one."""
    assert response.status_code == 429, response.text
    headers = response.headers
    assert headers["rate_limit_type"] == kind
    assert headers["reset_at"].endswith(" UTC")
    assert headers[f"x-ratelimit-api_key-limit-{kind}"] == str(limit)
    retry_after = int(headers["retry-after"])
    assert 1 <= retry_after <= max_retry_after, retry_after
    error = response.json()["error"]
    assert error["code"] == "429"
    assert error["message"].startswith(
        f"Rate limit exceeded for api_key: {scope_id(token)}. Limit type: {kind}. "
        f"Current limit: {limit}, Remaining: "
    ), error["message"]


# ---- with the callback ----------------------------------------------------------------------------


def test_an_rpm_limit_admits_exactly_its_requests_across_both_proxies(proxies, client):
    pair = proxies["limited"]
    responses = alternately(client, pair, "sk-rpm-a", 2 * RPM)
    assert_statuses(responses, [200] * RPM + [429] * RPM)
    # What remains, as seen by each proxy in turn: the second proxy sees the first's request.
    remaining = [r.headers["x-ratelimit-api_key-remaining-requests"] for r in responses[:RPM]]
    assert remaining == ["1", "0"]
    assert {r.headers["x-ratelimit-api_key-limit-requests"] for r in responses[:RPM]} == {"2"}
    for refused in responses[RPM:]:
        # The next request is admitted 60/rpm seconds after the first.
        assert_refusal(refused, "sk-rpm-a", "requests", RPM, max_retry_after=60 / RPM)
        assert refused.headers["x-ratelimit-api_key-remaining-requests"] == "0"


def test_keys_are_limited_independently(proxies, client):
    pair = proxies["limited"]
    # Interleaved: b, c, b, c... to alternating proxies, so each proxy sees both keys.
    responses: Dict[str, List[httpx.Response]] = {"sk-rpm-b": [], "sk-rpm-c": []}
    for i in range(2 * RPM):
        for j, token in enumerate(responses):
            responses[token].append(chat(client, pair[(i + j) % 2], token, HI))
    for token, answers in responses.items():
        assert_statuses(answers, [200] * RPM + [429] * RPM)
        assert_refusal(answers[-1], token, "requests", RPM, max_retry_after=60 / RPM)


def test_a_tpm_limit_refuses_where_the_estimated_tokens_say(proxies, client):
    pair = proxies["limited"]
    messages = digits(150)
    estimate = count_message_tokens(messages, model=MODEL)
    assert estimate == 306
    # The upstream reports fewer tokens than estimated (3 + 299 bytes / 4 + 16 words = 93), so
    # nothing is charged after the calls: three requests take 918 of the 1000 tokens, and the
    # fourth lacks 224 of its 306, 13 s of refill at 1000 a minute.
    admitted = TPM // estimate
    responses = alternately(client, pair, "sk-tpm", 6, messages)
    assert_statuses(responses, [200] * admitted + [429] * (6 - admitted))
    usage = responses[0].json()["usage"]
    assert usage["total_tokens"] == 93 < estimate
    remaining = [int(r.headers["x-ratelimit-api_key-remaining-tokens"]) for r in responses[:3]]
    # As of each check; the bucket refills a little between two requests.
    for index, value in enumerate(remaining):
        assert TPM - (index + 1) * estimate <= value < TPM - (index + 1) * estimate + 50
    refused = responses[admitted]
    # The wait is for the tokens the request lacks: at most 306 at 1000 a minute, 19 s.
    assert_refusal(refused, "sk-tpm", "tokens", TPM, max_retry_after=estimate * 60 / TPM + 1)
    assert int(refused.headers["x-ratelimit-api_key-remaining-tokens"]) < estimate


def test_the_tokens_a_call_used_on_one_proxy_limit_the_other(
    proxies, client, redis_server, key_prefix
):
    first, second = proxies["limited"]
    # 8 tokens estimated, 803 used (3 + 800 words): the success callback charges the other 795.
    small = chat(client, first, "sk-usage", HI, model=LONG_MODEL)
    assert small.status_code == 200, small.text
    assert small.json()["usage"]["total_tokens"] == 3 + LONG_ANSWER_WORDS
    # LiteLLM runs success callbacks after the response is sent: wait (with a deadline) until
    # the charge is in Redis, read as the proxies' own limiter reads it.
    bucket = SimpleRateLimiter(
        tokens_per_minute=TPM, backend=redis_server.url, key_prefix=key_prefix
    )
    key = f"api_key:{scope_id('sk-usage')}"
    deadline = time.monotonic() + 30
    while (bucket.peek(key, cost=0).remaining_tokens or 0) > TPM // 2:
        assert time.monotonic() < deadline, "the call's usage was never charged"
        time.sleep(0.02)  # polling Redis, not timing the test
    # 756 tokens: within the 992 left after the estimate alone, beyond the 197 left after the
    # usage (by 559 tokens, 33 s of refill).
    messages = digits(375)
    assert count_message_tokens(messages, model=MODEL) == 756
    refused = chat(client, second, "sk-usage", messages)
    assert_refusal(refused, "sk-usage", "tokens", TPM, max_retry_after=756 * 60 / TPM + 1)
    assert int(refused.headers["x-ratelimit-api_key-remaining-tokens"]) < 300


# ---- without the callback -------------------------------------------------------------------------


def test_without_the_callback_the_same_requests_are_all_answered(proxies, client):
    pair = proxies["control"]
    answers = alternately(client, pair, "sk-rpm-a", 2 * RPM)
    for i in range(2 * RPM):
        for j, token in enumerate(("sk-rpm-b", "sk-rpm-c")):
            answers.append(chat(client, pair[(i + j) % 2], token, HI))
    answers += alternately(client, pair, "sk-tpm", 6, digits(150))
    answers.append(chat(client, pair[0], "sk-usage", HI, model=LONG_MODEL))
    answers.append(chat(client, pair[1], "sk-usage", digits(375)))
    assert_statuses(answers, [200] * len(answers))
    # The headers are v3's here, counted per process: each proxy has had one request of the
    # key, then two. With the callback the second proxy's first answer says 0 (the pair's).
    remaining = [r.headers["x-ratelimit-api_key-remaining-requests"] for r in answers[: 2 * RPM]]
    assert remaining == ["1", "1", "0", "0"]
