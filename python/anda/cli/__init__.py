"""The command line: ``python -m anda``.

``python -m anda [run] COMMAND`` runs one KIP command (:mod:`anda.cli.run`);
the other doors are subcommands, each in its own module, imported only when
asked for, so that the optional dependency of one (the MCP SDK, uvicorn, ...)
is never needed by another. :data:`SUBCOMMANDS` lists them; ``python -m anda
--help`` shows that list. What they share (which memory, logging, signals)
is :mod:`anda.cli.common`.

>>> sorted(SUBCOMMANDS)
['check', 'copy', 'export', 'import', 'load', 'logs', 'mcp', 'run', 'serve', 'view']
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple

__all__ = ["SUBCOMMANDS", "Subcommand", "main", "run_in_a_pipeline"]


class Subcommand(NamedTuple):
    """Where a subcommand's entry point is, and what it does in one line."""

    module: str
    function: str
    summary: str


#: Every subcommand, in the order ``--help`` lists them.
SUBCOMMANDS: dict[str, Subcommand] = {
    "run": Subcommand(
        "anda.cli.run", "main", "run one KIP command (the default: 'run' may be left out)"
    ),
    "load": Subcommand("anda.cli.load", "main", "a bulk write from a JSON Lines file"),
    "check": Subcommand("anda.cli.check", "main", "a full consistency check of a store"),
    "export": Subcommand("anda.cli.transfer", "export_main", "write memory as a KIP Capsule"),
    "import": Subcommand(
        "anda.cli.transfer", "import_main", "verify a KIP Capsule and import it into a store"
    ),
    "copy": Subcommand(
        "anda.cli.transfer", "copy_main", "copy a whole store elsewhere and check the copy"
    ),
    "mcp": Subcommand("anda.cli.mcp", "main", "serve a memory to MCP hosts over stdio"),
    "serve": Subcommand("anda.cli.serve", "main", "serve a memory over HTTP"),
    "logs": Subcommand("anda.cli.logs", "main", "show the audit log anda serve keeps"),
    "view": Subcommand("anda.cli.view", "main", "open the inspector, a read-only web page"),
}

#: The subcommand that runs when the first argument names none.
DEFAULT_SUBCOMMAND = "run"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m anda [SUBCOMMAND] ARGS``: runs the subcommand ``argv``
    starts with (``run`` when it starts with none) and returns its exit status.

    A subcommand whose optional dependency is missing exits with status 2,
    naming the extra to install.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    name = args[0] if args and args[0] in SUBCOMMANDS else DEFAULT_SUBCOMMAND
    if args and args[0] == name:
        args = args[1:]
    subcommand = SUBCOMMANDS[name]
    try:
        module = importlib.import_module(subcommand.module)
    except ImportError as err:
        # The door's optional dependency is missing; its message names the extra.
        print(f"error: {err}", file=sys.stderr)
        return 2
    entry: Callable[[list[str]], int] = getattr(module, subcommand.function)
    return entry(args)


# What a shell reports for a command that SIGPIPE ended (128 + 13), as it
# ends `cat` or `yes` when their reader goes away.
_BROKEN_PIPE_STATUS = 141


def run_in_a_pipeline() -> int:
    """:func:`main`, quiet when the reader of its output stops early
    (``python -m anda 'DESCRIBE PRIMER' | head -c 600``): exit status 141,
    as a shell reports a command that SIGPIPE ended, and no traceback."""
    try:
        status = main()
        sys.stdout.flush()  # a reader gone surfaces here, not in the flush at exit
    except BrokenPipeError:
        # The recipe of Python's `signal` docs: stdout to devnull, so the
        # flush at exit cannot fail again and print a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return _BROKEN_PIPE_STATUS
    return status
