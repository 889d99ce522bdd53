"""The memory contract: every memory answers every public call alike.

Each scenario runs on a fresh memory of every kind (an embedded Nexus in
memory and on disk, a Client of a served memory, the server's own wrapper),
through the sync calls and through their async twins, and must give what it
gives on an in-memory Nexus called synchronously: the same results, and the
same typed errors with the same messages. What is particular to one door is
tested in that door's own file; what all memories share is held one here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import anda
from support.memories import FULL_KINDS, KINDS, call, open_memory, outcome

UPSERT = 'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }'
FIND_NAME = 'FIND(?p.name) WHERE { ?p {type: "Person", key: :key} }'
SYNTAX_ERROR = "FIND(?x WHERE"

Scenario = Callable[[Any, str], list[tuple[Any, ...]]]


def _same_as_reference(scenario: Scenario, kind: str, mode: str, tmp_path: Path) -> None:
    with open_memory("nexus", tmp_path) as reference:
        expected = scenario(reference, "sync")
    with open_memory(kind, tmp_path) as memory:
        got = scenario(memory, mode)
    assert got == expected


def kip_calls(memory: Any, mode: str) -> list[tuple[Any, ...]]:
    def kip(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return outcome(lambda: call(memory, mode, "execute_kip", *args, **kwargs))

    return [
        kip(UPSERT, {"key": "ada", "name": "Ada"}),
        kip(FIND_NAME, {"key": "ada"}),
        kip(UPSERT, {"key": "bob", "name": "Bob"}, dry_run=True),
        kip(FIND_NAME, {"key": "bob"}),
        # Values the engine cannot take, refused before anything runs.
        kip(FIND_NAME, {"key": 1e300}),
        kip(FIND_NAME, {"key": 2**60}),
        kip(FIND_NAME, {"key": float("nan")}),
        kip(FIND_NAME, {"key": {1: "x"}}),
        kip(FIND_NAME, {"key": "\udc80"}),
        kip(FIND_NAME, {"key": object()}),
        kip(FIND_NAME, [("key", "ada")]),
        kip(FIND_NAME, dry_run="yes"),
        kip(FIND_NAME, execution="parallel"),
        kip(42),
        kip([]),
        # The engine's own refusals.
        kip(SYNTAX_ERROR),
        kip("DESCRIBE PRIMER", caller=7),
    ]


def batches(memory: Any, mode: str) -> list[tuple[Any, ...]]:
    def kip(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return outcome(lambda: call(memory, mode, "execute_kip", *args, **kwargs))

    return [
        kip([(UPSERT, {"key": "a", "name": "A"}), (UPSERT, {"key": "b", "name": "B"})]),
        kip([(FIND_NAME, {"key": "a"}), FIND_NAME], {"key": "b"}, execution="independent"),
        # A failure in a sequence stops it; independent operations all run.
        kip([(UPSERT, {"key": "c", "name": "C"}), SYNTAX_ERROR, FIND_NAME], {"key": "c"}),
        kip([SYNTAX_ERROR, (FIND_NAME, {"key": "a"})], execution="independent"),
        kip(["DESCRIBE PRIMER", "DESCRIBE PRIMER"], execution="atomic"),
        kip(["DESCRIBE PRIMER"] * 257, execution="independent"),
        kip([("DESCRIBE PRIMER", {"x": 1e300})]),
    ]


def tool_calls(memory: Any, mode: str) -> list[tuple[Any, ...]]:
    def tool(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return outcome(lambda: call(memory, mode, "call_tool", *args, **kwargs))

    write = {"command": UPSERT, "parameters": {"key": "ada", "name": "Ada"}}
    return [
        tool("execute_kip", write),
        tool("execute_kip", json.dumps({"command": FIND_NAME, "parameters": {"key": "ada"}})),
        # A write on the read-only tool, alone and in a batch of reads.
        tool("execute_kip_readonly", write),
        tool("execute_kip_readonly", {"operations": ["DESCRIBE PRIMER", UPSERT]}),
        tool("execute_kip_readonly", {"operations": ["DESCRIBE PRIMER", FIND_NAME]}),
        tool("execute_kip_readonly", {"command": SYNTAX_ERROR}),
        tool("execute_kip", {"command": FIND_NAME, "parameters": {"key": 1e300}}),
        tool("execute_kip", "{not json"),
        tool("execute_kip", {"command": "DESCRIBE PRIMER", "unknown": 1}),
        tool("execute_kip", ["not", "an", "object"]),
        tool("execute_kip", {"command": "DESCRIBE PRIMER", "x": object()}),
        tool("search_memory", {"command": "DESCRIBE PRIMER"}),
        tool(b"execute_kip", {"command": "DESCRIBE PRIMER"}),
    ]


def requests(memory: Any, mode: str) -> list[tuple[Any, ...]]:
    def request(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return outcome(lambda: call(memory, mode, "execute_request", *args, **kwargs))

    write = {"command": UPSERT, "parameters": {"key": "ada", "name": "Ada"}}
    return [
        request({"kip": "2.0", "request_id": "r-1", "operations": [write]}),
        request({"kip": "2.0", "operations": [write]}, readonly=True),
        request(
            {
                "kip": "2.0",
                "request_id": "r-2",
                "operations": [{"command": FIND_NAME, "parameters": {"key": "ada"}}],
            },
            readonly=True,
        ),
        request({"kip": "2.0", "operations": [{"command": SYNTAX_ERROR}]}),
        request({"kip": "1.0", "operations": [{"command": "DESCRIBE PRIMER"}]}),
        request({"kip": "2.0", "operations": [{"command": FIND_NAME}], "parameters": {"k": 1e300}}),
        request({"kip": "2.0", "operations": [{"command": "DESCRIBE PRIMER"}], "x": object()}),
        request(["not", "an", "envelope"]),
        request({"kip": "2.0", "operations": [{"command": "DESCRIBE PRIMER"}]}, readonly="yes"),
    ]


def capsules(memory: Any, mode: str) -> list[tuple[Any, ...]]:
    def on(name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return outcome(lambda: call(memory, mode, name, *args, **kwargs))

    empty = on("export_capsule")
    call(memory, "sync", "execute_kip", UPSERT, {"key": "ada", "name": "Ada"})
    capsule = call(memory, mode, "export_capsule", '?roots {type: "Person"}')
    tampered = json.loads(json.dumps(capsule))
    tampered["payload"]["records"][0]["data"] = {"forged": True}
    return [
        empty,
        ("records", len(capsule["payload"]["records"]), capsule["format"]),
        on("verify_capsule", capsule),
        on("verify_capsule", json.dumps(capsule)),
        on("verify_capsule", tampered),
        on("verify_capsule", "{not a capsule"),
        on("verify_capsule", 42),
        on("export_capsule", "?nothing {}"),
        on(
            "export_capsule",
            'EXPORT CAPSULE ?roots WHERE { ?roots {type: "Person", key: :k} }',
            {"k": "ada"},
        ),
    ]


def bulk_writes(memory: Any, mode: str) -> list[tuple[Any, ...]]:
    rows = [{"upsert": {"type": "Person", "key": f"p{i}", "name": f"P{i}"}} for i in range(30)]
    return [
        outcome(lambda: memory.bulk_write(rows, chunk_size=7)),
        outcome(lambda: call(memory, mode, "execute_kip", FIND_NAME, {"key": "p29"})),
        outcome(lambda: memory.bulk_write([{"upsert": {"type": "Person", "key": 1e300}}])),
        outcome(lambda: memory.bulk_write([], caller=3)),
    ]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scenario", [kip_calls, batches, tool_calls, requests])
def test_every_memory_answers_the_protocol_alike(
    scenario: Scenario, kind: str, mode: str, tmp_path: Path
) -> None:
    _same_as_reference(scenario, kind, mode, tmp_path)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("kind", FULL_KINDS)
@pytest.mark.parametrize("scenario", [capsules, bulk_writes])
def test_every_memory_answers_the_public_face_alike(
    scenario: Scenario, kind: str, mode: str, tmp_path: Path
) -> None:
    _same_as_reference(scenario, kind, mode, tmp_path)


def test_the_outcomes_compared_are_not_all_alike(tmp_path: Path) -> None:
    """The comparison can fail: a refused value, a syntax error, a read-only
    write and a success are four different outcomes, with the messages the
    issue that started this suite was about."""
    with open_memory("nexus", tmp_path) as memory:
        found = kip_calls(memory, "sync")
        tools = tool_calls(memory, "sync")
    assert found[4] == (
        "raised",
        ValueError,
        "parameters['key']: 1e300 is an integral number outside the range the engine takes "
        "(±9007199254740991)",
        None,
    )
    assert found[15][1] is anda.KipSyntaxError
    assert tools[2][1] is True
    assert tools[2][2]["error"]["code"] == "ReadonlyViolation"
    assert found[1][0] == "returned"
    assert len({repr(item) for item in found}) == len(found)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("kind", FULL_KINDS)
def test_a_closed_memory_raises_memory_closed_error(kind: str, mode: str, tmp_path: Path) -> None:
    with open_memory(kind, tmp_path) as memory:
        memory.close()
        for name, args in (
            ("execute_kip", ("DESCRIBE PRIMER",)),
            ("call_tool", ("execute_kip", {"command": "DESCRIBE PRIMER"})),
            ("execute_request", ({"kip": "2.0", "operations": [{"command": "DESCRIBE PRIMER"}]},)),
            ("export_capsule", ()),
        ):
            with pytest.raises(anda.MemoryClosedError):
                call(memory, mode, name, *args)
        assert memory.closed


def test_the_old_name_of_memory_closed_error_still_catches_it() -> None:
    with pytest.warns(DeprecationWarning, match="MemoryClosedError"):
        old = anda.NexusClosedError
    with pytest.warns(DeprecationWarning, match="MemoryClosedError"):
        from anda.errors import NexusClosedError
    assert old is NexusClosedError is anda.MemoryClosedError
    client = anda.Client("http://127.0.0.1:9")
    client.close()
    with pytest.raises(old):
        client.execute_kip("DESCRIBE PRIMER")
