"""What a child process made by ``fork()`` redoes before it runs any of our code.

A forked child has only the thread that called ``fork()``. Whatever the parent's other threads
held at that moment stays held for ever in the child: a lock taken while a vocabulary was
loading, the native worker threads a count was waiting for. Servers fork their workers after
importing (gunicorn, uvicorn --workers, multiprocessing's "fork" start method), often while
another thread is busy, so every feature must start clean in the child.

One ``os.register_at_fork`` registration, made when the package is imported, resets the native
module (its I/O runtime, counting pool and async queues), the locks made by ``Lock`` and the
semaphores made by ``BoundedSemaphore``. Before the fork, the native module's runtime threads
finish what they are writing into state that callers read under a lock (the answers of the
health checks, see ``src/runtime.rs``), so the child never gets such a lock held.

A lock that is free in the child is not enough for state a Python thread updates in several
steps (a router's counters, a cache's LRU order and byte total): a thread switched out half-way
through an update leaves the child a state no sequence of calls could have made. A ``StateLock``
guards such state: ``fork()`` first takes every ``StateLock`` (waiting for the threads inside to
finish their update), so the child's copy is whole; the parent gets them back free right after.
Native state needs none of this: the native cores update under their own mutex with the GIL held,
so no Python thread can fork half-way through.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from typing import Any, List, Optional

__all__ = ["BoundedSemaphore", "Lock", "StateLock", "import_module"]


class Lock:
    """A ``threading.Lock`` that a forked child gets back unlocked.

    The child's copy of a lock held by another thread of the parent would never be released;
    each ``Lock`` is replaced by a new one in the child instead. Use it for locks that may be held
    while another thread forks (anything held across a call that releases the GIL).
    """

    __slots__ = ("_lock", "__weakref__")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        _locks.add(self)

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc_info: Any) -> None:
        self._lock.release()


class StateLock(Lock):
    """A ``Lock`` that ``fork()`` waits for: the child sees the state it guards as it was between
    two updates, never half-way through one.

    Only for short updates of plain Python data that take no other lock and call no code of the
    caller's (a thread waiting inside for something else would hold the fork up), and that never
    fork themselves.
    """

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__()
        with _registry_lock:
            _state_locks.add(self)


def import_module(name: str) -> Any:
    """``importlib.import_module(name)`` for a standard-library module imported on first use,
    which ``fork()`` waits for: an import runs under a lock of that module, and a child forked
    while another thread held it would wait for it for ever at its own first use."""
    module = sys.modules.get(name)
    if module is not None and not getattr(getattr(module, "__spec__", None), "_initializing", 0):
        return module
    import importlib

    with _importing:
        return importlib.import_module(name)


class BoundedSemaphore:
    """A ``threading.BoundedSemaphore`` that a forked child gets back with every slot free (the
    threads that held slots in the parent do not exist in the child to give them back)."""

    __slots__ = ("_value", "_semaphore", "__weakref__")

    def __init__(self, value: int) -> None:
        self._value = value
        self._semaphore = threading.BoundedSemaphore(value)
        _semaphores.add(self)

    def acquire(self, timeout: Optional[float] = None) -> bool:
        return self._semaphore.acquire(timeout=timeout)

    def release(self) -> None:
        self._semaphore.release()


_locks: "weakref.WeakSet[Lock]" = weakref.WeakSet()
_semaphores: "weakref.WeakSet[BoundedSemaphore]" = weakref.WeakSet()
_state_locks: "weakref.WeakSet[StateLock]" = weakref.WeakSet()
# Guards the set of state locks while the forking thread takes them all (another thread may be
# making one meanwhile).
_registry_lock = threading.Lock()
_taken: List[threading.Lock] = []
# Held by `import_module` while it imports (a leaf: the modules are the standard library's).
_importing = StateLock()


def _before() -> None:
    _registry_lock.acquire()
    # Leaf locks (no thread holds one while waiting for another): any order is free of deadlock.
    for state_lock in list(_state_locks):
        inner = state_lock._lock
        inner.acquire()
        _taken.append(inner)
    # Then the native runtime's writers (they never wait for a Python lock).
    native = sys.modules.get(f"{__package__}._native")
    if native is not None:
        native._before_fork()


def _after_in_parent() -> None:
    native = sys.modules.get(f"{__package__}._native")
    if native is not None:
        native._after_fork_in_parent()
    for inner in _taken:
        inner.release()
    _taken.clear()
    _registry_lock.release()


def _after_in_child() -> None:
    global _registry_lock
    _taken.clear()
    _registry_lock = threading.Lock()
    native = sys.modules.get(f"{__package__}._native")
    if native is not None:
        native._after_fork()
    for lock in list(_locks):
        lock._lock = threading.Lock()
    for semaphore in list(_semaphores):
        semaphore._semaphore = threading.BoundedSemaphore(semaphore._value)


# Not on Windows, which has no fork().
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before, after_in_parent=_after_in_parent, after_in_child=_after_in_child
    )
