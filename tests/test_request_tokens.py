"""count_request_tokens / acount_request_tokens: a raw chat-completions body counts as
``count_message_tokens`` counts the parsed request, on both paths."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fast_litellm
from fast_litellm import tokens

from .conftest import run_python
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
    # Chat templates that price tools their own way, on tiktoken encodings.
    {"model": "qwen3.5-72b", "messages": conversation(CORPUS[40:42]), "tools": TOOLS},
    {
        "model": "xai/grok-4-1-fast-reasoning",
        "messages": conversation(CORPUS[42:44]),
        "tools": TOOLS,
    },
    {"model": "xai/grok-4.3", "messages": conversation(CORPUS[44:46]), "tool_choice": "auto"},
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
    # `-0` is the int 0 to json.loads (and `-0.0` the float -0.0), in arguments and schemas.
    call = '{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": ARGS}}]}'
    tool = '{"type": "function", "function": {"name": "g", "parameters": {"type": "object", '
    tool += '"properties": {"x": {"type": "integer", "enum": [ENUM, 1]}}}}}'
    for number in ("-0", "-0.0", "-0e0", "0"):
        for model in ("gpt-4o", "claude-opus-4-5"):
            body = '{"model": "MODEL", "messages": [CALL], "tools": [TOOL]}'.replace("MODEL", model)
            body = body.replace("CALL", call.replace("ARGS", f'{{"a": {number}, "b": [{number}]}}'))
            body = body.replace("TOOL", tool.replace("ENUM", number))
            request = json.loads(body)
            assert fast_litellm.count_request_tokens(body) == fast_litellm.count_message_tokens(
                request["messages"], model=model, tools=request["tools"]
            ), (number, model)


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "80")), deadline=None)
@given(numbers=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=8))
def test_floats_read_as_json_loads_reads_them(numbers):
    # Every float's text as Python writes it (repr: the shortest that reads back), including
    # those a parser that is not correctly rounded reads as a neighbouring float, whose text
    # then counts differently (124.13567304584899 was one).
    numbers = numbers + [124.13567304584899, 2.2250738585072011e-308]
    listed = ", ".join(map(repr, numbers))
    use = '{"type": "tool_use", "id": "t", "name": "geo", "input": {"xs": [LIST]}}'
    tool = '{"type": "function", "function": {"name": "f", "parameters": {"type": "object", '
    tool += '"properties": {"x": {"type": "number", "enum": [LIST]}}}}}'
    bodies = [
        '{"model": "claude-opus-4-5", "messages": [{"role": "assistant", "content": [USE]}]}',
        '{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "tools": [TOOL]}',
    ]
    for body in bodies:
        body = body.replace("USE", use).replace("TOOL", tool).replace("LIST", listed)
        request = json.loads(body)
        want = fast_litellm.count_message_tokens(
            request["messages"], model=request["model"], tools=request.get("tools")
        )
        assert tokens._FALLBACK_REQUESTS.count_request(body, None) == want
        if fast_litellm._flags.native is not None:
            assert tokens._NATIVE_REQUESTS.count_request(body, None) == want, body


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


def test_acount_hands_over_off_the_event_loop(path, monkeypatch):
    # A body the native path hands to json.loads + count_message_tokens (a model whose chat
    # template prices tools: LiteLLM counts it), and the fallback path's counts, run on a worker
    # thread: the event loop goes on meanwhile.
    threads = []
    original = tokens._count_request_objects

    def spy(body, model):
        threads.append(threading.get_ident())
        return original(body, model)

    monkeypatch.setattr(tokens, "_count_request_objects", spy)
    request = {"model": "deepseek-chat", "messages": conversation(CORPUS[:3]), "tools": TOOLS}
    body = json.dumps(request)

    async def count():
        return threading.get_ident(), await fast_litellm.acount_request_tokens(body)

    loop_thread, counted = asyncio.run(count())
    assert counted == expected(request)
    assert threads and loop_thread not in threads


@pytest.mark.parametrize(
    "body",
    [
        '{"messages": [1]}',
        '{"messages": [{"role": "user", "content": "hi"}], "tools": 3}',
        '{"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}], '
        '"tools": {"a": 1}}',
        '{"model": "mistral-large", "messages": [{"role": "user", "tool_calls": 5}]}',
        '{"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": 3}]}]}',
        '{"model": "gpt-4o", "messages": [], "tools": [{"type": "function"}], "tool_choice": 7}',
    ],
)
def test_bodies_refused_or_not_alike_on_both_paths(body):
    # The native reader checks messages and tools before it knows the model; what it refuses
    # is judged as json.loads + count_message_tokens judges it: the same error first, or a count.
    def outcome(count):
        try:
            return count()
        except Exception as exc:  # noqa: BLE001 - the class and message are the answer
            return (type(exc), str(exc))

    want = outcome(lambda: tokens._FALLBACK_REQUESTS.count_request(body, None))
    request = json.loads(body)
    if isinstance(request.get("model"), str):
        assert want == outcome(
            lambda: fast_litellm.count_message_tokens(
                request["messages"],
                model=request["model"],
                tools=request.get("tools"),
                tool_choice=request.get("tool_choice"),
            )
        )
    if fast_litellm._flags.native is not None:
        assert outcome(lambda: tokens._NATIVE_REQUESTS.count_request(body, None)) == want


_WITHOUT_LITELLM = """
import sys
sys.modules["litellm"] = None  # as if it were not installed
import fast_litellm
tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
messages = [{"role": "user", "content": "hello"}]
for model in ("qwen3.5-72b", "xai/grok-4.3"):
    counted = fast_litellm.count_message_tokens(messages, model=model, tools=tools)
    assert counted == fast_litellm.count_message_tokens(messages, model="gpt-4o", tools=tools)
    body = '{"model": "%s", "messages": [{"role": "user", "content": "hello"}], "tools": %s}'
    import json
    assert fast_litellm.count_request_tokens(body % (model, json.dumps(tools))) == counted
print("ok")
"""


def test_chat_template_models_count_here_without_litellm():
    # Without litellm there is no one to hand their tools to: counted by the rules used for
    # every other model, not an ImportError.
    result = run_python(_WITHOUT_LITELLM)
    assert result.returncode == 0 and result.stdout.split()[-1:] == ["ok"], result.stderr


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


# ---- large bodies (counted on the pool above a threshold), many messages, mixed bodies -------

_LONG = " ".join(CORPUS)
# The native path counts a request on several threads from this many bytes of text on.
_PARALLEL_MIN_BYTES = 16 * 1024


def _text_bytes(messages) -> int:
    """The bytes of text the native path counts in ``messages`` (every string in them)."""
    strings = [
        value
        for m in messages
        for value in (m.values() if not isinstance(m["content"], list) else [m["role"]])
        if isinstance(value, str)
    ]
    parts = [p["text"] for m in messages if isinstance(m["content"], list) for p in m["content"]]
    return sum(len(s.encode()) for s in strings + parts)


def _chat_of(total_bytes: int, per_message: int):
    """A conversation of about ``total_bytes`` of corpus text (ASCII and not), in messages of
    ``per_message`` characters."""
    source = _LONG * (2 + total_bytes // len(_LONG))
    messages = [{"role": "system", "content": "Be brief."}]
    offset = 0
    while _text_bytes(messages) < total_bytes:
        text = source[offset : offset + per_message]
        offset += per_message
        if len(messages) % 2:
            messages.append({"role": "user", "content": text})
        else:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": text}]})
    return messages


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-3.5-turbo", "claude-opus-4-5"])
@pytest.mark.parametrize(
    "total_chars, per_message",
    # Below and above the size from which the native path counts on several threads (16 KiB
    # of text), many short messages, and one message larger than all the others together.
    [(2_000, 500), (12_000, 600), (20_000, 1_000), (60_000, 2_000), (40_000, 40_000)],
)
def test_large_bodies_count_as_the_parsed_request(path, model, total_chars, per_message):
    request = {"model": model, "messages": _chat_of(total_chars, per_message), "tools": TOOLS}
    want = expected(request)
    for body in (json.dumps(request).encode(), json.dumps(request, ensure_ascii=False)):
        assert fast_litellm.count_request_tokens(body) == want
        assert asyncio.run(fast_litellm.acount_request_tokens(body)) == want


def test_sizes_around_the_parallel_threshold_count_alike(path):
    # The same text, cut into bodies just below and just above the threshold: the counts grow
    # with the text exactly as count_message_tokens' do.
    base = _chat_of(_PARALLEL_MIN_BYTES - 800, 300)
    sizes = []
    for extra in range(0, 1_600, 97):
        messages = base + [{"role": "user", "content": "word " * extra}]
        sizes.append(_text_bytes(messages))
        body = json.dumps({"model": "gpt-4o", "messages": messages})
        assert fast_litellm.count_request_tokens(body) == fast_litellm.count_message_tokens(
            messages, model="gpt-4o"
        )
    assert min(sizes) < _PARALLEL_MIN_BYTES <= max(sizes)


def test_many_messages(path):
    messages = [
        {"role": ["user", "assistant", "tool"][i % 3], "content": CORPUS[i % len(CORPUS)][:80]}
        for i in range(3_000)
    ]
    request = {"model": "gpt-4o", "messages": messages, "tool_choice": "none"}
    assert fast_litellm.count_request_tokens(json.dumps(request)) == expected(request)


def test_bodies_that_are_not_plain_throughout(path):
    # Plain messages around ones read as Python objects (an image, a search result, arguments
    # that are not a string), keys given twice (json.loads keeps the last value): each read as
    # count_message_tokens reads json.loads' result.
    plain = _chat_of(20_000, 1_500)
    image = {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}
        ],
    }
    search = {
        "role": "user",
        "search_results": [{"source": "s", "title": "t", "content": [{"text": "found"}]}],
    }
    odd = {"role": "assistant", "tool_calls": [{"function": {"arguments": {"a": [1, 2.5]}}}]}
    for messages in (
        plain[:5] + [image] + plain[5:],
        [search] + plain,
        plain + [odd],
    ):
        request = {"model": "gpt-4o", "messages": messages}
        assert fast_litellm.count_request_tokens(json.dumps(request)) == expected(request)
    text = json.dumps(plain[1]["content"])
    twice = (
        '{"model": "gpt-4o", "model": "gpt-3.5-turbo", "messages": [{"role": "user", '
        f'"content": "x", "role": "system", "content": {text}}}]}}'
    )
    assert fast_litellm.count_request_tokens(twice) == expected(json.loads(twice))


def test_errors_of_a_message_name_its_index(path):
    messages = _chat_of(20_000, 1_500) + [{"role": "assistant", "function_call": 5}]
    body = json.dumps({"model": "gpt-4o", "messages": messages})
    with pytest.raises(ValueError) as raised:
        fast_litellm.count_message_tokens(messages, model="gpt-4o")
    with pytest.raises(ValueError, match=re.escape(str(raised.value))):
        fast_litellm.count_request_tokens(body)
    assert f"messages[{len(messages) - 1}]" in str(raised.value)


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "\xff"}]}',
        b'{"model": "gpt-4o", "stream": "\xc3", "messages": []}',
        b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "a"}]',
        b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "a\x01"}]}',
        b'{"model": "gpt-4o", "messages": []} []',
    ],
)
def test_invalid_bodies_raise_what_json_loads_raises(path, body):
    with pytest.raises(ValueError) as raised:
        json.loads(body)
    with pytest.raises(type(raised.value), match=re.escape(str(raised.value))):
        fast_litellm.count_request_tokens(body)


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "skipped",
    [
        "1" * 5000,  # beyond int()'s digit limit: json.loads raises ValueError
        "-" + "9" * 4301,
        "1e400",  # inf to json.loads
        "123456789012345678901234567890",
        _deep(300),  # deeper than the native reader goes, well within json.loads's reach
        _deep(5000),  # beyond json.loads's recursion limit: RecursionError
        '{"a": [1, {"b": "\\u00e9\\n\\"x"}], "c": null, "d": true}',
        '"\\x"',  # an invalid escape
        '"\\ud800"',  # a lone surrogate: json.loads keeps it
        "[1, 2,]",
    ],
)
def test_values_the_count_skips_are_read_as_json_loads_reads_them(path, skipped):
    # Where json.loads refuses a body (or runs out of recursion) for a value the count skips,
    # the count raises the same; where it reads it, the count is the count of the rest.
    for body in (
        '{"model": "gpt-4o", "seed": SKIPPED, "messages": [{"role": "user", "content": "hi"}]}',
        '{"model": "gpt-4o", "messages": [{"role": "user", "x": SKIPPED, "content": "hi"}]}',
        '{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi", '
        '"tool_calls": [{"id": SKIPPED, "function": {"arguments": "{}", "n": SKIPPED}}]}]}',
    ):
        body = body.replace("SKIPPED", skipped)
        try:
            request = json.loads(body)
        except (ValueError, RecursionError) as exc:
            with pytest.raises(type(exc)):
                fast_litellm.count_request_tokens(body)
            continue
        assert fast_litellm.count_request_tokens(body) == fast_litellm.count_message_tokens(
            request["messages"], model="gpt-4o"
        )


_LOW_RECURSION_LIMIT = """
import json, sys
import fast_litellm

def outcome(call):
    try:
        return str(call())
    except (ValueError, RecursionError) as exc:
        return type(exc).__name__

sys.setrecursionlimit(120)
for depth in (129, 150, 200, 254, 255, 256, 300):
    nested = "[" * depth + "]" * depth
    for body in (
        '{"model": "gpt-4o", "x": NESTED, "messages": [{"role": "user", "content": "hi"}]}',
        '{"model": NESTED, "messages": [{"role": "user", "content": "hi"}]}',
        '{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi", "x": NESTED}]}',
    ):
        body = body.replace("NESTED", nested)
        reference = outcome(lambda: json.loads(body) and "read")
        counted = outcome(lambda: fast_litellm.count_request_tokens(body, model="gpt-4o"))
        if reference == "RecursionError" and counted != "RecursionError":
            print("counted where json.loads ran out of recursion:", depth, body[:40], counted)
print("done")
"""


def test_nesting_is_left_to_json_loads_where_it_may_run_out_of_recursion():
    # json.loads nests as deep as the caller's recursion limit allows (on 3.11 and older; from
    # 3.12 on, a limit of the C stack's own); the native reader takes bodies nested up to 128
    # deep and leaves deeper ones to json.loads, so that a caller with less room left gets
    # json.loads's RecursionError, not a count. (Under a limit lowered below ~130, bodies just
    # under 128 deep are still counted where json.loads would run out.)
    result = run_python(_LOW_RECURSION_LIMIT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == ["done"], result.stdout
