"""The fallback engine of ``fast_litellm.http``: httpx with the limits, retries, statistics and
event parsing of the native engine (the interface is described in ``fast_litellm.http``).

Two httpx clients at most per process and event loop, made on first use: an ``httpx.Client`` for
the blocking calls and one ``httpx.AsyncClient`` per event loop (an asyncio connection belongs to
the loop that opened it, so a client used from several loops keeps a pool for each).

Statistics come from three places: our own counters (requests, retries, errors, pool waits),
httpcore's ``trace`` request extension (whether a request opened a connection or reused one, and
when it got one), and the connection pools of httpx itself (connections active and idle, opened
and closed). httpx does not publish its pools, so that last part reads httpcore's internals; it
lives in ``_pools``, ``_pool_connections``, ``_adapt_pools`` and ``_take_expired`` only, and
degrades to counting nothing if those names change.

httpcore's pool spends time quadratic in its connections on every request (see
``_Assignment``): at hundreds of connections kept alive, most of the CPU a request costs. Each
pool gets ``_Assignment`` in its place (the same decisions at far less cost), or keeps its own
if httpcore's internals are not the ones it knows.

Every httpx exception is raised as its ``fast_litellm.errors`` twin (see ``_ERRORS``).
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import inspect
import os
import random
import re
import select
import threading
import time
import weakref
from collections import deque
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Deque,
    Dict,
    Generator,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Set,
    Tuple,
    Type,
    TypeVar,
)
from urllib.parse import urlsplit

import httpcore
import httpx

from .. import _fork, errors
from ._aio import bounded

__all__ = [
    "ERROR_KINDS",
    "HttpClient",
    "SseDecoder",
    "backoff_delay",
    "parse_retry_after",
    "parse_sse",
]

Event = Tuple[str, str, Optional[str], Optional[int]]
HeaderPairs = List[Tuple[str, str]]
TimeoutTuple = Tuple[Optional[float], Optional[float], Optional[float], Optional[float]]

ERROR_KINDS = (
    "connect",
    "connect_timeout",
    "read_timeout",
    "write_timeout",
    "pool_timeout",
    "protocol",
    "other",
)

# Pool waits kept for the percentiles: the most recent ones, so the numbers follow the load.
_POOL_WAIT_SAMPLE = 2048
# URLs of a client worked out and kept (all forgotten when there are more).
_TARGETS_KEPT = 256


# ---- server-sent events ---------------------------------------------------------------------------

_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"
# The most bytes one event may gather (the line not yet ended and the block's data lines): a
# stream whose line or block never ends is an error past it instead of unbounded memory (the
# native decoder's limit, ``sse::MAX_EVENT_BYTES``).
MAX_EVENT_BYTES = 64 * 1024 * 1024


class SseDecoder:
    """Server-sent events from a byte stream fed in pieces of any size (the WHATWG
    ``text/event-stream`` rules, with one difference: ``id`` and ``retry`` are those of the
    event's own block, not remembered across events).

    Lines end with CRLF, LF or CR (a CR that ends one piece and an LF that starts the next are one
    line end); a leading UTF-8 byte order mark is dropped; lines starting with ``:`` are
    comments; ``field: value`` loses one space after the colon; ``data`` lines are joined by
    ``\\n``; a blank line dispatches the block as ``(event, data, id, retry)`` (``event``
    defaults to ``"message"``) unless it had no ``data`` line. An ``id`` holding NUL and a
    ``retry`` that is not all ASCII digits are ignored. Invalid UTF-8 is replaced with U+FFFD.
    A block not ended by a blank line when the stream ends is discarded. An event that gathers
    more than ``MAX_EVENT_BYTES`` raises ``RemoteProtocolError`` (and the decoder starts over).
    """

    __slots__ = (
        "_partial",
        "_partial_bytes",
        "_skip_lf",
        "_head",
        "_data",
        "_data_bytes",
        "_event",
        "_id",
        "_retry",
    )

    def __init__(self) -> None:
        self._start()

    def _start(self) -> None:
        self._partial: List[bytes] = []  # the pieces of a line not ended yet
        self._partial_bytes = 0  # their length
        self._skip_lf = False  # the last piece ended with CR: an LF next is part of that line end
        self._head: Optional[bytes] = b""  # the first bytes, until the BOM question is settled
        self._data: List[str] = []
        self._data_bytes = 0  # the length of the data lines as received
        self._event = ""
        self._id: Optional[str] = None
        self._retry: Optional[int] = None

    def feed(self, data: bytes) -> List[Event]:
        """The events completed by ``data``, in order (often none)."""
        events = self._feed(data)
        if self._partial_bytes + self._data_bytes > MAX_EVENT_BYTES:
            self._start()
            raise errors.RemoteProtocolError(
                f"an event of the event stream is larger than {MAX_EVENT_BYTES >> 20} MiB "
                "(a line, or the data lines of one event, never ended)"
            )
        return events

    def _feed(self, data: bytes) -> List[Event]:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"feed() takes bytes, not {type(data).__name__}")
        data = bytes(data)
        if self._head is not None:
            data = self._head + data
            if len(data) < len(_BOM) and _BOM.startswith(data):
                self._head = data
                return []
            self._head = None
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
        if self._skip_lf and data:
            self._skip_lf = False
            if data[0] == 0x0A:
                data = data[1:]
        if not data:
            return []
        if b"\n" not in data and b"\r" not in data:
            self._partial.append(data)
            self._partial_bytes += len(data)
            return []
        if self._partial:
            self._partial.append(data)
            data = b"".join(self._partial)
            self._partial = []
            self._partial_bytes = 0
        lines = _LINE_END.split(data)
        rest = lines.pop()
        if rest:
            self._partial.append(rest)
            self._partial_bytes = len(rest)
        elif data[-1] == 0x0D:
            self._skip_lf = True
        events: List[Event] = []
        for line in lines:
            self._line(line, events)
        return events

    def finish(self) -> List[Event]:
        """The end of the stream: an unfinished block is discarded, as the rules say, so this
        returns no event; the decoder is ready for a new stream."""
        self._start()
        return []

    def _line(self, line: bytes, events: List[Event]) -> None:
        if not line:
            if self._data:
                events.append(
                    (self._event or "message", "\n".join(self._data), self._id, self._retry)
                )
            self._data = []
            self._data_bytes = 0
            self._event, self._id, self._retry = "", None, None
            return
        if line[0] == 0x3A:  # ":" starts a comment
            return
        field, colon, value = line.decode("utf-8", "replace").partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
            self._data_bytes += len(line) - len(field) - 1
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._id = value
        elif field == "retry":
            if value.isascii() and value.isdigit():
                # More than 64 bits: no sensible reconnection time, ignored as natively (and
                # never handed to int(), which refuses more than 4,300 digits).
                digits = value.lstrip("0") or "0"  # leading zeros do not count (as natively)
                number = int(digits) if len(digits) <= 20 else _RETRY_LIMIT
                self._retry = number if number < _RETRY_LIMIT else None


_RETRY_LIMIT = 2**64


def parse_sse(data: bytes) -> List[Event]:
    """The events of a whole ``text/event-stream`` body."""
    decoder = SseDecoder()
    return decoder.feed(data) + decoder.finish()


# ---- retries ----------------------------------------------------------------------------------------

_DAY = "(Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAY = "(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = "([0-9]{2}):([0-9]{2}):([0-9]{2})"
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
# The three forms of RFC 9110 section 5.6.7, exactly (names are case-sensitive there).
_IMF_FIXDATE = re.compile(rf"{_DAY}, ([0-9]{{2}}) {_MONTH} ([0-9]{{4}}) {_TIME} GMT")
_RFC850_DATE = re.compile(rf"{_LONG_DAY}, ([0-9]{{2}})-{_MONTH}-([0-9]{{2}}) {_TIME} GMT")
_ASCTIME_DATE = re.compile(rf"{_DAY} {_MONTH} ([0-9]{{2}}| [0-9]) {_TIME} ([0-9]{{4}})")
_UNIX_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()


def _http_date(text: str) -> Optional[float]:
    """The Unix time of an HTTP date, or None.

    The rules of the native path's parser (the `httpdate` crate): one of the three forms, the
    weekday must be the date's, the year 1970 to 9999, seconds up to 59; the asctime day is two
    digits or a space and one digit; a two-digit RFC 850 year below 70 is 20xx, otherwise 19xx.
    """
    match = _IMF_FIXDATE.fullmatch(text)
    if match is not None:
        weekday, day, month, year, hour, minute, second = match.groups()
    else:
        match = _RFC850_DATE.fullmatch(text)
        if match is not None:
            weekday, day, month, short_year, hour, minute, second = match.groups()
            year = str(int(short_year) + (2000 if int(short_year) < 70 else 1900))
        else:
            match = _ASCTIME_DATE.fullmatch(text)
            if match is None:
                return None
            weekday, month, day, hour, minute, second, year = match.groups()
    if int(hour) > 23 or int(minute) > 59 or int(second) > 59 or int(year) < 1970:
        return None
    try:
        date = datetime.date(int(year), _MONTHS[month], int(day))
    except ValueError:
        return None
    if date.strftime("%a") != weekday[:3]:
        return None
    days = date.toordinal() - _UNIX_EPOCH_ORDINAL
    return float(days * 86400 + int(hour) * 3600 + int(minute) * 60 + int(second))


def parse_retry_after(value: str, now: float) -> Optional[float]:
    """The seconds a ``Retry-After`` value asks to wait, or None when it is neither form.

    ``value`` is a whole number of seconds (ASCII digits only, any length: too many for a float
    is infinity) or an HTTP date, taken relative to ``now`` (Unix time); a date in the past is
    0. Spaces and tabs around the value are ignored.
    """
    text = value.strip(" \t")
    if text.isascii() and text.isdigit():
        return float(text)
    when = _http_date(text)
    if when is None:
        return None
    return max(0.0, when - now)


def backoff_delay(attempt: int, base: float, cap: float, rand: float) -> float:
    """The wait before retry ``attempt`` (from 1): "equal jitter" over an exponential backoff.

    ``d = min(cap, base * 2 ** (attempt - 1))`` and the wait is ``d / 2 + rand * d / 2``, so with
    ``rand`` uniform in [0, 1] it lies between half and all of ``d``.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    if not 0.0 <= rand <= 1.0:
        raise ValueError(f"rand must be in [0, 1], got {rand}")
    # 2.0 ** 1024 overflows a float; any base worth waiting for has long reached the cap there.
    exponent = min(attempt - 1, 1023)
    delay = min(cap, base * 2.0**exponent)
    return delay / 2 + rand * delay / 2


# ---- errors -----------------------------------------------------------------------------------------

# Most specific first: each httpx class with its kind in the statistics and our class. An error of
# the caller's request itself (a bad URL, a header value h11 refuses) is a ValueError, not counted.
_ERRORS: Tuple[Tuple[Type[BaseException], Optional[str], Type[Exception]], ...] = (
    (httpx.ConnectTimeout, "connect_timeout", errors.ConnectTimeout),
    (httpx.ReadTimeout, "read_timeout", errors.ReadTimeout),
    (httpx.WriteTimeout, "write_timeout", errors.WriteTimeout),
    (httpx.PoolTimeout, "pool_timeout", errors.PoolTimeout),
    (httpx.ConnectError, "connect", errors.ConnectError),
    (httpx.ProxyError, "connect", errors.ConnectError),
    # Reset or closed mid-exchange, something that is not HTTP, a body that does not decode.
    (httpx.ReadError, "protocol", errors.ReadError),
    (httpx.WriteError, "protocol", errors.RemoteProtocolError),
    (httpx.CloseError, "protocol", errors.RemoteProtocolError),
    (httpx.RemoteProtocolError, "protocol", errors.RemoteProtocolError),
    (httpx.DecodingError, "protocol", errors.RemoteProtocolError),
    (httpx.LocalProtocolError, None, ValueError),
    (httpx.UnsupportedProtocol, None, ValueError),
    (httpx.InvalidURL, None, ValueError),
)
# Errors that may be followed by a retry: nothing reached the server.
_CONNECT_FAILURES = (errors.ConnectError, errors.ConnectTimeout)
# Errors that tell the adaptive limit the server (or the path to it) is overloaded. A pool
# timeout is not one: it is our own queue, and a lower limit would only lengthen it.
_CONGESTION = (errors.ConnectTimeout, errors.ReadTimeout, errors.WriteTimeout)


def _translate(exc: BaseException, method: str, url: str) -> Tuple[Optional[str], Exception]:
    """Our exception for an httpx one, and its kind in the statistics (None: not counted)."""
    kind: Optional[str] = "other"
    target: Type[Exception] = errors.HTTPError
    for source, source_kind, source_target in _ERRORS:
        if isinstance(exc, source):
            kind, target = source_kind, source_target
            break
    # httpx keeps the message of the OS error (a reset) on the exception it was raised from.
    detail, cause = str(exc), exc.__cause__ or exc.__context__
    while not detail and cause is not None:
        detail, cause = str(cause), cause.__cause__ or cause.__context__
    detail = detail or type(exc).__name__
    if target is ValueError:
        return kind, ValueError(f"invalid request {method} {url}: {detail}")
    return kind, target(f"{detail} ({method} {url})")


# ---- URLs and requests ----------------------------------------------------------------------------

_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


def _check_url(url: str, what: str = "URL") -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"the {what} must start with http:// or https://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"the {what} has no host: {url!r}")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"the {what} has a bad port: {url!r} ({exc})") from None
    # In the path and query httpx percent-encodes them (as the native engine does); a host
    # cannot hold them.
    if any(ch in parts.netloc for ch in " \t\r\n\0"):
        raise ValueError(f"the {what}'s host holds whitespace or control characters: {url!r}")
    return url


def _join_url(base_url: Optional[str], url: str) -> str:
    """An absolute URL as given; a relative one appended to ``base_url``'s path, as httpx does
    (``"/x"`` and ``"x"`` both land under the base path)."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    if _ABSOLUTE.match(url):
        return _check_url(url)
    if base_url is None:
        raise ValueError(
            f"{url!r} is a relative URL and the client has no base_url: pass a full "
            "http:// or https:// URL, or set base_url"
        )
    parts = urlsplit(base_url)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return _check_url(f"{parts.scheme}://{parts.netloc}{path}{url.lstrip('/')}")


def _host_key(host: str, port: Optional[int], scheme: str) -> str:
    if port is None:
        port = 443 if scheme == "https" else 80
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _encode_headers(pairs: Sequence[Tuple[str, str]]) -> List[Tuple[bytes, bytes]]:
    encoded = []
    for name, value in pairs:
        try:
            raw_name = name.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError(f"header name {name!r} is not ASCII") from None
        encoded.append((raw_name, value.encode("utf-8")))
    return encoded


def _decode_header(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _received_headers(response: httpx.Response) -> HeaderPairs:
    return [(_decode_header(name), _decode_header(value)) for name, value in response.headers.raw]


# A finished response as the engine interface returns it: (status, headers, content, elapsed,
# retries, url, http_version).
_Finished = Tuple[int, HeaderPairs, bytes, float, int, str, str]
_T = TypeVar("_T")
# A request's steps: they yield (what to do, with what), are sent the outcome, return a _T.
_Steps = Generator[Tuple[str, Any], Any, _T]


class _Prepared(NamedTuple):
    method: str
    url: str
    address: httpx.URL  # ``url`` as httpx parsed it
    headers: List[Tuple[bytes, bytes]]
    body: Optional[bytes]
    timeout: TimeoutTuple


# ---- the concurrency gate -------------------------------------------------------------------------


class _Waiter:
    """One request waiting at the gate: a thread (an Event) or an asyncio task (a future)."""

    __slots__ = ("granted", "event", "loop", "future")

    def __init__(self, loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        self.granted = False
        self.loop = loop
        self.event: Optional[threading.Event] = None if loop else threading.Event()
        self.future: Optional["asyncio.Future[None]"] = loop.create_future() if loop else None

    def wake(self) -> bool:
        """False when the waiter can no longer be told (its event loop is closed)."""
        if self.event is not None:
            self.event.set()
            return True
        assert self.loop is not None and self.future is not None
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future)
        except RuntimeError:
            return False
        return True


def _resolve(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


class _Gate:
    """At most ``limit`` requests past this point, for threads and event loops alike (first come,
    first served), and the adaptive limit (AIMD) when ``adaptive``.

    Adaptive: the limit starts at ``ceiling``; it grows by one after a window of ``limit``
    successes in a row whose latency stays within twice the best seen, and halves (not below 1)
    on a 429 or a timeout. A cut ignores the requests that started before the previous cut: they
    were sent under the old limit, so a burst of 429s from one round halves the limit once.
    """

    def __init__(self, limit: int, adaptive: bool) -> None:
        self.limit = limit
        self.ceiling = limit
        self.adaptive = adaptive
        self.in_use = 0
        self._waiters: Deque[_Waiter] = deque()
        self._lock = threading.Lock()
        self._best_latency = float("inf")
        self._successes = 0
        self._last_cut = float("-inf")

    def _admit(self) -> List[_Waiter]:
        # Under the lock: hand free places to the first waiters.
        woken = []
        while self._waiters and self.in_use < self.limit:
            waiter = self._waiters.popleft()
            waiter.granted = True
            self.in_use += 1
            woken.append(waiter)
        return woken

    def _wake(self, woken: List[_Waiter]) -> None:
        for waiter in woken:
            if not waiter.wake():
                self.release()

    def try_acquire(self, loop: Optional[asyncio.AbstractEventLoop]) -> Optional[_Waiter]:
        """None when admitted at once, else the waiter now queued."""
        with self._lock:
            if not self._waiters and self.in_use < self.limit:
                self.in_use += 1
                return None
            waiter = _Waiter(loop)
            self._waiters.append(waiter)
            return waiter

    def abandon(self, waiter: _Waiter) -> bool:
        """The waiter gives up; True if it had been admitted meanwhile (its place is kept)."""
        with self._lock:
            if waiter.granted:
                return True
            self._waiters.remove(waiter)
            return False

    def acquire(self, timeout: Optional[float]) -> bool:
        waiter = self.try_acquire(None)
        if waiter is None:
            return True
        assert waiter.event is not None
        return waiter.event.wait(timeout) or self.abandon(waiter)

    async def aacquire(self, timeout: Optional[float]) -> bool:
        waiter = self.try_acquire(asyncio.get_running_loop())
        if waiter is None:
            return True
        assert waiter.future is not None
        try:
            await bounded(waiter.future, timeout)
        except asyncio.TimeoutError:
            return self.abandon(waiter)
        except BaseException:
            if self.abandon(waiter):
                self.release()
            raise
        return True

    def release(self) -> None:
        with self._lock:
            self.in_use -= 1
            woken = self._admit()
        self._wake(woken)

    def succeeded(self, latency: float) -> None:
        if not self.adaptive:
            return
        with self._lock:
            self._best_latency = min(self._best_latency, latency)
            if latency > 2 * self._best_latency:
                self._successes = 0
                return
            self._successes += 1
            if self._successes < self.limit or self.limit >= self.ceiling:
                return
            self._successes = 0
            self.limit += 1
            woken = self._admit()
        self._wake(woken)

    def congested(self, started: float) -> None:
        if not self.adaptive:
            return
        with self._lock:
            if started < self._last_cut:
                return
            self._last_cut = time.monotonic()
            self.limit = max(1, self.limit // 2)
            self._successes = 0


class _Slot:
    """A place at the gate, given back once."""

    __slots__ = ("_gate",)

    def __init__(self, gate: Optional[_Gate]) -> None:
        self._gate = gate

    def release(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.release()


# ---- statistics --------------------------------------------------------------------------------------


class _HostCounters:
    __slots__ = ("requests", "connections_opened")

    def __init__(self) -> None:
        self.requests = 0
        self.connections_opened = 0


class _Counters:
    """Everything counted by this process for one client (reset in a forked child)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.in_flight = 0
        self.connections_opened = 0
        self.connections_reused = 0
        self.connections_closed = 0
        self.errors = {kind: 0 for kind in ERROR_KINDS}
        self.hosts: Dict[str, _HostCounters] = {}
        self.pool_waits: Deque[float] = deque(maxlen=_POOL_WAIT_SAMPLE)
        self.pool_wait_count = 0

    def host(self, key: str) -> _HostCounters:
        counters = self.hosts.get(key)
        if counters is None:
            counters = self.hosts.setdefault(key, _HostCounters())
        return counters

    def opened(self, key: str) -> None:
        with self.lock:
            self.connections_opened += 1
            self.host(key).connections_opened += 1

    def closed(self) -> None:
        with self.lock:
            self.connections_closed += 1

    def sent(self, key: str, reused: bool) -> None:
        with self.lock:
            self.requests += 1
            self.host(key).requests += 1
            if reused:
                self.connections_reused += 1

    def failed(self, kind: Optional[str], pool_wait: Optional[float]) -> None:
        """An error of that kind (None: no error), and a wait for a connection (None: none)."""
        with self.lock:
            if kind is not None:
                self.errors[kind] += 1
            if pool_wait is not None:
                self.pool_waits.append(pool_wait)
                self.pool_wait_count += 1

    def pool_wait_ms(self) -> Dict[str, float]:
        with self.lock:
            waits = sorted(self.pool_waits)
            count = self.pool_wait_count
        if not waits:
            return {"count": count, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}

        def percentile(share: float) -> float:
            return waits[min(len(waits) - 1, int(share * len(waits)))] * 1000.0

        return {
            "count": count,
            "p50": percentile(0.50),
            "p95": percentile(0.95),
            "p99": percentile(0.99),
            "max": waits[-1] * 1000.0,
        }


class _Trace:
    """httpcore's ``trace`` extension for one attempt: when the pool handed it a connection (its
    first event), whether that connection was opened for it, and whether the request went out.

    Once the request goes out there is nothing more to learn, and the trace takes itself out of
    the request's ``extensions`` (httpcore looks it up again for each step, so the steps left,
    most of them, run untraced)."""

    __slots__ = ("connected_at", "opened", "sent", "extensions")

    def __init__(self) -> None:
        self.connected_at: Optional[float] = None
        self.opened = False
        self.sent = False
        self.extensions: Optional[Dict[str, Any]] = None

    def __call__(self, name: str, info: Dict[str, Any]) -> None:
        if self.connected_at is None:
            self.connected_at = time.monotonic()
        if name.endswith("connect_tcp.started"):
            self.opened = True
        elif name.endswith("send_request_headers.started"):
            self.sent = True
            if self.extensions is not None:
                self.extensions.pop("trace", None)

    async def asynchronous(self, name: str, info: Dict[str, Any]) -> None:
        self(name, info)


# ---- httpcore's pools (internals: see the module notes) -------------------------------------------


class _Connection:
    """One connection as the counting streams see it (a TLS stream replaces the plain one it
    wraps, and the two are one connection): counted open once and closed once."""

    __slots__ = ("counters", "open")

    def __init__(self, counters: _Counters, key: str) -> None:
        self.counters = counters
        self.open = True
        counters.opened(key)

    def close(self) -> None:
        if self.open:
            self.open = False
            self.counters.closed()


def _readable(sock: Any) -> bool:
    """Whether a read on ``sock`` would not wait (data, or the end of the stream); a socket
    without a descriptor is taken as ended."""
    descriptor = -1 if sock is None else sock.fileno()
    if descriptor < 0:
        return True
    if _poll is None:
        return bool(select.select([descriptor], [], [], 0)[0])
    poller = _poll()
    poller.register(descriptor, select.POLLIN)
    return bool(poller.poll(0))


_poll = getattr(select, "poll", None)


class _CountedStream:
    """A network stream of httpcore's, blocking or asyncio, that counts its connection closed
    once, whichever way it is closed; the rest (reads, writes, extra info) is the stream's own."""

    __slots__ = ("_stream", "_connection", "_socket", "read", "write")

    def __init__(self, stream: Any, connection: _Connection) -> None:
        self._stream = stream
        self._connection = connection
        self._socket: Any = None
        # Bound once: looked up through __getattr__, each read and write would first miss here.
        self.read = stream.read
        self.write = stream.write

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def get_extra_info(self, info: str) -> Any:
        # The pool asks each idle connection whether the server closed it ("is_readable") every
        # time it changes; anyio answers through a dict of every socket attribute it builds per
        # question (a getpeername() call included). The socket, kept, answers alone.
        if info != "is_readable":
            return self._stream.get_extra_info(info)
        if self._socket is None:
            self._socket = self._stream.get_extra_info("socket")
        return _readable(self._socket)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._connection.close()

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._connection.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> Any:
        # The TLS stream replaces this one on the same socket: one connection still. The backend
        # closes the socket of a failed handshake itself.
        try:
            upgraded = self._stream.start_tls(*args, **kwargs)
        except BaseException:
            self._connection.close()
            raise
        if inspect.isawaitable(upgraded):
            return self._upgraded(upgraded)
        return _CountedStream(upgraded, self._connection)

    async def _upgraded(self, upgrading: Awaitable[Any]) -> "_CountedStream":
        try:
            stream = await upgrading
        except BaseException:
            self._connection.close()
            raise
        return _CountedStream(stream, self._connection)


class _CountingBackend:
    """httpcore's network backend (blocking or asyncio) with each connection counted: opened when
    the socket connects, closed when its stream closes."""

    __slots__ = ("_backend", "_counters")

    def __init__(self, backend: Any, counters: _Counters) -> None:
        self._backend = backend
        self._counters = counters

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        opening = self._backend.connect_tcp(host, port, *args, **kwargs)
        return self._opened(opening, _host_key(host, port, ""))

    def connect_unix_socket(self, path: str, *args: Any, **kwargs: Any) -> Any:
        return self._opened(
            self._backend.connect_unix_socket(path, *args, **kwargs), f"unix:{path}"
        )

    def _opened(self, opening: Any, key: str) -> Any:
        if inspect.isawaitable(opening):
            return self._aopened(opening, key)
        return _CountedStream(opening, _Connection(self._counters, key))

    async def _aopened(self, opening: Awaitable[Any], key: str) -> _CountedStream:
        return _CountedStream(await opening, _Connection(self._counters, key))


def _pools(client: Any) -> List[Any]:
    """httpcore's connection pools behind an httpx client (its transport and its mounts)."""
    transports = [getattr(client, "_transport", None)]
    transports.extend(getattr(client, "_mounts", {}).values())
    return [pool for t in transports if (pool := getattr(t, "_pool", None)) is not None]


def _adapt_pools(client: Any, counters: _Counters) -> None:
    """Puts a counting network backend under each pool of ``client`` (the connections it opens
    and closes are counted as the sockets come and go) and gives the pool our assignment of
    requests to connections (``_Assignment``)."""
    for pool in _pools(client):
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, (httpcore.NetworkBackend, httpcore.AsyncNetworkBackend)):
            pool._network_backend = _CountingBackend(backend, counters)
        if all(hasattr(pool, name) for name in _Assignment.NEEDS):
            pool._assign_requests_to_connections = _Assignment(pool)


# How often the pool is swept for connections to drop or close when nothing else makes it.
_SWEEP_SECONDS = 1.0


class _Assignment:
    """httpcore's ``_assign_requests_to_connections`` for one pool (run by the pool under its
    lock each time a request joins or leaves it; the connections to close are returned for the
    pool to close after), with the same decisions at far less cost.

    httpcore's own first walks the whole pool: it drops closed connections, closes expired ones
    (past ``keepalive_expiry``, or closed by the server: a ``poll()`` of each idle socket) and,
    while the pool holds more than ``max_keepalive_connections``, idle ones, asking for the
    size of the pool anew for each idle connection; then, for each queued request, it lists
    every connection that could take it. At 512 connections kept alive that was most of a
    request's CPU. Here the sweep runs when the pool holds more than
    ``max_keepalive_connections`` (as httpcore's does then) and otherwise once per
    ``_SWEEP_SECONDS`` (an idle connection past its keep-alive that no request is given may stay
    open that much longer); in between, a connection is checked for expiry when it is about to
    be handed out (an expired one is never used, as with httpcore), closed connections are
    dropped when the pool is full, before it counts as full, and a queued request looks for the
    first connection that can take it rather than listing them all.

    The rest is httpcore's: each queued request, in order, gets the first connection that can
    take it, else a new one below ``max_connections``, else a new one in place of the first idle
    one, else waits. One difference: an HTTP/1.1 connection handed to a request that has not
    started on it yet is not handed to another one too. httpcore does, and the second request
    fails on it and queues again (one more pass), which at high concurrency, where requests wait
    for their turn on the event loop, is most of them; a blocking client shared by more threads
    than it has connections even saw requests fail ("Bad file descriptor"). HTTP/2 connections
    (``http2=True``) are shared as httpcore shares them.
    """

    # What is used of a pool; a pool without all of it keeps its own assignment.
    NEEDS = (
        "_assign_requests_to_connections",
        "_connections",
        "_requests",
        "_max_connections",
        "_max_keepalive_connections",
        "_http2",
        "create_connection",
    )

    __slots__ = ("_pool", "_next_sweep")

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._next_sweep = float("-inf")

    def __call__(self) -> List[Any]:
        pool = self._pool
        connections: List[Any] = pool._connections
        closing: List[Any] = []
        now = time.monotonic()
        if now >= self._next_sweep or len(connections) > pool._max_keepalive_connections:
            self._next_sweep = now + _SWEEP_SECONDS
            self._sweep(connections, closing)

        requests = pool._requests
        queued = [request for request in requests if request.connection is None]
        if not queued:
            return closing
        exclusive = not pool._http2
        # The connections handed to requests (None too, which is no connection).
        taken: Set[Any] = {request.connection for request in requests} if exclusive else set()
        for request in queued:
            origin = request.request.url.origin
            chosen = self._available(origin, connections, taken, closing)
            if chosen is None:
                if len(connections) >= pool._max_connections:
                    # Closed connections left for the sweep do not count.
                    connections[:] = [c for c in connections if not c.is_closed()]
                if len(connections) >= pool._max_connections:
                    idle = next((c for c in connections if c not in taken and c.is_idle()), None)
                    if idle is None:
                        if exclusive:
                            break  # no HTTP/1.1 connection is free: none for the next ones either
                        continue
                    connections.remove(idle)
                    closing.append(idle)
                chosen = pool.create_connection(origin)
                connections.append(chosen)
            request.assign_to_connection(chosen)
            if exclusive:
                taken.add(chosen)
        return closing

    def _sweep(self, connections: List[Any], closing: List[Any]) -> None:
        count = len(connections)
        keepalive = self._pool._max_keepalive_connections
        kept = []
        for connection in connections:
            if connection.is_closed():
                count -= 1
            elif connection.has_expired() or (count > keepalive and connection.is_idle()):
                count -= 1
                closing.append(connection)
            else:
                kept.append(connection)
        if count != len(connections):
            connections[:] = kept

    @staticmethod
    def _available(
        origin: Any, connections: List[Any], taken: Set[Any], closing: List[Any]
    ) -> Optional[Any]:
        """The first connection free for ``origin``; expired ones met on the way are closed."""
        index = 0
        while index < len(connections):
            connection = connections[index]
            if (
                connection in taken
                or not connection.is_available()
                or not connection.can_handle_request(origin)
            ):
                index += 1
            elif connection.has_expired():
                del connections[index]
                closing.append(connection)
            else:
                return connection
        return None


def _origin_key(connection: Any) -> str:
    origin: Any = getattr(connection, "_origin", None) or getattr(
        connection, "_remote_origin", None
    )
    try:
        scheme = origin.scheme.decode("ascii")
        return _host_key(origin.host.decode("ascii"), origin.port, scheme)
    except (AttributeError, UnicodeDecodeError):
        return "unknown"


def _pool_connections(client: Any) -> List[Tuple[str, bool]]:
    """``(host, idle)`` for each open connection of ``client``'s pools; one being opened is
    active (a request holds it)."""
    found = []
    for pool in _pools(client):
        for connection in list(getattr(pool, "connections", ())):
            try:
                if connection.is_closed():
                    continue
                idle = bool(connection.is_idle())
            except Exception:
                continue
            found.append((_origin_key(connection), idle))
    return found


def _take_expired(pool: Any, remove: bool = True, expired_only: bool = True) -> List[Any]:
    """The idle connections of ``pool`` past their keep-alive (or closed by the server), or with
    ``expired_only=False`` all of them, taken out of the pool (with ``remove``) for the caller
    to close."""
    lock = getattr(pool, "_optional_thread_lock", None)
    connections = getattr(pool, "_connections", None)
    if lock is None or not isinstance(connections, list):
        return []
    with lock:
        try:
            taken = [
                c for c in connections if c.is_idle() and (c.has_expired() or not expired_only)
            ]
        except Exception:
            return []
        if remove:
            for connection in taken:
                connections.remove(connection)
    return taken


def _close_connections(connections: List[Any]) -> None:
    for connection in connections:
        try:
            connection.close()
        except Exception:  # a connection that fails to close is closed enough
            pass


async def _aclose_connections(connections: List[Any]) -> None:
    for connection in connections:
        try:
            await connection.aclose()
        except Exception:  # a connection that fails to close is closed enough
            pass


async def _quietly(closing: Awaitable[Any]) -> None:
    try:
        await closing
    except Exception:  # closing is best effort: the peer may be gone already
        pass


def _no_cookies() -> CookieJar:
    # A client of an API is not a browser: a cookie one response sets is not sent back on the
    # next request (the native engine keeps none either).
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


class _NoCookies(httpx.Cookies):
    """The cookies of an httpx client that keeps none (see ``_no_cookies``) and does not look for
    any: httpx hands every response to ``extract_cookies``, which first builds a ``urllib``
    request and response for the cookie jar to read, whatever the jar's policy."""

    def __init__(self) -> None:
        super().__init__(_no_cookies())

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


def _keep_no_cookies(client: Any) -> None:
    # httpx publishes no way to set the client's Cookies object itself (its setter copies the
    # cookies into a new one); without the attribute the jar of ``_no_cookies`` still refuses.
    if isinstance(getattr(client, "_cookies", None), httpx.Cookies):
        client._cookies = _NoCookies()


# ---- the engine ---------------------------------------------------------------------------------------


class _Attempt:
    """One send of a request: when it started, its trace, its host and its place at the gate."""

    __slots__ = ("started", "trace", "key", "slot", "counted")

    def __init__(self, key: str) -> None:
        self.started = time.monotonic()
        self.trace = _Trace()
        self.key = key
        self.slot = _Slot(None)
        self.counted = False

    def pool_wait(self, timed_out: bool = False) -> Optional[float]:
        connected_at = self.trace.connected_at
        if connected_at is None:
            return time.monotonic() - self.started if timed_out else None
        return connected_at - self.started

    def count(self, counters: _Counters, kind: Optional[str] = None) -> None:
        """Counts the attempt once: as a request if it went out, and its error if it failed."""
        if self.counted:
            counters.failed(kind, None)
            return
        self.counted = True
        trace = self.trace
        if trace.sent:
            counters.sent(self.key, not trace.opened)
        counters.failed(kind, self.pool_wait(timed_out=kind == "pool_timeout"))


# An answer whose body is still to be read: the response, its attempt, the retries made, and
# when the first attempt started.
_Opened = Tuple[httpx.Response, _Attempt, int, float]


class HttpClient:
    """The fallback engine: the interface of ``fast_litellm._native.HttpClient`` over httpx."""

    def __init__(
        self,
        *,
        base_url: Optional[str],
        headers: Sequence[Tuple[str, str]],
        max_connections: int,
        max_keepalive_connections: int,
        keepalive_expiry: float,
        stream_buffer_size: int,
        connect_timeout: Optional[float],
        read_timeout: Optional[float],
        write_timeout: Optional[float],
        pool_timeout: Optional[float],
        max_retries: int,
        retry_on_status: Sequence[int],
        backoff_base: float,
        backoff_max: float,
        respect_retry_after: bool,
        max_concurrency: Optional[int],
        adaptive_concurrency: bool,
        http2: bool,
        gzip_threshold: Optional[int],
    ) -> None:
        if http2:
            try:
                import h2  # noqa: F401
            except ImportError:
                raise ImportError(
                    "http2=True on the fallback path needs the h2 package: pip install h2"
                ) from None
        self._base_url = None if base_url is None else _check_url(base_url, "base_url")
        self._headers = _encode_headers(headers)
        self._limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
        )
        self._max_connections = max_connections
        # A streamed body is handed over as httpcore reads it (up to 64 KiB at a time): waiting to
        # fill `stream_buffer_size` first would hold back events that have arrived.
        self._stream_buffer_size = stream_buffer_size
        self._timeout: TimeoutTuple = (connect_timeout, read_timeout, write_timeout, pool_timeout)
        self._max_retries = max_retries
        self._retry_on_status = frozenset(retry_on_status)
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._respect_retry_after = respect_retry_after
        self._concurrency = max_concurrency
        self._adaptive = adaptive_concurrency
        self._http2 = http2
        self._gzip_threshold = gzip_threshold
        self._closed = False
        self._reset()

    def _reset(self) -> None:
        """A fresh state: at construction, and in a forked child, where the parent's clients are
        dropped without being closed. Their sockets are the parent's: closing a connection could
        send a TLS close_notify or an HTTP/2 GOAWAY on the parent's behalf; the garbage collector
        only closes the child's copies of the descriptors, which touches nothing of the parent."""
        self._pid = os.getpid()
        self._lock = _fork.Lock()
        self._counters = _Counters()
        limit = self._concurrency or self._max_connections
        self._gate = _Gate(limit, self._adaptive) if self._concurrency or self._adaptive else None
        self._sync: Optional[httpx.Client] = None
        self._async: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]" = (
            weakref.WeakKeyDictionary()
        )
        self._tasks: Set["asyncio.Task[Any]"] = set()
        self._targets: Dict[str, Tuple[str, httpx.URL, str]] = {}
        self._expiring: "weakref.WeakSet[Any]" = weakref.WeakSet()
        # Clients closed while requests were in flight: ``(loop, client)``, the loop None for the
        # blocking one. Their busy connections finish their responses; closed with the last one.
        self._closing: List[Tuple[Optional[asyncio.AbstractEventLoop], Any]] = []

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            with self._lock:  # a _fork.Lock: free in the child, whoever held it in the parent
                if self._pid != os.getpid():
                    self._reset()

    # -- httpx clients --

    def _client_options(self) -> Dict[str, Any]:
        if self._closed:
            raise RuntimeError("the HTTP client is closed")
        connect, read, write, pool = self._timeout
        return {
            "limits": self._limits,
            "timeout": httpx.Timeout(connect=connect, read=read, write=write, pool=pool),
            "http2": self._http2,
            "follow_redirects": False,
            "cookies": _no_cookies(),
        }

    def _sync_client(self) -> httpx.Client:
        client = self._sync
        if client is None:
            with self._lock:
                client = self._sync
                if client is None:
                    client = httpx.Client(**self._client_options())
                    _adapt_pools(client, self._counters)
                    _keep_no_cookies(client)
                    self._sync = client
        elif self._closed:
            raise RuntimeError("the HTTP client is closed")
        return client

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async.get(loop)
            if client is None:
                self._drop_finished_loops()
                client = httpx.AsyncClient(**self._client_options())
                _adapt_pools(client, self._counters)
                _keep_no_cookies(client)
                self._async[loop] = client
            elif self._closed:
                raise RuntimeError("the HTTP client is closed")
        return client

    def _async_clients(self) -> List[Tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]]:
        """The async clients whose event loop is still open (the others are dropped: their
        connections went with their loop)."""
        with self._lock:
            self._drop_finished_loops()
            return list(self._async.items())

    def _drop_finished_loops(self) -> None:
        """Forgets the async clients of closed event loops (the caller holds ``_lock``): their
        connections went with their loop."""
        for loop in [loop for loop in self._async if loop.is_closed()]:
            del self._async[loop]

    def _run_on_loop(
        self, loop: asyncio.AbstractEventLoop, work: Callable[[], Coroutine[Any, Any, Any]]
    ) -> None:
        """Runs ``work()`` on ``loop`` (an asyncio connection can only be closed there): now if no
        loop runs in this thread, soon if it is this thread's loop or runs in another thread."""
        if loop.is_closed():
            return
        try:
            running: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(_quietly(work()))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif loop.is_running():
            asyncio.run_coroutine_threadsafe(_quietly(work()), loop)
        elif running is None:
            loop.run_until_complete(_quietly(work()))
        # Otherwise another loop runs in this thread while the owner is stopped: nothing can
        # run there now, and the connections are dropped with it.

    # -- requests --

    def _prepare(
        self,
        method: str,
        url: str,
        headers: Sequence[Tuple[str, str]],
        body: Optional[bytes],
        timeout: Optional[TimeoutTuple],
    ) -> Tuple[_Prepared, str]:
        if not isinstance(method, str):
            raise TypeError(f"method must be a str, not {type(method).__name__}")
        # A client of an API asks for the same few URLs again and again: each is worked out once
        # (a str subclass could compare equal to another URL: it is worked out each time).
        found = self._targets.get(url) if type(url) is str else None
        if found is None:
            found = self._target(url)
            if type(url) is str:
                if len(self._targets) >= _TARGETS_KEPT:
                    self._targets.clear()
                self._targets[url] = found
        target, parsed, key = found
        own = _encode_headers(headers)
        names = {name.lower() for name, _ in own}
        merged = [(name, value) for name, value in self._headers if name.lower() not in names]
        merged.extend(own)
        threshold = self._gzip_threshold
        if (
            threshold is not None
            and body is not None
            and len(body) >= threshold
            and not any(name.lower() == b"content-encoding" for name, _ in merged)
        ):
            body = gzip.compress(body, compresslevel=6, mtime=0)
            # The length changed: a Content-Length of the caller's would now be wrong.
            merged = [(n, v) for n, v in merged if n.lower() != b"content-length"]
            merged.append((b"content-encoding", b"gzip"))
        return _Prepared(
            method, target, parsed, merged, body, self._timeout if timeout is None else timeout
        ), key

    def _target(self, url: str) -> Tuple[str, httpx.URL, str]:
        """The absolute URL, as httpx parses it, and its host as the pool names it (an
        internationalised name in its ASCII form)."""
        target = _join_url(self._base_url, url)
        try:
            parsed = httpx.URL(target)
        except httpx.InvalidURL as exc:
            raise ValueError(f"invalid URL {target!r}: {exc}") from None
        return (
            target,
            parsed,
            _host_key(parsed.raw_host.decode("ascii"), parsed.port, parsed.scheme),
        )

    def _build(self, client: Any, prepared: _Prepared, attempt: _Attempt) -> Any:
        connect, read, write, pool = prepared.timeout
        waited = time.monotonic() - attempt.started
        if pool is not None:
            pool = max(pool - waited, 0.0)
        trace = attempt.trace
        request = client.build_request(
            prepared.method,
            prepared.address,
            headers=prepared.headers,
            content=prepared.body,
            extensions={
                "timeout": {"connect": connect, "read": read, "write": write, "pool": pool},
                # httpcore awaits the callback of an async client.
                "trace": trace.asynchronous if isinstance(client, httpx.AsyncClient) else trace,
            },
        )
        trace.extensions = request.extensions  # the dict httpcore reads (httpx copied ours)
        return request

    def _pool_timeout(self, prepared: _Prepared, attempt: _Attempt) -> errors.PoolTimeout:
        attempt.count(self._counters, "pool_timeout")
        return errors.PoolTimeout(
            f"no free place among {self._gate.limit if self._gate else '?'} concurrent "
            f"requests within the pool timeout of {prepared.timeout[3]} s "
            f"({prepared.method} {prepared.url})"
        )

    def _failed(self, prepared: _Prepared, attempt: _Attempt, exc: BaseException) -> Exception:
        """Our exception for an httpx one raised during ``attempt``, counted."""
        attempt.slot.release()
        kind, error = _translate(exc, prepared.method, prepared.url)
        attempt.count(self._counters, kind)
        if self._gate is not None and isinstance(error, _CONGESTION):
            self._gate.congested(attempt.started)
        return error

    def _answered(
        self, prepared: _Prepared, attempt: _Attempt, response: httpx.Response, retries: int
    ) -> Optional[float]:
        """Counts a response; the seconds to wait before retrying it, or None to return it."""
        attempt.count(self._counters)
        status = response.status_code
        if status == 429 and self._gate is not None:
            self._gate.congested(attempt.started)
        if status not in self._retry_on_status or retries >= self._max_retries:
            return None
        if self._respect_retry_after:
            values = response.headers.get_list("retry-after")
            asked = parse_retry_after(values[0], time.time()) if values else None
            if asked is not None:
                return asked if asked <= self._backoff_max else None
        return self._backoff(retries + 1)

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self._backoff_base, self._backoff_max, random.random())

    def _succeeded(self, attempt: _Attempt, status: int) -> None:
        if self._gate is not None and status != 429 and status < 500:
            self._gate.succeeded(time.monotonic() - attempt.started)

    def _enter(self) -> None:
        self._check_fork()
        if self._closed:
            raise RuntimeError("the HTTP client is closed")
        with self._counters.lock:
            self._counters.in_flight += 1

    def _leave(self) -> None:
        with self._counters.lock:
            self._counters.in_flight -= 1
            last = self._closed and self._counters.in_flight == 0
        if last:
            self._finish_close()

    # The steps of a request are written once, for both kinds of client: a generator yields each
    # piece of I/O as ``(what, argument)`` ("acquire" a place at the gate, "send" a request,
    # "read" a body and close the response, "sleep") and is sent its outcome, or thrown its
    # exception, by `_run` (blocking) or `_arun` (asyncio), which do nothing else.

    def _exchange(self, client: Any, prepared: _Prepared, key: str) -> _Steps[_Opened]:
        """Sends until the answer is final: the response (headers read), its attempt, the
        retries made and when the first attempt started."""
        started = time.monotonic()
        retries = 0
        while True:
            attempt = _Attempt(key)
            if self._gate is not None:
                if not (yield ("acquire", prepared.timeout[3])):
                    raise self._pool_timeout(prepared, attempt)
                attempt.slot = _Slot(self._gate)
            try:
                response = yield ("send", self._build(client, prepared, attempt))
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                error = self._failed(prepared, attempt, exc)
                if retries >= self._max_retries or not isinstance(error, _CONNECT_FAILURES):
                    raise error from exc
                wait: Optional[float] = self._backoff(retries + 1)
            except BaseException:
                attempt.slot.release()
                raise
            else:
                wait = self._answered(prepared, attempt, response, retries)
                if wait is None:
                    return response, attempt, retries, started
                try:
                    yield ("read", response)  # so that the connection can serve the retry
                except httpx.HTTPError:
                    pass  # the body of an answer that is retried does not matter
                finally:
                    attempt.slot.release()
            retries += 1
            with self._counters.lock:
                self._counters.retries += 1
            yield ("sleep", wait)

    def _request(self, client: Any, prepared: _Prepared, key: str) -> _Steps[_Finished]:
        response, attempt, retries, started = yield from self._exchange(client, prepared, key)
        try:
            content = yield ("read", response)
        except httpx.HTTPError as exc:
            raise self._failed(prepared, attempt, exc) from exc
        finally:
            attempt.slot.release()
        self._succeeded(attempt, response.status_code)
        return _finished(response, content, started, retries)

    def _stream(self, client: Any, prepared: _Prepared, key: str) -> _Steps[_Opened]:
        opened = yield from self._exchange(client, prepared, key)
        self._succeeded(opened[1], opened[0].status_code)
        return opened

    def _run(self, client: httpx.Client, steps: _Steps[_T]) -> _T:
        outcome: Any = None
        failure: Optional[BaseException] = None
        while True:
            try:
                what, argument = steps.send(outcome) if failure is None else steps.throw(failure)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            outcome, failure = None, None
            try:
                if what == "send":
                    outcome = client.send(argument, stream=True)
                elif what == "read":
                    try:
                        outcome = argument.read()
                    finally:
                        argument.close()
                elif what == "acquire":
                    assert self._gate is not None
                    outcome = self._gate.acquire(argument)
                else:
                    time.sleep(argument)
            except BaseException as exc:
                failure = exc

    async def _arun(self, client: httpx.AsyncClient, steps: _Steps[_T]) -> _T:
        outcome: Any = None
        failure: Optional[BaseException] = None
        while True:
            try:
                what, argument = steps.send(outcome) if failure is None else steps.throw(failure)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            outcome, failure = None, None
            try:
                if what == "send":
                    outcome = await client.send(argument, stream=True)
                elif what == "read":
                    try:
                        outcome = await argument.aread()
                    finally:
                        await argument.aclose()
                elif what == "acquire":
                    assert self._gate is not None
                    outcome = await self._gate.aacquire(argument)
                else:
                    await asyncio.sleep(argument)
            except BaseException as exc:
                failure = exc

    def request(
        self,
        method: str,
        url: str,
        headers: Sequence[Tuple[str, str]],
        body: Optional[bytes],
        timeout: Optional[TimeoutTuple],
    ) -> _Finished:
        prepared, key = self._prepare(method, url, headers, body, timeout)
        self._enter()
        try:
            client = self._sync_client()
            return self._run(client, self._request(client, prepared, key))
        finally:
            self._leave()

    async def arequest(
        self,
        method: str,
        url: str,
        headers: Sequence[Tuple[str, str]],
        body: Optional[bytes],
        timeout: Optional[TimeoutTuple],
    ) -> _Finished:
        prepared, key = self._prepare(method, url, headers, body, timeout)
        self._enter()
        try:
            client = self._async_client()
            return await self._arun(client, self._request(client, prepared, key))
        finally:
            self._leave()

    def stream(
        self,
        method: str,
        url: str,
        headers: Sequence[Tuple[str, str]],
        body: Optional[bytes],
        timeout: Optional[TimeoutTuple],
    ) -> "SyncStream":
        prepared, key = self._prepare(method, url, headers, body, timeout)
        self._enter()
        try:
            client = self._sync_client()
            opened = self._run(client, self._stream(client, prepared, key))
        except BaseException:
            self._leave()
            raise
        return SyncStream(self, prepared, *opened)

    async def astream(
        self,
        method: str,
        url: str,
        headers: Sequence[Tuple[str, str]],
        body: Optional[bytes],
        timeout: Optional[TimeoutTuple],
    ) -> "AsyncStream":
        prepared, key = self._prepare(method, url, headers, body, timeout)
        self._enter()
        try:
            client = self._async_client()
            opened = await self._arun(client, self._stream(client, prepared, key))
        except BaseException:
            self._leave()
            raise
        return AsyncStream(self, prepared, *opened)

    # -- the pool --

    def stats(self) -> Dict[str, Any]:
        self._check_fork()
        connections: List[Tuple[str, bool]] = []
        if self._sync is not None:
            connections.extend(_pool_connections(self._sync))
        for _, client in self._async_clients():
            connections.extend(_pool_connections(client))
        with self._lock:
            closing = list(self._closing)
        for _, client in closing:
            connections.extend(_pool_connections(client))
        counters = self._counters
        hosts: Dict[str, Dict[str, int]] = {}

        def host(key: str) -> Dict[str, int]:
            entry = hosts.get(key)
            if entry is None:
                entry = hosts[key] = {
                    "active_connections": 0,
                    "idle_connections": 0,
                    "requests": 0,
                    "connections_opened": 0,
                }
            return entry

        for key, idle in connections:
            host(key)["idle_connections" if idle else "active_connections"] += 1
        with counters.lock:
            for key, numbers in counters.hosts.items():
                entry = host(key)
                entry["requests"] = numbers.requests
                entry["connections_opened"] = numbers.connections_opened
            stats: Dict[str, Any] = {
                "native": False,
                "active_connections": sum(1 for _, idle in connections if not idle),
                "idle_connections": sum(1 for _, idle in connections if idle),
                "in_flight": counters.in_flight,
                # Requests always run on httpx's connections, never on a loop engine.
                "loop_engines": 0,
                "requests": counters.requests,
                "retries": counters.retries,
                "connections_opened": counters.connections_opened,
                "connections_reused": counters.connections_reused,
                "connections_closed": counters.connections_closed,
                "errors": dict(counters.errors),
            }
        stats["max_connections"] = self._max_connections
        stats["concurrency_limit"] = None if self._gate is None else self._gate.limit
        stats["pool_wait_ms"] = counters.pool_wait_ms()
        stats["hosts"] = hosts
        return stats

    def cleanup_expired(self) -> int:
        """Closes the idle connections past ``keepalive_expiry`` (and those the server closed);
        how many. Those of an event loop running in another thread are closed there, soon."""
        self._check_fork()
        closed = 0
        if self._sync is not None:
            for pool in _pools(self._sync):
                expired = _take_expired(pool)
                _close_connections(expired)
                closed += len(expired)
        for loop, client in self._async_clients():
            for pool in _pools(client):
                # Taken out and closed on their own loop; counted now, once.
                found = [c for c in _take_expired(pool, remove=False) if c not in self._expiring]
                if found:
                    self._expiring.update(found)
                    closed += len(found)
                    self._run_on_loop(loop, _expire_later(pool))
        return closed

    def close(self) -> None:
        """Closes the idle connections now and the busy ones when their response is over, as
        the native engine does (those of an event loop running in another thread there, soon);
        the client cannot be used again. Idempotent.

        httpx's own ``close`` would cut the responses still coming in, with errors such as
        ``Bad file descriptor`` or ``pop from an empty deque``."""
        busy, clients = self._mark_closed()
        for loop, client in clients:
            self._close_client(loop, client, idle_only=busy)

    async def aclose(self) -> None:
        """``close``, the connections of the running loop closed before it returns."""
        busy, clients = self._mark_closed()
        here = asyncio.get_running_loop()
        for loop, client in clients:
            if loop is here:
                await _quietly(_aclosing(client, idle_only=busy)())
            else:
                self._close_client(loop, client, idle_only=busy)

    def _close_client(
        self, loop: Optional[asyncio.AbstractEventLoop], client: Any, idle_only: bool
    ) -> None:
        """Closes ``client`` (its idle connections only, with ``idle_only``): the blocking one
        (``loop`` None) now, an async one on its loop."""
        if loop is None:
            _close_idle(client) if idle_only else client.close()
        else:
            self._run_on_loop(loop, _aclosing(client, idle_only))

    def _mark_closed(self) -> Tuple[bool, List[Tuple[Optional[asyncio.AbstractEventLoop], Any]]]:
        """Marks the client closed and takes its httpx clients: whether requests are in flight
        (then the clients wait in ``_closing`` for the last one, see ``_leave``), and the
        clients."""
        self._check_fork()
        with self._lock:
            self._closed = True
            clients: List[Tuple[Optional[asyncio.AbstractEventLoop], Any]] = []
            if self._sync is not None:
                clients.append((None, self._sync))
            self._sync = None
            self._drop_finished_loops()
            clients.extend(self._async.items())
            self._async.clear()
            with self._counters.lock:
                busy = self._counters.in_flight > 0
                if busy:
                    self._closing.extend(clients)
        return busy, clients

    def _finish_close(self) -> None:
        """Closes the clients ``close`` left to their last request (now over)."""
        with self._lock:
            clients, self._closing = self._closing, []
        for loop, client in clients:
            self._close_client(loop, client, idle_only=False)


def _close_idle(client: httpx.Client) -> None:
    for pool in _pools(client):
        _close_connections(_take_expired(pool, expired_only=False))


def _aclosing(
    client: httpx.AsyncClient, idle_only: bool
) -> Callable[[], Coroutine[Any, Any, None]]:
    """What closes ``client`` on its loop: all of it, or with ``idle_only`` its idle
    connections."""

    async def close_idle() -> None:
        for pool in _pools(client):
            await _aclose_connections(_take_expired(pool, expired_only=False))

    return close_idle if idle_only else client.aclose


def _expire_later(pool: Any) -> Callable[[], Coroutine[Any, Any, None]]:
    async def expire() -> None:
        await _aclose_connections(_take_expired(pool))

    return expire


def _finished(response: httpx.Response, content: bytes, started: float, retries: int) -> _Finished:
    return (
        response.status_code,
        _received_headers(response),
        content,
        time.monotonic() - started,
        retries,
        str(response.url),
        response.http_version,
    )


# ---- streams ----------------------------------------------------------------------------------------


# The native engine's message for a response read in a child forked after it was opened.
FORKED_STREAM = (
    "this response was opened before os.fork(); only the process that opened it can read it"
)


class _Stream:
    """A response whose body is read as it comes: the parts both kinds share."""

    def __init__(
        self,
        engine: HttpClient,
        prepared: _Prepared,
        response: httpx.Response,
        attempt: _Attempt,
        retries: int,
        started: float,
    ) -> None:
        now = time.monotonic()
        self.status_code = response.status_code
        self.headers = _received_headers(response)
        self.url = str(response.url)
        self.http_version = response.http_version
        self.retries = retries
        # Seconds to the response headers; the times below are counted from the same start.
        self.elapsed = now - started
        self.time_to_first_byte: Optional[float] = None
        self.time_to_first_event: Optional[float] = None
        self._engine = engine
        self._prepared = prepared
        self._response = response
        self._attempt = attempt
        self._started = started
        self._decoder = SseDecoder()
        self._done = False
        self._pid = os.getpid()

    def _check_process(self) -> None:
        """A response opened before ``fork()`` is the parent's to read, as on the native engine
        (reading the connection both processes share would split the body between them)."""
        if self._pid != os.getpid():
            # Every read says so (not a clean end after the first), until the stream is closed.
            raise RuntimeError(FORKED_STREAM)

    def _received(self, chunk: bytes) -> bytes:
        if self.time_to_first_byte is None:
            self.time_to_first_byte = time.monotonic() - self._started
        return chunk

    def _parsed(self, events: List[Event]) -> List[Event]:
        if self.time_to_first_event is None:
            self.time_to_first_event = time.monotonic() - self._started
        return events

    def _finish(self) -> bool:
        """Gives back the stream's place in the pool once; False if already done, or if this is
        a child forked since it was opened (nothing of the parent's is touched: its pool, its
        connection)."""
        if self._done or self._pid != os.getpid():
            self._done = True
            return False
        self._done = True
        self._attempt.slot.release()
        self._engine._leave()
        return True

    def _failed(self, exc: BaseException) -> Exception:
        error = self._engine._failed(self._prepared, self._attempt, exc)
        self.close()
        return error

    def close(self) -> None:
        raise NotImplementedError


class SyncStream(_Stream):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._chunks: Iterator[bytes] = self._response.iter_bytes()

    def read_chunk(self) -> Optional[bytes]:
        """The next piece of the body, or None at its end."""
        if not self._done:
            self._check_process()
        while not self._done:
            try:
                chunk = next(self._chunks, None)
            except httpx.HTTPError as exc:
                raise self._failed(exc) from exc
            if chunk is None:
                self.close()
                return None
            if chunk:
                return self._received(chunk)
        return None

    def read_events(self) -> Optional[List[Event]]:
        """The events completed by the next piece(s) of the body (never an empty list), or None
        at its end."""
        while True:
            chunk = self.read_chunk()
            if chunk is None:
                return None
            events = self._decoder.feed(chunk)
            if events:
                return self._parsed(events)

    def close(self) -> None:
        if self._finish():
            self._response.close()


class AsyncStream(_Stream):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._loop = asyncio.get_running_loop()
        self._chunks: AsyncIterator[bytes] = self._response.aiter_bytes()

    async def aread_chunk(self) -> Optional[bytes]:
        if not self._done:
            self._check_process()
        while not self._done:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                await self.aclose()
                return None
            except httpx.HTTPError as exc:
                raise self._failed(exc) from exc
            if chunk:
                return self._received(chunk)
        return None

    async def aread_events(self) -> Optional[List[Event]]:
        while True:
            chunk = await self.aread_chunk()
            if chunk is None:
                return None
            events = self._decoder.feed(chunk)
            if events:
                return self._parsed(events)

    def close(self) -> None:
        """Gives the connection back: at once on this loop's next turn (an asyncio connection
        is closed by its own loop), whatever thread calls."""
        if self._finish():
            self._engine._run_on_loop(self._loop, self._response.aclose)

    async def aclose(self) -> None:
        if self._finish():
            await self._response.aclose()
