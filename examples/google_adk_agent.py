"""A Google ADK agent whose memory service is anda: one memory per app and user.

ADK's ``Runner`` runs the agent; after the first conversation the app adds the
session to memory (``add_session_to_memory``), and in a new session the agent
recalls it with ADK's own ``load_memory`` tool, which calls the service's
``search_memory`` (the engine's keyword SEARCH). The store is opened with
``tenancy="per_caller"``, so each user's memories are the engine's to keep
apart.

Run it against Anthropic (``pip install 'anda[google-adk]' anthropic``)::

    export ANTHROPIC_API_KEY=sk-ant-...
    python examples/google_adk_agent.py --db ./memory \\
        "Remember that Ada wrote a program." "Who wrote a program?"

The first request is one session, the second a new one. The model is
``$ANDA_EXAMPLE_MODEL`` (default ``claude-sonnet-4-6``) or ``--model``, through
ADK's Anthropic model; ``ANTHROPIC_BASE_URL`` points the SDK at another
server (the tests point it at a local stand-in).
"""

from __future__ import annotations

import argparse
import asyncio
import os

from google.adk.agents import LlmAgent
from google.adk.models.anthropic_llm import AnthropicLlm
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.adk.tools import load_memory
from google.genai import types

import anda
from anda.integrations.google_adk import memory_service

DEFAULT_MODEL = "claude-sonnet-4-6"
APP = "memory-example"
USER = "ada-fan"


async def converse(runner: Runner, sessions: InMemorySessionService, request: str) -> str:
    """One new session: sends the request, returns the final answer, then adds
    the session to memory."""
    session = await sessions.create_session(app_name=APP, user_id=USER)
    message = types.Content(role="user", parts=[types.Part(text=request)])
    answer = ""
    async for event in runner.run_async(user_id=USER, session_id=session.id, new_message=message):
        if event.is_final_response() and event.content and event.content.parts:
            answer = "".join(part.text or "" for part in event.content.parts)
    done = await sessions.get_session(app_name=APP, user_id=USER, session_id=session.id)
    await runner.memory_service.add_session_to_memory(done)
    return answer


async def main_async(db: str | None, model: str, requests: list[str]) -> None:
    with anda.Nexus(db, tenancy="per_caller") as memory:
        agent = LlmAgent(
            name="assistant",
            model=AnthropicLlm(model=model),
            instruction="Answer briefly. Use load_memory to recall earlier conversations.",
            tools=[load_memory],
        )
        sessions = InMemorySessionService()
        runner = Runner(
            agent=agent,
            app_name=APP,
            session_service=sessions,
            memory_service=memory_service(memory),
        )
        for request in requests:
            print(await converse(runner, sessions, request))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("requests", nargs="+", help="one request per new session")
    parser.add_argument("--db", default=os.environ.get("ANDA_DB") or None, help="store directory")
    parser.add_argument("--model", default=os.environ.get("ANDA_EXAMPLE_MODEL") or DEFAULT_MODEL)
    args = parser.parse_args()
    asyncio.run(main_async(args.db, args.model, args.requests))


if __name__ == "__main__":
    main()
