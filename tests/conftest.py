"""Shared fixtures: both dispatch paths, an offline reference tiktoken, offline litellm."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import shutil
import sys

import pytest

# Nothing in the suite may reach the network: litellm reads its bundled model map and
# Hugging Face stays offline.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hypothesis import settings  # noqa: E402

# The example budget comes from the environment, as in tiktoken's own suite.
settings.register_profile(
    "default", max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "200")), deadline=None
)
settings.load_profile("default")

import fast_litellm  # noqa: E402
from fast_litellm import _flags  # noqa: E402
from fast_litellm._vocab import ENCODING_NAMES, SHA256, vocabulary_path  # noqa: E402

PATHS = ["native", "fallback"]

# The test extra's packages that tests skip without (module -> distribution). Under CI a skip
# for want of one of them, or of the native module, would let the suite pass without testing the
# native path or without its references, so there they stop the session instead.
_TEST_EXTRA_MODULES = {
    "tiktoken": "tiktoken",
    "litellm": "litellm",
    "redis": "redis",
    "PIL": "pillow",
}


def pytest_sessionstart(session):
    if not os.environ.get("CI"):
        return
    problems = []
    if _flags.native is None:
        problems.append(f"the native module did not load ({_flags.native_import_error})")
    missing = [d for m, d in _TEST_EXTRA_MODULES.items() if importlib.util.find_spec(m) is None]
    if missing:
        problems.append(f"not installed: {', '.join(missing)} (pip install '.[test]')")
    if problems:
        pytest.exit(
            "CI is set, so nothing the suite tests may be skipped: " + "; ".join(problems),
            returncode=pytest.ExitCode.TESTS_FAILED,
        )


_OPENAI_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"


@pytest.fixture(params=PATHS)
def path(request):
    """Runs a test once on the native path and once on the fallback."""
    if request.param == "native" and _flags.native is None:
        pytest.skip(f"native module unavailable: {_flags.native_import_error}")
    fast_litellm.configure(rust=request.param == "native", rollout=100)
    fast_litellm.reset_errors()
    before = _fallback_calls()
    yield request.param
    if request.param == "native":
        # A native run must have run natively: a native fault re-run on the fallback would
        # otherwise pass it on the fallback's answers.
        features = fast_litellm.get_feature_status()["features"]
        faults = {name: f["last_error"] for name, f in features.items() if f["errors"]}
        assert not faults, f"native faults during a native run: {faults}"
        assert _fallback_calls() == before, "a native run took the fallback"
    fast_litellm.configure(reload_environment=True)
    fast_litellm.reset_errors()


def _fallback_calls():
    features = fast_litellm.get_feature_status()["features"]
    return {name: f["fallback_calls"] for name, f in features.items()}


@pytest.fixture(scope="session")
def tiktoken_reference(tmp_path_factory):
    """``name -> tiktoken.Encoding`` through tiktoken's own loader and patterns.

    The shipped vocabularies are placed in a cache folder under the names tiktoken's downloader
    would give them, so ``tiktoken.get_encoding`` loads them without a network and checks their
    sha256 against OpenAI's published hashes: the reference owes nothing to our own loader.
    """
    pytest.importorskip("tiktoken")
    import tiktoken
    import tiktoken.registry

    cache = tmp_path_factory.mktemp("tiktoken-cache")
    for name in SHA256:  # the vocabulary files (o200k_harmony reads o200k_base's)
        key = hashlib.sha1(_OPENAI_URL.format(name).encode()).hexdigest()
        shutil.copy(vocabulary_path(name), cache / key)
    saved = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    try:
        encodings = {}
        for name in ENCODING_NAMES:
            tiktoken.registry.ENCODINGS.pop(name, None)
            encodings[name] = tiktoken.get_encoding(name)
    finally:
        if saved is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = saved
    return encodings


def run_python(code: str, env: dict | None = None):
    """Runs ``code`` in a fresh interpreter (flags are read at import) and returns the result."""
    import subprocess

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FAST_LITELLM_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=120
    )


# The two ways native results reach an event loop (src/py/aio.rs): a socket the loop watches, or
# call_soon_threadsafe for a loop that cannot watch one.
LOOP_KINDS = ["watches sockets", "without add_reader"]


class _LoopWithoutReaders(asyncio.SelectorEventLoop):
    """A loop that cannot watch file descriptors, as Windows' proactor loop."""

    def add_reader(self, *args, **kwargs):
        raise NotImplementedError


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    """A new event loop of one of ``LOOP_KINDS``."""
    return _LoopWithoutReaders() if kind == "without add_reader" else asyncio.new_event_loop()
