"""The change feed: ``Nexus.changes``, ``Client.changes`` and ``GET /changes``.

Every committed change arrives once and in order: over a Nexus, over a
Client in pages, and to a second process that follows a server while this
one writes, across a dropped connection and a restart of the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import anda
from anda.errors import first_error
from anda.server import create_app
from conftest import UPSERT_PERSON
from support.memories import FULL_KINDS, open_memory
from test_server import KEY, free_port

FOLLOW_SECONDS = 120.0


def write(memory: anda.Nexus | anda.Client, *keys: str, caller: str | None = None) -> None:
    for key in keys:
        memory.execute_kip(UPSERT_PERSON, {"key": key, "name": key.title()}, caller=caller)


# -- over a Nexus --------------------------------------------------------------------


def test_every_commit_once_in_order_and_resumable() -> None:
    with anda.Nexus() as nexus:
        write(nexus, "a", "b", "c")
        feed = nexus.changes()
        seen = list(feed)
        assert [e["space_seq"] for e in seen] == [1, 2, 3]
        assert all(e["changes"][0]["op"] == "create" for e in seen)
        assert feed.position == 3
        # Caught up: nothing more, until something commits.
        assert list(nexus.changes(since=feed.position)) == []
        write(nexus, "d")
        later = list(nexus.changes(since=feed.position))
        assert [e["space_seq"] for e in later] == [4]
        # A change to an existing element is a change too, after the others.
        nexus.execute_kip(UPSERT_PERSON, {"key": "a", "name": "Ada"})
        [update] = nexus.changes(since=4)
        assert (update["space_seq"], update["changes"][0]["op"]) == (5, "update")


def test_pages_are_bounded_and_resuming_mid_page_loses_nothing() -> None:
    with anda.Nexus() as nexus:
        write(nexus, *[f"k{i}" for i in range(7)])
        assert [e["space_seq"] for e in nexus.changes(limit=2)] == list(range(1, 8))
        feed = nexus.changes(limit=3)
        first = [next(feed)["space_seq"] for _ in range(4)]
        assert first == [1, 2, 3, 4]
        assert feed.position == 4
        # A new feed from the position goes on where the first stopped.
        assert [e["space_seq"] for e in nexus.changes(since=feed.position)] == [5, 6, 7]
        # The engine's next_cursor (a decimal string) is a position too.
        assert [e["space_seq"] for e in nexus.changes(since="6")] == [7]


def test_arguments_are_checked() -> None:
    with anda.Nexus() as nexus:
        for since in (-1,):
            with pytest.raises(ValueError, match="since"):
                nexus.changes(since=since)
        for since in (1.5, True, "abc", None):
            with pytest.raises(TypeError, match="since"):
                nexus.changes(since=since)  # type: ignore[arg-type]
        for limit in (0, 1001, True):
            with pytest.raises(ValueError, match="limit"):
                nexus.changes(limit=limit)
        with pytest.raises(ValueError, match="poll_interval"):
            nexus.changes(poll_interval=0)


def test_per_caller_tenancy_follows_each_callers_own_memory() -> None:
    def concepts_created(envelopes: list[dict[str, Any]]) -> int:
        return sum(
            1
            for envelope in envelopes
            for change in envelope.get("changes", [])
            if (change["op"], change["kind"]) == ("create", "concept")
        )

    with anda.Nexus(tenancy="per_caller") as nexus:
        write(nexus, "a1", "a2", caller="alice")
        write(nexus, "b1", caller="bob")
        alice = list(nexus.changes(caller="alice"))
        bob = list(nexus.changes(caller="bob"))
        # Each caller follows its own Space, and sees only its own writes.
        assert len({e["space_id"] for e in alice}) == 1
        assert {e["space_id"] for e in alice}.isdisjoint({e["space_id"] for e in bob})
        assert (concepts_created(alice), concepts_created(bob)) == (2, 1)
        with pytest.raises(anda.KipGovernanceError) as refused:
            list(nexus.changes())
        assert refused.value.code == "NotAuthorized"


def test_async_iteration() -> None:
    async def main() -> list[int]:
        with anda.Nexus() as nexus:
            write(nexus, "a", "b")
            return [e["space_seq"] async for e in nexus.changes(limit=1)]

    assert asyncio.run(main()) == [1, 2]


@pytest.mark.timeout(FOLLOW_SECONDS)
def test_following_a_nexus_waits_for_commits_and_close_ends_it() -> None:
    with anda.Nexus() as nexus:
        feed = nexus.changes(follow=True, poll_interval=0.05)
        seen: list[int] = []

        def follow() -> None:
            for envelope in feed:
                seen.append(envelope["space_seq"])

        follower = threading.Thread(target=follow)
        follower.start()
        write(nexus, "a", "b", "c")
        while len(seen) < 3:
            follower.join(0.05)
        feed.close()
        follower.join()
        assert seen == [1, 2, 3]


def _waiting_for_next(feed: anda.ChangeFeed) -> tuple[threading.Thread, list[dict[str, Any]]]:
    """A thread started and waiting on ``next(feed)``; the list gets its envelope."""
    got: list[dict[str, Any]] = []
    started = threading.Event()

    def follow() -> None:
        started.set()
        got.append(next(feed))

    follower = threading.Thread(target=follow)
    follower.start()
    started.wait()
    return follower, got


@pytest.mark.timeout(FOLLOW_SECONDS)
def test_a_commit_through_the_server_wakes_a_nexus_follower_at_once() -> None:
    """The follower would re-read only after an hour; the server's commit
    signal wakes it (this test would hit its timeout without it)."""
    from starlette.testclient import TestClient

    with anda.Nexus() as nexus:
        feed = nexus.changes(follow=True, poll_interval=3600)
        follower, got = _waiting_for_next(feed)
        app = create_app(nexus, api_keys={KEY: None}, close_memory=False)
        with TestClient(app) as http:
            params = {
                "kip": "2.0",
                "operations": [{"command": UPSERT_PERSON, "parameters": {"key": "a", "name": "A"}}],
            }
            answer = http.post(
                "/kip",
                json={"method": "execute_kip", "params": params},
                headers={"Authorization": f"Bearer {KEY}"},
            )
            assert answer.status_code == 200
        follower.join()
        assert got[0]["space_seq"] == 1


@pytest.mark.timeout(FOLLOW_SECONDS)
@pytest.mark.parametrize("how", ["execute_kip", "call_tool", "execute_request", "bulk_write"])
def test_a_write_on_the_nexus_itself_wakes_its_follower_at_once(how: str) -> None:
    """The follower would re-read only after an hour: the Nexus's own
    commit wakes it (this test would hit its timeout otherwise)."""
    with anda.Nexus() as nexus:
        feed = nexus.changes(follow=True, poll_interval=3600)
        follower, got = _waiting_for_next(feed)
        parameters = {"key": "a", "name": "A"}
        if how == "execute_kip":
            nexus.execute_kip(UPSERT_PERSON, parameters)
        elif how == "call_tool":
            arguments = {"command": UPSERT_PERSON, "parameters": parameters}
            assert not nexus.call_tool("execute_kip", arguments).is_error
        elif how == "execute_request":
            operations = [{"command": UPSERT_PERSON, "parameters": parameters}]
            nexus.execute_request({"kip": "2.0", "operations": operations})
        else:
            nexus.bulk_write([{"upsert": {"type": "Person", "key": "a", "name": "A"}}])
        follower.join()
        feed.close()
        assert got[0]["space_seq"] == 1


@pytest.mark.timeout(FOLLOW_SECONDS)
def test_async_follow_wakes_on_the_signal() -> None:
    async def main() -> list[int]:
        with anda.Nexus() as nexus:
            feed = nexus.changes(follow=True, poll_interval=3600)

            async def writer() -> None:
                await asyncio.sleep(0)
                await nexus.execute_kip_async(UPSERT_PERSON, {"key": "a", "name": "A"})

            task = asyncio.ensure_future(writer())
            envelope = await feed.__anext__()
            await task
            feed.close()
            return [envelope["space_seq"]]

    assert asyncio.run(main()) == [1]


@pytest.mark.timeout(FOLLOW_SECONDS)
@pytest.mark.parametrize("kind", FULL_KINDS)
def test_every_memory_reads_and_follows_the_same_changes(kind: str, tmp_path: Path) -> None:
    with open_memory(kind, tmp_path) as memory:
        write(memory, "a", "b", "c")
        feed = memory.changes(limit=2)
        assert [(e["space_seq"], e["changes"][0]["op"]) for e in feed] == [
            (1, "create"),
            (2, "create"),
            (3, "create"),
        ]
        seen: list[int] = []
        with memory.changes(since=feed.position, follow=True, poll_interval=0.05) as live:

            def follow() -> None:
                for envelope in live:
                    seen.append(envelope["space_seq"])
                    if len(seen) == 2:
                        return

            follower = threading.Thread(target=follow)
            follower.start()
            write(memory, "d", "e")
            follower.join()
        assert seen == [4, 5]
        assert live.position == 5


# -- GET /changes, in process ------------------------------------------------------------


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Server-sent events as dicts: ``id``, ``event``, ``data`` (parsed), ``comment``."""
    event: dict[str, Any] = {}
    for line in lines:
        if not line:
            if event:
                yield event
            event = {}
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            event["comment"] = value
        elif name == "data":
            event["data"] = json.loads(value)
        else:
            event[name] = value
    if event:
        yield event


def test_sse_serves_the_backlog_with_ids_and_resumes_from_last_event_id() -> None:
    from starlette.testclient import TestClient

    with anda.Nexus() as nexus:
        write(nexus, "a", "b", "c")
        app = create_app(nexus, api_keys={KEY: None}, close_memory=False)
        auth = {"Authorization": f"Bearer {KEY}"}
        with TestClient(app) as http:
            with http.stream("GET", "/changes?follow=false&limit=2", headers=auth) as answer:
                assert answer.status_code == 200
                assert answer.headers["content-type"].startswith("text/event-stream")
                events = list(sse_events(answer.iter_lines()))
            assert events[0] == {"retry": "1000"}
            changes = [e for e in events if e.get("event") == "change"]
            assert [e["id"] for e in changes] == ["1", "2", "3"]
            assert [e["data"]["space_seq"] for e in changes] == [1, 2, 3]

            resumed = {**auth, "Last-Event-ID": "2"}
            with http.stream("GET", "/changes?follow=false", headers=resumed) as answer:
                ids = [e["id"] for e in sse_events(answer.iter_lines()) if "data" in e]
            assert ids == ["3"]
            # Last-Event-ID wins over ?since, as a reconnecting EventSource sends both.
            with http.stream("GET", "/changes?follow=false&since=0", headers=resumed) as answer:
                ids = [e["id"] for e in sse_events(answer.iter_lines()) if "data" in e]
            assert ids == ["3"]


def test_sse_is_behind_the_keys_and_refuses_bad_arguments() -> None:
    from starlette.testclient import TestClient

    with anda.Nexus(tenancy="per_caller") as nexus:
        write(nexus, "a", caller="alice")
        write(nexus, "b", "c", caller="bob")
        app = create_app(nexus, api_keys={"k-alice": "alice", "k-bob": "bob"}, close_memory=False)
        with TestClient(app) as http:
            assert http.get("/changes").status_code == 401
            assert http.get("/changes", headers={"Authorization": "Bearer nope"}).status_code == 401
            for query in ("since=-1", "since=x", "limit=0", "limit=5000", "follow=maybe"):
                answer = http.get(f"/changes?{query}", headers={"Authorization": "Bearer k-alice"})
                assert answer.status_code == 400, query
                assert answer.json()["error"]["code"] == "InvalidRequestEnvelope"

            def spaces(key: str) -> set[str]:
                with http.stream(
                    "GET", "/changes?follow=false", headers={"Authorization": f"Bearer {key}"}
                ) as answer:
                    assert answer.status_code == 200
                    return {
                        e["data"]["space_id"]
                        for e in sse_events(answer.iter_lines())
                        if e.get("event") == "change"
                    }

            alice, bob = spaces("k-alice"), spaces("k-bob")
            assert len(alice) == len(bob) == 1
            assert alice != bob


def test_an_anonymous_caller_is_refused_before_the_stream() -> None:
    from starlette.testclient import TestClient

    with anda.Nexus(tenancy="per_caller") as nexus:
        app = create_app(nexus, close_memory=False)  # no keys: loopback, no caller
        with TestClient(app, base_url="http://127.0.0.1") as http:
            answer = http.get("/changes")
        assert answer.status_code == 403
        assert first_error(answer.json())["code"] == "NotAuthorized"


# -- a second process follows a server while this one writes ------------------------------

FOLLOWER = """
import sys, anda
with anda.Client(sys.argv[1], api_key=sys.argv[2], timeout=60) as client:
    for envelope in client.changes(since=int(sys.argv[3]), follow=True, limit=2):
        print(envelope["space_seq"], envelope["tx_id"], flush=True)
        if envelope["space_seq"] >= int(sys.argv[4]):
            break
"""


def start_follower(url: str, since: int, until: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", FOLLOWER, url, KEY, str(since), str(until)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )


def read_until(process: subprocess.Popen[str], count: int) -> list[tuple[int, str]]:
    assert process.stdout is not None
    lines = []
    for _ in range(count):
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else ""
        seq, tx_id = line.split()
        lines.append((int(seq), tx_id))
    return lines


@contextlib.contextmanager
def server_on(store: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m anda serve`` of ``store`` on ``port`` (the same port after
    a restart, so a follower reconnects to the same address)."""
    with open(log, "ab") as sink:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "anda", "serve", "--db", str(store)),
                *("--port", str(port), "--api-key-env", "ANDA_TEST_KEY"),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ANDA_TEST_KEY": KEY},
        )
    try:
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the server exited early:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()


@pytest.mark.timeout(300)
def test_a_second_process_follows_across_a_reconnect_and_a_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    store, log = tmp_path / "store", tmp_path / "serve.log"
    seen: list[tuple[int, str]] = []
    with server_on(store, port, log):
        follower = start_follower(url, 0, 9)
        with anda.Client(url, api_key=KEY) as client:
            write(client, "a", "b", "c")
        seen += read_until(follower, 3)
    # The server is gone; the follower keeps trying, and reconnects (with
    # Last-Event-ID) once the server is back on the same store.
    with server_on(store, port, log), anda.Client(url, api_key=KEY) as client:
        write(client, "d", "e")
        seen += read_until(follower, 2)
        follower.kill()
        follower.wait()
        # Committed while nobody follows: a new process resumes from the
        # last position the first one printed, and misses nothing.
        write(client, "f")
        follower = start_follower(url, seen[-1][0], 9)
        write(client, "g", "h", "i")
        seen += read_until(follower, 4)
        assert follower.wait(timeout=60) == 0
    assert [seq for seq, _ in seen] == list(range(1, 10))
    assert len({tx_id for _, tx_id in seen}) == 9
