"""The OpenAI SDK's send on our transport (the ``http`` feature of ``patch()``): LiteLLM gives the
same answers, the same exceptions and the same response headers as without the patch.

Each case registers one response on a real local server (``tests/http_server.py``), sends the
same ``litellm.acompletion`` calls unpatched, then patched, in one event loop, and compares what
LiteLLM returns or raises: the answer's ``model_dump()``, its hidden parameters (the response
headers LiteLLM exposes among them) and ``_response_headers``; an exception's class, status code,
message, provider, headers and body, and its response's status and headers; the number of
requests the server saw (the SDK's own retries included). ``_response_ms``,
``litellm_overhead_time_ms`` and ``litellm_call_id`` are made anew by LiteLLM on every call and
are left out.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, List, Optional, Tuple

import pytest

pytest.importorskip("litellm")
pytest.importorskip("openai")

import httpx  # noqa: E402
import litellm  # noqa: E402
import openai._base_client as sdk_base  # noqa: E402

import fast_litellm  # noqa: E402
from fast_litellm import litellm_patch  # noqa: E402
from tests.http_server import HttpTestServer, http_server  # noqa: E402, F401

PLACE = "openai._base_client.AsyncAPIClient._send_request"
VARYING_HIDDEN_PARAMS = frozenset({"_response_ms", "litellm_overhead_time_ms", "litellm_call_id"})
JSON = (("Content-Type", "application/json"),)
HEADERS = (
    *JSON,
    ("x-request-id", "req-123"),
    ("openai-processing-ms", "17"),
    ("x-ratelimit-remaining-requests", "99"),
    ("x-ratelimit-remaining-tokens", "12345"),
)
COMPLETION = {
    "id": "chatcmpl-abc",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-4o",
    "system_fingerprint": "fp_1",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris.", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
}


def error_body(status: int) -> bytes:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return json.dumps(
        {"error": {"message": f"refused with {status}", "type": kind, "param": None, "code": "x"}}
    ).encode()


# name -> (status, headers, body)
ANSWERS: Dict[str, Tuple[int, Tuple[Tuple[str, str], ...], bytes]] = {
    "ok": (200, HEADERS, json.dumps(COMPLETION).encode()),
    "ok_with_cookie": (
        200,
        (*HEADERS, ("Set-Cookie", "session=abc; Path=/")),
        json.dumps(COMPLETION).encode(),
    ),
    "tool_call": (
        200,
        JSON,
        json.dumps(
            {
                **COMPLETION,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": None,
                            "tool_calls": [
                                {
                                    "id": "call_1",
                                    "type": "function",
                                    "function": {"name": "capital", "arguments": '{"c": "FR"}'},
                                }
                            ],
                        },
                        "finish_reason": "tool_calls",
                    }
                ],
            }
        ).encode(),
    ),
    **{
        f"status_{status}": (status, (*HEADERS, ("x-should-retry", "false")), error_body(status))
        for status in (400, 401, 404, 429, 500, 503)
    },
    "status_429_retry_after": (429, (*JSON, ("retry-after", "7")), error_body(429)),
    "status_429_retried": (429, (*JSON, ("retry-after-ms", "1")), error_body(429)),
    # A POST redirected with 307 is sent again, body and all, to "ok".
    "redirect": (307, (("Location", "/answer/ok/chat/completions"),), b""),
    "junk_200": (200, JSON, b"this is not json"),
    "junk_200_text": (200, (("Content-Type", "text/plain"),), b"<html>oops</html>"),
    "empty_200": (200, JSON, b""),
    "json_null_200": (200, JSON, b"null"),
    "junk_500": (500, (("Content-Type", "text/html"),), b"<html>internal error</html>"),
    "junk_502_empty": (502, (), b""),
}


def snapshot_answer(response: Any) -> Dict[str, Any]:
    hidden = dict(getattr(response, "_hidden_params", None) or {})
    return {
        "type": type(response).__qualname__,
        "dump": response.model_dump(),
        "hidden": {k: v for k, v in hidden.items() if k not in VARYING_HIDDEN_PARAMS},
        "response_headers": getattr(response, "_response_headers", None),
    }


def snapshot_error(exc: BaseException) -> Dict[str, Any]:
    response: Optional[httpx.Response] = getattr(exc, "response", None)
    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "status_code": getattr(exc, "status_code", None),
        "message": getattr(exc, "message", str(exc)),
        "str": str(exc),
        "llm_provider": getattr(exc, "llm_provider", None),
        "headers": dict(getattr(exc, "headers", None) or {}),
        "body": getattr(exc, "body", None),
        "response": (
            None
            if not isinstance(response, httpx.Response)
            else (response.status_code, response.headers.multi_items(), response.text)
        ),
    }


async def outcome(server: HttpTestServer, name: str, **options: Any) -> Dict[str, Any]:
    try:
        response = await litellm.acompletion(
            model="openai/gpt-4o",
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            api_base=server.url + f"/answer/{name}",
            api_key="sk-test",
            **options,
        )
    except Exception as exc:
        return {"raised": snapshot_error(exc)}
    return {"answered": snapshot_answer(response)}


def unpatched_and_patched(
    server: HttpTestServer, names: List[str], **options: Any
) -> Tuple[List[Any], List[Any], Dict[str, int]]:
    """The outcome of one call per answer, unpatched and patched (``http`` only), with the
    requests the server saw per state, and the patched state's SDK send counts."""

    async def run_all() -> List[Any]:
        results = []
        for name in names:
            server.answer(name, *ANSWERS[name])
            result = await outcome(server, name, **options)
            results.append((result, server.answered(name)))
        return results

    async def main() -> Any:
        fast_litellm.unpatch()
        unpatched = await run_all()
        before = dict(fast_litellm.patch_status()["features"]["http"]["sdk_sends"])
        status = fast_litellm.patch(features=["http"])
        assert status["features"]["http"]["entry_points"][PLACE] == {"status": "patched"}
        patched = await run_all()
        after = fast_litellm.patch_status()["features"]["http"]["sdk_sends"]
        sends = {kind: after[kind] - before[kind] for kind in after}
        return unpatched, patched, sends

    return asyncio.run(main())


@pytest.fixture(autouse=True)
def restore_patch_state():
    """Patching is process-wide: every test leaves it as it found it."""
    was_patched = fast_litellm.patch_status()["patched"]
    return_headers = litellm.return_response_headers
    yield
    litellm.return_response_headers = return_headers
    fast_litellm.unpatch()
    if was_patched:
        fast_litellm.patch()


def assert_same(unpatched: List[Any], patched: List[Any], names: List[str]) -> None:
    assert len(unpatched) == len(patched) == len(names)
    for name, before, after in zip(names, unpatched, patched, strict=True):
        assert after == before, f"{name}: answered differently once patched"


@pytest.mark.parametrize("return_response_headers", [False, True])
def test_answers_are_the_same(http_server, return_response_headers):  # noqa: F811
    litellm.return_response_headers = return_response_headers
    names = ["ok", "ok_with_cookie", "tool_call", "ok"]
    unpatched, patched, sends = unpatched_and_patched(http_server, names)
    assert_same(unpatched, patched, names)
    answer = unpatched[0][0]["answered"]
    assert answer["dump"]["id"] == "chatcmpl-abc" and answer["dump"]["usage"]["total_tokens"] == 14
    exposed = answer["hidden"]["additional_headers"]
    assert exposed["llm_provider-x-request-id"] == "req-123"
    assert exposed["x-ratelimit-remaining-requests"] == "99"
    # Every patched request took the direct send.
    assert sends == {"direct": len(names), "httpx": 0}


def test_a_redirect_is_followed_the_same(http_server):  # noqa: F811
    names = ["ok", "redirect"]
    unpatched, patched, sends = unpatched_and_patched(http_server, names)
    assert_same(unpatched, patched, names)
    redirected = unpatched[1][0]["answered"]
    assert redirected["dump"] == unpatched[0][0]["answered"]["dump"]
    # The direct send sent the first request; httpx's redirect loop the second.
    assert sends == {"direct": 2, "httpx": 0} and http_server.answered("ok") == 2


def test_a_cookie_is_kept_by_the_client(http_server):  # noqa: F811
    """A Set-Cookie goes into the client's jar and comes back with the next request, as
    through httpx's own send."""

    async def cookies_sent() -> List[Any]:
        http_server.answer("ok_with_cookie", *ANSWERS["ok_with_cookie"])
        sent = []
        for _ in range(2):
            await outcome(http_server, "ok_with_cookie")
            # The SDK clients LiteLLM keeps, and their httpx clients' cookie jars.
            cached = litellm.in_memory_llm_clients_cache.cache_dict.values()
            clients = [
                c._client
                for c in cached
                if isinstance(getattr(c, "_client", None), httpx.AsyncClient)
            ]
            sent.append(
                sorted({(c.name, c.value) for client in clients for c in client.cookies.jar})
            )
        return sent

    async def main() -> Any:
        fast_litellm.unpatch()
        unpatched = await cookies_sent()
        fast_litellm.patch(features=["http"])
        patched = await cookies_sent()
        return unpatched, patched

    unpatched, patched = asyncio.run(main())
    assert unpatched == patched == [[("session", "abc")], [("session", "abc")]]


@pytest.mark.parametrize("return_response_headers", [False, True])
def test_errors_are_the_same(http_server, return_response_headers):  # noqa: F811
    litellm.return_response_headers = return_response_headers
    names = [
        name
        for name in ANSWERS
        if name.startswith(("status_", "junk_", "empty_", "json_")) and name != "status_429_retried"
    ]
    unpatched, patched, sends = unpatched_and_patched(http_server, names, max_retries=0)
    assert_same(unpatched, patched, names)
    raised = {name: result[0]["raised"] for name, result in zip(names, unpatched, strict=True)}
    assert raised["status_429"]["status_code"] == 429
    assert raised["status_401"]["type"].endswith("AuthenticationError")
    assert raised["status_404"]["type"].endswith("NotFoundError")
    assert raised["status_503"]["status_code"] == 503
    assert "refused with 400" in raised["status_400"]["message"]
    assert sends["direct"] == len(names) and sends["httpx"] == 0


def test_the_sdk_retries_the_same(http_server):  # noqa: F811
    """The SDK's retries sit above the send: the same number of requests, the same error."""
    # The first is retried after 1 ms; the second says it must not be (x-should-retry: false).
    names = ["status_429_retried", "status_503"]
    unpatched, patched, sends = unpatched_and_patched(http_server, names, max_retries=2)
    assert_same(unpatched, patched, names)
    assert [attempts for _, attempts in unpatched] == [3, 1]
    assert sends["direct"] == 4


def test_a_streamed_request_takes_the_sdk_path(http_server):  # noqa: F811
    """A streamed request is sent by httpx's own send (the patch stays out of its way)."""
    chunk = {**COMPLETION, "object": "chat.completion.chunk"}
    chunk["choices"] = [{"index": 0, "delta": {"content": "Paris."}, "finish_reason": "stop"}]
    body = b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"
    http_server.answer("stream", 200, (("Content-Type", "text/event-stream"),), body)

    async def streamed() -> List[Any]:
        stream = await litellm.acompletion(
            model="openai/gpt-4o",
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            api_base=http_server.url + "/answer/stream",
            api_key="sk-test",
            stream=True,
        )
        return [chunk.choices[0].delta.content async for chunk in stream]

    async def main() -> Any:
        fast_litellm.unpatch()
        unpatched = await streamed()
        fast_litellm.patch(features=["http"])
        before = dict(fast_litellm.patch_status()["features"]["http"]["sdk_sends"])
        patched = await streamed()
        after = fast_litellm.patch_status()["features"]["http"]["sdk_sends"]
        return unpatched, patched, after["direct"] - before["direct"]

    unpatched, patched, direct = asyncio.run(main())
    assert unpatched == patched and "Paris." in unpatched
    assert direct == 0


def test_unpatch_restores_the_sdk_send():
    original = sdk_base.AsyncAPIClient.__dict__["_send_request"]
    fast_litellm.unpatch()
    assert sdk_base.AsyncAPIClient.__dict__["_send_request"] is original
    fast_litellm.patch(features=["http"])
    replacement = sdk_base.AsyncAPIClient.__dict__["_send_request"]
    assert replacement is not original and replacement.__wrapped__ is original
    status = fast_litellm.unpatch()
    assert sdk_base.AsyncAPIClient.__dict__["_send_request"] is original
    assert status["features"]["http"]["entry_points"][PLACE] == {"status": "not patched"}
    # Patching again installs the very same replacement.
    fast_litellm.patch(features=["http"])
    assert sdk_base.AsyncAPIClient.__dict__["_send_request"] is replacement
    fast_litellm.unpatch()
    assert sdk_base.AsyncAPIClient.__dict__["_send_request"] is original


def test_another_signature_is_skipped_with_the_reason(monkeypatch):
    fast_litellm.unpatch()

    async def _send_request(self: Any, request: Any, *, stream: bool, timeout: Any = None) -> Any:
        raise AssertionError("not called")

    monkeypatch.setattr(sdk_base.AsyncAPIClient, "_send_request", _send_request)
    status = fast_litellm.patch(features=["http"])
    entry = status["features"]["http"]["entry_points"][PLACE]
    assert entry["status"] == "skipped" and "signature" in entry["reason"]
    assert sdk_base.AsyncAPIClient.__dict__["_send_request"] is _send_request
    fast_litellm.unpatch()
    assert PLACE not in litellm_patch._sdk_originals


def test_another_httpx_release_is_skipped_with_the_reason(monkeypatch):
    import httpx

    fast_litellm.unpatch()
    original = sdk_base.AsyncAPIClient.__dict__["_send_request"]
    monkeypatch.setattr(httpx, "__version__", "0.99.0")
    status = fast_litellm.patch(features=["http"])
    entry = status["features"]["http"]["entry_points"][PLACE]
    assert entry["status"] == "skipped" and "not 0.99.0" in entry["reason"]
    assert sdk_base.AsyncAPIClient.__dict__["_send_request"] is original
    fast_litellm.unpatch()


URL_PLACE = "openai._base_client.BaseClient._prepare_url"


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:1/v1",
        "http://127.0.0.1:1/v1/",
        "https://example.com/openai/deployments/x?api-version=2024-10-21",
        "http://user:pw@example.com:8080/a%20b/",
    ],
)
def test_the_request_url_is_the_sdks(base_url):
    """The kept URL of a (base URL, path) pair is the one the SDK makes, also after the client's
    base URL is set anew."""
    import openai

    original = sdk_base.BaseClient.__dict__["_prepare_url"]
    fast_litellm.patch(features=["http"])
    assert fast_litellm.patch_status()["features"]["http"]["entry_points"][URL_PLACE] == {
        "status": "patched"
    }
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=base_url)
    paths = ["/chat/completions", "chat/completions", "/embeddings?x=1", "https://other.org/p", ""]
    for _ in range(2):
        for path in paths:
            made = client._prepare_url(path)
            assert str(made) == str(original(client, path)) and made == original(client, path)
    assert client._prepare_url("/chat/completions") is client._prepare_url("/chat/completions")
    client.base_url = "http://127.0.0.1:2/other/"
    assert (
        str(client._prepare_url("/chat/completions")) == "http://127.0.0.1:2/other/chat/completions"
    )
    fast_litellm.unpatch()
    assert sdk_base.BaseClient.__dict__["_prepare_url"] is original
