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
# A request body with far more text than the size from which it is counted on the worker pool.
REQUEST = json.dumps(
    {"model": "gpt-4o", "messages": [{"role": "user", "content": t} for t in BATCH]}
)
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
    result["request"] = fast_litellm.count_request_tokens(REQUEST)
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
    elif kind == "request":
        fast_litellm.count_request_tokens(REQUEST)
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
    """Forks while other threads count batches and request bodies and load vocabularies,
    natively and through the package (whose locks they then hold)."""
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

    def count_requests() -> None:
        # Request bodies read by the native JSON reader, and CJK text split before its merges.
        while not stop.is_set():
            fast_litellm.count_request_tokens(REQUEST)
            fast_litellm.count_tokens(TEXT, encoding="o200k_base")

    def load_through_package() -> None:
        while not stop.is_set():
            for name in ENCODINGS:
                # A first load each time: the package's locks are held while it runs.
                tokens._native_encodings.pop(name, None)
                tokens._by_encoding.pop(name, None)
                tokens._native_encoding(name)

    threads = [
        threading.Thread(target=target, daemon=True)
        for target in (count_batches, count_requests, load_vocabularies, load_through_package)
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


# ---- stateful objects forked while other threads use them -------------------------------------
#
# A thread switched out half-way through an update would leave a forked child a state no sequence
# of whole calls makes (a success counted in the total but not in the minute, an entry stored but
# not its bytes). Each scenario checks, in the child, invariants that hold between whole calls,
# then uses the object; the parent's threads keep calling all along, and many forks are made.

BUSY_ROUNDS = 16
TOKENS_PER_CALL = 10
MODEL_LIST = [
    {
        "model_name": "gpt",
        "litellm_params": {"model": f"openai/gpt-{i}", "rpm": 10**9},
        "model_info": {"id": f"d{i}"},
    }
    for i in range(3)
]


def busy_forks(calls: Callable[[], None], work: Callable[[], Any], threads: int = 2) -> List[Any]:
    """Forks ``BUSY_ROUNDS`` children while ``threads`` threads repeat ``calls``; the children's
    answers. A thread's error fails the scenario."""
    stop, running = threading.Event(), threading.Barrier(threads + 1)
    errors: List[BaseException] = []

    def repeat() -> None:
        try:
            calls()
            running.wait()
            while not stop.is_set():
                calls()
        except BaseException as exc:  # reported by the scenario
            errors.append(exc)
            running.abort()

    started = [threading.Thread(target=repeat, daemon=True) for _ in range(threads)]
    for thread in started:
        thread.start()
    try:
        running.wait()
        answers = [fork_and_check(1, work)[0] for _ in range(BUSY_ROUNDS)]
    finally:
        stop.set()
        for thread in started:
            thread.join()
    assert not errors, errors
    return answers


def router_state(router: Any) -> Dict[str, int]:
    """Totals of a router whose calls each were pick, record_start, record_success; asserts that
    every call is either wholly in the state or not at all."""
    totals = {"successes": 0, "in_flight": 0}
    for deployment, status in router.status().items():
        # Each success counted in the minute window, the lifetime total and the minute's tokens.
        assert status["successes"] == status["total_successes"], (deployment, status)
        assert status["tokens_this_minute"] == TOKENS_PER_CALL * status["total_successes"], status
        # Each start is either finished (a success) or still in flight.
        assert status["requests_this_minute"] == status["total_successes"] + status["in_flight"], (
            deployment,
            status,
        )
        assert status["total_failures"] == 0 and status["state"] == "healthy", status
        totals["successes"] += status["total_successes"]
        totals["in_flight"] += status["in_flight"]
    return totals


def scenario_router_while_busy() -> None:
    """``Router``: threads pick and record while the parent forks; each child finds a state made
    of whole calls, and picks and records on it."""
    import fast_litellm
    from fast_litellm import _flags

    router = fast_litellm.Router(MODEL_LIST, strategy="least-busy", seed=7, clock=lambda: 1_000.0)
    expected_path = (
        "native"
        if _flags.native is not None and not os.environ.get("FAST_LITELLM_DISABLE_RUST")
        else "fallback"
    )
    assert router.implementation == expected_path, router.implementation

    def calls() -> None:
        deployment = router.pick("gpt", input_tokens=5)
        router.record_start(deployment)
        router.record_success(deployment, latency=0.25, tokens=TOKENS_PER_CALL)

    def work() -> Dict[str, Any]:
        before = router_state(router)
        for _ in range(5):
            calls()
        after = router_state(router)
        assert after == {
            "successes": before["successes"] + 5,
            "in_flight": before["in_flight"],
        }, (before, after)
        return {"implementation": router.implementation, "native_errors": native_errors()}

    answers = busy_forks(calls, work)
    assert all(a == {"implementation": expected_path, "native_errors": {}} for a in answers), (
        answers
    )
    router_state(router)  # the parent's own state is whole too


def native_errors() -> Dict[str, int]:
    from fast_litellm import _flags

    return {name: state.errors for name, state in _flags._states.items() if state.errors}


CACHE_ENTRY_SIZE = 7


def cache_state(cache: Any) -> int:
    """Entries of a cache whose every value is ``"value:" + key`` stored with ``size=7``;
    asserts that the counters, the LRU order and the values agree."""
    stats = cache.stats()
    keys = cache.keys()
    assert stats["entries"] == len(keys) == len(cache) <= stats["max_entries"], (stats, keys)
    assert stats["bytes"] == CACHE_ENTRY_SIZE * len(keys) <= stats["max_bytes"], (stats, keys)
    assert len(set(keys)) == len(keys), keys
    for key in keys:
        assert cache.get(key) == "value:" + key, key
    return len(keys)


def scenario_cache_while_busy() -> None:
    """``ResponseCache``: threads set (evicting by count and by bytes) and get while the parent
    forks; each child finds whole entries and counters, and uses the cache."""
    import itertools

    import fast_litellm

    cache = fast_litellm.ResponseCache(20, max_bytes=CACHE_ENTRY_SIZE * 15)
    counter = itertools.count()

    def calls() -> None:
        for _ in range(10):
            key = f"k{next(counter) % 40}"
            cache.set(key, "value:" + key, size=CACHE_ENTRY_SIZE)
            cache.get(f"k{next(counter) % 40}")

    def work() -> Dict[str, Any]:
        cache_state(cache)
        for i in range(30):
            cache.set(f"child{i}", f"value:child{i}", size=CACHE_ENTRY_SIZE)
        assert cache_state(cache) == 15
        assert cache.keys() == [f"child{i}" for i in range(15, 30)]
        return {"implementation": cache.implementation, "native_errors": native_errors()}

    answers = busy_forks(calls, work)
    expected = {"implementation": cache.implementation, "native_errors": {}}
    assert all(answer == expected for answer in answers), answers
    cache_state(cache)


def scenario_cost_while_busy() -> None:
    """Request cost: a thread adds a model's prices, then prices a response, again and again (each
    change of LiteLLM's cost map starts new price tables, so every response is a first one:
    LiteLLM prices it while our recording stands in for its ``cost_per_token``). A child gets
    whole tables and LiteLLM's own ``cost_per_token`` back, and prices as LiteLLM does."""
    import itertools

    import litellm
    from litellm import cost_calculator

    import fast_litellm

    own_calculator = cost_calculator.cost_per_token

    def response() -> Any:
        usage = litellm.Usage(prompt_tokens=1200, completion_tokens=300)
        return litellm.ModelResponse(model="gpt-4o", usage=usage)

    expected = litellm.completion_cost(completion_response=response(), model="gpt-4o")
    registered = itertools.count()

    def calls() -> None:
        # A new entry in LiteLLM's cost map, as its router writes a deployment's own prices.
        litellm.model_cost[f"fork-test-model-{next(registered)}"] = {
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6,
            "litellm_provider": "openai",
            "mode": "chat",
        }
        assert fast_litellm.completion_cost(response(), model="gpt-4o") == expected

    def work() -> Dict[str, Any]:
        assert cost_calculator.cost_per_token is own_calculator
        totals = [fast_litellm.completion_cost(response(), model="gpt-4o") for _ in range(3)]
        assert totals == [expected] * 3, totals
        return {"native_errors": native_errors()}

    answers = busy_forks(calls, work, threads=1)
    assert all(answer == {"native_errors": {}} for answer in answers), answers
    assert cost_calculator.cost_per_token is own_calculator


def scenario_budget_while_busy() -> None:
    """``BudgetTracker`` (in process): threads record into a daily and a monthly window while
    the parent forks; each child finds every record in both windows or in neither, and records."""
    import fast_litellm

    budgets = fast_litellm.BudgetTracker(
        daily=10**6, monthly=2 * 10**6, clock=fast_litellm.ManualClock(86_400 * 20_000)
    )

    def calls() -> None:
        for _ in range(20):
            budgets.record("team", 1e-6)

    def whole() -> int:
        windows = budgets.status("team").windows
        daily, monthly = windows["daily"], windows["monthly"]
        assert (daily.spent_nanodollars, daily.requests) == (
            monthly.spent_nanodollars,
            monthly.requests,
        ), windows
        assert daily.spent_nanodollars == 1_000 * daily.requests, windows
        return daily.requests

    def work() -> Dict[str, Any]:
        before = whole()
        calls()
        assert whole() == before + 20
        return {"implementation": budgets.implementation, "native_errors": native_errors()}

    answers = busy_forks(calls, work)
    expected = {"implementation": budgets.implementation, "native_errors": {}}
    assert all(answer == expected for answer in answers), answers
    whole()


SCENARIOS: Dict[str, Callable[[], None]] = {
    "while_busy": scenario_while_busy,
    "held_locks": scenario_held_locks,
    "multiprocessing": scenario_multiprocessing,
    "prefork": scenario_prefork,
    "patched_prefork": scenario_patched_prefork,
    "router_while_busy": scenario_router_while_busy,
    "cache_while_busy": scenario_cache_while_busy,
    "cost_while_busy": scenario_cost_while_busy,
    "budget_while_busy": scenario_budget_while_busy,
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
    "request",
    "ratelimit",
    "health_check",
    "everything",
]


def run_python(arguments: List[str], env: Dict[str, str], what: str) -> None:
    """Runs Python with ``arguments`` in a fresh interpreter (no FAST_LITELLM_ variable
    inherited), which must print "ok"; a run past SCRIPT_TIMEOUT fails as hung."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FAST_LITELLM_")}
    full_env.update(env)
    try:
        done = subprocess.run(
            [sys.executable, *arguments],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{what} hung: {exc.stderr!r}")
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def run_scenario(name: str, env: Dict[str, str]) -> None:
    run_python([__file__, name], env, f"scenario {name}")


# A thread imports a module on first use (as json on the request path) while another thread
# forks: the fork waits for the import, so the child does not wait for ever on that module's
# import lock, held in the parent by a thread the child does not have.
_IMPORT_WHILE_FORKING = """
import builtins, os, signal, sys, threading, time
from fast_litellm import _fork

sys.path.insert(0, sys.argv[1])
builtins.entered, builtins.release = threading.Event(), threading.Event()
importer = threading.Thread(target=lambda: _fork.import_module("slow_to_import"))
importer.start()
assert builtins.entered.wait(30)
children = []


def fork_and_import():
    pid = os.fork()
    if pid == 0:  # the child: this thread is its only one
        status = 1
        try:
            import slow_to_import  # the child's first use
            status = 0 if slow_to_import.done else 2
        finally:
            os._exit(status)
    children.append(pid)


forker = threading.Thread(target=fork_and_import)
forker.start()
forker.join(0.05)  # fork() waits for the import; without that it forks at once
builtins.release.set()
forker.join(30)
importer.join(30)
deadline = time.monotonic() + 30
while True:
    pid, status = os.waitpid(children[0], os.WNOHANG)
    if pid:
        break
    if time.monotonic() > deadline:
        os.kill(children[0], signal.SIGKILL)
        raise AssertionError("the child waits for ever on the import")
    time.sleep(0.01)
assert os.waitstatus_to_exitcode(status) == 0, status
print("ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_fork_waits_for_an_import_in_progress(tmp_path):
    (tmp_path / "slow_to_import.py").write_text(
        "import builtins\nbuiltins.entered.set()\nbuiltins.release.wait(30)\ndone = True\n"
    )
    run_python(["-c", _IMPORT_WHILE_FORKING, str(tmp_path)], {}, "the child of the import")


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
    if scenario in ("patched_prefork", "cost_while_busy"):
        pytest.importorskip("litellm")
        path_env = {**path_env, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    run_scenario(scenario, path_env)


if __name__ == "__main__":
    main(sys.argv[1])
