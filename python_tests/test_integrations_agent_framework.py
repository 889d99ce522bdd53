"""anda.integrations.agent_framework against the real Microsoft Agent Framework.

The provider runs in Agent Framework's own pipeline: its SessionContext and
AgentSession, its FunctionTool invocation, and in the example its Agent loop
with its OpenAI Chat Completions client against the local provider stand-in.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

import anda
from conftest import FIND_PERSON_NAME, UPSERT_PERSON, result
from example_runner import ADA, FINAL, MALFORMED, MODEL, REQUEST, corrects_itself, run_example
from provider_standin import StandIn, call_id, tool_results
from test_server import serving

pytest.importorskip("agent_framework")

from agent_framework import AgentSession, Message, SessionContext
from agent_framework.exceptions import ToolExecutionException

from anda.integrations.agent_framework import context_provider, tools


def before_run(provider: object) -> SessionContext:
    context = SessionContext(input_messages=[Message(role="user", contents=["hello"])])
    asyncio.run(
        provider.before_run(  # type: ignore[attr-defined]
            agent=None, session=AgentSession(), context=context, state={}
        )
    )
    return context


def test_before_a_run_the_instructions_and_tools_are_added() -> None:
    with anda.Nexus() as memory:
        memory.execute_kip(UPSERT_PERSON, ADA)
        context = before_run(context_provider(memory))
    [instructions] = context.instructions
    assert anda.tools.KIP_SYNTAX.strip() in instructions
    assert '"Person"' in instructions  # the live primer knows what is stored
    engine = anda.tools.definitions()
    assert [tool.name for tool in context.tools] == [tool["name"] for tool in engine]
    for tool, definition in zip(context.tools, engine, strict=True):
        assert tool.description == definition["description"]
        assert tool.parameters() == definition["parameters"]
        assert tool.additional_properties["context_source"] == "anda"


def test_readonly_offers_only_the_read_tool() -> None:
    with anda.Nexus() as memory:
        context = before_run(context_provider(memory, readonly=True))
    assert [tool.name for tool in context.tools] == ["execute_kip_readonly"]


def test_a_refused_command_raises_the_frameworks_tool_error_with_the_typed_error() -> None:
    async def main(memory: anda.Nexus) -> str:
        execute_kip = tools(memory)[0]
        written = await execute_kip.invoke(arguments={"command": UPSERT_PERSON, "parameters": ADA})
        with pytest.raises(ToolExecutionException) as refused:
            await execute_kip.invoke(arguments={"command": MALFORMED, "parameters": ADA})
        assert isinstance(refused.value.__cause__, anda.KipSyntaxError)
        assert str(refused.value).startswith("KipSyntaxError: InvalidSyntax: ")
        return str(written[0].text) if isinstance(written, list) else str(written)

    with anda.Nexus() as memory:
        written = asyncio.run(main(memory))
        assert result(memory.execute_kip(FIND_PERSON_NAME, {"key": "ada"})) == ["Ada Lovelace"]
    assert json.loads(written)["status"] == "succeeded"


def test_per_caller_and_over_a_client(tmp_path: Path) -> None:
    async def write(memory: anda.Memory, caller: str | None, key: str) -> None:
        await tools(memory, caller=caller)[0].invoke(
            arguments={"command": UPSERT_PERSON, "parameters": {"key": key, "name": key}}
        )

    with anda.Nexus(tenancy="per_caller") as memory:
        asyncio.run(write(memory, "alice", "alice"))
        asyncio.run(write(memory, "bob", "bob"))
        people = 'FIND(?p.key) WHERE { ?p {type: "Person"} }'
        assert result(memory.execute_kip(people, caller="alice")) == ["alice"]
        assert result(memory.execute_kip(people, caller="bob")) == ["bob"]
    with serving(tmp_path, in_memory=True) as served, anda.Client(served.url) as client:
        asyncio.run(write(client, None, "ada"))
        assert result(client.execute_kip(FIND_PERSON_NAME, {"key": "ada"})) == ["ada"]
        assert anda.tools.KIP_SYNTAX.strip() in before_run(context_provider(client)).instructions[0]


@pytest.mark.timeout(180)
def test_the_example_agent_corrects_itself_against_the_standin(tmp_path: Path) -> None:
    script = corrects_itself()
    # Agent Framework sends the engine's tools exactly as anda.tools.openai() shapes them.
    with StandIn(script, request=REQUEST, model=MODEL) as standin:
        proc = run_example(
            "agent_framework_agent.py", standin, "--db", str(tmp_path / "memory"), REQUEST
        )
    assert standin.failures == [], proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == FINAL
    results = tool_results("chat", standin.exchanges[2].body)
    assert list(results) == [call_id("chat", 0), call_id("chat", 1)]
    refused, _ = results[call_id("chat", 0)]
    assert "KipSyntaxError: InvalidSyntax" in refused
    with anda.Nexus(tmp_path / "memory") as memory:
        assert result(memory.execute_kip(FIND_PERSON_NAME, {"key": "ada"})) == ["Ada Lovelace"]


def test_without_agent_framework_the_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['agent_framework'] = None\n"
        "import anda\n"
        "from anda.integrations.agent_framework import context_provider\n"
        "try:\n"
        "    context_provider(anda.Nexus())\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (
        proc.stdout.strip()
        == "agent-framework-core is not installed: pip install 'anda[agent-framework]'"
    )
