"""``python -m anda load FILE.jsonl``: a bulk write from JSON Lines.

Each line is one operation, as :func:`anda.bulk.operation_from_dict` reads it:
``{"command": ..., "parameters": {...}}``, ``{"upsert": {"type", "key",
"name", "attributes"}}`` or ``{"relate": {"subject": [type, key],
"predicate", "object": [type, key]}}``. Blank lines are skipped. ``-`` (the
default) reads standard input. Progress is shown with tqdm when it is
installed (``pip install 'anda[cli]'``) and standard error is a terminal.

Exit status: 0 when every line was committed; 1 when the load stopped (the
summary says how many operations were committed, and from which line to
resume); 2 for a usage error. ``--db`` may name a server: the chunks are
written there, through :meth:`anda.Client.bulk_write`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from typing import IO, Any

import anda
from anda.bulk import DEFAULT_CHUNK_SIZE, BulkWriteError
from anda.cli.common import (
    add_store_arguments,
    open_from_arguments,
    progress_bar,
    subcommand_parser,
)

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = subcommand_parser(
        "load",
        "Write the operations of a JSON Lines file in as few transactions as fit.",
        "python -m anda load --db ./memory people.jsonl",
    )
    parser.add_argument("file", nargs="?", default="-", help="JSON Lines file; '-' reads stdin")
    add_store_arguments(parser)
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help=f"a fixed number of operations per transaction (default: {DEFAULT_CHUNK_SIZE} at "
        "first, doubling while the engine takes them)",
    )
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    return parser


class _Lines:
    """The file's operations, remembering which line each came from."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.line_numbers: list[int] = []

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for number, line in enumerate(self._stream, start=1):
            if not line.strip():
                continue
            try:
                operation = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"line {number} is not JSON: {err}") from None
            if not isinstance(operation, dict):
                raise ValueError(f"line {number} is not a JSON object")
            self.line_numbers.append(number)
            yield operation


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m anda load [options] [FILE]``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.chunk_size is not None and args.chunk_size < 1:
        parser.error("--chunk-size must be at least 1")
    try:
        stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    except OSError as err:
        parser.error(f"cannot read {args.file}: {err}")
    lines = _Lines(stream)
    bar = progress_bar(not args.no_progress, None, unit="op", desc="loading")
    shown = 0

    def progress(committed: int) -> None:
        nonlocal shown
        if bar is not None:
            bar.update(committed - shown)
        shown = committed

    try:
        with stream, open_from_arguments(args) as memory:
            done = memory.bulk_write(
                lines, chunk_size=args.chunk_size, progress=progress, caller=args.caller
            )
    except BulkWriteError as err:
        if bar is not None:
            bar.close()
        resume = (
            lines.line_numbers[err.committed]
            if err.committed < len(lines.line_numbers)
            else len(lines.line_numbers) + 1
        )
        print(f"error: {err}", file=sys.stderr)
        print(f"committed {err.committed} operations; resume from line {resume}", file=sys.stderr)
        return 1
    except (anda.AndaError, ValueError, UnicodeDecodeError) as err:
        if bar is not None:
            bar.close()
        print(f"error: {err}", file=sys.stderr)
        print(f"committed {shown} operations", file=sys.stderr)
        return 1
    if bar is not None:
        bar.close()
    print(json.dumps({"operations": done.operations, "transactions": done.transactions}))
    return 0
