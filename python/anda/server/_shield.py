"""Engine calls no deadline can cut short: the server's shield between
requests (which time out, disconnect and get cancelled) and the memory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import anda
from anda._calls import READONLY_TOOL, ToolResult
from anda._commits import Signal, committed
from anda.server import _audit

_log = logging.getLogger("anda.server")


class Detached:
    """The memory, as the application calls it: engine calls run as tasks of
    their own, so no deadline, disconnect or cancellation ever aborts one
    halfway (a write cut short would leave the store half-written).

    An :class:`anda.Memory` itself, for the MCP server. It never closes the
    memory; the application's shutdown does.
    """

    def __init__(self, memory: anda.Memory, signal: Signal) -> None:
        self._memory = memory
        self._signal = signal
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def readonly(self) -> bool:
        return self._memory.readonly

    @property
    def running(self) -> int:
        """Engine calls still running, answered or not."""
        return len(self._tasks)

    def start(
        self, name: str, arguments: Any, caller: str | None, *, envelope: bool = False
    ) -> asyncio.Task[dict[str, Any]]:
        """Runs a tool call, or with ``envelope`` a whole request envelope;
        the task's result is the response envelope."""
        if envelope:
            readonly = name == READONLY_TOOL
            return self._run(
                self._memory.execute_request_async(arguments, readonly=readonly, caller=caller)
            )
        return self._run(
            self._response(self._memory.call_tool_async(name, arguments, caller=caller))
        )

    @staticmethod
    async def _response(call: Awaitable[ToolResult]) -> dict[str, Any]:
        return (await call).response

    def _run(self, call: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(call)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is None:
            result = task.result()
            # Wakes the change feed's streams when this call committed.
            if committed(result.response if isinstance(result, ToolResult) else result):
                self._signal.notify()
        # Whoever awaited it may be gone; its error must not go unseen either.
        if not task.cancelled() and task.exception() is not None:
            _log.debug("an engine call failed: %r", task.exception())

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def execute_kip(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._memory.execute_kip(*args, **kwargs)

    async def execute_kip_async(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = await asyncio.shield(
            self._run(self._memory.execute_kip_async(*args, **kwargs))
        )
        return result

    def call_tool(self, *args: Any, **kwargs: Any) -> ToolResult:
        return self._memory.call_tool(*args, **kwargs)

    async def call_tool_async(
        self, name: str, arguments: Any, *, caller: str | None = None
    ) -> ToolResult:
        result: ToolResult = await asyncio.shield(
            self._run(self._memory.call_tool_async(name, arguments, caller=caller))
        )
        # An MCP tool call: the request's audit log entry says what it ran.
        _audit.note_call(name, arguments, result.response)
        return result

    def execute_request(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._memory.execute_request(*args, **kwargs)

    async def execute_request_async(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = await asyncio.shield(
            self._run(self._memory.execute_request_async(*args, **kwargs))
        )
        return result

    def close(self) -> None:
        """Nothing: the application closes the memory once every call is done."""
