"""``python -m fast_litellm``: the README's first command, with and without the optional packages.

Each run is a fresh interpreter in which the optional packages are made unimportable
(``sys.modules[name] = None``), as on a machine where only ``pip install .`` was run.
"""

from __future__ import annotations

import pytest

from fast_litellm import _flags

from .conftest import run_python

_WITHOUT = "import sys\nfor name in {names!r}: sys.modules[name] = None\n"
_MAIN = "from fast_litellm.__main__ import main\nsys.exit(main({argv!r}))\n"


def _run(argv, without=()):
    return run_python(_WITHOUT.format(names=list(without)) + _MAIN.format(argv=list(argv)))


def test_runs_with_no_optional_package_and_says_what_it_skipped():
    if _flags.native is None:
        pytest.skip(f"native module unavailable: {_flags.native_import_error}")
    result = _run(["--iterations", "1", "--strict"], without=["tiktoken", "litellm", "redis"])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "status: ok" in out
    assert "count_tokens, 1 KB English" in out and "native" in out
    assert "SimpleRateLimiter.allow, one hot key" in out
    assert "skipped: tiktoken: tiktoken is not installed (pip install tiktoken)" in out
    assert "skipped: litellm: litellm is not installed (pip install litellm)" in out
    assert "fallback token counting" in out
    assert "Traceback" not in result.stderr


def test_compares_native_fallback_and_references_when_installed():
    pytest.importorskip("tiktoken")
    pytest.importorskip("litellm")
    if _flags.native is None:
        pytest.skip(f"native module unavailable: {_flags.native_import_error}")
    result = _run(["--iterations", "1"])
    assert result.returncode == 0, result.stderr
    for line in ("x vs fallback", "x vs tiktoken", "x vs litellm"):
        assert line in result.stdout
    assert "skipped:" not in result.stdout


def test_strict_fails_only_when_degraded():
    without_native = ["fast_litellm._native"]
    friendly = _run(["--status"], without=without_native)
    assert friendly.returncode == 0, friendly.stderr
    assert "status: degraded" in friendly.stdout
    strict = _run(["--status", "--strict"], without=without_native)
    assert strict.returncode == 1
    assert "--strict: the status is 'degraded'" in strict.stderr
    strict_json = _run(["--json", "--strict"], without=without_native)
    assert strict_json.returncode == 1
    if _flags.native is not None:
        assert _run(["--status", "--strict"]).returncode == 0
