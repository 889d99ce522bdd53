"""``python -m anda serve`` under load and at its deadlines: no acknowledged
write lost to SIGTERM, client processes against one server, and (in process,
over a deliberately slow memory, where timing can be controlled) writes that
outlive their deadline or their answer. Helpers in test_server.py.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import anda
from anda.server import create_app
from anda.tools import ToolResult
from conftest import FIND_ALL_PEOPLE, FIND_PERSON_NAME, UPSERT_PERSON, result
from test_server import (
    KEY,
    envelope,
    serving,
)

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
