"""Benchmark cases, corpora and contenders, shared by ``scripts/run_benchmarks.py`` (which writes
BENCHMARKS.md) and the pytest-benchmark files beside them.

- ``token_cases``: ``count_tokens``, ``count_tokens_batch`` and ``count_message_tokens`` against
  Python tiktoken and ``litellm.token_counter``; the sample texts are in ``samples/``.
- ``ratelimit_cases``: the in-process limiter against a dict token bucket and ``limits``.
- ``redis_cases``: the Redis backend against redis-py, on a throwaway server started with the
  tests' launcher (``tests/redis_server.py``).
- ``mock_server``: the launcher of the local OpenAI-compatible server (``mock_server/``, a Rust
  binary built by cargo on first use) that the end-to-end tests and benchmarks talk to.
- ``litellm_e2e_cases``: ``litellm.acompletion``, ``Router.acompletion`` (one deployment; ten with
  latency-based routing) and streaming against
  that server, unpatched and with ``fast_litellm.patch()``, each in a fresh process.

None of this ships in the wheel: run it from a checkout (the repository root on ``sys.path``).
"""
