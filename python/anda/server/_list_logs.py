"""``list_logs``, as Anda's server answers it: its parameters, pages and
cursors over the audit log (``_audit.py``)."""

from __future__ import annotations

from typing import Any

from anda._calls import failure, invalid_envelope
from anda._logs import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from anda.server._audit import LIST_LOGS, AuditLog

__all__ = ["answer"]


def answer(
    log: AuditLog, params: Any, caller: str | None, *, per_caller: bool
) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body for ``{"method": "list_logs", "params": ...}``.

    ``params`` is ``{"cursor"?: str, "limit"?: int}`` (other members are
    ignored): at most 100 entries (``limit`` defaults to 10; 0 answers an
    empty page), after ``cursor``, oldest first, with ``next_cursor`` when
    the page is full. A malformed parameter is a 400
    ``InvalidRequestEnvelope``, an undecodable cursor a 400
    ``CursorInvalidated``. Under per-caller tenancy only the caller's own
    entries are read, and an anonymous caller reads nothing (403).
    """
    try:
        cursor, limit = _list_params(params)
    except ValueError as err:
        return 400, invalid_envelope(f"invalid parameters: {err}")
    if per_caller and caller is None:
        return 403, failure(
            "NotAuthorized",
            "governance",
            "an anonymous caller has no audit log to read under per-caller tenancy",
            retry="requires_authority",
            hint="Send the API key of the caller whose entries you want.",
        )
    if limit == 0:
        return 200, _page([], None)
    limit = min(limit, MAX_LIMIT)
    after = 0
    if cursor is not None:
        try:
            after = decode_cursor(cursor)
        except ValueError as err:
            return 400, failure(
                "CursorInvalidated",
                "history",
                f"invalid cursor: {err}",
                retry="requires_new_snapshot",
                hint="Start again without a cursor, or pass a next_cursor this server issued.",
            )
    logs = log.read(after, limit, caller=caller, only_caller=per_caller, skip_method=LIST_LOGS)
    next_cursor = encode_cursor(logs[-1]["_id"]) if len(logs) >= limit else None
    return 200, _page(logs, next_cursor)


def _page(logs: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "kip": "2.0",
        "status": "succeeded",
        "results": [{"status": "succeeded", "result": logs}],
    }
    if next_cursor is not None:
        response["next_cursor"] = next_cursor
    return response


def _list_params(params: Any) -> tuple[str | None, int]:
    """``cursor`` and ``limit``, read as serde reads ``ListLogParams``: an
    object (unknown members ignored) or an array of at most two items."""
    if isinstance(params, list):
        if len(params) > 2:
            raise ValueError(f"invalid length {len(params)}, expected at most 2 elements")
        params = dict(zip(("cursor", "limit"), params, strict=False))
    if not isinstance(params, dict):
        raise ValueError(f"invalid type: {_json_type(params)}, expected an object")
    cursor = params.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise ValueError(f"cursor: invalid type: {_json_type(cursor)}, expected a string")
    limit = params.get("limit")
    if limit is None:
        return cursor, DEFAULT_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit < 2**64:
        raise ValueError(f"limit: invalid value: {limit!r}, expected a non-negative integer")
    return cursor, limit


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return f"number `{value}`"
    if isinstance(value, list):
        return "a sequence"
    return "a map"
