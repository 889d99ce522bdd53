"""anda.mcp and ``python -m anda mcp``, driven by the MCP SDK's own client.

In-process tests connect ``mcp.Client`` to :func:`anda.mcp.create_server`
directly (both the handshake era over in-memory JSON-RPC streams, and the
2026 era); the stdio tests run the server as a host does, as a subprocess.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio
import mcp
import pytest
from mcp.client.stdio import StdioServerParameters, stdio_client

import anda
from anda.mcp import INSTRUCTIONS_URI, PRIMER_URI, PROMPT_NAME, SYNTAX_URI, create_server
from conftest import FIND_PERSON_NAME, UPSERT_PERSON, result, run_python

WRITE_ADA = {"command": UPSERT_PERSON, "parameters": {"key": "ada", "name": "Ada"}}
FIND_ADA = {"command": FIND_PERSON_NAME, "parameters": {"key": "ada"}}
BAD_SYNTAX = {"command": "FIND(?x WHERE"}
TOOL_NAMES = ["execute_kip", "execute_kip_readonly"]
# Every wait on a server is bounded; a hung server fails the test, not the run.
WAIT = 60

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["legacy", "auto"])
def mode(request: pytest.FixtureRequest) -> str:
    """The initialize handshake (today's hosts) and the 2026 per-request era."""
    return str(request.param)


def _text(call: Any) -> str:
    [block] = call.content
    assert block.type == "text"
    return str(block.text)


def _error_code(call: Any) -> str:
    """The engine's error code, from the structured content of an error result."""
    assert call.is_error, _text(call)
    assert call.structured_content["status"] != "succeeded"
    [failed] = call.structured_content["results"]
    return str(failed["error"]["code"])


async def _read(client: mcp.Client, uri: str) -> mcp.types.TextResourceContents:
    [contents] = (await client.read_resource(uri)).contents
    assert isinstance(contents, mcp.types.TextResourceContents)
    return contents


def _rows(call: Any) -> Any:
    assert not call.is_error, _text(call)
    return result(call.structured_content)


@asynccontextmanager
async def _client(server: Any, mode: str = "legacy") -> AsyncIterator[mcp.Client]:
    with anyio.fail_after(WAIT):
        async with mcp.Client(server, mode=mode, read_timeout_seconds=WAIT) as client:
            yield client


# -- in process -----------------------------------------------------------------


async def test_tools_are_the_engines_with_annotations(nexus: anda.Nexus, mode: str) -> None:
    async with _client(create_server(nexus), mode) as client:
        tools = (await client.list_tools()).tools
        assert "anda://instructions" in (client.instructions or "")
    definitions = anda.tools.definitions()
    assert [tool.name for tool in tools] == TOOL_NAMES
    for tool, definition in zip(tools, definitions, strict=True):
        assert tool.input_schema == definition["parameters"]
        assert tool.description == definition["description"]
    write, read = (tool.annotations for tool in tools)
    assert write is not None
    assert read is not None
    assert (write.read_only_hint, write.destructive_hint) == (False, True)
    assert (write.idempotent_hint, write.open_world_hint) == (False, False)
    assert (read.read_only_hint, read.idempotent_hint, read.open_world_hint) == (True, True, False)


async def test_write_read_and_errors(nexus: anda.Nexus, mode: str) -> None:
    async with _client(create_server(nexus), mode) as client:
        written = await client.call_tool("execute_kip", WRITE_ADA)
        found = await client.call_tool("execute_kip_readonly", FIND_ADA)
        bad = await client.call_tool("execute_kip", BAD_SYNTAX)
        refused = await client.call_tool("execute_kip_readonly", WRITE_ADA)
        malformed = await client.call_tool("execute_kip", {"kommand": "DESCRIBE PRIMER"})
        unknown = await client.call_tool("drop_everything", {})
        no_arguments = await client.call_tool("execute_kip_readonly")
    # Text for the model (the compact JSON) and the same response, structured.
    assert not written.is_error
    assert written.structured_content["status"] == "succeeded"
    assert json.loads(_text(written)) == written.structured_content
    assert _rows(found) == ["Ada"]
    assert _error_code(bad) == "InvalidSyntax"
    assert json.loads(_text(bad)) == bad.structured_content
    assert _error_code(refused) == "ReadonlyViolation"
    assert _error_code(malformed) == "InvalidRequestEnvelope"
    assert unknown.is_error
    assert "Unknown tool: drop_everything" in _text(unknown)
    assert no_arguments.is_error
    # The tools wrote to the memory itself.
    assert result(nexus.execute_kip(FIND_PERSON_NAME, {"key": "ada"})) == ["Ada"]


async def test_readonly_memory_offers_only_the_readonly_tool(mode: str) -> None:
    with anda.Nexus(readonly=True) as memory:
        async with _client(create_server(memory), mode) as client:
            tools = (await client.list_tools()).tools
            write = await client.call_tool("execute_kip", WRITE_ADA)
            read = await client.call_tool("execute_kip_readonly", {"command": "DESCRIBE PRIMER"})
            instructions = client.instructions or ""
    assert [tool.name for tool in tools] == ["execute_kip_readonly"]
    assert tools[0].input_schema == anda.tools.definitions(readonly=True)[0]["parameters"]
    assert write.is_error
    assert "read-only" in _text(write)
    assert not read.is_error
    assert "read-only" in instructions


async def test_resources(nexus: anda.Nexus, mode: str) -> None:
    async with _client(create_server(nexus), mode) as client:
        listed = (await client.list_resources()).resources
        syntax = await _read(client, SYNTAX_URI)
        instructions = await _read(client, INSTRUCTIONS_URI)
        primer = await _read(client, PRIMER_URI)
        with pytest.raises(mcp.MCPError, match="Unknown resource"):
            await client.read_resource("anda://nothing")
    assert {(r.uri, r.mime_type) for r in listed} == {
        (SYNTAX_URI, "text/markdown"),
        (INSTRUCTIONS_URI, "text/markdown"),
        (PRIMER_URI, "application/json"),
    }
    assert (syntax.mime_type, syntax.text) == ("text/markdown", anda.tools.KIP_SYNTAX)
    assert (syntax.uri, instructions.uri, primer.uri) == (SYNTAX_URI, INSTRUCTIONS_URI, PRIMER_URI)
    assert instructions.text == anda.tools.instructions()
    assert primer.mime_type == "application/json"
    assert json.loads(primer.text) == result(nexus.execute_kip("DESCRIBE PRIMER"))


async def test_the_primer_is_read_fresh(nexus: anda.Nexus) -> None:
    async with _client(create_server(nexus)) as client:
        before = (await _read(client, PRIMER_URI)).text
        # Change what DESCRIBE PRIMER reports (its counts), behind the server's back.
        nexus.execute_kip(UPSERT_PERSON, {"key": "ada", "name": "Ada"})
        after = (await _read(client, PRIMER_URI)).text
    assert json.loads(after) == result(nexus.execute_kip("DESCRIBE PRIMER"))
    assert json.loads(after)["contents"] != json.loads(before)["contents"]


async def test_prompt_starts_an_agent_on_this_memory(nexus: anda.Nexus, mode: str) -> None:
    nexus.execute_kip(UPSERT_PERSON, {"key": "ada", "name": "Ada"})
    async with _client(create_server(nexus), mode) as client:
        [prompt] = (await client.list_prompts()).prompts
        with_task = await client.get_prompt(PROMPT_NAME, {"task": "Remember my birthday."})
        without = await client.get_prompt(PROMPT_NAME)
        with pytest.raises(mcp.MCPError, match="Unknown prompt"):
            await client.get_prompt("no_such_prompt")
    assert prompt.name == PROMPT_NAME
    assert [(a.name, a.required) for a in prompt.arguments or []] == [("task", False)]
    [message] = with_task.messages
    assert message.role == "user"
    assert message.content.type == "text"
    text = message.content.text
    assert text.startswith(anda.tools.instructions().rstrip())
    assert "live DESCRIBE PRIMER" in text
    assert text.rstrip().endswith("Remember my birthday.")
    [plain] = without.messages
    assert plain.content.type == "text"
    assert plain.content.text == anda.tools.instructions(nexus)


async def test_caller_is_resolved_per_request(mode: str) -> None:
    who = {"id": "alice"}

    async def caller_async(ctx: Any) -> str:
        return who["id"]

    with anda.Nexus(tenancy="per_caller") as memory:
        for caller in (lambda ctx: who["id"], caller_async):
            async with _client(create_server(memory, caller=caller), mode) as client:
                who["id"] = "alice"
                assert not (await client.call_tool("execute_kip", WRITE_ADA)).is_error
                alice = _rows(await client.call_tool("execute_kip_readonly", FIND_ADA))
                who["id"] = "bob"
                bob = _rows(await client.call_tool("execute_kip_readonly", FIND_ADA))
            assert (alice, bob) == (["Ada"], [])
        assert result(memory.execute_kip(FIND_PERSON_NAME, {"key": "ada"}, caller="bob")) == []


async def test_fixed_caller_and_a_refusing_resolver() -> None:
    def refuse(ctx: Any) -> str:
        raise mcp.MCPError(mcp.types.INVALID_REQUEST, "who are you?")

    with anda.Nexus(tenancy="per_caller") as memory:
        async with _client(create_server(memory, caller="alice")) as client:
            assert not (await client.call_tool("execute_kip", WRITE_ADA)).is_error
        async with _client(create_server(memory, caller=refuse)) as client:
            with pytest.raises(mcp.MCPError, match="who are you"):
                await client.call_tool("execute_kip_readonly", FIND_ADA)
        assert result(memory.execute_kip(FIND_PERSON_NAME, {"key": "ada"}, caller="alice")) == [
            "Ada"
        ]


async def test_a_closed_memory_answers_with_an_error_result() -> None:
    memory = anda.Nexus()
    server = create_server(memory)
    memory.close()
    async with _client(server) as client:
        closed = await client.call_tool("execute_kip_readonly", {"command": "DESCRIBE PRIMER"})
        tools = (await client.list_tools()).tools
    assert closed.is_error
    assert "MemoryClosedError" in _text(closed)
    assert len(tools) == 2


def test_create_server_checks_its_arguments(nexus: anda.Nexus) -> None:
    with pytest.raises(TypeError, match=r"anda\.Memory"):
        create_server(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="caller must be"):
        create_server(nexus, caller=42)  # type: ignore[arg-type]
    server = create_server(nexus, name="my-memory")
    assert (server.name, server.version) == ("my-memory", anda.__version__)


def test_import_anda_never_imports_the_sdk() -> None:
    proc = run_python("import sys, anda, anda.tools; print('mcp' in sys.modules)", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_a_missing_sdk_names_the_extra() -> None:
    code = "import sys; sys.modules['mcp'] = None\nimport anda.mcp"
    proc = run_python(code, timeout=120)
    assert proc.returncode == 1
    assert "ImportError" in proc.stderr
    assert "pip install 'anda[mcp]'" in proc.stderr


# -- python -m anda mcp, over stdio ---------------------------------------------


@pytest.fixture
def errlog(tmp_path: Path) -> Iterator[TextIO]:
    """The servers' stderr, kept for assertions and failure reports."""
    with open(tmp_path / "server-stderr.txt", "w+", encoding="utf-8") as log:
        yield log


def _logged(log: TextIO) -> str:
    log.flush()
    log.seek(0)
    return log.read()


@asynccontextmanager
async def _stdio(
    errlog: TextIO, *args: str, mode: str = "legacy", cwd: Path | None = None
) -> AsyncIterator[mcp.Client]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "anda", "mcp", *args], cwd=cwd
    )
    async with _client(stdio_client(params, errlog=errlog), mode) as client:
        yield client


@pytest.mark.timeout(120)
async def test_stdio_server_end_to_end_and_across_a_restart(
    store_dir: Path, errlog: TextIO, tmp_path: Path
) -> None:
    db = ["--db", str(store_dir)]
    async with _stdio(errlog, *db, cwd=tmp_path) as client:
        tools = (await client.list_tools()).tools
        written = await client.call_tool("execute_kip", WRITE_ADA)
        found = await client.call_tool("execute_kip_readonly", FIND_ADA)
        bad = await client.call_tool("execute_kip", BAD_SYNTAX)
        refused = await client.call_tool("execute_kip_readonly", WRITE_ADA)
        unknown = await client.call_tool("no_such_tool", {})
        resources = {r.uri for r in (await client.list_resources()).resources}
        syntax = await _read(client, SYNTAX_URI)
        instructions = await _read(client, INSTRUCTIONS_URI)
        primer = await _read(client, PRIMER_URI)
        [prompt] = (await client.list_prompts()).prompts
        started = await client.get_prompt(PROMPT_NAME, {"task": "Who is Ada?"})
        server_instructions = client.instructions or ""
    stderr = _logged(errlog)
    assert f"the store at {store_dir}" in stderr, stderr

    definitions = anda.tools.definitions()
    assert [tool.name for tool in tools] == TOOL_NAMES
    assert [tool.input_schema for tool in tools] == [d["parameters"] for d in definitions]
    annotations = [tool.annotations for tool in tools]
    assert [a.read_only_hint if a else None for a in annotations] == [False, True]
    assert [a.destructive_hint if a else None for a in annotations] == [True, None]
    assert [a.idempotent_hint if a else None for a in annotations] == [False, True]
    assert [a.open_world_hint if a else None for a in annotations] == [False, False]
    assert PRIMER_URI in server_instructions

    assert not written.is_error
    assert json.loads(_text(written)) == written.structured_content
    assert _rows(found) == ["Ada"]
    assert _error_code(bad) == "InvalidSyntax"
    assert _error_code(refused) == "ReadonlyViolation"
    assert unknown.is_error

    assert resources == {SYNTAX_URI, INSTRUCTIONS_URI, PRIMER_URI}
    assert syntax.text == anda.tools.KIP_SYNTAX
    assert instructions.text == anda.tools.instructions()
    assert primer.mime_type == "application/json"
    assert isinstance(json.loads(primer.text), dict)
    assert prompt.name == PROMPT_NAME
    [message] = started.messages
    assert message.content.type == "text"
    assert anda.tools.KIP_SYNTAX.strip() in message.content.text
    assert message.content.text.rstrip().endswith("Who is Ada?")

    # The first server has exited (stdin closed, store flushed); a second one,
    # on the same directory and speaking the 2026 protocol, sees the write.
    async with _stdio(errlog, *db, mode="auto", cwd=tmp_path) as client:
        again = await client.call_tool("execute_kip_readonly", FIND_ADA)
        primer_again = await _read(client, PRIMER_URI)
    assert _rows(again) == ["Ada"]
    assert json.loads(primer_again.text) == json.loads(primer.text)


@pytest.mark.timeout(120)
async def test_stdio_readonly_server_offers_only_the_readonly_tool(
    store_dir: Path, errlog: TextIO
) -> None:
    with anda.Nexus(store_dir) as store:
        store.execute_kip(UPSERT_PERSON, {"key": "ada", "name": "Ada"})
    async with _stdio(errlog, "--db", str(store_dir), "--readonly") as client:
        tools = (await client.list_tools()).tools
        found = await client.call_tool("execute_kip_readonly", FIND_ADA)
        write = await client.call_tool("execute_kip", WRITE_ADA)
    assert [tool.name for tool in tools] == ["execute_kip_readonly"]
    assert _rows(found) == ["Ada"]
    assert write.is_error
    assert "read-only" in _logged(errlog)


@pytest.mark.timeout(120)
async def test_stdio_per_caller_tenancy(store_dir: Path, errlog: TextIO) -> None:
    tenancy = ["--db", str(store_dir), "--tenancy", "per_caller"]
    async with _stdio(errlog, *tenancy, "--caller", "alice") as client:
        assert not (await client.call_tool("execute_kip", WRITE_ADA)).is_error
        alice = _rows(await client.call_tool("execute_kip_readonly", FIND_ADA))
    async with _stdio(errlog, *tenancy, "--caller", "bob") as client:
        bob = _rows(await client.call_tool("execute_kip_readonly", FIND_ADA))
    assert (alice, bob) == (["Ada"], [])
    async with _stdio(errlog, *tenancy, "--caller", "alice") as client:
        assert _rows(await client.call_tool("execute_kip_readonly", FIND_ADA)) == ["Ada"]


def _mcp_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "ANDA_DB"}
    return subprocess.run(
        [sys.executable, "-m", "anda", "mcp", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**environ, **(env or {})},
        timeout=WAIT,
        check=False,
    )


@pytest.mark.timeout(120)
def test_without_a_db_it_says_in_memory_on_stderr_only(store_dir: Path) -> None:
    # stdin closes at once: the server starts, says what it serves, and exits cleanly.
    proc = _mcp_cli()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "IN-MEMORY" in proc.stderr
    # $ANDA_DB is the default --db.
    proc = _mcp_cli(env={"ANDA_DB": str(store_dir)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert f"the store at {store_dir}" in proc.stderr


@pytest.mark.timeout(120)
def test_a_store_that_cannot_open_is_an_error(tmp_path: Path) -> None:
    proc = _mcp_cli("--db", str(tmp_path / "missing"), "--readonly")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "cannot open the store" in proc.stderr
    assert _mcp_cli("--tenancy", "everyone").returncode == 2


class _RawServer:
    """``python -m anda mcp`` spoken to in raw JSON-RPC, to watch how it ends."""

    def __init__(self, store_dir: Path, log: TextIO) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "anda", "mcp", "--db", str(store_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._next_id = 0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        self._send({"id": self._next_id, "method": method, "params": params})
        while True:
            reply: dict[str, Any] = json.loads(self._lines.get(timeout=WAIT))
            if reply.get("id") == self._next_id:
                assert "result" in reply, reply
                return reply

    def start(self) -> None:
        self.request(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"},
            },
        )
        self._send({"method": "notifications/initialized"})

    def write_ada(self) -> None:
        reply = self.request("tools/call", {"name": "execute_kip", "arguments": WRITE_ADA})
        assert reply["result"]["isError"] is False, reply


def _ada(store_dir: Path) -> Any:
    with anda.Nexus(store_dir, readonly=True) as store:
        return result(store.execute_kip(FIND_PERSON_NAME, {"key": "ada"}))


@pytest.mark.timeout(120)
def test_closing_stdin_closes_and_flushes_the_store(store_dir: Path, errlog: TextIO) -> None:
    server = _RawServer(store_dir, errlog)
    try:
        server.start()
        server.write_ada()
        assert server.proc.stdin is not None
        server.proc.stdin.close()
        assert server.proc.wait(timeout=WAIT) == 0, _logged(errlog)
    finally:
        server.proc.kill()
    assert _ada(store_dir) == ["Ada"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.timeout(120)
def test_sigterm_closes_and_flushes_the_store(store_dir: Path, errlog: TextIO) -> None:
    server = _RawServer(store_dir, errlog)
    try:
        server.start()
        server.write_ada()
        server.proc.send_signal(signal.SIGTERM)  # stdin stays open
        assert server.proc.wait(timeout=WAIT) == 128 + signal.SIGTERM, _logged(errlog)
    finally:
        server.proc.kill()
    assert _ada(store_dir) == ["Ada"]
