"""anda.tools: the tool definitions a model sees, and running its tool calls."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import anda
from anda.testing import dump_store
from anda.testing import strategies as kst
from conftest import FIND_PERSON_NAME, UPSERT_PERSON, people, result

WRITE = {"command": UPSERT_PERSON, "parameters": {"key": "ada", "name": "Ada"}}


def test_definitions_are_the_engines_two_tools() -> None:
    full = anda.tools.definitions()
    assert [tool["name"] for tool in full] == ["execute_kip", "execute_kip_readonly"]
    for tool in full:
        assert set(tool) == {"name", "description", "parameters"}
        assert tool["parameters"]["type"] == "object"
        assert tool["parameters"]["additionalProperties"] is False
        assert "KIP" in tool["description"]
    # The read-only tool offers no execution modes: nothing to choose between.
    assert "execution" in full[0]["parameters"]["properties"]
    assert "execution" not in full[1]["parameters"]["properties"]
    assert anda.tools.definitions(readonly=True) == full[1:]


def test_definitions_are_fresh_copies() -> None:
    anda.tools.definitions()[0]["name"] = "changed"
    assert anda.tools.definitions()[0]["name"] == "execute_kip"


def test_provider_shapes() -> None:
    definitions = anda.tools.definitions()
    chat = anda.tools.openai()
    assert chat == [{"type": "function", "function": tool} for tool in definitions]
    responses = anda.tools.openai(api="responses")
    assert [tool["type"] for tool in responses] == ["function", "function"]
    assert [tool["strict"] for tool in responses] == [False, False]
    assert [tool["parameters"] for tool in responses] == [t["parameters"] for t in definitions]
    claude = anda.tools.anthropic()
    assert [tool["input_schema"] for tool in claude] == [t["parameters"] for t in definitions]
    assert [tool["name"] for tool in anda.tools.anthropic(readonly=True)] == [
        "execute_kip_readonly"
    ]
    # Strict mode never sneaks in through the definitions themselves.
    assert all("strict" not in tool["function"] for tool in chat)


def test_formatter_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="api must be"):
        anda.tools.openai(api="assistants")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="readonly must be bool"):
        anda.tools.definitions(readonly="yes")  # type: ignore[arg-type]


def test_agent_texts_are_the_engines() -> None:
    assert "KIP 2.0 Syntax Reference" in anda.tools.KIP_SYNTAX
    assert "$self" in anda.tools.SELF_INSTRUCTIONS
    assert "$system" in anda.tools.SYSTEM_INSTRUCTIONS
    assert "Cognitive Memory Profile" in anda.tools.COGNITIVE_MEMORY_PROFILE
    for text in (anda.tools.KIP_RECALL_CARD, anda.tools.KIP_FORMATION_CARD):
        assert len(text) > 500


def test_instructions_without_and_with_a_store(nexus: anda.Nexus) -> None:
    bare = anda.tools.instructions()
    for part in (anda.tools.SELF_INSTRUCTIONS, anda.tools.KIP_SYNTAX):
        assert part.strip() in bare
    assert anda.tools.COGNITIVE_MEMORY_PROFILE.strip() not in bare
    assert anda.tools.COGNITIVE_MEMORY_PROFILE.strip() in anda.tools.instructions(
        include_profile=True
    )
    primer = result(nexus.execute_kip("DESCRIBE PRIMER"))
    live = anda.tools.instructions(nexus)
    assert live.startswith(bare.rstrip("\n"))
    assert json.dumps(primer, ensure_ascii=False, indent=2) in live


def test_call_tool_takes_json_text_and_dicts(nexus: anda.Nexus) -> None:
    written = nexus.call_tool("execute_kip", json.dumps(WRITE))
    assert not written.is_error
    assert written.response["status"] == "succeeded"
    assert json.loads(written.content) == written.response
    read = nexus.call_tool(
        "execute_kip_readonly", {"command": FIND_PERSON_NAME, "parameters": {"key": "ada"}}
    )
    assert result(read.response) == ["Ada"]


def test_call_tool_runs_a_batch_with_the_tools_shapes(nexus: anda.Nexus) -> None:
    arguments = {
        "operations": [
            {"command": UPSERT_PERSON, "parameters": {"key": "a", "name": "A"}},
            {"op_id": "b", "command": UPSERT_PERSON, "parameters": {"key": "b", "name": "B"}},
        ],
        "execution": {"mode": "sequence"},
    }
    assert not nexus.call_tool("execute_kip", arguments).is_error
    reads = nexus.call_tool(
        "execute_kip_readonly",
        {"operations": [FIND_PERSON_NAME, FIND_PERSON_NAME], "parameters": {"key": "b"}},
    )
    assert [result(reads.response, i) for i in (0, 1)] == [["B"], ["B"]]


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"DESCRIBE PRIMER"', "must be a JSON object"),
        ({}, "send a `command` or an `operations` batch"),
        ({"command": "DESCRIBE PRIMER", "operations": ["DESCRIBE PRIMER"]}, "never both"),
        ({"command": "DESCRIBE PRIMER", "unknown": 1}, "unknown field"),
        ({"command": 42}, "invalid type"),
        ({"command": "DESCRIBE PRIMER", "parameters": {"x": float("nan")}}, "nan"),
        ({"command": "DESCRIBE PRIMER", "parameters": {"x": {1, 2}}}, "set"),
        ([("command", "DESCRIBE PRIMER")], "must be a JSON object"),
        ("\ud800", "surrogate"),
    ],
)
def test_bad_arguments_come_back_as_an_error_result(
    nexus: anda.Nexus, arguments: Any, fragment: str
) -> None:
    before = dump_store(nexus)
    outcome = nexus.call_tool("execute_kip", arguments)
    assert outcome.is_error
    assert outcome.response["status"] == "failed"
    assert outcome.error["code"] == "InvalidRequestEnvelope"
    assert fragment in outcome.error["message"]
    assert dump_store(nexus) == before


def test_engine_refusals_come_back_as_error_results(nexus: anda.Nexus) -> None:
    syntax = nexus.call_tool("execute_kip", {"command": "FIND(?x WHERE"})
    assert syntax.is_error
    assert syntax.error["code"] == "InvalidSyntax"
    assert syntax.error["hint"]


def test_the_readonly_tool_never_writes_even_on_a_writable_store(nexus: anda.Nexus) -> None:
    before = dump_store(nexus)
    refused = nexus.call_tool("execute_kip_readonly", WRITE)
    assert refused.is_error
    assert refused.error["code"] == "ReadonlyViolation"
    assert dump_store(nexus) == before


def test_a_readonly_store_refuses_the_write_tool(tmp_path: Any) -> None:
    with anda.Nexus(tmp_path / "store") as store:
        store.execute_kip(UPSERT_PERSON, {"key": "x", "name": "X"})
    with anda.Nexus(tmp_path / "store", readonly=True) as store:
        refused = store.call_tool("execute_kip", WRITE)
        assert refused.error["code"] == "ReadonlyViolation"
        assert people(store) == [["x", "X"]]


def test_dry_run_in_the_arguments_changes_nothing(nexus: anda.Nexus) -> None:
    before = dump_store(nexus)
    outcome = nexus.call_tool("execute_kip", {**WRITE, "dry_run": True})
    assert not outcome.is_error
    assert dump_store(nexus) == before


def test_an_unknown_tool_is_a_value_error(nexus: anda.Nexus) -> None:
    with pytest.raises(ValueError, match='unknown tool "remember"'):
        nexus.call_tool("remember", WRITE)
    with pytest.raises(TypeError, match="name must be str"):
        nexus.call_tool(None, WRITE)  # type: ignore[arg-type]


def test_call_tool_on_a_closed_store() -> None:
    store = anda.Nexus()
    store.close()
    with pytest.raises(anda.MemoryClosedError):
        store.call_tool("execute_kip", WRITE)


def test_call_tool_async(nexus: anda.Nexus) -> None:
    async def main() -> list[anda.tools.ToolResult]:
        return await asyncio.gather(
            *(
                nexus.call_tool_async(
                    "execute_kip",
                    {"command": UPSERT_PERSON, "parameters": {"key": f"k{i}", "name": str(i)}},
                )
                for i in range(20)
            ),
            nexus.call_tool_async("execute_kip", "{oops"),
        )

    outcomes = asyncio.run(main())
    assert [outcome.is_error for outcome in outcomes] == [False] * 20 + [True]
    assert len(people(nexus)) == 20


# -- provider tool calls ---------------------------------------------------------

CHAT_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "execute_kip", "arguments": json.dumps(WRITE)},
}
RESPONSES_CALL = {
    "type": "function_call",
    "id": "fc_1",
    "call_id": "call_2",
    "name": "execute_kip",
    "arguments": json.dumps(WRITE),
}
ANTHROPIC_CALL = {"type": "tool_use", "id": "toolu_1", "name": "execute_kip", "input": WRITE}


def _as_object(value: Any) -> Any:
    """The shape an SDK returns: attributes instead of keys."""
    if isinstance(value, dict):
        return SimpleNamespace(**{key: _as_object(item) for key, item in value.items()})
    return value


@pytest.mark.parametrize("as_object", [False, True])
def test_handle_answers_each_provider_in_its_shape(nexus: anda.Nexus, as_object: bool) -> None:
    def wrap(call: dict[str, Any]) -> Any:
        # Anthropic's SDK keeps `input` a dict even on its objects.
        if not as_object:
            return call
        obj = _as_object({k: v for k, v in call.items() if k != "input"})
        if "input" in call:
            obj.input = call["input"]
        return obj

    chat = anda.tools.handle(nexus, wrap(CHAT_CALL))
    assert chat == {"role": "tool", "tool_call_id": "call_1", "content": chat["content"]}
    assert json.loads(chat["content"])["status"] == "succeeded"

    responses = anda.tools.handle(nexus, wrap(RESPONSES_CALL))
    assert set(responses) == {"type", "call_id", "output"}
    assert (responses["type"], responses["call_id"]) == ("function_call_output", "call_2")

    claude = anda.tools.handle(nexus, wrap(ANTHROPIC_CALL))
    assert claude["type"] == "tool_result"
    assert (claude["tool_use_id"], claude["is_error"]) == ("toolu_1", False)
    assert people(nexus) == [["ada", "Ada"]]


def test_handle_reports_the_models_mistakes_as_results(nexus: anda.Nexus) -> None:
    bad = {**ANTHROPIC_CALL, "input": {"command": "FIND(?x WHERE"}}
    reply = anda.tools.handle(nexus, bad)
    assert reply["is_error"] is True
    assert anda.errors.first_error(json.loads(reply["content"]))["code"] == "InvalidSyntax"
    broken = {**CHAT_CALL, "function": {"name": "execute_kip", "arguments": "{"}}
    content = json.loads(anda.tools.handle(nexus, broken)["content"])
    assert anda.errors.first_error(content)["code"] == "InvalidRequestEnvelope"


def test_handle_refuses_what_is_not_a_tool_call(nexus: anda.Nexus) -> None:
    with pytest.raises(TypeError, match="not a tool call anda knows"):
        anda.tools.handle(nexus, {"type": "text", "text": "hello"})
    with pytest.raises(TypeError, match="'id' must be a str"):
        anda.tools.handle(nexus, {**ANTHROPIC_CALL, "id": None})
    with pytest.raises(ValueError, match="unknown tool"):
        anda.tools.handle(nexus, {**ANTHROPIC_CALL, "name": "web_search"})


def test_handle_async(nexus: anda.Nexus) -> None:
    reply = asyncio.run(anda.tools.handle_async(nexus, RESPONSES_CALL))
    assert reply["call_id"] == "call_2"
    assert people(nexus) == [["ada", "Ada"]]


def test_a_nexus_is_a_memory(nexus: anda.Nexus) -> None:
    assert isinstance(nexus, anda.Memory)


@given(st.one_of(st.text(), kst.json_values(), kst.adversarial_parameters()))
def test_no_arguments_can_crash_a_tool_call(arguments: Any) -> None:
    with anda.Nexus() as store:
        before = dump_store(store)
        outcome = store.call_tool("execute_kip_readonly", arguments)
        assert isinstance(outcome.is_error, bool)
        assert outcome.response["kip"] == "2.0"
        assert dump_store(store) == before


@given(kst.upserts())
def test_a_generated_upsert_through_the_tool_is_read_back(upsert: kst.Upsert) -> None:
    command, parameters = upsert.render()
    with anda.Nexus() as store:
        outcome = store.call_tool(
            "execute_kip", json.dumps({"command": command, "parameters": parameters})
        )
        assert not outcome.is_error, outcome.response
        found = store.call_tool(
            "execute_kip_readonly",
            {
                "command": "FIND(?c.key) WHERE { ?c {type: :type, key: :key} }",
                "parameters": {"type": upsert.concept.type, "key": upsert.concept.key},
            },
        )
        assert result(found.response) == [upsert.concept.key]


def test_the_old_nexus_keyword_still_works_and_warns() -> None:
    import inspect

    block = {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "execute_kip_readonly",
        "input": {"command": "DESCRIBE PRIMER"},
    }
    with anda.Nexus() as memory:
        with pytest.warns(DeprecationWarning, match=r"instructions\(nexus=\.\.\.\) is deprecated"):
            prompt = anda.tools.instructions(nexus=memory)  # type: ignore[call-arg]
        assert "live DESCRIBE PRIMER" in prompt
        with pytest.warns(DeprecationWarning, match=r"handle\(nexus=\.\.\.\)"):
            reply = anda.tools.handle(nexus=memory, call=block)  # type: ignore[call-arg]
        assert reply["is_error"] is False
        with pytest.warns(DeprecationWarning, match=r"handle_async\(nexus=\.\.\.\)"):
            reply = asyncio.run(anda.tools.handle_async(nexus=memory, call=block))  # type: ignore[call-arg]
        assert reply["is_error"] is False
        with pytest.raises(TypeError, match="both"):
            anda.tools.handle(memory=memory, nexus=memory, call=block)  # type: ignore[call-arg]
    assert inspect.iscoroutinefunction(anda.tools.handle_async)
