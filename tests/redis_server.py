"""Throwaway ``redis-server`` processes for the Redis backend's tests and benchmarks, and the
pytest fixtures built on them.

Each server listens on loopback only, on a free port, keeps nothing on disk (``--save ''``,
``--appendonly no``, its files in a temporary folder) and is stopped by ``stop()``, by its own
process id. Nothing here ever talks to a server it did not start, so a developer's own Redis is
never touched.

The launcher lives here, with the tests, rather than in ``benches/``: the tests are its main user
(clusters, pause/resume, restarts) and must not depend on the benchmarks, while the benchmarks
already need everything the tests need (``benches/redis_cases.py`` imports ``RedisServer`` from
here). Without ``redis-server`` installed the Redis tests are skipped, except under CI, where
``.ci/run`` installs it and a missing server is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import List, Optional, Sequence

import pytest

__all__ = ["RedisCluster", "RedisServer", "free_port", "redis_server_available"]

_HOST = "127.0.0.1"
_START_TIMEOUT = 10.0


def redis_server_available() -> Optional[str]:
    """The path of ``redis-server`` (with ``redis-cli`` beside it), or None when not installed."""
    server = shutil.which("redis-server")
    if server is None or shutil.which("redis-cli") is None:
        return None
    return server


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return sock.getsockname()[1]


def _ping(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((_HOST, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` on ``127.0.0.1:<port>``; ``start()`` again after ``stop()`` brings it
    back on the same port (empty: nothing is persisted)."""

    def __init__(self, port: Optional[int] = None, *, extra_args: Sequence[str] = ()) -> None:
        server = redis_server_available()
        if server is None:
            raise RuntimeError(
                "redis-server is not installed (Debian: apt-get install redis-server)"
            )
        self._binary = server
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.directory = tempfile.mkdtemp(prefix=f"fast-litellm-redis-{self.port}-")
        self.socket_path = os.path.join(self.directory, "redis.sock")
        self._process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://{_HOST}:{self.port}/0"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> "RedisServer":
        if self.running:
            return self
        command = [
            self._binary,
            "--port", str(self.port),
            "--bind", _HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", self.directory,
            "--unixsocket", self.socket_path,
            "--unixsocketperm", "700",
            "--daemonize", "no",
            "--loglevel", "warning",
            *self.extra_args,
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command,
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while not _ping(self.port):
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"redis-server on port {self.port} exited with {self._process.returncode}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not start in time")
            time.sleep(0.02)
        return self

    def stop(self, *, kill: bool = False) -> None:
        """Stops the server: SIGTERM (it closes its connections), or with ``kill`` SIGKILL (a
        crash: nothing is closed, clients find out on their next read or write)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            if kill:
                process.kill()
            else:
                process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def pause(self) -> None:
        """Freezes the server (SIGSTOP): connections stay open and nothing answers."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def cli(self, *args: str) -> str:
        """Runs ``redis-cli`` against this server and returns its output."""
        result = subprocess.run(
            ["redis-cli", "-h", _HOST, "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return result.stdout

    def close(self) -> None:
        """Stops the server and removes its folder."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class RedisCluster:
    """A Redis Cluster of ``size`` masters (no replicas) on loopback, made with
    ``redis-cli --cluster create``."""

    def __init__(self, size: int = 3) -> None:
        if size < 3:
            raise ValueError("redis-cli --cluster create needs at least 3 masters")
        self.nodes: List[RedisServer] = []
        for _ in range(size):
            port = free_port()
            self.nodes.append(
                RedisServer(
                    port,
                    extra_args=[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        f"nodes-{port}.conf",
                        "--cluster-node-timeout",
                        "2000",
                        # The bus port defaults to port + 10000, which may be taken (or > 65535).
                        "--cluster-port",
                        str(free_port()),
                    ],
                )  # fmt: skip
            )

    @property
    def urls(self) -> List[str]:
        return [f"redis://{_HOST}:{node.port}" for node in self.nodes]

    @property
    def url(self) -> str:
        """The whole cluster as one ``redis+cluster://`` URL."""
        hosts = ",".join(f"{_HOST}:{node.port}" for node in self.nodes)
        return f"redis+cluster://{hosts}"

    def start(self) -> "RedisCluster":
        try:
            for node in self.nodes:
                node.start()
            addresses = [f"{_HOST}:{node.port}" for node in self.nodes]
            subprocess.run(
                ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0",
                 "--cluster-yes"],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )  # fmt: skip
            self._wait_until_ready()
        except BaseException:
            self.close()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            states = [node.cli("CLUSTER", "INFO") for node in self.nodes]
            if all("cluster_state:ok" in s and "cluster_slots_ok:16384" in s for s in states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not become ready in time")
            time.sleep(0.05)

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def __enter__(self) -> "RedisCluster":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# Fixtures (made visible to their tests by tests/test_ratelimit_redis.py).


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
