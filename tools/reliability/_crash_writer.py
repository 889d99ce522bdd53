"""The crash cycles' writer (crash.py): random writes of every kind, each
logged with its effects before the call and acknowledged after it."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from _crash_model import Effect, Step

PEOPLE = [f"p{i:02d}" for i in range(60)]
ORGANIZATIONS = [f"o{i:02d}" for i in range(12)]
UPSERT = (
    "UPSERT CONCEPT ?c { MATCH { type: :type, key: :key } "
    "SET FIELDS { name: :name } SET ATTRIBUTES { v: :v } }"
)
UPSERT_NAMELESS = "UPSERT CONCEPT ?c { MATCH { type: :type, key: :key } SET ATTRIBUTES { v: :v } }"
TOMBSTONE = 'TRANSITION ?c TO "tombstoned" WHERE { ?c {type: :type, key: :key} } LIMIT 1'
FIND_ID = "FIND(?c.id) WHERE { ?c {type: :type, key: :key} }"
ASSERT = 'ASSERT (:s, :p, :o) { by: :s, mode: "stated" }'
# Weights of the kinds of write.
KINDS = {
    "single": 30,
    "batch": 12,
    "independent": 6,
    "mutate": 20,
    "assert": 12,
    "bulk": 10,
    "tombstone": 10,
}


class Writer:
    """Random writes, each logged before the call and acknowledged after it."""

    def __init__(
        self, nexus: Any, rng: random.Random, cycle: int, ephemeral: list[str], log: Any
    ) -> None:
        self.nexus, self.rng, self.cycle, self.log = nexus, rng, cycle, log
        self.ephemeral = ephemeral  # active Person keys that may be tombstoned
        self.calls = 0

    def run(self) -> None:
        actions = {
            "single": self.single,
            "batch": self.batch,
            "independent": self.independent,
            "mutate": self.mutate,
            "assert": self.relation,
            "bulk": self.bulk,
            "tombstone": self.tombstone,
        }
        while True:
            self.calls += 1
            actions[self.rng.choices(list(KINDS), weights=list(KINDS.values()))[0]]()

    def value(self, j: int = 0) -> int:
        # Unique across the whole run, so a value names the write that set it.
        return self.cycle * 1_000_000 + self.calls * 100 + j

    def call(
        self,
        kind: str,
        steps: list[Step],
        write: Callable[[], None],
        *,
        outcome: str = "prefix",
        chunk: int = 1,
    ) -> None:
        call_id = f"{self.cycle}.{self.calls}"
        self.log(
            {"begin": call_id, "kind": kind, "steps": steps, "outcome": outcome, "chunk": chunk}
        )
        write()
        self.log({"ack": call_id, "done": len(steps)})

    # One upsert: a rendered command and its effect.
    def upsert(self, j: int = 0) -> tuple[tuple[str, dict[str, Any]], Effect, str | None]:
        v = self.value(j)
        roll = self.rng.random()
        if roll < 0.25:
            key, type_, name = f"e{v}", "Person", f"name-{v}"
        elif roll < 0.4:
            key, type_ = self.rng.choice(ORGANIZATIONS), "Organization"
            name = f"name-{v}" if self.rng.random() < 0.5 else None
        else:
            key, type_, name = self.rng.choice(PEOPLE), "Person", f"name-{v}"
        params: dict[str, Any] = {"type": type_, "key": key, "v": v}
        if name is not None:
            params["name"] = name
        command = UPSERT if name is not None else UPSERT_NAMELESS
        new = key if key.startswith("e") else None
        return (command, params), ["upsert", type_, key, name, {"v": v}], new

    def tombstone_of(self, key: str) -> tuple[tuple[str, dict[str, Any]], Effect]:
        self.ephemeral.remove(key)
        return (TOMBSTONE, {"type": "Person", "key": key}), ["tombstone", "Person", key]

    def single(self) -> None:
        write, effect, new = self.upsert()
        self.call("single", [[effect]], lambda: self.nexus.execute_kip(*write))
        if new:
            self.ephemeral.append(new)

    def batch(self, execution: str = "sequence") -> None:
        writes, steps, created = [], [], []
        for j in range(self.rng.randint(2, 6)):
            if self.ephemeral and self.rng.random() < 0.2:
                write, effect = self.tombstone_of(self.rng.choice(self.ephemeral))
            else:
                write, effect, new = self.upsert(j)
                created += [new] if new else []
            writes.append(write)
            steps.append([effect])
        kind = "batch" if execution == "sequence" else "independent"
        outcome = "prefix" if execution == "sequence" else "subset"
        self.call(
            kind,
            steps,
            lambda: self.nexus.execute_kip(writes, execution=execution),
            outcome=outcome,
        )
        self.ephemeral += created

    def independent(self) -> None:
        self.batch("independent")

    def mutate(self) -> None:
        """Several new people, relations among them and to older concepts,
        and updates of two older concepts: one transaction."""
        tx = f"{self.cycle}.{self.calls}"
        size = self.rng.randint(2, 5)
        org, person = self.rng.choice(ORGANIZATIONS), self.rng.choice(PEOPLE)
        params: dict[str, Any] = {"tx": tx, "org": org, "vo": self.value(90)}
        params |= {"person": person, "np": f"name-{self.value(91)}", "vp": self.value(91)}
        clauses = []
        effects: Step = []
        for j in range(size):
            key, v = f"tx{self.cycle}-{self.calls}-{j}", self.value(j)
            params |= {f"k{j}": key, f"n{j}": f"name-{v}", f"v{j}": v}
            clauses.append(
                f'UPSERT CONCEPT ?t{j} {{ MATCH {{ type: "Person", key: :k{j} }} '
                f"SET FIELDS {{ name: :n{j} }} SET ATTRIBUTES {{ tx: :tx, v: :v{j} }} }}"
            )
            effects.append(["upsert", "Person", key, f"name-{v}", {"tx": tx, "v": v}])
        clauses.append(
            'UPSERT CONCEPT ?o { MATCH { type: "Organization", key: :org } '
            "SET ATTRIBUTES { v: :vo } }"
        )
        effects.append(["upsert", "Organization", org, None, {"v": params["vo"]}])
        clauses.append(
            'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :person } '
            "SET FIELDS { name: :np } SET ATTRIBUTES { v: :vp } }"
        )
        effects.append(["upsert", "Person", person, params["np"], {"v": params["vp"]}])
        relations = [(f"t{j}", "knows", f"t{j + 1}") for j in range(size - 1)]
        relations += [("t0", "works_for", "o"), ("p", "knows", "t0")]
        handles = {"o": ("Organization", org), "p": ("Person", person)}
        handles |= {f"t{j}": ("Person", params[f"k{j}"]) for j in range(size)}
        for subject, predicate, obj in relations:
            clauses.append(
                f'ASSERT (?{subject}, "{predicate}", ?{obj}) {{ by: ?{subject}, mode: "stated" }}'
            )
            effects.append(["assert", *handles[subject], predicate, *handles[obj]])
        command = "MUTATE {\n" + "\n".join(clauses) + "\n}"
        self.call("mutate", [effects], lambda: self.nexus.execute_kip(command, params))

    def find_id(self, type_: str, key: str) -> str | None:
        found = self.nexus.execute_kip(FIND_ID, {"type": type_, "key": key})
        rows = found["results"][0]["result"]
        return rows[0] if rows else None

    def relation(self) -> None:
        subject = self.rng.choice(PEOPLE)
        if self.rng.random() < 0.5:
            predicate, obj = "knows", ("Person", self.rng.choice(PEOPLE))
        else:
            predicate, obj = "works_for", ("Organization", self.rng.choice(ORGANIZATIONS))
        s_id, o_id = self.find_id("Person", subject), self.find_id(*obj)
        if s_id is None or o_id is None:
            self.single()  # an endpoint is not there yet: write something else
            return
        params = {"s": s_id, "p": predicate, "o": o_id}
        effect = ["assert", "Person", subject, predicate, *obj]
        self.call("assert", [[effect]], lambda: self.nexus.execute_kip(ASSERT, params))

    def bulk(self) -> None:
        from anda.bulk import Relate, Upsert

        operations: list[Any] = []
        steps: list[Step] = []
        created = []
        for j in range(self.rng.randint(6, 40)):
            if self.rng.random() < 0.3:
                subject = ("Person", self.rng.choice(PEOPLE))
                if self.rng.random() < 0.5:
                    predicate, obj = "knows", ("Person", self.rng.choice(PEOPLE))
                else:
                    predicate, obj = "works_for", ("Organization", self.rng.choice(ORGANIZATIONS))
                operations.append(Relate(subject, predicate, obj))
                steps.append(
                    [
                        ["upsert", *subject, None, {}],
                        ["upsert", *obj, None, {}],
                        ["assert", *subject, predicate, *obj],
                    ]
                )
            else:
                (_, params), effect, new = self.upsert(j)
                operations.append(
                    Upsert(params["type"], params["key"], params.get("name"), {"v": params["v"]})
                )
                steps.append([effect])
                created += [new] if new else []
        chunk = self.rng.randint(3, 12)
        call_id = f"{self.cycle}.{self.calls}"

        def write() -> None:
            # Each chunk is a transaction: acknowledge each as it commits.
            self.nexus.bulk_write(
                operations,
                chunk_size=chunk,
                progress=lambda done: self.log({"ack": call_id, "done": done}),
            )

        self.call("bulk", steps, write, chunk=chunk)
        self.ephemeral += created

    def tombstone(self) -> None:
        if not self.ephemeral:
            self.single()
            return
        write, effect = self.tombstone_of(self.rng.choice(self.ephemeral))
        self.call("tombstone", [[effect]], lambda: self.nexus.execute_kip(*write))
