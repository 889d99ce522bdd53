"""anda.integrations.pydantic_ai against the real pydantic-ai.

The toolset runs inside pydantic-ai's own agent loop: with its FunctionModel
(a model whose turns a test writes, no network), and in the example, with
its OpenAI model against the local provider stand-in.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

import anda
from conftest import FIND_PERSON_NAME, UPSERT_PERSON, result
from example_runner import ADA, FINAL, MALFORMED, MODEL, REQUEST, corrects_itself, run_example
from provider_standin import StandIn, call_id, tool_results
from test_server import serving

pydantic_ai = pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.messages import (  # noqa: E402
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel  # noqa: E402

from anda.integrations.pydantic_ai import toolset  # noqa: E402


def scripted(*calls: dict[str, Any], final: str = "done") -> tuple[FunctionModel, list[AgentInfo]]:
    """A pydantic-ai model that makes these execute_kip calls, then answers."""
    seen: list[AgentInfo] = []

    def respond(messages: list[Any], info: AgentInfo) -> ModelResponse:
        seen.append(info)
        step = len(seen) - 1
        if step < len(calls):
            return ModelResponse(
                parts=[ToolCallPart("execute_kip", calls[step], tool_call_id=f"call_{step}")]
            )
        return ModelResponse(parts=[TextPart(final)])

    return FunctionModel(respond), seen


def returns(messages: list[Any]) -> list[ToolReturnPart]:
    return [
        part for message in messages for part in message.parts if isinstance(part, ToolReturnPart)
    ]


def test_the_agent_gets_the_tools_and_instructions_in_one_argument() -> None:
    model, seen = scripted()
    with anda.Nexus() as memory:
        Agent(model, toolsets=[toolset(memory)]).run_sync("hello")
    [info] = seen
    engine = {tool["name"]: tool for tool in anda.tools.definitions()}
    assert [tool.name for tool in info.function_tools] == list(engine)
    for tool in info.function_tools:
        assert tool.description == engine[tool.name]["description"]
        assert tool.parameters_json_schema == engine[tool.name]["parameters"]
        assert tool.strict is False
    assert anda.tools.KIP_SYNTAX.strip() in (info.instructions or "")
    assert "DESCRIBE PRIMER" in (info.instructions or "")


def test_readonly_and_no_instructions() -> None:
    model, seen = scripted()
    with anda.Nexus() as memory:
        Agent(model, toolsets=[toolset(memory, readonly=True, instructions=False)]).run_sync("hi")
    assert [tool.name for tool in seen[0].function_tools] == ["execute_kip_readonly"]
    assert anda.tools.KIP_SYNTAX.strip() not in (seen[0].instructions or "")


def test_a_refused_command_is_a_failed_tool_and_the_model_corrects_it() -> None:
    bad = {"command": MALFORMED, "parameters": ADA}
    good = {"command": UPSERT_PERSON, "parameters": ADA}
    model, _ = scripted(bad, good)
    with anda.Nexus() as memory:
        run = Agent(model, toolsets=[toolset(memory)]).run_sync("remember Ada")
        stored = result(memory.execute_kip(FIND_PERSON_NAME, {"key": "ada"}))
    failed, written = returns(run.all_messages())
    assert failed.outcome == "failed"
    assert failed.content.startswith("KipSyntaxError: InvalidSyntax: ")
    response = json.loads(failed.content.split("\nresponse: ", 1)[1])
    assert response["status"] == "failed"
    assert written.outcome == "success"
    assert json.loads(written.content)["status"] == "succeeded"
    assert stored == ["Ada Lovelace"]


def test_per_caller_memories_stay_apart() -> None:
    with anda.Nexus(tenancy="per_caller") as memory:
        for caller in ("alice", "bob"):
            model, _ = scripted(
                {"command": UPSERT_PERSON, "parameters": {"key": caller, "name": caller}}
            )
            Agent(model, toolsets=[toolset(memory, caller=caller)]).run_sync("remember me")
        seen = {
            caller: result(
                memory.execute_kip('FIND(?p.key) WHERE { ?p {type: "Person"} }', caller=caller)
            )
            for caller in ("alice", "bob")
        }
    assert seen == {"alice": ["alice"], "bob": ["bob"]}


def test_calls_never_block_the_event_loop() -> None:
    # While the agent runs, a ticker on the same loop keeps ticking.
    async def main() -> tuple[int, str]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0)

        model, _ = scripted(*[{"command": UPSERT_PERSON, "parameters": ADA}] * 3)
        with anda.Nexus() as memory:
            task = asyncio.create_task(ticker())
            run = await Agent(model, toolsets=[toolset(memory)]).run("remember Ada")
            stop.set()
            await task
        return ticks, run.output

    ticks, output = asyncio.run(main())
    assert output == "done"
    assert ticks > 3


def test_a_client_works_as_a_nexus_does(tmp_path: Path) -> None:
    model, _ = scripted({"command": UPSERT_PERSON, "parameters": ADA})
    with serving(tmp_path, in_memory=True) as served, anda.Client(served.url) as memory:
        Agent(model, toolsets=[toolset(memory)]).run_sync("remember Ada")
        assert result(memory.execute_kip(FIND_PERSON_NAME, {"key": "ada"})) == ["Ada Lovelace"]


# -- the example: pydantic-ai's loop and OpenAI model, against the stand-in -------


@pytest.mark.timeout(180)
def test_the_example_agent_corrects_itself_against_the_standin(tmp_path: Path) -> None:
    script = corrects_itself()
    # pydantic-ai sends the engine's tools in Chat Completions' shape, and its
    # OpenAI schema transformer gives the open `parameters` object an empty
    # `properties` (it stays open: no additionalProperties is added).
    tools = anda.tools.openai()
    for tool in tools:
        tool["function"]["parameters"]["properties"]["parameters"]["properties"] = {}
    with StandIn(script, request=REQUEST, model=MODEL, tools={"chat": tools}) as standin:
        proc = run_example(
            "pydantic_ai_agent.py", standin, "--db", str(tmp_path / "memory"), REQUEST
        )
    assert standin.failures == [], proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == FINAL
    results = tool_results("chat", standin.exchanges[2].body)
    assert list(results) == [call_id("chat", 0), call_id("chat", 1)]
    with anda.Nexus(tmp_path / "memory") as memory:
        assert result(memory.execute_kip(FIND_PERSON_NAME, {"key": "ada"})) == ["Ada Lovelace"]


def test_without_pydantic_ai_the_error_names_the_extra(tmp_path: Path) -> None:
    import subprocess

    code = (
        "import sys; sys.modules['pydantic_ai'] = None\n"
        "import anda\n"
        "from anda.integrations.pydantic_ai import toolset\n"
        "try:\n"
        "    toolset(anda.Nexus())\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (
        proc.stdout.strip() == "pydantic-ai-slim is not installed: pip install 'anda[pydantic-ai]'"
    )
