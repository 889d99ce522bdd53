"""The benchmark's seeded workload (bench.py): the concepts and propositions,
loaded through KIP, and the query mix both sides time. No downloaded data."""

from __future__ import annotations

import random
from typing import Any

SEED = 20261126
COUNTS = {"Person": 6000, "Organization": 1500, "Place": 1500, "Topic": 1000}
RELATIONS = {  # predicate: (subject type, object type, how many)
    "knows": ("Person", "Person", 30_000),
    "works_for": ("Person", "Organization", 6_000),
    "lives_in": ("Person", "Place", 6_000),
    "interested_in": ("Person", "Topic", 8_000),
}
TRIVIAL = "trivial"

UPSERT = (
    "UPSERT CONCEPT ?c { MATCH { type: :type, key: :key } "
    "SET FIELDS { name: :name } SET ATTRIBUTES { rank: :rank, score: :score } }"
)


def _key(type_: str, i: int) -> str:
    return f"{type_.lower()}-{i:05d}"


def workload(scale: float, iterations: int) -> dict[str, Any]:
    from anda.bulk import DEFAULT_CHUNK_SIZE, Relate, Upsert, _render_chunk

    rng = random.Random(SEED)
    counts = {t: max(2, int(n * scale)) for t, n in COUNTS.items()}
    operations: list[Any] = []
    for type_, count in counts.items():
        for i in range(count):
            operations.append(
                Upsert(
                    type_,
                    _key(type_, i),
                    name=f"{type_} {i:05d}",
                    attributes={"rank": rng.randrange(1000), "score": round(rng.random(), 6)},
                )
            )
    for predicate, (subject, obj, count) in RELATIONS.items():
        pairs: set[tuple[int, int]] = set()
        while len(pairs) < int(count * scale):
            s, o = rng.randrange(counts[subject]), rng.randrange(counts[obj])
            if subject != obj or s != o:
                pairs.add((s, o))
        operations += [
            Relate((subject, _key(subject, s)), predicate, (obj, _key(obj, o)))
            for s, o in sorted(pairs)
        ]
    # Both sides load through the bulk path: the same transactions, rendered
    # once here (the Python side renders its own with the same code).
    chunks = [
        operations[i : i + DEFAULT_CHUNK_SIZE]
        for i in range(0, len(operations), DEFAULT_CHUNK_SIZE)
    ]
    load = [[list(write) for write in _render_chunk(chunk)[0]] for chunk in chunks]
    structured = [
        {"upsert": {"type": op.type, "key": op.key, "name": op.name, "attributes": op.attributes}}
        if isinstance(op, Upsert)
        else {"relate": {"subject": op.subject, "predicate": op.predicate, "object": op.object}}
        for op in operations
    ]

    people = counts["Person"]

    def person(i: int) -> str:
        return _key("Person", i)

    some = [rng.randrange(people) for _ in range(64)]
    queries = [
        {
            "name": TRIVIAL,
            "command": 'DESCRIBE ERROR "VersionConflict"',
            "parameter_sets": [{}],
        },
        {
            "name": "point_lookup",
            "command": 'FIND(?p.key, ?p.attributes) WHERE { ?p {type: "Person", name: :name} }',
            "parameter_sets": [{"name": f"Person {i:05d}"} for i in some],
        },
        {
            "name": "one_hop",
            "command": 'FIND(?f.name) WHERE { ?p {type: "Person", key: :key} (?p, "knows", ?f) }',
            "parameter_sets": [{"key": person(i)} for i in some],
        },
        {
            "name": "two_hop",
            "command": (
                'FIND(?ff.name) WHERE { ?p {type: "Person", key: :key} '
                '(?p, "knows", ?f) (?f, "knows", ?ff) }'
            ),
            "parameter_sets": [{"key": person(i)} for i in some],
        },
        {
            "name": "filter_order_limit",
            "command": (
                'FIND(?p.name, ?p.attributes.rank) WHERE { ?p {type: "Person"} '
                "FILTER(?p.attributes.rank > :min && ?p.attributes.score < :score) } "
                "ORDER BY ?p.attributes.rank DESC, ?p.name ASC LIMIT 20"
            ),
            "parameter_sets": [{"min": 500 + i, "score": 0.5} for i in range(16)],
        },
        {
            "name": "aggregate",
            "command": (
                'FIND(?o.name, COUNT(?p)) WHERE { ?o {type: "Organization"} '
                '(?p, "works_for", ?o) } ORDER BY COUNT(?p) DESC LIMIT 10'
            ),
            "parameter_sets": [{}],
        },
        {"name": "meta_describe", "command": "DESCRIBE PRIMER", "parameter_sets": [{}]},
        {
            "name": "kml_upsert_batch",
            "command": [
                f'UPSERT CONCEPT ?c {{ MATCH {{ type: "Topic", key: "bench-{j}" }} '
                f"SET ATTRIBUTES {{ round: :round }} }}"
                for j in range(10)
            ],
            "execution": "sequence",
            "parameter_sets": [{"round": i} for i in range(iterations + 10)],
        },
        {
            "name": "large_result",
            "command": "FIND(?c.key, ?c.name) WHERE { ?c CONCEPT {} }",
            "parameter_sets": [{}],
        },
    ]
    return {
        "seed": SEED,
        "concepts": sum(counts.values()),
        "propositions": sum(int(n * scale) for *_, n in RELATIONS.values()),
        "load": load,
        "operations": structured,
        "queries": queries,
        "iterations": iterations,
        "warmup": 3,
    }
