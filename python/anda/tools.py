"""What a model sees of anda's memory, and how its tool calls are run.

The tool definitions and the texts that teach a model KIP are the pinned
engine's own (``anda_kip`` ships them, ``anda_engine``'s memory serves them);
nothing here is a copy, so they move with the engine. The three-line agent:

>>> import anda
>>> memory = anda.Nexus()
>>> tools = anda.tools.openai()  # or anda.tools.anthropic()
>>> [tool["function"]["name"] for tool in tools]
['execute_kip', 'execute_kip_readonly']

and, for each tool call the model makes, ``anda.tools.handle(memory, call)``
returns the message to send back. No provider SDK is needed; calls may be the
SDK's objects or plain dicts.

>>> call = {"id": "call_1", "type": "function",
...         "function": {"name": "execute_kip_readonly",
...                      "arguments": '{"command": "DESCRIBE PRIMER"}'}}
>>> reply = anda.tools.handle(memory, call)
>>> reply["role"], reply["tool_call_id"]
('tool', 'call_1')
>>> memory.close()
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from anda import _anda
from anda._calls import ToolResult, check_bool, read_primer
from anda._deprecation import renamed_parameter

if TYPE_CHECKING:
    from anda._memory import Memory

__all__ = [
    "COGNITIVE_MEMORY_PROFILE",
    "KIP_FORMATION_CARD",
    "KIP_RECALL_CARD",
    "KIP_SYNTAX",
    "SELF_INSTRUCTIONS",
    "SYSTEM_INSTRUCTIONS",
    "ToolResult",
    "anthropic",
    "definitions",
    "handle",
    "handle_async",
    "instructions",
    "openai",
]

_TEXTS = dict(_anda.agent_texts())
#: The KIP 2.0 syntax card: the language, condensed for a model to read.
KIP_SYNTAX: str = _TEXTS["kip_syntax"]
#: How an agent uses KIP as its own memory (the waking mind, ``$self``).
SELF_INSTRUCTIONS: str = _TEXTS["self_instructions"]
#: How a maintenance agent consolidates memory (the sleeping mind, ``$system``).
SYSTEM_INSTRUCTIONS: str = _TEXTS["system_instructions"]
#: The Cognitive Memory Profile: the memory structures the instructions assume.
COGNITIVE_MEMORY_PROFILE: str = _TEXTS["cognitive_memory_profile"]
#: The recall card the self instructions are loaded with.
KIP_RECALL_CARD: str = _TEXTS["kip_recall_card"]
#: The formation card the self instructions are loaded with.
KIP_FORMATION_CARD: str = _TEXTS["kip_formation_card"]
del _TEXTS


def definitions(readonly: bool = False) -> list[dict[str, Any]]:
    """The engine's function definitions: ``name``, ``description``, ``parameters``.

    Both tools (``execute_kip`` for reads and writes, ``execute_kip_readonly``
    for reads), or with ``readonly=True`` only ``execute_kip_readonly``, for an
    agent that must not write. Each call returns fresh dicts.

    >>> import anda
    >>> [tool["name"] for tool in anda.tools.definitions(readonly=True)]
    ['execute_kip_readonly']
    >>> anda.tools.definitions()[0]["parameters"]["type"]
    'object'
    """
    return _anda.tool_definitions(check_bool("readonly", readonly))


def openai(
    readonly: bool = False, api: Literal["chat", "responses"] = "chat"
) -> list[dict[str, Any]]:
    """The tools in OpenAI's shapes, for ``tools=`` of the OpenAI SDK.

    ``api="chat"`` (Chat Completions) gives ``{"type": "function", "function":
    {...}}``; ``api="responses"`` gives the flat Responses shape ``{"type":
    "function", "name", "description", "parameters", "strict": False}``.

    Strict schema mode is off, deliberately: the tools' ``parameters`` value
    is an open object (any placeholder name), which strict mode would
    silently reduce to ``{}``, so no parameter could ever be sent.

    >>> import anda
    >>> chat = anda.tools.openai()
    >>> chat[0]["type"], chat[0]["function"]["name"]
    ('function', 'execute_kip')
    >>> flat = anda.tools.openai(readonly=True, api="responses")
    >>> flat[0]["name"], flat[0]["strict"]
    ('execute_kip_readonly', False)
    """
    tools = definitions(readonly)
    if api == "chat":
        return [{"type": "function", "function": tool} for tool in tools]
    if api == "responses":
        return [{"type": "function", **tool, "strict": False} for tool in tools]
    raise ValueError(f"api must be 'chat' or 'responses', not {api!r}")


def anthropic(readonly: bool = False) -> list[dict[str, Any]]:
    """The tools in Anthropic's shape (``name``, ``description``,
    ``input_schema``), for ``tools=`` of the Anthropic SDK.

    Strict mode stays off, for the reason given in :func:`openai`.

    >>> import anda
    >>> [sorted(tool) for tool in anda.tools.anthropic(readonly=True)]
    [['description', 'input_schema', 'name']]
    """
    return [
        {
            "name": tool["name"],
            "description": tool["description"],
            "input_schema": tool["parameters"],
        }
        for tool in definitions(readonly)
    ]


@renamed_parameter("nexus", "memory")
def instructions(
    memory: Memory | None = None,
    *,
    caller: str | None = None,
    include_profile: bool = False,
) -> str:
    """A ready system prompt that teaches a model to use this memory.

    The engine's self instructions with the recall and formation cards they
    are written to be loaded with, and the KIP syntax card; with
    ``include_profile=True`` also the Cognitive Memory Profile (long). Given a
    memory (a :class:`anda.Nexus` or an :class:`anda.Client`), the store's live
    ``DESCRIBE PRIMER`` (as ``caller`` sees it) is appended, so the model
    starts knowing what the memory holds.

    >>> import anda
    >>> prompt = anda.tools.instructions()
    >>> anda.tools.KIP_SYNTAX in prompt
    True
    >>> with anda.Nexus() as nexus:
    ...     "DESCRIBE PRIMER" in anda.tools.instructions(nexus)
    True
    """
    parts = [SELF_INSTRUCTIONS, KIP_RECALL_CARD, KIP_FORMATION_CARD, KIP_SYNTAX]
    if check_bool("include_profile", include_profile):
        parts.append(COGNITIVE_MEMORY_PROFILE)
    if memory is not None:
        parts.append(
            "# Your memory now (live DESCRIBE PRIMER)\n\n```json\n"
            + json.dumps(read_primer(memory, caller=caller), ensure_ascii=False, indent=2)
            + "\n```\n"
        )
    return "\n\n".join(part.strip() for part in parts) + "\n"


# -- provider tool calls --------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    """A provider's tool call, reduced to what running it needs."""

    provider: Literal["chat", "responses", "anthropic"]
    call_id: str
    name: str
    arguments: str | Mapping[str, Any]


@renamed_parameter("nexus", "memory")
def handle(memory: Memory, call: Any, *, caller: str | None = None) -> dict[str, Any]:
    """Runs a provider's tool call and returns the tool-result message for it.

    ``call`` is what the provider's SDK returned, as its object or as a dict:

    - OpenAI Chat Completions, ``message.tool_calls[i]`` → ``{"role": "tool",
      "tool_call_id": ..., "content": ...}`` (append it to ``messages``);
    - OpenAI Responses, a ``function_call`` output item → ``{"type":
      "function_call_output", "call_id": ..., "output": ...}`` (send it as
      ``input``);
    - Anthropic, a ``tool_use`` content block → ``{"type": "tool_result",
      "tool_use_id": ..., "content": ..., "is_error": ...}`` (send it in the
      ``content`` of the next user message).

    Malformed arguments and refused commands come back as error results for
    the model to correct; a call that is none of these shapes raises
    ``TypeError``, and a tool that is not anda's raises ``ValueError``.

    >>> import anda
    >>> with anda.Nexus() as nexus:
    ...     block = {"type": "tool_use", "id": "toolu_1", "name": "execute_kip",
    ...              "input": {"command": "FIND(?x WHERE"}}
    ...     reply = anda.tools.handle(nexus, block)
    >>> reply["type"], reply["tool_use_id"], reply["is_error"]
    ('tool_result', 'toolu_1', True)
    """
    parsed = _parse_call(call)
    result = memory.call_tool(parsed.name, parsed.arguments, caller=caller)
    return _reply(parsed, result)


@renamed_parameter("nexus", "memory")
async def handle_async(memory: Memory, call: Any, *, caller: str | None = None) -> dict[str, Any]:
    """:func:`handle` for ``asyncio``: same arguments, same result.

    >>> import anda, asyncio
    >>> async def main():
    ...     with anda.Nexus() as nexus:
    ...         item = {"type": "function_call", "call_id": "c1",
    ...                 "name": "execute_kip_readonly",
    ...                 "arguments": '{"command": "DESCRIBE PRIMER"}'}
    ...         return await anda.tools.handle_async(nexus, item)
    >>> reply = asyncio.run(main())
    >>> reply["type"], reply["call_id"]
    ('function_call_output', 'c1')
    """
    parsed = _parse_call(call)
    result = await memory.call_tool_async(parsed.name, parsed.arguments, caller=caller)
    return _reply(parsed, result)


def _field(value: Any, name: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def _parse_call(call: Any) -> _Call:
    kind = _field(call, "type")
    function = _field(call, "function")
    if kind == "function" or (kind is None and function is not None):
        # OpenAI Chat Completions: {"id", "type": "function", "function": {"name", "arguments"}}
        if function is None:
            raise TypeError("an OpenAI chat tool call needs a 'function' with name and arguments")
        return _Call(
            "chat",
            _text(call, "id"),
            _text(function, "name"),
            _arguments(_field(function, "arguments")),
        )
    if kind == "function_call":
        # OpenAI Responses: {"type": "function_call", "call_id", "name", "arguments"}
        return _Call(
            "responses",
            _text(call, "call_id"),
            _text(call, "name"),
            _arguments(_field(call, "arguments")),
        )
    if kind == "tool_use":
        # Anthropic: {"type": "tool_use", "id", "name", "input"}
        return _Call(
            "anthropic", _text(call, "id"), _text(call, "name"), _arguments(_field(call, "input"))
        )
    raise TypeError(
        "not a tool call anda knows: expected an OpenAI chat tool call, an OpenAI Responses "
        f"'function_call' item or an Anthropic 'tool_use' block, got {type(call).__name__} "
        f"with type {kind!r}"
    )


def _text(value: Any, name: str) -> str:
    text = _field(value, name)
    if not isinstance(text, str):
        raise TypeError(f"the tool call's {name!r} must be a str, not {type(text).__name__}")
    return text


def _arguments(value: Any) -> str | Mapping[str, Any]:
    # A model's arguments are passed on as they are; the engine judges them.
    if isinstance(value, (str, Mapping)):
        return value
    if value is None:
        return "{}"
    # Anything else (an SDK model object, a list) still reaches the engine,
    # which answers with an error result the model can read.
    return json.dumps(value, default=repr)


def _reply(call: _Call, result: ToolResult) -> dict[str, Any]:
    if call.provider == "chat":
        return {"role": "tool", "tool_call_id": call.call_id, "content": result.content}
    if call.provider == "responses":
        return {"type": "function_call_output", "call_id": call.call_id, "output": result.content}
    return {
        "type": "tool_result",
        "tool_use_id": call.call_id,
        "content": result.content,
        "is_error": result.is_error,
    }
