"""The crash cycles' model of a store (crash.py): the effects the writer logs,
what a dump shows, and the judgement of a dump against every outcome the
logged calls allow (lost, phantom and torn writes)."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# An effect is a JSON list, logged by the writer before its call:
#   ["upsert", type, key, name or null, {attributes}]  create if missing, then set
#   ["tombstone", type, key]                           transition to "tombstoned"
#   ["assert", s_type, s_key, predicate, o_type, o_key]  one more assertion
# A step is a list of effects the engine commits at once; a call is a list of steps.
Effect = list[Any]
Step = list[Effect]
ConceptKey = tuple[str, str]
Concept = tuple[str, str | None, dict[str, Any]]  # state, name, attributes
Triple = tuple[str, str, str, str, str]


@dataclass
class Model:
    """What the store should hold: concepts in any state, and assertions."""

    concepts: dict[ConceptKey, Concept] = field(default_factory=dict)
    assertions: Counter[Triple] = field(default_factory=Counter)

    def copy(self) -> Model:
        # Concept tuples are replaced, never changed in place, so a shallow copy will do.
        return Model(dict(self.concepts), Counter(self.assertions))

    def apply(self, effect: Effect) -> None:
        kind = effect[0]
        if kind == "upsert":
            _, type_, key, name, attributes = effect
            state, old_name, old_attributes = self.concepts.get((type_, key), ("active", None, {}))
            self.concepts[(type_, key)] = (
                state,
                old_name if name is None else name,
                {**old_attributes, **attributes},
            )
        elif kind == "tombstone":
            concept = self.concepts.get((effect[1], effect[2]))
            if concept is not None:
                self.concepts[(effect[1], effect[2])] = ("tombstoned", *concept[1:])
        elif kind == "assert":
            self.assertions[tuple(effect[1:])] += 1
        else:
            raise ValueError(f"unknown effect {effect!r}")

    def applied(self, steps: list[Step]) -> Model:
        model = self.copy()
        for step in steps:
            for effect in step:
                model.apply(effect)
        return model

    def to_json(self) -> dict[str, Any]:
        return {
            "concepts": [[*key, *value] for key, value in sorted(self.concepts.items())],
            "assertions": [[*triple, n] for triple, n in sorted(self.assertions.items())],
        }


def _short(ref: str) -> str:
    # "kip://profiles/cognitive-memory@2.0.0/Person" -> "Person"
    return ref.rsplit("/", 1)[-1]


def model_from_dump(dump: dict[str, Any]) -> tuple[Model, list[str]]:
    """The model a dump shows, and every way the dump disagrees with itself."""
    problems: list[str] = []
    model = Model()
    for state, rows in dump["concepts"].items():
        for schema_ref, key, name, attributes in rows:
            concept_key = (_short(schema_ref), key)
            if concept_key in model.concepts:
                problems.append(f"concept {concept_key} listed twice")
            model.concepts[concept_key] = (state, name, attributes or {})
    for row in dump["assertions"]:
        s_ref, s_key, predicate, o_ref, o_key, _obj, stance, mode, _confidence, status = row
        if (stance, mode, status) != ("support", "stated", "active"):
            problems.append(f"assertion {row} is not a stated, active support")
        model.assertions[(_short(s_ref), s_key, _short(predicate), _short(o_ref), o_key)] += 1
    propositions = {
        (_short(r[0]), r[1], _short(r[2]), _short(r[3]), r[4]) for r in dump["propositions"]
    }
    if len(propositions) != len(dump["propositions"]):
        problems.append("a proposition is listed twice")
    if propositions != set(model.assertions):
        problems.append(
            f"propositions {sorted(propositions ^ set(model.assertions))[:5]} "
            "do not match the assertions"
        )
    for endpoint in {(t[0], t[1]) for t in propositions} | {(t[3], t[4]) for t in propositions}:
        if endpoint not in model.concepts:
            problems.append(f"a proposition names {endpoint}, which is not stored")
    contents = dump["contents"]
    # "concept" counts the concepts that are not tombstoned (the other states never occur here).
    counted = {
        "concept": sum(
            len(rows) for state, rows in dump["concepts"].items() if state != "tombstoned"
        ),
        "proposition": len(dump["propositions"]),
        "assertion": len(dump["assertions"]),
    }
    for name, count in counted.items():
        if contents.get(name) != count:
            problems.append(f"contents.{name} is {contents.get(name)}, the rows number {count}")
    return model, problems


@dataclass
class Call:
    """One write call as the writer logged it."""

    id: str
    kind: str
    steps: list[Step]
    # What a call cut short may have left: "prefix", the first steps in
    # whole chunks of ``chunk`` steps (the last chunk may be shorter), or
    # "subset", any of its steps.
    outcome: str = "prefix"
    chunk: int = 1
    done: int = 0  # steps acknowledged

    def possible_lengths(self) -> list[int]:
        total = len(self.steps)
        lengths = {self.done, total}
        lengths.update(range(self.done, total, self.chunk))
        return sorted(lengths)

    def possible_outcomes(self) -> Iterator[tuple[str, list[Step]]]:
        """Every set of unacknowledged steps the store may show, with a label."""
        rest = list(range(self.done, len(self.steps)))
        if self.outcome == "subset":
            for n in range(len(rest) + 1):
                for chosen in itertools.combinations(rest, n):
                    yield (
                        f"steps {list(chosen)} of {len(self.steps)}",
                        [self.steps[i] for i in chosen],
                    )
        else:
            for length in self.possible_lengths():
                yield f"{length} of {len(self.steps)} steps", self.steps[self.done : length]


def read_log(path: Path) -> tuple[bool, list[Call]]:
    """Whether the writer got the store open, and its calls in order."""
    ready, calls = False, []
    by_id: dict[str, Call] = {}
    lines = path.read_bytes().split(b"\n") if path.exists() else []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the empty tail (a kill cannot cut a small O_APPEND write in two)
        if "ready" in record:
            ready = True
        elif "begin" in record:
            call = Call(
                record["begin"],
                record["kind"],
                record["steps"],
                record.get("outcome", "prefix"),
                record.get("chunk", 1),
            )
            by_id[call.id] = call
            calls.append(call)
        elif "ack" in record:
            by_id[record["ack"]].done = record["done"]
    return ready, calls


@dataclass
class Verdict:
    matched: str | None  # the outcome of the call in flight that the store shows
    model: Model  # what the store holds now (the model to carry on from)
    in_flight: str = "none"  # of the call in flight: "none", "applied", "partly", "not applied"
    lost: list[str] = field(default_factory=list)
    phantom: list[str] = field(default_factory=list)
    torn: list[str] = field(default_factory=list)


def judge(before: Model, calls: list[Call], observed: Model) -> Verdict:
    """Compares what the store shows with every outcome the logged calls allow."""
    base = before.copy()
    for call in calls:
        for step in call.steps[: call.done]:
            for effect in step:
                base.apply(effect)
    in_flight = [call for call in calls if call.done < len(call.steps)]
    if len(in_flight) > 1:
        raise AssertionError(f"the writer left {len(in_flight)} calls unfinished")
    candidates: list[tuple[str, list[Step]]] = [("nothing in flight", [])]
    if in_flight:
        candidates = list(in_flight[0].possible_outcomes())
    for label, steps in candidates:
        if base.applied(steps) == observed:
            verdict = Verdict(label, observed)
            if in_flight:
                rest = len(in_flight[0].steps) - in_flight[0].done
                shown = len(steps)
                verdict.in_flight = (
                    "not applied" if not shown else "applied" if shown == rest else "partly"
                )
            return verdict
    # Nothing the engine may do explains the store: name what differs.
    verdict = Verdict(None, observed)
    expected = base.applied(candidates[0][1])
    torn = {key: call.id for call in calls for key in _torn_keys(call, observed)}
    for key in sorted(set(expected.concepts) | set(observed.concepts)):
        want, got = expected.concepts.get(key), observed.concepts.get(key)
        if want == got:
            continue
        where = f"{key}: expected {want}, found {got}"
        if key in torn:
            verdict.torn.append(f"transaction {torn[key]}: {where}")
        elif want is None:
            verdict.phantom.append(where)
        else:
            verdict.lost.append(where)
    for triple in sorted(set(expected.assertions) | set(observed.assertions)):
        want_n, got_n = expected.assertions[triple], observed.assertions[triple]
        if want_n > got_n:
            verdict.lost.append(f"assertion {triple}: expected {want_n}, found {got_n}")
        elif got_n > want_n:
            verdict.phantom.append(f"assertion {triple}: expected {want_n}, found {got_n}")
    return verdict


def _torn_keys(call: Call, observed: Model) -> list[ConceptKey]:
    """The people a MUTATE call creates, if the store shows some of its
    effects and not others; else nothing."""
    if call.kind != "mutate":
        return []
    tx = call.id
    present = []
    people = []
    for effect in call.steps[0]:
        if effect[0] == "upsert" and effect[4].get("tx") == tx:
            people.append((effect[1], effect[2]))
            concept = observed.concepts.get((effect[1], effect[2]))
            present.append(concept is not None and concept[2].get("tx") == tx)
        elif effect[0] == "assert" and effect[2].startswith("tx"):
            # Only this transaction relates its own new people to each other.
            present.append(observed.assertions[tuple(effect[1:])] > 0)
    return people if any(present) and not all(present) else []


def torn_transactions(verdict: Verdict) -> int:
    return len({entry.split(":", 1)[0] for entry in verdict.torn})
