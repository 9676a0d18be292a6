"""The caller's errors are not native faults: they propagate unchanged, are never counted, and
never switch a feature to the fallback. Only a fault of the native code (``NativeError``) is."""

from __future__ import annotations

import pytest

import fast_litellm
from fast_litellm import _flags, tokens

from .test_flags import _BrokenNative


class CallerError(Exception):
    """Raised by the caller's own objects."""


def _counters():
    status = fast_litellm.get_feature_status()["features"]["token_counting"]
    return status["errors"], status["switched_to_fallback"]


@pytest.fixture
def strict(path):
    """Both paths, with a feature that would switch itself off after one counted error."""
    fast_litellm.configure(max_consecutive_errors=1)
    yield path
    fast_litellm.configure(max_consecutive_errors=5)


def _raising_texts(n):
    for i in range(n):
        yield f"text {i}"
    raise CallerError("the generator failed")


def test_a_generator_that_raises_propagates_and_is_not_counted(strict):
    for _ in range(6):
        with pytest.raises(CallerError, match="the generator failed"):
            fast_litellm.count_tokens_batch(_raising_texts(3))
        with pytest.raises(CallerError):
            fast_litellm.SimpleTokenCounter("gpt-4o").count_tokens_batch(_raising_texts(2))
    assert _counters() == (0, False)
    assert fast_litellm.count_tokens_batch(t for t in ["a b", "c"]) == [2, 1]
    status = fast_litellm.get_feature_status()["features"]["token_counting"]
    assert status["active_path"] == ("native" if strict == "native" else "fallback")


class Hostile(str):
    """A str subclass whose methods raise (the text itself is an ordinary string)."""

    def __getattribute__(self, name):
        if name in ("__class__", "__len__"):
            return super().__getattribute__(name)
        raise CallerError(f"hostile .{name}")


def test_a_hostile_str_subclass_is_counted_or_refused_but_never_a_fault(strict):
    text = Hostile("hello world")
    for call in (
        lambda: fast_litellm.count_tokens(text),
        lambda: fast_litellm.count_tokens_batch([text, text]),
        lambda: fast_litellm.count_message_tokens(
            [{"role": "user", "content": text}], model="gpt-4o"
        ),
    ):
        try:
            call()
        except CallerError:
            pass  # the caller's object raised: its exception, unchanged
    assert _counters() == (0, False)


def test_a_deeply_nested_value_is_not_a_native_fault(strict):
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    tools = [{"type": "function", "function": {"name": "f", "parameters": deep}}]
    try:
        fast_litellm.count_message_tokens(
            [{"role": "user", "content": "hi"}], model="gpt-4o", tools=tools
        )
    except (RecursionError, ValueError):
        pass
    assert _counters() == (0, False)


@pytest.mark.skipif(_flags.native is None, reason="native module unavailable")
def test_a_native_fault_is_counted_and_the_call_answered_by_the_fallback():
    tokenizer = tokens._encoding_tokenizer("p50k_base")
    real = tokenizer.load_native()
    tokenizer.native = _BrokenNative()
    fast_litellm.configure(rust=True, rollout=100)
    fast_litellm.reset_errors()
    try:
        assert fast_litellm.count_tokens_batch(["a b"], encoding="p50k_base") == [2]
        assert fast_litellm.count_tokens("a b", encoding="p50k_base") == 2
        status = fast_litellm.get_feature_status()["features"]["token_counting"]
        assert status["errors"] == 2 and status["fallback_calls"] >= 2
    finally:
        tokenizer.native = real
        fast_litellm.configure(reload_environment=True)
        fast_litellm.reset_errors()
