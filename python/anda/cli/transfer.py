"""``python -m anda export|import|copy``: memory out of a store, into one, and
whole stores between locations.

- ``export --db SRC [QUERY] [-o FILE]`` writes a KIP Capsule (JSON) of the whole
  memory, or of what ``QUERY`` selects (see :meth:`anda.Nexus.export_capsule`).
  It only runs KIP, so ``--db`` may name a server.
- ``import --db DST FILE`` verifies a Capsule and imports it
  (``--dry-run`` previews); prints the import report. Importing is an
  operation of the store's host, so ``--db`` must name the store itself.
- ``copy SRC DST`` copies a whole store, directory or bucket, object for
  object and checks the copy (:func:`anda.copy_store`), with a progress bar
  on a terminal.

Exit status: 0 done, 1 refused or failed (the reason on standard error),
2 usage error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import anda
from anda._capsules import export_command
from anda.cli.common import (
    add_store_arguments,
    open_from_arguments,
    parse_parameters,
    progress_bar,
    read_input,
    refuse_server,
    storage_options,
    subcommand_parser,
)

__all__ = ["copy_main", "export_main", "import_main"]


def _failed(err: BaseException) -> int:
    print(f"error: {err}", file=sys.stderr)
    return 1


def export_main(argv: Sequence[str] | None = None) -> int:
    """``python -m anda export [options] [QUERY]``; returns the exit status."""
    parser = subcommand_parser(
        "export",
        "Write memory as a KIP Capsule (JSON).",
        "python -m anda export --db ./memory > memory.capsule.json",
    )
    parser.add_argument(
        "query",
        nargs="?",
        default=None,
        help="an EXPORT CAPSULE command, or WHERE patterns binding ?roots (default: everything)",
    )
    parser.add_argument("--params", default=None, help="the query's parameters as a JSON object")
    parser.add_argument("-o", "--output", default="-", help="file to write ('-': stdout)")
    add_store_arguments(parser)
    args = parser.parse_args(argv)
    parameters = parse_parameters(parser, args.params)
    try:
        command = export_command(args.query)
        with open_from_arguments(args) as memory:
            response = memory.execute_kip(command, parameters, caller=args.caller)
        capsule = response["results"][0]["result"]
    except (anda.AndaError, TypeError, ValueError) as err:
        return _failed(err)
    text = json.dumps(capsule, ensure_ascii=False)
    if args.output == "-":
        print(text)
    else:
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(text + "\n")
    return 0


def import_main(argv: Sequence[str] | None = None) -> int:
    """``python -m anda import [options] FILE``; returns the exit status."""
    parser = subcommand_parser(
        "import",
        "Verify a KIP Capsule and import it into a store.",
        "python -m anda import --db ./other memory.capsule.json",
    )
    parser.add_argument("file", help="the Capsule (JSON); '-' reads stdin")
    parser.add_argument("--dry-run", action="store_true", help="preview only; write nothing")
    add_store_arguments(parser)
    args = parser.parse_args(argv)
    refuse_server(parser, args.db, "importing a Capsule is an operation of the store's host")
    text = read_input(parser, args.file)
    try:
        with open_from_arguments(args) as memory:
            assert isinstance(memory, anda.Nexus)  # a server's URL was refused above
            report = memory.import_capsule(text, dry_run=args.dry_run)
    except (anda.AndaError, TypeError, ValueError) as err:
        return _failed(err)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


def copy_main(argv: Sequence[str] | None = None) -> int:
    """``python -m anda copy [options] SOURCE DESTINATION``; returns the exit status."""
    parser = subcommand_parser(
        "copy",
        "Copy a whole store (a directory or a bucket URL) to a new location and check the copy.",
        "python -m anda copy ./memory s3://backups/memory",
    )
    parser.add_argument("source", help="the store to copy: a directory or a bucket URL")
    parser.add_argument("destination", help="a new or empty directory, or a bucket URL")
    parser.add_argument("--name", default=None, help="database name inside the stores")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing store at the destination"
    )
    for side in ("source", "destination"):
        parser.add_argument(
            f"--{side}-storage-option",
            action="append",
            default=None,
            metavar="KEY=VALUE",
            help=f"an object_store option for a bucket {side}; repeatable",
        )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    bar = progress_bar(not args.no_progress, None, unit="B", desc="copying")
    shown = 0

    def progress(done: int, total: int) -> None:
        nonlocal shown
        if bar is not None:
            bar.total = total
            bar.update(done - shown)
        shown = done

    options: dict[str, Any] = {} if args.name is None else {"name": args.name}
    try:
        for side in ("source", "destination"):
            given = getattr(args, f"{side}_storage_option")
            options[f"{side}_storage_options"] = storage_options(given, f"--{side}-storage-option")
        result = anda.copy_store(
            args.source, args.destination, overwrite=args.overwrite, progress=progress, **options
        )
    except (anda.AndaError, TypeError, ValueError, OSError) as err:
        return _failed(err)
    finally:
        if bar is not None:
            bar.close()
    print(
        f"copied {result.files} objects ({result.bytes} bytes) to {args.destination}; "
        "the copy reads back equal"
    )
    return 0
