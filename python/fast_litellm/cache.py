"""``ResponseCache``: an LRU cache of model responses with a time to live, keyed by a canonical
hash of the request.

    cache = ResponseCache(max_entries=10_000, ttl_seconds=300)
    request = {"model": "gpt-4o", "messages": messages, "temperature": 0}
    response = cache.get(request)
    if response is None:
        response = litellm.completion(**request)
        cache.set(request, response)

A key is a request dict (model, messages and parameters, hashed canonically: the order of dict
keys does not matter, and ``stream`` and ``user`` are left out) or a str (used as it is, such as a
key from ``cache_key(request)``). Path choice (feature ``CACHE``): made once per cache object,
when it is built; the native cache keeps Python objects in a Rust LRU (``src/cache``), the
fallback in an ``OrderedDict``, with the same answers.
"""

from __future__ import annotations

import weakref
from typing import Any, Dict, List, Optional

from . import _flags
from ._fallback import cache as _fallback

__all__ = ["IGNORED_PARAMETERS", "ResponseCache", "cache_key", "health_probe"]

IGNORED_PARAMETERS = _fallback.IGNORED_PARAMETERS
_state = _flags.feature("CACHE")
_native = _flags.native
_caches: "weakref.WeakSet[ResponseCache]" = weakref.WeakSet()


def cache_key(request: Dict[str, Any]) -> str:
    """The canonical key of a request dict (64 hex digits): equal for requests that differ only
    in the order of dict keys, in ``stream`` or in ``user``."""
    return _flags.feature("CACHE").run(_key_side, "cache_key", request)


def _key_side(native: bool) -> Any:
    return _native if native else _fallback


_state.operations.update(cache_key="cache_key")


class ResponseCache:
    """An LRU cache with a time to live.

    ``ResponseCache(max_entries, ttl_seconds=None, max_bytes=None, *, clock=None)``

    - ``max_entries``: entries kept at most; the least recently used goes first.
    - ``ttl_seconds``: how long an entry answers after it was set (None: until evicted). An
      expired entry answers a miss and is removed when asked for, evicted, or by ``cleanup()``.
    - ``max_bytes``: a bound on the values' sizes as well: the UTF-8 length of a str, the length
      of bytes, ``sys.getsizeof`` of anything else (shallow: pass ``size=`` to ``set`` for
      nested responses). A value larger than the bound on its own is not stored.
    - ``clock``: a ``ManualClock`` for tests (default: monotonic time).

    ``get(key, default=None)``, ``set(key, value, *, ttl=None, size=None)`` (returns whether it
    was stored), ``delete(key)``, ``cleanup()``, ``clear()``, ``len(cache)``, ``stats()``.
    """

    def __init__(
        self,
        max_entries: int,
        ttl_seconds: Optional[float] = None,
        max_bytes: Optional[int] = None,
        *,
        clock: Any = None,
    ) -> None:
        native = _native is not None and _state.choose()
        self._impl: Any
        if native:
            assert _native is not None
            self._impl = _native.ResponseCache(max_entries, ttl_seconds, max_bytes, clock=clock)
        else:
            self._impl = _fallback.ResponseCache(max_entries, ttl_seconds, max_bytes, clock=clock)
        self.implementation = "native" if native else "fallback"
        path = self.implementation
        if native and not _flags.timing.python:
            # The hot methods are the implementation's own: no Python frame of ours per call (the
            # native cache records itself).
            self.get = self._impl.get  # type: ignore[method-assign]
            self.set = self._impl.set  # type: ignore[method-assign]
        else:
            self.get = _flags.timed_method(self._impl.get, "cache_get", path)  # type: ignore[method-assign]
            self.set = _flags.timed_method(self._impl.set, "cache_set", path)  # type: ignore[method-assign]
        _caches.add(self)

    def get(self, key: Any, default: Any = None) -> Any:
        """The value stored under ``key`` (a request dict or a str), or ``default``."""
        return self._impl.get(key, default)

    def set(
        self, key: Any, value: Any, *, ttl: Optional[float] = None, size: Optional[int] = None
    ) -> bool:
        """Stores ``value`` under ``key`` as the most recently used entry; ``ttl`` (seconds)
        overrides the cache's, ``size`` the size counted against ``max_bytes``."""
        return bool(self._impl.set(key, value, ttl=ttl, size=size))

    def get_or_none(self, key: Any) -> Any:
        return self.get(key)

    def delete(self, key: Any) -> bool:
        """Removes ``key``; whether it was there."""
        return bool(self._impl.delete(key))

    def cleanup(self) -> int:
        """Removes every expired entry; how many."""
        return int(self._impl.cleanup())

    def clear(self) -> None:
        """Removes every entry (the counters stay)."""
        self._impl.clear()

    def keys(self) -> List[str]:
        """The keys held, from least to most recently used."""
        return list(self._impl.keys())

    def __len__(self) -> int:
        return len(self._impl)

    def stats(self) -> Dict[str, Any]:
        """``entries``, ``bytes`` (tracked with ``max_bytes``), ``hits``, ``misses``,
        ``hit_rate`` (hits / lookups, 0.0 before any), ``evictions``, ``expirations``, the
        bounds and the ``implementation``."""
        stats = dict(self._impl.stats())
        lookups = stats["hits"] + stats["misses"]
        stats["hit_rate"] = stats["hits"] / lookups if lookups else 0.0
        stats["implementation"] = self.implementation
        return stats

    def __repr__(self) -> str:
        s = self._impl.stats()
        return (
            f"ResponseCache(max_entries={s['max_entries']}, ttl_seconds={s['ttl_seconds']}, "
            f"max_bytes={s['max_bytes']}, implementation={self.implementation!r})"
        )


def live_cache_stats() -> List[Dict[str, Any]]:
    """``stats()`` of every cache alive (for ``get_recommendations()``)."""
    return [cache.stats() for cache in list(_caches)]


_PROBE_REQUEST = {
    "model": "gpt-4o",
    "messages": [{"role": "user", "content": "héllo"}],
    "temperature": 0.0,
    "stream": True,
}


def health_probe() -> Optional[str]:
    """A native cache on a manual clock: LRU order, expiry and the canonical key must be the
    fallback's. None when right, else what was wrong."""
    assert _native is not None
    clock = _native.ManualClock()
    cache = _native.ResponseCache(2, 10, clock=clock)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.get("a")
    cache.set("c", 3)  # evicts b
    clock.advance(10)
    got = (cache.get("a"), cache.get("b"), cache.keys())
    if got != (None, None, ["c"]):
        return f"native cache answered {got!r}, expected (None, None, ['c'])"
    native_key = _native.cache_key(_PROBE_REQUEST)
    expected = _fallback.cache_key(_PROBE_REQUEST)
    if native_key != expected:
        return f"native cache key {native_key} != expected {expected}"
    return None
