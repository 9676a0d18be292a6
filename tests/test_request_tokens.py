"""count_request_tokens / acount_request_tokens: a raw chat-completions body counts as
``count_message_tokens`` counts the parsed request, on both paths."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fast_litellm
from fast_litellm import tokens

from .corpus import corpus

CORPUS = corpus(random_count=40)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Find a record",
            "parameters": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer", "description": "the id"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "mode": {"enum": ["a", 1, 2.5, True, None]},
                },
                "required": ["id"],
            },
        },
    }
]


def conversation(texts):
    messages = [{"role": "system", "content": texts[0]}]
    for i, text in enumerate(texts[1:]):
        if i % 3 == 0:
            messages.append({"role": "user", "content": text, "name": "u"})
        elif i % 3 == 1:
            messages.append(
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": text}],
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": text},
                        }
                    ],
                }
            )
        else:
            messages.append({"role": "tool", "tool_call_id": "c", "content": text, "extra": 5})
    return messages


REQUESTS = [
    {"model": "gpt-4o", "messages": conversation(CORPUS[:12])},
    {"model": "gpt-4o", "messages": conversation(CORPUS[12:20]), "tools": TOOLS},
    {"model": "gpt-3.5-turbo", "messages": conversation(CORPUS[20:30]), "tool_choice": "none"},
    {
        "model": "claude-opus-4-5",
        "messages": conversation(CORPUS[30:40]),
        "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
    },
    {"model": "deepseek-chat", "messages": conversation(CORPUS[40:45]), "tools": TOOLS},
    {"model": "deepseek-v3", "messages": conversation(CORPUS[45:50]), "stream": True},
    # Parts read through the Python objects: an image, a search result, odd arguments.
    {
        "model": "gpt-4o-mini",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
                ],
            },
            {
                "role": "assistant",
                "tool_calls": [{"function": {"name": "f", "arguments": {"a": [1, 2.0]}}}],
            },
            {"role": "user", "content": 12345678901234567890123},
        ],
    },
    {"model": "gpt-4o", "messages": []},
]


def expected(request, model=None):
    return fast_litellm.count_message_tokens(
        request["messages"],
        model=model or request["model"],
        tools=request.get("tools"),
        tool_choice=request.get("tool_choice"),
    )


@pytest.mark.parametrize("index", range(len(REQUESTS)))
def test_body_counts_as_the_parsed_request(path, index):
    request = REQUESTS[index]
    text = json.dumps(request)
    want = expected(request)
    assert fast_litellm.count_request_tokens(text) == want
    assert fast_litellm.count_request_tokens(text.encode()) == want
    assert asyncio.run(fast_litellm.acount_request_tokens(text.encode())) == want


def test_requests_equal_litellm():
    litellm = pytest.importorskip("litellm")
    for request in REQUESTS:
        body = json.dumps(request).encode()
        assert fast_litellm.count_request_tokens(body) == litellm.token_counter(
            model=request["model"],
            messages=request["messages"],
            tools=request.get("tools"),
            tool_choice=request.get("tool_choice"),
        ), request["model"]


def test_model_argument_wins_over_the_body(path):
    request = REQUESTS[0]
    body = json.dumps(request)
    assert fast_litellm.count_request_tokens(body, model="gpt-3.5-turbo") == expected(
        request, "gpt-3.5-turbo"
    )
    no_model = json.dumps({"messages": request["messages"]})
    assert fast_litellm.count_request_tokens(no_model, model="gpt-4o") == expected(request)


def test_bodies_json_reads_but_serde_might_not(path):
    # NaN, a byte-order mark, lone surrogates, integers beyond 64 bits: read as json.loads reads
    # them.
    messages = [{"role": "user", "content": "x", "n": float("nan")}]
    assert fast_litellm.count_request_tokens(
        json.dumps({"model": "gpt-4o", "messages": messages})
    ) == fast_litellm.count_message_tokens(messages, model="gpt-4o")
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hé"}]})
    assert fast_litellm.count_request_tokens(b"\xef\xbb\xbf" + body.encode()) == (
        fast_litellm.count_request_tokens(body)
    )
    lone = '{"model": "gpt-4o", "messages": [{"role": "user", "content": "a\\ud800b"}]}'
    assert fast_litellm.count_request_tokens(lone) == fast_litellm.count_message_tokens(
        json.loads(lone)["messages"], model="gpt-4o"
    )


@pytest.mark.parametrize(
    "body, match",
    [
        ("{", "Expecting|EOF|JSON"),
        ("", "Expecting|EOF|JSON"),
        ("[1, 2]", "JSON object"),
        ('{"model": "gpt-4o"}', "no 'messages'"),
        ('{"model": "gpt-4o", "messages": null}', "no 'messages'"),
        ('{"model": "gpt-4o", "messages": "hi"}', "must be a list"),
        ('{"messages": []}', "no 'model'"),
        ('{"model": 4, "messages": []}', "no 'model'"),
    ],
)
def test_bad_bodies_raise_value_error(path, body, match):
    with pytest.raises(ValueError, match=match):
        fast_litellm.count_request_tokens(body)
    with pytest.raises(ValueError, match=match):
        asyncio.run(fast_litellm.acount_request_tokens(body.encode()))


def test_bad_arguments_raise_type_error(path):
    with pytest.raises(TypeError, match="bytes or str"):
        fast_litellm.count_request_tokens({"messages": []})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="model must be a str"):
        fast_litellm.count_request_tokens("{}", model=4)  # type: ignore[arg-type]
    # What count_message_tokens refuses inside a valid body is refused alike.
    with pytest.raises((TypeError, ValueError)):
        fast_litellm.count_request_tokens('{"model": "gpt-4o", "messages": [1]}')
    with pytest.raises(TypeError):
        fast_litellm.count_request_tokens('{"model": "gpt-4o", "messages": [], "tools": 3}')


_json_text = st.text(max_size=40)
_part = st.one_of(
    _json_text,
    st.fixed_dictionaries({"type": st.just("text"), "text": _json_text}),
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool"])},
    optional={
        "content": st.one_of(st.none(), _json_text, st.lists(_part, max_size=3), st.integers()),
        "name": _json_text,
        "tool_calls": st.lists(
            st.fixed_dictionaries(
                {
                    "function": st.fixed_dictionaries(
                        {}, optional={"arguments": st.one_of(_json_text, st.none())}
                    )
                }
            ),
            max_size=2,
        ),
        "weight": st.floats(allow_nan=False),
    },
)


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "80")), deadline=None)
@given(
    messages=st.lists(_message, max_size=4),
    model=st.sampled_from(["gpt-4o", "gpt-3.5-turbo", "claude-opus-4-5", "deepseek-v3"]),
    tools=st.sampled_from([None, TOOLS]),
)
def test_native_equals_fallback_equals_messages(messages, model, tools):
    request = {"model": model, "messages": messages}
    if tools is not None:
        request["tools"] = tools
    body = json.dumps(request, ensure_ascii=False).encode()
    want = expected(request)
    assert tokens._FALLBACK_REQUESTS.count_request(body, None) == want
    if fast_litellm._flags.native is not None:
        assert tokens._NATIVE_REQUESTS.count_request(body, None) == want
