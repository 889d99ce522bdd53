"""Nexus.bulk_write: many writes, few transactions, explicit failure semantics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import anda
from anda.bulk import DEFAULT_CHUNK_SIZE, BulkWriteError, Relate, Upsert, Write, write_chunks
from anda.errors import error_from_response
from anda.testing import dump_store
from anda.testing import strategies as kst
from conftest import FIND_ALL_PEOPLE, UPSERT_PERSON, people, result

WORKS_FOR = (
    'FIND(?p.key, ?o.key) WHERE { ?p {type: "Person"} (?p, "works_for", ?o) } ORDER BY ?p.key ASC'
)


def _contents(nexus: anda.Nexus) -> dict[str, Any]:
    """The store's contents, without the commit sequence (which counts transactions)."""
    dump = dump_store(nexus)
    del dump["space_seq"]
    return dump


def test_structured_operations_in_one_transaction(nexus: anda.Nexus) -> None:
    before = dump_store(nexus)["space_seq"]
    done = nexus.bulk_write(
        [
            Upsert("Person", "ada", name="Ada", attributes={"born": 1815}),
            Upsert("Organization", "ae", name="Analytical Engines"),
            Relate(("Person", "ada"), "works_for", ("Organization", "ae")),
            Upsert("Person", "ada", attributes={"field": "mathematics"}),
            {
                "relate": {
                    "subject": ["Person", "bob"],
                    "predicate": "works_for",
                    "object": ["Organization", "ae"],
                }
            },
        ]
    )
    assert (done.operations, done.transactions) == (5, 1)
    assert dump_store(nexus)["space_seq"] == before + 1
    assert result(nexus.execute_kip(WORKS_FOR)) == [["ada", "ae"], ["bob", "ae"]]
    row = result(
        nexus.execute_kip('FIND(?p.name, ?p.attributes) WHERE { ?p {type: "Person", key: "ada"} }')
    )
    assert row == [["Ada", {"born": 1815, "field": "mathematics"}]]


def test_commands_keep_their_own_parameters_and_handles(nexus: anda.Nexus) -> None:
    # Every command uses the same names (:key, :name, ?p); values must not cross.
    tricky = 'Ada "Countess" :key ?p // not a comment'
    done = nexus.bulk_write(
        [(UPSERT_PERSON, {"key": f"k{i}", "name": f"{tricky} {i}"}) for i in range(30)]
    )
    assert done.transactions == 1
    assert people(nexus) == sorted([f"k{i}", f"{tricky} {i}"] for i in range(30))


def test_a_generator_is_streamed_in_chunks_with_progress(nexus: anda.Nexus) -> None:
    pulled: list[int] = []

    def operations() -> Iterator[dict[str, Any]]:
        for i in range(250):
            pulled.append(i)
            yield {"upsert": {"type": "Person", "key": f"p{i:03}", "name": str(i)}}

    seen: list[int] = []

    def progress(committed: int) -> None:
        seen.append(committed)
        # Streaming: no more than one chunk is read ahead of what is committed.
        assert len(pulled) <= committed + 1

    done = nexus.bulk_write(operations(), chunk_size=100, progress=progress)
    assert (done.operations, done.transactions) == (250, 3)
    assert seen == [100, 200, 250]
    assert len(people(nexus)) == 250


def test_chunks_double_while_they_go_in_whole(nexus: anda.Nexus) -> None:
    seen: list[int] = []
    done = nexus.bulk_write(
        (Upsert("Person", f"p{i:04}") for i in range(1000)), progress=seen.append
    )
    # 200, then 400, then the 400 left (the limit was 800).
    assert seen == [DEFAULT_CHUNK_SIZE, 3 * DEFAULT_CHUNK_SIZE, 1000]
    assert done.transactions == 3
    assert len(people(nexus)) == 1000


def test_chunks_stop_growing_at_half_what_the_engine_refused(nexus: anda.Nexus) -> None:
    # The engine refuses a transaction of ~1,000 new relations as too large
    # (its journal entry would pass 16,384 nodes); chunks grow into that.
    nexus.bulk_write([Upsert("Person", f"p{i:02}") for i in range(80)])
    pairs = [(a, b) for a in range(80) for b in range(80) if a != b][:3000]
    attempts: list[int] = []

    def commit(writes: list[Write]) -> None:
        ((_, parameters),) = writes
        attempts.append(sum(name.endswith("_predicate") for name in parameters or {}))
        response = nexus._native.write_all(writes, None)
        if response["status"] != "succeeded":
            raise error_from_response(response)

    relations = (Relate(("Person", f"p{a:02}"), "knows", ("Person", f"p{b:02}")) for a, b in pairs)
    done = write_chunks(relations, commit, chunk_size=None, progress=None)
    assert attempts[:3] == [200, 400, 800]
    refused = attempts[3]  # as large as the KIP text allows; refused, then split
    assert refused > 800
    assert attempts[4:6] == [refused // 2, refused - refused // 2]
    assert max(attempts[6:]) <= refused // 2
    assert done.operations == 3000
    assert done.transactions == len(attempts) - 1
    count = 'FIND(COUNT(?r)) WHERE { ?r (?a, "knows", ?b) }'
    assert result(nexus.execute_kip(count)) == [3000]


def test_clashing_writes_in_one_chunk_are_split_not_lost(nexus: anda.Nexus) -> None:
    # Two raw upserts of one key cannot share a transaction; the chunk is split.
    done = nexus.bulk_write(
        [
            (UPSERT_PERSON, {"key": "same", "name": "first"}),
            (UPSERT_PERSON, {"key": "other", "name": "o"}),
            (UPSERT_PERSON, {"key": "same", "name": "last"}),
        ]
    )
    assert done.operations == 3
    assert done.transactions > 1
    assert people(nexus) == [["other", "o"], ["same", "last"]]


def test_a_refused_chunk_stops_the_write_and_leaves_it_out(nexus: anda.Nexus) -> None:
    operations: list[Any] = [Upsert("Person", f"ok{i}") for i in range(10)]
    operations += [Upsert("Person", "x1"), Upsert("NoSuchType", "bad"), Upsert("Person", "x2")]
    operations += [Upsert("Person", "never")]
    with pytest.raises(BulkWriteError) as caught:
        nexus.bulk_write(operations, chunk_size=10)
    err = caught.value
    assert err.committed == 10
    assert isinstance(err.cause, anda.KipError)
    assert "operations 10..13" in str(err)
    keys = sorted(row[0] for row in people(nexus))
    assert keys == sorted(f"ok{i}" for i in range(10))
    # Resuming after fixing the data completes the load.
    operations[11] = Upsert("Person", "fixed")
    done = nexus.bulk_write(operations[err.committed :])
    assert done.operations == 4
    assert len(people(nexus)) == 14


def test_a_single_bad_command_is_named(nexus: anda.Nexus) -> None:
    with pytest.raises(BulkWriteError) as caught:
        nexus.bulk_write([(UPSERT_PERSON, {"key": "a", "name": "A"}), "FIND(?x) WHERE { ?x {} }"])
    err = caught.value
    assert (err.committed, err.index) == (0, 1)
    assert isinstance(err.cause, ValueError)
    assert "not a KML write" in str(err)
    assert people(nexus) == []


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (42, "an operation is a command str"),
        ({"upsert": {"type": "Person"}}, "'key' must be a str"),
        ({"upsert": {"type": "Person", "key": "k", "colour": 1}}, "unknown field"),
        ({"relate": {"subject": ["Person"], "predicate": "p", "object": ["P", "k"]}}, "pair"),
        ({"delete": {}}, "needs 'command', 'upsert' or 'relate'"),
        ((UPSERT_PERSON, [1]), "parameters must be a mapping"),
    ],
)
def test_malformed_operations_are_typed_errors(
    nexus: anda.Nexus, operation: Any, message: str
) -> None:
    with pytest.raises(BulkWriteError, match=message) as caught:
        nexus.bulk_write([Upsert("Person", "first"), operation])
    assert caught.value.index == 1
    assert isinstance(caught.value.cause, (TypeError, ValueError))
    assert people(nexus) == []  # its chunk never reached the engine


def test_arguments_are_checked(nexus: anda.Nexus) -> None:
    with pytest.raises(TypeError, match="not a single str"):
        nexus.bulk_write(UPSERT_PERSON)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk_size"):
        nexus.bulk_write([], chunk_size=0)
    assert nexus.bulk_write([]).operations == 0


def test_a_readonly_store_refuses_a_bulk_write(store_dir: Path) -> None:
    with anda.Nexus(store_dir) as store:
        store.execute_kip("DESCRIBE PRIMER")
    with anda.Nexus(store_dir, readonly=True) as store:
        with pytest.raises(BulkWriteError) as caught:
            store.bulk_write([Upsert("Person", "p")])
        assert isinstance(caught.value.cause, anda.KipProtocolError)
        assert result(store.execute_kip(FIND_ALL_PEOPLE)) == []


def test_bulk_writes_survive_a_reopen(store_dir: Path) -> None:
    with anda.Nexus(store_dir) as store:
        store.bulk_write(Upsert("Person", f"p{i}") for i in range(300))
    with anda.Nexus(store_dir) as store:
        assert len(people(store)) == 300


def test_bulk_write_is_per_caller(nexus: anda.Nexus) -> None:
    with anda.Nexus(tenancy="per_caller") as store:
        store.bulk_write([Upsert("Person", "mine")], caller="alice")
        assert len(people_as(store, "alice")) == 1
        assert people_as(store, "bob") == []


def people_as(store: anda.Nexus, caller: str) -> list[Any]:
    return result(store.execute_kip(FIND_ALL_PEOPLE, caller=caller))  # type: ignore[no-any-return]


@given(st.lists(kst.upserts(), max_size=12), st.integers(min_value=1, max_value=5))
def test_bulk_equals_one_by_one(upserts: list[kst.Upsert], chunk_size: int) -> None:
    rendered = [upsert.render() for upsert in upserts]
    with anda.Nexus() as one_by_one, anda.Nexus() as bulk:
        for command, parameters in rendered:
            one_by_one.execute_kip(command, parameters)
        done = bulk.bulk_write(rendered, chunk_size=chunk_size)
        assert done.operations == len(rendered)
        assert _contents(bulk) == _contents(one_by_one)
