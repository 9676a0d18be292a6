"""``patch()`` against the installed litellm: every patched entry point answers exactly what the
unpatched one answers (the same number, or the same exception type and message), for generated
conversations and for every argument the patch hands back to litellm; ``unpatch()`` restores the
very objects; patching is idempotent, thread-safe and survives reloads; ``FAST_LITELLM_AUTO_PATCH``
patches litellm when it is imported, and importing fast_litellm never imports litellm.

No test reaches the network: images are ``data:`` URLs, and http URLs appear only where litellm
does not fetch them (``low``/``auto``/no detail) or where its own address check refuses them
before any connection (``high`` detail on 127.0.0.1).
"""

from __future__ import annotations

import base64
import copy
import functools
import io
import json
import sys
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fast_litellm

from .conftest import run_python

litellm = pytest.importorskip("litellm")
core_module = sys.modules["litellm.litellm_core_utils.token_counter"]
utils_module = sys.modules["litellm.utils"]


def _scan_originals():
    fast_litellm.unpatch()
    return {
        name: vars(module)["token_counter"]
        for name, module in list(sys.modules.items())
        if (name == "litellm" or name.startswith("litellm."))
        and module is not None
        and callable(vars(module).get("token_counter"))
    }


ORIGINALS = _scan_originals()
CORE = core_module.token_counter
UTILS = utils_module.token_counter


@pytest.fixture(autouse=True)
def _unpatched_after():
    yield
    fast_litellm.unpatch()


def outcome(function, *args, **kwargs):
    """What a call gives: its value, or its exception's type and message."""
    try:
        return ("returned", function(*args, **kwargs))
    except Exception as exc:
        return ("raised", type(exc), str(exc))


def entry_points():
    """The patched functions of every place, by place (16 places, 2 distinct functions)."""
    return {
        name: vars(sys.modules[name])["token_counter"]
        for name in ORIGINALS
        if name in sys.modules and callable(vars(sys.modules[name]).get("token_counter"))
    }


READ = ("messages", "tools", "tool_choice")


def both_ways(kwargs, args=()):
    """The answer of each entry point unpatched, then patched: ``{name: (unpatched, patched)}``.
    The caller's objects must come back unchanged from the patched call."""
    fast_litellm.unpatch()
    reference = {
        name: outcome(function, *args, **kwargs)
        for name, function in {"core": CORE, "utils": UTILS}.items()
    }
    fast_litellm.patch()
    patched = {"core": core_module.token_counter, "utils": litellm.utils.token_counter}
    # every one of the 16 places holds one of these two: calling both calls every entry point
    assert set(entry_points().values()) == set(patched.values())
    answers = {}
    for name, function in patched.items():
        # what the patched path reads: messages, tools, tool_choice (positions 3, 5, 6)
        read = [args[3], args[5], args[6]] if args else [kwargs.get(k) for k in READ]
        snapshot = copy.deepcopy(read)
        answers[name] = (reference[name], outcome(function, *args, **kwargs))
        assert read == snapshot, "the patched call changed the caller's arguments"
    # `utils` is the place every importer of litellm.utils holds; `core` is the definition.
    answers["litellm.token_counter"] = (
        reference["utils"],
        outcome(litellm.token_counter, *args, **kwargs),
    )
    fast_litellm.unpatch()
    return answers


def assert_same(answers):
    for name, (unpatched, patched) in answers.items():
        assert patched == unpatched, name


# ---- generated conversations --------------------------------------------------------------------


def _image(fmt: str, width: int, height: int) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format=fmt)
    mime = {"PNG": "png", "GIF": "gif", "JPEG": "jpeg", "WEBP": "webp"}[fmt]
    return f"data:image/{mime};base64,{base64.b64encode(buffer.getvalue()).decode()}"


@functools.lru_cache(maxsize=None)
def _data_urls():
    pytest.importorskip("PIL")
    sizes = [(1, 1), (64, 64), (512, 300), (800, 3000), (4000, 4000)]
    return tuple(
        _image(fmt, w, h) for fmt in ("PNG", "GIF", "JPEG", "WEBP") for (w, h) in sizes[:4]
    ) + (_image("PNG", *sizes[4]),)


MODELS = [
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4",
    "gpt-3.5-turbo",
    "gpt-3.5-turbo-0301",
    "gpt-4.1",
    "o1",
    "o3-mini",
    "gpt-5",
    "azure/gpt-4o",
    "azure/eu/gpt-4.1-mini",
    "openai/gpt-6.2",
    "ft:gpt-4o-mini:acme::abc123",
    "text-embedding-3-small",
    "claude-3-5-sonnet-20240620",
    "claude-2.1",
    "mistral-large",
    "deepseek-chat",  # a Hugging Face tokenizer
    "replicate/meta/llama-2-70b-chat",
    "xai/grok-4-1",  # chat templates that price tools their own way
    "qwen3.5-72b",
    "",
    "GPT-4O",
    "not-a-model/at all",
]

words = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=40
) | st.sampled_from(
    [
        "hello",
        "<|endoftext|>",
        "日本語のテキスト",
        "The quick brown fox. " * 80,
        " \n\t",
        "half a pair \ud83d",  # tiktoken repairs it; a Hugging Face tokenizer raises
    ]
)
names = st.sampled_from(["bob", "alice_1", "weird name", "", "日本"])
http_low_auto = st.sampled_from(["https://example.com/cat.png", "http://example.com/a,b.jpg"])


@st.composite
def image_parts(draw):
    data_url = st.sampled_from(_data_urls())
    form = draw(st.sampled_from(["string", "dict", "dict-no-detail", "http", "http-high", "bad"]))
    if form == "string":
        image_url = draw(data_url | http_low_auto)
    elif form == "dict":
        image_url = {
            "url": draw(data_url),
            "detail": draw(st.sampled_from(["low", "high", "auto"])),
        }
    elif form == "dict-no-detail":
        image_url = {"url": draw(data_url | http_low_auto)}
    elif form == "http":
        image_url = {"url": draw(http_low_auto), "detail": draw(st.sampled_from(["low", "auto"]))}
    elif form == "http-high":
        # refused by litellm's own address check before any connection is made
        image_url = {"url": "http://127.0.0.1:9/image.png", "detail": "high"}
    else:
        image_url = draw(
            st.sampled_from(
                [{"url": ""}, {"detail": "low"}, {"url": "x", "detail": "medium"}, 3, ""]
            )
        )
    return {"type": "image_url", "image_url": image_url}


content_parts = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, words),
    image_parts(),
    st.sampled_from(
        [
            {"type": "text", "text": None},
            {"type": "text"},
            {"type": "unknown_part", "value": 1},
            {"text": "no type"},
        ]
    ),
)

arguments = st.one_of(
    words, st.builds(lambda k, v: json.dumps({k: v}), words, words), st.integers(), st.none()
)
tool_calls = st.lists(
    st.builds(
        lambda name, args: {
            "id": "call_1",
            "type": "function",
            "function": {"name": name, "arguments": args},
        },
        names,
        arguments,
    ),
    max_size=3,
)


@st.composite
def messages_(draw):
    message = {"role": draw(st.sampled_from(["system", "user", "assistant", "tool", "developer"]))}
    message["content"] = draw(st.none() | words | st.lists(content_parts, max_size=4))
    if draw(st.booleans()):
        message["name"] = draw(names)
    if message["role"] == "assistant" and draw(st.booleans()):
        message["tool_calls"] = draw(tool_calls | st.just("not a list"))
    if message["role"] == "assistant" and draw(st.integers(0, 5)) == 0:
        message["function_call"] = {"name": draw(names), "arguments": draw(words)}
    if message["role"] == "tool":
        message["tool_call_id"] = "call_1"
    if draw(st.integers(0, 6)) == 0:
        message["unknown_key"] = draw(st.none() | words | st.integers())
    return message


schema_types = st.sampled_from(
    [
        {"type": "string"},
        {"type": "string", "description": "a city"},
        {"type": "string", "enum": ["celsius", "fahrenheit"]},
        {"type": "integer"},
        {"type": "number", "description": "how many"},
        {"type": "boolean"},
        {"type": "array", "items": {"type": "string"}},
        {"type": "array"},
        {"type": "object", "properties": {"inner": {"type": "string"}}},
    ]
)


@st.composite
def tools_(draw):
    tools = []
    for index in range(draw(st.integers(1, 3))):
        function = {"name": f"{draw(names) or 'fn'}_{index}"}
        if draw(st.booleans()):
            function["description"] = draw(words)
        properties = draw(
            st.dictionaries(st.sampled_from(["city", "unit", "n", "x"]), schema_types)
        )
        function["parameters"] = {"type": "object", "properties": properties}
        if properties and draw(st.booleans()):
            function["parameters"]["required"] = sorted(properties)[:1]
        if draw(st.integers(0, 4)) == 0:
            function["strict"] = draw(st.booleans())
        tools.append({"type": "function", "function": function})
    return tools


tool_choices = st.sampled_from(
    [
        None,
        "auto",
        "none",
        "required",
        {"type": "function", "function": {"name": "get_weather"}},
        {"type": "none"},
        {"name": "lookup"},
    ]
)
conversations = st.lists(messages_(), min_size=0, max_size=5)


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    model=st.sampled_from(MODELS) | words,
    messages=conversations,
    tools=st.none() | tools_() | st.just([]),
    tool_choice=tool_choices,
)
def test_messages_give_the_same_answer_patched_and_unpatched(model, messages, tools, tool_choice):
    kwargs = {"model": model, "messages": messages}
    if tools is not None:
        kwargs["tools"] = tools
    if tool_choice is not None:
        kwargs["tool_choice"] = tool_choice
    assert_same(both_ways(kwargs))


# Each example here makes 4 calls per state, some through Hugging Face tokenizers: a quarter
# of the profile's budget keeps the test to seconds.
@settings(
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    max_examples=max(10, settings().max_examples // 4),
)
@given(
    model=st.sampled_from(MODELS[:8] + ["deepseek-chat", "", None]),
    messages=st.none() | conversations | st.just(({"role": "user", "content": "a tuple"},)),
    text=st.none() | words | st.lists(st.one_of(words, st.integers()), max_size=3),
    custom_tokenizer=st.sampled_from([None, "openai", "claude"]),
    count_response_tokens=st.sampled_from([False, True, None, 0]),
    use_default_image_token_count=st.sampled_from([False, True, None]),
    default_token_count=st.none() | st.integers(0, 50),
    tools=st.none() | tools_(),
    tool_choice=tool_choices,
)
def test_every_argument_litellm_counts_itself_gives_its_own_answer(
    model,
    messages,
    text,
    custom_tokenizer,
    count_response_tokens,
    use_default_image_token_count,
    default_token_count,
    tools,
    tool_choice,
):
    kwargs = {  # in the declared order, for the positional call below
        "model": model,
        "custom_tokenizer": _custom_tokenizer(custom_tokenizer),
        "text": text,
        "messages": messages,
        "count_response_tokens": count_response_tokens,
        "tools": tools,
        "tool_choice": tool_choice,
        "use_default_image_token_count": use_default_image_token_count,
        "default_token_count": default_token_count,
    }
    assert_same(both_ways(kwargs))
    # the same call with positional arguments, in the declared order
    assert_same(both_ways({}, args=tuple(kwargs.values())))


@functools.lru_cache(maxsize=None)
def _claude_tokenizer():
    from litellm.utils import claude_json_str

    return litellm.create_tokenizer(claude_json_str)


def _custom_tokenizer(kind):
    if kind == "openai":
        return {"type": "openai_tokenizer", "tokenizer": None}
    if kind == "claude":
        return _claude_tokenizer()
    return None


def test_fixed_cases_that_take_each_branch():
    from litellm.types.utils import Message

    chat = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is the weather in Paris?", "name": "bob"},
    ]
    cases = [
        {"model": "gpt-4o", "messages": chat},
        {"model": "gpt-4o", "messages": []},
        {"model": "gpt-4o", "messages": [Message(role="assistant", content="pydantic")]},
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}, "not a dict"]},
        {"model": "gpt-4o", "messages": "not a list"},
        {"model": "gpt-4o", "messages": chat, "text": "both"},
        {"model": "gpt-4o"},
        {"model": "gpt-4o", "text": "hello", "tools": [{"type": "function"}]},
        {"model": 42, "messages": chat},
        {"model": "gpt-4o", "messages": chat, "unexpected": 1},
        {"messages": chat},
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "lone \ud83d"}]},
        {"model": "claude-opus-4-5", "messages": [{"role": "user", "content": "lone \ud83d"}]},
        {
            "model": "deepseek-chat",
            "messages": [{"role": "user", "content": "x", "name": "\udfff"}],
        },
    ]
    for kwargs in cases:
        assert_same(both_ways(kwargs))


def test_an_image_litellm_reads_is_read_once(monkeypatch):
    # Our counter hands a high-detail image by URL to litellm; when litellm then fails, its
    # exception is the answer: the call is not repeated (which would fetch the image again).
    reads = []
    real = core_module.get_image_dimensions

    def reading(data):
        reads.append(data)
        return real(data)

    monkeypatch.setattr(core_module, "get_image_dimensions", reading)
    url = {"url": "http://127.0.0.1:9/image.png", "detail": "high"}
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": url}]}]
    expected = outcome(UTILS, model="gpt-4o", messages=messages)
    assert expected[0] == "raised" and reads == [url["url"]]
    fast_litellm.patch()
    reads.clear()
    assert outcome(litellm.token_counter, model="gpt-4o", messages=messages) == expected
    assert reads == [url["url"]]


def test_disable_token_counter_answers_zero_as_litellm_does():
    chat = [{"role": "user", "content": "hello"}]
    saved = litellm.disable_token_counter
    try:
        for value in (True, 1, False):
            litellm.disable_token_counter = value
            assert_same(both_ways({"model": "gpt-4o", "messages": chat}))
    finally:
        litellm.disable_token_counter = saved


def test_disable_hf_tokenizer_download_is_followed():
    chat = [{"role": "user", "content": "hello there, general kenobi \u00e9 \u65e5\u672c"}]
    saved = litellm.disable_hf_tokenizer_download
    try:
        # Both orders: an answer cached under one setting must not outlive a change.
        for value in (True, False, True, False):
            litellm.disable_hf_tokenizer_download = value
            for model in (
                "deepseek-chat",
                "claude-opus-4-5",
                "meta-llama/Llama-2-7b-chat-hf",
                "gpt-4o",
            ):
                assert_same(both_ways({"model": model, "messages": chat}))
    finally:
        litellm.disable_hf_tokenizer_download = saved


@pytest.mark.parametrize(
    "part",
    [
        {
            "type": "web_fetch_tool_result",
            "content": {"type": "document", "source": {"type": "text", "data": "hello"}},
        },
        {
            "type": "web_search_tool_result",
            "content": {"type": "document", "source": {"type": "content", "content": ["hi"]}},
        },
        {
            "type": "web_fetch_tool_result",
            "content": {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "hello there"},
                "title": "t",
            },
        },
        {
            "type": "tool_result",
            "tool_use_id": "x",
            "content": [{"type": "document", "source": {"type": "text", "data": "no media type"}}],
        },
    ],
)
def test_documents_inside_tool_results_are_checked_as_litellm_checks_them(part):
    # litellm validates such a document against its pydantic type (and raises for one that
    # does not fit): the patched counter lets litellm answer these.
    assert_same(both_ways({"model": "gpt-4o", "messages": [{"role": "user", "content": [part]}]}))


_REGISTER_LATE = """
import json
import litellm, fast_litellm

# A text the Anthropic tokenizer and tiktoken count differently.
chat = [{"role": "user", "content": "Hello there, how are you doing today? \u00e9\u00e8 \u65e5\u672c\u8a9e"}]
rows = []
for model, provider in (("claude-registered-late", "anthropic"), ("gpt-registered-late", "openai")):
    for stage in ("before", "after"):
        if stage == "after":
            litellm.register_model({model: {
                "litellm_provider": provider, "mode": "chat", "max_tokens": 4096,
                "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}})
        fast_litellm.unpatch()
        unpatched = litellm.token_counter(model=model, messages=chat)
        fast_litellm.patch()
        rows.append([model, stage, unpatched, litellm.token_counter(model=model, messages=chat)])
        fast_litellm.unpatch()
print(json.dumps(rows))
"""


def test_a_model_registered_after_counting_is_counted_as_litellm_counts_it():
    # In a process of its own: registering changes litellm's tables for good.
    from .conftest import run_python

    result = run_python(_REGISTER_LATE)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(rows) == 4
    for model, stage, unpatched, patched in rows:
        assert patched == unpatched, (model, stage)


# ---- what is patched, and undoing it ------------------------------------------------------------


def test_every_place_is_patched_and_unpatch_restores_the_same_objects():
    assert len(ORIGINALS) >= 16
    assert set(ORIGINALS.values()) == {CORE, UTILS}
    status = fast_litellm.patch()
    assert status["patched"] and status["litellm_version"] == litellm_version()
    points = status["features"]["token_counting"]["entry_points"]
    for name, original in ORIGINALS.items():
        patched = vars(sys.modules[name])["token_counter"]
        assert patched is not original and patched.__wrapped__ is original
        assert points[f"{name}.token_counter"] == {"status": "patched"}
    import inspect

    assert inspect.signature(litellm.token_counter) == inspect.signature(UTILS)
    assert status["features"]["token_counting"]["upstream_native"] == {
        "token_counter": "python",
        "tokenizer": "python",
    }
    fast_litellm.unpatch()
    for name, original in ORIGINALS.items():
        assert vars(sys.modules[name])["token_counter"] is original
    assert not fast_litellm.patch_status()["patched"]


def litellm_version():
    from importlib.metadata import version

    return version("litellm")


def test_patch_is_idempotent_and_reuses_its_replacements():
    fast_litellm.patch()
    first = {name: vars(sys.modules[name])["token_counter"] for name in ORIGINALS}
    fast_litellm.patch()
    fast_litellm.patch(["token_counting"])
    assert {name: vars(sys.modules[name])["token_counter"] for name in ORIGINALS} == first
    assert litellm.token_counter.__wrapped__ is UTILS  # one layer, not a wrapper of a wrapper
    fast_litellm.unpatch()
    fast_litellm.unpatch()
    assert litellm.token_counter is UTILS
    fast_litellm.patch("token-counting")
    assert litellm.token_counter is first["litellm"]


def test_bad_feature_names_are_refused():
    with pytest.raises(ValueError, match="unknown feature 'budgets'.*token_counting"):
        fast_litellm.patch(["budgets"])
    with pytest.raises(TypeError, match="features must be names"):
        fast_litellm.patch([1])
    assert litellm.token_counter is UTILS


def test_a_module_imported_after_patch_is_patched_and_restored(monkeypatch):
    import types

    fast_litellm.patch()
    late = types.ModuleType("litellm.late_importer")
    exec("from litellm.utils import token_counter", late.__dict__)
    monkeypatch.setitem(sys.modules, "litellm.late_importer", late)
    assert late.token_counter is litellm.token_counter
    status = fast_litellm.patch_status()
    entry = status["features"]["token_counting"]["entry_points"][
        "litellm.late_importer.token_counter"
    ]
    assert entry == {"status": "patched"}
    fast_litellm.unpatch()
    assert late.token_counter is UTILS


def test_a_changed_signature_is_skipped_with_the_reason(monkeypatch):
    def token_counter(model="", messages=None, new_option=True):  # a future litellm, say
        return 0

    token_counter.__module__ = "litellm.utils"
    token_counter.__qualname__ = "token_counter"
    monkeypatch.setattr(utils_module, "token_counter", token_counter)
    monkeypatch.setattr(litellm, "token_counter", token_counter)
    status = fast_litellm.patch()
    points = status["features"]["token_counting"]["entry_points"]
    assert points["litellm.utils.token_counter"]["status"] == "skipped"
    assert "new_option=True" in points["litellm.utils.token_counter"]["reason"]
    assert litellm.token_counter is token_counter  # left alone
    assert core_module.token_counter is not CORE  # the other one is still patched
    fast_litellm.unpatch()
    assert core_module.token_counter is CORE


def test_upstream_native_routing_is_left_alone(monkeypatch):
    from litellm.rust_bridge import catalog
    from litellm.rust_bridge.configuration import Decision

    monkeypatch.setattr(
        catalog, "decision", lambda context, rules=None: Decision.RUST_WITH_FALLBACK
    )
    status = fast_litellm.patch(features=["token_counting"])
    assert not status["patched"]
    points = status["features"]["token_counting"]["entry_points"]
    reason = points["litellm.utils.token_counter"]["reason"]
    assert "native bridge" in reason and "token_counter=rust_with_fallback" in reason
    assert litellm.token_counter is UTILS


def test_the_upstream_switches_do_not_route_token_counting_in_this_litellm(monkeypatch):
    monkeypatch.setenv("LITELLM_RUST", "1")
    litellm.rust(True)
    try:
        status = fast_litellm.patch()
    finally:
        litellm.rust(None)
    assert status["patched"]
    assert set(status["features"]["token_counting"]["upstream_native"].values()) == {"python"}


def test_feature_status_and_health_show_the_patch():
    assert fast_litellm.get_feature_status()["litellm_patch"]["patched"] is False
    fast_litellm.patch()
    assert fast_litellm.get_feature_status()["litellm_patch"]["patched"] is True
    report = fast_litellm.health_check()
    assert report["litellm_patch"]["features"]["token_counting"]["patched"] is True


def test_patch_logs_once_what_it_did(caplog):
    caplog.set_level("INFO", logger="fast_litellm")
    fast_litellm.patch()
    fast_litellm.patch()
    patched = [r for r in caplog.records if "token counting patched" in r.getMessage()]
    assert len(patched) == 1 and "litellm.main.token_counter" in patched[0].getMessage()


# ---- threads --------------------------------------------------------------------------------------


def test_patch_and_unpatch_from_threads_while_others_count():
    chat = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "Hello there"}], "name": "bob"},
    ]
    expected = UTILS(model="gpt-4o", messages=chat)
    errors = []
    results = []
    start = threading.Barrier(6)

    def count():
        start.wait(timeout=60)
        try:
            for _ in range(300):
                results.append(litellm.token_counter(model="gpt-4o", messages=chat))
                results.append(core_module.token_counter(model="gpt-4o", messages=chat))
        except Exception as exc:  # reported below
            errors.append(exc)

    def toggle():
        start.wait(timeout=60)
        try:
            for _ in range(40):
                fast_litellm.patch()
                fast_litellm.unpatch()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=count) for _ in range(4)]
    threads += [threading.Thread(target=toggle) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert len(results) == 4 * 600 and set(results) == {expected}
    fast_litellm.unpatch()
    for name, original in ORIGINALS.items():
        assert vars(sys.modules[name])["token_counter"] is original


# ---- fresh interpreters: the import hook, reloads, import cost ----------------------------------

AUTO = {"FAST_LITELLM_AUTO_PATCH": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def test_import_fast_litellm_never_imports_litellm():
    code = "import sys, fast_litellm\nprint('litellm' in sys.modules)\n"
    for env in ({}, {"FAST_LITELLM_AUTO_PATCH": "1"}):
        result = run_python(code, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "False"


def test_auto_patch_patches_litellm_when_it_is_imported_and_survives_reloads():
    code = """
import importlib, sys
import fast_litellm
import litellm
import litellm.utils
status = fast_litellm.patch_status()
assert status["patched"], status
assert status["auto_patch"] == "litellm patched on import", status
assert litellm.token_counter.__wrapped__ is not None
assert litellm.__loader__.__class__.__name__ != "_PatchingLoader"
assert litellm.__spec__.loader is litellm.__loader__
assert all(type(f).__name__ != "_LiteLLMImportHook" for f in sys.meta_path)
n = litellm.token_counter(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])

# reloading litellm keeps it patched; reloading litellm.utils creates a new original, which
# patch() picks up; unpatch() puts back what each place held
importlib.reload(litellm)
assert fast_litellm.patch_status()["patched"]
old_utils = litellm.utils.token_counter.__wrapped__
importlib.reload(litellm.utils)
new_utils = litellm.utils.token_counter
assert new_utils is not old_utils and not hasattr(new_utils, "__wrapped__")
fast_litellm.patch()
assert litellm.utils.token_counter.__wrapped__ is new_utils
assert litellm.token_counter(model="gpt-4o", messages=[{"role": "user", "content": "hi"}]) == n
fast_litellm.unpatch()
assert litellm.utils.token_counter is new_utils
assert sys.modules["litellm.main"].token_counter is old_utils
print("ok", n)
"""
    result = run_python(code, env=AUTO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "ok"


def test_auto_patch_after_litellm_is_already_imported():
    code = """
import litellm
import fast_litellm
assert fast_litellm.patch_status()["patched"]
print(fast_litellm.patch_status()["auto_patch"])
"""
    result = run_python(code, env=AUTO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "litellm patched on import"


def test_a_malformed_auto_patch_value_is_refused_with_its_name():
    result = run_python("import fast_litellm", env={"FAST_LITELLM_AUTO_PATCH": "maybe"})
    assert result.returncode != 0 and "FAST_LITELLM_AUTO_PATCH='maybe'" in result.stderr
