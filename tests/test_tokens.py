"""count_tokens / count_tokens_batch / SimpleTokenCounter on both paths, against tiktoken."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fast_litellm
from fast_litellm import _flags
from fast_litellm._vocab import ENCODING_NAMES

from .corpus import corpus

CORPUS = corpus()


def reference_count(reference, text: str) -> int:
    return len(reference.encode(text, disallowed_special=()))


@pytest.mark.parametrize("encoding", ENCODING_NAMES)
def test_counts_equal_tiktoken_on_corpus(path, encoding, tiktoken_reference):
    reference = tiktoken_reference[encoding]
    mismatches = [
        (text, fast_litellm.count_tokens(text, encoding=encoding), reference_count(reference, text))
        for text in CORPUS
        if fast_litellm.count_tokens(text, encoding=encoding) != reference_count(reference, text)
    ]
    assert mismatches == []


@pytest.mark.parametrize("encoding", ENCODING_NAMES)
def test_token_ids_equal_tiktoken(encoding, tiktoken_reference):
    if _flags.native is None:
        pytest.skip("native module unavailable")
    from fast_litellm.tokens import _encoding_tokenizer

    native = _encoding_tokenizer(encoding).load_native()
    reference = tiktoken_reference[encoding]
    for text in CORPUS:
        assert native.encode(text) == reference.encode(text, disallowed_special=()), text


@pytest.mark.parametrize("encoding", ENCODING_NAMES)
def test_batch_equals_single_counts_in_order(path, encoding, tiktoken_reference):
    reference = tiktoken_reference[encoding]
    assert fast_litellm.count_tokens_batch(CORPUS, encoding=encoding) == [
        reference_count(reference, text) for text in CORPUS
    ]
    assert fast_litellm.count_tokens_batch((), encoding=encoding) == []
    assert fast_litellm.count_tokens_batch(iter(["a b", "c"]), encoding=encoding) == [2, 1]


@given(st.text(max_size=300))
def test_native_equals_fallback_equals_tiktoken(tiktoken_reference, text):
    # Not parametrized through the fixture: each example runs both paths itself, against
    # tiktoken's own loader (not the fallback's tiktoken object).
    from fast_litellm.tokens import _encoding_tokenizer

    for encoding in ("cl100k_base", "o200k_base", "p50k_base"):
        tokenizer = _encoding_tokenizer(encoding)
        expected = reference_count(tiktoken_reference[encoding], text)
        assert tokenizer.load_fallback().count(text) == expected
        if _flags.native is not None:
            assert tokenizer.load_native().count(text) == expected


@given(st.lists(st.sampled_from(CORPUS[:60]) | st.text(max_size=50), max_size=40))
def test_batch_parity(tiktoken_reference, texts):
    from fast_litellm.tokens import _encoding_tokenizer

    tokenizer = _encoding_tokenizer("o200k_base")
    expected = [reference_count(tiktoken_reference["o200k_base"], text) for text in texts]
    assert tokenizer.load_fallback().count_batch(texts) == expected
    if _flags.native is not None:
        assert tokenizer.load_native().count_batch(texts) == expected


def test_special_token_text_counts_as_ordinary_text(path, tiktoken_reference):
    text = "<|endoftext|>"
    for encoding in ENCODING_NAMES:
        expected = reference_count(tiktoken_reference[encoding], text)
        assert expected > 1
        assert fast_litellm.count_tokens(text, encoding=encoding) == expected


# gpt-oss chat markup: o200k_harmony's own special tokens, as text.
HARMONY_TEXT = (
    "<|start|>assistant<|channel|>final<|message|>Hi there<|return|>"
    "<|start|>functions.f<|constrain|>json<|message|>{}<|call|><|end|>"
    "<|reserved_200500|><|startoftext|><|endofprompt|>"
)


def test_o200k_harmony_counts_its_special_token_text_as_tiktoken(path, tiktoken_reference):
    reference = tiktoken_reference["o200k_harmony"]
    for text in (HARMONY_TEXT, "<|call|>", HARMONY_TEXT * 40):
        assert fast_litellm.count_tokens(text, encoding="o200k_harmony") == reference_count(
            reference, text
        )
    assert fast_litellm.count_tokens_batch([HARMONY_TEXT, "x"], encoding="o200k_harmony") == [
        reference_count(reference, HARMONY_TEXT),
        1,
    ]


def test_fallback_o200k_harmony_is_tiktokens_definition(tiktoken_reference):
    from fast_litellm._fallback import tokens as fallback_tokens

    ours = fallback_tokens.get_encoding("o200k_harmony")
    reference = tiktoken_reference["o200k_harmony"]
    assert ours._special_tokens == reference._special_tokens
    assert ours._pat_str == reference._pat_str
    assert ours.n_vocab == reference.n_vocab
    # Its special tokens, when allowed, are the same ids.
    assert ours.encode(HARMONY_TEXT, allowed_special="all") == reference.encode(
        HARMONY_TEXT, allowed_special="all"
    )


def test_gpt_oss_models_follow_litellm_and_harmony_is_chosen_by_name(path, tiktoken_reference):
    # tiktoken maps `gpt-oss-*` to o200k_harmony, but litellm 1.110.2 counts those models with
    # cl100k_base, and counts by model name follow litellm; o200k_harmony is asked for by name.
    assert fast_litellm.encoding_for_model("gpt-oss-120b") == "cl100k_base"
    text = HARMONY_TEXT + " Counting gpt-oss: 你好 🌍"
    counter = fast_litellm.SimpleTokenCounter(encoding="o200k_harmony")
    assert counter.encoding == "o200k_harmony"
    assert counter.count_tokens(text) == reference_count(tiktoken_reference["o200k_harmony"], text)


def test_lone_surrogates_count_as_tiktoken_counts_them(path, tiktoken_reference):
    texts = ["a\ud800b", "\udfff", "x\ud83d\ude00y", "\ud83d", "ok \udc80\udc81 ok"]
    for encoding in ("cl100k_base", "o200k_base"):
        reference = tiktoken_reference[encoding]
        for text in texts:
            assert fast_litellm.count_tokens(text, encoding=encoding) == reference_count(
                reference, text
            )
        assert fast_litellm.count_tokens_batch(texts, encoding=encoding) == [
            reference_count(reference, t) for t in texts
        ]


def test_empty_and_large_inputs(path, tiktoken_reference):
    assert fast_litellm.count_tokens("") == 0
    big = ("All work and no play makes a dull program. " * 250_000)[:10_000_000]
    assert fast_litellm.count_tokens(big) == reference_count(tiktoken_reference["cl100k_base"], big)


@pytest.mark.parametrize(
    "text",
    [
        "a" * 1_000_000,
        " " * 200_000,
        "\n" * 100_000,
        "1" * 100_000,
        "😀" * 50_000,
        "ab\u0301" * 50_000,
    ],
)
def test_pathological_inputs(path, text, tiktoken_reference):
    for encoding in ("cl100k_base", "o200k_base"):
        expected = reference_count(tiktoken_reference[encoding], text)
        assert fast_litellm.count_tokens(text, encoding=encoding) == expected
    # Nothing was poisoned: an ordinary count still works afterwards.
    assert fast_litellm.count_tokens("hello world") == 2


def test_model_picks_encoding(path, tiktoken_reference):
    text = "Counting with the model's own encoding: 你好 🌍"
    assert fast_litellm.count_tokens(text, model="gpt-4o") == reference_count(
        tiktoken_reference["o200k_base"], text
    )
    assert fast_litellm.count_tokens(text, model="gpt-4") == reference_count(
        tiktoken_reference["cl100k_base"], text
    )
    assert fast_litellm.count_tokens(text) == reference_count(
        tiktoken_reference["cl100k_base"], text
    )
    # An explicit encoding wins over the model.
    assert fast_litellm.count_tokens(text, model="gpt-4o", encoding="r50k_base") == reference_count(
        tiktoken_reference["r50k_base"], text
    )


def test_simple_token_counter(path, tiktoken_reference):
    counter = fast_litellm.SimpleTokenCounter(model="gpt-4o-mini")
    assert counter.encoding == "o200k_base"
    reference = tiktoken_reference["o200k_base"]
    assert counter.count_tokens("hello there") == reference_count(reference, "hello there")
    assert counter.count_tokens_batch(["a", "b c"]) == [1, 2]
    assert "gpt-4o-mini" in repr(counter)
    assert fast_litellm.SimpleTokenCounter(encoding="p50k_base").encoding == "p50k_base"


@pytest.mark.parametrize("bad", [None, b"bytes", 42, 3.5, ["list"], object()])
def test_non_str_text_raises_type_error(path, bad):
    with pytest.raises(TypeError, match="text.*must be str"):
        fast_litellm.count_tokens(bad)


@pytest.mark.parametrize("bad", ["a single string", b"bytes", 5, None])
def test_bad_batch_raises_type_error(path, bad):
    with pytest.raises(TypeError, match="texts"):
        fast_litellm.count_tokens_batch(bad)


def test_batch_with_a_bad_item_names_it(path):
    with pytest.raises(TypeError, match="item 1 is int"):
        fast_litellm.count_tokens_batch(["ok", 7, "fine"])


def test_unknown_encoding_lists_valid_names(path):
    with pytest.raises(ValueError, match="cl100k_base.*o200k_base"):
        fast_litellm.count_tokens("x", encoding="gpt2-xl")
    with pytest.raises(TypeError, match="encoding must be a str"):
        fast_litellm.count_tokens("x", encoding=5)
    with pytest.raises(TypeError, match="model must be a str"):
        fast_litellm.count_tokens("x", model=["gpt-4"])


def test_eight_threads_agree_with_sequential_counts(path):
    texts = CORPUS[:120]
    expected = [fast_litellm.count_tokens(t, model="gpt-4o") for t in texts]
    expected_batch = fast_litellm.count_tokens_batch(texts, encoding="cl100k_base")
    results = {}
    errors = []
    start = threading.Barrier(8)

    def work(index):
        try:
            start.wait()
            for _ in range(5):
                counts = [fast_litellm.count_tokens(t, model="gpt-4o") for t in texts]
                batch = fast_litellm.count_tokens_batch(texts, encoding="cl100k_base")
            results[index] = (counts, batch)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(result == (expected, expected_batch) for result in results.values())
    assert len(results) == 8
