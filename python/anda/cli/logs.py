"""``python -m anda logs``: the audit log ``python -m anda serve`` keeps.

Two ways to read it: from a server (``--db http://...``, key in
``$ANDA_API_KEY``) with ``list_logs``, which shows a key's own entries under
per-caller tenancy and leaves out the ``list_logs`` calls themselves; or
from the file (``--db DIR`` reads ``DIR/anda.audit.sqlite``; ``--audit-log
FILE`` any file), every entry, even while the server runs. Oldest first, one
line per request (``--json``: one JSON object per line). Exit status 0; 1
when the log cannot be read; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import anda
from anda._location import is_url
from anda._logs import FILE_NAME, MAX_LIMIT, commands_of, encode_cursor, read_file
from anda.cli.common import subcommand_parser

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = subcommand_parser(
        "logs",
        "Show the audit log of python -m anda serve: who asked what, when, and how it went.",
        "python -m anda logs --db ./memory --caller alice --limit 20",
    )
    parser.add_argument(
        "--db",
        default=os.environ.get("ANDA_DB") or None,
        help="a store directory that anda serve served, or a server's http(s):// URL "
        "(key from $ANDA_API_KEY) (default: $ANDA_DB)",
    )
    parser.add_argument("--audit-log", metavar="FILE", help="an audit log file to read instead")
    parser.add_argument(
        "--after", type=int, default=0, metavar="ID", help="start after the entry ID (default: 0)"
    )
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="show at most N")
    parser.add_argument("--caller", default=None, help="only this caller's entries")
    parser.add_argument("--json", action="store_true", help="one JSON object per entry")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m anda logs [--db DIR|URL | --audit-log FILE] [options]``;
    returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.after < 0 or (args.limit is not None and args.limit < 0):
        parser.error("--after and --limit take a whole number >= 0")
    if args.audit_log is None and args.db is None:
        parser.error("--db (or $ANDA_DB) or --audit-log is required")
    try:
        if args.audit_log is None and is_url(args.db):
            found = _from_server(args.db, args.after)
        else:
            found = _from_file(_file_of(args), args.after)
        shown = 0
        for entry in found:
            if args.limit is not None and shown >= args.limit:
                break
            if args.caller is not None and entry.get("caller") != args.caller:
                continue
            print(json.dumps(entry, ensure_ascii=False) if args.json else _line(entry))
            shown += 1
    except (anda.AndaError, OSError, sqlite3.Error) as err:
        print(f"error: cannot read the audit log: {err}", file=sys.stderr)
        return 1
    return 0


def _file_of(args: argparse.Namespace) -> str:
    if args.audit_log is not None:
        path: str = args.audit_log
    else:
        path = os.path.join(args.db, FILE_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist (has python -m anda serve served it?)")
    return path


def _from_file(path: str, after: int) -> Iterator[dict[str, Any]]:
    yield from read_file(path, after)


def _from_server(url: str, after: int) -> Iterator[dict[str, Any]]:
    with anda.open_memory(url) as client:
        assert isinstance(client, anda.Client)
        cursor = encode_cursor(after) if after else None
        while True:
            logs, cursor = client.list_logs(cursor, MAX_LIMIT)
            yield from logs
            if cursor is None:
                return


def _line(entry: dict[str, Any]) -> str:
    """``#id time caller request status outcome languages command``."""
    when = datetime.datetime.fromtimestamp(entry.get("timestamp", 0) / 1000, datetime.timezone.utc)
    response = entry.get("response") or {}
    errors = [error.get("code", "?") for error in response.get("errors") or ()]
    outcome = str(response.get("status"))
    if errors:
        outcome += ":" + ",".join(errors)
    method = entry.get("method") or "-"
    request = entry.get("request")
    commands = [" ".join(text.split()) for text in commands_of(request) if isinstance(text, str)]
    shown = " | ".join(commands)
    if len(shown) > 120:
        shown = shown[:119] + "…"
    return (
        f"#{entry.get('_id')} {when.isoformat(timespec='seconds')} "
        f"{entry.get('caller') or '-'} {entry.get('http_method', '-')} {entry.get('path', '-')} "
        f"{method} {entry.get('http_status', '-')} {outcome} {entry.get('languages', '-')} "
        f"{entry.get('request_bytes', 0)}B {shown}".rstrip()
    )
