"""A LangGraph agent whose store is anda, with LangMem's memory tools, one memory per user.

The agent (``langchain.agents.create_agent``, a LangGraph graph) gets
LangMem's ``manage_memory`` and ``search_memory`` tools, which read and write
the graph's store, and anda's read-only KIP tool; the store is
``anda.integrations.langgraph.AndaStore`` on a store opened with
``tenancy="per_caller"``, and namespace label 1 (the user) is the caller: each
user's memories live in a memory that user owns, which the KIP tool (run as
the same user) reads too.

Run it against OpenAI (``pip install 'anda[langgraph]' langmem langchain-openai``)::

    export OPENAI_API_KEY=sk-...
    export ANDA_DB=./agent-memory  # or --db DIR; without either, memory lasts one run
    python examples/langgraph_agent.py --user alice "Remember that I prefer dark mode."
    python examples/langgraph_agent.py --user alice "What do I prefer?"

The model is ``$ANDA_EXAMPLE_MODEL`` (default ``gpt-5-mini``) or ``--model``.
``OPENAI_BASE_URL`` points ``ChatOpenAI`` at any OpenAI-compatible server (the
tests point it at a local stand-in).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from langchain.agents import create_agent
from langchain_openai import ChatOpenAI
from langmem import create_manage_memory_tool, create_search_memory_tool

import anda
from anda.integrations.langchain import system_message, tools
from anda.integrations.langgraph import AndaStore

DEFAULT_MODEL = "gpt-5-mini"
#: Where LangMem keeps each user's memories: label 1 is the user.
NAMESPACE = ("memories", "{langgraph_user_id}")


def agent_tools(memory: anda.Nexus, user: str) -> list[Any]:
    """LangMem's tools on the graph's store, then anda's read-only KIP tool."""
    return [
        create_manage_memory_tool(namespace=NAMESPACE),
        create_search_memory_tool(namespace=NAMESPACE),
        *tools(memory, readonly=True, caller=user),
    ]


async def run(memory: anda.Nexus, user: str, model: str, request: str, turns: int) -> str:
    agent = create_agent(
        ChatOpenAI(model=model),
        tools=agent_tools(memory, user),
        system_prompt=system_message(memory, caller=user),
        store=AndaStore(memory, caller_label=1),
    )
    state = await agent.ainvoke(
        {"messages": [{"role": "user", "content": request}]},
        {"configurable": {"langgraph_user_id": user}, "recursion_limit": 2 * turns + 1},
    )
    for message in state["messages"]:
        if message.type == "tool":
            # On stderr, so stdout carries only the answer.
            print(f"[{message.name}] {message.status}: {message.content[:300]}", file=sys.stderr)
    return str(state["messages"][-1].content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("request", help="what to ask the agent")
    parser.add_argument("--user", default="alice", help="whose memory the agent uses")
    parser.add_argument(
        "--db",
        default=os.environ.get("ANDA_DB") or None,
        help="store directory (default: $ANDA_DB, else an in-memory store)",
    )
    parser.add_argument("--model", default=os.environ.get("ANDA_EXAMPLE_MODEL") or DEFAULT_MODEL)
    parser.add_argument("--max-turns", type=int, default=10, help="most model calls to make")
    args = parser.parse_args()
    # The key and base URL come from OPENAI_API_KEY and OPENAI_BASE_URL.
    with anda.Nexus(args.db, tenancy="per_caller") as memory:
        print(asyncio.run(run(memory, args.user, args.model, args.request, args.max_turns)))


if __name__ == "__main__":
    main()
