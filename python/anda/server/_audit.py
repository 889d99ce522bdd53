"""The audit log of ``python -m anda serve``: one entry per request answered.

An entry says who asked (the caller id its key maps to, never the key),
when, the method, the commands (the request, cut past a size bound), the
outcome with its error codes and transaction ids, and the request's size. It
has the fields of an entry in the ``kip_logs`` collection of Anda's own
server (``_id``, ``languages``, ``request``, ``response``, ``period``,
``timestamp``) plus anda's: ``caller``, ``method``, ``http_method``,
``path``, ``http_status``, ``request_bytes``, ``duration_ms``.

Where it is kept: the engine offers no collection outside KIP's reach, so the
log is a SQLite file, ``anda.audit.sqlite`` inside a directory store (next to
``anda.lock``; the store, ``python -m anda check`` and ``copy`` ignore it),
or in memory for an in-memory or bucket store unless a path is given. Entries
older than the retention period are deleted every hour.

Reading it: ``list_logs`` (``_list_logs.py``), exactly as Anda's
server answers it; under per-caller tenancy a caller reads only its own
entries. ``python -m anda logs --db DIR`` reads the file itself, everything,
even while the server runs.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from anda._logs import FILE_NAME, MAX_LIMIT, commands_of

__all__ = [
    "DEFAULT_MAX_LOGGED_REQUEST_BYTES",
    "DEFAULT_RETENTION_DAYS",
    "FILE_NAME",
    "AuditLog",
    "Entry",
]

_log = logging.getLogger("anda.server")

#: Days an entry is kept (0: forever), as Anda's server's ``LOG_RETENTION_DAYS``.
DEFAULT_RETENTION_DAYS = 30
#: The largest request stored whole in an entry, as Anda's server's
#: ``MAX_LOGGED_REQUEST_BYTES``; a larger one is stored cut.
DEFAULT_MAX_LOGGED_REQUEST_BYTES = 8192
#: The smallest bound accepted: a cut request still needs room to say so.
MIN_LOGGED_REQUEST_BYTES = 256
#: The method of a ``list_logs`` call: logged, but left out of ``list_logs``
#: pages (a reader paging one entry at a time would otherwise never finish).
LIST_LOGS = "list_logs"

_HOUR_MS = 3_600_000
_MAX_RETENTION_DAYS = (2**63 - 1) // _HOUR_MS // 24

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kip_logs (
    _id INTEGER PRIMARY KEY AUTOINCREMENT,
    period INTEGER NOT NULL,
    caller TEXT,
    method TEXT,
    entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS kip_logs_period ON kip_logs (period);
CREATE INDEX IF NOT EXISTS kip_logs_caller ON kip_logs (caller, _id);
"""


@dataclass
class Entry:
    """One request, filled in as it is answered."""

    timestamp: int
    http_method: str
    path: str
    started: float = field(default_factory=time.monotonic)
    caller: str | None = None
    method: str | None = None
    request: Any = None
    response: dict[str, Any] | None = None
    http_status: int = 0
    request_bytes: int = 0


# The entry of the request being answered; engine calls made for it (the
# MCP server's too) add what they ran and how it went.
_current: contextvars.ContextVar[Entry | None] = contextvars.ContextVar(
    "anda_audit_entry", default=None
)


def begin(http_method: str, path: str) -> contextvars.Token[Entry | None]:
    """Starts the entry of the request this task answers."""
    return _current.set(Entry(int(time.time() * 1000), http_method, path))


def current() -> Entry | None:
    """The entry of the request being answered, if any."""
    return _current.get()


def end(token: contextvars.Token[Entry | None]) -> None:
    _current.reset(token)


def note_call(method: str, request: Any, response: dict[str, Any]) -> None:
    """What the request ran: its method, arguments and response."""
    entry = _current.get()
    if entry is not None:
        entry.method = method
        entry.request = request
        entry.response = response


def note_payload(payload: Any) -> None:
    """The method and params of a JSON-RPC-style body, before it runs."""
    entry = _current.get()
    if entry is not None and isinstance(payload, dict):
        if isinstance(payload.get("method"), str):
            entry.method = payload["method"]
        entry.request = payload.get("params")


def note_mcp(body: bytes) -> None:
    """The JSON-RPC method of an MCP request (``tools/call``, ...); a tool
    call's engine call names its tool later."""
    entry = _current.get()
    if entry is None:
        return
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return
    if isinstance(message, dict) and isinstance(message.get("method"), str):
        entry.method = message["method"]
        if isinstance(message.get("params"), dict):
            entry.request = message["params"]


def note_answer(response: dict[str, Any]) -> None:
    """A response the server gave itself (a refusal, a timeout), unless an
    engine call already gave the entry its outcome."""
    entry = _current.get()
    if entry is not None and entry.response is None:
        entry.response = response


class AuditLog:
    """The entries, in SQLite: a file, or memory (``path=None``).

    Entries are written by a thread of their own, a batch per transaction,
    so answering a request never waits for the disk. Reads see every entry
    recorded before them.

    >>> log = AuditLog(None)
    >>> entry = Entry(1_700_000_000_000, "POST", "/kip", caller="alice", method="execute_kip")
    >>> entry.request = {"kip": "2.0", "operations": [{"command": "DESCRIBE PRIMER"}]}
    >>> entry.response = {"status": "succeeded", "results": [{"status": "succeeded"}]}
    >>> entry.http_status = 200
    >>> log.record(entry)
    >>> [first] = log.read()
    >>> first["_id"], first["languages"], first["caller"], first["response"]
    (1, 'META', 'alice', {'status': 'succeeded', 'tx_id': None, 'errors': []})
    >>> log.close()
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        max_request_bytes: int = DEFAULT_MAX_LOGGED_REQUEST_BYTES,
    ) -> None:
        if isinstance(max_request_bytes, bool) or not isinstance(max_request_bytes, int):
            raise TypeError("max_request_bytes must be an int")
        self.path = None if path is None else os.fspath(path)
        self._max_request_bytes = max(max_request_bytes, MIN_LOGGED_REQUEST_BYTES)
        self._db = sqlite3.connect(
            ":memory:" if self.path is None else self.path,
            check_same_thread=False,
            isolation_level=None,
        )
        self._lock = threading.Lock()
        try:
            if self.path is not None:
                # Readers (python -m anda logs) never block the writer, nor it them.
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except BaseException:
            self._db.close()
            raise
        self._pending: queue.SimpleQueue[Entry | threading.Event | None] = queue.SimpleQueue()
        self._closed = False
        self._writer = threading.Thread(target=self._write, name="anda-audit-log", daemon=True)
        self._writer.start()

    def record(self, entry: Entry) -> None:
        """Queues ``entry``; it is written shortly, on the log's own thread."""
        if not self._closed:
            self._pending.put(entry)

    def flush(self) -> None:
        """Waits until every entry recorded so far is written."""
        if self._closed:
            return
        done = threading.Event()
        self._pending.put(done)
        done.wait()

    def read(
        self,
        after: int = 0,
        limit: int = MAX_LIMIT,
        *,
        caller: str | None = None,
        only_caller: bool = False,
        skip_method: str | None = None,
    ) -> list[dict[str, Any]]:
        """Entries with an ``_id`` above ``after``, oldest first.

        Args:
            after: the ``_id`` to continue after.
            limit: the most entries returned.
            caller: with ``only_caller``, the caller whose entries are read.
            only_caller: read only ``caller``'s entries.
            skip_method: leave out entries of this method.
        """
        self.flush()
        query = "SELECT _id, entry FROM kip_logs WHERE _id > ?"
        arguments: list[Any] = [after]
        if only_caller:
            query += " AND caller = ?"
            arguments.append(caller)
        if skip_method is not None:
            query += " AND (method IS NULL OR method != ?)"
            arguments.append(skip_method)
        query += " ORDER BY _id LIMIT ?"
        arguments.append(limit)
        with self._lock:
            rows = self._db.execute(query, arguments).fetchall()
        return [{"_id": entry_id, **json.loads(text)} for entry_id, text in rows]

    def prune(self, before_period: int) -> int:
        """Deletes the entries of hours (since the epoch) before
        ``before_period``; returns how many."""
        self.flush()
        with self._lock:
            cursor = self._db.execute("DELETE FROM kip_logs WHERE period < ?", (before_period,))
        return cursor.rowcount

    def prune_expired(self, retention_days: int, now_ms: int | None = None) -> int:
        """Deletes what is older than ``retention_days`` (0: nothing)."""
        if retention_days == 0:
            return 0
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return self.prune(now // _HOUR_MS - retention_days * 24)

    def close(self) -> None:
        """Writes what is queued, then closes. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pending.put(None)
        self._writer.join()
        with self._lock:
            self._db.close()

    def _write(self) -> None:
        while True:
            batch = [self._pending.get()]
            while not self._pending.empty() and len(batch) < 512:
                batch.append(self._pending.get())
            entries = [item for item in batch if isinstance(item, Entry)]
            if entries:
                try:
                    self._insert(entries)
                except (sqlite3.Error, TypeError, ValueError) as err:
                    # Never silent, and never the end of serving.
                    _log.error("cannot write %d audit log entries: %s", len(entries), err)
            for item in batch:
                if isinstance(item, threading.Event):
                    item.set()
            if any(item is None for item in batch):
                return

    def _insert(self, entries: list[Entry]) -> None:
        rows = [self._row(entry) for entry in entries]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO kip_logs (period, caller, method, entry) VALUES (?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _row(self, entry: Entry) -> tuple[int, str | None, str | None, str]:
        period = entry.timestamp // _HOUR_MS
        record = {
            "languages": languages_of(entry.request, entry.response),
            "request": bounded_request(entry.request, self._max_request_bytes),
            "response": outcome_of(entry.response, entry.http_status),
            "period": period,
            "timestamp": entry.timestamp,
            "caller": entry.caller,
            "method": entry.method,
            "http_method": entry.http_method,
            "path": entry.path,
            "http_status": entry.http_status,
            "request_bytes": entry.request_bytes,
            "duration_ms": round((time.monotonic() - entry.started) * 1000, 3),
        }
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
        return period, entry.caller, entry.method, text


def open_log(
    location: str | os.PathLike[str] | None,
    store_path: str | None,
    *,
    max_request_bytes: int = DEFAULT_MAX_LOGGED_REQUEST_BYTES,
) -> AuditLog:
    """The audit log at ``location``: a file path, ``":memory:"``, or
    ``None`` for the default place (``anda.audit.sqlite`` in a directory
    store ``store_path``, else memory)."""
    if location is None:
        if store_path is not None and os.path.isdir(store_path):
            path = os.path.join(store_path, FILE_NAME)
            try:
                return AuditLog(path, max_request_bytes=max_request_bytes)
            except (sqlite3.Error, OSError) as err:
                # A store on read-only media can still be served.
                _log.warning(
                    "cannot keep the audit log in %s (%s): it is kept in memory, and lost on exit",
                    path,
                    err,
                )
        return AuditLog(None, max_request_bytes=max_request_bytes)
    if os.fspath(location) == ":memory:":
        return AuditLog(None, max_request_bytes=max_request_bytes)
    return AuditLog(location, max_request_bytes=max_request_bytes)


def check_retention(days: object) -> int:
    """``days`` as a retention period: an int in [0, ...]; 0 keeps forever."""
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= _MAX_RETENTION_DAYS:
        raise ValueError(
            f"the log retention must be a whole number of days in [0, {_MAX_RETENTION_DAYS}] "
            f"(0 keeps every entry), not {days!r}"
        )
    return days


# -- what an entry says ------------------------------------------------------------------


_KQL = frozenset({"FIND"})
_META = frozenset(
    {"DESCRIBE", "LIST", "SEARCH", "VERIFY", "VALIDATE", "PREVIEW", "HISTORY", "CHANGES", "EXPORT"}
)


def languages_of(request: Any, response: dict[str, Any] | None) -> str:
    """The KIP languages a request ran, in first-seen order, as Anda's server
    names them (``KQL``, ``KML``, ``META``, comma-joined; ``UNKNOWN`` for a
    command that did not parse).

    >>> languages_of({"operations": ["FIND(?p) WHERE { ?p {} }", "UPSERT X"]}, None)
    'KQL,KML'
    >>> languages_of({"command": "FIND(?x WHERE"},
    ...              {"results": [{"error": {"category": "syntax"}}]})
    'UNKNOWN'
    """
    results = response.get("results") if isinstance(response, dict) else None
    seen: list[str] = []
    for index, command in enumerate(commands_of(request)):
        language = _language(command)
        if isinstance(results, list) and index < len(results):
            error = results[index].get("error") if isinstance(results[index], dict) else None
            if isinstance(error, dict) and error.get("category") == "syntax":
                language = "UNKNOWN"
        if language not in seen:
            seen.append(language)
    return ",".join(seen) or "UNKNOWN"


def _language(command: Any) -> str:
    if not isinstance(command, str):
        return "UNKNOWN"
    text = command.lstrip()
    while text.startswith("//"):  # leading comment lines
        text = text.partition("\n")[2].lstrip()
    word = text.split(None, 1)[0].split("(", 1)[0].upper() if text else ""
    if not word.isalpha():
        return "UNKNOWN"
    if word in _KQL:
        return "KQL"
    return "META" if word in _META else "KML"


def outcome_of(response: dict[str, Any] | None, http_status: int) -> dict[str, Any]:
    """``{status, tx_id, errors}``: the outcome as Anda's server logs it,
    every error (the request's and each operation's) and the transactions
    committed (``tx_ids``, one per committed operation)."""
    if not isinstance(response, dict):
        status = "succeeded" if 200 <= http_status < 300 else "failed"
        return {"status": status, "tx_id": None, "errors": []}
    errors: list[Any] = []
    if isinstance(response.get("error"), dict):
        errors.append(response["error"])
    tx_ids: list[str] = []
    top = response.get("receipt")
    tx_id = top.get("tx_id") if isinstance(top, dict) else None
    results = response.get("results")
    for result in results if isinstance(results, list) else []:
        if not isinstance(result, dict):
            continue
        error = result.get("error")
        if isinstance(error, dict) and error is not response.get("error") and error not in errors:
            errors.append(error)
        receipt = result.get("receipt")
        if isinstance(receipt, dict) and isinstance(receipt.get("tx_id"), str):
            tx_ids.append(receipt["tx_id"])
    outcome: dict[str, Any] = {
        "status": response.get("status"),
        "tx_id": tx_id if tx_id is not None else (tx_ids[0] if tx_ids else None),
        "errors": errors,
    }
    if tx_ids:
        outcome["tx_ids"] = tx_ids
    return outcome


def bounded_request(request: Any, max_bytes: int) -> Any:
    """``request`` as stored: whole up to ``max_bytes`` of JSON, else a
    stand-in that keeps the correlation members, a prefix of the first
    command and a note of what was cut (still a request envelope).

    >>> long = {"kip": "2.0", "request_id": "r1",
    ...         "operations": [{"command": "FIND(?p) " + "x" * 900}]}
    >>> cut = bounded_request(long, 512)
    >>> cut["request_id"], len(cut["operations"]), "cut" in cut["operations"][0]["command"]
    ('r1', 1, True)
    >>> len(json.dumps(cut)) <= 512
    True
    """
    if request is None:
        return None
    try:
        size = len(json.dumps(request, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        size = -1
    if 0 <= size <= max_bytes:
        return request
    commands = commands_of(request)
    first = commands[0] if commands and isinstance(commands[0], str) else ""
    prefix = first.encode("utf-8")[: max_bytes // 2].decode("utf-8", "ignore")
    note = (
        f"{prefix}… [cut: a request of {size if size >= 0 else 'unknown'} bytes with "
        f"{len(commands)} operation(s), over this audit log's {max_bytes}-byte bound]"
    )
    stand_in: dict[str, Any] = {}
    if isinstance(request, dict):
        for member in ("kip", "request_id", "execution", "options"):
            if member in request:
                stand_in[member] = request[member]
    stand_in["operations"] = [{"command": note}]
    try:
        fits = len(json.dumps(stand_in, ensure_ascii=False).encode("utf-8")) <= max_bytes
    except (TypeError, ValueError):
        fits = False
    if not fits:
        # Correlation members come from the client too: the bound is not advisory.
        stand_in = {"operations": [{"command": note[: max_bytes // 4]}]}
    return stand_in
