"""Property tests: generated KIP commands and parameters through execute_kip.

Profiles (see conftest.py): ``quick`` for ``nox -s test``, ``ci``
(derandomized) in CI, ``thorough`` for ``nox -s test-deep``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import anda
from anda.testing import dump_store
from anda.testing import strategies as kst

FIND_ATTRIBUTES = "FIND(?c.name, ?c.attributes) WHERE { ?c {type: :type, key: :key} }"


@pytest.fixture(scope="module")
def shared() -> Iterator[anda.Nexus]:
    """One store for the properties that only need *a* store, seeded with a
    few concepts and relations so reads have something to match."""
    with anda.Nexus() as nexus:
        people = [kst.Concept("Person", key) for key in ("ada", "grace", "alan")]
        others = [
            kst.Concept("Organization", "acme"),
            kst.Concept("Place", "london"),
            kst.Concept("Topic", "logic"),
        ]
        for concept in people + others:
            nexus.execute_kip(*kst.Upsert(concept, concept.key.title()).render())
        ids = _ids(nexus, people + others)
        for subject, predicate, obj in [
            (people[0], "knows", people[1]),
            (people[1], "works_for", others[0]),
            (people[2], "lives_in", others[1]),
            (people[0], "interested_in", others[2]),
        ]:
            nexus.execute_kip(*kst.Relate(subject, predicate, obj, ids).render())
        yield nexus


def _ids(nexus: anda.Nexus, concepts: list[kst.Concept]) -> dict[kst.Concept, str]:
    ids = {}
    for concept in concepts:
        rows = nexus.execute_kip(
            "FIND(?c.id) WHERE { ?c {type: :type, key: :key} }",
            {"type": concept.type, "key": concept.key},
        )["results"][0]["result"]
        ids[concept] = rows[0]
    return ids


def _rows(response: dict[str, Any]) -> Any:
    return response["results"][0]["result"]


def _normalise(value: Any) -> Any:
    """JSON equality: the engine returns integral floats as ints and -0.0 as 0."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, float) and value == math.floor(value):
        return int(value)
    return value


# -- totality ---------------------------------------------------------------


@given(
    command=st.text() | kst.adversarial_text() | kst.valid_commands().map(lambda c: c[0]),
    parameters=st.none() | kst.parameter_maps() | kst.adversarial_parameters(),
)
def test_totality(shared: anda.Nexus, command: str, parameters: Any) -> None:
    """Any text and any parameters give a dict or a typed error, nothing else."""
    try:
        response = shared.execute_kip(command, parameters)
    except anda.KipError as err:
        assert isinstance(err.response, dict)
        assert err.response["status"] != "succeeded"
    except (TypeError, ValueError) as err:
        assert str(err).startswith(("parameters", "command")), err
    else:
        assert isinstance(response, dict)
        assert response["status"] == "succeeded"


@given(
    batch=st.lists(
        st.one_of(
            st.text(max_size=50),
            kst.adversarial_text(),
            st.tuples(kst.adversarial_text(), st.none() | kst.parameter_maps()),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_totality_of_batches(shared: anda.Nexus, batch: list[Any]) -> None:
    try:
        response = shared.execute_kip(batch, execution="independent")
    except anda.KipError as err:
        assert err.response["status"] in ("failed", "partial")
    except (TypeError, ValueError) as err:
        assert str(err).startswith("commands["), err
    else:
        assert len(response["results"]) == len(batch)


# -- valid commands succeed ---------------------------------------------------


@given(command=kst.valid_commands())
def test_generated_valid_commands_succeed(shared: anda.Nexus, command: Any) -> None:
    text, parameters = command
    response = shared.execute_kip(text, parameters)
    assert response["status"] == "succeeded"
    assert all(result["status"] in ("succeeded", "no_effect") for result in response["results"])


@given(find=kst.finds())
def test_generated_reads_return_rows(shared: anda.Nexus, find: kst.Find) -> None:
    rows = _rows(shared.execute_kip(*find.render()))
    assert isinstance(rows, list)
    if find.limit is not None:
        assert len(rows) <= find.limit


# -- parameters are data --------------------------------------------------------


@given(find=kst.finds())
def test_parameters_equal_literals_for_reads(shared: anda.Nexus, find: kst.Find) -> None:
    with_parameters = _rows(shared.execute_kip(*find.render()))
    with_literals = _rows(shared.execute_kip(find.render_literal()))
    assert with_parameters == with_literals


@given(upserts=st.lists(kst.upserts(), min_size=1, max_size=4))
def test_parameters_equal_literals_for_writes(upserts: list[kst.Upsert]) -> None:
    with anda.Nexus() as by_parameters, anda.Nexus() as by_literals:
        for upsert in upserts:
            by_parameters.execute_kip(*upsert.render())
            by_literals.execute_kip(upsert.render_literal())
        assert dump_store(by_parameters) == dump_store(by_literals)


@given(text=kst.adversarial_text().filter(lambda t: len(t) < 20_000), concept=kst.concepts())
def test_kip_looking_parameters_are_stored_verbatim(text: str, concept: kst.Concept) -> None:
    with anda.Nexus() as nexus:
        nexus.execute_kip(*kst.Upsert(concept, text, {"note": text}).render())
        rows = _rows(nexus.execute_kip(FIND_ATTRIBUTES, {"type": concept.type, "key": concept.key}))
        # The engine keeps an empty name as no name; the attribute keeps it.
        assert rows == [[text or None, {"note": text}]]


# -- dry runs and read-only stores change nothing ---------------------------------


@given(statements=st.lists(kst.kml_writes(), min_size=1, max_size=4))
def test_dry_run_never_changes_the_store(shared: anda.Nexus, statements: list[Any]) -> None:
    before = dump_store(shared)
    for statement in statements:
        shared.execute_kip(*statement.render(), dry_run=True)
    shared.execute_kip([s.render() for s in statements], dry_run=True)
    assert dump_store(shared) == before


@pytest.fixture(scope="module")
def readonly_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[anda.Nexus]:
    path = tmp_path_factory.mktemp("readonly")
    with anda.Nexus(path) as writer:
        writer.execute_kip(*kst.Upsert(kst.Concept("Person", "seed"), "Seed").render())
    with anda.Nexus(path, readonly=True) as reader:
        yield reader


@given(command=kst.valid_commands() | kst.kml_writes().map(lambda s: s.render()))
def test_readonly_never_changes_the_store(readonly_store: anda.Nexus, command: Any) -> None:
    before = dump_store(readonly_store)
    try:
        readonly_store.execute_kip(*command)
    except anda.KipError as err:
        assert err.code == "ReadonlyViolation"
    assert dump_store(readonly_store) == before


# -- write then read ----------------------------------------------------------------


@given(upsert=kst.upserts(), attributes=kst.attribute_maps())
def test_written_values_read_back_equal(upsert: kst.Upsert, attributes: dict[str, Any]) -> None:
    upsert = kst.Upsert(upsert.concept, upsert.name, attributes)
    with anda.Nexus() as nexus:
        nexus.execute_kip(*upsert.render())
        [[name, stored]] = _rows(
            nexus.execute_kip(
                FIND_ATTRIBUTES, {"type": upsert.concept.type, "key": upsert.concept.key}
            )
        )
    assert name == upsert.name
    assert _normalise(stored) == _normalise(attributes)


# -- idempotence ------------------------------------------------------------------------


@given(upsert=kst.upserts())
def test_reapplying_an_upsert_changes_nothing(upsert: kst.Upsert) -> None:
    with anda.Nexus() as nexus:
        nexus.execute_kip(*upsert.render())
        once = dump_store(nexus)
        again = nexus.execute_kip(*upsert.render())
        assert again["results"][0]["status"] == "no_effect"
        assert dump_store(nexus) == once


# -- persistence -----------------------------------------------------------------------------


# Opening a directory store fsyncs its bootstrap (about a second here), so
# this property runs a tenth of the profile's examples.
@settings(max_examples=max(5, settings.default.max_examples // 10))
@given(upserts=st.lists(kst.upserts(), min_size=1, max_size=4), data=st.data())
def test_directory_dump_is_the_same_after_reopen(
    tmp_path_factory: pytest.TempPathFactory, upserts: list[kst.Upsert], data: st.DataObject
) -> None:
    path: Path = tmp_path_factory.mktemp("persist")
    with anda.Nexus(path) as nexus:
        for upsert in upserts:
            nexus.execute_kip(*upsert.render())
        concepts = list({u.concept: None for u in upserts})
        ids = _ids(nexus, concepts)
        relate = data.draw(kst.relates(concepts, concepts) | st.none(), label="relate")
        if relate is not None:
            nexus.execute_kip(
                *kst.Relate(relate.subject, relate.predicate, relate.object, ids).render()
            )
        if data.draw(st.booleans(), label="tombstone one"):
            nexus.execute_kip(*kst.Tombstone(concepts[0]).render())
        before = dump_store(nexus)
    with anda.Nexus(path) as reopened:
        assert dump_store(reopened) == before
