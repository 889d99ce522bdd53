"""Errors: typed KIP errors from the engine, and clear Python errors for input
the engine cannot take. No input may crash the interpreter."""

from __future__ import annotations

import math
import pickle
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import pytest

import anda
from conftest import FIND_PERSON_NAME, UPSERT_PERSON, people


def test_syntax_error(nexus: anda.Nexus) -> None:
    with pytest.raises(anda.KipSyntaxError) as info:
        nexus.execute_kip("FIND(?x WHERE")
    err = info.value
    assert err.category == "syntax"
    assert err.code
    assert err.message
    assert err.response["status"] == "failed"
    assert err.code in str(err)


def test_schema_error_for_unknown_type(nexus: anda.Nexus) -> None:
    with pytest.raises(anda.KipSchemaError) as info:
        nexus.execute_kip(
            'UPSERT CONCEPT ?x { MATCH { type: "NoSuchType", key: "k" } SET FIELDS { name: "n" } }'
        )
    assert info.value.category == "schema"
    assert isinstance(info.value.hint, (str, type(None)))


def test_protocol_error_for_empty_command(nexus: anda.Nexus) -> None:
    with pytest.raises(anda.KipProtocolError):
        nexus.execute_kip("   ")


def test_protocol_error_for_bad_parameter_name(nexus: anda.Nexus) -> None:
    with pytest.raises(anda.KipError):
        nexus.execute_kip(FIND_PERSON_NAME, {"key": "k", "not a name": 1})


def test_kip_error_pickles(nexus: anda.Nexus) -> None:
    with pytest.raises(anda.KipError) as info:
        nexus.execute_kip("FIND(?x WHERE")
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is type(info.value)
    assert (copy.code, copy.message, copy.response) == (
        info.value.code,
        info.value.message,
        info.value.response,
    )


class _Weird:
    pass


@pytest.mark.parametrize(
    ("parameters", "exc", "where"),
    [
        ({"key": {1, 2}}, TypeError, "parameters['key']"),
        ({"key": b"bytes"}, TypeError, "parameters['key']"),
        ({"key": _Weird()}, TypeError, "parameters['key']"),
        ({"key": ["a", "b", float("nan")]}, ValueError, "parameters['key'][2]"),
        ({"key": {"deep": [math.inf]}}, ValueError, "parameters['key']['deep'][0]"),
        ({"key": -math.inf}, ValueError, "parameters['key']"),
        ({"key": 2**53}, ValueError, "parameters['key']"),
        ({"key": -(2**53)}, ValueError, "parameters['key']"),
        ({"key": 10**100}, ValueError, "parameters['key']"),
        ({"key": 1e300}, ValueError, "parameters['key']"),
        ({"key": {1: "x"}}, TypeError, "parameters['key']"),
        ({"key": "\ud800"}, ValueError, "parameters['key']"),
        ({"key": {"\udfff": 1}}, ValueError, "parameters['key']"),
        ({1: "x"}, TypeError, "parameters"),
        ("not a mapping", TypeError, "parameters"),
        ([("key", "x")], TypeError, "parameters"),
    ],
)
def test_bad_parameters_raise_with_the_path(
    nexus: anda.Nexus, parameters: Any, exc: type[Exception], where: str
) -> None:
    with pytest.raises(exc) as info:
        nexus.execute_kip(FIND_PERSON_NAME, parameters)
    assert str(info.value).startswith(where), str(info.value)


def test_limits_are_inclusive(nexus: anda.Nexus) -> None:
    for value in (anda.MAX_SAFE_INTEGER, -anda.MAX_SAFE_INTEGER, 2.0**53 - 1, 0.5, -0.0):
        nexus.execute_kip(FIND_PERSON_NAME, {"key": "k", "extra": value})


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_limit(nexus: anda.Nexus) -> None:
    nexus.execute_kip(
        UPSERT_PERSON, {"key": "deep", "name": "n", "extra": _nested(anda.MAX_JSON_DEPTH)}
    )
    with pytest.raises(ValueError, match=r"parameters\['extra'\]"):
        nexus.execute_kip(FIND_PERSON_NAME, {"key": "k", "extra": _nested(anda.MAX_JSON_DEPTH + 1)})
    with pytest.raises(ValueError, match="nesting"):
        nexus.execute_kip(FIND_PERSON_NAME, {"key": "k", "extra": _nested(100_000)})


def test_self_containing_value(nexus: anda.Nexus) -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nesting"):
        nexus.execute_kip(FIND_PERSON_NAME, {"key": "k", "loop": loop})


def test_other_mappings_and_tuples_are_accepted(nexus: anda.Nexus) -> None:
    class ReadOnly(Mapping[str, Any]):
        def __init__(self, data: dict[str, Any]) -> None:
            self._data = data

        def __getitem__(self, key: str) -> Any:
            return self._data[key]

        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(self._data)

        def __len__(self) -> int:
            return len(self._data)

    nexus.execute_kip(UPSERT_PERSON, ReadOnly({"key": "m", "name": "Mapping"}))
    nexus.execute_kip(UPSERT_PERSON, OrderedDict(key="t", name=("tu", "ple")[0]))
    assert people(nexus) == [["m", "Mapping"], ["t", "tu"]]


@pytest.mark.parametrize(
    ("command", "exc"),
    [
        (b"DESCRIBE PRIMER", TypeError),
        (None, TypeError),
        (42, TypeError),
        ([], ValueError),
        ([42], TypeError),
        ([("DESCRIBE PRIMER",)], TypeError),
        ("DESCRIBE \ud800 PRIMER", ValueError),
    ],
)
def test_bad_commands(nexus: anda.Nexus, command: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        nexus.execute_kip(command)


def test_bad_flags(nexus: anda.Nexus) -> None:
    with pytest.raises(TypeError, match="dry_run"):
        nexus.execute_kip("DESCRIBE PRIMER", None, "yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="execution"):
        nexus.execute_kip(["DESCRIBE PRIMER"], execution="parallel")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="readonly"):
        anda.Nexus(readonly=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name"):
        anda.Nexus(name=3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "\x00",
        "FIND(" * 10_000,
        "[" * 100_000,
        "{" * 5000 + "}" * 5000,
        "// only a comment with a quote \" and ' }",
        'FIND(?x) WHERE { ?x {type: "Person", name: "' + "a" * 1_000_000 + '"} }',
        "\u202e\ufeff\U0010ffff" * 1000,
        "UPSERT" + " ?x" * 50_000,
        '"unterminated',
        "FIND(?x) WHERE { FILTER(" + "!" * 10_000 + "true) }",
    ],
)
def test_garbage_kip_is_a_kip_error(nexus: anda.Nexus, garbage: str) -> None:
    with pytest.raises(anda.KipError):
        nexus.execute_kip(garbage)
    assert nexus.execute_kip("DESCRIBE PRIMER")["status"] == "succeeded"


def test_closed_nexus_raises(nexus: anda.Nexus) -> None:
    store = anda.Nexus()
    store.close()
    assert store.closed
    with pytest.raises(anda.MemoryClosedError):
        store.execute_kip("DESCRIBE PRIMER")
    with pytest.raises(anda.MemoryClosedError):
        store.flush()
    store.close()  # idempotent
    assert "closed" in repr(store)


def test_store_error_for_an_unusable_path(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(anda.StoreError):
        anda.Nexus(blocker)
    with pytest.raises(TypeError):
        anda.Nexus(b"/tmp/bytes-path")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        anda.Nexus("")
