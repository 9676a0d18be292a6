"""A forward HTTP proxy for the tests: absolute-form requests are forwarded to their origin (one
request at a time per client connection, bodies by Content-Length), ``CONNECT`` opens a tunnel.
It counts what it forwarded and keeps the ``Proxy-Authorization`` values it was sent."""

from __future__ import annotations

import socket
import socketserver
import threading
from typing import Any, List, Optional, Tuple
from urllib.parse import urlsplit

__all__ = ["ForwardProxy"]


def _read_head(stream: Any) -> Optional[Tuple[str, List[Tuple[str, str]]]]:
    line = stream.readline()
    if not line:
        return None
    headers = []
    while True:
        header = stream.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return line.decode("latin-1").rstrip("\r\n"), headers


def _length(headers: List[Tuple[str, str]]) -> int:
    for name, value in headers:
        if name.lower() == "content-length":
            return int(value)
    return 0


def _relay(source: socket.socket, target: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        try:
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class _Handler(socketserver.StreamRequestHandler):
    server: "_Server"

    def handle(self) -> None:
        proxy = self.server.proxy
        while True:
            head = _read_head(self.rfile)
            if head is None:
                return
            request_line, headers = head
            method, target, version = request_line.split(" ", 2)
            for name, value in headers:
                if name.lower() == "proxy-authorization":
                    with proxy.lock:
                        proxy.authorizations.append(value)
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = socket.create_connection((host, int(port)))
                with proxy.lock:
                    proxy.tunnels += 1
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                back = threading.Thread(target=_relay, args=(upstream, self.connection))
                back.start()
                _relay(self.connection, upstream)
                back.join()
                upstream.close()
                return
            url = urlsplit(target)
            body = self.rfile.read(_length(headers))
            path = url.path + (f"?{url.query}" if url.query else "")
            kept = [(n, v) for n, v in headers if n.lower() != "proxy-authorization"]
            with socket.create_connection((url.hostname, url.port or 80)) as upstream:
                upstream.sendall(
                    f"{method} {path} {version}\r\n".encode("latin-1")
                    + b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in kept)
                    + b"\r\n"
                    + body
                )
                reader = upstream.makefile("rb")
                answer = _read_head(reader)
                if answer is None:
                    return
                status_line, answer_headers = answer
                answer_body = reader.read(_length(answer_headers))
            with proxy.lock:
                proxy.forwarded += 1
            self.wfile.write(
                f"{status_line}\r\n".encode("latin-1")
                + b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in answer_headers)
                + b"\r\n"
                + answer_body
            )
            self.wfile.flush()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: "ForwardProxy"


class ForwardProxy:
    """``with ForwardProxy() as proxy:`` then ``proxy.url``; stopped at the end."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.forwarded = 0
        self.tunnels = 0
        self.authorizations: List[str] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "ForwardProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
