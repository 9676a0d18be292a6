"""The package's shape: its public namespace, one definition per fact (and Rust == Python where
both need one), features listed only once they exist, and no layer importing the one above it.
"""

from __future__ import annotations

import ast
import pathlib
import types
import warnings

import pytest

import fast_litellm
from fast_litellm import _flags, health
from fast_litellm._fallback import ratelimit as fallback_ratelimit
from fast_litellm._fallback import tokens as fallback_tokens
from fast_litellm._vocab import ENCODING_NAMES
from fast_litellm.ratelimit import redis_protocol

from .conftest import run_python

PACKAGE = pathlib.Path(fast_litellm.__file__).parent
native = _flags.native
needs_native = pytest.mark.skipif(native is None, reason="native module unavailable")


def test_the_public_namespace_is_exactly_all():
    assert dir(fast_litellm) == sorted(fast_litellm.__all__)
    for name in fast_litellm.__all__:
        assert getattr(fast_litellm, name) is not None
    public = {n for n in vars(fast_litellm) if not n.startswith("_")}
    # Submodules appear as attributes once imported (by the package or by a test); they are not
    # names the package exports.
    submodules = {
        name
        for name, value in vars(fast_litellm).items()
        if isinstance(value, types.ModuleType) and value.__name__ == f"fast_litellm.{name}"
    }
    assert public - submodules - set(fast_litellm.__all__) == set()
    for leaked in ("Any", "List", "TYPE_CHECKING", "annotations"):
        assert not hasattr(fast_litellm, leaked)


def test_feature_status_lists_only_features_that_exist():
    features = fast_litellm.get_feature_status()["features"]
    assert set(features) == {
        "token_counting",
        "rate_limiting",
        "connection_pool",
        "monitoring",
        "cache",
        "routing",
        "health",
        "budgets",
        "cost",
    }
    assert set(fast_litellm.health_check()["features"]) == set(features)
    assert set(health._FEATURE_MODULES) == set(_flags.FEATURES)


@needs_native
def test_encoding_names_agree_everywhere():
    assert tuple(native.ENCODING_NAMES) == ENCODING_NAMES
    assert set(fallback_tokens._SPECS) == set(ENCODING_NAMES)
    stub = (PACKAGE / "_native.pyi").read_text()
    literal = next(
        node
        for node in ast.walk(ast.parse(stub))
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_EncodingName"
    )
    assert tuple(ast.literal_eval(e) for e in literal.value.slice.elts) == ENCODING_NAMES  # type: ignore[attr-defined]


@needs_native
def test_monitoring_and_cache_facts_agree_between_rust_and_python():
    from fast_litellm._fallback import cache as fallback_cache
    from fast_litellm._fallback import monitoring as fallback_monitoring

    assert tuple(native.METRICS_BUILTIN_OPERATIONS) == fallback_monitoring.BUILTIN_OPERATIONS
    assert native.METRICS_WINDOW_SLOTS == fallback_monitoring.WINDOW_SLOTS
    assert native.METRICS_SLOT_SECONDS * 10**9 == fallback_monitoring.SLOT_NS
    assert tuple(native.CACHE_IGNORED_PARAMETERS) == fallback_cache.IGNORED_PARAMETERS
    assert native.CACHE_MAX_DEPTH == fallback_cache.MAX_DEPTH


@needs_native
def test_rate_limit_facts_agree_between_rust_and_python():
    assert native.RATE_LIMIT_MAX_KEY_LENGTH == fallback_ratelimit.MAX_KEY_LENGTH
    assert fast_litellm.ratelimit.MAX_KEY_LENGTH == fallback_ratelimit.MAX_KEY_LENGTH
    limiter = native.RedisRateLimiter("redis://127.0.0.1:1", 10**9, 1, None, None)
    assert limiter.key_prefix == redis_protocol.DEFAULT_KEY_PREFIX
    assert limiter.timeout == redis_protocol.DEFAULT_TIMEOUT
    assert native.REDIS_GCRA_SCRIPT == redis_protocol.script_text()
    for scheme in redis_protocol.SCHEMES:
        if "cluster" in scheme:
            url = f"{scheme}127.0.0.1:7000"
        elif scheme == "unix://":
            url = "unix:///tmp/redis.sock"
        else:
            url = f"{scheme}127.0.0.1:6379"
        native.RedisRateLimiter(url, 10**9, 1, None, None)  # accepted by both
        redis_protocol.parse_backend(url)


def test_no_module_takes_names_from_a_package_init_above_it():
    # `from . import tokens` (a sibling module) is fine; `from . import __version__` reaches up
    # into the package's own __init__, which re-exports everything: a cycle waiting to happen.
    for path in PACKAGE.rglob("*.py"):
        if path.name in ("__init__.py", "__main__.py"):  # the top: above every layer
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.level and not node.module):
                continue
            package = path.parent
            for _ in range(node.level - 1):
                package = package.parent
            for alias in node.names:
                # a .py module, a subpackage, or the compiled extension (_native.*.so)
                is_module = (package / alias.name).is_dir() or any(package.glob(f"{alias.name}.*"))
                assert is_module, (
                    f"{path.relative_to(PACKAGE)} takes {alias.name!r} from {package.name}/__init__"
                )


def test_the_binding_never_calls_into_the_fallback():
    src = PACKAGE.parent.parent / "src" / "py"
    if not src.is_dir():
        pytest.skip("not a source checkout")
    for path in src.glob("*.rs"):
        text = path.read_text()
        assert '"fast_litellm._fallback' not in text, f"{path.name} imports fast_litellm._fallback"


# ---- flags ------------------------------------------------------------------------------------


def test_a_fractional_rollout_is_refused_with_a_message():
    with pytest.raises(ValueError, match="whole percentage"):
        fast_litellm.configure("token_counting", rollout=0.5)
    result = run_python("import fast_litellm", env={"FAST_LITELLM_TOKEN_COUNTING_ROLLOUT": "0.5"})
    assert result.returncode != 0 and "whole percentage" in result.stderr
    result = run_python(
        "import fast_litellm; print(fast_litellm.get_feature_status()"
        "['features']['token_counting']['rollout_percent'])",
        env={"FAST_LITELLM_TOKEN_COUNTING_ROLLOUT": "25"},
    )
    assert result.returncode == 0 and result.stdout.strip() == "25"


def test_a_flag_for_an_unknown_feature_warns_once():
    result = run_python(
        "import warnings, fast_litellm\nfast_litellm.configure(reload_environment=True)\n",
        env={"FAST_LITELLM_RUST_ROUTNIG": "true", "FAST_LITELLM_CACHING_ROLLOUT": "5"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("FAST_LITELLM_RUST_ROUTNIG has no effect") == 1
    assert result.stderr.count("FAST_LITELLM_CACHING_ROLLOUT has no effect") == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _flags._warn_unknown_features({"FAST_LITELLM_RUST_TOKEN_COUNTING": "1"})


def test_a_missing_native_module_is_named_as_missing():
    result = run_python(
        "import sys; sys.modules['fast_litellm._native'] = None\n"
        "import fast_litellm; print(fast_litellm.get_feature_status()['native_import_error'])"
    )
    assert result.returncode == 0, result.stderr
    assert "circular import" not in result.stdout
    assert "not installed" in result.stdout or "_native" in result.stdout


@needs_native
def test_budget_facts_agree_between_rust_and_python():
    from fast_litellm._fallback import budget as fallback_budget
    from fast_litellm.budget import redis_protocol as budget_protocol

    assert native.BUDGET_MAX_NANODOLLARS == fallback_budget.MAX_NANODOLLARS
    assert native.REDIS_BUDGET_SCRIPT == budget_protocol.script_text()
    tracker = native.RedisBudget("redis://127.0.0.1:1", 1, None, None, None, key_prefix="p")
    for key in ("user-1", "a}b%c", "ключ"):
        assert tracker.redis_key(key) == budget_protocol.redis_key("p", key)
