"""anda in Microsoft Agent Framework: a context provider that brings the memory to every run.

Install the extra (``pip install 'anda[agent-framework]'``); Agent Framework
is imported when :func:`context_provider` is first called, never by
``import anda``.

    agent = Agent(client=..., context_providers=[context_provider(memory)])

Before each run the provider adds the engine's instructions (with the
store's live ``DESCRIBE PRIMER``) and the engine's tools, ``execute_kip`` and
``execute_kip_readonly``, as ``FunctionTool``\\ s with the engine's own
names, descriptions and JSON schemas. A command the engine refuses raises
``ToolExecutionException`` carrying the engine's typed error (the
:class:`anda.KipError` is its ``__cause__``), which Agent Framework turns
into a failed function result; the model reads the error text when the
client's ``function_invocation_configuration["include_detailed_errors"]`` is
on. Every call awaits the memory's async twins: the event loop is never
blocked.
"""

from __future__ import annotations

import asyncio
import copy
import functools
from typing import TYPE_CHECKING, Any

import anda.tools
from anda.errors import error_from_response
from anda.integrations import require, tool_error_text

if TYPE_CHECKING:
    from anda._memory import Memory

__all__ = ["context_provider", "tools"]

_EXTRA = "agent-framework"


def tools(memory: Memory, *, readonly: bool = False, caller: str | None = None) -> list[Any]:
    """The engine's tools as Agent Framework ``FunctionTool``\\ s.

    Args:
        memory: a :class:`anda.Nexus` or :class:`anda.Client`.
        readonly: only ``execute_kip_readonly``, for an agent that must not write.
        caller: who the calls run as, under ``tenancy="per_caller"``.

    Returns:
        One ``FunctionTool`` per engine tool. Each returns the engine's
        response as JSON text, and raises ``ToolExecutionException`` with the
        engine's error for a refused command.
    """
    framework = require("agent_framework", _EXTRA)
    exceptions = require("agent_framework.exceptions", _EXTRA)
    return [
        _tool(framework, exceptions, memory, definition, caller)
        for definition in anda.tools.definitions(readonly)
    ]


def _tool(
    framework: Any, exceptions: Any, memory: Memory, definition: dict[str, Any], caller: str | None
) -> Any:
    name: str = definition["name"]

    async def run(**arguments: Any) -> str:
        result = await memory.call_tool_async(name, arguments, caller=caller)
        if result.is_error:
            raise exceptions.ToolExecutionException(
                tool_error_text(result.response)
            ) from error_from_response(result.response)
        return result.content

    return framework.FunctionTool(
        name=name,
        description=definition["description"],
        func=run,
        # A JSON schema mapping is passed to the model as it is.
        input_model=copy.deepcopy(definition["parameters"]),
        # A dict, so a context provider's attribution can be recorded on it.
        additional_properties={},
    )


def context_provider(
    memory: Memory,
    *,
    readonly: bool = False,
    caller: str | None = None,
    source_id: str = "anda",
) -> Any:
    """A ``ContextProvider`` that adds anda's instructions and tools before each run.

    Args:
        memory: a :class:`anda.Nexus` or :class:`anda.Client`.
        readonly: offer only ``execute_kip_readonly``.
        caller: who the calls run as, under ``tenancy="per_caller"`` (the
            primer in the instructions is the one this caller sees).
        source_id: the provider's id, for Agent Framework's attribution.

    Returns:
        An ``agent_framework.ContextProvider`` for ``Agent(context_providers=[...])``.
    """
    return _provider_class()(memory, readonly=readonly, caller=caller, source_id=source_id)


@functools.cache
def _provider_class() -> Any:
    framework = require("agent_framework", _EXTRA)

    class AndaContextProvider(framework.ContextProvider):  # type: ignore[misc,name-defined]
        """Adds anda's instructions (with the live primer) and its tools to a run."""

        def __init__(
            self, memory: Memory, *, readonly: bool, caller: str | None, source_id: str
        ) -> None:
            super().__init__(source_id)
            self.memory = memory
            self.caller = caller
            self.tools = tools(memory, readonly=readonly, caller=caller)

        async def before_run(
            self, *, agent: Any, session: Any, context: Any, state: dict[str, Any]
        ) -> None:
            # The primer is read with the memory's sync call: off the loop.
            text = await asyncio.to_thread(anda.tools.instructions, self.memory, caller=self.caller)
            context.extend_instructions(self.source_id, text)
            context.extend_tools(self.source_id, self.tools)

    return AndaContextProvider
