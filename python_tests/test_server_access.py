"""``python -m anda serve`` behind an API key: authentication, the limits on
bodies, time and requests in flight, one caller per key, a read-only server,
refusing to listen beyond loopback unprotected, and MCP over streamable HTTP
with the key. Real server processes on 127.0.0.1 (helpers in test_server.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import anda
from conftest import FIND_PERSON_NAME, UPSERT_PERSON, result
from test_server import (
    KEY,
    Served,
    envelope,
    head,
    post,
    raw_exchange,
    read_all,
    serving,
    status_of,
)


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
