"""anda.integrations.llamaindex against the real LlamaIndex.

The tools run inside LlamaIndex's own FunctionAgent loop, driven by LlamaIndex's
MockFunctionCallingLLM (its own scripted model: turns a test writes, no
network), and in the example (examples/llamaindex_agent.py) by a
FunctionCallingLLM over the real openai SDK against the local provider
stand-in; the memory block runs inside llama_index.core.memory.Memory, whose
short-term queue ejects messages into it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import anda
from conftest import FIND_PERSON_NAME, UPSERT_PERSON, result
from example_runner import ADA, FINAL, MALFORMED, MODEL, REQUEST, corrects_itself, run_example
from provider_standin import StandIn, call_id, tool_results
from test_server import serving

pytest.importorskip("llama_index.core")

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ToolCallBlock
from llama_index.core.llms import ChatMessage
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.memory import Memory

from anda.integrations.llamaindex import EVENT_CLASS, memory_block, tools

EVENTS = 'FIND(?e.attributes) WHERE { ?e {type: "Event"} }'


def scripted(*calls: dict[str, Any], final: str = "done") -> tuple[Any, list[list[Any]]]:
    """LlamaIndex's own scripted model: these execute_kip calls, then an answer."""
    seen: list[list[Any]] = []

    def respond(messages: Any, **kwargs: Any) -> ChatMessage:
        seen.append(list(messages))
        step = len(seen) - 1
        if step < len(calls):
            block = ToolCallBlock(
                tool_call_id=f"call_{step}", tool_name="execute_kip", tool_kwargs=calls[step]
            )
            return ChatMessage(role="assistant", blocks=[block])
        return ChatMessage(role="assistant", content=final)

    return MockFunctionCallingLLM(response_generator=respond), seen


def test_each_engine_tool_is_a_function_tool_with_the_engine_schema() -> None:
    with anda.Nexus() as memory:
        made = tools(memory)
        readonly = tools(memory, readonly=True)
    engine = anda.tools.definitions()
    assert [tool.metadata.name for tool in made] == [tool["name"] for tool in engine]
    for tool, definition in zip(made, engine, strict=True):
        assert tool.metadata.description == definition["description"]
        assert tool.metadata.get_parameters_dict() == definition["parameters"]
        assert tool.metadata.to_openai_tool()["function"]["parameters"] == definition["parameters"]
    assert [tool.metadata.name for tool in readonly] == ["execute_kip_readonly"]


def test_a_call_and_a_refused_call() -> None:
    with anda.Nexus() as memory:
        execute_kip = tools(memory)[0]
        written = execute_kip.call(command=UPSERT_PERSON, parameters=ADA)
        refused = asyncio.run(execute_kip.acall(command=MALFORMED, parameters=ADA))
        stored = result(memory.execute_kip(FIND_PERSON_NAME, {"key": "ada"}))
    assert not written.is_error
    assert json.loads(written.content)["status"] == "succeeded"
    assert written.raw_output.response["status"] == "succeeded"
    assert refused.is_error
    assert isinstance(refused.exception, anda.KipSyntaxError)
    assert refused.content.startswith("KipSyntaxError: InvalidSyntax: ")
    assert json.loads(refused.content.split("\nresponse: ", 1)[1])["status"] == "failed"
    assert stored == ["Ada Lovelace"]


def test_the_function_agent_loop_reads_the_error_and_corrects_itself() -> None:
    llm, seen = scripted(
        {"command": MALFORMED, "parameters": ADA}, {"command": UPSERT_PERSON, "parameters": ADA}
    )

    async def main(memory: anda.Nexus) -> str:
        agent = FunctionAgent(
            tools=tools(memory), llm=llm, system_prompt=anda.tools.instructions(memory)
        )
        return str(await agent.run("Remember Ada Lovelace."))

    with anda.Nexus() as memory:
        answer = asyncio.run(main(memory))
        stored = result(memory.execute_kip(FIND_PERSON_NAME, {"key": "ada"}))
    assert answer == "done"
    assert stored == ["Ada Lovelace"]
    # The model's third turn saw both tool results: the typed error, then success.
    results = [message.content for message in seen[2] if message.role == "tool"]
    assert results[0].startswith("KipSyntaxError: InvalidSyntax: ")
    assert json.loads(results[1])["status"] == "succeeded"
    assert anda.tools.KIP_SYNTAX.strip() in seen[0][0].content


def test_ejected_messages_are_stored_verbatim_and_recalled_by_search() -> None:
    conversation = [
        ChatMessage(
            role="user", content="My cat Whiskers loves tuna and sleeps all day in the sun."
        ),
        ChatMessage(role="assistant", content="Noted: Whiskers likes tuna."),
        ChatMessage(role="user", content="My dentist appointment is on Friday at noon."),
        ChatMessage(role="assistant", content="Friday, noon: dentist."),
    ]

    async def main(memory: anda.Nexus) -> list[ChatMessage]:
        chat = Memory.from_defaults(
            session_id="s1",
            token_limit=60,
            chat_history_token_ratio=0.5,
            token_flush_size=10,
            memory_blocks=[memory_block(memory)],
        )
        await chat.aput_messages(conversation)
        return await chat.aget(input="What does Whiskers eat?")

    with anda.Nexus() as memory:
        messages = asyncio.run(main(memory))
        stored = result(memory.execute_kip(EVENTS))
    # The first turn was ejected and stored as it was written, no LLM involved.
    assert sorted((event["role"], event["summary"]) for event in stored) == [
        ("assistant", "Noted: Whiskers likes tuna."),
        ("user", "My cat Whiskers loves tuna and sleeps all day in the sun."),
    ]
    assert {event["event_class"] for event in stored} == {EVENT_CLASS}
    assert {event["session_id"] for event in stored} == {"s1"}
    # Recall found it by keyword and put it in the system message.
    system = messages[0]
    assert system.role == "system"
    assert '"My cat Whiskers loves tuna and sleeps all day in the sun."' in system.content
    assert "<anda>" in system.content


def test_recall_is_per_caller_and_silent_when_nothing_matches() -> None:
    async def main(memory: anda.Nexus) -> tuple[str, str, str]:
        alice = memory_block(memory, caller="alice")
        bob = memory_block(memory, caller="bob")
        await alice.aput([ChatMessage(role="user", content="I live in Lisbon.")])
        question = [ChatMessage(role="user", content="Where does she live? Lisbon?")]
        return (
            await alice.aget(question),
            await bob.aget(question),
            await alice.aget([ChatMessage(role="user", content="zebra quantum")]),
        )

    with anda.Nexus(tenancy="per_caller") as memory:
        alice, bob, nothing = asyncio.run(main(memory))
    assert "I live in Lisbon." in alice
    assert bob == ""
    assert nothing == ""


def test_tool_and_system_messages_are_not_stored() -> None:
    async def main(memory: anda.Nexus) -> None:
        await memory_block(memory).aput(
            [
                ChatMessage(role="system", content="You are helpful."),
                ChatMessage(role="tool", content='{"kip":"2.0"}'),
                ChatMessage(role="user", content="   "),
            ]
        )

    with anda.Nexus() as memory:
        asyncio.run(main(memory))
        assert result(memory.execute_kip(EVENTS)) == []


def test_a_client_works_as_a_nexus_does(tmp_path: Path) -> None:
    async def main(memory: anda.Client) -> str:
        block = memory_block(memory)
        await block.aput([ChatMessage(role="user", content="Remember the blue notebook.")])
        return await block.aget([ChatMessage(role="user", content="Which notebook?")])

    with serving(tmp_path, in_memory=True) as served, anda.Client(served.url) as memory:
        recalled = asyncio.run(main(memory))
        written = tools(memory)[0].call(command=UPSERT_PERSON, parameters=ADA)
    assert "Remember the blue notebook." in recalled
    assert not written.is_error


@pytest.mark.timeout(180)
def test_the_example_agent_corrects_itself_against_the_standin(tmp_path: Path) -> None:
    script = corrects_itself()
    # FunctionAgent's loop, the openai SDK as transport: the stand-in checks the
    # key, the model, anda's tools as anda.tools.openai() shapes them, the KIP
    # system prompt, and each call followed by its result.
    with StandIn(script, request=REQUEST, model=MODEL) as standin:
        proc = run_example(
            "llamaindex_agent.py", standin, "--db", str(tmp_path / "memory"), REQUEST
        )
    assert standin.failures == [], proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == FINAL
    assert [exchange.path for exchange in standin.exchanges] == ["/v1/chat/completions"] * 3
    # The model read the engine's typed error, then the retry's success.
    results = tool_results("chat", standin.exchanges[2].body)
    assert list(results) == [call_id("chat", 0), call_id("chat", 1)]
    refused, _ = results[call_id("chat", 0)]
    assert refused.startswith("KipSyntaxError: InvalidSyntax: ")
    assert json.loads(results[call_id("chat", 1)][0])["status"] == "succeeded"
    with anda.Nexus(tmp_path / "memory") as memory:
        assert result(memory.execute_kip(FIND_PERSON_NAME, {"key": "ada"})) == ["Ada Lovelace"]


def test_without_llamaindex_the_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['llama_index'] = None; sys.modules['llama_index.core'] = None\n"
        "import anda\n"
        "from anda.integrations.llamaindex import tools\n"
        "try:\n"
        "    tools(anda.Nexus())\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (
        proc.stdout.strip() == "llama-index-core is not installed: pip install 'anda[llamaindex]'"
    )
