"""``wait_for`` without its lost cancellations.

Before Python 3.12, ``asyncio.wait_for`` returns the inner result when the task is cancelled in
the same turn of the loop as that result arrives (CPython gh-86296): the caller asked to stop and
carries on instead, and ``asyncio.timeout``, a TaskGroup or a server's shutdown are ignored.
``bounded`` awaits the operation in the caller's own task with a timer that cancels it, so a
cancellation from outside is never turned into a result; on 3.11 ``asyncio.timeout`` does that,
on 3.12+ ``wait_for`` is built on it.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Awaitable, Optional, TypeVar

T = TypeVar("T")


async def bounded(awaitable: Awaitable[T], timeout: Optional[float]) -> T:
    """``await awaitable``, raising ``asyncio.TimeoutError`` after ``timeout`` seconds (None:
    no limit)."""
    if timeout is None:
        return await awaitable
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(timeout):
            return await awaitable
    return await _bounded_310(awaitable, timeout)


async def _bounded_310(awaitable: Awaitable[T], timeout: float) -> T:
    task = asyncio.current_task()
    assert task is not None, "bounded() runs inside a task"
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        return await awaitable
    except asyncio.CancelledError:
        if expired:
            # Ours. (A cancellation from outside in the same turn is taken for the timeout: 3.10
            # cannot tell them apart.)
            raise asyncio.TimeoutError from None
        raise
    finally:
        timer.cancel()
