"""Commit signals: how a memory's followers learn, without polling, that
something committed through the same memory object (a :class:`anda.Nexus`'s
own calls, or ``python -m anda serve`` over it)."""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

__all__ = ["Signal", "commit_signal", "committed", "notify_commit"]


class Signal:
    """Raised on every commit to one memory: a counter, a condition for
    threads, futures for event loops."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0
        self._futures: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    @property
    def generation(self) -> int:
        return self._generation

    def notify(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()
            futures, self._futures = self._futures, set()
        for loop, future in futures:
            with contextlib.suppress(RuntimeError):  # its loop has closed
                loop.call_soon_threadsafe(_settle, future)

    def wait(self, generation: int, timeout: float) -> None:
        """Returns after a commit past ``generation``, or ``timeout`` seconds."""
        with self._condition:
            self._condition.wait_for(lambda: self._generation != generation, timeout)

    async def wait_async(self, generation: int, timeout: float) -> None:
        import asyncio  # only async followers need it; `import anda` stays light

        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._condition:
            if self._generation != generation:
                return
            self._futures.add(entry)
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._condition:
                self._futures.discard(entry)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_signals: weakref.WeakKeyDictionary[object, Signal] = weakref.WeakKeyDictionary()
_signals_lock = threading.Lock()


def commit_signal(memory: object) -> Signal:
    """The commit signal of ``memory`` (one per memory object); a memory
    that cannot be weakly referenced gets one of its own each time."""
    with _signals_lock:
        try:
            signal = _signals.get(memory)
            if signal is None:
                signal = _signals[memory] = Signal()
        except TypeError:
            signal = Signal()
        return signal


def notify_commit(memory: object) -> None:
    """Wakes the feeds following ``memory``: something may have committed."""
    with _signals_lock:
        try:
            signal = _signals.get(memory)
        except TypeError:
            signal = None
    if signal is not None:
        signal.notify()


def committed(response: object) -> bool:
    """Whether a KIP response carries a commit receipt.

    >>> committed({"results": [{"status": "succeeded", "receipt": {"tx_id": "t"}}]})
    True
    >>> committed({"results": [{"status": "succeeded", "result": []}]})
    False
    """
    if not isinstance(response, dict):
        return False
    if isinstance(response.get("receipt"), dict):
        return True
    results = response.get("results")
    return isinstance(results, list) and any(
        isinstance(result, dict) and isinstance(result.get("receipt"), dict) for result in results
    )
