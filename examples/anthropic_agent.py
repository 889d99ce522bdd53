"""A Claude agent with anda as its long-term memory.

The model gets anda's two KIP tools and a system prompt that teaches it KIP
(with a live look at what the memory already holds); every ``tool_use`` block
it returns is run on the store by ``anda.tools.handle``, and the
``tool_result`` blocks are sent back, until the model ends its turn.

Run it against Anthropic (``pip install anda anthropic``)::

    export ANTHROPIC_API_KEY=sk-ant-...
    export ANDA_DB=./agent-memory  # or --db DIR; without either, memory lasts one run
    python examples/anthropic_agent.py "Remember that Ada Lovelace wrote the first program."
    python examples/anthropic_agent.py "Who wrote the first program?"

The model is ``$ANDA_EXAMPLE_MODEL`` (default ``claude-sonnet-4-6``) or
``--model``. The store is the ``--db`` directory, else ``$ANDA_DB``, else an
in-memory store that is gone when the script ends. ``ANTHROPIC_BASE_URL``
points the SDK at another server (the tests point it at a local stand-in).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from anthropic import Anthropic

import anda

DEFAULT_MODEL = "claude-sonnet-4-6"


def agent(client: Anthropic, memory: anda.Nexus, model: str, request: str, turns: int) -> str:
    """Calls the model until it stops asking for tools; returns its final text."""
    system = anda.tools.instructions(memory)
    tools = anda.tools.anthropic()
    messages: list[Any] = [{"role": "user", "content": request}]
    for _ in range(turns):
        response = client.messages.create(
            model=model, max_tokens=4096, system=system, tools=tools, messages=messages
        )
        calls = [block for block in response.content if block.type == "tool_use"]
        if response.stop_reason != "tool_use" or not calls:
            return "".join(block.text for block in response.content if block.type == "text")
        # The assistant turn goes back as it came; the results follow in one
        # user turn, one tool_result block per tool_use block.
        messages.append({"role": "assistant", "content": response.content})
        results = []
        for call in calls:
            result = anda.tools.handle(memory, call)
            log_call(call.name, call.input, result)
            results.append(result)
        messages.append({"role": "user", "content": results})
    raise SystemExit(f"no answer after {turns} model calls")


def log_call(name: str, arguments: Any, result: dict[str, Any]) -> None:
    # On stderr, so stdout carries only the answer.
    outcome = "error" if result["is_error"] else "ok"
    print(
        f"[{name}] {json.dumps(arguments, ensure_ascii=False)}\n"
        f"  -> {outcome}: {result['content'][:300]}",
        file=sys.stderr,
    )


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

    # The key and base URL come from ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL.
    with Anthropic() as client, anda.Nexus(args.db) as memory:
        print(agent(client, memory, args.model, args.request, args.max_turns))


if __name__ == "__main__":
    main()
