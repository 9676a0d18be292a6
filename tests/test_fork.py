"""Every feature works in a child made by ``fork()``, whatever the parent did or was doing.

A forked child has only the thread that forked: a worker pool the parent had started, or a lock
another thread held, would make the child wait for ever. Each scenario runs in a fresh
interpreter (this file run as a script), so "what the parent did before forking" is exactly the
scenario's; every child is bounded by a deadline and killed if it does not answer (a hang is a
failure, not a stuck suite), and the script itself runs under a timeout.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List

import pytest

CHILD_TIMEOUT = 60.0
SCRIPT_TIMEOUT = 300.0

TEXT = "Hello, world! Forked workers count too. 你好，世界。" * 20
# Over 100 KB in total: far above the size from which batches run on the native worker pool.
BATCH = [f"{i}: " + "The quick brown fox jumps over the lazy dog. " * 23 for i in range(100)]
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "How many tokens is this?"},
]
ENCODINGS = ["r50k_base", "p50k_base", "cl100k_base", "o200k_base", "o200k_harmony"]


# --- run in the scenario's interpreter -----------------------------------------------------------


def exercise() -> Dict[str, Any]:
    """Every feature once; the answers must be the same in a child as in the parent."""
    import fast_litellm
    from fast_litellm import _flags

    result: Dict[str, Any] = {
        name: fast_litellm.count_tokens(TEXT, encoding=name) for name in ENCODINGS
    }
    result["batch"] = fast_litellm.count_tokens_batch(BATCH)
    result["messages"] = fast_litellm.count_message_tokens(MESSAGES, model="gpt-4o")
    limiter = fast_litellm.SimpleRateLimiter(requests_per_minute=60, burst=3)
    result["limiter"] = [limiter.check("user").allowed for _ in range(4)]
    budgets = fast_litellm.BudgetTracker(daily=1.0)
    budgets.record("user", 0.4)
    result["budget"] = [budgets.check("user", 0.6).allowed, budgets.check("user", 0.7).allowed]
    result["health"] = fast_litellm.health_check()["status"]
    # Nothing may have quietly fallen back: a native fault would still give the right numbers.
    result["native_errors"] = {
        name: state.errors for name, state in _flags._states.items() if state.errors
    }
    return result


def use(kind: str) -> None:
    """What the parent does before it forks."""
    import fast_litellm

    if kind == "count":
        fast_litellm.count_tokens(TEXT)
    elif kind == "batch":
        fast_litellm.count_tokens_batch(BATCH)
    elif kind.startswith("load:"):
        fast_litellm.count_tokens(TEXT, encoding=kind[5:])
    elif kind == "messages":
        fast_litellm.count_message_tokens(MESSAGES, model="gpt-4o")
    elif kind == "ratelimit":
        fast_litellm.SimpleRateLimiter(requests_per_minute=60).check("user")
    elif kind == "health_check":
        fast_litellm.health_check()
    elif kind == "everything":
        exercise()
    elif kind != "nothing":
        raise ValueError(kind)


def start_child(work: Callable[[], Any]) -> "Child":
    """Forks a child that runs ``work`` and sends back its result as JSON."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_fd)
            payload = json.dumps(work()).encode()
            os.write(write_fd, payload)
            status = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(status)
    os.close(write_fd)
    return Child(pid, read_fd)


class Child:
    def __init__(self, pid: int, read_fd: int) -> None:
        self.pid = pid
        self.read_fd = read_fd

    def result(self, deadline: float) -> Any:
        """The child's answer; a child that does not finish by ``deadline`` is killed."""
        chunks: List[bytes] = []
        try:
            while True:
                remaining = deadline - time.monotonic()
                ready, _, _ = select.select([self.read_fd], [], [], max(remaining, 0))
                if not ready:
                    os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                    raise AssertionError(f"child {self.pid} hung (killed after the deadline)")
                chunk = os.read(self.read_fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(self.read_fd)
        _, status = os.waitpid(self.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise AssertionError(f"child {self.pid} failed with status {status}")
        return json.loads(b"".join(chunks))


def fork_and_check(children: int, work: Callable[[], Any] = exercise) -> List[Any]:
    started = [start_child(work) for _ in range(children)]
    deadline = time.monotonic() + CHILD_TIMEOUT
    return [child.result(deadline) for child in started]


def scenario_after_use(kind: str, rounds: int = 3) -> None:
    use(kind)
    answers = [fork_and_check(1)[0] for _ in range(rounds)]
    expected = exercise()
    assert expected["native_errors"] == {}, expected
    for answer in answers:
        assert answer == expected, (answer, expected)


def scenario_while_busy(rounds: int = 12) -> None:
    """Forks while other threads count batches and load vocabularies, natively and through the
    package (whose locks they then hold)."""
    import fast_litellm
    from fast_litellm import _flags, tokens
    from fast_litellm._vocab import vocabulary_path

    stop = threading.Event()

    def count_batches() -> None:
        while not stop.is_set():
            fast_litellm.count_tokens_batch(BATCH, encoding="o200k_base")

    def load_vocabularies() -> None:
        while not stop.is_set():
            for name in ENCODINGS:
                # The tables built with the library, then a parse of the file.
                _flags.native.Encoding.load(name)
                _flags.native.Encoding.load(name, vocabulary_path(name))

    def load_through_package() -> None:
        while not stop.is_set():
            for name in ENCODINGS:
                # A first load each time: the package's locks are held while it runs.
                tokens._native_encodings.pop(name, None)
                tokens._by_encoding.pop(name, None)
                tokens._native_encoding(name)

    threads = [
        threading.Thread(target=target, daemon=True)
        for target in (count_batches, load_vocabularies, load_through_package)
    ]
    for thread in threads:
        thread.start()
    try:
        answers = [fork_and_check(1)[0] for _ in range(rounds)]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    expected = exercise()
    assert all(answer == expected for answer in answers), (answers, expected)


def scenario_held_locks() -> None:
    """Each lock of the package, held by another thread at the moment of the fork, is free in
    the child."""
    from fast_litellm import _flags, tokens
    from fast_litellm._fallback import tokens as fallback_tokens

    locks = {
        "tokens._native_lock": tokens._native_lock,
        "tokens._resolve_lock": tokens._resolve_lock,
        "tokens._Tokenizer._lock": tokens._DEFAULT._lock,
        "_fallback.tokens._lock": fallback_tokens._lock,
        "FeatureState._lock": _flags.feature("TOKEN_COUNTING")._lock,
    }
    for name, lock in locks.items():
        held, release = threading.Event(), threading.Event()

        def hold(lock: Any, held: threading.Event, release: threading.Event) -> None:
            with lock:
                held.set()
                release.wait()

        holder = threading.Thread(target=hold, args=(lock, held, release))
        holder.start()
        held.wait()
        try:

            def take_then_count(lock: Any = lock) -> Dict[str, Any]:
                with lock:
                    pass
                return exercise()

            answer = fork_and_check(1, take_then_count)[0]
        finally:
            release.set()
            holder.join()
        assert answer["native_errors"] == {}, (name, answer)


def pool_work(index: int) -> List[int]:
    import fast_litellm

    return fast_litellm.count_tokens_batch(BATCH[index:] + BATCH[:index])


def scenario_multiprocessing() -> None:
    import multiprocessing

    import fast_litellm

    expected = fast_litellm.count_tokens_batch(BATCH)
    fast_litellm.health_check()
    context = multiprocessing.get_context("fork")
    with context.Pool(4) as pool:
        answers = pool.map_async(pool_work, range(8)).get(timeout=CHILD_TIMEOUT)
    for index, answer in enumerate(answers):
        assert answer == expected[index:] + expected[:index]


def scenario_prefork(children: int = 16) -> None:
    """A pre-forking server: the master warms up, then forks many workers at once."""
    use("everything")
    answers = fork_and_check(children)
    expected = exercise()
    assert all(answer == expected for answer in answers), (answers, expected)


def patched_work() -> Dict[str, Any]:
    """``exercise()`` plus litellm's own ``token_counter``, which ``patch()`` routes to us."""
    import litellm

    import fast_litellm

    result = exercise()
    result["litellm"] = litellm.token_counter(model="gpt-4o", messages=MESSAGES)
    result["patched"] = fast_litellm.patch_status()["patched"]
    return result


def scenario_patched_prefork(children: int = 8) -> None:
    """``patch()`` in the master, then pre-forked workers that count through litellm, count
    directly and limit."""
    import litellm  # noqa: F401

    import fast_litellm

    fast_litellm.patch()
    expected = patched_work()
    assert expected["patched"] and expected["litellm"] == expected["messages"], expected
    answers = fork_and_check(children, patched_work)
    assert all(answer == expected for answer in answers), (answers, expected)


SCENARIOS: Dict[str, Callable[[], None]] = {
    "while_busy": scenario_while_busy,
    "held_locks": scenario_held_locks,
    "multiprocessing": scenario_multiprocessing,
    "prefork": scenario_prefork,
    "patched_prefork": scenario_patched_prefork,
}


def main(name: str) -> None:
    if name.startswith("after:"):
        scenario_after_use(name[len("after:") :])
    else:
        SCENARIOS[name]()
    print("ok")


# --- the tests -----------------------------------------------------------------------------------

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")

PARENT_USES = [
    "nothing",
    "count",
    "batch",
    *(f"load:{name}" for name in ENCODINGS),
    "messages",
    "ratelimit",
    "health_check",
    "everything",
]


def run_scenario(name: str, env: Dict[str, str]) -> None:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FAST_LITELLM_")}
    full_env.update(env)
    try:
        done = subprocess.run(
            [sys.executable, __file__, name],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"scenario {name} hung: {exc.stderr!r}")
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.fixture(params=["native", "fallback"])
def path_env(request) -> Dict[str, str]:
    if request.param == "native":
        from fast_litellm import _flags

        if _flags.native is None:
            pytest.skip(f"native module unavailable: {_flags.native_import_error}")
        return {}
    pytest.importorskip("tiktoken")
    return {"FAST_LITELLM_DISABLE_RUST": "1"}


@pytest.mark.parametrize("parent_use", PARENT_USES)
def test_child_works_after_parent_used(parent_use, path_env):
    run_scenario(f"after:{parent_use}", path_env)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_fork_scenario(scenario, path_env):
    if scenario == "while_busy" and path_env:
        pytest.skip("drives the native loader directly")
    if scenario == "patched_prefork":
        pytest.importorskip("litellm")
        path_env = {**path_env, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    run_scenario(scenario, path_env)


if __name__ == "__main__":
    main(sys.argv[1])
