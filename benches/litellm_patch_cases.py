"""``litellm.token_counter(model=..., messages=...)`` with and without ``fast_litellm.patch()``.

    python -m benches.litellm_patch_cases --iterations 200

``run_litellm_patch_cases(iterations)`` returns one ``Result`` per case, contenders
``"unpatched"`` and ``"patched"`` (median seconds per call, measured in the same run); both
answers are checked equal before anything is timed.
"""

from __future__ import annotations

import argparse
import functools
import os
from typing import Any, Dict, List, Tuple

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fast_litellm  # noqa: E402

from .token_cases import Result, chat, format_row, median_seconds  # noqa: E402

MODEL = "gpt-4o"


def available() -> bool:
    """Whether litellm is installed (the only thing these cases need besides us)."""
    import importlib.util

    return importlib.util.find_spec("litellm") is not None


def cases() -> Dict[str, List[Dict[str, Any]]]:
    return {"3-message chat": chat(), "50 KB chat": chat(50_000)}


def contenders(messages: List[Dict[str, Any]]) -> Dict[str, Tuple[bool, Any]]:
    """name -> (patched?, the call): the call is made through ``litellm.token_counter`` as a
    user makes it, so the patched one goes through the replacement installed there."""
    import litellm

    def call() -> int:
        return int(litellm.token_counter(model=MODEL, messages=messages))

    return {"unpatched": (False, call), "patched": (True, call)}


def set_patched(patched: bool) -> None:
    if patched:
        fast_litellm.patch()
    else:
        fast_litellm.unpatch()


def run_litellm_patch_cases(iterations: int) -> List[Result]:
    """Every case, unpatched then patched; the patch state is restored afterwards."""
    was_patched = fast_litellm.patch_status()["patched"]
    results = []
    try:
        for label, messages in cases().items():
            result = Result("litellm.token_counter", f"{label}, {MODEL}", MODEL)
            answers = {}
            for name, (patched, call) in contenders(messages).items():
                set_patched(patched)
                answers[name] = call()
                result.seconds[name] = median_seconds(functools.partial(call), iterations)
            if len(set(answers.values())) != 1:
                raise AssertionError(f"{label}: patched and unpatched disagree: {answers}")
            results.append(result)
    finally:
        set_patched(was_patched)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    for result in run_litellm_patch_cases(args.iterations):
        ratio = result.ratio("patched", "unpatched")
        print(format_row(result) + (f"  ({ratio:.1f}x)" if ratio else ""))


if __name__ == "__main__":
    main()
