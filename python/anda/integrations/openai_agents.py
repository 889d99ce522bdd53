"""anda in the OpenAI Agents SDK: the engine's tools as ``FunctionTool``\\ s.

Install the extra (``pip install 'anda[openai-agents]'``); importing this
module imports the SDK (``agents``), ``import anda`` never does.

- :func:`tools`: one ``FunctionTool`` per engine tool (``execute_kip``,
  ``execute_kip_readonly``) with the engine's own name, description and JSON
  schema. Strict schema mode is off for these: the engine's ``parameters`` is
  an open object, which the SDK's strict conversion would close to ``{}``.
- :func:`tools` with ``strict=True``: the same tools with a schema that strict
  mode accepts, unchanged by the SDK's conversion: every field is required and
  nullable (``null`` is "not given"), and each open ``parameters`` object is
  JSON text instead. A call is converted back to the engine's arguments
  exactly (nulls dropped, the text parsed), so the engine sees what the open
  schema would have sent.
- :func:`instructions`: the instructions that teach a model KIP, as the
  dynamic ``Agent(instructions=...)`` the SDK calls before each run, so the
  model starts each run with the memory's live primer.

A command the engine refuses comes back to the model as the SDK reports a
handled tool failure: the engine's typed error (with the whole response) as the
tool's output, and a ``SpanError`` on the tool's trace span (its code and
category; the message too when the run includes sensitive data in traces).

>>> import anda, json
>>> from anda.integrations.openai_agents import tools
>>> remember, recall = tools(anda.Nexus(), strict=True)
>>> remember.strict_json_schema, sorted(remember.params_json_schema["required"])
(True, ['command', 'dry_run', 'execution', 'operations', 'parameters'])
>>> remember.params_json_schema["properties"]["parameters"]["type"]
['string', 'null']

Both work over any memory (an embedded :class:`anda.Nexus` or an
:class:`anda.Client`) and never block the event loop: the tools await the
memory's async calls.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import anda.tools
from anda.errors import error_from_response
from anda.integrations import require, tool_error_text

if TYPE_CHECKING:
    from anda._memory import Memory

__all__ = ["from_strict_arguments", "instructions", "strict_schema", "tools"]

_agents = require("agents", "openai-agents")

_JSON_TEXT = ' Strict mode: give this JSON object as text (e.g. \'{"name": "Ada"}\'), or null.'
_NULLABLE = " Strict mode: null when not given."


def tools(
    memory: Memory, *, readonly: bool = False, caller: str | None = None, strict: bool = False
) -> list[Any]:
    """The engine's tools as Agents SDK ``FunctionTool``\\ s.

    Args:
        memory: a :class:`anda.Nexus` or :class:`anda.Client`.
        readonly: only ``execute_kip_readonly``, for an agent that must not write.
        caller: who the calls run as, under ``tenancy="per_caller"``.
        strict: use the strict-mode schema (:func:`strict_schema`) and
            ``strict_json_schema=True``; calls are converted back with
            :func:`from_strict_arguments`.
    """
    return [
        _tool(memory, definition, caller, strict) for definition in anda.tools.definitions(readonly)
    ]


def instructions(
    memory: Memory, *, caller: str | None = None, include_profile: bool = False
) -> Callable[[Any, Any], Awaitable[str]]:
    """Dynamic instructions for ``Agent(instructions=...)``: before each run,
    :func:`anda.tools.instructions` with the memory's live primer (read off
    the event loop)."""

    async def build(context: Any, agent: Any) -> str:
        return await asyncio.to_thread(
            anda.tools.instructions, memory, caller=caller, include_profile=include_profile
        )

    return build


def strict_schema(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON schema that strict mode accepts as it is, for the engine's ``parameters``.

    Every object is closed with every property required; a property that was
    optional may be ``null``; an open object (one with no ``properties``:
    KIP ``parameters``) is a JSON string; an item that may be a string or an
    object is the object. :func:`from_strict_arguments` undoes it.

    >>> from agents.strict_schema import ensure_strict_json_schema
    >>> import anda, copy
    >>> schema = strict_schema(anda.tools.definitions()[0]["parameters"])
    >>> ensure_strict_json_schema(copy.deepcopy(schema)) == schema
    True
    """
    return _strict(copy.deepcopy(dict(parameters)), required=True)


def from_strict_arguments(
    parameters: Mapping[str, Any], arguments: Mapping[str, Any]
) -> dict[str, Any]:
    """The engine's arguments for a call made against :func:`strict_schema`.

    ``null`` means "not given"; JSON text becomes the object it holds (text
    that is not a JSON object is passed on as it is, for the engine to refuse
    with its own error).

    >>> import anda
    >>> schema = anda.tools.definitions()[0]["parameters"]
    >>> from_strict_arguments(schema, {
    ...     "command": "FIND(?p.name) WHERE { ?p {type: :t} }", "operations": None,
    ...     "execution": None, "parameters": '{"t": "Person"}', "dry_run": None})
    {'command': 'FIND(?p.name) WHERE { ?p {type: :t} }', 'parameters': {'t': 'Person'}}
    """
    converted: dict[str, Any] = _unstrict(parameters, dict(arguments))
    return converted


# -- the tools ------------------------------------------------------------------------


def _tool(memory: Memory, definition: dict[str, Any], caller: str | None, strict: bool) -> Any:
    name: str = definition["name"]
    engine_schema: dict[str, Any] = definition["parameters"]

    async def invoke(context: Any, arguments: str) -> str:
        call: str | dict[str, Any] = arguments
        if strict:
            try:
                parsed = json.loads(arguments)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                call = from_strict_arguments(engine_schema, parsed)
        result = await memory.call_tool_async(name, call, caller=caller)
        if not result.is_error:
            return result.content
        _record_failure(context, name, result.response)
        return tool_error_text(result.response)

    return _agents.FunctionTool(
        name=name,
        description=definition["description"],
        params_json_schema=strict_schema(engine_schema) if strict else engine_schema,
        on_invoke_tool=invoke,
        strict_json_schema=strict,
    )


def _record_failure(context: Any, name: str, response: dict[str, Any]) -> None:
    """The SDK's handled tool failure: an error on the current (tool) span."""
    span = _agents.get_current_span()
    if span is None:
        return
    error = error_from_response(response)
    data: dict[str, Any] = {"tool_name": name, "code": error.code, "category": error.category}
    run_config = getattr(context, "run_config", None)
    if run_config is None or getattr(run_config, "trace_include_sensitive_data", True):
        data["error"] = f"{type(error).__name__}: {error}"
    span.set_error(_agents.SpanError(message="KIP command refused", data=data))


# -- strict schema and back -------------------------------------------------------------


def _types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type")
    return list(kind) if isinstance(kind, list) else [kind] if isinstance(kind, str) else []


def _is_open_object(schema: Mapping[str, Any]) -> bool:
    return _types(schema) == ["object"] and not schema.get("properties")


def _strict(schema: dict[str, Any], *, required: bool) -> dict[str, Any]:
    description = schema.get("description", "")
    if _is_open_object(schema):
        schema = {"type": "string", "description": (description + _JSON_TEXT).strip()}
    elif "object" in _types(schema) and schema.get("properties"):
        properties = schema["properties"]
        needed = set(schema.get("required", ()))
        schema = {
            **{k: v for k, v in schema.items() if k not in ("type", "required")},
            "type": "object",
            "properties": {
                key: _strict(dict(value), required=key in needed)
                for key, value in properties.items()
            },
            "required": list(properties),
            "additionalProperties": False,
        }
    elif schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        schema["items"] = _strict(dict(schema["items"]), required=True)
    if required:
        return schema
    return _nullable(schema)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if schema.get("description"):
        schema["description"] += _NULLABLE if _JSON_TEXT not in schema["description"] else ""
    if schema.get("type") == "object":
        description = schema.pop("description", None)
        nullable: dict[str, Any] = {"anyOf": [schema, {"type": "null"}]}
        if description:
            nullable["description"] = description
        return nullable
    if isinstance(schema.get("type"), str):
        schema["type"] = [schema["type"], "null"]
    if isinstance(schema.get("enum"), list):
        schema["enum"] = [*schema["enum"], None]
    return schema


def _unstrict(schema: Mapping[str, Any], value: Any) -> Any:
    if _is_open_object(schema):
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except ValueError:
                return value
            return parsed if isinstance(parsed, dict) else value
        return value
    if "object" in _types(schema) and schema.get("properties") and isinstance(value, dict):
        properties: Mapping[str, Any] = schema["properties"]
        converted: dict[str, Any] = {}
        for key, item in value.items():
            if item is None and key not in schema.get("required", ()):
                continue  # null is "not given"
            converted[key] = _unstrict(properties[key], item) if key in properties else item
        return converted
    if schema.get("type") == "array" and isinstance(value, list):
        items = schema.get("items")
        return [_unstrict(items, item) for item in value] if isinstance(items, dict) else value
    return value
