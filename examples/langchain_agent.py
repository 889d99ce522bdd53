"""A LangChain agent with anda as its long-term memory.

LangChain's own agent loop (``langchain.agents.create_agent``) with anda's two
KIP tools as ``StructuredTool``\\ s and the instructions that teach the model
KIP as its system prompt (``anda.integrations.langchain``). The agent runs
with ``ainvoke``: the tools await the memory's async calls.

Run it against OpenAI (``pip install 'anda[langchain]' langchain-openai``)::

    export OPENAI_API_KEY=sk-...
    export ANDA_DB=./agent-memory  # or --db DIR; without either, memory lasts one run
    python examples/langchain_agent.py "Remember that Ada Lovelace wrote the first program."
    python examples/langchain_agent.py "Who wrote the first program?"

The model is ``$ANDA_EXAMPLE_MODEL`` (default ``gpt-5-mini``) or ``--model``.
``OPENAI_BASE_URL`` points ``ChatOpenAI`` at any OpenAI-compatible server (the
tests point it at a local stand-in).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from langchain.agents import create_agent
from langchain_openai import ChatOpenAI

import anda
from anda.integrations.langchain import system_message, tools

DEFAULT_MODEL = "gpt-5-mini"


async def run(memory: anda.Nexus, model: str, request: str, turns: int) -> str:
    agent = create_agent(
        ChatOpenAI(model=model),
        tools=tools(memory),
        system_prompt=system_message(memory),
    )
    state = await agent.ainvoke(
        {"messages": [{"role": "user", "content": request}]},
        {"recursion_limit": 2 * turns + 1},
    )
    for message in state["messages"]:
        if message.type == "tool":
            # On stderr, so stdout carries only the answer.
            print(f"[{message.name}] {message.status}: {message.content[:300]}", file=sys.stderr)
    return str(state["messages"][-1].content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("request", help="what to ask the agent")
    parser.add_argument(
        "--db",
        default=os.environ.get("ANDA_DB") or None,
        help="store directory (default: $ANDA_DB, else an in-memory store)",
    )
    parser.add_argument("--model", default=os.environ.get("ANDA_EXAMPLE_MODEL") or DEFAULT_MODEL)
    parser.add_argument("--max-turns", type=int, default=10, help="most model calls to make")
    args = parser.parse_args()
    # The key and base URL come from OPENAI_API_KEY and OPENAI_BASE_URL.
    with anda.Nexus(args.db) as memory:
        print(asyncio.run(run(memory, args.model, args.request, args.max_turns)))


if __name__ == "__main__":
    main()
