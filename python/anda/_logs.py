"""The audit log as it travels: ``list_logs`` pages and their cursors.

``python -m anda serve`` keeps an audit log of every request it answers
(:mod:`anda.server._audit`) and serves it with the ``list_logs`` method, in
the wire format of Anda's own server (``anda_cognitive_nexus_server``): a
page of at most 100 entries in ascending ``_id`` order, and a
``next_cursor`` while a page came back full. This module is what both ends
share, with only the standard library: the page type and the cursor, which
is the ``_id`` of a page's last entry as Anda's server spells it (``b64:``
and base64url of the id's deterministic CBOR encoding).

>>> encode_cursor(1), encode_cursor(500)
('b64:AQ==', 'b64:GQH0')
>>> decode_cursor("b64:GQH0"), decode_cursor("GQH0")
(500, 500)
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from anda.errors import error_from_response

__all__ = [
    "DEFAULT_LIMIT",
    "FILE_NAME",
    "MAX_LIMIT",
    "LogPage",
    "commands_of",
    "decode_cursor",
    "encode_cursor",
    "list_logs",
    "read_file",
]

#: The audit log's file inside a directory store that ``anda serve`` served.
FILE_NAME = "anda.audit.sqlite"

#: Entries per page when ``limit`` is not given.
DEFAULT_LIMIT = 10
#: The most entries one page holds; a larger ``limit`` is capped to it.
MAX_LIMIT = 100

_PREFIX = "b64:"
_U64_MAX = 2**64 - 1
_ALPHABET = re.compile(r"[A-Za-z0-9+/_-]*\Z")


class LogPage(NamedTuple):
    """One page of the audit log, as :meth:`anda.Client.list_logs` returns it.

    Attributes:
        logs: the entries, oldest first; each a dict with the fields of
            Anda's server (``_id``, ``languages``, ``request``, ``response``
            ``{status, tx_id, errors}``, ``period``, ``timestamp``) and those
            anda adds (``caller``, ``method``, ``http_method``, ``path``,
            ``http_status``, ``request_bytes``, ``duration_ms``).
        next_cursor: pass it as ``cursor`` for the next page; ``None`` when
            this page was not full, so nothing more is logged yet.

    >>> page = LogPage([{"_id": 7}], "b64:Bw==")
    >>> logs, cursor = page
    >>> [entry["_id"] for entry in logs], cursor
    ([7], 'b64:Bw==')
    """

    logs: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(entry_id: int) -> str:
    """The cursor that continues after the entry ``entry_id``."""
    if isinstance(entry_id, bool) or not isinstance(entry_id, int) or not 0 <= entry_id <= _U64_MAX:
        raise ValueError(f"an entry id is an integer in [0, 2**64), not {entry_id!r}")
    if entry_id < 24:
        encoded = bytes([entry_id])
    else:
        # CBOR major type 0 in its shortest form: one, two, four or eight bytes.
        for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if entry_id < 256**size:
                encoded = bytes([info]) + entry_id.to_bytes(size, "big")
                break
    return _PREFIX + base64.urlsafe_b64encode(encoded).decode("ascii")


def decode_cursor(cursor: str) -> int:
    """The entry id a cursor continues after.

    Read as Anda's server reads it: the ``b64:`` prefix is optional, padding
    too (but only where the last group is short), and the standard alphabet
    is accepted when the text uses ``+`` or ``/``.

    Raises:
        ValueError: not a cursor this log issued (the server answers it with
            ``CursorInvalidated``).

    >>> decode_cursor("b64:####")
    Traceback (most recent call last):
    ...
    ValueError: not base64: ...
    """
    text = cursor.removeprefix(_PREFIX)
    bare = text.rstrip("=")
    padding = len(text) - len(bare)
    if padding > 2 or (padding and len(bare) % 4 not in (2, 3)):
        raise ValueError("not base64: invalid padding")
    if not _ALPHABET.match(bare) or len(bare) % 4 == 1:
        raise ValueError(f"not base64: {text!r}")
    standard = "+" in bare or "/" in bare
    if standard and ("-" in bare or "_" in bare):
        raise ValueError(f"not base64: {text!r} mixes two alphabets")
    altchars = None if standard else b"-_"
    try:
        data = base64.b64decode(bare + "=" * (-len(bare) % 4), altchars=altchars, validate=True)
    except binascii.Error as err:
        raise ValueError(f"not base64: {err}") from None
    # Trailing bits must be zero, as a strict decoder requires.
    again = base64.b64encode(data, altchars=altchars).decode("ascii").rstrip("=")
    if again != bare:
        raise ValueError(f"not base64: {text!r} has stray trailing bits")
    return _cbor_u64(data)


def _cbor_u64(data: bytes) -> int:
    if not data:
        raise ValueError("not a cursor: empty")
    head = data[0]
    if head >> 5 != 0:
        raise ValueError("not a cursor: not an unsigned integer")
    info = head & 0x1F
    if info < 24:
        size, value = 0, info
    elif info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        if len(data) < 1 + size:
            raise ValueError("not a cursor: truncated")
        value = int.from_bytes(data[1 : 1 + size], "big")
    else:
        raise ValueError("not a cursor: not an unsigned integer")
    if len(data) != 1 + size:
        raise ValueError("not a cursor: trailing bytes")
    return value


def read_file(path: str | os.PathLike[str], after: int = 0) -> Iterator[dict[str, Any]]:
    """Every entry of the audit log file at ``path`` with an ``_id`` above
    ``after``, oldest first. Read-only: the serving process may be writing
    it meanwhile.

    Raises:
        sqlite3.Error: ``path`` is not an audit log.
    """
    uri = Path(path).absolute().as_uri() + "?mode=ro"
    db = sqlite3.connect(uri, uri=True)
    try:
        while True:
            rows = db.execute(
                "SELECT _id, entry FROM kip_logs WHERE _id > ? ORDER BY _id LIMIT 500", (after,)
            ).fetchall()
            if not rows:
                return
            for entry_id, text in rows:
                yield {"_id": entry_id, **json.loads(text)}
            after = rows[-1][0]
    finally:
        db.close()


def list_logs(
    exchange: Callable[..., dict[str, Any]], cursor: str | None, limit: int | None
) -> LogPage:
    """One ``list_logs`` call through a Client's ``exchange``; see
    :meth:`anda.Client.list_logs`."""
    if cursor is not None and not isinstance(cursor, str):
        raise TypeError(
            f"cursor must be a str (a next_cursor) or None, not {type(cursor).__name__}"
        )
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be an int >= 0 or None, not {limit!r}")
    params: dict[str, Any] = {}
    if cursor is not None:
        params["cursor"] = cursor
    if limit is not None:
        params["limit"] = limit
    response = exchange("list_logs", params, safe=True)
    if response.get("status") != "succeeded":
        raise error_from_response(response)
    results = response.get("results") or [{}]
    logs = results[0].get("result") or []
    next_cursor = response.get("next_cursor")
    return LogPage(list(logs), next_cursor if isinstance(next_cursor, str) else None)


def commands_of(request: Any) -> list[Any]:
    """The command texts of a request envelope or of tool arguments."""
    if not isinstance(request, dict):
        return []
    if "command" in request:
        return [request["command"]]
    operations = request.get("operations", request.get("commands"))
    if not isinstance(operations, list):
        return []
    return [op.get("command") if isinstance(op, dict) else op for op in operations]
