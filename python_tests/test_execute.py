"""execute_kip: the happy path, round trips, parameters as data, dry runs,
batches and read-only stores."""

from __future__ import annotations

import json

import pytest

import anda
from conftest import FIND_PERSON_NAME, UPSERT_PERSON, people, result


def _is_plain(value: object) -> bool:
    """Plain Python objects only, with no JSON text left inside."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "{[" and text[-1:] in "}]":
            try:
                json.loads(text)
            except ValueError:
                return True
            return False
        return True
    return value is None or isinstance(value, (bool, int, float))


def test_module_level_execute_kip_returns_a_dict() -> None:
    response = anda.execute_kip("DESCRIBE PRIMER")
    assert isinstance(response, dict)
    assert response["status"] == "succeeded"
    assert response["kip"] == "2.0"
    assert isinstance(result(response), dict)
    assert _is_plain(response)


def test_module_level_signature_is_the_seed_one() -> None:
    import inspect

    params = inspect.signature(anda.execute_kip).parameters
    positional = [name for name, p in params.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == ["command", "parameters", "dry_run"]
    assert params["parameters"].default is None
    assert params["dry_run"].default is False
    # Anything added since is keyword-only, so the seed call shape never changes.
    assert {name: p.kind for name, p in params.items() if name not in positional} == {
        "caller": inspect.Parameter.KEYWORD_ONLY
    }


@pytest.mark.parametrize(
    "command", ["DESCRIBE PRIMER", "DESCRIBE PROTOCOL", "DESCRIBE CAPABILITIES", "LIST TYPES"]
)
def test_meta_commands_succeed(nexus: anda.Nexus, command: str) -> None:
    response = nexus.execute_kip(command)
    assert response["status"] == "succeeded"
    assert _is_plain(response)


def test_upsert_then_find_round_trip(nexus: anda.Nexus) -> None:
    written = nexus.execute_kip(UPSERT_PERSON, {"key": "ada", "name": "Ada Lovelace"})
    assert written["status"] == "succeeded"
    assert result(nexus.execute_kip(FIND_PERSON_NAME, {"key": "ada"})) == ["Ada Lovelace"]


def test_upsert_again_updates_the_same_concept(nexus: anda.Nexus) -> None:
    nexus.execute_kip(UPSERT_PERSON, {"key": "ada", "name": "Ada"})
    nexus.execute_kip(UPSERT_PERSON, {"key": "ada", "name": "Ada Lovelace"})
    assert people(nexus) == [["ada", "Ada Lovelace"]]


def test_attributes_round_trip_with_json_fidelity(nexus: anda.Nexus) -> None:
    value = {
        "text": 'héllo ✓ 日本 \U0001f600 "quoted" \\ back',
        "empty": "",
        "int": 9007199254740991,
        "negative": -42,
        "float": 0.1,
        "tiny": 5e-324,
        "flag": True,
        "none": None,
        "nested": [1, [2, [3, {"deep": ["x"]}]]],
    }
    nexus.execute_kip(
        'UPSERT CONCEPT ?t { MATCH { type: "Topic", key: "t1" } '
        'SET FIELDS { name: "t1" } SET ATTRIBUTES { payload: :payload } }',
        {"payload": value},
    )
    found = result(
        nexus.execute_kip('FIND(?t.attributes.payload) WHERE { ?t {type: "Topic", key: "t1"} }')
    )
    assert found == [value]


def test_many_distinct_keys_come_back_as_written(nexus: anda.Nexus) -> None:
    # More short keys than the binding keeps strings for, so keys share
    # slots: each must still come back as itself, read after read.
    payload = {f"{prefix}{i}": i for i in range(1300) for prefix in ("k", "ключ", "鍵")}
    payload["k" * 33] = "longer than the kept keys"
    nexus.execute_kip(
        'UPSERT CONCEPT ?t { MATCH { type: "Topic", key: "keys" } '
        'SET FIELDS { name: "keys" } SET ATTRIBUTES { payload: :payload } }',
        {"payload": payload},
    )
    for _ in range(2):
        found = result(
            nexus.execute_kip(
                'FIND(?t.attributes.payload) WHERE { ?t {type: "Topic", key: "keys"} }'
            )
        )
        assert found == [payload]


def test_parameters_are_data_not_kip_text(nexus: anda.Nexus) -> None:
    hostile = 'x" } SET FIELDS { name: "pwned" } } // :name ?p {type: "Person"}'
    nexus.execute_kip(UPSERT_PERSON, {"key": "k1", "name": hostile})
    assert result(nexus.execute_kip(FIND_PERSON_NAME, {"key": "k1"})) == [hostile]
    assert people(nexus) == [["k1", hostile]]


def test_dry_run_changes_nothing(nexus: anda.Nexus) -> None:
    nexus.execute_kip(UPSERT_PERSON, {"key": "before", "name": "Before"})
    before = people(nexus)
    response = nexus.execute_kip(UPSERT_PERSON, {"key": "dry", "name": "Dry"}, dry_run=True)
    assert response["status"] == "succeeded"
    nexus.execute_kip(UPSERT_PERSON, {"key": "before", "name": "Changed"}, dry_run=True)
    assert people(nexus) == before
    assert result(nexus.execute_kip(FIND_PERSON_NAME, {"key": "dry"})) == []


def test_batch_of_commands_and_pairs(nexus: anda.Nexus) -> None:
    response = nexus.execute_kip(
        [
            (UPSERT_PERSON, {"key": "a", "name": "A"}),
            (UPSERT_PERSON, {"key": "b", "name": "B"}),
            "DESCRIBE PRIMER",
        ]
    )
    assert [op["status"] for op in response["results"]] == ["succeeded"] * 3
    assert people(nexus) == [["a", "A"], ["b", "B"]]


def test_batch_shares_request_parameters(nexus: anda.Nexus) -> None:
    nexus.execute_kip([UPSERT_PERSON, FIND_PERSON_NAME], {"key": "s", "name": "Shared"})
    assert people(nexus) == [["s", "Shared"]]


def test_batch_sequence_stops_at_the_first_failure(nexus: anda.Nexus) -> None:
    with pytest.raises(anda.KipError) as info:
        nexus.execute_kip(
            [
                (UPSERT_PERSON, {"key": "first", "name": "First"}),
                "FIND(?x WHERE",
                (UPSERT_PERSON, {"key": "third", "name": "Third"}),
            ]
        )
    statuses = [op["status"] for op in info.value.response["results"]]
    assert statuses == ["succeeded", "failed", "skipped"]
    assert info.value.response["status"] == "partial"
    assert people(nexus) == [["first", "First"]]


def test_batch_independent_reads(nexus: anda.Nexus) -> None:
    response = nexus.execute_kip(["DESCRIBE PRIMER", "LIST TYPES"], execution="independent")
    assert len(response["results"]) == 2


def test_batch_size_limit_is_a_typed_error(nexus: anda.Nexus) -> None:
    with pytest.raises(anda.KipResourceError):
        nexus.execute_kip(["DESCRIBE PRIMER"] * 1000, execution="independent")


def test_batch_dry_run_changes_nothing(nexus: anda.Nexus) -> None:
    nexus.execute_kip(
        [(UPSERT_PERSON, {"key": "a", "name": "A"}), (UPSERT_PERSON, {"key": "b", "name": "B"})],
        dry_run=True,
    )
    assert people(nexus) == []


def test_readonly_store_refuses_writes_and_changes_nothing(store_dir) -> None:
    with anda.Nexus(store_dir) as writer:
        writer.execute_kip(UPSERT_PERSON, {"key": "kept", "name": "Kept"})
    with anda.Nexus(store_dir, readonly=True) as reader:
        assert reader.readonly
        with pytest.raises(anda.KipError) as info:
            reader.execute_kip(UPSERT_PERSON, {"key": "new", "name": "New"})
        assert info.value.code == "ReadonlyViolation"
        with pytest.raises(anda.KipError):
            reader.execute_kip([FIND_PERSON_NAME, UPSERT_PERSON], {"key": "x", "name": "X"})
        assert people(reader) == [["kept", "Kept"]]
        assert result(reader.execute_kip("DESCRIBE PRIMER"))


def test_readonly_never_creates_a_store(tmp_path) -> None:
    with pytest.raises(anda.StoreError, match="read-only"):
        anda.Nexus(tmp_path / "missing", readonly=True)
    assert not (tmp_path / "missing").exists()


def test_readonly_in_memory_store_reads(nexus: anda.Nexus) -> None:
    with anda.Nexus(readonly=True) as reader:
        assert people(reader) == []
        with pytest.raises(anda.KipProtocolError):
            reader.execute_kip(UPSERT_PERSON, {"key": "n", "name": "N"})


def test_large_result_and_large_values(nexus: anda.Nexus) -> None:
    for start in (0, 150):
        nexus.execute_kip(
            [
                (UPSERT_PERSON, {"key": f"p{i:04d}", "name": "n" * 1000})
                for i in range(start, start + 150)
            ]
        )
    rows = people(nexus)
    assert len(rows) == 300
    assert rows[0] == ["p0000", "n" * 1000]
    big = "x" * 1_000_000
    nexus.execute_kip(UPSERT_PERSON, {"key": "big", "name": big})
    assert result(nexus.execute_kip(FIND_PERSON_NAME, {"key": "big"})) == [big]
