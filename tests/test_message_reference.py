"""Reference tests: the pure-Python message counter against litellm itself.

``fast_litellm._fallback.messages.count_message_tokens`` (fed by Python tiktoken built offline from
the bundled ``_vocab`` files) must return exactly ``litellm.token_counter(...)``. The model name ->
encoding rules are tested in ``test_models.py``.
"""

from __future__ import annotations

import base64
import copy
import functools
import io
import json
import os
import struct
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

litellm = pytest.importorskip("litellm")
tiktoken = pytest.importorskip("tiktoken")
hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from tiktoken.load import load_tiktoken_bpe  # noqa: E402

import fast_litellm  # noqa: E402
from fast_litellm import _flags, tokens  # noqa: E402
from fast_litellm import _models as models_mod  # noqa: E402
from fast_litellm._fallback import messages as messages_mod  # noqa: E402
from fast_litellm._models import uses_legacy_message_accounting  # noqa: E402
from fast_litellm.errors import UnsupportedContentError  # noqa: E402

PKG_DIR = Path(fast_litellm.__file__).resolve().parent
PATHS = ["fallback"] + (["native"] if _flags.native is not None else [])


def on_each_path(call):
    """Runs ``call`` on the fallback and on the native path; both must give the same number, or
    raise the same exception with the same message. Returns that number or raises that error."""
    outcomes = {}
    try:
        for path in PATHS:
            fast_litellm.configure("token_counting", rust=path == "native", rollout=100)
            before = token_counting_counters()
            try:
                outcomes[path] = ("ok", call())
            except Exception as exc:
                outcomes[path] = ("error", type(exc), str(exc))
            if path == "native":
                # The native answer must come from native code: no fault recorded, no call
                # re-run on the fallback.
                assert token_counting_counters() == before, outcomes
    finally:
        fast_litellm.configure(reload_environment=True)
    assert len(set(outcomes.values())) == 1, outcomes
    outcome = outcomes["fallback"]
    if outcome[0] == "error":
        raise outcome[1](outcome[2])
    return outcome[1]


def token_counting_counters() -> tuple:
    """The token-counting feature's native error and fallback-call counters."""
    status = fast_litellm.get_feature_status()["features"]["token_counting"]
    return status["errors"], status["consecutive_errors"], status["fallback_calls"]


def _offline_encoding(name: str) -> tiktoken.Encoding:
    from tiktoken_ext import openai_public

    real_loader = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = lambda *args, **kwargs: load_tiktoken_bpe(
        str(PKG_DIR / "_vocab" / f"{name}.tiktoken")
    )
    try:
        spec = getattr(openai_public, name)()
    finally:
        openai_public.load_tiktoken_bpe = real_loader
    return tiktoken.Encoding(
        name=spec["name"],
        pat_str=spec["pat_str"],
        mergeable_ranks=spec["mergeable_ranks"],
        special_tokens={},
    )


ENCODINGS = {name: _offline_encoding(name) for name in ("cl100k_base", "o200k_base")}


def ours(model, messages, tools=None, tool_choice=None):
    """The public API's answer, the same on both paths."""
    return on_each_path(
        lambda: fast_litellm.count_message_tokens(
            copy.deepcopy(messages),
            model=model,
            tools=copy.deepcopy(tools),
            tool_choice=copy.deepcopy(tool_choice),
        )
    )


def reference(model, messages, tools=None, tool_choice=None):
    return litellm.token_counter(
        model=model,
        messages=copy.deepcopy(messages),
        tools=copy.deepcopy(tools),
        tool_choice=tool_choice,
    )


MODELS = [
    "gpt-3.5-turbo",
    "gpt-4",
    "gpt-4-0613",
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "o1",
    "o3-mini",
    "o4-mini",
    "gpt-5",
    "gpt-5-mini",
    "chatgpt-4o-latest",
    "azure/gpt-4o",
    "openai/gpt-4o",
    "gpt-35-turbo",
    "text-embedding-3-small",
    "totally-unknown-model-xyz",
    "",
]

# ---- strategies ---------------------------------------------------------------------------------

unicode_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
special_text = st.sampled_from(
    ["<|endoftext|>", "<|im_start|>", "  \n\n ", "🙂👍🏽", "ÄÖÜß", "日本語テキスト", ""]
)
short_text = st.one_of(unicode_text, special_text, st.text("ab \n{}\"'", max_size=20))
# Longer than litellm's 1024-character chunk, so chunk boundaries are exercised.
long_text = st.builds(
    lambda a, n: (a + " ") * n,
    st.sampled_from(["word", "ünïcödé", "x" * 7, "12345"]),
    st.integers(150, 600),
)
any_text = st.one_of(short_text, short_text, short_text, long_text)
ident = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), short_text)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(ident, inner, max_size=3)),
    max_leaves=8,
)


def _schema(depth: int):
    leaf = st.one_of(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["string", "integer", "number", "boolean", "null"])},
            optional={"description": short_text},
        ),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["string", "integer", "number"]),
                "enum": st.lists(st.one_of(ident, st.integers(0, 9)), min_size=1, max_size=3),
            }
        ),
        st.fixed_dictionaries({}, optional={"description": short_text}),
        st.fixed_dictionaries({"type": st.just(["string", "null"])}),
    )
    if depth == 0:
        return leaf
    child = _schema(depth - 1)
    return st.one_of(
        leaf,
        st.fixed_dictionaries(
            {"type": st.just("array"), "items": child}, optional={"description": short_text}
        ),
        st.builds(
            lambda props, req, desc: {
                "type": "object",
                "properties": props,
                **({"required": req} if req is not None else {}),
                **({"description": desc} if desc else {}),
            },
            st.dictionaries(ident, child, max_size=3),
            st.one_of(st.none(), st.lists(ident, max_size=2)),
            st.one_of(st.none(), short_text),
        ),
    )


parameters = st.builds(
    lambda props, req: {
        "type": "object",
        "properties": props,
        **({"required": req} if req is not None else {}),
    },
    st.dictionaries(ident, _schema(2), max_size=4),
    st.one_of(st.none(), st.lists(ident, max_size=3)),
)
openai_tool = st.builds(
    lambda name, desc, params: {
        "type": "function",
        "function": {
            "name": name,
            **({"description": desc} if desc is not None else {}),
            **({"parameters": params} if params is not None else {}),
        },
    },
    ident,
    st.one_of(st.none(), short_text),
    st.one_of(st.none(), parameters),
)
anthropic_tool = st.builds(
    lambda name, desc, schema: {"name": name, "description": desc, "input_schema": schema},
    ident,
    short_text,
    parameters,
)
gemini_tool = st.builds(
    lambda decls: {"function_declarations": decls},
    st.lists(st.builds(lambda n, p: {"name": n, "parameters": p}, ident, parameters), max_size=2),
)
tools_strategy = st.one_of(
    st.none(),
    st.just([]),
    st.lists(
        st.one_of(openai_tool, openai_tool, anthropic_tool, gemini_tool), min_size=1, max_size=3
    ),
)
tool_choice_strategy = st.one_of(
    st.none(),
    st.sampled_from(["none", "auto", "required"]),
    st.builds(lambda n: {"type": "function", "function": {"name": n}}, ident),
)

arguments = st.one_of(
    json_value.map(json.dumps),
    st.dictionaries(ident, json_value, max_size=3),
    st.none(),
    short_text,
)
tool_call = st.builds(
    lambda i, n, a: {"id": i, "type": "function", "function": {"name": n, "arguments": a}},
    ident,
    ident,
    arguments,
)
content_part = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, any_text),
    short_text,
    st.builds(
        lambda u, d: {"type": "image_url", "image_url": {"url": u, **({"detail": d} if d else {})}},
        st.sampled_from(["https://example.com/a.png", "data:image/png;base64,AAAA"]),
        st.sampled_from([None, "low", "auto"]),
    ),
    st.just({"type": "image_url", "image_url": "https://example.com/b.jpg"}),
    st.builds(lambda t: {"type": "thinking", "thinking": t, "signature": "sig"}, short_text),
    st.just({"type": "redacted_thinking", "data": "opaque"}),
    st.builds(lambda n: {"type": "tool_reference", "tool_name": n}, ident),
    st.builds(lambda f: {"type": "file", "file": {"filename": f, "file_id": "file-1"}}, short_text),
    st.builds(
        lambda f: {
            "type": "file",
            "file": {"filename": f, "file_data": "data:text/plain;base64,aGk="},
        },
        short_text,
    ),
    st.builds(
        lambda t, d: {
            "type": "document",
            "title": t,
            "source": {"type": "text", "media_type": "text/plain", "data": d},
        },
        short_text,
        any_text,
    ),
    st.builds(
        lambda d: {
            "type": "document",
            "source": {"type": "base64", "media_type": "image/png", "data": d},
        },
        st.sampled_from(["", "AAAA"]),
    ),
    st.builds(
        lambda d: {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": d},
        },
        st.sampled_from(["", "AAAA"]),
    ),
    st.builds(
        lambda n, inp: {"type": "tool_use", "id": "t1", "name": n, "input": inp},
        ident,
        st.dictionaries(ident, json_value, max_size=3),
    ),
    st.builds(
        lambda c: {"type": "tool_result", "tool_use_id": "t1", "content": c},
        st.one_of(
            short_text,
            st.lists(st.builds(lambda t: {"type": "text", "text": t}, short_text), max_size=2),
        ),
    ),
)
search_result = st.builds(
    lambda s, t, texts, cit: {
        "source": s,
        "title": t,
        "content": [{"type": "text", "text": x} for x in texts],
        **({"citations": cit} if cit is not None else {}),
    },
    short_text,
    short_text,
    st.lists(short_text, max_size=2),
    st.one_of(st.none(), st.builds(lambda e: {"enabled": e}, st.booleans()), st.just({"t": "ünï"})),
)


@st.composite
def message(draw):
    role = draw(st.sampled_from(["system", "user", "assistant", "tool", "developer", "function"]))
    msg = {"role": role}
    msg["content"] = draw(st.one_of(st.none(), any_text, st.lists(content_part, max_size=4)))
    if draw(st.booleans()):
        msg["name"] = draw(st.one_of(ident, short_text))
    if role == "assistant" and draw(st.booleans()):
        msg["tool_calls"] = draw(st.lists(tool_call, max_size=3))
    if role == "assistant" and draw(st.integers(0, 4)) == 0:
        msg["function_call"] = {"name": draw(ident), "arguments": draw(arguments)}
    if role == "tool":
        msg["tool_call_id"] = draw(ident)
        if draw(st.integers(0, 3)) == 0:
            msg["search_results"] = draw(st.lists(search_result, max_size=2))
    if draw(st.integers(0, 4)) == 0:
        msg[draw(ident)] = draw(json_value)
    return msg


conversations = st.lists(message(), max_size=6)


# ---- property tests -----------------------------------------------------------------------------

SETTINGS = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


@SETTINGS
@given(
    model=st.sampled_from(MODELS),
    msgs=conversations,
    tools=tools_strategy,
    tool_choice=tool_choice_strategy,
)
def test_messages_match_litellm(model, msgs, tools, tool_choice):
    expected = reference(model, msgs, tools, tool_choice)
    assert ours(model, msgs, tools, tool_choice) == expected
    tokenizer = tokens._model_tokenizer(model)
    if _flags.native is not None and isinstance(tokenizer, tokens._Tokenizer):
        # The native counter itself, not only the public API that may route around it.
        native = tokenizer.side(True)
        legacy = uses_legacy_message_accounting(model)
        got = native.count_messages(
            copy.deepcopy(msgs),
            copy.deepcopy(tools),
            copy.deepcopy(tool_choice),
            legacy_accounting=legacy,
        )
        assert got == expected


@SETTINGS
@given(model=st.sampled_from(["gpt-4", "gpt-4o"]), text=st.one_of(any_text, st.text(max_size=3000)))
def test_text_counter_matches_litellm(model, text):
    encoding = ENCODINGS[models_mod.encoding_for_model(model)]
    got = messages_mod.count_text_like_litellm(
        text, lambda s: len(encoding.encode(s, disallowed_special=()))
    )
    assert got == litellm.token_counter(model=model, text=text)


def _png_data_url(width: int, height: int) -> str:
    header = (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">L", 13)
        + b"IHDR"
        + struct.pack(">LL", width, height)
        + b"\x08\x02\x00\x00\x00"
    )
    return "data:image/png;base64," + base64.b64encode(header).decode()


@pytest.mark.parametrize(
    "size",
    [(100, 100), (768, 768), (769, 300), (300, 2000), (4000, 1000), (1024, 1024), (5000, 100)],
)
def test_high_detail_data_url_image(size):
    msgs = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": _png_data_url(*size), "detail": "high"}}
            ],
        }
    ]
    assert ours("gpt-4o", msgs) == reference("gpt-4o", msgs)


@pytest.mark.parametrize(
    "fmt, options",
    [
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("GIF", {}),
        ("WEBP", {}),
        ("WEBP", {"lossless": True}),
        ("WEBP", {"alpha": True}),  # lossy with alpha: the extended (VP8X) layout
        ("PNG", {}),
    ],
)
@pytest.mark.parametrize("size", [(64, 48), (800, 600), (300, 2400), (3000, 900)])
def test_high_detail_image_formats(fmt, options, size):
    image_module = pytest.importorskip("PIL.Image")
    buffer = io.BytesIO()
    options = dict(options)
    mode = "RGBA" if options.pop("alpha", False) else "RGB"
    image_module.new(mode, size, (10, 120, 200, 128)[: len(mode)]).save(
        buffer, format=fmt, **options
    )
    url = f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()
    part = {"type": "image_url", "image_url": {"url": url, "detail": "high"}}
    msgs = [{"role": "user", "content": [part]}]
    assert ours("gpt-4o", msgs) == reference("gpt-4o", msgs)


def test_pydantic_message_and_long_text():
    msgs = [
        litellm.Message(role="assistant", content="hello " * 500),
        {"role": "user", "content": "x" * 5000},
    ]
    assert ours("gpt-4o", msgs) == reference("gpt-4o", msgs)


def test_extrapolated_long_text_small_limit():
    enc = ENCODINGS["cl100k_base"]
    text = "lorem ipsum dolor sit amet " * 50
    got = messages_mod.count_text_like_litellm(
        text,
        lambda s: len(enc.encode(s, disallowed_special=())),
        chunk_chars=64,
        max_exact_chars=160,
    )
    # Recompute by the definition: 16 samples of 10 chars, extrapolated.
    starts = [(len(text) - 10) * i // 15 for i in range(16)]
    sampled = sum(len(enc.encode(text[s : s + 10])) for s in starts)
    assert got == round(sampled * len(text) / 160)


# ---- bad input ----------------------------------------------------------------------------------


def _count(messages, tools=None, tool_choice=None):
    """Both implementations, without the hand-off to litellm for unsupported content."""
    tokenizer = tokens._model_tokenizer("gpt-4")
    return on_each_path(
        lambda: tokens._state.run(tokenizer.side, "count_messages", messages, tools, tool_choice)
    )


@pytest.mark.parametrize(
    "messages, exc, fragment",
    [
        ("hello", TypeError, "messages must be a list"),
        (None, TypeError, "messages must be a list"),
        ({"role": "user"}, TypeError, "messages must be a list"),
        ([{"role": "user", "content": "a"}, "oops"], TypeError, "messages[1]"),
        ([{"role": "user", "content": "a"}, 5], TypeError, "messages[1]"),
        ([{"role": "assistant", "tool_calls": "x"}], ValueError, "messages[0].tool_calls"),
        (
            [{"role": "assistant", "tool_calls": [{"id": "1"}]}],
            ValueError,
            "messages[0].tool_calls[0]",
        ),
        ([{"role": "assistant", "tool_calls": [5]}], TypeError, "messages[0].tool_calls[0]"),
        (
            [{"role": "assistant", "tool_calls": [{"function": None}]}],
            TypeError,
            "messages[0].tool_calls[0].function",
        ),
        ([{"role": "assistant", "function_call": "x"}], ValueError, "messages[0].function_call"),
        ([{"role": "user", "content": [5]}], ValueError, "messages[0].content[0]"),
        (
            [{"role": "user", "content": ["ok", {"text": "no type"}]}],
            ValueError,
            "messages[0].content[1]",
        ),
        (
            [{"role": "user", "content": [{"type": "video", "url": "x"}]}],
            ValueError,
            "messages[0].content[0]",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "u", "detail": "max"}}],
                }
            ],
            ValueError,
            "Invalid detail value: max. Expected 'low', 'high', or 'auto'.",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"detail": "low"}}]}],
            ValueError,
            "url",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": "  "}]}],
            ValueError,
            "Empty image_url string is not valid.",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": None}]}],
            ValueError,
            "image_url",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "document", "source": {"type": "text", "data": 5}}],
                }
            ],
            ValueError,
            "source.data",
        ),
    ],
)
def test_bad_messages(messages, exc, fragment):
    with pytest.raises(exc) as info:
        _count(messages)
    assert fragment in str(info.value)
    # litellm rejects the same inputs (it may use another exception type, or crash).
    with pytest.raises(Exception):  # noqa: B017 - any error; litellm's types vary by version
        reference("gpt-4", messages)


@pytest.mark.parametrize(
    "tools, tool_choice, exc",
    [
        ("not a list", None, TypeError),
        ({"type": "function"}, None, TypeError),
    ],
)
def test_bad_tools(tools, tool_choice, exc):
    with pytest.raises(exc):
        _count([{"role": "user", "content": "hi"}], tools=tools, tool_choice=tool_choice)


def test_pdf_document_is_delegated():
    pdf = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}}
    with pytest.raises(UnsupportedContentError):
        _count([{"role": "user", "content": [pdf]}])


def test_lone_surrogates_in_messages():
    msgs = [{"role": "user", "content": "a\ud800b \udfff", "name": "x\ud83d\ude00"}]
    assert ours("gpt-4o", msgs) == reference("gpt-4o", msgs)


def test_lone_surrogates_in_image_urls_price_like_litellm():
    # json.loads lets "\ud800" through; the URL is priced, never tokenized.
    for model in ("gpt-4o", "claude-opus-4-5"):
        for url in ("https://example.com/a\ud800.png", "data:image/png;base64,iVBO\udfffRw0K"):
            for image in (url, {"url": url}, {"url": url, "detail": "low"}):
                msgs = [{"role": "user", "content": [{"type": "image_url", "image_url": image}]}]
                assert ours(model, msgs) == reference(model, msgs), (model, image)
                body = json.dumps({"model": model, "messages": msgs})
                assert fast_litellm.count_request_tokens(body) == reference(model, msgs)


_SURROGATE_PIECES = st.sampled_from(
    ["a", "ab ", "\ud83d\ude00", "\ud83d", "\ude00", "\U0001f600", "\u00e9", "\n"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1000, 1030),
    st.lists(st.tuples(st.integers(0, 1100), _SURROGATE_PIECES), min_size=1, max_size=6),
)
def test_surrogate_pairs_as_two_characters_count_like_litellm(length, inserts):
    # LiteLLM counts a text in slices of 1,024 characters of the Python str, where each half of a
    # pair is a character: a pair inside a slice is one character to tiktoken, one split by a
    # slice boundary is two U+FFFD. The native path hands such texts to the Python path.
    text = "a" * length
    for at, piece in inserts:
        text = text[:at] + piece + text[at:]
    errors = _flags.feature("TOKEN_COUNTING").errors
    for msgs in (
        [{"role": "user", "content": text}],
        [{"role": "user", "content": [{"type": "text", "text": text}]}],
    ):
        assert ours("gpt-4o", msgs) == reference("gpt-4o", msgs)
    for split in ("a" * 1023 + "\ud83d\ude00", "\ud83d\ude00" + "a" * 1023):
        msgs = [{"role": "user", "content": split}]
        assert ours("gpt-4o", msgs) == reference("gpt-4o", msgs) == 138
    assert _flags.feature("TOKEN_COUNTING").errors == errors


def test_messages_are_dicts_or_pydantic_models_as_litellm_takes_them():
    import collections
    import types

    from litellm.types.utils import Message

    class Dumps:
        def model_dump(self, **options):
            return {"role": "user", "content": "hi"}

    fields = {"role": "user", "content": "hello"}
    for refused in (types.MappingProxyType(fields), collections.UserDict(fields), Dumps()):
        with pytest.raises(TypeError, match="Invalid message type"):
            litellm.token_counter(model="gpt-4o", messages=[refused])
        with pytest.raises(TypeError, match="must be a dict or a pydantic model"):
            on_each_path(
                functools.partial(fast_litellm.count_message_tokens, [refused], model="gpt-4o")
            )
    taken = [Message(role="user", content="hi there"), dict(fields)]
    assert on_each_path(
        lambda: fast_litellm.count_message_tokens(taken, model="gpt-4o")
    ) == litellm.token_counter(model="gpt-4o", messages=taken)


def test_junk_tool_entries_are_skipped_like_litellm():
    tools = ["junk", {"type": "function", "function": {"name": "f"}}]
    msgs = [{"role": "system", "content": "s"}]
    assert _count(msgs, tools=tools) == reference("gpt-4", msgs, tools)
