"""anda in pydantic-ai: one toolset that brings the engine's tools and their instructions.

Install the extra (``pip install 'anda[pydantic-ai]'``); pydantic-ai is
imported when :func:`toolset` is first called, never by ``import anda``.

An agent takes the memory in one argument::

    agent = Agent(model, toolsets=[toolset(memory)])

The toolset offers ``execute_kip`` and ``execute_kip_readonly`` with the
engine's own names, descriptions and JSON schemas (strict mode off: the
``parameters`` object is open), and through ``get_instructions`` it adds the
engine's instructions and the store's live ``DESCRIBE PRIMER`` to every run.
A command the engine refuses is reported as pydantic-ai reports a failed
tool, :class:`pydantic_ai.ToolFailed`, with the engine's typed error for the
model to read and correct. Calls await the memory's async twins: the event
loop is never blocked.
"""

from __future__ import annotations

import asyncio
import copy
import functools
from typing import TYPE_CHECKING, Any

import anda.tools
from anda.integrations import require, tool_error_text

if TYPE_CHECKING:
    from anda._memory import Memory

__all__ = ["toolset"]

_EXTRA = "pydantic-ai"


def toolset(
    memory: Memory,
    *,
    readonly: bool = False,
    caller: str | None = None,
    instructions: bool = True,
    id: str = "anda",
) -> Any:
    """The memory as a pydantic-ai toolset: ``Agent(model, toolsets=[toolset(memory)])``.

    Args:
        memory: a :class:`anda.Nexus` or :class:`anda.Client`.
        readonly: only ``execute_kip_readonly``, for an agent that must not write.
        caller: who the calls run as, under ``tenancy="per_caller"``.
        instructions: add :func:`anda.tools.instructions` (with the live
            primer, as ``caller`` sees it) to the agent's instructions.
        id: the toolset's id, unique among an agent's toolsets.

    Returns:
        An ``AbstractToolset``. A tool returns the engine's response as JSON
        text; a refused command raises ``ToolFailed`` with the engine's error.
    """
    return _toolset_class()(
        memory, readonly=readonly, caller=caller, instructions=instructions, id=id
    )


@functools.cache
def _toolset_class() -> Any:
    toolsets = require("pydantic_ai.toolsets", _EXTRA)
    pydantic_ai = require("pydantic_ai", _EXTRA)
    pydantic_ai_tools = require("pydantic_ai.tools", _EXTRA)
    pydantic_core = require("pydantic_core", _EXTRA)
    # The engine reads the arguments itself, with its own tool-argument type.
    any_arguments = pydantic_core.SchemaValidator(pydantic_core.core_schema.dict_schema())

    class AndaToolset(toolsets.AbstractToolset):  # type: ignore[misc,name-defined]
        """anda's memory tools, with their instructions."""

        def __init__(
            self,
            memory: Memory,
            *,
            readonly: bool,
            caller: str | None,
            instructions: bool,
            id: str,
        ) -> None:
            self.memory = memory
            self.caller = caller
            self.with_instructions = instructions
            self._id = id
            self._definitions = anda.tools.definitions(readonly)

        @property
        def id(self) -> str:
            return self._id

        async def get_instructions(self, ctx: Any) -> str | None:
            if not self.with_instructions:
                return None
            # The primer is read with the memory's sync call: off the loop.
            return await asyncio.to_thread(anda.tools.instructions, self.memory, caller=self.caller)

        async def get_tools(self, ctx: Any) -> dict[str, Any]:
            return {
                definition["name"]: toolsets.ToolsetTool(
                    toolset=self,
                    tool_def=pydantic_ai_tools.ToolDefinition(
                        name=definition["name"],
                        description=definition["description"],
                        parameters_json_schema=copy.deepcopy(definition["parameters"]),
                        strict=False,
                    ),
                    max_retries=1,
                    args_validator=any_arguments,
                )
                for definition in self._definitions
            }

        async def call_tool(self, name: str, tool_args: dict[str, Any], ctx: Any, tool: Any) -> str:
            result = await self.memory.call_tool_async(name, tool_args, caller=self.caller)
            if result.is_error:
                raise pydantic_ai.ToolFailed(tool_error_text(result.response))
            return result.content

    return AndaToolset
