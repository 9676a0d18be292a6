"""Claude and DeepSeek models: counted with the Hugging Face tokenizers the installed litellm
ships, on both paths, against Python ``tokenizers`` and ``litellm.token_counter``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fast_litellm
from fast_litellm import _flags, _models, tokens

from .conftest import run_python
from .corpus import corpus

pytest.importorskip("tokenizers")
litellm = pytest.importorskip("litellm")

from tokenizers import Tokenizer  # noqa: E402

CORPUS = corpus(random_count=150)
CLAUDE = "claude-opus-4-5"
DEEPSEEK = "deepseek-v3"
MODELS = {CLAUDE: "anthropic", DEEPSEEK: "deepseek", "deepseek-chat": "deepseek"}


def _file(kind: str) -> str:
    path = _models.huggingface_tokenizer_file(kind)
    assert path is not None and os.path.isfile(path), kind
    return path


REFERENCE = {kind: Tokenizer.from_file(_file(kind)) for kind in ("anthropic", "deepseek")}


def reference_count(model: str, text: str) -> int:
    return len(REFERENCE[MODELS[model]].encode_batch_fast([text])[0])


def test_models_resolve_to_the_files_litellm_ships():
    for model, kind in MODELS.items():
        assert _models.huggingface_kind(model) == kind
        tokenizer = tokens._model_tokenizer(model)
        assert type(tokenizer) is tokens._HfTokenizer
        assert tokenizer.path == _file(kind)
    assert tokens._model_tokenizer(CLAUDE) is tokens._model_tokenizer("claude-sonnet-4-5")
    assert fast_litellm.SimpleTokenCounter(CLAUDE).encoding is None


@pytest.mark.parametrize("model", [CLAUDE, DEEPSEEK])
def test_counts_equal_python_tokenizers_and_litellm_on_corpus(path, model):
    counts = [fast_litellm.count_tokens(text, model=model) for text in CORPUS]
    assert counts == [reference_count(model, text) for text in CORPUS]
    assert counts == [litellm.token_counter(model=model, text=text) for text in CORPUS]
    assert fast_litellm.count_tokens_batch(CORPUS, model=model) == counts
    assert fast_litellm.SimpleTokenCounter(model).count_tokens_batch(CORPUS[:5]) == counts[:5]


@pytest.mark.parametrize("model", [CLAUDE, DEEPSEEK])
def test_token_ids_equal_python_tokenizers(model):
    if _flags.native is None:
        pytest.skip("native module unavailable")
    native = tokens._model_tokenizer(model).load_native()
    for text in CORPUS:
        assert native.encode(text) == REFERENCE[MODELS[model]].encode(text).ids, text


def test_a_large_batch_is_counted_in_order(path):
    texts = [text * 20 for text in CORPUS[:60]]  # above the parallel threshold
    assert fast_litellm.count_tokens_batch(texts, model=CLAUDE) == [
        reference_count(CLAUDE, t) for t in texts
    ]


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "60")), deadline=None)
@given(text=st.text(max_size=200), model=st.sampled_from([CLAUDE, DEEPSEEK]))
def test_native_equals_fallback_equals_tokenizers(text, model):
    expected = reference_count(model, text)
    tokenizer = tokens._model_tokenizer(model)
    assert tokenizer.side(False).count(text) == expected
    if _flags.native is not None:
        assert tokenizer.side(True).count(text) == expected


MESSAGES = [
    {"role": "system", "content": "You are a careful assistant. Answer briefly."},
    {"role": "user", "content": "What is the weather in Paris?", "name": "alice"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "18°C, clear 晴れ"},
    {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}, "Thanks!"]},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                "required": ["city"],
            },
        },
    }
]


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("with_tools", [False, True])
def test_messages_equal_litellm(path, model, with_tools):
    tools = TOOLS if with_tools else None
    choice = {"type": "function", "function": {"name": "get_weather"}} if with_tools else None
    expected = litellm.token_counter(
        model=model, messages=MESSAGES, tools=tools, tool_choice=choice
    )
    assert (
        fast_litellm.count_message_tokens(MESSAGES, model=model, tools=tools, tool_choice=choice)
        == expected
    )


def test_long_text_is_not_cut_into_chunks(path):
    # LiteLLM cuts text into 1024-character chunks only for tiktoken; a word across a chunk
    # boundary shows the difference.
    text = "x" * 1020 + " incomprehensibilities " * 100
    messages = [{"role": "user", "content": text}]
    assert fast_litellm.count_message_tokens(messages, model=CLAUDE) == litellm.token_counter(
        model=CLAUDE, messages=messages
    )


_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(max_size=80)},
    optional={"name": st.text(max_size=10)},
)


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "40")), deadline=None)
@given(messages=st.lists(_message, max_size=4), model=st.sampled_from(list(MODELS)))
def test_messages_native_equal_fallback_equal_litellm(messages, model):
    expected = litellm.token_counter(model=model, messages=messages)
    tokenizer = tokens._model_tokenizer(model)
    assert tokenizer.side(False).count_messages(messages) == expected
    if _flags.native is not None:
        assert tokenizer.side(True).count_messages(messages) == expected


def test_bad_input(path):
    with pytest.raises(TypeError, match="must be str"):
        fast_litellm.count_tokens(b"bytes", model=CLAUDE)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fast_litellm.count_tokens_batch("one string", model=CLAUDE)
    with pytest.raises(TypeError):
        fast_litellm.count_message_tokens("not a list", model=CLAUDE)  # type: ignore[arg-type]


LONE_SURROGATE = "half a pair \ud83d here"


def test_a_lone_surrogate_is_refused_as_litellm_refuses_it(path):
    """Python ``tokenizers`` cannot take a lone surrogate, so litellm's count raises TypeError
    (tiktoken repairs such text, and the OpenAI models count it); every path raises it too."""
    with pytest.raises(TypeError):
        litellm.token_counter(model=CLAUDE, messages=[{"role": "user", "content": LONE_SURROGATE}])
    body = json.dumps({"model": CLAUDE, "messages": [{"role": "user", "content": "\ud83d"}]})
    for model in (CLAUDE, DEEPSEEK):
        with pytest.raises(TypeError):
            fast_litellm.count_tokens(LONE_SURROGATE, model=model)
        with pytest.raises(TypeError):
            fast_litellm.count_tokens_batch(["ok", LONE_SURROGATE], model=model)
        with pytest.raises(TypeError):
            fast_litellm.count_message_tokens(
                [{"role": "user", "content": "ok", "name": LONE_SURROGATE}], model=model
            )
        with pytest.raises(TypeError):
            fast_litellm.count_request_tokens(body, model=model)
    # The same text in an OpenAI model's count is repaired, as tiktoken repairs it.
    assert fast_litellm.count_tokens(LONE_SURROGATE, model="gpt-4o") == fast_litellm.count_tokens(
        "half a pair \ufffd here", model="gpt-4o"
    )


def test_a_bad_tokenizer_file_is_tokenizer_unavailable(tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(fast_litellm.TokenizerUnavailableError):
        tokens._HfTokenizer(str(bad)).side(False)
    if _flags.native is not None:
        with pytest.raises(fast_litellm.TokenizerUnavailableError):
            tokens._HfTokenizer(str(bad)).side(True)
        with pytest.raises(fast_litellm.TokenizerUnavailableError):
            tokens._HfTokenizer(str(tmp_path / "missing.json")).side(True)


def test_hub_tokenizers_come_from_the_local_cache(tmp_path, monkeypatch):
    # A Llama 3 tokenizer in a Hub cache laid out as huggingface_hub lays it out (here: a copy of
    # the DeepSeek file under the repository's name).
    repo = tmp_path / "models--Xenova--llama-3-tokenizer"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "tokenizer.json").write_text(open(_file("deepseek"), encoding="utf-8").read())
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert _models.huggingface_tokenizer_file("llama3") == str(snapshot / "tokenizer.json")
    monkeypatch.setenv("LITELLM_OFFLINE_MODE", "true")
    assert _models.huggingface_tokenizer_file("llama3") is None  # litellm uses tiktoken then
    monkeypatch.delenv("LITELLM_OFFLINE_MODE")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    assert _models.huggingface_tokenizer_file("llama3") is None
    # Not in the cache: litellm answers.
    assert type(tokens._model_tokenizer("llama-3-70b-instruct")) is tokens._LiteLLMDelegate


_HUB_CACHE_CASES = [
    {},
    {"HOME": "{tmp}/other"},
    {"XDG_CACHE_HOME": "{tmp}/xdg"},
    {"XDG_CACHE_HOME": ""},
    {"HF_HOME": "~/hf"},
    {"HF_HOME": ""},
    {"HF_HOME": "$HOME/hf", "XDG_CACHE_HOME": "{tmp}/xdg"},
    {"HUGGINGFACE_HUB_CACHE": "{tmp}/old", "HF_HOME": "{tmp}/hf"},
    {"HUGGINGFACE_HUB_CACHE": "{tmp}/old", "HF_HUB_CACHE": ""},
    {"HF_HUB_CACHE": "{tmp}/new", "HUGGINGFACE_HUB_CACHE": "{tmp}/old"},
    {"HF_HUB_CACHE": "~/${HOME}x"},
    {"HF_HUB_CACHE": "relative/hub"},
]


def test_the_hub_cache_is_where_huggingface_hub_looks(tmp_path, monkeypatch):
    # huggingface_hub computes its cache directory once, at import: each setting in a fresh
    # interpreter, against ours in this one after the same changes (so a change made at run
    # time is followed too). A variable set to "" counts, and "$NAME" is expanded, as there.
    pytest.importorskip("huggingface_hub")
    names = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME")
    for case in _HUB_CACHE_CASES:
        env = {k: v for k, v in os.environ.items() if k not in names}
        env["HOME"] = str(tmp_path / "home")
        env.update({k: v.replace("{tmp}", str(tmp_path)) for k, v in case.items()})
        theirs = subprocess.run(
            [sys.executable, "-c", "import huggingface_hub.constants as c; print(c.HF_HUB_CACHE)"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for name in names + ("HOME",):
            if name in env:
                monkeypatch.setenv(name, env[name])
            else:
                monkeypatch.delenv(name, raising=False)
        assert _models._hub_cache() == theirs, case


def test_a_bundled_tokenizer_ignores_the_hub_cache_and_offline_mode(monkeypatch, tmp_path):
    bundled = _models.huggingface_tokenizer_file("anthropic")
    if bundled is None:
        pytest.skip("litellm's bundled tokenizers are not installed")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("LITELLM_OFFLINE_MODE", "true")
    assert _models.huggingface_tokenizer_file("anthropic") == bundled


_FORK_SCRIPT = """
import json, os
import fast_litellm

text = "Fork safety: héllo 世界 " * 50
parent = [fast_litellm.count_tokens(text, model=m) for m in ("claude-opus-4-5", "deepseek-v3")]
fast_litellm.count_tokens_batch([text] * 200, model="claude-opus-4-5")  # the counting pool runs
children = []
for _ in range(3):
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        counts = [fast_litellm.count_tokens(text, model=m) for m in ("claude-opus-4-5", "deepseek-v3")]
        counts.append(sum(fast_litellm.count_tokens_batch([text] * 200, model="claude-opus-4-5")))
        os.write(write_fd, json.dumps(counts).encode())
        os._exit(0)
    os.close(write_fd)
    children.append((pid, read_fd))
for pid, read_fd in children:
    answer = json.loads(os.read(read_fd, 4096))
    _, status = os.waitpid(pid, 0)
    assert status == 0 and answer == parent + [200 * parent[0]], (answer, parent)
print("ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
@pytest.mark.parametrize(
    "env", [{}, {"FAST_LITELLM_DISABLE_RUST": "1"}], ids=["native", "fallback"]
)
def test_children_count_after_the_parent_did(env):
    result = run_python(_FORK_SCRIPT, env=env)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_request_bodies_of_these_models_count_alike():
    body = json.dumps({"model": CLAUDE, "messages": MESSAGES})
    assert fast_litellm.count_request_tokens(body) == litellm.token_counter(
        model=CLAUDE, messages=MESSAGES
    )


# ---- the fast count (src/tokens/hf_bpe.rs) against the crate's encode and Python tokenizers ----

# Characters where the pre-tokenizers and the normalizer decide things: ASCII punctuation next to
# letters (DeepSeek's first alternative), whitespace of every kind (`\s+(?!\S)`, `\s*[\r\n]+`),
# digits of several scripts (`\p{N}{1,3}`), CJK and kana (DeepSeek's CJK split; kana include
# punctuation and symbols), combining marks, emoji, and text NFKC rewrites (full-width forms,
# ligatures, superscripts, Roman numerals, compatibility spaces).
_ALPHABET = (
    "abcXYZ'sdtmlvre!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~"
    " \t\n\r\x0b\x0c\x85\xa0\u1680\u2028\u3000"
    "0123456789٣४\u00b2\u2163\u3007"
    "中文字漢語あいうカタナ\u30fb\u309b\u30a0\u30fcー"
    "\u0301\u0308e\u0300é"
    "😀👍🏽\u200d"
    "ＡＢＣ１２３ﬁﬂ\u2126\u212b"
    "\x00\x01\x7f"
)
# Mostly-ASCII text long enough for the pre-tokenizer's 64-byte blocks (src/tokens/blocks.rs):
# contractions of both cases next to words, white-space runs before letters, digits and
# punctuation, and now and then a character that is not ASCII.
_ASCII_ALPHABET = "abcXYZ'sdtmlvre!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~ \t\n\r\x0b\x0c0123456789é中"
_texts = st.one_of(
    st.text(alphabet=_ALPHABET, max_size=120),
    st.text(alphabet=_ASCII_ALPHABET, min_size=16, max_size=300),
    st.text(max_size=120),
    st.builds(
        lambda piece, times: piece * times,
        st.text(alphabet=_ALPHABET, max_size=6),
        st.integers(1, 400),
    ),
)


def _native_file_tokenizer(model: str):
    if _flags.native is None:
        pytest.skip("native module unavailable")
    return tokens._model_tokenizer(model).load_native()


@pytest.mark.parametrize("model", [CLAUDE, DEEPSEEK])
def test_the_shipped_files_take_the_fast_count(model):
    assert _native_file_tokenizer(model).accelerated


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "300")), deadline=None)
@given(text=_texts, model=st.sampled_from([CLAUDE, DEEPSEEK]))
def test_fast_count_equals_python_tokenizers(text, model):
    native = _native_file_tokenizer(model)
    assert native.count(text) == reference_count(model, text), repr(text)


@pytest.mark.parametrize("model", [CLAUDE, DEEPSEEK])
@pytest.mark.parametrize(
    "text",
    [
        "a" * 5000,
        "ab" * 3000,
        " " * 3000 + "x",
        "\n" * 500 + " " * 500,
        "1" * 1000,
        "中" * 2000,
        "ー" * 300,
        "😀" * 700,
        "x" + "\u0301" * 300,
        "Ｈｅｌｌｏ　ｗｏｒｌｄ！ ﬁne ²³ Ⅻ",
        "<EOT> and <META_START>x<META_END>",
        "<｜begin▁of▁sentence｜>hi<｜end▁of▁sentence｜>",
        "almost <EOT but not quite <｜end▁of▁sentence",
    ],
)
def test_fast_count_on_long_runs_and_added_tokens(model, text):
    native = _native_file_tokenizer(model)
    assert native.count(text) == reference_count(model, text)
    assert native.count_batch([text, text[:100]]) == [
        reference_count(model, text),
        reference_count(model, text[:100]),
    ]
