"""anda.integrations.langchain against the real langchain-core (and langchain's agent).

The tools are LangChain's own ``StructuredTool``; the agent example runs
LangChain's ``create_agent`` loop with ``ChatOpenAI`` against the local
provider stand-in.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import SystemMessage, ToolMessage
from langchain_core.tools import StructuredTool, ToolException
from langchain_core.utils.function_calling import convert_to_openai_tool

import anda
from anda.integrations.langchain import system_message, tools
from conftest import FIND_PERSON_NAME, UPSERT_PERSON, result, run_python
from example_runner import ADA, MALFORMED, corrects_itself, run_example
from provider_standin import StandIn, call_id, tool_results

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def tool_call(name: str, args: dict[str, Any], call: str = "call_1") -> dict[str, Any]:
    return {"type": "tool_call", "id": call, "name": name, "args": args}


def test_the_tools_are_the_engines(nexus: anda.Nexus) -> None:
    made = tools(nexus)
    assert all(isinstance(tool, StructuredTool) for tool in made)
    for tool, definition in zip(made, anda.tools.definitions(), strict=True):
        assert (tool.name, tool.description) == (definition["name"], definition["description"])
        assert tool.args_schema == definition["parameters"]
        assert tool.response_format == "content_and_artifact"
    # What a chat model is sent is exactly the engine's definition.
    assert [convert_to_openai_tool(tool) for tool in made] == anda.tools.openai()
    assert [tool.name for tool in tools(nexus, readonly=True)] == ["execute_kip_readonly"]


def test_a_call_writes_and_returns_the_response_as_artifact(nexus: anda.Nexus) -> None:
    remember, recall = tools(nexus)
    message = remember.invoke(
        tool_call("execute_kip", {"command": UPSERT_PERSON, "parameters": ADA})
    )
    assert isinstance(message, ToolMessage)
    assert message.status == "success"
    assert message.tool_call_id == "call_1"
    assert message.artifact["status"] == "succeeded"
    assert json.loads(message.content) == message.artifact
    found = recall.invoke(
        tool_call("execute_kip_readonly", {"command": FIND_PERSON_NAME, "parameters": ADA})
    )
    assert result(found.artifact) == ["Ada Lovelace"]
    assert result(nexus.execute_kip(FIND_PERSON_NAME, {"key": "ada"})) == ["Ada Lovelace"]


def test_a_refused_command_is_a_handled_tool_exception(nexus: anda.Nexus) -> None:
    remember, recall = tools(nexus)
    message = remember.invoke(tool_call("execute_kip", {"command": MALFORMED, "parameters": ADA}))
    assert message.status == "error"
    summary, envelope = message.content.split("\nresponse: ", 1)
    assert summary.startswith("KipSyntaxError: InvalidSyntax: ")
    assert anda.errors.first_error(json.loads(envelope))["code"] == "InvalidSyntax"
    # A write sent to the read-only tool: the engine's ReadonlyViolation.
    refused = recall.invoke(
        tool_call("execute_kip_readonly", {"command": UPSERT_PERSON, "parameters": ADA})
    )
    assert refused.status == "error"
    assert refused.content.startswith("KipProtocolError: ReadonlyViolation: ")
    assert result(nexus.execute_kip(FIND_PERSON_NAME, {"key": "ada"})) == []


def test_unhandled_the_exception_carries_the_typed_error(nexus: anda.Nexus) -> None:
    remember = tools(nexus)[0]
    remember.handle_tool_error = False
    with pytest.raises(ToolException, match="InvalidSyntax") as raised:
        remember.invoke({"command": MALFORMED})
    assert isinstance(raised.value.__cause__, anda.KipSyntaxError)
    assert raised.value.__cause__.code == "InvalidSyntax"


class AsyncOnly:
    """A memory whose blocking calls fail: the async paths must not use them."""

    def __init__(self, memory: anda.Nexus) -> None:
        self.memory = memory
        self.readonly = memory.readonly
        self.async_calls = 0

    def call_tool(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a blocking call on the event loop")

    execute_kip = call_tool

    async def call_tool_async(self, *args: Any, **kwargs: Any) -> Any:
        self.async_calls += 1
        return await self.memory.call_tool_async(*args, **kwargs)


def test_ainvoke_awaits_the_memorys_async_call(nexus: anda.Nexus) -> None:
    memory = AsyncOnly(nexus)
    remember = tools(memory)[0]  # type: ignore[arg-type]

    async def main() -> Any:
        return await remember.ainvoke(
            tool_call("execute_kip", {"command": UPSERT_PERSON, "parameters": ADA})
        )

    message = asyncio.run(main())
    assert message.status == "success"
    assert memory.async_calls == 1
    assert result(nexus.execute_kip(FIND_PERSON_NAME, {"key": "ada"})) == ["Ada Lovelace"]


def test_each_caller_has_their_own_memory() -> None:
    with anda.Nexus(tenancy="per_caller") as users:
        alice = tools(users, caller="alice")
        bob = tools(users, caller="bob")
        alice[0].invoke({"command": UPSERT_PERSON, "parameters": ADA})
        find = {"command": FIND_PERSON_NAME, "parameters": ADA}
        assert result(json.loads(alice[1].invoke(find))) == ["Ada Lovelace"]
        assert result(json.loads(bob[1].invoke(find))) == []


def test_the_system_message_teaches_kip_with_the_live_primer(nexus: anda.Nexus) -> None:
    message = system_message(nexus)
    assert isinstance(message, SystemMessage)
    assert anda.tools.KIP_SYNTAX.strip() in message.content
    assert "DESCRIBE PRIMER" in message.content
    assert system_message().content == anda.tools.instructions()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[anda.Client]:
    from test_server import serving  # here: the server's own imports are not every test's

    with (
        serving(tmp_path_factory.mktemp("langchain"), in_memory=True) as served,
        anda.Client(served.url) as remote,
    ):
        yield remote


def test_the_tools_work_over_a_client(client: anda.Client) -> None:
    remember, recall = tools(client)
    assert remember.invoke({"command": UPSERT_PERSON, "parameters": ADA}).startswith('{"kip"')

    async def main() -> Any:
        return await recall.ainvoke(
            tool_call("execute_kip_readonly", {"command": FIND_PERSON_NAME, "parameters": ADA})
        )

    assert result(asyncio.run(main()).artifact) == ["Ada Lovelace"]


def test_without_langchain_the_import_names_the_extra() -> None:
    proc = run_python(
        "import sys\n"
        "sys.modules['langchain_core'] = None  # as if not installed\n"
        "import anda\n"
        "try:\n"
        "    import anda.integrations.langchain\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert "langchain-core is not installed: pip install 'anda[langchain]'" in proc.stdout


def test_import_anda_imports_no_framework() -> None:
    proc = run_python(
        "import sys, anda, anda.integrations\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('langchain', 'langchain_core', 'langgraph', 'langmem', 'agents')))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# -- the example: LangChain's agent loop against the provider stand-in ---------------------


@pytest.mark.timeout(180)
def test_the_langchain_agent_example(tmp_path: Path) -> None:
    request = "Remember that Ada Lovelace wrote the first program."
    script = corrects_itself("Noted.")
    db = tmp_path / "memory"
    with StandIn(script, request=request, model="standin-model") as standin:
        proc = run_example("langchain_agent.py", standin, "--db", str(db), request)
    assert standin.failures == [], proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Noted."
    # The model read the typed error, then the retry's success.
    results = tool_results("chat", standin.exchanges[2].body)
    assert results[call_id("chat", 0)][0].startswith("KipSyntaxError: InvalidSyntax")
    assert json.loads(results[call_id("chat", 1)][0])["status"] == "succeeded"
    with anda.Nexus(db) as nexus:
        assert result(nexus.execute_kip(FIND_PERSON_NAME, {"key": "ada"})) == ["Ada Lovelace"]
