"""A LlamaIndex agent with anda as its long-term memory.

LlamaIndex's own agent loop (``FunctionAgent``) with anda's two KIP tools as
``FunctionTool``\\ s and the instructions that teach the model KIP as its
system prompt (``anda.integrations.llamaindex``).

The model is ``ChatCompletionsLLM``, a small LlamaIndex ``FunctionCallingLLM``
defined here that talks to OpenAI's Chat Completions API through the
``openai`` SDK: it sends LlamaIndex's messages and the tools' OpenAI
definitions, and maps the reply's text and tool calls back to LlamaIndex's
``ChatMessage`` and ``ToolSelection``. (It stands in for LlamaIndex's own
provider packages, e.g. ``llama-index-llms-openai``, whose SDK pins differ
from anda's test environment; any function-calling LlamaIndex LLM can take
its place in ``FunctionAgent(llm=...)``.)

Run it against OpenAI (``pip install 'anda[llamaindex]' openai``)::

    export OPENAI_API_KEY=sk-...
    export ANDA_DB=./agent-memory  # or --db DIR; without either, memory lasts one run
    python examples/llamaindex_agent.py "Remember that Ada Lovelace wrote the first program."
    python examples/llamaindex_agent.py "Who wrote the first program?"

The model is ``$ANDA_EXAMPLE_MODEL`` (default ``gpt-5-mini``) or ``--model``.
``OPENAI_BASE_URL`` points the ``openai`` SDK at any OpenAI-compatible server
(the tests point it at a local stand-in).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import openai
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.base.llms.generic_utils import (
    achat_to_completion_decorator,
    astream_chat_to_completion_decorator,
    chat_to_completion_decorator,
    stream_chat_to_completion_decorator,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.tools import BaseTool

import anda
from anda.integrations.llamaindex import tools

DEFAULT_MODEL = "gpt-5-mini"


class ChatCompletionsLLM(FunctionCallingLLM):
    """A LlamaIndex function-calling model over the ``openai`` SDK's Chat Completions.

    Text messages and tool calls only. Its "stream" is the whole reply as one
    chunk: the agent below runs with ``streaming=False``.
    """

    model: str = Field(description="the model, as the API names it")
    _client: openai.OpenAI = PrivateAttr()
    _aclient: openai.AsyncOpenAI = PrivateAttr()

    def __init__(self, model: str, **kwargs: Any) -> None:
        super().__init__(model=model, **kwargs)
        # The key and base URL come from OPENAI_API_KEY and OPENAI_BASE_URL.
        self._client = openai.OpenAI()
        self._aclient = openai.AsyncOpenAI()

    @classmethod
    def class_name(cls) -> str:
        return "ChatCompletionsLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            model_name=self.model, is_chat_model=True, is_function_calling_model=True
        )

    async def aclose(self) -> None:
        self._client.close()
        await self._aclient.close()

    # -- tools: what FunctionAgent calls ------------------------------------------

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = ChatMessage(role="user", content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        chat: dict[str, Any] = {"messages": messages, **kwargs}
        if tools:
            # The tools' own definitions: for anda's, the engine's name,
            # description and JSON schema, unchanged.
            chat["tools"] = [tool.metadata.to_openai_tool(skip_length_check=True) for tool in tools]
            chat["parallel_tool_calls"] = allow_parallel_tool_calls
            if tool_choice in ("auto", "none", "required"):
                chat["tool_choice"] = tool_choice
            elif tool_choice:  # a tool's name
                chat["tool_choice"] = {"type": "function", "function": {"name": tool_choice}}
            elif tool_required:
                chat["tool_choice"] = "required"
        return chat

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        calls = [block for block in response.message.blocks if isinstance(block, ToolCallBlock)]
        if not calls and error_on_no_tool_call:
            raise ValueError("expected at least one tool call, the model made none")
        return [
            ToolSelection(
                tool_id=call.tool_call_id or "",
                tool_name=call.tool_name,
                tool_kwargs=_kwargs(call.tool_kwargs),
            )
            for call in calls
        ]

    # -- chat ---------------------------------------------------------------------

    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        completion = self._client.chat.completions.create(
            model=self.model, messages=_to_openai(messages), **kwargs
        )
        return _from_openai(completion)

    async def _achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        completion = await self._aclient.chat.completions.create(
            model=self.model, messages=_to_openai(messages), **kwargs
        )
        return _from_openai(completion)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._chat(messages, **kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await self._achat(messages, **kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        response = self._chat(messages, **kwargs)

        def one_chunk() -> ChatResponseGen:
            yield _as_chunk(response)

        return one_chunk()

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        response = await self._achat(messages, **kwargs)

        async def one_chunk() -> ChatResponseAsyncGen:
            yield _as_chunk(response)

        return one_chunk()

    # -- completion: a chat of one user message -------------------------------------

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return chat_to_completion_decorator(self._chat)(prompt, **kwargs)

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        return await achat_to_completion_decorator(self._achat)(prompt, **kwargs)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        return stream_chat_to_completion_decorator(self.stream_chat)(prompt, **kwargs)

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        return await astream_chat_to_completion_decorator(self.astream_chat)(prompt, **kwargs)


def _to_openai(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """LlamaIndex's messages as Chat Completions messages."""
    sent: list[dict[str, Any]] = []
    for message in messages:
        role = message.role.value
        if role == "tool":
            sent.append(
                {
                    "role": "tool",
                    "tool_call_id": message.additional_kwargs["tool_call_id"],
                    "content": message.content or "",
                }
            )
        elif role == "assistant":
            calls = [block for block in message.blocks if isinstance(block, ToolCallBlock)]
            reply: dict[str, Any] = {"role": "assistant", "content": message.content}
            if calls:
                reply["tool_calls"] = [
                    {
                        "id": call.tool_call_id,
                        "type": "function",
                        "function": {
                            "name": call.tool_name,
                            # As the model sent them (kept as text), else as JSON.
                            "arguments": call.tool_kwargs
                            if isinstance(call.tool_kwargs, str)
                            else json.dumps(call.tool_kwargs),
                        },
                    }
                    for call in calls
                ]
            sent.append(reply)
        elif role in ("system", "developer", "user"):
            sent.append({"role": role, "content": message.content or ""})
        else:
            raise ValueError(f"a {role!r} message has no Chat Completions form here")
    return sent


def _from_openai(completion: Any) -> ChatResponse:
    """A Chat Completions reply as LlamaIndex's: its text, then its tool calls."""
    message = completion.choices[0].message
    blocks: list[Any] = [TextBlock(text=message.content)] if message.content else []
    for call in message.tool_calls or []:
        if call.type == "function":
            blocks.append(
                ToolCallBlock(
                    tool_call_id=call.id,
                    tool_name=call.function.name,
                    tool_kwargs=call.function.arguments,  # JSON text, parsed when called
                )
            )
    return ChatResponse(message=ChatMessage(role="assistant", blocks=blocks), raw=completion)


def _as_chunk(response: ChatResponse) -> ChatResponse:
    return ChatResponse(
        message=response.message, raw=response.raw, delta=response.message.content or ""
    )


def _kwargs(arguments: dict[str, Any] | str) -> dict[str, Any]:
    """A tool call's arguments as a dict; {} when the model sent no JSON object
    (the tool then refuses the call, and the model reads why)."""
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


async def run(memory: anda.Nexus, model: str, request: str, turns: int) -> str:
    llm = ChatCompletionsLLM(model)
    agent = FunctionAgent(
        tools=tools(memory),
        llm=llm,
        system_prompt=anda.tools.instructions(memory),
        streaming=False,
    )
    try:
        handler = agent.run(request, max_iterations=turns)
        async for event in handler.stream_events():
            if isinstance(event, ToolCallResult):
                # On stderr, so stdout carries only the answer.
                output = event.tool_output
                status = "error" if output.is_error else "success"
                print(f"[{event.tool_name}] {status}: {output.content[:300]}", file=sys.stderr)
        return str(await handler)
    finally:
        await llm.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("request", help="what to ask the agent")
    parser.add_argument(
        "--db",
        default=os.environ.get("ANDA_DB") or None,
        help="store directory (default: $ANDA_DB, else an in-memory store)",
    )
    parser.add_argument("--model", default=os.environ.get("ANDA_EXAMPLE_MODEL") or DEFAULT_MODEL)
    parser.add_argument(
        "--max-turns", type=int, default=10, help="most agent steps (LlamaIndex's max_iterations)"
    )
    args = parser.parse_args()
    with anda.Nexus(args.db) as memory:
        print(asyncio.run(run(memory, args.model, args.request, args.max_turns)))


if __name__ == "__main__":
    main()
