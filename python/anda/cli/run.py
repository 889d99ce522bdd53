"""``python -m anda [run] COMMAND``: one KIP command.

The command comes from the argument, from ``--file PATH``, or from standard
input (no argument, or ``-``). The response is printed as JSON on standard
output; when the engine rejects the command, the error goes to standard error
and the exit status is 1 (2 for a usage error). ``--db`` may name a server:
the command runs there, through :class:`anda.Client`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import anda
from anda.cli import SUBCOMMANDS
from anda.cli.common import add_store_arguments, open_from_arguments, parse_parameters, read_input

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    width = max(len(name) for name in SUBCOMMANDS)
    listed = "\n".join(
        f"  {name:<{width}}  {subcommand.summary}" for name, subcommand in SUBCOMMANDS.items()
    )
    parser = argparse.ArgumentParser(
        prog="python -m anda",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run one KIP command against an Anda memory and print the response as "
        "JSON,\nor run a subcommand: python -m anda SUBCOMMAND --help for its options.\n\n"
        f"subcommands:\n{listed}",
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


def _version() -> str:
    return f"anda {anda.__version__} (anda_engine {anda.ENGINE_VERSION}, KIP {anda.KIP_VERSION})"


def _read_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    if args.file is not None:
        if args.command != "-":
            parser.error("give the command either as an argument or with --file, not both")
        return read_input(parser, args.file)
    if args.command == "-":
        return sys.stdin.read()
    return str(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m anda [run] [options] [COMMAND]``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    command = _read_command(args, parser)
    parameters = parse_parameters(parser, args.params)
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
