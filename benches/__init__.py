"""Benchmark cases, corpora and contenders, shared by ``scripts/run_benchmarks.py`` (which writes
BENCHMARKS.md) and the pytest-benchmark files beside them.

- ``token_cases``: ``count_tokens``, ``count_tokens_batch`` and ``count_message_tokens`` against
  Python tiktoken and ``litellm.token_counter``; the sample texts are in ``samples/``.
- ``ratelimit_cases``: the in-process limiter against a dict token bucket and ``limits``.
- ``redis_cases``: the Redis backend against redis-py, on a throwaway server started with the
  tests' launcher (``tests/redis_server.py``).

None of this ships in the wheel: run it from a checkout (the repository root on ``sys.path``).
"""
