"""Message counting against ``litellm.token_counter`` where the rules are subtle: images in every
form, tool schemas, text blocks, tool choices, deep nesting and the caller's own failing objects.

Every comparison runs the public API on both paths (native and fallback, through
``on_each_path``, which also checks that a native run recorded no fault and re-ran nothing on the
fallback) and, where the native module is built, the native counter itself.
"""

from __future__ import annotations

import base64
import io
import json
import sys

import pytest

from .test_message_reference import (
    ENCODINGS,
    _count,
    litellm,
    ours,
    reference,
    token_counting_counters,
)

hypothesis = pytest.importorskip("hypothesis")
Image = pytest.importorskip("PIL.Image")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import fast_litellm  # noqa: E402
from fast_litellm import _flags, tokens  # noqa: E402
from fast_litellm._fallback import messages as messages_mod  # noqa: E402
from fast_litellm.errors import UnsupportedContentError  # noqa: E402

MODEL = "gpt-4o"
SETTINGS = settings(
    max_examples=int(__import__("os").environ.get("HYPOTHESIS_MAX_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def native_count(messages, tools=None, tool_choice=None, model=MODEL):
    """The native message counter called directly (on the caller's objects, not copies), or None
    without the native module."""
    if _flags.native is None:
        return None
    tokenizer = tokens._model_tokenizer(model)
    native = tokenizer.native or tokenizer.load_native()
    return native.count_messages(messages, tools, tool_choice)


def fallback_count(messages, tools=None, tool_choice=None, model=MODEL):
    """The pure-Python counter called directly, on the caller's objects."""
    encoding = ENCODINGS[fast_litellm.encoding_for_model(model)]
    return messages_mod.count_message_tokens(
        messages,
        tools=tools,
        tool_choice=tool_choice,
        count_text=lambda s: len(encoding.encode(s, disallowed_special=())),
    )


def litellm_count(messages, tools=None, model=MODEL):
    """``litellm.token_counter`` on the caller's objects (deep inputs cannot be deep-copied)."""
    return litellm.token_counter(model=model, messages=messages, tools=tools)


def assert_litellm_outcome(msgs):
    """The count litellm gives, or a ValueError where litellm raises one, on every path."""
    try:
        expected = reference("gpt-4", msgs)
    except ValueError:
        with pytest.raises(ValueError):
            _count(msgs)
        return
    assert _count(msgs) == expected


def assert_matches_litellm(messages, tools=None, tool_choice=None, model=MODEL):
    expected = reference(model, messages, tools, tool_choice)
    assert ours(model, messages, tools, tool_choice) == expected
    assert fallback_count(messages, tools, tool_choice, model) == expected
    direct = native_count(messages, tools, tool_choice, model)
    assert direct is None or direct == expected
    return expected


# ---- images -------------------------------------------------------------------------------------

FORMATS = {
    "png": ("PNG", "image/png", {}),
    "gif": ("GIF", "image/gif", {}),
    "jpeg": ("JPEG", "image/jpeg", {}),
    "jpeg-progressive": ("JPEG", "image/jpeg", {"progressive": True}),
    "webp-lossy": ("WEBP", "image/webp", {"lossless": False}),
    "webp-lossless": ("WEBP", "image/webp", {"lossless": True}),
    # An alpha channel in a lossy WebP makes pillow write the extended (VP8X) layout.
    "webp-extended": ("WEBP", "image/webp", {"lossless": False, "alpha": True}),
}
_image_cache: dict = {}


def image_base64(fmt: str, width: int, height: int) -> str:
    key = (fmt, width, height)
    if key not in _image_cache:
        pil_format, _, options = FORMATS[fmt]
        options = dict(options)
        mode = "RGBA" if options.pop("alpha", False) else "RGB"
        buffer = io.BytesIO()
        Image.new(mode, (width, height), (200, 30, 90, 128)[: len(mode)]).save(
            buffer, format=pil_format, **options
        )
        if len(_image_cache) > 64:
            _image_cache.clear()
        _image_cache[key] = base64.b64encode(buffer.getvalue()).decode()
    return _image_cache[key]


def data_url(fmt: str, width: int, height: int) -> str:
    return f"data:{FORMATS[fmt][1]};base64,{image_base64(fmt, width, height)}"


def image_part(form: str, fmt: str, width: int, height: int) -> dict:
    """One content part holding the image in the given form."""
    url = data_url(fmt, width, height)
    if form == "string":
        return {"type": "image_url", "image_url": url}
    if form == "dict":
        return {"type": "image_url", "image_url": {"url": url}}
    if form.startswith("detail-"):
        return {"type": "image_url", "image_url": {"url": url, "detail": form[len("detail-") :]}}
    if form == "anthropic-base64":
        source = {
            "type": "base64",
            "media_type": FORMATS[fmt][1],
            "data": image_base64(fmt, width, height),
        }
        return {"type": "image", "source": source}
    if form == "anthropic-url":
        return {"type": "image", "source": {"type": "url", "url": url}}
    if form == "document":
        return {"type": "document", "source": {"type": "url", "url": url}, "title": "scan"}
    if form == "file":
        return {"type": "file", "file": {"filename": "a.img", "file_data": url}}
    raise AssertionError(form)


IMAGE_FORMS = [
    "string",
    "dict",
    "detail-auto",
    "detail-low",
    "detail-high",
    "anthropic-base64",
    "anthropic-url",
    "document",
    "file",
]
sides = st.one_of(st.integers(1, 800), st.integers(1, 4000))


@SETTINGS
@given(
    form=st.sampled_from(IMAGE_FORMS),
    fmt=st.sampled_from(sorted(FORMATS)),
    width=sides,
    height=sides,
    text=st.text(max_size=30),
)
def test_every_image_form_matches_litellm(form, fmt, width, height, text):
    msgs = [
        {"role": "system", "content": "You look at pictures."},
        {
            "role": "user",
            "content": [{"type": "text", "text": text}, image_part(form, fmt, width, height)],
        },
    ]
    assert_matches_litellm(msgs)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("size", [(1, 1), (64, 64), (800, 3000), (4000, 4000), (4000, 1)])
def test_image_sizes_at_the_edges(fmt, size):
    msgs = [{"role": "user", "content": [image_part("dict", fmt, *size)]}]
    assert_matches_litellm(msgs)


def test_issue_examples():
    png = {"type": "image_url", "image_url": {"url": data_url("png", 64, 64)}}
    assert assert_matches_litellm([{"role": "user", "content": [png]}]) == 262
    tall = {"type": "image_url", "image_url": data_url("png", 800, 3000)}
    assert assert_matches_litellm([{"role": "user", "content": [tall]}]) == 1452


signatures = st.sampled_from(
    [
        b"\x89PNG\r\n\x1a\n",
        b"GIF89a",
        b"GIF87a",
        b"\xff\xd8\xff",
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        b"RIFF\x00\x00\x00\x00WEBPVP8L",
        b"RIFF\x00\x00\x00\x00WEBPVP8X",
        b"RIFF\x00\x00\x00\x00WEBPABCD",
        b"\x00\x00\x00\x18ftypheic",
        b"",
    ]
)


@SETTINGS
@given(
    head=signatures,
    tail=st.binary(max_size=64),
    detail=st.sampled_from([None, "auto", "high"]),
    media=st.sampled_from(["image/png", "image/webp", "application/octet-stream"]),
)
def test_arbitrary_headers_are_read_like_litellm(head, tail, detail, media):
    """Truncated, corrupt and unknown image data: the same price, or an error on every path."""
    image_url = {"url": f"data:{media};base64,{base64.b64encode(head + tail).decode()}"}
    if detail is not None:
        image_url["detail"] = detail
    msgs = [{"role": "user", "content": [{"type": "image_url", "image_url": image_url}]}]
    assert_litellm_outcome(msgs)


@SETTINGS
@given(
    encoded=st.text(alphabet="ABCDabcd0189+/=  \n-_!é", max_size=24),
    detail=st.sampled_from(["auto", "high"]),
)
def test_base64_text_is_decoded_like_python(encoded, detail):
    """Python's strict (auto) and lenient (high) base64 rules, on both paths."""
    url = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()[:-4] + encoded
    image_url = {"url": url, "detail": detail}
    assert_litellm_outcome(
        [{"role": "user", "content": [{"type": "image_url", "image_url": image_url}]}]
    )


@pytest.mark.parametrize(
    "suffix", ["", "=", "==", "===", "A", "AA", "AA=", "AA==", "AAA=", " ", "\n"]
)
@pytest.mark.parametrize("detail", ["auto", "high"])
def test_padding_after_a_whole_image_follows_this_python(suffix, detail):
    """Python versions disagree on superfluous padding in b64decode(validate=True); the native
    path follows the running interpreter, as litellm does."""
    # An image whose base64 needs no padding, so that a suffix is all that is superfluous.
    width = next(w for w in range(900, 1000) if not image_base64("png", w, 40).endswith("="))
    url = data_url("png", width, 40) + suffix
    image_url = {"url": url, "detail": detail}
    assert_litellm_outcome(
        [{"role": "user", "content": [{"type": "image_url", "image_url": image_url}]}]
    )


def test_invalid_detail_uses_litellm_words():
    msgs = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "u", "detail": "max"}}],
        }
    ]
    with pytest.raises(
        ValueError, match=r"Invalid detail value: max\. Expected 'low', 'high', or 'auto'\."
    ):
        _count(msgs)
    with pytest.raises(ValueError, match="Invalid detail value: max"):
        reference(MODEL, msgs)
    none_detail = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "u", "detail": None}}],
        }
    ]
    with pytest.raises(ValueError, match="Invalid detail value: None"):
        _count(none_detail)


def test_remote_high_detail_image_is_handed_to_litellm_not_fetched():
    msgs = [
        {
            "role": "user",
            "content": [
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/x.png", "detail": "high"},
                }
            ],
        }
    ]
    with pytest.raises(UnsupportedContentError, match=r"messages\[0\]\.content\[0\]\.image_url"):
        _count(msgs)
    # Without a detail a remote image costs 85 on every path, and litellm fetches nothing.
    assert (
        assert_matches_litellm(
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": "https://example.com/x.png"}],
                }
            ]
        )
        == 85 + 7
    )


# ---- text blocks, tool schemas, tool choice -----------------------------------------------------


@pytest.mark.parametrize(
    "part",
    [
        {"type": "text", "text": None},
        {"type": "text"},
        {"type": "text", "text": ""},
        {"type": "text", "text": 0},
        {"type": "text", "text": 12},
        {"type": "text", "text": {"a": 1}},
        {"type": "thinking", "thinking": None},
        {"type": "redacted_thinking"},
        {"type": "compaction", "content": "summary of the earlier turns"},
        {"type": "tool_reference", "tool_name": None},
    ],
)
def test_text_blocks_count_like_litellm(part):
    assert_matches_litellm([{"role": "user", "content": [part]}])


@pytest.mark.parametrize(
    "message",
    [
        {
            "role": "user",
            "content": [
                {
                    "type": "search_result",
                    "source": "https://a.example",
                    "title": "A",
                    "content": [{"type": "text", "text": "the finding"}],
                    "citations": {"enabled": True},
                }
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "server_tool_use", "id": "1", "name": "web_search", "input": {"q": "x"}},
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": "1",
                    "content": [
                        {"type": "web_search_result", "url": "u", "title": "T", "snippet": "s"}
                    ],
                },
                {
                    "type": "code_execution_tool_result",
                    "tool_use_id": "2",
                    "content": {
                        "type": "code_execution_result",
                        "stdout": "42",
                        "stderr": "",
                        "content": [],
                    },
                },
                {
                    "type": "web_fetch_tool_result",
                    "tool_use_id": "3",
                    "content": {"type": "web_fetch_tool_result_error", "error_code": "timeout"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": "x",
            "provider_specific_fields": {
                "compaction_blocks": [
                    {"type": "compaction", "content": "summary of the earlier turns"},
                    {"type": "compaction", "content": ""},
                    {"type": "other", "content": "not counted"},
                    "junk",
                ]
            },
        },
        {"role": "assistant", "content": "x", "provider_specific_fields": {"compaction_blocks": 5}},
        {"role": "assistant", "content": "x", "provider_specific_fields": "counted as text"},
    ],
)
def test_anthropic_blocks_count_like_litellm(message):
    assert_matches_litellm([message])


def test_unknown_server_tool_content_is_rejected_everywhere():
    block = {"type": "web_search_tool_result", "content": {"type": "mystery"}}
    msgs = [{"role": "assistant", "content": [block]}]
    with pytest.raises(ValueError, match="Unknown Anthropic content type: 'mystery'"):
        reference(MODEL, msgs)
    with pytest.raises(ValueError, match="Unknown Anthropic content type: 'mystery'"):
        _count(msgs)


def test_text_none_counts_seven():
    assert (
        assert_matches_litellm([{"role": "user", "content": [{"type": "text", "text": None}]}]) == 7
    )


def _tool(parameters, **function):
    return [{"type": "function", "function": {"name": "f", "parameters": parameters, **function}}]


@pytest.mark.parametrize(
    "tools",
    [
        _tool({"type": "object", "properties": {"a": {"type": "array"}}}),
        _tool({"type": "object", "properties": {"a": {"type": "array", "items": None}}}),
        _tool({"type": "object", "properties": {"a": 5, "b": None, "c": "x"}}),
        _tool({"type": "object", "properties": {"a": {"type": "string", "enum": "ab"}}}),
        _tool({"type": "object", "properties": {"a": {"type": "integer", "enum": [1, None, 2.5]}}}),
        _tool({"type": "object", "properties": {"a": {"type": "string"}}, "required": "a"}),
        _tool({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", 5]}),
        _tool({"type": "object", "properties": {1: {"type": "boolean", "description": 0}}}),
        _tool({"type": "object", "properties": {"a": {"type": ["string", "null"]}}}),
        _tool({"type": "object", "properties": {"o": {"type": "object"}}}),
        _tool({"type": "object", "properties": []}),
        _tool("not a schema", description="d"),
        _tool({"type": "object", "properties": {"a": {"type": "null"}}}, description=""),
        [
            {
                "name": "anthropic",
                "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}},
            }
        ],
        [
            {
                "name": "merged",
                "description": "extra keys win",
                "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}},
                "properties": {"b": {"type": "number"}},
                "required": ["b"],
            }
        ],
        [{"name": "empty_schema", "input_schema": {}, "parameters": {"properties": {"p": {}}}}],
        [{"name": "params", "parameters": {"properties": {"p": {"type": "string"}}}}],
        [
            {
                "function_declarations": [
                    {"name": "g", "parameters": {"properties": {"x": {"type": "integer"}}}},
                    5,
                ]
            }
        ],
        [{"function_declarations": [], "functionDeclarations": [{"name": "h"}]}],
        [{"type": "function", "function": {"name": "", "parameters": {}}}, {"name": None}],
    ],
)
def test_tool_schemas_count_like_litellm(tools):
    assert_matches_litellm([{"role": "user", "content": "hi"}], tools=tools)


@pytest.mark.parametrize(
    "tool_choice",
    [
        "none",
        "auto",
        "required",
        {"type": "none"},
        {"type": "function"},
        {"type": "function", "function": "f"},
        {"type": "function", "function": {"name": "get_weather"}},
        {"type": "function", "function": {"name": 5}},
        {"name": "lookup"},
        {"type": "tool", "name": "lookup"},
        ["none"],
        5,
    ],
)
def test_tool_choice_counts_like_litellm(tool_choice):
    assert_matches_litellm([{"role": "user", "content": "hi"}], tool_choice=tool_choice)


def test_search_results_count_like_litellm():
    citations = [
        {"url": "https://a.example", "score": 0.5, "ids": [1, 10**30], "ok": True, "x": None}
    ]
    msgs = [
        {
            "role": "tool",
            "tool_call_id": "c1",
            "content": "found",
            "search_results": [
                {
                    "source": "web",
                    "title": "Café ☕",
                    "content": [{"type": "text", "text": "first"}, {"text": 5}, "junk"],
                    "citations": citations,
                },
                {"source": 5, "citations": {"1.5": 1e16, "k": -0.0, "é": "\ud83d\ude00\n"}},
                "not a result",
            ],
        }
    ]
    assert_matches_litellm(msgs)


# ---- nesting ------------------------------------------------------------------------------------


def _object_schema(depth: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def _deep_tools(depth: int) -> list:
    return _tool({"type": "object", "properties": {"x": _object_schema(depth)}})


def test_schema_litellm_renders_is_rendered_the_same():
    msgs = [{"role": "user", "content": "hi"}]
    assert_matches_litellm(msgs, tools=_deep_tools(60))
    tools = _deep_tools(300)  # too deep to deep-copy: every counter reads the same objects
    expected = litellm_count(msgs, tools)
    assert fallback_count(msgs, tools) == expected
    assert native_count(msgs, tools) in (None, expected)


def test_schema_too_deep_raises_recursion_error_everywhere():
    msgs = [{"role": "user", "content": "hi"}]
    tools = _deep_tools(2000)
    with pytest.raises(RecursionError):
        litellm_count(msgs, tools)
    with pytest.raises(RecursionError):
        fallback_count(msgs, tools)
    if _flags.native is not None:
        with pytest.raises(RecursionError, match="tool schema"):
            native_count(msgs, tools)


def test_schema_nesting_bound_is_the_same_on_both_paths():
    """449 object levels are rendered (898 nested calls), 450 are not, on both paths."""
    msgs = [{"role": "user", "content": "hi"}]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)  # the fallback renders in Python frames
    try:
        deepest = fallback_count(msgs, _deep_tools(449))
        assert native_count(msgs, _deep_tools(449)) in (None, deepest)
        with pytest.raises(RecursionError):
            fallback_count(msgs, _deep_tools(450))
        if _flags.native is not None:
            with pytest.raises(RecursionError):
                native_count(msgs, _deep_tools(450))
    finally:
        sys.setrecursionlimit(limit)


def _nested_content(depth: int) -> list:
    content: list = ["x"]
    for _ in range(depth):
        content = [{"type": "tool_result", "tool_use_id": "t", "content": content}]
    return [{"role": "user", "content": content}]


def test_deep_content_is_a_value_error_everywhere():
    assert_matches_litellm(_nested_content(200))
    with pytest.raises(ValueError):
        litellm_count(_nested_content(2000))
    for depth in (201, 2000):
        with pytest.raises(ValueError, match="nested more than 200 levels"):
            _count(_nested_content(depth))


def test_deep_citations_raise_recursion_error_everywhere():
    # 20,000 levels: beyond what json.dumps takes on every supported Python (3.13's C encoder
    # takes a few thousand levels more than 3.10-3.12's, where 3,000 already fails).
    citations: list = []
    for _ in range(20_000):
        citations = [citations]
    msgs = [{"role": "tool", "tool_call_id": "c", "search_results": [{"citations": citations}]}]
    with pytest.raises(RecursionError):
        litellm_count(msgs)
    with pytest.raises(RecursionError):
        fallback_count(msgs)
    if _flags.native is not None:
        with pytest.raises(RecursionError):
            native_count(msgs)


def test_circular_citations_are_reported_like_json():
    loop: list = []
    loop.append(loop)
    msgs = [{"role": "tool", "tool_call_id": "c", "search_results": [{"citations": loop}]}]
    with pytest.raises(ValueError, match="Circular reference detected"):
        reference(MODEL, msgs)
    with pytest.raises(ValueError, match="Circular reference detected"):
        _count(msgs)


# ---- the caller's own objects -------------------------------------------------------------------


class CallerError(Exception):
    pass


class HostileStr(str):
    """A str whose every method raises: the text is what is counted, never a method's answer."""

    def _fail(self, *args, **kwargs):
        raise CallerError("the caller's str method")

    __len__ = __iter__ = __getitem__ = __str__ = __format__ = __eq__ = __hash__ = _fail  # type: ignore[assignment]
    encode = strip = startswith = split = _fail  # type: ignore[assignment]


class HostileArguments:
    def __str__(self):
        raise CallerError("the caller's __str__")


@pytest.mark.parametrize("text", ["plain text", "lone \ud800 surrogate"])
def test_hostile_str_content_is_not_a_native_fault(text):
    msgs = [{"role": "user", "content": HostileStr(text)}]
    before = token_counting_counters()
    if _flags.native is not None:
        # The native path reads the characters, so the caller's methods are never called.
        assert native_count(msgs) == native_count([{"role": "user", "content": text}])
    fast_litellm.configure("token_counting", rust=False)
    try:
        with pytest.raises(CallerError):  # the fallback asks len() like litellm does
            fast_litellm.count_message_tokens(msgs, model=MODEL)
    finally:
        fast_litellm.configure(reload_environment=True)
    assert token_counting_counters()[:2] == before[:2]  # no native fault recorded


@pytest.mark.skipif(_flags.native is None, reason="needs the native module")
def test_callers_exception_propagates_unchanged_from_native():
    msgs = [{"role": "assistant", "tool_calls": [{"function": {"arguments": HostileArguments()}}]}]
    with pytest.raises(CallerError):
        native_count(msgs)
    with pytest.raises(RecursionError):
        native_count([{"role": "user", "content": "hi"}], _deep_tools(2000))


@pytest.mark.skipif(_flags.native is None, reason="needs the native module")
def test_callers_exception_is_not_counted_as_a_native_fault():
    """Raised ten times each, well past the number of faults that switches a feature off."""
    fast_litellm.configure("token_counting", rust=True, rollout=100)
    try:
        before = token_counting_counters()
        calls = [
            (
                [
                    {
                        "role": "assistant",
                        "tool_calls": [{"function": {"arguments": HostileArguments()}}],
                    }
                ],
                None,
                CallerError,
            ),
            ([{"role": "user", "content": "hi"}], _deep_tools(2000), RecursionError),
            ([{"role": "user", "content": HostileStr("lone \ud800")}], None, None),
        ]
        for _ in range(10):
            for msgs, tools, exc in calls:
                if exc is None:
                    fast_litellm.count_message_tokens(msgs, model=MODEL, tools=tools)
                    continue
                with pytest.raises(exc):
                    fast_litellm.count_message_tokens(msgs, model=MODEL, tools=tools)
        assert token_counting_counters() == before
        status = fast_litellm.get_feature_status()["features"]["token_counting"]
        assert status["switched_to_fallback"] is False
        assert status["active_path"] == "native"
    finally:
        fast_litellm.configure(reload_environment=True)


# ---- hand-offs and litellm's knobs --------------------------------------------------------------


def test_pdf_is_handed_to_litellm(monkeypatch):
    pdf = {
        "type": "file",
        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
    }
    msgs = [{"role": "user", "content": [{"type": "text", "text": "summarise"}, pdf]}]
    expected = reference(MODEL, msgs)
    handed = []
    real = litellm.token_counter

    def recording_token_counter(**kwargs):
        handed.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(litellm, "token_counter", recording_token_counter)
    for path in ("fallback", "native") if _flags.native is not None else ("fallback",):
        handed.clear()
        fast_litellm.configure("token_counting", rust=path == "native", rollout=100)
        try:
            before = token_counting_counters()
            assert fast_litellm.count_message_tokens(msgs, model=MODEL) == expected
            if path == "native":
                assert token_counting_counters() == before
        finally:
            fast_litellm.configure(reload_environment=True)
        assert [call["messages"] for call in handed] == [msgs], path


LONG_TEXT_SCRIPT = """
import json, sys
import litellm
import fast_litellm
from fast_litellm import _flags
texts = json.loads(sys.argv[1])
out = []
for text in texts:
    msgs = [{"role": "user", "content": text}, {"role": "assistant", "content": [{"type": "text", "text": text}]}]
    row = {"litellm": litellm.token_counter(model="gpt-4o", messages=msgs)}
    for path in ("fallback", "native") if _flags.native is not None else ("fallback",):
        fast_litellm.configure("token_counting", rust=path == "native", rollout=100)
        row[path] = fast_litellm.count_message_tokens(msgs, model="gpt-4o")
    out.append(row)
print(json.dumps(out))
"""


@pytest.mark.parametrize(
    "max_exact, chunk",
    [("160", "10"), (" 1_6_0 ", "\uff11\uff10"), ("1_000_000", "2_048"), ("0x10", "1__0")],
)
def test_long_text_estimate_matches_litellm_in_a_fresh_process(max_exact, chunk):
    """Beyond TOKEN_COUNTER_MAX_EXACT_CHARS litellm extrapolates from samples counted in chunks of
    TIKTOKEN_ENCODE_CHUNK_SIZE_CHARS; both are read once at import, hence a fresh process. They
    are read by Python's int() (underscores, full-width digits; "0x10" and "1__0" are not
    numbers: the defaults)."""
    from .conftest import run_python

    texts = [
        "word " * 400,
        "héllo wörld, 漢字 and numbers 1234567 " * 40,
        "".join(chr(0x20 + (i * 7919) % 0x2F00) for i in range(3000)),
        "x" * 161,
        "short",
    ]
    code = LONG_TEXT_SCRIPT + "\n"
    result = run_python(
        code.replace("sys.argv[1]", repr(json.dumps(texts))),
        env={
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "HF_HUB_OFFLINE": "1",
            "TOKEN_COUNTER_MAX_EXACT_CHARS": max_exact,
            "TIKTOKEN_ENCODE_CHUNK_SIZE_CHARS": chunk,
        },
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(rows) == len(texts)
    for text, row in zip(texts, rows, strict=True):
        assert len(row) == 3 if _flags.native is not None else 2
        assert set(row.values()) == {row["litellm"]}, (text[:20], row)
