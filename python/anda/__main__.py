"""The command line: ``python -m anda 'DESCRIBE PRIMER'``.

``python -m anda [run] COMMAND`` runs one KIP command. The command comes from
the argument, from ``--file PATH``, or from standard input (no argument, or
``-``). The response is printed as JSON on standard output; when the engine
rejects the command, the error goes to standard error and the exit status is 1
(2 for a usage error).

Other doors are subcommands: ``check``, ``load``, ``export``, ``import``,
``copy``, ``mcp`` (an MCP server over stdio) and ``serve`` (HTTP).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import anda
from anda._cli import add_store_arguments, open_from_arguments


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m anda",
        description="Run one KIP command against an embedded Anda Cognitive Nexus.",
        epilog="Example: python -m anda --db ./memory 'DESCRIBE PRIMER'",
    )
    parser.add_argument(
        "command", nargs="?", default="-", help="the KIP command; '-' or omitted reads stdin"
    )
    parser.add_argument("-f", "--file", help="read the command from this file")
    add_store_arguments(parser)
    parser.add_argument("--params", default=None, help="parameters as a JSON object")
    parser.add_argument("--dry-run", action="store_true", help="validate and plan only")
    parser.add_argument("--compact", action="store_true", help="print JSON on one line")
    parser.add_argument("--version", action="version", version=_version())
    return parser


# Subcommands live in their own modules, imported only when asked for: their
# optional dependencies (the MCP SDK, ...) are never needed by `run`.
_SUBCOMMANDS = {
    "check": "anda._check",
    "copy": "anda._transfer",
    "export": "anda._transfer",
    "import": "anda._transfer",
    "load": "anda._load",
    "mcp": "anda.mcp",
    "serve": "anda.server",
}
# Subcommands whose module serves several: the function each one runs.
_ENTRY_POINTS = {"copy": "copy_main", "export": "export_main", "import": "import_main"}


def _version() -> str:
    return f"anda {anda.__version__} (anda_engine {anda.ENGINE_VERSION}, KIP {anda.KIP_VERSION})"


def _read_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    if args.file is not None:
        if args.command != "-":
            parser.error("give the command either as an argument or with --file, not both")
        try:
            with open(args.file, encoding="utf-8") as handle:
                return handle.read()
        except (OSError, UnicodeDecodeError) as err:
            parser.error(f"cannot read {args.file}: {err}")
    if args.command == "-":
        return sys.stdin.read()
    return str(args.command)


def _parameters(text: str | None, parser: argparse.ArgumentParser) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        parser.error(f"--params is not valid JSON: {err}")
    if not isinstance(value, dict):
        parser.error("--params must be a JSON object")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _SUBCOMMANDS:
        try:
            subcommand = importlib.import_module(_SUBCOMMANDS[argv[0]])
        except ImportError as err:
            # The door's optional dependency is missing; its message names the extra.
            print(f"error: {err}", file=sys.stderr)
            return 2
        status: int = getattr(subcommand, _ENTRY_POINTS.get(argv[0], "main"))(argv[1:])
        return status
    if argv and argv[0] == "run":
        argv = argv[1:]
    parser = _parser()
    args = parser.parse_args(argv)
    command = _read_command(args, parser)
    parameters = _parameters(args.params, parser)
    indent = None if args.compact else 2
    try:
        with open_from_arguments(args) as memory:
            response = memory.execute_kip(
                command, parameters, dry_run=args.dry_run, caller=args.caller
            )
    except anda.KipError as err:
        print(f"error: {err}", file=sys.stderr)
        if err.response is not None:
            print(json.dumps(err.response, indent=indent, ensure_ascii=False), file=sys.stderr)
        return 1
    except (anda.AndaError, TypeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(response, indent=indent, ensure_ascii=False))
    return 0


# What a shell reports for a command that SIGPIPE ended (128 + 13), as it
# ends `cat` or `yes` when their reader goes away.
_BROKEN_PIPE_STATUS = 141


def _main_in_a_pipeline() -> int:
    """:func:`main`, quiet when the reader of its output stops early
    (``python -m anda 'DESCRIBE PRIMER' | head -c 600``)."""
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


if __name__ == "__main__":
    sys.exit(_main_in_a_pipeline())
