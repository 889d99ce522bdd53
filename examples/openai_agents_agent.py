"""An OpenAI Agents SDK agent with anda as its long-term memory.

The SDK's own loop (``Runner.run``) with anda's two KIP tools as
``FunctionTool``\\ s and instructions that give the model the memory's live
primer before each run (``anda.integrations.openai_agents``). ``--strict``
uses the tools' strict-mode variant (KIP parameters sent as JSON text).

Run it against OpenAI (``pip install 'anda[openai-agents]'``)::

    export OPENAI_API_KEY=sk-...
    export ANDA_DB=./agent-memory  # or --db DIR; without either, memory lasts one run
    python examples/openai_agents_agent.py "Remember that Ada Lovelace wrote the first program."
    python examples/openai_agents_agent.py --strict "Who wrote the first program?"

The model is ``$ANDA_EXAMPLE_MODEL`` (default ``gpt-5-mini``) or ``--model``.
``OPENAI_BASE_URL`` points the SDK at any OpenAI-compatible server with the
Responses API (the tests point it at a local stand-in, with tracing off:
``OPENAI_AGENTS_DISABLE_TRACING=1``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from agents import Agent, Runner

import anda
from anda.integrations.openai_agents import instructions, tools

DEFAULT_MODEL = "gpt-5-mini"


async def run(memory: anda.Nexus, model: str, request: str, turns: int, strict: bool) -> str:
    agent = Agent(
        name="Assistant with memory",
        instructions=instructions(memory),
        tools=tools(memory, strict=strict),
        model=model,
    )
    result = await Runner.run(agent, request, max_turns=turns)
    for item in result.new_items:
        if item.type == "tool_call_output_item":
            # On stderr, so stdout carries only the answer.
            print(f"[tool] {str(item.output)[:300]}", file=sys.stderr)
    return str(result.final_output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("request", help="what to ask the agent")
    parser.add_argument(
        "--db",
        default=os.environ.get("ANDA_DB") or None,
        help="store directory (default: $ANDA_DB, else an in-memory store)",
    )
    parser.add_argument("--model", default=os.environ.get("ANDA_EXAMPLE_MODEL") or DEFAULT_MODEL)
    parser.add_argument("--strict", action="store_true", help="the strict-mode tools")
    parser.add_argument("--max-turns", type=int, default=10, help="most model calls to make")
    args = parser.parse_args()
    # The key and base URL come from OPENAI_API_KEY and OPENAI_BASE_URL.
    with anda.Nexus(args.db) as memory:
        answer = asyncio.run(run(memory, args.model, args.request, args.max_turns, args.strict))
    print(answer)


if __name__ == "__main__":
    main()
