"""Awaiting the native store's async calls: each call's result reaches the
event loop that awaits it, and cancelling the awaiting task aborts the call."""

from __future__ import annotations

import contextlib
import itertools
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from anda import _anda

if TYPE_CHECKING:
    import asyncio

__all__ = ["awaited"]


async def awaited(start: Callable[[_anda._Reply], _anda.NativeTask]) -> Any:
    """Starts a native call and awaits its result; cancelling aborts the call."""
    import asyncio

    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    inbox = _inbox(loop)
    if inbox is None:
        task = start(_settler(loop, future))
    else:
        token = inbox.new_token()
        task = start((inbox.native, token))
        # Only this thread collects, so the result cannot come before this.
        inbox.expect(token, future)
    try:
        return await future
    except asyncio.CancelledError:
        task.cancel()
        if inbox is not None:
            inbox.forget(token)
        raise
    finally:
        # What the engine logged meanwhile, to Python's logging (see anda._engine_logs).
        _anda._hand_over_engine_logs()


def _settler(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]
) -> Callable[[Any, BaseException | None], None]:
    """A callback, called on an engine thread, that settles `future` on its loop."""

    def deliver(result: Any, error: BaseException | None) -> None:
        # A closed loop (RuntimeError) means nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, future, result, error)

    return deliver


class _Inbox:
    """Where one event loop collects its finished async calls.

    Engine threads queue results natively and ring a socket the loop
    watches, so they never take the GIL; the loop builds the results' Python
    objects itself when it collects them.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, native_type: type[_anda.NativeInbox]):
        import socket

        self._bell, ringer = socket.socketpair()
        with ringer:
            self.native = native_type(ringer.fileno())
        self._bell.setblocking(False)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._tokens = itertools.count()
        try:
            loop.add_reader(self._bell.fileno(), self._collect)
        except BaseException:
            self._bell.close()
            raise
        weakref.finalize(loop, self._bell.close)

    def new_token(self) -> int:
        return next(self._tokens)

    def expect(self, token: int, future: asyncio.Future[Any]) -> None:
        self._waiting[token] = future

    def forget(self, token: int) -> None:
        self._waiting.pop(token, None)

    def _collect(self) -> None:
        # The socket first: a result queued after this read rings again.
        with contextlib.suppress(BlockingIOError, InterruptedError):
            self._bell.recv(4096)
        for token, result, error in self.native.take():
            future = self._waiting.pop(token, None)
            if future is not None:
                _settle(future, result, error)


_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Inbox | None] = (
    weakref.WeakKeyDictionary()
)
_inboxes_lock = threading.Lock()


def _inbox(loop: asyncio.AbstractEventLoop) -> _Inbox | None:
    """The loop's inbox, made on first use; ``None`` where the loop cannot
    watch a socket (Windows' proactor loop), so results come by callback."""
    native_type = getattr(_anda, "NativeInbox", None)
    if native_type is None:
        return None
    with _inboxes_lock:
        try:
            return _inboxes[loop]
        except KeyError:
            pass
        except TypeError:  # a loop that takes no weak references
            return None
        try:
            inbox: _Inbox | None = _Inbox(loop, native_type)
        except NotImplementedError:
            inbox = None
        _inboxes[loop] = inbox
        return inbox


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
