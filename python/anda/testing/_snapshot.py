"""A canonical snapshot of what a store holds: :func:`anda.testing.dump_store`.

For tests only: :func:`anda.copy_store` proves a copy equal natively, object
by object.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from anda._calls import read_primer

if TYPE_CHECKING:
    from anda._nexus import Nexus

__all__ = ["CONCEPT_STATES", "dump_store"]

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
    primer = read_primer(nexus)
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
