"""health_check() exercises the native path for real."""

from __future__ import annotations

import sys

import fast_litellm
from fast_litellm import _flags, tokens


def test_probe_constant_matches_tiktoken(tiktoken_reference):
    reference = tiktoken_reference[tokens.HEALTH_PROBE_ENCODING]
    expected = len(reference.encode(tokens.HEALTH_PROBE_TEXT, disallowed_special=()))
    assert tokens.HEALTH_PROBE_EXPECTED == expected


def test_health_check_shape_and_status():
    report = fast_litellm.health_check()
    # Sections for live HTTP clients and Redis backends appear only when some exist.
    assert {"status", "version", "native", "features", "litellm_patch"} <= set(report)
    assert set(report) <= {
        "status",
        "version",
        "native",
        "features",
        "litellm_patch",
        "reasons",
        "http_pools",
        "rate_limit_backends",
    }
    assert report["version"] == fast_litellm.__version__
    token = report["features"]["token_counting"]
    if _flags.native is None:
        assert report["status"] == "degraded"
    else:
        assert report["status"] == "ok", report
        assert token["status"] == "ok"
        assert token["latency_ms"] >= 0
        assert report["native"]["version"] == _flags.native.__version__
        # The built extension's own allocator on Linux (the `jemalloc` feature, pyproject.toml).
        expected = "jemalloc" if sys.platform.startswith("linux") else "system"
        assert report["native"]["allocator"] == expected
        limiter = report["features"]["rate_limiting"]
        assert limiter["status"] == "ok", limiter
        assert limiter["latency_ms"] >= 0


def test_main_prints_a_status_report(capsys):
    from fast_litellm.__main__ import main

    assert main(["--status"]) == 0
    out = capsys.readouterr().out
    assert "token_counting" in out and "rate_limiting" in out and "status:" in out


def test_a_wrong_native_limiter_answer_degrades_the_report(monkeypatch):
    if _flags.native is None:
        return
    from fast_litellm.ratelimit.limits import Limits

    real = Limits.build

    def off_by_one(rpm, *args, **kwargs):
        # burst 7 instead of 6: the probe's 7th call is admitted, which must be reported
        return real(rpm, *args, **{**kwargs, "burst": 7})

    monkeypatch.setattr(Limits, "build", staticmethod(off_by_one))
    report = fast_litellm.health_check()
    assert report["status"] == "degraded"
    assert "answered wrongly" in report["features"]["rate_limiting"]["reason"]
