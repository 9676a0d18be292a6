"""The local OpenAI-compatible server of the end-to-end tests and benchmarks
(``benches/mock_server/``, a small Rust binary), and the launcher that builds and runs it.

    with MockServer(latency_ms=0, stream_events=16) as server:
        litellm.acompletion(model="openai/gpt-4o", api_base=server.base_url, api_key="sk-test", ...)

The first use builds the binary with cargo (``cargo build --release``: a no-op when it is up to
date; a file lock keeps two processes from building at once), so nothing has to be built by hand
before the tests or benchmarks run. What the server answers is described in its ``src/main.rs``:
deterministic OpenAI-shaped chat completions (streamed or not) and embeddings, with headers to
ask one request for latency (``x-mock-latency-ms``), a number of stream events
(``x-mock-stream-events``) or an error (``x-mock-status``, ``x-mock-retry-after``).

Each server listens on 127.0.0.1 on a port of its own and is stopped by ``stop()``, by its
process id. Tests take a running one from the fixture made by ``mock_server_fixture()``.
"""

from __future__ import annotations

import fcntl
import os
import select
import shutil
import subprocess
import threading
import time
from typing import Any, Callable, List, Optional

__all__ = ["MockServer", "build_binary", "cargo_missing", "mock_server_fixture"]

_CRATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mock_server")
_MANIFEST = os.path.join(_CRATE, "Cargo.toml")
_TARGET = os.path.join(_CRATE, "target")
BINARY = os.path.join(_TARGET, "release", "mock-server")
# A first build compiles hyper and tokio (about 15 s alone, minutes on a busy 2-core machine).
_BUILD_TIMEOUT = 900.0
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0

_built_lock = threading.Lock()
_built = False


def cargo_missing() -> Optional[str]:
    """Why the server cannot be built here (no cargo on PATH), or None."""
    if shutil.which("cargo") is None:
        return "cargo is not installed (the mock server is a Rust binary: https://rustup.rs)"
    return None


def build_binary() -> str:
    """Builds the server once per process (cargo decides whether anything changed) and returns
    the binary's path."""
    global _built
    with _built_lock:
        if _built:
            return BINARY
        reason = cargo_missing()
        if reason is not None:
            raise RuntimeError(reason)
        os.makedirs(_TARGET, exist_ok=True)
        # cargo waits on its own lock too, but prints "Blocking waiting for file lock" and a
        # second process could start the binary while the first one replaces it.
        with open(os.path.join(_TARGET, ".build-lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                build = subprocess.run(
                    ["cargo", "build", "--release", "--locked", "--quiet",
                     "--manifest-path", _MANIFEST],
                    capture_output=True,
                    text=True,
                    timeout=_BUILD_TIMEOUT,
                    stdin=subprocess.DEVNULL,
                )  # fmt: skip
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        if build.returncode != 0:
            raise RuntimeError(f"building the mock server failed:\n{build.stderr}")
        _built = True
        return BINARY


class MockServer:
    """One running mock server; ``start()`` builds it if needed, ``stop()`` ends it.

    ``latency_ms`` delays every answer, ``stream_events`` is the number of content events of a
    streamed answer (and the words of a plain one), ``threads`` the server's worker threads (one
    leaves the rest of a small machine to the client being measured).
    """

    def __init__(
        self, *, latency_ms: int = 0, stream_events: int = 16, threads: int = 1, port: int = 0
    ) -> None:
        self.options = {
            "--port": port,
            "--threads": threads,
            "--latency-ms": latency_ms,
            "--stream-events": stream_events,
        }
        for name, value in self.options.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name[2:]} must be a non-negative int, not {value!r}")
        self.port: Optional[int] = None
        self._process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, the server's root (``/health`` is there)."""
        if self.port is None:
            raise RuntimeError("the mock server is not running: start() it first")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (``api_base`` for LiteLLM, ``base_url`` for the OpenAI SDK)."""
        return self.url + "/v1"

    @property
    def pid(self) -> Optional[int]:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> "MockServer":
        if self.running:
            return self
        command: List[str] = [build_binary()]
        for name, value in self.options.items():
            command += [name, str(value)]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            self.port = self._read_port(self._process)
        except BaseException:
            self.stop()
            raise
        return self

    def _read_port(self, process: subprocess.Popen) -> int:
        """The port from the server's ``LISTENING <port>`` line, waited for with a deadline."""
        assert process.stdout is not None
        deadline = time.monotonic() + _START_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"the mock server did not start in {_START_TIMEOUT:.0f} s")
            readable, _, _ = select.select([process.stdout], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(process.stdout.fileno(), 64)
            if not chunk:
                # The server exited before listening; its stderr says why (bad option, port
                # taken).
                process.wait(timeout=_STOP_TIMEOUT)
                error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(
                    f"the mock server exited with {process.returncode}: {error.strip()}"
                )
            line += chunk
        # Nothing else is printed: the pipe is closed so it holds no descriptor open.
        process.stdout.close()
        word, _, port = line.decode().strip().partition(" ")
        if word != "LISTENING" or not port.isdigit():
            raise RuntimeError(f"unexpected first line from the mock server: {line!r}")
        return int(port)

    def stop(self) -> None:
        """Ends the server by its process id: SIGTERM, then SIGKILL if it has not exited after
        a bounded wait."""
        process, self._process = self._process, None
        self.port = None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=_STOP_TIMEOUT)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> "MockServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def mock_server_fixture(scope: str = "module", **options: Any) -> Callable[..., Any]:
    """A pytest fixture yielding a running ``MockServer(**options)``; assign it to a name in a
    test module (``mock_server = mock_server_fixture()``) to use it by that name. Without cargo
    the tests that use it are skipped, except under CI, where they fail."""
    import pytest

    @pytest.fixture(scope=scope)
    def fixture() -> Any:
        reason = cargo_missing()
        if reason is not None:
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        with MockServer(**options) as server:
            yield server

    return fixture
