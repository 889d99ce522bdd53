"""anda.integrations.openai_agents against the real OpenAI Agents SDK.

The tools are the SDK's own ``FunctionTool``; both schemas go through the
SDK's own strict-schema conversion; the example runs the SDK's ``Runner``
against the local provider stand-in (Responses API), plain and strict.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, FunctionTool, RunConfig, RunContextWrapper, UserError, trace
from agents.strict_schema import ensure_strict_json_schema
from agents.tool_context import ToolContext
from agents.tracing import custom_span, set_trace_processors
from agents.tracing.processors import default_processor

import anda
from anda.integrations.openai_agents import (
    from_strict_arguments,
    instructions,
    strict_schema,
    tools,
)
from conftest import FIND_PERSON_NAME, UPSERT_PERSON, result, run_python
from example_runner import ADA, MALFORMED, run_example
from provider_standin import Answer, StandIn, ToolCall, call_id, tool_results

DEFINITIONS = anda.tools.definitions()


@pytest.fixture(autouse=True, scope="module")
def _no_trace_export() -> Iterator[None]:
    """Traces stay in this process: none is sent to OpenAI's tracing service."""
    set_trace_processors([])
    yield
    set_trace_processors([default_processor()])


def invoke(tool: FunctionTool, arguments: Any, **context: Any) -> Any:
    """Runs a tool as the SDK's runner does: its invoker, with a ToolContext."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    ctx = ToolContext(
        context=None, tool_name=tool.name, tool_call_id="call_1", tool_arguments=text, **context
    )
    return asyncio.run(tool.on_invoke_tool(ctx, text))


def strict_call(command: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "command": command,
        "operations": None,
        "execution": None,
        "parameters": None if parameters is None else json.dumps(parameters),
        "dry_run": None,
    }


def test_the_plain_tools_are_the_engines(nexus: anda.Nexus) -> None:
    made = tools(nexus)
    assert all(isinstance(tool, FunctionTool) for tool in made)
    for tool, definition in zip(made, DEFINITIONS, strict=True):
        assert (tool.name, tool.description) == (definition["name"], definition["description"])
        assert tool.params_json_schema == definition["parameters"]
        assert tool.strict_json_schema is False
    assert [tool.name for tool in tools(nexus, readonly=True)] == ["execute_kip_readonly"]


@pytest.mark.parametrize("definition", DEFINITIONS, ids=[d["name"] for d in DEFINITIONS])
def test_strict_mode_rejects_the_engines_schema_and_takes_the_variant_unchanged(
    definition: dict[str, Any],
) -> None:
    engine = definition["parameters"]
    # Why a variant: the SDK's conversion closes the open `parameters` object
    # to {} (no parameter could be sent), or refuses it outright.
    closed = ensure_strict_json_schema(copy.deepcopy(engine))
    assert closed["properties"]["parameters"]["additionalProperties"] is False
    assert "properties" not in closed["properties"]["parameters"]
    with pytest.raises(UserError):
        ensure_strict_json_schema(copy.deepcopy(engine), _reject_open_objects=True)
    # The variant is a fixed point of the SDK's own conversion.
    strict = strict_schema(engine)
    assert ensure_strict_json_schema(copy.deepcopy(strict), _reject_open_objects=True) == strict
    assert strict["required"] == list(engine["properties"])
    assert set(strict["properties"]) == set(engine["properties"])


def test_strict_arguments_convert_back_faithfully() -> None:
    engine = DEFINITIONS[0]["parameters"]
    call = {
        "command": None,
        "operations": [
            {"command": UPSERT_PERSON, "op_id": "w", "parameters": json.dumps(ADA)},
            {"command": "DESCRIBE PRIMER", "op_id": None, "parameters": None},
        ],
        "execution": {"mode": "atomic", "on_error": None, "idempotency_key": "k-1"},
        "parameters": json.dumps({"nested": {"list": [1, 2.5, None, "x"]}, "flag": True}),
        "dry_run": False,
    }
    assert from_strict_arguments(engine, call) == {
        "operations": [
            {"command": UPSERT_PERSON, "op_id": "w", "parameters": ADA},
            {"command": "DESCRIBE PRIMER"},
        ],
        "execution": {"mode": "atomic", "idempotency_key": "k-1"},
        "parameters": {"nested": {"list": [1, 2.5, None, "x"]}, "flag": True},
        "dry_run": False,
    }
    # Text that is not a JSON object is passed on for the engine to refuse.
    assert from_strict_arguments(engine, {"command": "x", "parameters": "[1]"}) == {
        "command": "x",
        "parameters": "[1]",
    }


@pytest.mark.parametrize("strict", [False, True])
def test_a_call_writes_and_reads(nexus: anda.Nexus, strict: bool) -> None:
    remember, recall = tools(nexus, strict=strict)
    if strict:
        wrote = invoke(remember, strict_call(UPSERT_PERSON, ADA))
        read = invoke(recall, strict_call(FIND_PERSON_NAME, ADA) | {"read": None})
    else:
        wrote = invoke(remember, {"command": UPSERT_PERSON, "parameters": ADA})
        read = invoke(recall, {"command": FIND_PERSON_NAME, "parameters": ADA})
    assert json.loads(wrote)["status"] == "succeeded"
    assert result(json.loads(read)) == ["Ada Lovelace"]


@pytest.mark.parametrize("strict", [False, True])
def test_a_refused_command_is_a_handled_failure_with_the_typed_error(
    nexus: anda.Nexus, strict: bool
) -> None:
    remember = tools(nexus, strict=strict)[0]
    arguments = strict_call(MALFORMED, ADA) if strict else {"command": MALFORMED}
    with trace("anda test"), custom_span("tool") as span:
        output = invoke(remember, arguments, run_config=RunConfig())
    summary, envelope = output.split("\nresponse: ", 1)
    assert summary.startswith("KipSyntaxError: InvalidSyntax: ")
    assert anda.errors.first_error(json.loads(envelope))["code"] == "InvalidSyntax"
    # The SDK's way of recording a handled tool failure: an error on the span.
    assert span.error is not None
    assert span.error["data"]["code"] == "InvalidSyntax"
    assert span.error["data"]["error"].startswith("KipSyntaxError")
    # Without sensitive data in traces, only the code and category.
    with trace("anda test"), custom_span("tool") as quiet:
        invoke(remember, arguments, run_config=RunConfig(trace_include_sensitive_data=False))
    assert quiet.error is not None
    assert "error" not in quiet.error["data"]
    # Malformed tool arguments reach the engine, which answers with its error.
    broken = invoke(remember, "{not json")
    assert broken.startswith("KipProtocolError: InvalidRequestEnvelope")


def test_the_tools_await_the_memorys_async_calls(nexus: anda.Nexus) -> None:
    class AsyncOnly:
        readonly = False

        def call_tool(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a blocking call on the event loop")

        async def call_tool_async(self, *args: Any, **kwargs: Any) -> Any:
            return await nexus.call_tool_async(*args, **kwargs)

    remember = tools(AsyncOnly(), strict=True)[0]  # type: ignore[arg-type]
    assert json.loads(invoke(remember, strict_call(UPSERT_PERSON, ADA)))["status"] == "succeeded"


def test_each_caller_has_their_own_memory() -> None:
    with anda.Nexus(tenancy="per_caller") as users:
        invoke(tools(users, caller="alice")[0], {"command": UPSERT_PERSON, "parameters": ADA})
        find = {"command": FIND_PERSON_NAME, "parameters": ADA}
        assert result(json.loads(invoke(tools(users, caller="alice")[1], find))) == ["Ada Lovelace"]
        assert result(json.loads(invoke(tools(users, caller="bob")[1], find))) == []


def test_dynamic_instructions_carry_the_live_primer(nexus: anda.Nexus) -> None:
    agent = Agent(name="a", instructions=instructions(nexus), tools=tools(nexus))
    text = asyncio.run(agent.get_system_prompt(RunContextWrapper(context=None)))
    assert anda.tools.KIP_SYNTAX.strip() in text
    assert "DESCRIBE PRIMER" in text
    nexus.execute_kip(UPSERT_PERSON, ADA)
    again = asyncio.run(agent.get_system_prompt(RunContextWrapper(context=None)))
    assert again != text  # read afresh before each run


def test_without_the_sdk_the_import_names_the_extra() -> None:
    proc = run_python(
        "import sys\n"
        "sys.modules['agents'] = None  # as if not installed\n"
        "try:\n"
        "    import anda.integrations.openai_agents\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert "openai-agents is not installed: pip install 'anda[openai-agents]'" in proc.stdout


# -- the example: the SDK's Runner against the stand-in, plain and strict -----------------


@pytest.mark.timeout(180)
@pytest.mark.parametrize("strict", [False, True])
def test_the_agents_sdk_example(tmp_path: Path, strict: bool) -> None:
    request = "Remember that Ada Lovelace wrote the first program."
    sent: dict[str, list[dict[str, Any]]] | None = None
    if strict:
        sent = {
            "responses": [
                {
                    "type": "function",
                    "name": d["name"],
                    "description": d["description"],
                    "parameters": strict_schema(d["parameters"]),
                    "strict": True,
                }
                for d in DEFINITIONS
            ]
        }
        script = [
            ToolCall(MALFORMED, ADA, expect="InvalidSyntax", raw=strict_call(MALFORMED, ADA)),
            ToolCall(UPSERT_PERSON, ADA, raw=strict_call(UPSERT_PERSON, ADA)),
            Answer("Noted."),
        ]
    else:
        script = [ToolCall(MALFORMED, ADA, expect="InvalidSyntax"), ToolCall(UPSERT_PERSON, ADA)]
        script.append(Answer("Noted."))
    db = tmp_path / "memory"
    args = ["--db", str(db), *(["--strict"] if strict else []), request]
    with StandIn(script, request=request, model="standin-model", tools=sent) as api:
        proc = run_example(
            "openai_agents_agent.py", api, *args, env={"OPENAI_AGENTS_DISABLE_TRACING": "1"}
        )
    assert api.failures == [], proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Noted."
    assert [exchange.path for exchange in api.exchanges] == ["/v1/responses"] * 3
    results = tool_results("responses", api.exchanges[2].body)
    assert results[call_id("responses", 0)][0].startswith("KipSyntaxError: InvalidSyntax")
    assert json.loads(results[call_id("responses", 1)][0])["status"] == "succeeded"
    with anda.Nexus(db) as nexus:
        assert result(nexus.execute_kip(FIND_PERSON_NAME, {"key": "ada"})) == ["Ada Lovelace"]
