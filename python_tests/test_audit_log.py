"""The audit log of ``python -m anda serve``: what it records, ``list_logs``
exactly as Anda's server answers it, per-caller reading, retention, the
bound on stored requests, and that it survives a restart beside the store
without troubling ``check`` or ``copy``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import anda
from anda._logs import FILE_NAME, decode_cursor, encode_cursor
from anda.server import _audit, create_app
from conftest import UPSERT_PERSON
from test_server import KEY, envelope, post, serving

AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def http() -> Iterator[Any]:
    """An application over an in-memory store, keys mapping to alice and bob."""
    from starlette.testclient import TestClient

    with anda.Nexus() as nexus:
        app = create_app(nexus, api_keys={KEY: "alice", "key-bob": "bob"}, close_memory=False)
        with TestClient(app) as client:
            yield client


def list_logs(http: Any, params: Any, key: str = KEY) -> tuple[int, dict[str, Any]]:
    answer = http.post(
        "/kip",
        json={"method": "list_logs", "params": params},
        headers={"Authorization": f"Bearer {key}"},
    )
    return answer.status_code, answer.json()


def logs_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    assert response["status"] == "succeeded", response
    logs: list[dict[str, Any]] = response["results"][0]["result"]
    return logs


# -- what an entry records -----------------------------------------------------------


def test_an_entry_says_who_when_what_and_how_it_went(http: Any) -> None:
    write = envelope(UPSERT_PERSON, parameters={"key": "ada", "name": "Ada"})
    body = json.dumps(write).encode()
    assert http.post("/kip", content=body, headers=AUTH).status_code == 200
    assert http.post("/kip", json=envelope("FIND(?x WHERE"), headers=AUTH).status_code == 400
    assert (
        http.post("/kip", json=write, headers={"Authorization": "Bearer wrong"}).status_code == 401
    )
    assert http.post("/kip", content=b"not json", headers=AUTH).status_code == 400
    status, response = list_logs(http, {})
    assert status == 200
    wrote, bad, refused, garbled = logs_of(response)
    # The fields of Anda's server, then anda's.
    assert list(wrote)[:6] == ["_id", "languages", "request", "response", "period", "timestamp"]
    assert (wrote["_id"], wrote["caller"], wrote["method"], wrote["languages"]) == (
        1,
        "alice",
        "execute_kip",
        "KML",
    )
    assert wrote["request"] == write["params"]
    assert wrote["response"]["status"] == "succeeded"
    assert wrote["response"]["errors"] == []
    assert wrote["response"]["tx_id"].endswith("#1")
    assert (wrote["http_method"], wrote["path"], wrote["http_status"]) == ("POST", "/kip", 200)
    assert wrote["request_bytes"] == len(body)
    assert wrote["period"] == wrote["timestamp"] // 3_600_000
    # A command that does not parse: its language is unknown, its error recorded.
    assert (bad["languages"], bad["http_status"]) == ("UNKNOWN", 400)
    assert [e["code"] for e in bad["response"]["errors"]] == ["InvalidSyntax"]
    # Refused before the body was read: nobody, nothing run, and why.
    assert (refused["caller"], refused["request"], refused["http_status"]) == (None, None, 401)
    assert [e["code"] for e in refused["response"]["errors"]] == ["Unauthenticated"]
    assert [e["code"] for e in garbled["response"]["errors"]] == ["InvalidRequestEnvelope"]


def test_mcp_calls_and_change_feeds_are_logged_too(http: Any) -> None:
    headers = {**AUTH, "Accept": "application/json, text/event-stream"}
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "execute_kip_readonly", "arguments": {"command": "DESCRIBE PRIMER"}},
    }
    assert http.post("/mcp", json=call, headers=headers).status_code == 200
    with http.stream("GET", "/changes?follow=false&since=0", headers=AUTH) as answer:
        assert answer.status_code == 200
        answer.read()
    mcp, feed = logs_of(list_logs(http, {})[1])
    assert (mcp["path"], mcp["method"], mcp["languages"]) == (
        "/mcp",
        "execute_kip_readonly",
        "META",
    )
    assert mcp["request"] == {"command": "DESCRIBE PRIMER"}
    assert mcp["response"]["status"] == "succeeded"
    assert (feed["path"], feed["method"], feed["http_method"]) == ("/changes", "changes", "GET")
    assert feed["request"] == {"since": 0, "limit": 100, "follow": False}


def test_a_request_past_the_bound_is_stored_cut() -> None:
    from starlette.testclient import TestClient

    with anda.Nexus() as nexus:
        app = create_app(nexus, api_keys={KEY: None}, max_logged_request_bytes=512)
        with TestClient(app) as http:
            names = [f"name-{i}-" + "x" * 40 for i in range(40)]
            commands = [
                {"command": UPSERT_PERSON, "parameters": {"key": f"k{i}", "name": name}}
                for i, name in enumerate(names)
            ]
            big = {
                "method": "execute_kip",
                "params": {
                    "kip": "2.0",
                    "request_id": "r-9",
                    "execution": {"mode": "sequence"},
                    "operations": commands,
                },
            }
            assert http.post("/kip", json=big, headers=AUTH).status_code == 200
            [entry] = logs_of(list_logs(http, {})[1])
    stored = entry["request"]
    assert len(json.dumps(stored, ensure_ascii=False).encode()) <= 512
    assert (stored["kip"], stored["request_id"]) == ("2.0", "r-9")
    [note] = stored["operations"]
    assert note["command"].startswith("UPSERT CONCEPT")
    assert "40 operation(s)" in note["command"]
    assert entry["request_bytes"] > 4000  # the size of what was sent, not of what was kept
    assert entry["response"]["status"] == "succeeded"


def test_the_key_is_never_stored(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    secret = "sk-very-secret-0123456789"
    with anda.Nexus(tmp_path / "store") as nexus:
        app = create_app(nexus, api_keys={secret: "alice"}, close_memory=False)
        with TestClient(app) as http:
            headers = {"Authorization": f"Bearer {secret}"}
            http.post("/kip", json=envelope("DESCRIBE PRIMER"), headers=headers)
            http.post("/kip", json=envelope("DESCRIBE PRIMER"), headers={"Authorization": "x"})
    stored = b"".join(path.read_bytes() for path in (tmp_path / "store").glob(FILE_NAME + "*"))
    assert b"DESCRIBE PRIMER" in stored
    assert secret.encode() not in stored


# -- list_logs, as Anda's server answers it ------------------------------------------------


def test_pages_cursors_and_limits(http: Any) -> None:
    for _ in range(12):
        http.post("/kip", json=envelope("DESCRIBE PRIMER"), headers=AUTH)
    status, response = list_logs(http, {})
    # Ten by default; a full page carries the cursor of its last entry.
    assert status == 200
    assert set(response) == {"kip", "status", "results", "next_cursor"}
    assert [e["_id"] for e in logs_of(response)] == list(range(1, 11))
    assert response["next_cursor"] == encode_cursor(10) == "b64:Cg=="
    status, response = list_logs(http, {"cursor": response["next_cursor"]})
    assert [e["_id"] for e in logs_of(response)] == [11, 12]
    assert "next_cursor" not in response  # a short page: nothing more yet
    # The cursor as Anda's server reads it: prefix and padding optional.
    for cursor in ("b64:Cg==", "Cg==", "Cg"):
        assert [e["_id"] for e in logs_of(list_logs(http, {"cursor": cursor})[1])] == [11, 12]
    # limit: 0 answers an empty page without a cursor, even with a bad cursor.
    status, response = list_logs(http, {"limit": 0, "cursor": "!!"})
    assert (status, logs_of(response), "next_cursor" in response) == (200, [], False)
    status, response = list_logs(http, {"limit": 5, "unknown": "ignored"})
    assert [e["_id"] for e in logs_of(response)] == [1, 2, 3, 4, 5]
    assert decode_cursor(response["next_cursor"]) == 5
    # null means "not given"; [cursor, limit] is read as serde reads a struct.
    assert len(logs_of(list_logs(http, {"cursor": None, "limit": None})[1])) == 10
    assert [e["_id"] for e in logs_of(list_logs(http, [None, 2])[1])] == [1, 2]


def test_a_page_holds_at_most_100(http: Any) -> None:
    for _ in range(105):
        http.post("/kip", json=envelope("DESCRIBE PRIMER"), headers=AUTH)
    _, response = list_logs(http, {"limit": 1000})
    assert len(logs_of(response)) == 100
    assert decode_cursor(response["next_cursor"]) == 100


def test_refusals(http: Any) -> None:
    for params in ({"cursor": "b64:!!!"}, {"cursor": "b64:Yw=="}, {"cursor": "AQI="}):
        status, response = list_logs(http, params)
        assert status == 400, params
        assert response["error"]["code"] == "CursorInvalidated"
        assert response["error"]["message"].startswith("invalid cursor: ")
    for params in (
        "all",
        3,
        {"limit": -1},
        {"limit": "5"},
        {"limit": 2.5},
        {"limit": True},
        {"cursor": 5},
        [None, 1, 2],
    ):
        status, response = list_logs(http, params)
        assert status == 400, params
        assert response["error"]["code"] == "InvalidRequestEnvelope"
        assert response["error"]["message"].startswith("invalid parameters: ")
    answer = http.post("/kip", json={"method": "list_logs"}, headers=AUTH)
    assert answer.status_code == 400
    assert http.post("/kip", json={"method": "list_logs", "params": {}}).status_code == 401


def test_reading_the_log_is_logged_but_not_listed(http: Any) -> None:
    """A reader paging one entry at a time must reach the end."""
    http.post("/kip", json=envelope("DESCRIBE PRIMER"), headers=AUTH)
    cursor, pages = None, 0
    while True:
        _, response = list_logs(http, {"limit": 1, "cursor": cursor})
        pages += 1
        cursor = response.get("next_cursor")
        if cursor is None:
            break
    assert pages == 2  # one entry, then an empty page
    log = http.app.state.audit_log
    methods = [entry["method"] for entry in log.read()]
    assert methods == ["execute_kip", "list_logs", "list_logs"]


def test_under_per_caller_tenancy_a_caller_reads_only_its_own() -> None:
    from starlette.testclient import TestClient

    with anda.Nexus(tenancy="per_caller") as nexus:
        app = create_app(nexus, api_keys={"ka": "alice", "kb": "bob"}, close_memory=False)
        with TestClient(app) as http:
            for key, name in (("ka", "a1"), ("kb", "b1"), ("ka", "a2")):
                write = envelope(UPSERT_PERSON, parameters={"key": name, "name": name})
                http.post("/kip", json=write, headers={"Authorization": f"Bearer {key}"})
            alice = logs_of(list_logs(http, {}, key="ka")[1])
            bob = logs_of(list_logs(http, {}, key="kb")[1])
        # Without keys the server runs calls as nobody, and under per-caller
        # tenancy nobody has a log to read.
        keyless = create_app(nexus, close_memory=False)
        with TestClient(keyless, base_url="http://127.0.0.1") as local:
            answer = local.post("/kip", json={"method": "list_logs", "params": {}})
    assert [e["request"]["parameters"]["key"] for e in alice] == ["a1", "a2"]
    assert [e["caller"] for e in bob] == ["bob"]
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "NotAuthorized"


def test_retention_deletes_what_is_older() -> None:
    log = _audit.AuditLog(None)
    hour = 3_600_000
    now = 1_000 * 24 * hour
    for hours_ago in (24 * 31, 24 * 29, 1):
        log.record(_audit.Entry(now - hours_ago * hour, "POST", "/kip"))
    assert log.prune_expired(30, now_ms=now) == 1
    assert len(log.read()) == 2
    assert log.prune_expired(0, now_ms=now + 1000 * 24 * hour) == 0  # 0 keeps everything
    assert len(log.read()) == 2
    log.close()
    for days in (-1, True, 1.5, 2**62):
        with pytest.raises(ValueError, match="retention"):
            _audit.check_retention(days)
    with anda.Nexus() as nexus, pytest.raises(ValueError, match="retention"):
        create_app(nexus, log_retention_days=-1)


# -- kept with the store, across restarts, over the wire and from the command line --------


@pytest.mark.timeout(300)
def test_the_log_survives_a_restart_and_leaves_check_and_copy_alone(tmp_path: Path) -> None:
    args = ("--keys-file", str(tmp_path / "keys.json"))
    (tmp_path / "keys.json").write_text(json.dumps({KEY: "alice"}))
    with serving(tmp_path, *args) as served:
        write = envelope(UPSERT_PERSON, parameters={"key": "ada", "name": "Ada"})
        assert post(served.url, write, key=KEY)[0] == 200
        assert served.stop() == 0
    assert (served.store / FILE_NAME).is_file()
    with serving(tmp_path, *args) as served:
        assert post(served.url, envelope("DESCRIBE PRIMER"), key=KEY)[0] == 200
        with anda.Client(served.url, api_key=KEY) as client:
            page = client.list_logs()
            assert isinstance(page, anda.LogPage)
            assert [(e["_id"], e["languages"]) for e in page.logs] == [(1, "KML"), (2, "META")]
            assert page.next_cursor is None
            first, cursor = client.list_logs(limit=1)
            assert ([e["_id"] for e in first], decode_cursor(cursor or "")) == ([1], 1)
            with pytest.raises(anda.KipHistoryError) as refused:
                client.list_logs(cursor="nope")
            assert refused.value.code == "CursorInvalidated"
        over_the_wire = run_logs("--db", served.url, "--json", env={"ANDA_API_KEY": KEY})
        # Read from the file while the server runs: every entry, list_logs calls too.
        from_the_file = run_logs("--db", str(served.store), "--json")
        as_text = run_logs("--db", str(served.store), "--caller", "alice", "--limit", "1")
        assert served.stop() == 0
    assert [json.loads(line)["_id"] for line in over_the_wire] == [1, 2]
    methods = [json.loads(line)["method"] for line in from_the_file]
    assert methods[:2] == ["execute_kip", "execute_kip"]
    assert "list_logs" in methods
    [line] = as_text
    assert line.startswith("#1 ")
    assert " alice POST /kip execute_kip 200 succeeded KML " in line
    # The store itself is untouched by the file beside it.
    check = subprocess.run(
        [sys.executable, "-m", "anda", "check", "--db", str(served.store)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    anda.copy_store(served.store, tmp_path / "copy")
    with anda.Nexus(tmp_path / "copy", readonly=True) as copy:
        assert copy.execute_kip('FIND(?p.name) WHERE { ?p {type: "Person"} }')["results"][0][
            "result"
        ] == ["Ada"]


def run_logs(*args: str, env: dict[str, str] | None = None) -> list[str]:
    import os

    done = subprocess.run(
        [sys.executable, "-m", "anda", "logs", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_logs_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    for args, status in (((), 2), (("--db", str(tmp_path)), 1), (("--limit", "-1"), 2)):
        done = subprocess.run(
            [sys.executable, "-m", "anda", "logs", *args],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": "/usr/bin:/bin"},
        )
        assert done.returncode == status, (args, done.stderr)


def test_cursor_codec() -> None:
    for entry_id in (0, 1, 23, 24, 255, 256, 65535, 65536, 2**32, 2**64 - 1):
        assert decode_cursor(encode_cursor(entry_id)) == entry_id
    assert encode_cursor(100) == "b64:GGQ="
    for bad in ("", "b64:", "===", "AQID====", "Yg==", "GQ==", "AQE=", "Ag=x", "A-+/"):
        with pytest.raises(ValueError, match=r"not (base64|a cursor)"):
            decode_cursor(bad)
    with pytest.raises(ValueError, match="entry id"):
        encode_cursor(-1)


def test_serve_refuses_an_audit_log_it_cannot_open(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "anda", "serve", "--audit-log", str(tmp_path / "no" / "log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "cannot open the audit log" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "anda", "serve", "--log-retention-days", "-1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "--log-retention-days" in done.stderr
