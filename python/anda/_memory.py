"""The one idea every door hangs off: a memory is anything that executes KIP.

An embedded :class:`anda.Nexus` is one; the LLM tools, the MCP server and the
command line take any object with these methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from anda._base import Command, Execution
    from anda._calls import ToolResult

__all__ = ["Memory"]


@runtime_checkable
class Memory(Protocol):
    """What the doors (tools, MCP, command line) need of a memory.

    >>> import anda
    >>> with anda.Nexus() as nexus, anda.Client("http://127.0.0.1:8080") as client:
    ...     isinstance(nexus, anda.Memory), isinstance(client, anda.Memory)
    (True, True)
    """

    @property
    def readonly(self) -> bool:
        """Whether state-changing commands are refused."""
        ...

    def execute_kip(
        self,
        command: Command,
        parameters: Mapping[str, Any] | None = None,
        dry_run: bool = False,
        *,
        execution: Execution | None = None,
        caller: str | None = None,
    ) -> dict[str, Any]:
        """Runs KIP and returns the response envelope; raises ``KipError``."""
        ...

    async def execute_kip_async(
        self,
        command: Command,
        parameters: Mapping[str, Any] | None = None,
        dry_run: bool = False,
        *,
        execution: Execution | None = None,
        caller: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`execute_kip` for ``asyncio``."""
        ...

    def execute_request(
        self, request: Mapping[str, Any], *, readonly: bool = False, caller: str | None = None
    ) -> dict[str, Any]:
        """Runs a whole KIP 2.0 request envelope; returns the response envelope."""
        ...

    async def execute_request_async(
        self, request: Mapping[str, Any], *, readonly: bool = False, caller: str | None = None
    ) -> dict[str, Any]:
        """:meth:`execute_request` for ``asyncio``."""
        ...

    def call_tool(
        self, name: str, arguments: str | Mapping[str, Any], *, caller: str | None = None
    ) -> ToolResult:
        """Runs a model's tool call; errors come back in the result."""
        ...

    async def call_tool_async(
        self, name: str, arguments: str | Mapping[str, Any], *, caller: str | None = None
    ) -> ToolResult:
        """:meth:`call_tool` for ``asyncio``."""
        ...

    def close(self) -> None:
        """Releases the memory; idempotent."""
        ...
