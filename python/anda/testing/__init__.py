"""Helpers for testing code that uses anda.

- :func:`dump_store`: a canonical, comparable snapshot of a store's contents.
- :func:`open_with_faults`: a directory store behind a fault-injecting object
  store, to prove that code survives storage failures.
- :mod:`anda.testing.strategies`: Hypothesis strategies that generate KIP
  commands and parameters in the pinned engine's dialect (needs
  ``hypothesis``; ``pip install 'anda[testing]'``).

>>> import anda
>>> from anda.testing import dump_store
>>> with anda.Nexus() as nexus:
...     before = dump_store(nexus)
...     _ = nexus.execute_kip(
...         'UPSERT CONCEPT ?t { MATCH { type: "Topic", key: "kip" } }', dry_run=True
...     )
...     dump_store(nexus) == before
True
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

from anda._nexus import Nexus

__all__ = ["CONCEPT_STATES", "FaultInjector", "dump_store", "open_with_faults"]

#: A storage operation a fault can hit.
StorageOperation = Literal[
    "put", "get", "delete", "list", "copy", "rename",
    "multipart_start", "multipart_part", "multipart_complete", "multipart_abort",
]  # fmt: skip
#: What a fault does: fail before storage, lose the acknowledgement after it,
#: keep part of a put, cut the power (every later request fails), or wait.
FaultKind = Literal["error", "error_after", "torn", "crash", "delay"]

#: Every lifecycle state a Concept can be in.
CONCEPT_STATES = ("active", "archived", "tombstoned", "merged", "quarantined", "purged")

_CONCEPTS = (
    "FIND(?c.schema_ref, ?c.key, ?c.name, ?c.attributes) WHERE { ?c CONCEPT {state: :state} }"
)
# Endpoints are named by (schema_ref, key), never by id: ids are handed out by
# dry runs and failed writes too, so two equal stores can number differently.
_ASSERTIONS = (
    "FIND(?s.schema_ref, ?s.key, ?p.predicate_ref, ?o.schema_ref, ?o.key, ?p.object,"
    " ?a.stance, ?a.mode, ?a.confidence, ?a.lifecycle.status)"
    " WHERE { ?a ASSERTION {proposition: ?p} ?p (?s, ?pred, ?o) }"
)
_PROPOSITIONS = (
    "FIND(?s.schema_ref, ?s.key, ?p.predicate_ref, ?o.schema_ref, ?o.key, ?p.object)"
    " WHERE { ?p (?s, ?pred, ?o) }"
)


def _without_object_ids(rows: list[Any]) -> list[Any]:
    # Column 5 is ?p.object: the literal for a literal object, else {"id": ...},
    # which columns 3 and 4 already name by type and key.
    return [[*row[:5], None if row[3] is not None else row[5], *row[6:]] for row in rows]


def _sorted_rows(rows: list[Any]) -> list[Any]:
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, ensure_ascii=False))


def dump_store(nexus: Nexus) -> dict[str, Any]:
    """A canonical snapshot of everything a store holds, for equality checks.

    Concepts in every lifecycle state (by type, key, name and attributes),
    propositions and assertions (endpoints by type and key), the element counts
    and the Space's commit sequence number, which moves with every commit.
    Rows are sorted, so two stores with the same contents dump equal however
    they got there. Reads only: dumping never changes the store.
    """
    primer = nexus.execute_kip("DESCRIBE PRIMER")["results"][0]["result"]
    operations: list[str | tuple[str, dict[str, Any] | None]] = [
        (_CONCEPTS, {"state": state}) for state in CONCEPT_STATES
    ]
    operations += [_PROPOSITIONS, _ASSERTIONS]
    results = nexus.execute_kip(operations, execution="independent")["results"]
    concepts = {
        state: _sorted_rows(result["result"])
        for state, result in zip(CONCEPT_STATES, results, strict=False)
    }
    return {
        "space_seq": primer["space"]["seq"],
        "contents": primer["contents"],
        "concepts": concepts,
        "propositions": _sorted_rows(_without_object_ids(results[-2]["result"])),
        "assertions": _sorted_rows(_without_object_ids(results[-1]["result"])),
    }


class FaultInjector:
    """Schedules storage faults for a store opened by :func:`open_with_faults`.

    Rules fire on the object-store requests AndaDB makes (after ``skip``
    matching requests, at most ``times`` times); :meth:`reset` removes them all.
    """

    __slots__ = ("_native",)

    def __init__(self, nexus: Nexus) -> None:
        self._native = nexus._native

    def fail(
        self,
        operation: StorageOperation,
        kind: FaultKind = "error",
        *,
        path_contains: str | None = None,
        skip: int = 0,
        times: int = 1,
        keep_bytes: int = 0,
        delay: float = 0.0,
    ) -> None:
        """Adds a rule: the next matching ``operation`` (on a path containing
        ``path_contains``, if given) fails as ``kind`` says. ``torn`` keeps the
        first ``keep_bytes`` of a put; ``delay`` holds one request ``delay``
        seconds."""
        self._native._fault_rule(operation, kind, path_contains, skip, times, keep_bytes, delay)

    def crash_after(self, mutations: int) -> None:
        """Cuts the power after ``mutations`` more attempted writes: that one
        and every later request fail until :meth:`reset`."""
        self._native._fault_crash_after(mutations)

    def reset(self) -> None:
        """Removes every rule, restores power and clears the event log."""
        self._native._fault_reset()

    def events(self) -> list[tuple[str, str, str]]:
        """Each write the store attempted, as ``(operation, path, outcome)``;
        outcome is ``Attempted``, ``BackendSucceeded``, ``BackendFailed``,
        ``ResponseFailed`` (a fault fired) or ``Cancelled``."""
        return self._native._fault_events()


def open_with_faults(
    path: str | os.PathLike[str], *, name: str | None = None
) -> tuple[Nexus, FaultInjector]:
    """Opens the directory store at ``path`` behind a fault-injecting object
    store, for reliability tests: every call either succeeds or raises an
    :class:`anda.AndaError`, whatever the faults.

    >>> import tempfile, anda
    >>> from anda.testing import open_with_faults
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     nexus, faults = open_with_faults(directory)
    ...     faults.fail("put", times=1000)
    ...     try:
    ...         nexus.execute_kip('UPSERT CONCEPT ?p { MATCH { type: "Person", key: "a" } }')
    ...     except anda.AndaError as err:
    ...         refused = type(err).__name__
    ...     faults.reset()
    ...     nexus.close()
    >>> refused
    'KipSystemError'
    """
    options: dict[str, Any] = {} if name is None else {"name": name}
    nexus = Nexus(path, _inject_faults=True, **options)
    return nexus, FaultInjector(nexus)
