"""``python -m anda check --db PATH``: a full consistency check of a store.

Reads back every record the store's metadata lists (see
:meth:`anda.Nexus.verify`), read-only. Prints one line per problem and a
summary (``--json`` for a machine-readable report). Exit status, for cron jobs
and monitors: 0 the store is sound; 1 problems were found (or the store is too
damaged to open); 2 usage error (a server's URL among them: the check reads
the store itself); 3 the store could not be opened for another reason
(missing, locked by a running process, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import anda
from anda.cli.common import (
    add_store_arguments,
    open_from_arguments,
    refuse_server,
    subcommand_parser,
)

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = subcommand_parser(
        "check",
        "Check that every record of a store can be read back.",
        "python -m anda check --db ./memory",
    )
    add_store_arguments(
        parser,
        memory_options=False,
        db_help="the store: a directory or a bucket (s3://, gs://, az://) (default: $ANDA_DB)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m anda check --db PATH [--json]``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.db is None:
        parser.error("--db (or $ANDA_DB) is required: an in-memory store has nothing to check")
    refuse_server(parser, args.db, "the check reads back the store's own files")
    try:
        with open_from_arguments(args, readonly=True) as nexus:
            assert isinstance(nexus, anda.Nexus)  # a server's URL was refused above
            report = nexus.verify()
    except anda.CorruptStoreError as err:
        _print(False, [str(err)], 0, {}, as_json=args.json)
        return 1
    except anda.AndaError as err:
        print(f"error: cannot open {args.db!r}: {err}", file=sys.stderr)
        return 3
    except (TypeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    problems = [str(problem) for problem in report.problems]
    _print(report.ok, problems, report.documents_read, report.collections, as_json=args.json)
    return 0 if report.ok else 1


def _print(
    ok: bool,
    problems: list[str],
    documents_read: int,
    collections: dict[str, int],
    *,
    as_json: bool,
) -> None:
    if as_json:
        report = {
            "ok": ok,
            "problems": problems,
            "documents_read": documents_read,
            "collections": collections,
        }
        print(json.dumps(report, indent=2))
        return
    for problem in problems:
        print(f"problem: {problem}")
    state = "sound" if ok else "DAMAGED"
    print(f"{state}: {documents_read} records read, {len(problems)} problems")
