"""Fixtures for the Redis tests: throwaway servers on loopback, never a developer's own Redis.

The servers come from ``fast_litellm._redis_server`` (the benchmarks use the same helper). Without
``redis-server`` installed the Redis tests are skipped, except under CI, where ``.ci/run``
installs it and a missing server is a failure.
"""

from __future__ import annotations

import os

import pytest

from fast_litellm._redis_server import RedisCluster, RedisServer, redis_server_available


def require_redis_server() -> None:
    if redis_server_available() is None:
        message = "redis-server is not installed (Debian: apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def require_redis_py() -> None:
    pytest.importorskip("redis", minversion="5", reason="the Python path needs redis-py >= 5")


@pytest.fixture(scope="session")
def redis_server():
    """One server for the whole session; tests keep to their own keys (``unique_key``)."""
    require_redis_server()
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def own_redis_server():
    """A server of the test's own, which the test may stop, pause and restart."""
    require_redis_server()
    server = RedisServer().start()
    yield server
    server.resume()
    server.close()


@pytest.fixture(scope="session")
def redis_cluster():
    """A 3-master Redis Cluster (no replicas) on loopback."""
    require_redis_server()
    cluster = RedisCluster(3).start()
    yield cluster
    cluster.close()


_counter = iter(range(1 << 62))


@pytest.fixture
def unique_key(request):
    """A key no other test uses, so tests can share one server."""
    return f"{request.node.name}-{os.getpid()}-{next(_counter)}"
