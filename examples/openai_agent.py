"""An OpenAI agent with anda as its long-term memory.

The model gets anda's two KIP tools and a system prompt that teaches it KIP
(with a live look at what the memory already holds); every tool call it makes
is run on the store by ``anda.tools.handle``, and the result is sent back,
until the model answers in text.

Run it against OpenAI (``pip install anda openai``)::

    export OPENAI_API_KEY=sk-...
    export ANDA_DB=./agent-memory  # or --db DIR; without either, memory lasts one run
    python examples/openai_agent.py "Remember that Ada Lovelace wrote the first program."
    python examples/openai_agent.py "Who wrote the first program?"

``--api responses`` uses the Responses API instead of Chat Completions. The
model is ``$ANDA_EXAMPLE_MODEL`` (default ``gpt-5-mini``) or ``--model``. The
store is the ``--db`` directory, else ``$ANDA_DB``, else an in-memory store
that is gone when the script ends. ``OPENAI_BASE_URL`` points the SDK at any
OpenAI-compatible server (the tests point it at a local stand-in).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from openai import OpenAI

import anda

DEFAULT_MODEL = "gpt-5-mini"


def chat_agent(client: OpenAI, memory: anda.Nexus, model: str, request: str, turns: int) -> str:
    """The Chat Completions loop: call the model until it stops calling tools."""
    messages: list[Any] = [
        {"role": "system", "content": anda.tools.instructions(memory)},
        {"role": "user", "content": request},
    ]
    tools = anda.tools.openai()
    for _ in range(turns):
        completion = client.chat.completions.create(model=model, messages=messages, tools=tools)
        message = completion.choices[0].message
        if not message.tool_calls:
            return message.content or ""
        # The assistant's tool calls go back into the history, each followed
        # by its result: the API refuses a tool result with no call before it.
        messages.append(message)
        for call in message.tool_calls:
            reply = anda.tools.handle(memory, call)
            log_call(call.function.name, call.function.arguments, reply["content"])
            messages.append(reply)
    raise SystemExit(f"no answer after {turns} model calls")


def responses_agent(
    client: OpenAI, memory: anda.Nexus, model: str, request: str, turns: int
) -> str:
    """The Responses loop: the same, with output items and function_call_output items."""
    instructions = anda.tools.instructions(memory)
    tools = anda.tools.openai(api="responses")
    items: list[Any] = [{"role": "user", "content": request}]
    for _ in range(turns):
        response = client.responses.create(
            model=model, instructions=instructions, input=items, tools=tools
        )
        calls = [item for item in response.output if item.type == "function_call"]
        if not calls:
            return response.output_text
        # Stateless: resend the whole conversation, the model's output items
        # (function calls, reasoning) included, rather than rely on
        # previous_response_id and server-side storage.
        items += response.output
        for call in calls:
            reply = anda.tools.handle(memory, call)
            log_call(call.name, call.arguments, reply["output"])
            items.append(reply)
    raise SystemExit(f"no answer after {turns} model calls")


def log_call(name: str, arguments: str, result: str) -> None:
    # On stderr, so stdout carries only the answer.
    print(f"[{name}] {arguments}\n  -> {result[:300]}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("request", help="what to ask the agent")
    parser.add_argument(
        "--db",
        default=os.environ.get("ANDA_DB") or None,
        help="store directory (default: $ANDA_DB, else an in-memory store)",
    )
    parser.add_argument("--model", default=os.environ.get("ANDA_EXAMPLE_MODEL") or DEFAULT_MODEL)
    parser.add_argument("--api", choices=("chat", "responses"), default="chat")
    parser.add_argument("--max-turns", type=int, default=10, help="most model calls to make")
    args = parser.parse_args()

    agent = chat_agent if args.api == "chat" else responses_agent
    # The key and base URL come from OPENAI_API_KEY and OPENAI_BASE_URL.
    with OpenAI() as client, anda.Nexus(args.db) as memory:
        print(agent(client, memory, args.model, args.request, args.max_turns))


if __name__ == "__main__":
    main()
