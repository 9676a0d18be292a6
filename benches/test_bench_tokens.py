"""pytest-benchmark comparisons: native vs fallback vs the reference library, on the same cases
as ``scripts/run_benchmarks.py`` (both read them from ``benches/token_cases.py``).

    pytest benches/ --benchmark-only
"""

from __future__ import annotations

import pytest

import fast_litellm

from . import token_cases as cases

ENCODINGS = list(cases.ENCODINGS)
CASES = list(cases.texts())


def _contender(encoding: str, name: str):
    contenders, skipped = cases.token_contenders(encoding)
    if name in skipped:
        pytest.skip(skipped[name])
    return contenders[name]


@pytest.mark.parametrize("contender", ["native", "fallback", "tiktoken"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_count_tokens(benchmark, encoding, case, contender):
    benchmark.group = f"count_tokens {encoding} {case}"
    fn = _contender(encoding, contender)
    text = cases.texts()[case]
    if isinstance(text, cases.Rotating):
        # A different text on every call: what counting never-seen text costs.
        rotation = cases.Rotating(text.texts)
        benchmark(lambda: fn(rotation.next_text()))
        sample = text.texts[0]
        assert fn(sample) == _contender(encoding, "fallback")(sample)
        return
    assert benchmark(fn, text) == _contender(encoding, "fallback")(text)


@pytest.mark.parametrize(
    "contender", ["native batch", "single-thread loop", "tiktoken loop", "tiktoken batch"]
)
def test_count_tokens_batch(benchmark, contender):
    benchmark.group = "count_tokens_batch 10,000 x 1 KB"
    texts = cases.batch_texts()
    if contender in ("native batch", "single-thread loop"):
        reason = cases.native_missing()
    else:
        reason = cases.missing("tiktoken", "tiktoken")
    if reason is not None:
        pytest.skip(reason)
    if contender == "native batch":
        result = benchmark(fast_litellm.count_tokens_batch, texts, encoding="cl100k_base")
    elif contender == "single-thread loop":
        result = benchmark(
            lambda: [fast_litellm.count_tokens(t, encoding="cl100k_base") for t in texts]
        )
    elif contender == "tiktoken loop":
        reference = cases.reference_encoding("cl100k_base")
        result = benchmark(lambda: [len(reference.encode_ordinary(t)) for t in texts])
    else:
        reference = cases.reference_encoding("cl100k_base")
        result = benchmark(lambda: [len(t) for t in reference.encode_ordinary_batch(texts)])
    assert len(result) == len(texts)


@pytest.mark.parametrize("contender", ["native", "fallback", "litellm"])
@pytest.mark.parametrize("size", [None, 50_000], ids=["3-message chat", "50 KB chat"])
def test_count_message_tokens(benchmark, size, contender):
    benchmark.group = f"count_message_tokens {'3 messages' if size is None else '50 KB'}"
    messages = cases.chat(size)
    reason = {
        "native": cases.native_missing(),
        "fallback": cases.missing("tiktoken", "tiktoken"),
        "litellm": cases.missing("litellm", "litellm"),
    }[contender]
    if reason is not None:
        pytest.skip(reason)
    if contender == "litellm":
        import litellm

        benchmark(litellm.token_counter, model="gpt-4o", messages=messages)
        return
    fast_litellm.configure("token_counting", rust=contender == "native")
    try:
        benchmark(fast_litellm.count_message_tokens, messages, model="gpt-4o")
    finally:
        fast_litellm.configure(reload_environment=True)


@pytest.mark.parametrize("contender", ["native", "litellm", "tokenizers", "litellm native"])
@pytest.mark.parametrize("index", range(len(cases.hf_texts())))
def test_count_tokens_huggingface(benchmark, index, contender):
    case, model, text = cases.hf_texts()[index]
    benchmark.group = f"count_tokens {model} {case}"
    contenders, skipped = cases.hf_contenders(model)
    if contender in skipped:
        pytest.skip(skipped[contender])
    expected = cases.hf_contenders(model)[0]["tokenizers"](text)
    assert benchmark(contenders[contender], text) == expected


@pytest.mark.parametrize("contender", ["native", "json.loads + count_message_tokens"])
@pytest.mark.parametrize("model", ["gpt-4o", "claude-opus-4-5"])
def test_count_request_tokens(benchmark, model, contender):
    benchmark.group = f"count_request_tokens 50 KB {model}"
    reason = cases.native_missing()
    if reason is not None:
        pytest.skip(reason)
    body = cases.request_body(50_000, model)
    if contender == "native":
        result = benchmark(fast_litellm.count_request_tokens, body)
    else:
        result = benchmark(cases._loads_and_count, body)
    assert result == cases._loads_and_count(body)
