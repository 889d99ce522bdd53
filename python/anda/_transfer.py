"""``python -m anda export|import|copy``: memory out of a store, into one, and
whole stores between locations.

- ``export --db SRC [QUERY] [-o FILE]`` writes a KIP Capsule (JSON) of the whole
  memory, or of what ``QUERY`` selects (see :meth:`anda.Nexus.export_capsule`).
- ``import --db DST FILE`` verifies a Capsule and imports it
  (``--dry-run`` previews); prints the import report.
- ``copy SRC DST`` copies a whole store, directory or bucket, object for
  object and checks the copy (:func:`anda.copy_store`), with a progress bar
  on a terminal.

Exit status: 0 done, 1 refused or failed (the reason on standard error),
2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import anda
from anda._cli import add_store_arguments, open_from_arguments, progress_bar, storage_options

__all__ = ["copy_main", "export_main", "import_main"]


def _parser(name: str, description: str, example: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=f"python -m anda {name}", description=description, epilog=f"Example: {example}"
    )


def _failed(err: BaseException) -> int:
    print(f"error: {err}", file=sys.stderr)
    return 1


def export_main(argv: Sequence[str] | None = None) -> int:
    parser = _parser(
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
    try:
        parameters = None if args.params is None else json.loads(args.params)
    except json.JSONDecodeError as err:
        parser.error(f"--params is not valid JSON: {err}")
    try:
        with open_from_arguments(args) as memory:
            if not isinstance(memory, anda.Nexus):
                parser.error("export reads a store directory, not a server URL")
            capsule = memory.export_capsule(args.query, parameters, caller=args.caller)
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
    parser = _parser(
        "import",
        "Verify a KIP Capsule and import it into a store.",
        "python -m anda import --db ./other memory.capsule.json",
    )
    parser.add_argument("file", help="the Capsule (JSON); '-' reads stdin")
    parser.add_argument("--dry-run", action="store_true", help="preview only; write nothing")
    add_store_arguments(parser)
    args = parser.parse_args(argv)
    try:
        if args.file == "-":
            text = sys.stdin.read()
        else:
            with open(args.file, encoding="utf-8") as file:
                text = file.read()
    except (OSError, UnicodeDecodeError) as err:
        parser.error(f"cannot read {args.file}: {err}")
    try:
        with open_from_arguments(args) as memory:
            if not isinstance(memory, anda.Nexus):
                parser.error("import writes to a store directory, not a server URL")
            report = memory.import_capsule(text, dry_run=args.dry_run)
    except (anda.AndaError, TypeError, ValueError) as err:
        return _failed(err)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


def copy_main(argv: Sequence[str] | None = None) -> int:
    parser = _parser(
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
