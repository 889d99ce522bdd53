"""``python -m anda mcp``: the MCP server of :mod:`anda.mcp` over stdio
(``pip install 'anda[mcp]'``).

Opens the memory ``--db`` names (a store, or a server's URL through
:class:`anda.Client`), serves it until standard input closes, then closes
(and so flushes) it. Standard output is the MCP channel: every message goes
to standard error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

import anda
from anda.cli.common import (
    add_log_level_argument,
    add_store_arguments,
    configure_logging,
    handle_signals,
    open_from_arguments,
    subcommand_parser,
)

# First, before the SDK: if it is missing, the ImportError names the extra.
from anda.mcp import create_server

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = subcommand_parser(
        "mcp",
        "Serve an Anda memory to MCP hosts over stdio (stdout is the MCP channel; "
        "messages go to stderr).",
        "python -m anda mcp --db ./memory",
    )
    add_store_arguments(
        parser, readonly_help="refuse state-changing commands; only execute_kip_readonly is offered"
    )
    add_log_level_argument(parser, default="warning", help="what to log on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m anda mcp [options]``: see :func:`anda.mcp.main`."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    configure_logging(args.log_level, "anda mcp: %(levelname)s %(name)s: %(message)s")
    try:
        memory = open_from_arguments(args)
    except (anda.AndaError, TypeError, ValueError) as err:
        _say(f"error: cannot open the store: {err}")
        return 1

    def close_and_exit(signum: int, frame: FrameType | None) -> None:
        # Waiting for the event loop to wind down is not an option: the stdio
        # reader blocks in a thread until the host closes stdin, which a host
        # that signals may never do.
        try:
            memory.close()
        except anda.AndaError as err:
            _say(f"error: could not close the store: {err}")
        sys.stderr.flush()
        os._exit(128 + signum)

    import anyio

    with handle_signals(close_and_exit):
        try:
            _say(_describe(memory, args))
            anyio.run(_serve_stdio, create_server(memory, caller=args.caller))
        finally:
            memory.close()
    return 0


async def _serve_stdio(server: Server[Any]) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def _describe(memory: anda.Nexus | anda.Client, args: argparse.Namespace) -> str:
    details = ["read-only" if memory.readonly else "writable"]
    if isinstance(memory, anda.Client):
        return f"serving the memory at {memory.url} over stdio ({', '.join(details)})"
    details.append(f"tenancy {memory.tenancy}")
    if args.caller is not None:
        details.append(f"caller {args.caller!r}")
    if memory.path is None:
        return (
            f"serving an IN-MEMORY store over stdio ({', '.join(details)}): nothing is kept "
            "after this server exits; pass --db DIR or set ANDA_DB to keep the memory"
        )
    return f"serving the store at {memory.path} over stdio ({', '.join(details)})"


def _say(message: str) -> None:
    # Never stdout: it is the MCP channel.
    print(f"anda mcp: {message}", file=sys.stderr, flush=True)
