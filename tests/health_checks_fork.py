"""Forks children while a router's background health checks run (run as a script by
tests/test_health_checks.py, in a fresh interpreter: ``python health_checks_fork.py URL ENGINE``).

Each child must not hang, must not run the parent's checks (they report ``stopped_by_fork``, and
``health_check()`` reports them degraded), must pick and report as usual, and must be able to
start checks of its own. A child that does not finish by its deadline is killed and counted as a
failure. Prints ``N children ok`` and exits 0 when every child passed.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from typing import Any, Dict, List

CHILDREN = 12
CHILD_DEADLINE = 60.0

warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork.*")


def wait_until(condition: Any, deadline: float) -> bool:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.001)
    return True


def in_child(router: Any, urls: Dict[str, str], full_report: bool) -> List[str]:
    import fast_litellm
    from fast_litellm import routing

    problems = []
    status = router.health_checks_status()
    if status["running"] or not status["stopped_by_fork"]:
        problems.append(f"inherited checks: {status}")
    if router.pick("m")["model_name"] != "m":
        problems.append("no pick")
    router.status()
    # The whole report exercises every feature (slow): once; the routing part in every child.
    report = fast_litellm.health_check() if full_report else routing.health_sections()
    section = report.get("health_checks", [])
    if [entry["status"] for entry in section] != ["degraded"]:
        problems.append(f"health_check() did not report the stopped checks: {section}")
    router.stop_health_checks()
    router.start_health_checks(urls, interval=0.001, timeout=10)
    started = router.health_checks_status()
    if not started["running"] or started["stopped_by_fork"]:
        problems.append(f"restarted checks not running: {started}")
    if not wait_until(lambda: router.health_checks_status()["rounds"] >= 2, 30):
        problems.append("the child's own checks ran no round")
    router.stop_health_checks()
    return problems


def main() -> int:
    import fast_litellm

    url, engine = sys.argv[1], sys.argv[2]
    model_list = [
        {
            "model_name": "m",
            "litellm_params": {"model": f"openai/d{i}"},
            "model_info": {"id": f"d{i}"},
        }
        for i in range(4)
    ]
    router = fast_litellm.Router(model_list, seed=0)
    urls = {f"d{i}": f"{url}/echo" for i in range(4)}
    router.start_health_checks(urls, interval=0.0001, timeout=10)
    if router.health_checks_status()["engine"] != engine:
        print(f"expected engine {engine}: {router.health_checks_status()}")
        return 1
    if not wait_until(lambda: router.health_checks_status()["rounds"] >= 1, 30):
        print("no round in the parent")
        return 1
    failures = 0
    for number in range(CHILDREN):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                problems = in_child(router, urls, number == 0)
                for problem in problems:
                    print(f"child {number}: {problem}", flush=True)
                code = 1 if problems else 0
            finally:
                os._exit(code)
        end = time.monotonic() + CHILD_DEADLINE
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                if os.waitstatus_to_exitcode(status) != 0:
                    failures += 1
                break
            if time.monotonic() > end:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                print(f"child {number} hung", flush=True)
                failures += 1
                break
            time.sleep(0.001)
    running = router.health_checks_status()["running"]
    router.stop_health_checks()
    if not running:
        print("the parent's checks stopped")
        return 1
    if failures:
        print(f"{failures} of {CHILDREN} children failed")
        return 1
    print(f"{CHILDREN} children ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
