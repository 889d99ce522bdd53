"""``python -m anda serve``: KIP over HTTP, as Anda's Rust server speaks it.

The wire format against a real server process on 127.0.0.1, talked to with the
standard library, byte for byte, and the wire helpers on their own. Also the
helpers the other server tests import (``serving``, ``Served``, ``KEY``,
``free_port``, ``post``, ``envelope``, the raw exchanges): keys, limits and
MCP are in test_server_access.py, durability and deadlines in
test_server_durability.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import anda
from anda.server import _wire
from conftest import FIND_PERSON_NAME, UPSERT_PERSON

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
