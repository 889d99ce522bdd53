"""What a call asks of memory, read from its commands without OpenTelemetry:
each command's kind (its first keyword) and the GenAI memory operation it is.

>>> operation(["FIND"]), operation(["UPSERT", "UPSERT"]), operation(["PURGE"])
('search_memory', 'upsert_memory', 'delete_memory')
>>> operation(["FIND", "CREATE"]), operation(["CREATE", "PURGE"])
('create_memory', 'upsert_memory')
>>> kind("  // who?\\n find(?p) WHERE { ?p {type: :t} }"), kind("DROP ALL"), kind(3)
('FIND', 'UNKNOWN', 'UNKNOWN')
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MIXED", "UNKNOWN", "command_texts", "kind", "operation", "summary"]

#: ``anda.kip.command`` of a batch whose commands are of several kinds.
MIXED = "MIXED"
#: The kind of a command that starts with no KIP keyword.
UNKNOWN = "UNKNOWN"

_SEARCH, _CREATE, _UPDATE, _UPSERT, _DELETE = (
    "search_memory",
    "create_memory",
    "update_memory",
    "upsert_memory",
    "delete_memory",
)

#: Each KIP 2.0 command keyword, and the GenAI memory operation it performs.
OPERATIONS: dict[str, str] = {
    # KQL and META: reads.
    "FIND": _SEARCH,
    "SEARCH": _SEARCH,
    "DESCRIBE": _SEARCH,
    "LIST": _SEARCH,
    "HISTORY": _SEARCH,
    "CHANGES": _SEARCH,
    "EXPORT": _SEARCH,
    "VERIFY": _SEARCH,
    "VALIDATE": _SEARCH,
    "PREVIEW": _SEARCH,
    # KML: writes.
    "CREATE": _CREATE,
    "DEFINE": _CREATE,
    "UPSERT": _UPSERT,
    "ENSURE": _UPSERT,
    "MUTATE": _UPSERT,
    "UPDATE": _UPDATE,
    "TRANSITION": _UPDATE,
    "SET": _UPDATE,
    "MERGE": _UPDATE,
    "PURGE": _DELETE,
    "DELETE": _DELETE,
}

_KEYWORD = re.compile(r"(?:\s+|//[^\n]*(?:\n|$))*([A-Za-z]+)")


def kind(command: object) -> str:
    """The command's first keyword (KIP keywords are case-insensitive, and
    line comments may come first), or ``UNKNOWN``."""
    if not isinstance(command, str):
        return UNKNOWN
    found = _KEYWORD.match(command)
    word = found.group(1).upper() if found else ""
    return word if word in OPERATIONS else UNKNOWN


def operation(kinds: Sequence[str]) -> str:
    """The memory operation of a call: ``search_memory`` when it only reads,
    the one operation its writes share, and ``upsert_memory`` when they are
    of several (a batch that may create, update and delete)."""
    writes = {OPERATIONS.get(k, _UPSERT) for k in kinds} - {_SEARCH}
    if not writes:
        return _SEARCH if kinds else _UPSERT
    return writes.pop() if len(writes) == 1 else _UPSERT


def summary(kinds: Sequence[str]) -> str:
    """One kind for a call: its commands' kind if they share one, else ``MIXED``."""
    distinct = set(kinds)
    return distinct.pop() if len(distinct) == 1 else (MIXED if distinct else UNKNOWN)


def command_texts(call: str, subject: Any) -> list[Any]:
    """The command of each operation of a call, as given (not necessarily text).

    ``subject`` is what the public call was given: a normalised batch
    (``execute_kip``), a model's tool arguments, a request envelope, or bulk
    writes.

    >>> command_texts("execute_kip", [("FIND(?p) ...", None), ("DESCRIBE PRIMER", None)])
    ['FIND(?p) ...', 'DESCRIBE PRIMER']
    >>> command_texts("call_tool", '{"operations": [{"command": "FIND(?p) ..."}, "LIST TYPES"]}')
    ['FIND(?p) ...', 'LIST TYPES']
    >>> command_texts("call_tool", "not JSON")
    [None]
    """
    if call == "execute_kip":
        return [subject] if isinstance(subject, str) else [item[0] for item in subject]
    if call == "bulk_write":
        return [item[0] for item in subject]
    if call == "call_tool" and isinstance(subject, (str, bytes)):
        try:
            subject = json.loads(subject)
        except ValueError:
            return [None]
    if not isinstance(subject, Mapping):
        return [None]
    if "command" in subject:
        return [subject["command"]]
    operations = subject.get("operations")
    if not isinstance(operations, list) or not operations:
        return [None]
    return [op.get("command") if isinstance(op, Mapping) else op for op in operations]
