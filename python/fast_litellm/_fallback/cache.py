"""The pure-Python twin of the native response cache (``src/cache``): the same canonical keys
(byte for byte, see ``src/cache/key.rs``), the same LRU order, the same time-to-live rule and the
same counters, on an ``OrderedDict`` under a lock."""

from __future__ import annotations

import hashlib
import struct
import sys
import time
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

from .. import _fork

__all__ = ["IGNORED_PARAMETERS", "MAX_DEPTH", "ResponseCache", "cache_key"]

IGNORED_PARAMETERS = ("stream", "user")
MAX_DEPTH = 64
PREFIX = b"fast_litellm.cache.v1\0"
NEVER = 2**64 - 1
_TWO_63 = 9_223_372_036_854_775_808.0
_QUIET_NAN = struct.pack(">Q", 0x7FF8000000000000)


def _length(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _write(out: bytearray, obj: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"a cache key cannot nest deeper than {MAX_DEPTH} levels")
    if obj is None:
        out += b"n"
    elif isinstance(obj, str):
        data = str.encode(obj, "utf-8", "surrogatepass")
        out += b"s" + _length(len(data)) + data
    elif isinstance(obj, bool):
        out += b"T" if obj else b"F"
    elif isinstance(obj, int):
        out += b"i" + int.__repr__(obj).encode() + b";"
    elif isinstance(obj, float):
        value = float(obj)
        if value == value and abs(value) < _TWO_63 and value.is_integer():
            out += b"i" + str(int(value)).encode() + b";"
        elif value != value:
            out += b"d" + _QUIET_NAN
        else:
            out += b"d" + struct.pack(">d", value)
    elif isinstance(obj, dict):
        _write_map(out, obj, depth, top=False)
    elif isinstance(obj, (list, tuple)):
        out += b"l" + _length(len(obj))
        for item in obj:
            _write(out, item, depth + 1)
    elif isinstance(obj, bytes):
        out += b"b" + _length(len(obj)) + bytes(obj)
    else:
        raise TypeError(
            f"a {type(obj).__name__} cannot be part of a cache key (use str, int, float, bool, "
            "None, bytes, list, tuple or dict)"
        )


def _write_map(out: bytearray, obj: Dict[Any, Any], depth: int, top: bool) -> None:
    pairs: List[Tuple[bytes, bytes]] = []
    for key, value in dict.items(obj):
        if top and isinstance(key, str) and str.__str__(key) in IGNORED_PARAMETERS:
            continue
        k, v = bytearray(), bytearray()
        _write(k, key, depth + 1)
        _write(v, value, depth + 1)
        pairs.append((bytes(k), bytes(v)))
    pairs.sort()
    out += b"m" + _length(len(pairs))
    for key_bytes, value_bytes in pairs:
        out += key_bytes
        out += value_bytes


def cache_key(request: Any) -> str:
    """The canonical key of a request dict: 64 hex digits (see ``src/cache/key.rs``)."""
    if not isinstance(request, dict):
        raise TypeError(
            "a cache key is made from a request dict (model, messages, parameters), not a "
            f"{type(request).__name__}"
        )
    out = bytearray()
    _write_map(out, request, 0, top=True)
    return hashlib.sha256(PREFIX + bytes(out)).hexdigest()


def _key_of(key: Any) -> str:
    if isinstance(key, str):
        try:
            str.encode(key, "utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                "a cache key must be valid Unicode text (it holds a lone surrogate)"
            ) from None
        return str.__str__(key)
    if isinstance(key, dict):
        return cache_key(key)
    raise TypeError(f"a cache key is a str or a request dict, not a {type(key).__name__}")


def _nonneg_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value < 2**64:
        raise ValueError(f"{what} must be an int >= 0, got {value}")
    return int(value)


def _seconds_ns(value: Any, what: str) -> int:
    """Seconds (int or float, not bool) as whole nanoseconds, truncated as the native cache
    truncates them (``(seconds * 1e9) as u64``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"{what} must be a finite number of seconds >= 0, got {value!r}")
    nanoseconds = seconds * 1e9
    # Beyond the largest count (infinite for 1e300 seconds): never, as the native cast saturates.
    return NEVER if nanoseconds >= NEVER else int(nanoseconds)


def _size_of(value: Any) -> int:
    if isinstance(value, str):
        return len(str.encode(value, "utf-8", "surrogatepass"))
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    return int(sys.getsizeof(value))


class ResponseCache:
    """``ResponseCache(max_entries, ttl_seconds=None, max_bytes=None, *, clock=None)``, the
    signature of the native class (see ``fast_litellm.cache.ResponseCache`` for the public one)."""

    def __init__(
        self,
        max_entries: int,
        ttl_seconds: Optional[float] = None,
        max_bytes: Optional[int] = None,
        *,
        clock: Any = None,
    ) -> None:
        self._max_entries = _nonneg_int(max_entries, "max_entries")
        self._max_bytes = None if max_bytes is None else _nonneg_int(max_bytes, "max_bytes")
        self._ttl_ns = NEVER if ttl_seconds is None else _seconds_ns(ttl_seconds, "ttl_seconds")
        if self._max_entries == 0:
            raise ValueError("max_entries must be >= 1, got 0")
        if self._max_bytes == 0:
            raise ValueError("max_bytes must be >= 1, got 0")
        if clock is not None and not callable(getattr(clock, "now_ns", None)):
            raise TypeError(
                "clock must be a ManualClock (or have a now_ns() method), not "
                f"{type(clock).__name__}"
            )
        self._clock = clock
        self._origin = time.monotonic_ns()
        # key -> (value, expires_at, size)
        self._entries: "OrderedDict[str, Tuple[Any, int, int]]" = OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0
        self._expirations = 0
        # fork() waits for an update in progress: a child gets a whole LRU order and byte total
        # (and a free lock: a plain one held by another thread at the fork stayed held for ever).
        self._lock = _fork.StateLock()

    def _now(self) -> int:
        if self._clock is None:
            return time.monotonic_ns() - self._origin
        return int(self._clock.now_ns())

    def get(self, key: Any, default: Any = None) -> Any:
        # A plain ASCII str is its own key (nothing to check); a miss reads no clock. The first
        # lookup runs without the lock (one dict probe is atomic): a miss then only counts itself.
        if key.__class__ is not str or not key.isascii():
            key = _key_of(key)
        entry = self._entries.get(key)
        if entry is None:
            with self._lock:
                self._misses += 1
            return default
        # Only an entry that can expire reads the clock: the monotonic one under the lock, a
        # test's clock (Python code) before it.
        clock = self._clock
        now = None if clock is None else int(clock.now_ns())
        removed = None
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and (
                entry[1] == NEVER
                or (time.monotonic_ns() - self._origin if now is None else now) < entry[1]
            ):
                self._entries.move_to_end(key)
                self._hits += 1
                return entry[0]
            self._misses += 1
            if entry is not None:
                removed = self._entries.pop(key)
                self._bytes -= entry[2]
                self._expirations += 1
        del removed  # dropped outside the lock, as the native cache does
        return default

    def set(
        self, key: Any, value: Any, *, ttl: Optional[float] = None, size: Optional[int] = None
    ) -> bool:
        key = _key_of(key)
        ttl_ns = self._ttl_ns if ttl is None else _seconds_ns(ttl, "ttl")
        if size is not None:
            size = _nonneg_int(size, "size")
        elif self._max_bytes is not None:
            size = _size_of(value)
        else:
            size = 0
        now = self._now()
        expires_at = NEVER if ttl_ns == NEVER else min(now + ttl_ns, NEVER)
        removed: List[Any] = []
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
                removed.append(old[0])
            if self._max_bytes is not None and size > self._max_bytes:
                return False
            tracked = size if self._max_bytes is not None else 0
            self._bytes += tracked
            self._entries[key] = (value, expires_at, tracked)
            while len(self._entries) > self._max_entries or (
                self._max_bytes is not None and self._bytes > self._max_bytes
            ):
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted[2]
                self._evictions += 1
                removed.append(evicted[0])
        return True

    def delete(self, key: Any) -> bool:
        key = _key_of(key)
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is None:
                return False
            self._bytes -= entry[2]
        return True

    def cleanup(self) -> int:
        now = self._now()
        with self._lock:
            expired = [k for k, e in self._entries.items() if now >= e[1]]
            for k in expired:
                entry = self._entries.pop(k)
                self._bytes -= entry[2]
                self._expirations += 1
        return len(expired)

    def clear(self) -> None:
        with self._lock:
            removed = self._entries
            self._entries = OrderedDict()
            self._bytes = 0
        del removed

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> List[str]:
        """The keys from least to most recently used."""
        with self._lock:
            return list(self._entries)

    def stats(self) -> Dict[str, Any]:
        with self._lock:
            return {
                "entries": len(self._entries),
                "bytes": self._bytes,
                "hits": self._hits,
                "misses": self._misses,
                "evictions": self._evictions,
                "expirations": self._expirations,
                "max_entries": self._max_entries,
                "max_bytes": self._max_bytes,
                "ttl_seconds": None if self._ttl_ns == NEVER else self._ttl_ns / 1e9,
            }
