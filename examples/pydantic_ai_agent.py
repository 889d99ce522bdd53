"""A pydantic-ai agent with anda as its long-term memory, in one argument.

``toolset(memory)`` gives the agent anda's two KIP tools and, through the
toolset's instructions, a system prompt that teaches KIP (with a live look at
what the memory holds). pydantic-ai's own loop runs the model, the tool calls
and the retries; a refused command comes back to the model as a failed tool
with the engine's error, and it corrects itself.

Run it against OpenAI (``pip install 'anda[pydantic-ai]' 'pydantic-ai-slim[openai]'``)::

    export OPENAI_API_KEY=sk-...
    python examples/pydantic_ai_agent.py --db ./agent-memory "Remember that Ada wrote a program."

The model is ``$ANDA_EXAMPLE_MODEL`` (default ``gpt-5-mini``) or ``--model``,
over OpenAI's Chat Completions API; ``OPENAI_BASE_URL`` points it at another
server (the tests point it at a local stand-in).
"""

from __future__ import annotations

import argparse
import os

from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

import anda
from anda.integrations.pydantic_ai import toolset

DEFAULT_MODEL = "gpt-5-mini"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("request", help="what to ask the agent")
    parser.add_argument("--db", default=os.environ.get("ANDA_DB") or None, help="store directory")
    parser.add_argument("--model", default=os.environ.get("ANDA_EXAMPLE_MODEL") or DEFAULT_MODEL)
    args = parser.parse_args()

    # The key and base URL come from OPENAI_API_KEY and OPENAI_BASE_URL.
    model = OpenAIChatModel(
        args.model, provider=OpenAIProvider(base_url=os.environ.get("OPENAI_BASE_URL"))
    )
    with anda.Nexus(args.db) as memory:
        agent = Agent(model, toolsets=[toolset(memory)])
        print(agent.run_sync(args.request).output)


if __name__ == "__main__":
    main()
