"""``python -m anda serve``: KIP over HTTP, as Anda's Rust server speaks it, and MCP.

Most tests run a real server process on 127.0.0.1 and talk to it with the
standard library, byte for byte; the deadline semantics run in-process over a
deliberately slow memory, where timing can be controlled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import anda
from anda.server import _wire, create_app
from anda.tools import ToolResult
from conftest import FIND_ALL_PEOPLE, FIND_PERSON_NAME, UPSERT_PERSON, result

KEY = "test-key-0123456789"
READY_SECONDS = 60.0
STOP_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    """A running ``python -m anda serve``."""

    process: subprocess.Popen[bytes]
    port: int
    store: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signals the server and waits (bounded) for it to exit."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_SECONDS)
            raise AssertionError(
                f"the server did not stop on {sig}:\n{self.log.read_text()}"
            ) from None


@contextlib.contextmanager
def serving(
    tmp_path: Path, *args: str, env: Mapping[str, str] | None = None, in_memory: bool = False
) -> Iterator[Served]:
    """Starts a server on a free port and waits until ``GET /`` answers.

    The store is ``tmp_path / "store"``, or in memory (writes there cost no fsync).
    """
    store = tmp_path / "store"
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    where = [] if in_memory else ["--db", str(store)]
    environment = {key: value for key, value in os.environ.items() if key != "ANDA_DB"}
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "anda", "serve", *where, "--port", str(port), *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**environment, **(env or {})},
        )
    served = Served(process, port, store, log)
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the server exited early:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(served.url + "/", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the server never became ready:\n{log.read_text()}")
            time.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=STOP_SECONDS)


def post(
    url: str, body: Any, *, key: str | None = None, raw: bytes | None = None
) -> tuple[int, Any]:
    """POSTs to ``/kip`` as the upstream README's curl does; (status, parsed body)."""
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + "/kip", data=data, headers={"content-type": "application/json"}, method="POST"
    )
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        text = err.read()
        try:
            return err.code, json.loads(text)
        except ValueError:
            return err.code, text


def envelope(*commands: str | dict[str, Any], **fields: Any) -> dict[str, Any]:
    operations = [{"command": c} if isinstance(c, str) else c for c in commands]
    return {"method": "execute_kip", "params": {"kip": "2.0", "operations": operations, **fields}}


def raw_exchange(port: int, head: bytes, body: bytes = b"", *, wait: float = 30.0) -> bytes:
    """Sends bytes as they are and returns everything the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        with contextlib.suppress(OSError):  # the server may answer (and close) before the body
            sock.sendall(head + body)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    chunks = []
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def head(
    content_length: int | None = None, *, key: str | None = KEY, chunked: bool = False
) -> bytes:
    lines = [b"POST /kip HTTP/1.1", b"Host: 127.0.0.1", b"Content-Type: application/json"]
    if content_length is not None:
        lines.append(b"Content-Length: %d" % content_length)
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
    if key is not None:
        lines.append(f"Authorization: Bearer {key}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


# -- one open server for the wire-format tests -------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("server")) as served:
        yield served


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server that requires KEY, with a small body limit, deadline and in-flight bound."""
    path = tmp_path_factory.mktemp("keyed")
    with serving(
        path,
        "--api-key-env",
        "ANDA_TEST_KEY",
        "--max-body",
        "65536",
        "--timeout",
        "2",
        "--max-in-flight",
        "2",
        env={"ANDA_TEST_KEY": KEY},
    ) as served:
        yield served


@pytest.mark.timeout(120)
def test_service_information(server: Served) -> None:
    with urllib.request.urlopen(server.url + "/", timeout=10) as answer:
        info = json.loads(answer.read())
    assert info == {
        "name": "anda",
        "version": anda.__version__,
        "engine_version": anda.ENGINE_VERSION,
        "kip_version": anda.KIP_VERSION,
    }


@pytest.mark.timeout(120)
def test_the_upstream_readme_request(server: Served) -> None:
    """The request exactly as anda_cognitive_nexus_server's README shows it."""
    body = b"""{
  "method": "execute_kip",
  "params": {
    "kip": "2.0",
    "operations": [{"command": "DESCRIBE PRIMER"}]
  }
}"""
    status, response = post(server.url, None, raw=body)
    assert status == 200
    assert response["kip"] == "2.0"
    assert response["status"] == "succeeded"
    assert "error" not in response
    assert response["results"][0]["status"] == "succeeded"


@pytest.mark.timeout(120)
def test_write_then_read_over_the_wire(server: Served) -> None:
    write = envelope(UPSERT_PERSON, parameters={"key": "ada", "name": "Ada"})
    assert post(server.url, write)[0] == 200
    status, response = post(server.url, envelope(FIND_PERSON_NAME, parameters={"key": "ada"}))
    assert status == 200
    assert response["results"][0]["result"] == ["Ada"]


@pytest.mark.timeout(120)
def test_statuses_follow_the_upstream_mapping(server: Served) -> None:
    status, response = post(server.url, envelope("FIND(?x WHERE"))
    assert status == 400
    assert response["status"] == "failed"
    assert response["results"][0]["error"]["code"] == "InvalidSyntax"

    # A batch is not a transaction: one failing operation of several is "partial".
    for execution in ({"mode": "independent"}, {"mode": "sequence", "on_error": "continue"}):
        status, response = post(
            server.url, envelope("DESCRIBE PRIMER", "THIS IS NOT KIP", execution=execution)
        )
        assert (status, response["status"]) == (207, "partial"), response
        assert [r["status"] for r in response["results"]] == ["succeeded", "failed"]

    status, response = post(
        server.url, envelope("DESCRIBE PRIMER", "DESCRIBE PRIMER", execution={"mode": "atomic"})
    )
    assert (status, response["error"]["code"]) == (501, "UnsupportedCapability")

    # Several operations must say how they relate.
    status, response = post(server.url, envelope("DESCRIBE PRIMER", "DESCRIBE PRIMER"))
    assert (status, response["error"]["code"]) == (400, "InvalidRequestEnvelope")

    status, response = post(
        server.url,
        {"method": "execute_kip", "params": {"kip": "1.0", "operations": [{"command": "X"}]}},
    )
    assert (status, response["error"]["code"]) == (400, "UnsupportedProtocolVersion")


@pytest.mark.timeout(120)
def test_a_bare_command_is_not_an_envelope(server: Served) -> None:
    status, response = post(server.url, {"method": "execute_kip", "params": "DESCRIBE PRIMER"})
    assert (status, response["error"]["code"]) == (400, "InvalidRequestEnvelope")
    assert response["status"] == "failed"


@pytest.mark.timeout(120)
def test_the_engine_honours_the_whole_envelope(server: Served) -> None:
    """Every member goes to the engine, which honours it or refuses it itself."""
    write = {"key": "pre", "name": "Pre"}
    status, response = post(
        server.url, envelope(UPSERT_PERSON, parameters=write, preconditions={"space_seq": 10**9})
    )
    assert status == 409, response
    assert response["results"][0]["error"]["code"] == "PreconditionFailed"
    status, response = post(server.url, envelope(FIND_PERSON_NAME, parameters={"key": "pre"}))
    assert response["results"][0]["result"] == []
    # The sequence the last write left is the one a guarded write must name.
    status, response = post(server.url, envelope(UPSERT_PERSON, parameters=write))
    seq = response["results"][0]["receipt"]["space_seq"]
    write["name"] = "Guarded"
    status, response = post(
        server.url, envelope(UPSERT_PERSON, parameters=write, preconditions={"space_seq": seq})
    )
    assert status == 200, response
    status, response = post(server.url, envelope(FIND_PERSON_NAME, parameters={"key": "pre"}))
    assert response["results"][0]["result"] == ["Guarded"]

    status, response = post(
        server.url, envelope("DESCRIBE PRIMER", requires={"historical_reads": True})
    )
    assert status == 200, response
    status, response = post(
        server.url, envelope("DESCRIBE PRIMER", context={"client": "compat-test"})
    )
    assert status == 200, response
    for refused in (
        {"space": {"id": "other"}},  # the caller's Space, never another
        {"requires": {"no.such.capability": True}},
        {"options": {"deadline_ms": 1000}},
        {"extensions": {"acme/x": {"critical": True}}},
    ):
        status, response = post(server.url, envelope("DESCRIBE PRIMER", **refused))
        code = response["results"][0]["error"]["code"]
        assert (status, code) == (501, "UnsupportedCapability"), (refused, response)
    # A non-critical extension is ignored, as the engine ignores it.
    status, _ = post(server.url, envelope("DESCRIBE PRIMER", extensions={"acme/x": {}}))
    assert status == 200
    status, response = post(server.url, envelope("DESCRIBE PRIMER", bogus=1))
    assert (status, response["error"]["code"]) == (400, "InvalidRequestEnvelope")


@pytest.mark.timeout(120)
def test_request_id_and_dry_run(server: Served) -> None:
    write = envelope(
        UPSERT_PERSON,
        parameters={"key": "dry", "name": "Dry"},
        request_id="req-1",
        options={"dry_run": True},
    )
    status, response = post(server.url, write)
    assert (status, response["request_id"]) == (200, "req-1")
    status, response = post(server.url, envelope(FIND_PERSON_NAME, parameters={"key": "dry"}))
    assert response["results"][0]["result"] == []


@pytest.mark.timeout(120)
def test_the_older_tool_argument_shape(server: Served) -> None:
    """What Anda's MCP bridge and skill scripts send: command/commands, parameters, dry_run."""
    status, response = post(
        server.url,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "execute_kip",
            "params": {"command": UPSERT_PERSON, "parameters": {"key": "old", "name": "Old"}},
        },
    )
    assert (status, response["status"]) == (200, "succeeded")
    status, response = post(
        server.url,
        {
            "method": "execute_kip",
            "params": {
                "commands": [
                    "DESCRIBE PRIMER",
                    {"command": FIND_PERSON_NAME, "parameters": {"key": "old"}},
                ],
                "dry_run": False,
            },
        },
    )
    assert status == 200
    assert response["results"][1]["result"] == ["Old"]


@pytest.mark.timeout(120)
def test_methods(server: Served) -> None:
    status, response = post(
        server.url, {"method": "execute_kip_readonly", "params": envelope(UPSERT_PERSON)["params"]}
    )
    assert (status, response["error"]["code"]) == (400, "ReadonlyViolation")
    status, response = post(server.url, {"method": "nope", "params": {}})
    assert (status, response["error"]["code"]) == (400, "InvalidRequestEnvelope")
    assert "unknown method" in response["error"]["message"]
    # The audit log is answered as Anda's server answers it (test_audit_log.py).
    status, response = post(server.url, {"method": "list_logs", "params": {"limit": 0}})
    assert (status, response["status"], response["results"][0]["result"]) == (200, "succeeded", [])


@pytest.mark.timeout(120)
def test_bad_bodies(server: Served) -> None:
    for raw in (b'{"method": ', b"not json", b'{"method": "execute_kip", "params": NaN}', b"[]"):
        status, response = post(server.url, None, raw=raw)
        assert (status, response["error"]["code"]) == (400, "InvalidRequestEnvelope"), raw


@pytest.mark.timeout(120)
def test_wrong_http_method(server: Served) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(server.url + "/kip", timeout=10)
    assert caught.value.code == 405
    request = urllib.request.Request(server.url + "/", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 405


@pytest.mark.timeout(120)
def test_without_keys_only_this_machine_may_ask(server: Served) -> None:
    for header in (b"Origin: https://evil.example", b"Host: evil.example"):
        body = json.dumps(envelope("DESCRIBE PRIMER")).encode()
        request = head(len(body), key=None).replace(b"Host: 127.0.0.1", header, 1)
        if not header.startswith(b"Host"):
            request = request.replace(b"\r\n\r\n", b"\r\nHost: 127.0.0.1\r\n\r\n", 1)
        assert status_of(raw_exchange(server.port, request, body)) == 403, header


# -- authentication and limits --------------------------------------------------------------


@pytest.mark.timeout(120)
def test_a_key_is_required_before_anything_else(keyed: Served) -> None:
    huge = b'{"junk": "' + b"x" * 200_000 + b'"}'
    for key, raw in [
        (None, b'{"method": '),
        (None, b"not json at all"),
        (None, json.dumps(envelope("DESCRIBE PRIMER")).encode()),
        ("wrong", b'{"method": '),
        (KEY + "x", json.dumps(envelope("DESCRIBE PRIMER")).encode()),
    ]:
        status, response = post(keyed.url, None, raw=raw, key=key)
        assert (status, response["error"]["code"]) == (401, "Unauthenticated"), (key, raw[:20])
    # Oversized and unauthenticated: still 401, answered before the body is read.
    for key in (None, "wrong"):
        answer = raw_exchange(keyed.port, head(len(huge), key=key), huge[:1000])
        assert status_of(answer) == 401, answer[:200]
    # The right key, the same malformed body: an ordinary 400.
    status, response = post(keyed.url, None, raw=b'{"method": ', key=KEY)
    assert (status, response["error"]["code"]) == (400, "InvalidRequestEnvelope")
    status, response = post(keyed.url, envelope("DESCRIBE PRIMER"), key=KEY)
    assert status == 200
    # The probe stays open.
    with urllib.request.urlopen(keyed.url + "/", timeout=10) as answer:
        assert answer.status == 200
    assert KEY not in keyed.log.read_text()


@pytest.mark.timeout(120)
def test_oversized_bodies_are_refused(keyed: Served) -> None:
    huge = b'{"method": "execute_kip", "params": "' + b"x" * 100_000 + b'"}'
    answer = raw_exchange(keyed.port, head(len(huge)), huge[:1000])
    assert status_of(answer) == 413
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "ResourceExhausted"
    # No Content-Length to trust: counted as it streams in.
    chunks = b"".join(b"%x\r\n%s\r\n" % (10_000, b"x" * 10_000) for _ in range(10)) + b"0\r\n\r\n"
    assert status_of(raw_exchange(keyed.port, head(chunked=True), chunks)) == 413


@pytest.mark.timeout(120)
def test_a_stalled_body_times_out_and_others_are_served(keyed: Served) -> None:
    with socket.create_connection(("127.0.0.1", keyed.port), timeout=30) as stalled:
        stalled.sendall(head(1000) + b'{"method": ')
        started = time.monotonic()
        # Meanwhile another client is served at once.
        status, _ = post(keyed.url, envelope("DESCRIBE PRIMER"), key=KEY)
        assert status == 200
        answer = read_all(stalled)
        assert status_of(answer) == 408
        assert 1.5 < time.monotonic() - started < 20
        assert b"ExecutionTimeout" in answer


@pytest.mark.timeout(120)
def test_too_many_requests_in_flight(keyed: Served) -> None:
    stalled = [socket.create_connection(("127.0.0.1", keyed.port), timeout=30) for _ in range(2)]
    try:
        for sock in stalled:
            sock.sendall(head(1000) + b"{")
        time.sleep(0.5)
        status, response = post(keyed.url, envelope("DESCRIBE PRIMER"), key=KEY)
        assert (status, response["error"]["code"]) == (429, "RateLimited")
        assert response["error"]["retry"]["class"] == "safe_same_request"
    finally:
        for sock in stalled:
            sock.close()
    deadline = time.monotonic() + 30
    while post(keyed.url, envelope("DESCRIBE PRIMER"), key=KEY)[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)


@pytest.mark.timeout(120)
def test_refuses_to_start_unprotected_beyond_loopback(tmp_path: Path) -> None:
    for args, env in [
        (["--host", "0.0.0.0"], {}),
        (["--host", "::"], {}),
        (["--host", "0.0.0.0", "--api-key-env", "ANDA_UNSET_KEY"], {}),
        (["--keys-file", str(tmp_path / "missing.json")], {}),
        (["--timeout", "0"], {}),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "anda", "serve", "--db", str(tmp_path / "s"), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **env},
            check=False,
        )
        assert done.returncode == 2, (args, done.stderr)
        assert "error:" in done.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.timeout(180)
def test_each_key_is_its_own_caller(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"alice-key": "alice", "bob-key": "bob"}))
    with serving(tmp_path, "--tenancy", "per_caller", "--keys-file", str(keys)) as served:
        write = envelope(UPSERT_PERSON, parameters={"key": "k", "name": "Alice's"})
        assert post(served.url, write, key="alice-key")[0] == 200
        read = envelope(FIND_PERSON_NAME, parameters={"key": "k"})
        assert post(served.url, read, key="alice-key")[1]["results"][0]["result"] == ["Alice's"]
        assert post(served.url, read, key="bob-key")[1]["results"][0]["result"] == []
        assert post(served.url, read, key="carol-key")[0] == 401
        # Through MCP too, each key runs as its own caller.
        for key, names in (("alice-key", ["Alice's"]), ("bob-key", [])):
            _, found = mcp_session(
                served.url,
                key,
                "execute_kip_readonly",
                {"command": FIND_PERSON_NAME, "parameters": {"key": "k"}},
            )
            assert found.structured_content["results"][0]["result"] == names, key
        served.stop()
    with anda.Nexus(served.store, tenancy="per_caller") as store:
        assert result(store.execute_kip(FIND_PERSON_NAME, {"key": "k"}, caller="alice")) == [
            "Alice's"
        ]


@pytest.mark.timeout(180)
def test_a_readonly_server(tmp_path: Path) -> None:
    with anda.Nexus(tmp_path / "store") as store:
        store.execute_kip(UPSERT_PERSON, {"key": "seed", "name": "Seed"})
    with serving(tmp_path, "--readonly") as served:
        status, response = post(served.url, envelope(UPSERT_PERSON, parameters={"key": "x"}))
        assert (status, response["error"]["code"]) == (400, "ReadonlyViolation")
        read = envelope(FIND_PERSON_NAME, parameters={"key": "seed"})
        assert post(served.url, read)[1]["results"][0]["result"] == ["Seed"]
        names, _ = mcp_session(
            served.url, "unused", "execute_kip_readonly", {"command": "DESCRIBE PRIMER"}
        )
        assert names == ["execute_kip_readonly"]


# -- durability and concurrency ---------------------------------------------------------------


@pytest.mark.timeout(300)
def test_sigterm_under_load_loses_no_acknowledged_write(tmp_path: Path) -> None:
    acknowledged: list[str] = []
    stop = threading.Event()
    with serving(tmp_path) as served:

        def writer(n: int) -> None:
            with anda.Client(served.url, retries=0) as client:
                i = 0
                while not stop.is_set():
                    key = f"w{n}-{i}"
                    try:
                        client.execute_kip(UPSERT_PERSON, {"key": key, "name": key})
                    except anda.AndaError:
                        return  # the server is going away; this write was never acknowledged
                    acknowledged.append(key)
                    i += 1

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert served.stop(signal.SIGTERM) == 0, served.log.read_text()
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert len(acknowledged) >= 20
    with anda.Nexus(served.store) as store:
        stored = {row[0] for row in result(store.execute_kip(FIND_ALL_PEOPLE))}
    assert set(acknowledged) <= stored


_WORKER = """
import sys, anda
url, n, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
upsert = 'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }'
find = 'FIND(?p.name) WHERE { ?p {type: "Person", key: :key} }'
with anda.Client(url) as client:
    for i in range(count):
        key = f"p{n}-{i // 2}"
        if i % 2 == 0:
            client.execute_kip(upsert, {"key": key, "name": key})
        else:
            names = client.execute_kip(find, {"key": key})["results"][0]["result"]
            assert names == [key], (key, names)
"""


@pytest.mark.timeout(300)
def test_client_processes_against_one_server(tmp_path: Path) -> None:
    """No error, and every write exactly once: 4 processes x 100 mixed requests."""
    processes, per_process = 4, 100
    with serving(tmp_path, in_memory=True) as served:
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", _WORKER, served.url, str(n), str(per_process)],
                stderr=subprocess.PIPE,
            )
            for n in range(processes)
        ]
        for worker in workers:
            _, err = worker.communicate(timeout=240)
            assert worker.returncode == 0, err.decode()
        with anda.Client(served.url) as client:
            keys = [row[0] for row in result(client.execute_kip(FIND_ALL_PEOPLE))]
    expected = {f"p{n}-{i}" for n in range(processes) for i in range(per_process // 2)}
    assert sorted(keys) == sorted(expected)


# -- MCP over streamable HTTP ----------------------------------------------------------


def mcp_session(url: str, key: str, tool: str, arguments: dict[str, Any]) -> tuple[list[str], Any]:
    """Lists the tools and runs one call through ``/mcp`` with the SDK's streamable HTTP client."""
    import httpx2
    import mcp
    from mcp.client.streamable_http import streamable_http_client

    async def session() -> tuple[list[str], Any]:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http,
            mcp.Client(streamable_http_client(url + "/mcp", http_client=http)) as client,
        ):
            tools = await client.list_tools()
            return [tool.name for tool in tools.tools], await client.call_tool(tool, arguments)

    return asyncio.run(session())


@pytest.mark.timeout(120)
def test_mcp_over_streamable_http_with_the_key(keyed: Served) -> None:
    names, found = mcp_session(
        keyed.url, KEY, "execute_kip_readonly", {"command": "DESCRIBE PRIMER"}
    )
    assert names == ["execute_kip", "execute_kip_readonly"]
    assert not found.is_error
    assert found.structured_content["status"] == "succeeded"
    # Without the key the MCP endpoint answers 401 like /kip, before reading the body.
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    request = urllib.request.Request(
        keyed.url + "/mcp",
        data=json.dumps(initialize).encode(),
        headers={"content-type": "application/json", "accept": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401


# -- deadlines, in process over a slow memory ------------------------------------------------


class _Slow:
    """A memory whose engine calls take ``delay`` seconds more."""

    def __init__(self, memory: anda.Nexus, delay: float) -> None:
        self._memory = memory
        self.delay = delay

    @property
    def readonly(self) -> bool:
        return self._memory.readonly

    def execute_kip(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._memory.execute_kip(*args, **kwargs)

    async def execute_kip_async(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        await asyncio.sleep(self.delay)
        return await self._memory.execute_kip_async(*args, **kwargs)

    def call_tool(self, *args: Any, **kwargs: Any) -> ToolResult:
        return self._memory.call_tool(*args, **kwargs)

    async def call_tool_async(self, *args: Any, **kwargs: Any) -> ToolResult:
        await asyncio.sleep(self.delay)
        return await self._memory.call_tool_async(*args, **kwargs)

    def execute_request(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._memory.execute_request(*args, **kwargs)

    async def execute_request_async(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        await asyncio.sleep(self.delay)
        return await self._memory.execute_request_async(*args, **kwargs)

    def close(self) -> None:
        self._memory.close()


@pytest.mark.timeout(120)
def test_a_write_past_its_deadline_keeps_running() -> None:
    from starlette.testclient import TestClient

    with anda.Nexus() as nexus:
        app = create_app(_Slow(nexus, 1.0), api_keys={KEY: None}, timeout=0.2, close_memory=False)
        auth = {"Authorization": f"Bearer {KEY}"}
        write = envelope(UPSERT_PERSON, parameters={"key": "late", "name": "Late"})
        with TestClient(app) as http:
            answer = http.post("/kip", json=write, headers=auth)
            assert answer.status_code == 408
            body = answer.json()
            assert (body["status"], body["error"]["code"]) == ("outcome_unknown", "OutcomeUnknown")
            assert body["error"]["retry"]["class"] == "outcome_lookup_required"

            answer = http.post("/kip", json=envelope(FIND_ALL_PEOPLE), headers=auth)
            assert answer.status_code == 408
            assert answer.json()["error"]["code"] == "ExecutionTimeout"
            assert answer.json()["error"]["retry"]["class"] == "safe_same_request"
        # The application's shutdown waited for the write, which committed.
        assert result(nexus.execute_kip(FIND_PERSON_NAME, {"key": "late"})) == ["Late"]


@pytest.mark.timeout(120)
def test_shutdown_finishes_writes_that_outlived_their_answer(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    nexus = anda.Nexus(tmp_path / "store")
    app = create_app(_Slow(nexus, 0.5), api_keys={KEY: None}, timeout=0.05)
    with TestClient(app) as http:
        for i in range(3):
            write = envelope(UPSERT_PERSON, parameters={"key": f"k{i}", "name": "N"})
            assert (
                http.post(
                    "/kip", json=write, headers={"Authorization": f"Bearer {KEY}"}
                ).status_code
                == 408
            )
    assert nexus.closed
    with anda.Nexus(tmp_path / "store") as store:
        assert len(result(store.execute_kip(FIND_ALL_PEOPLE))) == 3


# -- the wire helpers ------------------------------------------------------------------


def test_error_statuses() -> None:
    cases = {
        ("InvalidSyntax", "syntax"): 400,
        ("InvalidRequestEnvelope", "protocol"): 400,
        ("ReadonlyViolation", "protocol"): 400,
        ("ResourceExhausted", "resource"): 400,
        ("NotFoundOrNotVisible", "data"): 404,
        ("VersionConflict", "transaction"): 409,
        ("ImmutableField", "epistemic"): 409,
        ("EpistemicRevisionRequired", "epistemic"): 409,
        ("Unauthenticated", "governance"): 401,
        ("NotAuthorized", "governance"): 403,
        ("PurgeDenied", "governance"): 403,
        ("CursorExpired", "history"): 410,
        ("TransactionTooLarge", "transaction"): 413,
        ("UnsupportedCapability", "protocol"): 501,
        ("RateLimited", "resource"): 429,
        ("ExecutionTimeout", "resource"): 408,
        ("SearchIndexUnavailable", "search"): 503,
        ("InternalError", "system"): 500,
        ("OutcomeUnknown", "transaction"): 500,
        ("SomeFutureCode", None): 500,
    }
    for (code, category), status in cases.items():
        assert _wire.error_status({"code": code, "category": category}) == status, code
    assert _wire.response_status({"status": "succeeded", "results": []}) == 200
    assert _wire.response_status({"status": "failed", "results": []}) == 500


def test_envelopes_go_whole_and_the_older_shape_becomes_tool_arguments() -> None:
    params = {"kip": "2.0", "request_id": "r", "operations": [{"command": "A"}]}
    assert _wire.call_arguments(params) == (params, True, "r")
    assert _wire.call_arguments({"kip": "2.0", "request_id": ""})[2] is None
    older = {"command": "A", "parameters": {"x": 1}, "dry_run": True}
    assert _wire.call_arguments(older) == (older, False, None)
    for bad in ("A", ["A"], None):
        with pytest.raises(_wire.Refusal) as refused:
            _wire.call_arguments(bad)
        assert refused.value.status == 400
