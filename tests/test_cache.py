"""ResponseCache: LRU, time to live on a manual clock, byte bound, counters, canonical keys, bad
input, threads; the native cache and the fallback agree call for call."""

from __future__ import annotations

import math
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fast_litellm
from fast_litellm import _flags
from fast_litellm._fallback import cache as fallback_cache
from fast_litellm._fallback.ratelimit import ManualClock as FallbackClock
from fast_litellm.cache import ResponseCache, cache_key

native = _flags.native
needs_native = pytest.mark.skipif(native is None, reason="native module unavailable")

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def clock():
    return native.ManualClock() if native is not None else FallbackClock()


@pytest.fixture
def make(path, clock):
    """Builds caches on `path` (native or fallback) on the manual clock."""

    def build(max_entries=3, ttl_seconds=None, max_bytes=None):
        cache = ResponseCache(max_entries, ttl_seconds, max_bytes, clock=clock)
        assert cache.implementation == path
        return cache

    return build


def test_least_recently_used_entries_go_first(make):
    cache = make(3)
    for key in "abc":
        assert cache.set(key, key.upper()) is True
    assert cache.get("a") == "A"  # a becomes the most recent
    cache.set("d", "D")  # evicts b
    assert cache.get("b") is None
    assert cache.get("b", "missing") == "missing"
    assert cache.keys() == ["c", "a", "d"]
    cache.set("c", "C2")  # replacing makes it the most recent, evicts nothing
    assert cache.keys() == ["a", "d", "c"] and len(cache) == 3
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["evictions"], stats["entries"]) == (1, 2, 1, 3)
    assert stats["hit_rate"] == pytest.approx(1 / 3)
    assert cache.delete("a") is True and cache.delete("a") is False
    cache.clear()
    assert len(cache) == 0 and cache.stats()["hits"] == 1


def test_entries_expire_on_the_clock(make, clock):
    cache = make(10, ttl_seconds=30)
    cache.set("a", 1)
    clock.advance(29.999)
    assert cache.get("a") == 1
    clock.advance(0.001)
    assert cache.get("a") is None
    assert cache.stats()["expirations"] == 1 and len(cache) == 0
    cache.set("short", 1, ttl=1)
    cache.set("long", 2, ttl=100)
    cache.set("default", 3)
    clock.advance(31)
    assert cache.cleanup() == 2
    assert cache.keys() == ["long"]
    never = make(10)
    never.set("x", 1)
    clock.advance(10**6)
    assert never.get("x") == 1
    assert never.stats()["ttl_seconds"] is None and cache.stats()["ttl_seconds"] == 30


def test_bounds_at_the_largest_sizes_and_times(make):
    # Two sizes of up to 2**64 - 1 add up past 64 bits before the older is evicted; a time to
    # live of 1e300 s is beyond the clock's range: never.
    cache = make(100, max_bytes=2**64 - 1)
    assert cache.set("a", "x", size=2**64 - 1) is True
    assert cache.set("b", "y", size=5) is True
    assert cache.keys() == ["b"] and cache.stats()["bytes"] == 5
    assert cache.stats()["evictions"] == 1
    forever = make(10, ttl_seconds=1e300)
    assert forever.stats()["ttl_seconds"] is None
    assert forever.set("k", "v", ttl=1e300) is True and forever.get("k") == "v"


def test_a_byte_bound_evicts_by_size(make):
    cache = make(100, max_bytes=10)
    cache.set("a", "1234")
    cache.set("b", b"1234")
    cache.set("c", "é" * 2)  # 4 UTF-8 bytes
    assert cache.keys() == ["b", "c"] and cache.stats()["bytes"] == 8
    assert cache.set("big", "x" * 11) is False
    assert cache.get("big") is None
    assert cache.set("b", {"nested": "response"}, size=6) is True  # replaces b's 4 bytes
    assert cache.keys() == ["c", "b"] and cache.stats()["bytes"] == 10
    cache.set("d", "x")
    assert cache.keys() == ["b", "d"] and cache.stats()["bytes"] == 7
    assert cache.stats()["evictions"] == 2


def test_requests_are_keys(make):
    cache = make(10)
    request = {"model": "gpt-4o", "messages": MESSAGES, "temperature": 0.2, "stream": True}
    cache.set(request, "Paris")
    same = {"temperature": 0.2, "messages": MESSAGES, "model": "gpt-4o", "user": "someone"}
    assert cache.get(same) == "Paris"
    assert cache.get(cache_key(same)) == "Paris"
    assert cache.get({**same, "temperature": 0.3}) is None
    assert (
        cache.get({**same, "messages": [{"content": MESSAGES[0]["content"], "role": "user"}]})
        == "Paris"
    )


def test_canonical_keys(path):
    base = {"model": "m", "messages": MESSAGES, "n": 1}
    key = cache_key(base)
    assert len(key) == 64 and int(key, 16) >= 0
    assert cache_key({"n": 1, "messages": MESSAGES, "model": "m"}) == key
    assert cache_key({**base, "stream": False, "user": "u"}) == key
    assert cache_key({**base, "n": 1.0}) == key  # a provider reads 1 and 1.0 alike
    assert cache_key({**base, "n": 2}) != key
    assert cache_key({**base, "n": "1"}) != key
    assert cache_key({**base, "n": True}) != key
    assert cache_key({**base, "tools": None}) != key
    assert cache_key({**base, "messages": tuple(MESSAGES)}) == key
    # `stream` and `user` are ignored only at the top, not inside messages.
    inner = [{"role": "user", "content": "x", "user": "a"}]
    assert cache_key({"messages": inner}) != cache_key(
        {"messages": [{"role": "user", "content": "x"}]}
    )
    assert cache_key({"x": math.nan}) == cache_key({"x": -math.nan})
    assert cache_key({"x": 2**70}) != cache_key({"x": 2**70 + 1})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=True)
    | st.text(st.characters(codec="utf-8"), max_size=8)
    | st.binary(max_size=4),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=4) | st.integers(-3, 3), children, max_size=4)
    ),
    max_leaves=20,
)


@needs_native
@given(
    request=st.dictionaries(
        st.sampled_from(["model", "messages", "stream", "user", "n", "x"]), json_values
    )
)
def test_native_and_fallback_keys_agree(request):
    assert native.cache_key(request) == fallback_cache.cache_key(request)
    # Lone surrogates are written as Python's surrogatepass writes them, on both paths.
    odd = {**request, "x": ["\ud800", "a\udfffb", "\U0001f600"]}
    assert native.cache_key(odd) == fallback_cache.cache_key(odd)
    # Reordering the top level changes nothing.
    assert native.cache_key(dict(reversed(list(request.items())))) == native.cache_key(request)


_operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("set"),
            st.sampled_from("abcdef"),
            st.integers(0, 50),
            st.sampled_from([None, 0, 1, 5]),
        ),
        st.tuples(st.just("get"), st.sampled_from("abcdefg")),
        st.tuples(st.just("delete"), st.sampled_from("abc")),
        st.tuples(st.just("advance"), st.integers(0, 4)),
        st.tuples(st.just("cleanup")),
    ),
    max_size=80,
)


@needs_native
@given(
    operations=_operations,
    max_entries=st.integers(1, 5),
    ttl=st.sampled_from([None, 0, 2, 3.5]),
    max_bytes=st.sampled_from([None, 1, 20, 60]),
)
def test_native_and_fallback_caches_agree(operations, max_entries, ttl, max_bytes):
    clock = native.ManualClock()
    caches = [
        native.ResponseCache(max_entries, ttl, max_bytes, clock=clock),
        fallback_cache.ResponseCache(max_entries, ttl, max_bytes, clock=clock),
    ]
    for op in operations:
        if op[0] == "advance":
            clock.advance(op[1])
            continue
        answers = []
        for cache in caches:
            if op[0] == "set":
                answers.append(cache.set(op[1], "v" * op[2], ttl=op[3]))
            elif op[0] == "get":
                answers.append(cache.get(op[1]))
            elif op[0] == "delete":
                answers.append(cache.delete(op[1]))
            else:
                answers.append(cache.cleanup())
        assert answers[0] == answers[1], op
        assert caches[0].keys() == caches[1].keys()
    assert caches[0].stats() == caches[1].stats()
    assert len(caches[0]) == len(caches[1])


def test_bad_input_is_refused(make, path, clock):
    for bad in (0, -1):
        with pytest.raises(ValueError):
            make(bad)
    for bad in ("3", 2.5, True, None):
        with pytest.raises(TypeError):
            make(bad)
    with pytest.raises(ValueError):
        make(3, max_bytes=0)
    for bad in (-1, math.nan, math.inf):
        with pytest.raises(ValueError):
            make(3, ttl_seconds=bad)
    with pytest.raises(TypeError):
        make(3, ttl_seconds="60")
    with pytest.raises(TypeError):
        ResponseCache(3, clock=lambda: 0.0)
    cache = make(3)
    with pytest.raises(TypeError):
        cache.get(["model"])
    with pytest.raises(TypeError):
        cache.set(42, "v")
    with pytest.raises(ValueError):
        cache.set("lone \ud800 surrogate", "v")
    with pytest.raises(TypeError, match="cannot be part of a cache key"):
        cache.get({"model": "m", "messages": [object()]})
    with pytest.raises(TypeError):
        cache.set("k", "v", ttl="1")
    with pytest.raises(ValueError):
        cache.set("k", "v", ttl=-1)
    with pytest.raises(ValueError):
        cache.set("k", "v", size=-1)
    deep: list = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ValueError, match="deeper"):
        cache_key({"messages": deep})
    with pytest.raises(TypeError):
        cache_key("not a dict")  # type: ignore[arg-type]
    assert len(cache) == 0


def test_threads_share_one_cache(make):
    cache = make(64)
    gets = 2000

    def work(worker: int) -> None:
        for i in range(gets):
            key = f"k{(i * 7 + worker) % 100}"
            if cache.get(key) is None:
                cache.set(key, i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = cache.stats()
    assert stats["hits"] + stats["misses"] == 4 * gets
    assert stats["entries"] == len(cache) <= 64
    # A miss is followed by a set; two threads missing the same key both set it (one replaces).
    assert stats["evictions"] <= stats["misses"] - stats["entries"]


def test_cache_calls_are_monitored(make, path):
    from fast_litellm import monitoring

    monitoring.reset_stats()
    cache = make(3)
    cache.set("a", 1)
    cache.get("a")
    cache.get("b")
    ops = fast_litellm.get_performance_stats()["operations"]
    assert ops["cache_get"][f"{path}_calls"] == 2
    assert ops["cache_set"][f"{path}_calls"] == 1
    monitoring.reset_stats()


def test_low_hit_rates_are_recommended(make):
    from fast_litellm import monitoring

    cache = make(5)
    for i in range(200):
        if cache.get(f"k{i}") is None:
            cache.set(f"k{i}", i)
    advice = monitoring.get_recommendations()
    hit_rate = [r for r in advice if r["kind"] == "cache_hit_rate"]
    assert any(r["numbers"] == {"hits": 0, "lookups": 200, "hit_rate": 0.0} for r in hit_rate)
    too_small = [r for r in advice if r["kind"] == "cache_too_small"]
    assert any(r["numbers"]["evictions"] == 195 for r in too_small)
    del cache
