"""The MCP server over any :class:`anda.Memory`: its tools, resources and
prompt (see :mod:`anda.mcp`)."""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

try:
    import anyio
    import anyio.to_thread
    from mcp import types
    from mcp.server import ServerRequestContext
    from mcp.server.lowlevel import Server
    from mcp.shared.exceptions import MCPError
except ImportError as _err:  # a missing (or 1.x) SDK; trouble elsewhere raises as it is
    if (_err.name or "").partition(".")[0] not in {"mcp", "mcp_types", "anyio"}:
        raise
    raise ImportError("anda.mcp needs the MCP SDK (mcp>=2.3,<3): pip install 'anda[mcp]'") from _err

import anda
from anda._calls import READ_WRITE_TOOL, READONLY_TOOL, read_primer_async

__all__ = [
    "INSTRUCTIONS_URI",
    "PRIMER_URI",
    "PROMPT_NAME",
    "SYNTAX_URI",
    "Caller",
    "CallerFunction",
    "create_server",
    "main",
]

#: The KIP 2.0 syntax card (``text/markdown``).
SYNTAX_URI = "anda://kip/syntax"
#: How an agent uses this memory: :func:`anda.tools.instructions` (``text/markdown``).
INSTRUCTIONS_URI = "anda://instructions"
#: The store's live ``DESCRIBE PRIMER`` result (``application/json``), as the caller sees it.
PRIMER_URI = "anda://primer"
#: The prompt that starts an agent on this memory.
PROMPT_NAME = "start_memory_agent"

#: A function of the SDK's request context that names the caller (or ``None``),
#: or returns an awaitable of it. An HTTP application maps the request's
#: credentials (``ctx.request``, or
#: ``mcp.server.auth.middleware.auth_context.get_access_token()``) to a caller
#: id; raising ``mcp.MCPError`` there refuses the request.
CallerFunction: TypeAlias = Callable[
    [ServerRequestContext[Any, Any]], str | Awaitable[str | None] | None
]
#: Who a request runs as: a fixed caller id, ``None`` (the store's default),
#: or a :data:`CallerFunction`, asked afresh for every request.
Caller: TypeAlias = str | CallerFunction | None

_log = logging.getLogger("anda.mcp")

# Hints for hosts (MCP tool annotations): both tools only ever touch this memory.
_ANNOTATIONS = {
    READ_WRITE_TOOL: types.ToolAnnotations(
        title="Execute KIP",
        read_only_hint=False,
        destructive_hint=True,
        idempotent_hint=False,
        open_world_hint=False,
    ),
    READONLY_TOOL: types.ToolAnnotations(
        title="Execute KIP (read-only)",
        read_only_hint=True,
        idempotent_hint=True,
        open_world_hint=False,
    ),
}


def create_server(memory: anda.Memory, *, caller: Caller = None, name: str = "anda") -> Server[Any]:
    """The MCP server (the SDK's low-level ``Server``) over ``memory``.

    Args:
        memory: any :class:`anda.Memory`: an embedded :class:`anda.Nexus` or
            a remote one. The server never closes it; whoever opened it does.
        caller: who requests run as (see :data:`Caller`): a fixed id, or a
            function resolving it per request.
        name: the server's name, as hosts show it.

    Tool calls go to ``memory.call_tool_async``; the engine judges the
    arguments, and a refused command comes back as an ``isError`` result
    carrying the engine's response. A read-only memory lists (and runs) only
    ``execute_kip_readonly``. Serve the result over stdio with
    ``server.run(...)``, or over HTTP with ``server.streamable_http_app()``.

    >>> import anda, anyio, mcp
    >>> from anda.mcp import create_server
    >>> async def main():
    ...     with anda.Nexus() as memory:
    ...         async with mcp.Client(create_server(memory)) as client:
    ...             bad = await client.call_tool("execute_kip", {"command": "FIND(?x WHERE"})
    ...     [failed] = bad.structured_content["results"]
    ...     return bad.is_error, failed["error"]["code"]
    >>> anyio.run(main)
    (True, 'InvalidSyntax')
    """
    if not isinstance(memory, anda.Memory):
        raise TypeError(f"memory must be an anda.Memory, not {type(memory).__name__}")
    if not (caller is None or isinstance(caller, str) or callable(caller)):
        raise TypeError(f"caller must be str, None or callable, not {type(caller).__name__}")
    readonly = memory.readonly
    tools = [
        types.Tool(
            name=tool["name"],
            title=_ANNOTATIONS[tool["name"]].title,
            description=tool["description"],
            # The engine's schema, unmodified: it is what the engine validates against.
            input_schema=tool["parameters"],
            annotations=_ANNOTATIONS[tool["name"]],
        )
        for tool in anda.tools.definitions(readonly=readonly)
    ]
    schemas = {tool.name: tool.input_schema for tool in tools}
    resources = [
        types.Resource(
            uri=SYNTAX_URI,
            name="kip-syntax",
            title="KIP 2.0 syntax",
            description="The Knowledge Interaction Protocol, condensed for a model to read.",
            mime_type="text/markdown",
        ),
        types.Resource(
            uri=INSTRUCTIONS_URI,
            name="instructions",
            title="How to use this memory",
            description="System instructions for an agent whose memory this is, with the "
            "recall and formation cards and the KIP syntax card.",
            mime_type="text/markdown",
        ),
        types.Resource(
            uri=PRIMER_URI,
            name="primer",
            title="What the memory holds now",
            description="The live DESCRIBE PRIMER: the memory's identity, what it holds "
            "and its schema (types, predicates). Read afresh on every read.",
            mime_type="application/json",
        ),
    ]
    prompt = types.Prompt(
        name=PROMPT_NAME,
        title="Start a memory agent",
        description="The instructions for using this memory, with its live primer: "
        "start a conversation with it to work with the memory.",
        arguments=[
            types.PromptArgument(
                name="task", description="what the user wants done (optional)", required=False
            )
        ],
    )

    async def resolve_caller(ctx: ServerRequestContext[Any, Any]) -> str | None:
        if caller is None or isinstance(caller, str):
            return caller
        value = caller(ctx)
        if inspect.isawaitable(value):
            value = await value
        if value is not None and not isinstance(value, str):
            raise TypeError(f"the caller function returned {type(value).__name__}, not str")
        return value

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        if params.name not in schemas:
            hint = " (this memory is read-only)" if params.name == READ_WRITE_TOOL else ""
            known = ", ".join(sorted(schemas))
            return _error_result(f"Unknown tool: {params.name}{hint}; the tools are: {known}")
        arguments = {} if params.arguments is None else params.arguments
        try:
            result = await memory.call_tool_async(
                params.name, arguments, caller=await resolve_caller(ctx)
            )
        except anda.AndaError as err:  # a closed or unreachable memory: still an answer
            _log.warning("tool %s failed: %s", params.name, err)
            return _error_result(f"{type(err).__name__}: {err}")
        return types.CallToolResult(
            content=[types.TextContent(text=result.content)],
            structured_content=result.response,
            is_error=result.is_error,
        )

    async def list_resources(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=resources)

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        if uri == SYNTAX_URI:
            text, mime_type = anda.tools.KIP_SYNTAX, "text/markdown"
        elif uri == INSTRUCTIONS_URI:
            text, mime_type = anda.tools.instructions(), "text/markdown"
        elif uri == PRIMER_URI:
            try:
                primer = await read_primer_async(memory, caller=await resolve_caller(ctx))
            except anda.KipError as err:
                raise _primer_error(err) from err
            text = json.dumps(primer, ensure_ascii=False, indent=2)
            mime_type = "application/json"
        else:
            raise MCPError(types.INVALID_PARAMS, f"Unknown resource: {uri}", {"uri": uri})
        # ttl 0: never served from a client's cache (the primer changes with every write).
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type=mime_type, text=text)],
            ttl_ms=0,
        )

    async def list_prompts(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[prompt])

    async def get_prompt(
        ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        if params.name != PROMPT_NAME:
            raise MCPError(
                types.INVALID_PARAMS, f"Unknown prompt: {params.name}", {"name": params.name}
            )
        # anda.tools.instructions reads the primer synchronously: off the event loop.
        compose = functools.partial(
            anda.tools.instructions, memory, caller=await resolve_caller(ctx)
        )
        try:
            text = await anyio.to_thread.run_sync(compose)
        except anda.KipError as err:
            raise _primer_error(err) from err
        task = (params.arguments or {}).get("task", "").strip()
        if task:
            text += f"\n# The user's task\n\n{task}\n"
        return types.GetPromptResult(
            description=prompt.description,
            messages=[types.PromptMessage(role="user", content=types.TextContent(text=text))],
        )

    return Server(
        name,
        version=anda.__version__,
        title="Anda memory",
        description="A persistent Cognitive Nexus memory, spoken to in KIP 2.0.",
        instructions=_server_instructions(readonly),
        website_url="https://github.com/ldclabs/anda",
        get_tool_input_schema=schemas.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
    )


def _error_result(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


def _primer_error(err: anda.KipError) -> MCPError:
    # The engine's response rides along, as a tool call's error result carries it.
    return MCPError(types.INTERNAL_ERROR, f"DESCRIBE PRIMER failed: {err}", err.response)


def _server_instructions(readonly: bool) -> str:
    tools = (
        "This memory is read-only: recall with the execute_kip_readonly tool."
        if readonly
        else "Recall with the execute_kip_readonly tool; change what the memory holds with "
        "execute_kip."
    )
    return (
        "A persistent memory (an Anda Cognitive Nexus), spoken to in KIP 2.0, the Knowledge "
        f"Interaction Protocol. {tools} Before the first call, read {INSTRUCTIONS_URI} (how "
        f"to use this memory), {SYNTAX_URI} (the language) and {PRIMER_URI} (what the memory "
        f"holds now), or start from the {PROMPT_NAME} prompt, which carries all three."
    )


# -- python -m anda mcp ---------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m anda mcp [--db DIR] [--readonly] [--tenancy ...] [--caller ID] [--name N]``.

    Opens the store, serves it over stdio until standard input closes, then
    closes (and so flushes) the store and returns the exit status. SIGTERM
    and SIGINT close the store too before the process exits. The command
    line itself is ``anda.cli.mcp``.

    >>> from anda.mcp import main
    >>> try:
    ...     main(["--help"])
    ... except SystemExit as done:
    ...     print("exit status", done.code)
    usage: python -m anda mcp [-h] [--db DB] [--name NAME] [--readonly] ...
    exit status 0
    """
    from anda.cli.mcp import main as serve_stdio

    return serve_stdio(argv)
