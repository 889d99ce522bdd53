"""A Microsoft Agent Framework agent with anda as its long-term memory.

``context_provider(memory)`` adds anda's instructions (with a live look at what
the memory holds) and its two KIP tools before every run; Agent Framework's
own loop runs the model and the tools. With detailed errors on, a refused
command comes back to the model as a failed function result carrying the
engine's error, and it corrects itself.

Run it against OpenAI (``pip install 'anda[agent-framework]' agent-framework-openai``)::

    export OPENAI_API_KEY=sk-...
    python examples/agent_framework_agent.py --db ./memory "Remember that Ada wrote a program."

The model is ``$ANDA_EXAMPLE_MODEL`` (default ``gpt-5-mini``) or ``--model``,
over the Chat Completions API; ``OPENAI_BASE_URL`` points it at another
server (the tests point it at a local stand-in).
"""

from __future__ import annotations

import argparse
import asyncio
import os

from agent_framework import Agent
from agent_framework.openai import OpenAIChatCompletionClient

import anda
from anda.integrations.agent_framework import context_provider

DEFAULT_MODEL = "gpt-5-mini"


async def ask(memory: anda.Nexus, model: str, request: str) -> str:
    # The key and base URL come from OPENAI_API_KEY and OPENAI_BASE_URL.
    client = OpenAIChatCompletionClient(model)
    # The model reads the engine's error from a failed tool call and corrects it.
    client.function_invocation_configuration["include_detailed_errors"] = True
    agent = Agent(client=client, context_providers=[context_provider(memory)])
    response = await agent.run(request)
    return response.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("request", help="what to ask the agent")
    parser.add_argument("--db", default=os.environ.get("ANDA_DB") or None, help="store directory")
    parser.add_argument("--model", default=os.environ.get("ANDA_EXAMPLE_MODEL") or DEFAULT_MODEL)
    args = parser.parse_args()
    with anda.Nexus(args.db) as memory:
        print(asyncio.run(ask(memory, args.model, args.request)))


if __name__ == "__main__":
    main()
