"""A stateful property test: random sequences of writes, tombstones, reads and
close/reopen steps against one directory store, each read checked against a
small pure-Python model of the graph."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import anda
from anda.testing import dump_store
from anda.testing import strategies as kst

# A small pool, so that sequences revisit the same concepts.
POOL = [kst.Concept(type_, key) for type_ in kst.BARE_CONCEPT_TYPES for key in ("a", "b", "ü ✓")]


@dataclass
class ModelConcept:
    name: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    state: str = "active"


def _local(schema_ref: str | None) -> str | None:
    return None if schema_ref is None else schema_ref.rsplit("/", 1)[-1]


class GraphMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="anda-stateful-")
        self.nexus = anda.Nexus(self.directory)
        self.concepts: dict[kst.Concept, ModelConcept] = {}
        self.assertions: Counter[tuple[Any, ...]] = Counter()

    @initialize()
    def empty_store(self) -> None:
        assert dump_store(self.nexus)["concepts"]["active"] == []

    @rule(
        concept=st.sampled_from(POOL),
        name=st.none() | kst.names(),
        attributes=st.just({}) | kst.attribute_maps(),
    )
    def upsert(self, concept: kst.Concept, name: str | None, attributes: dict[str, Any]) -> None:
        self.nexus.execute_kip(*kst.Upsert(concept, name, attributes).render())
        model = self.concepts.setdefault(concept, ModelConcept())
        if name is not None:
            model.name = name
        model.attributes.update(attributes)

    @rule(concept=st.sampled_from(POOL))
    def tombstone(self, concept: kst.Concept) -> None:
        response = self.nexus.execute_kip(*kst.Tombstone(concept).render())
        model = self.concepts.get(concept)
        if model is not None and model.state == "active":
            model.state = "tombstoned"
            assert response["results"][0]["status"] == "succeeded"
        else:
            # The pattern only matches active concepts: nothing to move.
            assert response["results"][0]["status"] == "no_effect"

    def _active(self) -> list[kst.Concept]:
        return [c for c, m in self.concepts.items() if m.state == "active"]

    @precondition(lambda self: bool(self._active()))
    @rule(data=st.data())
    def relate(self, data: st.DataObject) -> None:
        active = self._active()
        relate = data.draw(kst.relates(active, active) | st.none(), label="relate")
        if relate is None:
            return
        [[subject_id]] = [
            self.nexus.execute_kip(
                "FIND(?c.id) WHERE { ?c {type: :type, key: :key} }",
                {"type": c.type, "key": c.key},
            )["results"][0]["result"]
            for c in [relate.subject]
        ]
        ids = {relate.subject: subject_id}
        if isinstance(relate.object, kst.Concept):
            [object_id] = self.nexus.execute_kip(
                "FIND(?c.id) WHERE { ?c {type: :type, key: :key} }",
                {"type": relate.object.type, "key": relate.object.key},
            )["results"][0]["result"]
            ids[relate.object] = object_id
        bound = kst.Relate(relate.subject, relate.predicate, relate.object, ids)
        self.nexus.execute_kip(*bound.render())
        obj = relate.object
        target = (obj.type, obj.key, None) if isinstance(obj, kst.Concept) else (None, None, obj)
        self.assertions[(relate.subject.type, relate.subject.key, relate.predicate, *target)] += 1

    @rule(statement=kst.kml_writes())
    def dry_run_changes_nothing(self, statement: kst.Statement) -> None:
        before = dump_store(self.nexus)
        self.nexus.execute_kip(*statement.render(), dry_run=True)
        assert dump_store(self.nexus) == before

    @rule()
    def reopen(self) -> None:
        before = dump_store(self.nexus)
        self.nexus.close()
        self.nexus = anda.Nexus(self.directory)
        assert dump_store(self.nexus) == before

    @invariant()
    def reads_match_the_model(self) -> None:
        dump = dump_store(self.nexus)
        for state in ("active", "tombstoned"):
            stored = {
                (_local(ref), key): (name, attributes or {})
                for ref, key, name, attributes in dump["concepts"][state]
            }
            expected = {
                (c.type, c.key): (m.name, m.attributes)
                for c, m in self.concepts.items()
                if m.state == state
            }
            assert stored == expected, state
        stored_assertions = Counter(
            (_local(s_ref), s_key, _local(pred), _local(o_ref), o_key, literal)
            for s_ref, s_key, pred, o_ref, o_key, literal, *_ in dump["assertions"]
        )
        assert stored_assertions == self.assertions
        assert dump["contents"]["assertion"] == sum(self.assertions.values())

    def teardown(self) -> None:
        self.nexus.close()
        shutil.rmtree(self.directory, ignore_errors=True)


# Each step checks a full dump and a reopen costs a directory flush, so
# sequences stay short; the profile decides how many of them run.
GraphMachine.TestCase.settings = settings(
    settings.default,
    max_examples=max(10, settings.default.max_examples // 2),
    stateful_step_count=15,
)
TestGraph = GraphMachine.TestCase
