"""Feature flags, rollout, the error boundary and the automatic switch to the fallback."""

from __future__ import annotations

import json

import pytest

import fast_litellm
from fast_litellm import _flags, tokens
from fast_litellm.errors import FastLiteLLMError, NativeError

from .conftest import run_python

STATUS = "import json, fast_litellm; print(json.dumps(fast_litellm.get_feature_status()))"


def _status(env):
    result = run_python(STATUS, env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_defaults_take_the_native_path():
    status = _status({})
    feature = status["features"]["token_counting"]
    assert feature["rust_enabled"] is True
    assert feature["source"] == "default"
    if status["native_available"]:
        assert feature["active_path"] == "native"


def test_env_turns_one_feature_off():
    status = _status({"FAST_LITELLM_RUST_TOKEN_COUNTING": "false"})
    assert status["features"]["token_counting"]["active_path"] == "fallback"
    assert status["features"]["token_counting"]["source"] == "env"
    assert status["features"]["rate_limiting"]["rust_enabled"] is True


def test_disable_rust_turns_everything_off():
    status = _status({"FAST_LITELLM_DISABLE_RUST": "1", "FAST_LITELLM_RUST_TOKEN_COUNTING": "true"})
    assert all(not f["rust_enabled"] for f in status["features"].values())
    assert all(f["active_path"] == "fallback" for f in status["features"].values())


def test_rollout_from_env():
    status = _status({"FAST_LITELLM_TOKEN_COUNTING_ROLLOUT": "25"})
    feature = status["features"]["token_counting"]
    assert feature["rollout_percent"] == 25
    if status["native_available"]:
        assert feature["active_path"] == "partial"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"FAST_LITELLM_RUST_TOKEN_COUNTING": "maybe"}, "FAST_LITELLM_RUST_TOKEN_COUNTING"),
        ({"FAST_LITELLM_TOKEN_COUNTING_ROLLOUT": "150"}, "0 to 100"),
        ({"FAST_LITELLM_MAX_CONSECUTIVE_ERRORS": "-1"}, ">= 0"),
    ],
)
def test_bad_env_values_fail_loudly(env, message):
    result = run_python("import fast_litellm", env)
    assert result.returncode != 0
    assert message in result.stderr


def test_rollout_share_is_exact_and_deterministic():
    state = _flags.FeatureState("TEST", True, 30, "test")
    picks = [state.take_native() for _ in range(1000)]
    assert sum(picks) == 300
    # Spread out, not bunched at the start of each cycle of 100 calls.
    assert 5 <= sum(picks[:20]) <= 7
    keyed = [state.take_native(f"key-{i}") for i in range(2000)]
    assert keyed == [state.take_native(f"key-{i}") for i in range(2000)]
    assert 450 <= sum(keyed) <= 750


def test_configure_validates_and_applies():
    try:
        fast_litellm.configure("token_counting", rust=False)
        assert fast_litellm.get_feature_status()["features"]["token_counting"]["active_path"] == (
            "fallback"
        )
        assert fast_litellm.count_tokens("hello world") == 2
        with pytest.raises(ValueError, match="valid features"):
            fast_litellm.configure("no_such_feature", rust=True)
        with pytest.raises(ValueError, match="0 to 100"):
            fast_litellm.configure(rollout=101)
        with pytest.raises(TypeError):
            fast_litellm.configure(rust="yes")
    finally:
        fast_litellm.configure(reload_environment=True)


class _BrokenNative:
    """Stands in for a native encoding whose every call fails unexpectedly."""

    def __init__(self):
        self.calls = 0

    def count(self, text):
        self.calls += 1
        raise NativeError("simulated failure")

    count_batch = count


@pytest.mark.skipif(_flags.native is None, reason="native module unavailable")
def test_native_failures_fall_back_then_switch_off_until_reset():
    tokenizer = tokens._encoding_tokenizer("r50k_base")
    real = tokenizer.load_native()
    broken = _BrokenNative()
    tokenizer.native = broken
    fast_litellm.configure(rust=True, rollout=100, max_consecutive_errors=3)
    fast_litellm.reset_errors()
    try:
        for _ in range(5):  # every call still answers, from the fallback
            assert fast_litellm.count_tokens("hello world", encoding="r50k_base") == 2
        assert fast_litellm.count_tokens_batch(["a b"], encoding="r50k_base") == [2]
        assert broken.calls == 3  # switched itself off after three failures in a row
        status = fast_litellm.get_feature_status()["features"]["token_counting"]
        assert status["switched_to_fallback"] is True
        assert status["errors"] == 3
        assert "simulated failure" in status["last_error"]
        assert fast_litellm.health_check()["features"]["token_counting"]["status"] == "degraded"
        tokenizer.native = real
        fast_litellm.reset_errors()
        assert fast_litellm.get_feature_status()["features"]["token_counting"]["active_path"] == (
            "native"
        )
        assert fast_litellm.count_tokens("hello world", encoding="r50k_base") == 2
    finally:
        tokenizer.native = real
        fast_litellm.configure(reload_environment=True)
        fast_litellm.reset_errors()


@pytest.mark.skipif(_flags.native is None, reason="native module unavailable")
def test_a_rust_panic_is_an_ordinary_exception_and_poisons_nothing():
    with pytest.raises(NativeError, match="boom") as caught:
        _flags.native._testing_panic("boom")
    assert isinstance(caught.value, FastLiteLLMError)
    assert isinstance(caught.value, Exception)
    with pytest.raises(NativeError):
        _flags.native._testing_panic("again")
    assert fast_litellm.count_tokens("still works") == 2


def test_import_does_not_import_litellm_or_tiktoken():
    code = (
        "import sys, fast_litellm; "
        "print(sorted(m for m in ('litellm', 'tiktoken') if m in sys.modules))"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_everything_works_when_the_native_module_cannot_load():
    code = (
        "import sys; sys.modules['fast_litellm._native'] = None\n"
        "import json, fast_litellm\n"
        "health = fast_litellm.health_check()\n"
        "print(json.dumps({'health': health, 'count': fast_litellm.count_tokens('hello world'),\n"
        "  'batch': fast_litellm.count_tokens_batch(['a b', 'c'], model='gpt-4o')}))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["count"] == 2 and out["batch"] == [2, 1]
    assert out["health"]["status"] == "degraded"
    assert out["health"]["native"]["available"] is False
    assert "fast_litellm._native" in out["health"]["native"]["error"]
    report = run_python(
        "import sys; sys.modules['fast_litellm._native'] = None\n"
        "from fast_litellm.__main__ import main; main(['--status'])"
    )
    assert report.returncode == 0, report.stderr
    assert "NOT loaded" in report.stdout
