"""One memory per end user: tenancy="per_caller" and the caller= argument."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

import anda
from anda.testing import strategies as kst
from conftest import FIND_ALL_PEOPLE, FIND_PERSON_NAME, UPSERT_PERSON, result

SEARCH = 'SEARCH CONCEPT :term WITH TYPE "Person" LIMIT 10'
FIND_ID = 'FIND(?p.id) WHERE { ?p {type: "Person", key: :key} }'


def _by_id(store: anda.Nexus, caller: str, concept_id: str) -> Any:
    """What `caller` sees of the concept `concept_id`: nothing, or a refusal."""
    try:
        return result(
            store.execute_kip("FIND(?c) WHERE { ?c {id: :id} }", {"id": concept_id}, caller=caller)
        )
    except anda.KipError as err:
        assert err.code == "NotFoundOrNotVisible", err
        return []


def _names(store: anda.Nexus, caller: str | None, key: str = "k") -> Any:
    return result(store.execute_kip(FIND_PERSON_NAME, {"key": key}, caller=caller))


def _write(store: anda.Nexus, caller: str | None, name: str, key: str = "k") -> None:
    store.execute_kip(UPSERT_PERSON, {"key": key, "name": name}, caller=caller)


def _anonymous_sees_nothing(store: anda.Nexus) -> None:
    try:
        rows = result(store.execute_kip(FIND_ALL_PEOPLE))
    except anda.KipError as err:  # refused outright: default deny
        assert err.category in {"governance", "protocol", "schema"}, err
    else:
        assert rows == []


def test_tenancy_is_checked_and_reported() -> None:
    with pytest.raises(ValueError, match="tenancy must be one of"):
        anda.Nexus(tenancy="per_user")  # type: ignore[arg-type]
    with anda.Nexus() as shared, anda.Nexus(tenancy="per_caller") as isolated:
        assert (shared.tenancy, isolated.tenancy) == ("shared", "per_caller")
        with pytest.raises(TypeError, match="caller must be str"):
            shared.execute_kip("DESCRIBE PRIMER", caller=42)  # type: ignore[arg-type]


def test_shared_tenancy_ignores_the_caller() -> None:
    with anda.Nexus() as store:
        _write(store, "alice", "Alice")
        assert _names(store, "bob") == ["Alice"]
        assert _names(store, None) == ["Alice"]


def test_each_caller_has_a_memory_of_its_own(store_dir: Path) -> None:
    with anda.Nexus(store_dir, tenancy="per_caller") as store:
        _write(store, "alice", "Alice's")
        assert _names(store, "alice") == ["Alice's"]
        # Bob can neither read, search nor describe what Alice wrote.
        assert _names(store, "bob") == []
        hits = result(store.execute_kip(SEARCH, {"term": "Alice"}, caller="bob"))
        assert "Alice" not in repr(hits)
        alice_id = result(store.execute_kip(FIND_ID, {"key": "k"}, caller="alice"))[0]
        assert _by_id(store, "bob", alice_id) == []
        assert "Alice" not in repr(store.execute_kip("DESCRIBE PRIMER", caller="bob"))
        # Nor overwrite it: the same key is Bob's own concept.
        _write(store, "bob", "Bob's")
        assert _names(store, "bob") == ["Bob's"]
        assert _names(store, "alice") == ["Alice's"]
        _anonymous_sees_nothing(store)

    # And the walls survive a reopen.
    with anda.Nexus(store_dir, tenancy="per_caller") as store:
        assert _names(store, "alice") == ["Alice's"]
        assert _names(store, "bob") == ["Bob's"]
        assert _names(store, "carol") == []
        _anonymous_sees_nothing(store)


def test_a_callers_id_and_its_principal_text_are_the_same_caller() -> None:
    principal = anda.caller_principal("alice")
    with anda.Nexus(tenancy="per_caller") as store:
        _write(store, "alice", "Alice")
        assert _names(store, principal) == ["Alice"]
        assert _names(store, "Alice") == []  # ids are case-sensitive


def test_the_tool_door_carries_the_caller() -> None:
    with anda.Nexus(tenancy="per_caller") as store:
        arguments = {"command": UPSERT_PERSON, "parameters": {"key": "k", "name": "T"}}
        assert not store.call_tool("execute_kip", arguments, caller="alice").is_error
        read = {"command": FIND_PERSON_NAME, "parameters": {"key": "k"}}
        alice = store.call_tool("execute_kip_readonly", read, caller="alice")
        bob = store.call_tool("execute_kip_readonly", read, caller="bob")
        assert (result(alice.response), result(bob.response)) == (["T"], [])


def test_async_calls_carry_the_caller() -> None:
    import asyncio

    async def main(store: anda.Nexus) -> tuple[Any, Any]:
        await store.execute_kip_async(UPSERT_PERSON, {"key": "k", "name": "A"}, caller="a")
        mine = await store.execute_kip_async(FIND_PERSON_NAME, {"key": "k"}, caller="a")
        theirs = await store.execute_kip_async(FIND_PERSON_NAME, {"key": "k"}, caller="b")
        return result(mine), result(theirs)

    with anda.Nexus(tenancy="per_caller") as store:
        assert asyncio.run(main(store)) == (["A"], [])


def test_caller_principal() -> None:
    assert anda.caller_principal("aaaaa-aa") == "aaaaa-aa"
    derived = anda.caller_principal("alice@example.com")
    assert derived == anda.caller_principal("alice@example.com")
    assert derived != anda.caller_principal("alice@example.co")
    assert anda.caller_principal(derived) == derived
    with pytest.raises(TypeError):
        anda.caller_principal(None)  # type: ignore[arg-type]


@given(kst.upserts(), kst.keys(), kst.keys())
def test_no_generated_write_crosses_callers(upsert: kst.Upsert, first: str, second: str) -> None:
    if first == second:
        second += "-other"
    command, parameters = upsert.render()
    lookup = "FIND(?c.key) WHERE { ?c {type: :type, key: :key} }"
    where = {"type": upsert.concept.type, "key": upsert.concept.key}
    with anda.Nexus(tenancy="per_caller") as store:
        store.execute_kip(command, parameters, caller=first)
        assert result(store.execute_kip(lookup, where, caller=first)) == [upsert.concept.key]
        assert result(store.execute_kip(lookup, where, caller=second)) == []
