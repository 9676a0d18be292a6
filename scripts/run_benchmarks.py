#!/usr/bin/env python
"""Run every benchmark, print the table and rewrite BENCHMARKS.md.

    python scripts/run_benchmarks.py --iterations 200       # the published numbers
    python scripts/run_benchmarks.py --quick --no-write      # a smoke run (CI)

Each figure is the median time per call over ``--iterations`` timed batches, all contenders
measured in the same run on the same machine; ratios compare contenders within that run. The
LiteLLM end-to-end rows are medians over 3 rounds of 2,000 requests (one of 200 with
``--quick``), each state in a fresh process. The cases
are in ``benches/``. A contender whose package is not installed is skipped and the reason printed;
any other error fails the run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The benchmark cases live in the repository (benches/), not in the installed package.
sys.path.insert(0, ROOT)

import fast_litellm  # noqa: E402
from benches import (  # noqa: E402
    budget_cases,
    cache_cases,
    cost_cases,
    health_check_cases,
    litellm_e2e_cases,
    litellm_patch_cases,
    proxy_hook_cases,
    ratelimit_cases,
    redis_cases,
    routing_cases,
    token_cases,
)
from benches.token_cases import Result, format_seconds  # noqa: E402

_INTERLEAVED = (
    "The contenders' timed batches are interleaved (one batch of each in turn, the first one "
    "rotating), so a slow spell of this shared machine falls on all of them alike."
)
# What a section's table needs said before it, by section title.
_SECTION_NOTES = {
    "count_tokens": (
        "The native path keeps a small per-thread cache of merged pieces (`src/tokens/cache.rs`), "
        "so text it has counted before, as a case that counts the same text on every call does, "
        "hits the cache for its longer pieces. The *never-seen text* rows count a different "
        "text on each call, cycling through hundreds of kilobytes of it: what text arriving for "
        "the first time costs. `litellm native` is the Rust tokenizer litellm 1.110 ships (off by "
        "default in litellm), built with `Tokenizer.from_tiktoken` and counting in its "
        "count-only `fast=True` mode. " + _INTERLEAVED
    ),
    "count_tokens_batch": (
        "`native` is `count_tokens_batch` (spread over all cores); `single-thread loop` is "
        "`[count_tokens(t) for t in texts]`; `tiktoken loop` is "
        "`[len(enc.encode_ordinary(t)) for t in texts]`, what a user would write; "
        "`tiktoken batch` is tiktoken's `encode_ordinary_batch` (a thread pool, slower per text "
        "than the plain loop on this machine)."
    ),
    "count_tokens (Hugging Face)": (
        "Claude and DeepSeek models, which LiteLLM counts with the Hugging Face tokenizers it "
        "ships: `native` is `count_tokens(text, model=...)`; `litellm` is "
        "`litellm.token_counter(model=..., text=...)` on its default (Python) path; `tokenizers` "
        "is Python `tokenizers` on the same file, as LiteLLM calls it; `litellm native` is the "
        "Rust tokenizer LiteLLM ships (off by default), its `count` called directly. "
        + _INTERLEAVED
    ),
    "count_request_tokens": (
        "A 50 KB chat-completions body (bytes, with one tool): `native` is "
        "`count_request_tokens(body)`; the other column is `json.loads(body)` then "
        "`count_message_tokens` on the native path. " + _INTERLEAVED
    ),
    "LiteLLM proxy rate-limit hook": (
        "One `async_pre_call_hook` call per request, in process, on a key with rpm/tpm limits "
        "of its own, of its team and of its model: `native` is "
        "`fast_litellm.proxy_hooks.FastRateLimiter`, `v3` is LiteLLM's "
        "`parallel_request_limiter_v3` (see `benches/proxy_hook_cases.py`)."
    ),
    "response cache": (
        "`native` / `fallback` are `fast_litellm.ResponseCache` (1,000 entries of a chat-response "
        "dict, 600 s time to live) on each path; `litellm` is LiteLLM's `InMemoryCache` with the "
        "same bound (`get_cache` / `set_cache`), and for keys `litellm.Cache().get_cache_key(**request)` "
        "(see `benches/cache_cases.py`)."
    ),
    "monitoring overhead": (
        "The two hottest native calls with monitoring's native self-timing off, as shipped "
        "(every call counted, one in 32 timed), and with every call timed "
        "(`fast_litellm.monitoring.set_latency_sampling(1)`)."
    ),
    "budgets": (
        "`BudgetTracker.record(key, cost)` / `.check(key, estimated_cost)` on one key with a "
        "daily and a monthly budget. In process, `dict` is a float total per key behind a lock "
        "(what a user would write, no periods) and `litellm` is `litellm.BudgetManager` "
        "(`update_cost(completion_obj=...)`, which prices the response and saves to a file from "
        "a thread; `get_current_cost + estimate <= get_total_budget` to check). On Redis, one "
        "synchronous call at a time; `redis-py INCRBYFLOAT` is a hand-written float total "
        "(see `benches/budget_cases.py`)."
    ),
    "Router.pick (deployment routing)": (
        "`native`/`fallback` are `fast_litellm.Router(model_list, strategy=...).pick(model)` "
        "(the very dict of the model list); `litellm` is `litellm.Router(model_list, "
        "routing_strategy=...).async_get_available_deployment(...)` on the same model list, "
        "in-memory state (see `benches/routing_cases.py`). The last row is the bookkeeping of "
        "one request (`record_start` + `record_success`)."
    ),
    "background health checks": (
        "CPU time of this process per round of `HealthTracker.start_health_checks` over 100 "
        "deployments (`resource.getrusage`, user + system, over 30 back-to-back rounds against "
        "the mock server's `/health` in a process of its own): `native` is a task of the native "
        "runtime, `Python thread` the fallback's thread with `fast_litellm.http.Client` on its "
        "native engine, `Python thread + httpx` the same with every native path off (see "
        "`benches/health_check_cases.py`)."
    ),
    "Router.pick with patch()": (
        "What a `litellm.Router` user gains with no code change: "
        "`Router(routing_strategy=...).async_get_available_deployment(...)` with latency- and "
        "cost-based routing, "
        '`unpatched` and after `fast_litellm.patch(features=["routing"])`, the router cache '
        "holding ten latencies per deployment; both pick the same deployments from the same "
        "`random` seeds, checked before timing (see `benches/routing_cases.py`)."
    ),
    "request cost": (
        "`fast_litellm.completion_cost(response, model=...)` and `cost_per_token(model, 20, 5)` "
        "against LiteLLM's `completion_cost(completion_response=response, model=...)` and "
        "`cost_per_token(...)`, the same arguments, answers checked equal (`==`) before timing. "
        "The last row is the step LiteLLM runs for every request it logs "
        "(`cost_calculator.response_cost_calculator`), with `patch()` on each path against "
        "LiteLLM unpatched (see `benches/cost_cases.py`)."
    ),
    "litellm.token_counter with patch()": (
        "What a LiteLLM user gains with no code change: `litellm.token_counter(model=..., "
        "messages=...)` as called by the user, `unpatched` and after `fast_litellm.patch()` "
        "(both answers checked equal before timing)."
    ),
}
# The ratio columns: native against each of these that a section measured.
_REFERENCES = (
    "tiktoken",
    "tiktoken loop",
    "tiktoken batch",
    "litellm",
    "unpatched",
    "v3",
    "tokenizers",
    "litellm native",
    "json.loads + count_message_tokens",
    "Python thread",
)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"Python {platform.python_version()}", f"fast-litellm {fast_litellm.__version__}"]
    for name in ("tiktoken", "litellm"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} not installed")
    return ", ".join(parts)


def _subprocess_seconds(code: str, runs: int) -> float:
    """Median wall time of ``python -c code`` minus that of an empty interpreter."""

    def run(snippet: str) -> float:
        timer = (
            "import time, subprocess, sys; t = time.perf_counter(); "
            f"subprocess.run([sys.executable, '-c', {snippet!r}], check=True); "
            "print(time.perf_counter() - t)"
        )
        out = subprocess.run([sys.executable, "-c", timer], capture_output=True, text=True)
        out.check_returncode()
        return float(out.stdout.strip())

    baseline = statistics.median(run("pass") for _ in range(runs))
    return max(0.0, statistics.median(run(code) for _ in range(runs)) - baseline)


def _in_process_seconds(setup: str, timed: str, runs: int) -> float:
    """Median time of ``timed`` run once right after ``setup`` in a fresh interpreter, timed
    inside it: for steps much shorter than an interpreter's start, whose jitter a difference of
    two process times would not resolve."""
    code = f"{setup}\nimport time\nt = time.perf_counter()\n{timed}\nprint(time.perf_counter() - t)"

    def run() -> float:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        out.check_returncode()
        return float(out.stdout.strip().splitlines()[-1])

    return statistics.median(run() for _ in range(runs))


# Resident memory, read from /proc: VmRSS is what `ps` and a container's limit see (file-backed
# pages of the shared library included); RssAnon is the private part no other process shares.
_RSS_PROBE = """
def _rss():
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return int(fields["VmRSS"].split()[0]), int(fields["RssAnon"].split()[0])
"""


def _rss_growth_kib(setup: str, load: str, runs: int) -> Tuple[float, float]:
    """Median growth of (VmRSS, RssAnon), in KiB, of running ``load`` right after ``setup`` in
    a fresh interpreter."""
    code = f"{setup}\n{_RSS_PROBE}\nbefore = _rss()\n{load}\nafter = _rss()\n"
    code += "print(after[0] - before[0], after[1] - before[1])"

    def run() -> Tuple[int, int]:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        out.check_returncode()
        rss, anon = out.stdout.split()
        return int(rss), int(anon)

    samples = [run() for _ in range(runs)]
    return (
        statistics.median(rss for rss, _ in samples),
        statistics.median(anon for _, anon in samples),
    )


def memory_lines(runs: int) -> List[str]:
    """What loading an encoding and counting once adds to a process's resident memory, for the
    native path, Python tiktoken (the same vocabulary, as the fallback builds it) and the
    tokenizer litellm ships, as a markdown section."""
    if not os.path.exists("/proc/self/status"):
        print("memory of a loaded encoding: skipped (no /proc on this system)")
        return []
    # The text is built before the first reading of memory, so only the tokenizer's pages count.
    # It is hundreds of kilobytes that never repeat (English, CJK, code), so that counting it
    # touches the tables as real traffic does.
    text = (
        f"import sys; sys.path.insert(0, {ROOT!r}); from benches import token_cases as t; "
        "texts = t.fresh_english_texts() + t.fresh_cjk_texts() + t.fresh_code_texts()"
    )
    # One text at a time (1-4 KB each): tiktoken's token lists are freed as it goes, so its
    # figure is its tables, not a list of a million integers.
    loads: Dict[str, Tuple[str, str, Optional[str]]] = {
        "native": (
            f"import fast_litellm; {text}",
            "for x in texts: fast_litellm.count_tokens(x, encoding={e!r})",
            token_cases.native_missing(),
        ),
        "tiktoken": (
            f"from fast_litellm._fallback.tokens import get_encoding; {text}",
            "e = get_encoding({e!r})\nfor x in texts: e.encode(x, disallowed_special=())",
            token_cases.missing("tiktoken", "tiktoken"),
        ),
        "litellm native": (
            f"from litellm.rust_bridge._native import Tokenizer; {text}",
            "e = Tokenizer.from_tiktoken({e!r})\nfor x in texts: e.count(x, fast=True)",
            token_cases.litellm_native_tokenizer()[1] or None,
        ),
    }
    contenders = [name for name, (_, _, missing) in loads.items() if missing is None]
    lines = [
        "## memory of a loaded encoding",
        "",
        "Resident memory a process gains by loading one encoding and counting a million "
        "characters of never-repeating English, CJK and code (texts of 1-4 KB) once, after importing the package (median of "
        "fresh processes). `RSS` is what `ps` and a "
        "container's memory limit see; `private` is the anonymous part, which no other process "
        "shares (the native vocabulary is read-only data in the shared library, so forked "
        "workers and other processes share its pages).",
        "",
        "| encoding | " + " | ".join(f"{c} RSS | {c} private" for c in contenders) + " |",
        "|---|" + "---|---|" * len(contenders),
    ]
    for encoding in STARTUP_ENCODINGS:
        row = [encoding]
        for name in contenders:
            before, load, _ = loads[name]
            rss, anon = _rss_growth_kib(before, load.format(e=encoding), runs)
            row += [f"{rss / 1024:.1f} MiB", f"{anon / 1024:.1f} MiB"]
        print("memory of a loaded encoding  " + "  ".join(row))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines += [f"Not measured: {name}: {why}." for name, (_, _, why) in loads.items() if why]
    return lines + ([""] if lines[-1] else [])


def _compile_package() -> None:
    """Writes the package's bytecode, as ``pip install`` does: an editable install (or
    ``PYTHONDONTWRITEBYTECODE``) would otherwise have every timed import compile the package's
    sources, which no installed user pays, while the packages compared with it load compiled."""
    import compileall

    compileall.compile_dir(os.path.dirname(fast_litellm.__file__), quiet=1)


def startup_results(runs: int) -> List[Result]:
    _compile_package()
    results = []
    no_native = token_cases.native_missing()
    no_tiktoken = token_cases.missing("tiktoken", "tiktoken")
    imports = Result("start-up", "import fast_litellm", "-")
    imports.seconds["native"] = _subprocess_seconds("import fast_litellm", runs)
    if no_tiktoken is None:
        imports.seconds["tiktoken"] = _subprocess_seconds("import tiktoken", runs)
    else:
        imports.skipped["tiktoken"] = no_tiktoken
    results.append(imports)
    for encoding in token_cases.ENCODINGS:
        cold = Result("start-up", "first count, cold encoding", encoding)
        if no_native is None:
            cold.seconds["native"] = _subprocess_seconds(
                f"import fast_litellm; fast_litellm.count_tokens('hi', encoding={encoding!r})",
                runs,
            )
        else:
            cold.skipped["native"] = no_native
        if no_tiktoken is None:
            cold.seconds["fallback"] = _subprocess_seconds(
                "from fast_litellm._fallback.tokens import Encoding; "
                f"Encoding({encoding!r}).count('hi')",
                runs,
            )
        else:
            cold.skipped["fallback"] = no_tiktoken
        results.append(cold)
    # What loading a vocabulary and counting once add to a process that has imported the package
    # (a proxy worker, a CLI, a serverless start, a forked worker loading lazily), for every
    # OpenAI encoding.
    for encoding in STARTUP_ENCODINGS:
        load = Result("start-up", "load + first count, after import", encoding)
        if no_native is None:
            load.seconds["native"] = _in_process_seconds(
                "import fast_litellm",
                f"fast_litellm.count_tokens('hi', encoding={encoding!r})",
                runs,
            )
        else:
            load.skipped["native"] = no_native
        if no_tiktoken is None:
            load.seconds["fallback"] = _in_process_seconds(
                "from fast_litellm._fallback.tokens import Encoding; import tiktoken",
                f"Encoding({encoding!r}).count('hi')",
                runs,
            )
        else:
            load.skipped["fallback"] = no_tiktoken
        results.append(load)
    return results


STARTUP_ENCODINGS = ("r50k_base", "p50k_base", "cl100k_base", "o200k_base")


def _accelerated(result: Result) -> str:
    """The contender the ratios are about: our native path, or litellm with ``patch()``."""
    return "patched" if "patched" in result.seconds else "native"


def _ratio(result: Result, reference: str) -> str:
    ratio = result.ratio(_accelerated(result), reference)
    return f"**{ratio:.1f}x**" if ratio is not None else "-"


def header(iterations: int) -> List[str]:
    return [
        "# Benchmarks",
        "",
        "Written by `python scripts/run_benchmarks.py --iterations "
        f"{iterations}`; do not edit by hand. Median time per call over {iterations} timed "
        "batches; every contender measured in the same run on the same machine, so compare "
        "ratios, not absolute times, across machines.",
        "",
        f"- Machine: {_machine()}",
        f"- Software: {_versions()}",
        f"- Date: {datetime.date.today().isoformat()}",
        "",
        "`native` is the public API with the Rust path on; `fallback` is the same API on the "
        "pure-Python path (Python `tiktoken` over the shipped vocabularies); `tiktoken` is "
        "`len(enc.encode(text, disallowed_special=()))`, what a user would write otherwise; "
        "`litellm` is `litellm.token_counter(model=..., messages=...)`.",
        "",
    ]


def section(title: str, results: List[Result]) -> List[str]:
    """One table of ``Result`` rows, with its note and the ratio columns it has references for."""
    if not results:
        return []
    contenders: List[str] = []
    for result in results:
        contenders += [c for c in result.seconds if c not in contenders]
    references = [c for c in _REFERENCES if c in contenders]
    if not references and "single-thread loop" in contenders:
        references = ["single-thread loop"]
    lines = [f"## {title}", ""]
    if title in _SECTION_NOTES:
        lines += [_SECTION_NOTES[title], ""]
    header_row = ["case", "encoding / model", *contenders]
    header_row += [f"{_accelerated(results[0])} vs {reference}" for reference in references]
    lines.append("| " + " | ".join(header_row) + " |")
    lines.append("|" + "---|" * len(header_row))
    for result in results:
        row = [result.case, result.encoding]
        row += [
            format_seconds(result.seconds[c]) if c in result.seconds else "-" for c in contenders
        ]
        row += [_ratio(result, reference) for reference in references]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines += [f"Not measured: {line}." for line in token_cases.skip_reasons(results)]
    if lines[-1]:
        lines.append("")
    return lines


def replace_sections(text: str, new_lines: List[str], note: str) -> str:
    """``text`` (a BENCHMARKS.md) with each ``## `` section of ``new_lines`` put in place of the
    section of the same title (or, if it has none, before the Rust-core comparison), ``note``
    under each new section's title."""
    blocks: List[List[str]] = []
    for line in new_lines:
        if line.startswith("## "):
            blocks.append([line, "", note])
        elif blocks:
            blocks[-1].append(line)
    lines = text.splitlines()
    for block in blocks:
        starts = [i for i, line in enumerate(lines) if line == block[0]]
        if starts:
            begin = starts[0]
            end = next(
                (i for i in range(begin + 1, len(lines)) if lines[i].startswith("## ")),
                len(lines),
            )
        else:
            core = [i for i, line in enumerate(lines) if line.startswith(_CORE_TITLE)]
            begin = end = core[0] if core else len(lines)
        body = block if block[-1] == "" else block + [""]
        lines[begin:end] = body
    return "\n".join(lines) + "\n"


_CORE_TITLE = "## Token counting: fast_litellm's core"


def core_comparison() -> str:
    """The Rust-core comparison (``benches/core-comparison``, a separate crate with its own
    build), included as last measured: rerun it with ``cargo run --release`` there."""
    path = os.path.join(ROOT, "benches", "core_comparison.md")
    try:
        with open(path, encoding="utf-8") as handle:
            body = handle.read().strip()
    except OSError:
        return ""
    # One level down: the file's own title becomes a section of BENCHMARKS.md.
    body = "\n".join("#" + line if line.startswith("#") else line for line in body.splitlines())
    return body + "\n"


def _table(title: str, results: List[Result], format_row: Any = None) -> List[str]:
    for result in results:
        print((format_row or token_cases.format_row)(result))
    return section(title, results)


def _when(available: bool, title: str, run: Any) -> List[str]:
    return _table(title, run()) if available else []


def _rate_limits(iterations: int, quick: bool) -> List[str]:
    results = ratelimit_cases.run_cases(iterations, quick=quick)
    for result in results:
        print(token_cases.format_row(result))
    memory = ratelimit_cases.memory_results(10_000 if quick else 1_000_000)
    for row in memory:
        print(ratelimit_cases.format_memory(row))
    for line in token_cases.skip_reasons(results):
        print(line)
    return ratelimit_cases.markdown(results, memory)


def _redis(quick: bool) -> List[str]:
    results = redis_cases.run_cases(5, quick=quick)
    for result in results:
        print(redis_cases.format_result(result))
    for name, why in redis_cases.skipped_contenders().items():
        print(f"{name} skipped: {why}")
    if redis_cases.skip_reason() is not None:
        print(f"Redis benchmark skipped: {redis_cases.skip_reason()}")
    return redis_cases.markdown(results)


def _e2e(quick: bool) -> List[str]:
    results = litellm_e2e_cases.run_cases(quick=quick)
    for result in results:
        print(litellm_e2e_cases.format_result(result))
    if litellm_e2e_cases.skip_reason() is not None:
        print(f"LiteLLM end to end skipped: {litellm_e2e_cases.skip_reason()}")
    return litellm_e2e_cases.markdown(results)


def _http(quick: bool) -> List[str]:
    # HTTP clients against a local mock server, each contender in an interpreter of its own.
    from benches import http_cases

    return http_cases.markdown(http_cases.run_cases(quick=quick, progress=print))


# Every part of BENCHMARKS.md in the file's order: a name for ``--only`` and what measures it
# (``n`` timed batches per figure, ``q`` quick mode), returning the part's Markdown lines.
STEPS: Dict[str, Callable[[int, bool], List[str]]] = {
    "count_tokens": lambda n, q: section(
        "count_tokens", token_cases.run_token_cases(n, progress=print)
    ),
    "count_tokens_batch": lambda n, q: _table(
        "count_tokens_batch", [token_cases.run_batch_case(n, count=500 if q else 10_000)]
    ),
    "count_message_tokens": lambda n, q: _table(
        "count_message_tokens", token_cases.run_message_cases(n)
    ),
    "hf_tokens": lambda n, q: _table("count_tokens (Hugging Face)", token_cases.run_hf_cases(n)),
    "count_request_tokens": lambda n, q: _table(
        "count_request_tokens", token_cases.run_request_cases(n)
    ),
    "litellm_token_counter": lambda n, q: _when(
        litellm_patch_cases.available(),
        "litellm.token_counter with patch()",
        lambda: litellm_patch_cases.run_litellm_patch_cases(n),
    ),
    "cost": lambda n, q: _when(
        cost_cases.available(), "request cost", lambda: cost_cases.run_cases(n)
    ),
    "proxy_hook": lambda n, q: _when(
        proxy_hook_cases.available(),
        "LiteLLM proxy rate-limit hook",
        lambda: proxy_hook_cases.run_cases(n),
    ),
    "routing": lambda n, q: _table(
        "Router.pick (deployment routing)", routing_cases.run_cases(n, quick=q)
    ),
    "health_checks": lambda n, q: _table(
        "background health checks", health_check_cases.run_cases(quick=q, progress=print)
    ),
    "routing_patch": lambda n, q: _table(
        "Router.pick with patch()", routing_cases.run_patch_cases(n, quick=q)
    ),
    "startup": lambda n, q: (
        _table("start-up", startup_results(3 if q else 15)) + memory_lines(1 if q else 5)
    ),
    "budgets": lambda n, q: _table("budgets", budget_cases.run_cases(n, quick=q)),
    "cache": lambda n, q: _table("response cache", cache_cases.run_cases(n)),
    "monitoring": lambda n, q: _table(
        "monitoring overhead", cache_cases.run_overhead_cases(n), cache_cases.format_overhead
    ),
    "e2e": lambda n, q: _e2e(q),
    "ratelimit": lambda n, q: _rate_limits(n, q),
    "redis": lambda n, q: _redis(q),
    "http": lambda n, q: _http(q),
}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=200, help="timed batches per figure")
    parser.add_argument(
        "--quick", action="store_true", help="small inputs, few iterations: a smoke run"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(STEPS),
        metavar="PART",
        help="measure only these parts and put them in place of their sections of the existing "
        f"BENCHMARKS.md, each marked as measured on its own (parts: {', '.join(STEPS)})",
    )
    parser.add_argument("--output", default=os.path.join(ROOT, "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    iterations = 2 if args.quick else args.iterations

    health = fast_litellm.health_check()
    print(f"fast_litellm {fast_litellm.__version__}: {health['status']}; {_versions()}")
    if not health["native"]["available"]:
        print(f"warning: native module unavailable ({health['native']['error']})")
    lines: List[str] = []
    for name, step in STEPS.items():
        if args.only is None or name in args.only:
            started = time.perf_counter()
            lines += step(iterations, args.quick)
            print(f"[{name}: {time.perf_counter() - started:.1f} s]")
            if lines and lines[-1]:
                lines.append("")

    if args.only is None:
        text = "\n".join(header(iterations) + lines) + "\n" + core_comparison()
    else:
        try:
            with open(args.output, encoding="utf-8") as handle:
                existing = handle.read()
        except OSError:
            existing = "\n".join(header(iterations)) + "\n"
        note = (
            f"*Measured on its own on {datetime.date.today().isoformat()} "
            f"(`--iterations {iterations} --only {' '.join(args.only)}`), "
            "the other sections are from the full run dated at the top.*"
        )
        text = replace_sections(existing, lines, note)
    print()
    print(text)
    if not args.no_write:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
