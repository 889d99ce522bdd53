"""anda.integrations.google_adk against the real Google ADK.

The memory service runs under ADK's own session service, events and memory
entries, and in the example under ADK's Runner with its Anthropic model and
its own load_memory tool, against the local provider stand-in (two processes:
the second session recalls what the first one stored).
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
from conftest import result
from example_runner import MODEL, run_example
from provider_standin import Answer, StandIn, ToolCall, call_id, tool_results

pytest.importorskip("google.adk")

from google.adk.events import Event
from google.adk.memory import BaseMemoryService
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.models.anthropic_llm import function_declaration_to_tool_param
from google.adk.sessions import InMemorySessionService, Session
from google.adk.tools import load_memory
from google.genai import types

from anda.integrations.google_adk import EVENT_CLASS, caller_for, memory_service

STORED = 'FIND(?m.attributes) WHERE { ?m {type: "Event", attributes: {event_class: :c}} }'


def text(author: str, words: str) -> Event:
    role = "user" if author == "user" else "model"
    return Event(
        author=author,
        invocation_id="inv-1",
        content=types.Content(role=role, parts=[types.Part(text=words)]),
    )


async def session_with(
    sessions: InMemorySessionService, app: str, user: str, *turns: tuple[str, str]
) -> Session:
    session = await sessions.create_session(app_name=app, user_id=user)
    for author, words in turns:
        await sessions.append_event(session, text(author, words))
    found = await sessions.get_session(app_name=app, user_id=user, session_id=session.id)
    assert found is not None
    return found


def texts(response: Any) -> list[str]:
    return [entry.content.parts[0].text for entry in response.memories]


def stored(memory: anda.Nexus, app: str, user: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = result(
        memory.execute_kip(STORED, {"c": EVENT_CLASS}, caller=caller_for(app, user))
    )
    return found


def test_a_session_is_stored_verbatim_once_and_found_by_keyword() -> None:
    async def main(memory: anda.Nexus) -> tuple[Any, Session]:
        service = memory_service(memory)
        assert isinstance(service, BaseMemoryService)
        sessions = InMemorySessionService()
        session = await session_with(
            sessions,
            "app",
            "alice",
            ("user", "My cat Whiskers loves tuna."),
            ("assistant", "Noted: Whiskers likes tuna."),
            ("user", "My dentist is on Friday."),
        )
        # ADK apps add a session again as it grows: nothing is stored twice.
        await service.add_session_to_memory(session)
        await service.add_session_to_memory(session)
        return await service.search_memory(
            app_name="app", user_id="alice", query="What does Whiskers eat?"
        ), session

    with anda.Nexus(tenancy="per_caller") as memory:
        found, session = asyncio.run(main(memory))
        rows = stored(memory, "app", "alice")
    assert len(rows) == 3
    assert sorted(texts(found)) == ["My cat Whiskers loves tuna.", "Noted: Whiskers likes tuna."]
    by_id = {event.id: event for event in session.events}
    for entry in found.memories:
        event = by_id[entry.id]
        assert entry.author == event.author
        assert entry.timestamp.endswith("Z")
        assert entry.content.parts[0].text == event.content.parts[0].text


def test_each_app_and_user_has_its_own_memory() -> None:
    async def main(memory: anda.Nexus) -> dict[tuple[str, str], list[str]]:
        service = memory_service(memory)
        sessions = InMemorySessionService()
        for app, user in (("app", "alice"), ("app", "bob"), ("other", "alice"), ("a/b", "c")):
            said = f"{app} {user} keeps a secret notebook"
            await service.add_session_to_memory(
                await session_with(sessions, app, user, ("user", said))
            )
        return {
            (app, user): texts(
                await service.search_memory(app_name=app, user_id=user, query="secret notebook")
            )
            for app, user in (("app", "alice"), ("app", "bob"), ("other", "alice"), ("a", "b/c"))
        }

    with anda.Nexus(tenancy="per_caller") as memory:
        found = asyncio.run(main(memory))
    assert found == {
        ("app", "alice"): ["app alice keeps a secret notebook"],
        ("app", "bob"): ["app bob keeps a secret notebook"],
        ("other", "alice"): ["other alice keeps a secret notebook"],
        ("a", "b/c"): [],
    }


def test_a_delete_really_deletes_and_the_session_does_not_bring_it_back() -> None:
    async def main(memory: anda.Nexus) -> tuple[list[str], list[str], list[str]]:
        service = memory_service(memory)
        sessions = InMemorySessionService()
        session = await session_with(
            sessions,
            "app",
            "alice",
            ("user", "My locker code is 4417, the blue locker."),
            ("user", "The red locker is Bob's."),
        )
        await service.add_session_to_memory(session)
        secret = session.events[0].id
        # Another user cannot delete it: the call runs in their own memory.
        await service.delete_memory(app_name="app", user_id="bob", memory_id=secret)
        before = texts(await service.search_memory(app_name="app", user_id="alice", query="locker"))
        await service.delete_memory(app_name="app", user_id="alice", memory_id=secret)
        after = texts(await service.search_memory(app_name="app", user_id="alice", query="locker"))
        await service.add_session_to_memory(session)
        again = texts(await service.search_memory(app_name="app", user_id="alice", query="4417"))
        return before, after, again

    with anda.Nexus(tenancy="per_caller") as memory:
        before, after, again = asyncio.run(main(memory))
        rows = stored(memory, "app", "alice")
    assert len(before) == 2
    assert after == ["The red locker is Bob's."]
    assert again == []
    # Not hidden but gone: no stored Event holds the text any more.
    assert [row["summary"] for row in rows] == ["The red locker is Bob's."]


def test_events_and_explicit_memories_can_be_added() -> None:
    async def main(memory: anda.Nexus) -> list[MemoryEntry]:
        service = memory_service(memory, limit=5)
        await service.add_events_to_memory(
            app_name="app",
            user_id="alice",
            events=[text("user", "I prefer window seats on trains.")],
            session_id="s-9",
            custom_metadata={"source": "chat"},
        )
        await service.add_memory(
            app_name="app",
            user_id="alice",
            memories=[
                MemoryEntry(
                    id="m-1",
                    author="user",
                    timestamp="2026-01-02T03:04:05.678Z",
                    content=types.Content(
                        role="user", parts=[types.Part(text="Trains beat planes.")]
                    ),
                )
            ],
        )
        response = await service.search_memory(app_name="app", user_id="alice", query="trains")
        assert (
            await service.search_memory(app_name="app", user_id="alice", query=" ")
        ).memories == []
        return list(response.memories)

    with anda.Nexus(tenancy="per_caller") as memory:
        memories = asyncio.run(main(memory))
    by_text = {entry.content.parts[0].text: entry for entry in memories}
    assert set(by_text) == {"I prefer window seats on trains.", "Trains beat planes."}
    assert by_text["I prefer window seats on trains."].custom_metadata == {"source": "chat"}
    assert by_text["Trains beat planes."].id == "m-1"
    assert by_text["Trains beat planes."].timestamp == "2026-01-02T03:04:05.678Z"


def test_a_memory_that_does_not_isolate_callers_is_refused() -> None:
    with anda.Nexus() as shared, pytest.raises(ValueError, match="per_caller"):
        memory_service(shared)
    with anda.Client("http://127.0.0.1:9") as client, pytest.raises(ValueError, match="per_caller"):
        memory_service(client)


R1 = "Remember that Ada Lovelace wrote the first program."
R2 = "Who wrote the first program?"


@pytest.mark.timeout(240)
def test_the_example_recalls_an_earlier_session_through_adks_loop(tmp_path: Path) -> None:
    # ADK sends its own load_memory tool, converted by its own Anthropic model;
    # the system prompt is the agent's, not anda's.
    tools = {"anthropic": [function_declaration_to_tool_param(load_memory._get_declaration())]}
    db = str(tmp_path / "memory")
    with StandIn([Answer("Noted.")], request=R1, model=MODEL, system=None, tools=tools) as first:
        proc = run_example("google_adk_agent.py", first, "--db", db, R1)
    assert first.failures == [], proc.stderr
    assert (proc.returncode, proc.stdout.strip()) == (0, "Noted."), proc.stderr
    recall = ToolCall("", name="load_memory", raw={"query": "first program"}, check=False)
    script = [recall, Answer("Ada Lovelace wrote it.")]
    with StandIn(script, request=R2, model=MODEL, system=None, tools=tools) as second:
        proc = run_example("google_adk_agent.py", second, "--db", db, R2)
    assert second.failures == [], proc.stderr
    assert (proc.returncode, proc.stdout.strip()) == (0, "Ada Lovelace wrote it."), proc.stderr
    [(recalled, _)] = tool_results("anthropic", second.exchanges[1].body).values()
    assert list(tool_results("anthropic", second.exchanges[1].body)) == [call_id("anthropic", 0)]
    assert R1 in recalled


def test_without_adk_the_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['google.adk'] = None\n"
        "import anda\n"
        "from anda.integrations.google_adk import memory_service\n"
        "try:\n"
        "    memory_service(anda.Nexus(tenancy='per_caller'))\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "google-adk is not installed: pip install 'anda[google-adk]'"
    assert json.loads(json.dumps(caller_for("app", "alice"))) == 'google-adk:["app", "alice"]'
