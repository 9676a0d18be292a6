"""Request cost: ``fast_litellm.completion_cost`` / ``cost_per_token`` (native table, fallback
table) against LiteLLM's own ``completion_cost`` / ``cost_per_token``, per call, on the same
arguments (every answer checked equal before timing).

    python -m benches.cost_cases [--iterations 200]
"""

from __future__ import annotations

import argparse
import functools
import os
from typing import Any, Callable, Dict, List, Tuple

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from .token_cases import Result, format_row, median_seconds, missing, native_missing  # noqa: E402

__all__ = ["CASES", "available", "calls", "needs_patch", "run_cases"]


def available() -> bool:
    return missing("litellm", "litellm") is None


def _response(litellm: Any, model: str, cached: bool) -> Any:
    details = {"cached_tokens": 1_024} if cached else None
    return litellm.ModelResponse(
        model=model,
        usage=litellm.Usage(
            prompt_tokens=2_000,
            completion_tokens=300,
            total_tokens=2_300,
            prompt_tokens_details=details,
            completion_tokens_details={"reasoning_tokens": 120} if cached else None,
        ),
    )


# (case, model, what): what is "completion_cost" (a response), "cost_per_token" (counts) or
# "request" (the cost step LiteLLM runs for every request, LiteLLM patched on our path vs not).
CASES: Tuple[Tuple[str, str, str], ...] = (
    ("completion_cost, chat response", "gpt-4o-mini", "completion_cost"),
    ("completion_cost, cached + reasoning", "gpt-4o", "completion_cost cached"),
    ("completion_cost, Anthropic", "claude-sonnet-4-5", "completion_cost"),
    ("cost_per_token, 20 + 5 tokens", "gpt-4o-mini", "cost_per_token"),
    ("LiteLLM's cost step per request, patch()", "gpt-4o-mini", "request"),
)


def needs_patch(case: str) -> bool:
    """Whether the case's "ours" is LiteLLM's own call with ``patch(features=["cost"])`` on."""
    return next(c for c in CASES if c[0] == case)[2] == "request"


def calls(case: str) -> Dict[str, Callable[[], Any]]:
    """Contender -> a call that prices ``case`` (the contender's path is set by the caller)."""
    import litellm

    import fast_litellm

    _name, model, what = next(c for c in CASES if c[0] == case)
    if what == "request":
        # What LiteLLM's logging calls once per request (litellm_logging.py); it reaches
        # completion_cost by its module-level name, which patch() replaces.
        from litellm import cost_calculator

        response = _response(litellm, model, cached=False)

        def step() -> float:
            return cost_calculator.response_cost_calculator(
                response, model, "openai", "acompletion", {}
            )

        return {"ours": step, "litellm": step}
    if what.startswith("completion_cost"):
        response = _response(litellm, model, cached=what.endswith("cached"))
        return {
            "ours": functools.partial(fast_litellm.completion_cost, response, model=model),
            "litellm": functools.partial(
                litellm.completion_cost, completion_response=response, model=model
            ),
        }
    return {
        "ours": functools.partial(fast_litellm.cost_per_token, model, 20, 5),
        "litellm": functools.partial(
            litellm.cost_per_token, model=model, prompt_tokens=20, completion_tokens=5
        ),
    }


def run_cases(iterations: int) -> List[Result]:
    import fast_litellm
    from fast_litellm import _flags

    paths = []
    skipped: Dict[str, str] = {}
    reason = native_missing()
    if reason is None:
        paths.append(("native", True))
    else:
        skipped["native"] = reason
    paths.append(("fallback", False))
    results = []
    saved = _flags.feature("COST").enabled
    was_patched = fast_litellm.patch_status()["features"]["cost"]["patched"]
    try:
        for case, model, _what in CASES:
            result = Result("request cost", case, model, skipped=dict(skipped))
            contenders = calls(case)
            fast_litellm.unpatch()
            want = contenders["litellm"]()
            if needs_patch(case):
                fast_litellm.patch(features=["cost"])
            for name, enabled in paths:
                _flags.configure("cost", rust=enabled)
                contenders["ours"]()  # resolves the model (the first response is LiteLLM's)
                if contenders["ours"]() != want:
                    raise RuntimeError(f"{case}: {name} answered differently from litellm")
                result.seconds[name] = median_seconds(contenders["ours"], iterations)
            fast_litellm.unpatch()
            result.seconds["litellm"] = median_seconds(contenders["litellm"], iterations)
            results.append(result)
    finally:
        _flags.configure("cost", rust=saved)
        if was_patched:
            fast_litellm.patch(features=["cost"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    for result in run_cases(args.iterations):
        print(format_row(result))


if __name__ == "__main__":
    main()
