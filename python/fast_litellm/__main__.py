"""``python -m fast_litellm``: a status report, then a short side-by-side benchmark.

Options: ``--status`` (report only), ``--iterations N`` (timed batches per measurement).
The full benchmark suite is ``python scripts/run_benchmarks.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from typing import List, Optional

# The comparison imports litellm: keep it on its bundled model map and offline.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from . import __version__, get_feature_status, health_check  # noqa: E402


def _status_report() -> None:
    health = health_check()
    print(
        f"fast_litellm {__version__} on Python {platform.python_version()} ({platform.machine()})"
    )
    print(f"status: {health['status']}")
    native = health["native"]
    if native["available"]:
        print(f"native module: loaded (version {native.get('version')})")
    else:
        print(f"native module: NOT loaded, every feature runs on the fallback ({native['error']})")
    print("features:")
    status = get_feature_status()["features"]
    for name, check in health["features"].items():
        flags = status[name]
        detail = f" ({check['reason']})" if "reason" in check else ""
        print(f"  {name:<16} {check['status']:<9} path={flags['active_path']}{detail}")
    others = [n for n in status if n not in health["features"]]
    if others:
        print(f"  not built yet: {', '.join(others)}")


def _short_benchmark(iterations: int) -> None:
    from . import _bench

    print()
    print(f"short benchmark (median per call, {iterations} timed batches each)")
    cases = ["13 B English", "1 KB English", "4 KB code", "4 KB CJK", "100 KB English"]
    results = _bench.run_token_cases(iterations, cases=cases, progress=print)
    try:
        results += _bench.run_message_cases(iterations)
    except Exception as exc:  # litellm missing or broken: say so, keep the report
        print(f"count_message_tokens: skipped ({type(exc).__name__}: {exc})")
    else:
        for result in results[-4:]:
            print(_bench.format_row(result))
    from . import _bench_ratelimit

    # The hot key, and 10,000 new keys (the full suite uses a million).
    limits = _bench_ratelimit.run_cases(iterations, quick=True)
    for result in limits:
        print(_bench.format_row(result))
    print()
    print("speed-up of native over the reference:")
    for result in results + limits:
        for reference in ("tiktoken", "litellm", "limits", "dict bucket"):
            ratio = result.ratio("native", reference)
            if ratio is not None:
                print(f"  {result.case:<30} {result.encoding:<13} {ratio:6.1f}x vs {reference}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fast_litellm", description=__doc__)
    parser.add_argument("--status", action="store_true", help="print the status report only")
    parser.add_argument("--json", action="store_true", help="print health_check() as JSON only")
    parser.add_argument("--iterations", type=int, default=15, help="timed batches per measurement")
    args = parser.parse_args(argv)
    if args.json:
        print(json.dumps(health_check(), indent=2))
        return 0
    _status_report()
    if not args.status:
        _short_benchmark(args.iterations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
