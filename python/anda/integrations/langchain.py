"""anda in LangChain: the engine's tools as ``StructuredTool``\\ s, and its instructions.

Install the extra (``pip install 'anda[langchain]'``); importing this module
imports ``langchain_core``, ``import anda`` never does.

- :func:`tools`: one ``StructuredTool`` per engine tool (``execute_kip``,
  ``execute_kip_readonly``), with the engine's own name, description and JSON
  schema (as ``args_schema``), sync and async. A call returns the engine's
  response as JSON text for the model, and the response itself as the
  ``ToolMessage``'s ``artifact``. A command the engine refuses is a
  ``ToolException`` (raised from the typed :class:`anda.KipError`), which the
  tools handle as LangChain does: a ``ToolMessage`` with ``status="error"``
  whose content is the engine's typed error, for the model to read and
  correct.
- :func:`system_message`: the instructions that teach a model KIP (with the
  memory's live primer), as a ``SystemMessage``.

>>> import anda
>>> from anda.integrations.langchain import system_message, tools
>>> memory = anda.Nexus()
>>> remember, recall = tools(memory)
>>> remember.name, recall.name
('execute_kip', 'execute_kip_readonly')
>>> message = remember.invoke({
...     "type": "tool_call", "id": "call_1", "name": "execute_kip",
...     "args": {"command": 'UPSERT CONCEPT ?p { MATCH {type: "Person", key: "ada"} '
...                         'SET FIELDS {name: "Ada"} }'}})
>>> message.status, message.artifact["status"]
('success', 'succeeded')
>>> failed = recall.invoke({"type": "tool_call", "id": "call_2", "name": "execute_kip_readonly",
...                         "args": {"command": "FIND(?p WHERE"}})
>>> failed.status, failed.content.split(":")[0]
('error', 'KipSyntaxError')
>>> system_message(memory).type
'system'
>>> memory.close()

Both work over any memory (an embedded :class:`anda.Nexus` or an
:class:`anda.Client`); the async paths (``ainvoke``, an agent's ``astream``)
await the memory's async calls and never block the event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anda.tools
from anda.errors import error_from_response
from anda.integrations import require, tool_error_text

if TYPE_CHECKING:
    from anda._memory import Memory
    from anda.tools import ToolResult

__all__ = ["system_message", "tools"]

_EXTRA = "langchain"
_tools = require("langchain_core.tools", _EXTRA)
_messages = require("langchain_core.messages", _EXTRA)


def tools(memory: Memory, *, readonly: bool = False, caller: str | None = None) -> list[Any]:
    """The engine's tools as LangChain ``StructuredTool``\\ s.

    Args:
        memory: a :class:`anda.Nexus` or :class:`anda.Client`.
        readonly: only ``execute_kip_readonly``, for an agent that must not write.
        caller: who the calls run as, under ``tenancy="per_caller"``.

    Returns:
        One ``StructuredTool`` per engine tool, with
        ``response_format="content_and_artifact"`` and
        ``handle_tool_error=True`` (set it to ``False`` to have a refused
        command raise its ``ToolException`` instead).
    """
    return [_tool(memory, definition, caller) for definition in anda.tools.definitions(readonly)]


def system_message(
    memory: Memory | None = None, *, caller: str | None = None, include_profile: bool = False
) -> Any:
    """:func:`anda.tools.instructions` as a LangChain ``SystemMessage``.

    Pass it (or its ``content``) as the agent's system prompt, e.g.
    ``create_agent(model, tools(memory), system_prompt=system_message(memory))``.
    """
    text = anda.tools.instructions(memory, caller=caller, include_profile=include_profile)
    return _messages.SystemMessage(content=text)


def _tool(memory: Memory, definition: dict[str, Any], caller: str | None) -> Any:
    name: str = definition["name"]

    def call(**arguments: Any) -> tuple[str, dict[str, Any]]:
        return _outcome(memory.call_tool(name, arguments, caller=caller))

    async def acall(**arguments: Any) -> tuple[str, dict[str, Any]]:
        return _outcome(await memory.call_tool_async(name, arguments, caller=caller))

    return _tools.StructuredTool.from_function(
        func=call,
        coroutine=acall,
        name=name,
        description=definition["description"],
        args_schema=definition["parameters"],
        response_format="content_and_artifact",
        handle_tool_error=True,
    )


def _outcome(result: ToolResult) -> tuple[str, dict[str, Any]]:
    if result.is_error:
        raise _tools.ToolException(tool_error_text(result.response)) from error_from_response(
            result.response
        )
    return result.content, result.response
