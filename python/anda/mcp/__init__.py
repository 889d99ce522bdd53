"""The MCP door: anda's memory for any MCP host (Claude Desktop, IDEs, agents).

``python -m anda mcp --db ./memory`` serves one store over stdio with the
official MCP SDK (``pip install 'anda[mcp]'``). A host sees:

- tools ``execute_kip`` (reads and writes) and ``execute_kip_readonly``
  (reads), with the engine's own input schemas; a read-only memory lists only
  ``execute_kip_readonly``;
- resources :data:`SYNTAX_URI` (the KIP syntax card), :data:`INSTRUCTIONS_URI`
  (how an agent uses this memory) and :data:`PRIMER_URI` (the store's live
  ``DESCRIBE PRIMER``, read afresh each time);
- the prompt :data:`PROMPT_NAME`, which starts an agent on this memory.

:func:`create_server` builds the SDK server over any :class:`anda.Memory`, so
other transports (an HTTP application) can serve it too; :func:`main` opens a
store and serves it over stdio. In-process, the SDK's own client connects to
the server directly:

>>> import anda, anyio, mcp
>>> from anda.mcp import create_server
>>> async def main():
...     with anda.Nexus() as memory:
...         async with mcp.Client(create_server(memory)) as client:
...             tools = await client.list_tools()
...             found = await client.call_tool(
...                 "execute_kip_readonly", {"command": "DESCRIBE PRIMER"}
...             )
...     return [tool.name for tool in tools.tools], found.structured_content["status"]
>>> anyio.run(main)
(['execute_kip', 'execute_kip_readonly'], 'succeeded')
"""

from anda.mcp._server import (
    INSTRUCTIONS_URI,
    PRIMER_URI,
    PROMPT_NAME,
    SYNTAX_URI,
    Caller,
    CallerFunction,
    create_server,
    main,
)

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
