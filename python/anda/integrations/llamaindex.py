"""anda in LlamaIndex: the engine's tools as ``FunctionTool``\\ s, and a memory block.

Install the extra (``pip install 'anda[llamaindex]'``); LlamaIndex is imported
when one of these functions is first called, never by ``import anda``.

- :func:`tools`: a ``FunctionTool`` per engine tool (``execute_kip``,
  ``execute_kip_readonly``) with the engine's own name, description and JSON
  schema, for ``FunctionAgent(tools=...)`` or any LlamaIndex agent. A command
  the engine refuses comes back as LlamaIndex reports a failed tool: a
  ``ToolOutput`` with ``is_error=True``, the typed :class:`anda.KipError` as
  its ``exception``, and the engine's error as its text, for the model to read
  and correct.
- :func:`memory_block`: a block for ``llama_index.core.memory.Memory``. It
  recalls by the engine's keyword ``SEARCH`` on the latest user message, and
  stores the messages the short-term queue ejects verbatim, one ``Event``
  each, as the Cognitive Memory Profile defines it. No LLM runs on either path.

Both work over any memory (an embedded :class:`anda.Nexus` or an
:class:`anda.Client`) and never block the event loop: LlamaIndex's async paths
await the memory's async calls.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import anda.tools
from anda.errors import error_from_response
from anda.integrations import require, tool_error_text

if TYPE_CHECKING:
    from anda._memory import Memory
    from anda.tools import ToolResult

__all__ = ["EVENT_CLASS", "RECALL", "REMEMBER", "memory_block", "tools"]

_EXTRA = "llamaindex"

#: The ``event_class`` of the Events the memory block stores.
EVENT_CLASS = "chat_message"
#: How a message the short-term memory ejects is stored: verbatim, as an Event.
REMEMBER = (
    'CREATE CONCEPT ?event { TYPE "Event" NAME :name SET ATTRIBUTES { '
    "event_class: :event_class, summary: :text, role: :role, session_id: :session_id, "
    "started_at: :at } }"
)
#: How the memory block recalls: the engine's keyword SEARCH over stored Events.
RECALL = 'SEARCH CONCEPT :query WITH TYPE "Event" MODE "keyword" LIMIT :limit'
# Roles whose messages are conversation worth recalling; system prompts and
# tool results (often anda's own responses) are not stored.
_STORED_ROLES = ("user", "assistant")


def tools(memory: Memory, *, readonly: bool = False, caller: str | None = None) -> list[Any]:
    """The engine's tools as LlamaIndex ``FunctionTool``\\ s.

    Args:
        memory: a :class:`anda.Nexus` or :class:`anda.Client`.
        readonly: only ``execute_kip_readonly``, for an agent that must not write.
        caller: who the calls run as, under ``tenancy="per_caller"``.

    Returns:
        One ``FunctionTool`` per engine tool. Each takes the model's arguments
        as they are (``command`` or ``operations``, ``parameters``, ...) and
        returns the engine's response as JSON text (``raw_output`` is the
        :class:`anda.tools.ToolResult`).
    """
    function_tool = require("llama_index.core.tools", _EXTRA)
    return [
        _tool(function_tool, memory, definition, caller)
        for definition in anda.tools.definitions(readonly)
    ]


def _tool(module: Any, memory: Memory, definition: dict[str, Any], caller: str | None) -> Any:
    name: str = definition["name"]

    def call(**arguments: Any) -> _Called:
        return _Called(arguments, memory.call_tool(name, arguments, caller=caller))

    async def acall(**arguments: Any) -> _Called:
        return _Called(arguments, await memory.call_tool_async(name, arguments, caller=caller))

    def output(called: _Called) -> Any:
        # LlamaIndex's own shape for a failed tool: is_error, with the exception.
        result = called.result
        raw_input = {"args": (), "kwargs": called.arguments}
        if not result.is_error:
            return module.ToolOutput(
                content=result.content, tool_name=name, raw_input=raw_input, raw_output=result
            )
        return module.ToolOutput(
            content=tool_error_text(result.response),
            tool_name=name,
            raw_input=raw_input,
            raw_output=result,
            is_error=True,
            exception=error_from_response(result.response),
        )

    async def aoutput(called: _Called) -> Any:
        return output(called)

    metadata = _metadata_class()(
        name=name, description=definition["description"], parameters=definition["parameters"]
    )
    return module.FunctionTool(
        fn=call, async_fn=acall, metadata=metadata, callback=output, async_callback=aoutput
    )


@dataclasses.dataclass(frozen=True)
class _Called:
    """A tool call's arguments and result, for the callback that shapes its output."""

    arguments: dict[str, Any]
    result: ToolResult


@functools.cache
def _metadata_class() -> Any:
    tool_types = require("llama_index.core.tools.types", _EXTRA)

    @dataclasses.dataclass
    class EngineToolMetadata(tool_types.ToolMetadata):  # type: ignore[misc,name-defined]
        """ToolMetadata whose parameters are the engine's JSON schema, unchanged
        (LlamaIndex would otherwise derive them from a pydantic model)."""

        parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
        fn_schema: Any = None

        def get_parameters_dict(self) -> dict[str, Any]:
            return copy.deepcopy(self.parameters)

    return EngineToolMetadata


# -- the memory block -----------------------------------------------------------


def memory_block(
    memory: Memory,
    *,
    name: str = "anda",
    caller: str | None = None,
    limit: int = 5,
    priority: int = 0,
) -> Any:
    """A LlamaIndex memory block over anda, for ``Memory.from_defaults(memory_blocks=[...])``.

    Args:
        memory: a :class:`anda.Nexus` or :class:`anda.Client`.
        name: the block's name (the tag its text is wrapped in).
        caller: who recalls and stores, under ``tenancy="per_caller"``: one
            memory per user.
        limit: the most Events recalled for one message.
        priority: LlamaIndex's truncation priority (0: never truncated).

    Returns:
        A ``BaseMemoryBlock[str]``: ``aget`` runs ``SEARCH CONCEPT`` with the
        text of the latest user message and returns the Events found, one a
        line; ``aput`` (called with the messages the short-term memory ejects)
        stores each user or assistant message verbatim as an ``Event``
        (``event_class`` :data:`EVENT_CLASS`, its text as ``summary``, its
        ``role`` and ``session_id``). A refused command raises the engine's
        :class:`anda.KipError`.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be an int >= 1, not {limit!r}")
    block: Any = _block_class()(name=name, priority=priority)
    block._anda = _BlockState(memory, caller, limit)
    return block


class _BlockState:
    """What the block holds besides its pydantic fields."""

    def __init__(self, memory: Memory, caller: str | None, limit: int) -> None:
        self.memory = memory
        self.caller = caller
        self.limit = limit


@functools.cache
def _block_class() -> Any:
    memory_module = require("llama_index.core.memory.memory", _EXTRA)
    pydantic = require("pydantic", _EXTRA)

    class AndaMemoryBlock(memory_module.BaseMemoryBlock[str]):  # type: ignore[misc,name-defined]
        """Recall by keyword SEARCH; ejected messages stored verbatim as Events."""

        name: str = "anda"
        description: str | None = "Recalled from anda: messages stored earlier."
        _anda: Any = pydantic.PrivateAttr(default=None)

        async def _aget(self, messages: Any = None, **block_kwargs: Any) -> str:
            query = _latest_user_text(messages or [])
            if not query.strip():
                return ""
            state: _BlockState = self._anda
            response = await state.memory.execute_kip_async(
                RECALL, {"query": query, "limit": state.limit}, caller=state.caller
            )
            return _recalled(response)

        async def _aput(self, messages: Any) -> None:
            state: _BlockState = self._anda
            batch = [
                (REMEMBER, params) for params in (_event(message) for message in messages) if params
            ]
            # At most 256 operations per call; each Event is its own commit.
            for start in range(0, len(batch), 256):
                await state.memory.execute_kip_async(
                    batch[start : start + 256], caller=state.caller
                )

    return AndaMemoryBlock


def _text(message: Any) -> str:
    blocks = getattr(message, "blocks", None) or []
    return "\n".join(
        text for text in (getattr(block, "text", None) for block in blocks) if isinstance(text, str)
    )


def _role(message: Any) -> str:
    role = getattr(message, "role", "")
    return str(getattr(role, "value", role))


def _latest_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if _role(message) == "user":
            return _text(message)
    return ""


def _event(message: Any) -> dict[str, Any] | None:
    role = _role(message)
    text = _text(message)
    if role not in _STORED_ROLES or not text.strip():
        return None
    kwargs = getattr(message, "additional_kwargs", None) or {}
    session = kwargs.get("session_id")
    return {
        "name": f"{role} message",
        "event_class": EVENT_CLASS,
        "text": text,
        "role": role,
        "session_id": session if isinstance(session, str) else "",
        "at": _now(),
    }


def _now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _recalled(response: dict[str, Any]) -> str:
    hits = response["results"][0]["result"].get("hits") or []
    lines = []
    for hit in hits:
        attributes = (hit.get("element") or {}).get("attributes") or {}
        summary = attributes.get("summary")
        if not isinstance(summary, str):
            continue
        role = attributes.get("role") or "event"
        when = attributes.get("started_at")
        label = f"{role}, {when}" if when else str(role)
        lines.append(f"- ({label}) {json.dumps(summary, ensure_ascii=False)}")
    return "\n".join(lines)
