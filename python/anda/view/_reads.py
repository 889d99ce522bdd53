"""What the inspector reads, and nothing else: a fixed set of KQL and META
queries, each sent on the memory's read-only path.

Every read here is a request envelope run with ``execute_request(...,
readonly=True)`` (``execute_kip_readonly`` on the wire): the engine refuses
the whole request if any operation would write (``ReadonlyViolation``), so no
input can turn a read into a write, and every value a user types is a bound
``:parameter``, never text spliced into a command.

A read is written once as a generator that yields request envelopes and
receives their responses; :func:`run` drives it over a memory's
``execute_request``, :func:`run_async` over ``execute_request_async``, so
the notebook cards and the web page read exactly the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any, TypeVar

from anda.errors import error_from_response

__all__ = [
    "MAX_HISTORY",
    "MAX_HITS",
    "MAX_PROPOSITIONS",
    "card",
    "changes",
    "history",
    "local_name",
    "primer",
    "read_request",
    "run",
    "run_async",
    "search",
]

#: Search hits and concepts of a type listed at once.
MAX_HITS = 50
#: Propositions read per direction (as subject, as object) for one card.
MAX_PROPOSITIONS = 100
#: History entries read for one element.
MAX_HISTORY = 50
#: Concepts whose names a card looks up for the actors of its assertions.
_MAX_ACTORS = 20

_T = TypeVar("_T")
#: One read: yields request envelopes, receives each response, returns its result.
Read = Generator[dict[str, Any], dict[str, Any], _T]

_CONCEPT = "FIND(?c) WHERE { ?c {id: :id} }"
_BY_KEY = "FIND(?c) WHERE { ?c {type: :type, key: :key} }"
_SEARCH = "SEARCH CONCEPT :term LIMIT :limit"
_SEARCH_TYPE = "SEARCH CONCEPT :term WITH TYPE :type LIMIT :limit"
_OF_TYPE = "FIND(?c) WHERE { ?c {type: :type} }"
_ANY = "FIND(?c) WHERE { ?c CONCEPT {} }"
# The two directions of a card: what the concept says (subject), what is said of it (object).
_OUT = "FIND(?p, ?o) WHERE { ?c {id: :id} ?p (?c, ?pred, ?o) }"
_IN = "FIND(?p, ?s) WHERE { ?c {id: :id} ?p (?s, ?pred, ?c) }"
_OUT_ASSERTIONS = (
    "FIND(?p.id, ?a) WHERE { ?c {id: :id} ?p (?c, ?pred, ?o) ?a ASSERTION {proposition: ?p} }"
)
_IN_ASSERTIONS = (
    "FIND(?p.id, ?a) WHERE { ?c {id: :id} ?p (?s, ?pred, ?c) ?a ASSERTION {proposition: ?p} }"
)
_OUT_BELIEFS = "FIND(?p.id, ?b.status) WHERE { ?c {id: :id} ?p (?c, ?pred, ?o) ?b BELIEF (?p) }"
_IN_BELIEFS = "FIND(?p.id, ?b.status) WHERE { ?c {id: :id} ?p (?s, ?pred, ?c) ?b BELIEF (?p) }"
_HISTORY = "HISTORY ELEMENT :id LIMIT :limit"
_PRIMER = "DESCRIBE PRIMER"
_SNAPSHOT = "DESCRIBE SNAPSHOT"
_CHANGES = "CHANGES AFTER SEQ :seq LIMIT :limit"


def read_request(*operations: tuple[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A KIP 2.0 request envelope of independent reads.

    >>> read_request(("DESCRIBE PRIMER", {}))["operations"]
    [{'command': 'DESCRIBE PRIMER', 'parameters': {}}]
    """
    request: dict[str, Any] = {
        "kip": "2.0",
        "operations": [
            {"command": command, "parameters": dict(parameters)}
            for command, parameters in operations
        ],
    }
    if len(operations) > 1:
        request["execution"] = {"mode": "independent"}
    return request


def run(read: Read[_T], execute: Callable[[dict[str, Any]], dict[str, Any]]) -> _T:
    """Drives ``read`` over a synchronous ``execute(request)``."""
    try:
        request = next(read)
        while True:
            request = read.send(_checked(execute(request)))
    except StopIteration as done:
        result: _T = done.value
        return result


async def run_async(
    read: Read[_T], execute: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
) -> _T:
    """Drives ``read`` over an asynchronous ``execute(request)``."""
    try:
        request = next(read)
        while True:
            request = read.send(_checked(await execute(request)))
    except StopIteration as done:
        result: _T = done.value
        return result


def _checked(response: dict[str, Any]) -> dict[str, Any]:
    """``response``, if every read succeeded; its :class:`anda.KipError` otherwise."""
    results = response.get("results")
    if response.get("status") != "succeeded" or not isinstance(results, list):
        raise error_from_response(response)
    return response


def _results(response: dict[str, Any]) -> list[Any]:
    return [result.get("result") for result in response["results"]]


def _as_of(command: str, as_of: int | None) -> str:
    # AS OF comes right after WHERE { ... } (before ORDER BY and LIMIT).
    return command if as_of is None else f"{command} AS OF SEQ {int(as_of)}"


def local_name(ref: object) -> str:
    """The last segment of a schema reference: the type or predicate's name.

    >>> local_name("kip://profiles/cognitive-memory@2.0.0/Person")
    'Person'
    """
    text = str(ref or "")
    return text.rsplit("/", 1)[-1]


def check_seq(name: str, value: object) -> int | None:
    """A ``space_seq`` argument: ``None`` or an int >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a space_seq (an int >= 0) or None, not {value!r}")
    return value


# -- the reads -------------------------------------------------------------------------


def search(term: str, type: str | None = None, limit: int = MAX_HITS) -> Read[dict[str, Any]]:
    """Concepts whose text matches ``term`` (``SEARCH CONCEPT``), or with an
    empty ``term`` the concepts of ``type`` (or any), as ``FIND`` lists them."""
    term = term.strip()
    limit = max(1, min(int(limit), MAX_HITS))
    if term:
        command = _SEARCH_TYPE if type else _SEARCH
        parameters: dict[str, Any] = {"term": term, "limit": limit}
        if type:
            parameters["type"] = type
        (result,) = _results((yield read_request((command, parameters))))
        hits = [
            {**_summary(hit["element"]), "score": hit.get("retrieval", {}).get("score")}
            for hit in result.get("hits", [])
            if isinstance(hit.get("element"), dict)
        ]
        return {"term": term, "type": type, "hits": hits, "by": "SEARCH"}
    command = f"{_OF_TYPE if type else _ANY} LIMIT {limit}"
    (rows,) = _results((yield read_request((command, {"type": type} if type else {}))))
    return {"term": "", "type": type, "hits": [_summary(row) for row in rows], "by": "FIND"}


def resolve(type: str, key: str) -> Read[str | None]:
    """The id of the concept ``type`` + ``key`` names, or ``None``."""
    (rows,) = _results((yield read_request((_BY_KEY, {"type": type, "key": key}))))
    return rows[0]["id"] if rows else None


def card(concept_id: str, as_of: int | None = None) -> Read[dict[str, Any] | None]:
    """One concept as the inspector shows it, at ``as_of`` (a ``space_seq``;
    ``None``: now), or ``None`` if it is not there then: its fields and
    attributes, the propositions it is the subject or object of, each with
    its assertions (who, stance, mode, confidence, when, lifecycle) and the
    memory's belief status, and the names of the concepts they mention."""
    as_of = check_seq("as_of", as_of)
    identity = {"id": concept_id}
    operations = [(_as_of(command, as_of), identity) for command in (_CONCEPT,)]
    operations += [
        (f"{_as_of(command, as_of)} LIMIT {MAX_PROPOSITIONS}", identity) for command in (_OUT, _IN)
    ]
    operations += [
        (f"{_as_of(command, as_of)} LIMIT {MAX_PROPOSITIONS * 4}", identity)
        for command in (_OUT_ASSERTIONS, _IN_ASSERTIONS)
    ]
    operations += [(_as_of(command, as_of), identity) for command in (_OUT_BELIEFS, _IN_BELIEFS)]
    operations.append((_as_of(_SNAPSHOT, as_of), {}))
    found, out, into, out_a, in_a, out_b, in_b, snapshot = _results(
        (yield read_request(*operations))
    )
    if not found:
        return None
    element = found[0]
    names: dict[str, dict[str, Any]] = {element["id"]: _summary(element)}
    beliefs = {row[0]: row[1] for row in [*out_b, *in_b]}
    assertions: dict[str, list[dict[str, Any]]] = {}
    for proposition_id, assertion in [*out_a, *in_a]:
        listed = assertions.setdefault(proposition_id, [])
        if all(seen["id"] != assertion["id"] for seen in listed):
            listed.append(_assertion(assertion))
    propositions = []
    for direction, rows in (("out", out), ("in", into)):
        for proposition, other in rows:
            if isinstance(other, dict) and "id" in other:
                names[other["id"]] = _summary(other)
            propositions.append(
                {
                    "id": proposition["id"],
                    "direction": direction,
                    "predicate": local_name(proposition.get("predicate_ref")),
                    "predicate_ref": proposition.get("predicate_ref"),
                    "subject": _endpoint(proposition.get("subject")),
                    "object": _endpoint(proposition.get("object")),
                    "belief": beliefs.get(proposition["id"]),
                    "assertions": sorted(
                        assertions.get(proposition["id"], []), key=lambda a: a["id"]
                    ),
                }
            )
    actors = sorted(
        {
            a["by"]
            for p in propositions
            for a in p["assertions"]
            if isinstance(a["by"], str) and a["by"] not in names
        }
    )[:_MAX_ACTORS]
    if actors:
        lookups = [(_as_of(_CONCEPT, as_of), {"id": actor}) for actor in actors]
        for rows in _results((yield read_request(*lookups))):
            for row in rows or []:
                names[row["id"]] = _summary(row)
    return {
        **_summary(element),
        "attributes": element.get("attributes") or {},
        "facets": element.get("facets") or {},
        "system": {
            name: element.get("_system", {}).get(name)
            for name in ("version", "state", "created_at", "updated_at", "space_seq")
        },
        "as_of": as_of,
        "seq": snapshot.get("space_seq") if isinstance(snapshot, dict) else None,
        "propositions": propositions,
        "names": names,
    }


def history(card: Mapping[str, Any], limit: int = MAX_HISTORY) -> Read[list[dict[str, Any]]]:
    """How a concept and the assertions on its card changed (``HISTORY
    ELEMENT`` of each), as one timeline, oldest first: each commit that
    touched one of them, what it did, and for the concept itself its name
    right after that commit (``FIND ... AS OF SEQ``)."""
    limit = max(1, min(int(limit), MAX_HISTORY))
    labels = {card["id"]: None}
    for proposition in card["propositions"]:
        for assertion in proposition["assertions"]:
            labels.setdefault(assertion["id"], proposition["id"])
    elements = list(labels)[: _MAX_ACTORS + 1]
    reads = [(_HISTORY, {"id": element, "limit": limit}) for element in elements]
    timeline: dict[int, dict[str, Any]] = {}
    for element, entries in zip(elements, _results((yield read_request(*reads))), strict=True):
        for entry in entries or []:
            line = timeline.setdefault(
                entry["space_seq"],
                {
                    "seq": entry["space_seq"],
                    "tx_id": entry.get("tx_id"),
                    "committed_at": entry.get("committed_at"),
                    "changes": [],
                    "name": None,
                },
            )
            line["changes"] += [
                {**change, "proposition": labels[element]}
                for change in entry.get("changes", [])
                if change.get("id") == element
            ]
    seqs = sorted(timeline)[-limit:]
    concept_seqs = [
        seq for seq in seqs if any(c["id"] == card["id"] for c in timeline[seq]["changes"])
    ]
    if concept_seqs:
        reads = [(_as_of(_CONCEPT, seq), {"id": card["id"]}) for seq in concept_seqs]
        for seq, rows in zip(concept_seqs, _results((yield read_request(*reads))), strict=True):
            if rows:
                timeline[seq]["name"] = rows[0].get("name")
                timeline[seq]["attributes"] = rows[0].get("attributes") or {}
    return [timeline[seq] for seq in seqs]


def primer() -> Read[dict[str, Any]]:
    """``DESCRIBE PRIMER``: the memory's orientation, as an agent reads it."""
    (result,) = _results((yield read_request((_PRIMER, {}))))
    primer: dict[str, Any] = result
    return primer


def changes(after: int, limit: int = 20) -> Read[list[dict[str, Any]]]:
    """The Change Envelopes committed after ``after`` (``CHANGES AFTER SEQ``)."""
    (result,) = _results((yield read_request((_CHANGES, {"seq": after, "limit": limit}))))
    envelopes: list[dict[str, Any]] = result or []
    return envelopes


# -- shapes ----------------------------------------------------------------------------


def _summary(element: Mapping[str, Any]) -> dict[str, Any]:
    """What names a concept on a card: id, type, key, name."""
    return {
        "id": element.get("id"),
        "kind": element.get("kind", "concept"),
        "type": local_name(element.get("schema_ref")),
        "type_ref": element.get("schema_ref"),
        "key": element.get("key"),
        "name": element.get("name"),
        "state": element.get("_system", {}).get("state"),
    }


def _endpoint(value: Any) -> dict[str, Any]:
    """A proposition's subject or object: an element reference or a literal."""
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return {"id": value["id"]}
    return {"literal": value}


def _assertion(assertion: Mapping[str, Any]) -> dict[str, Any]:
    by = assertion.get("asserted_by")
    return {
        "id": assertion.get("id"),
        "by": by.get("id") if isinstance(by, dict) else by,
        "stance": assertion.get("stance"),
        "mode": assertion.get("mode"),
        "confidence": assertion.get("confidence"),
        "asserted_at": assertion.get("asserted_at"),
        "valid_time": assertion.get("valid_time"),
        "lifecycle": assertion.get("lifecycle") or {},
        "recorded_at": assertion.get("_system", {}).get("created_at"),
        "recorded_seq": assertion.get("_system", {}).get("space_seq"),
    }
