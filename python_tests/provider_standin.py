"""A local stand-in for the model providers' HTTP APIs, for the example agents.

It speaks just enough of OpenAI's ``POST /v1/chat/completions`` and
``POST /v1/responses`` and Anthropic's ``POST /v1/messages`` for the real SDKs
to talk to it: each request is answered with the next step of a script (a tool
call, or a final text), in the JSON shapes the real APIs return. Before
answering, it checks the request the way the real API would need it to be:
the key, the model, anda's tool definitions, a system prompt that teaches KIP,
and for every tool call made so far, the call followed by its result, with the
outcome the script expects. A request that fails a check is recorded in
``failures`` and answered with a 400 error, so the agent fails loudly too.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anda

API_KEY = "test-key"
#: The KIP syntax card, which a system prompt that teaches KIP carries whole.
KIP_CARD = anda.tools.KIP_SYNTAX.strip()

_PATHS = {
    "/v1/chat/completions": "chat",
    "/v1/responses": "responses",
    "/v1/messages": "anthropic",
}


@dataclass(frozen=True)
class ToolCall:
    """A step where the model calls an anda tool.

    ``expect`` is what the tool result sent back for it must report: the
    response status ``"succeeded"``, or else the engine's error code.
    """

    command: str
    parameters: dict[str, Any] | None = None
    expect: str = "succeeded"
    name: str = "execute_kip"
    #: The arguments exactly as the model sends them, for a tool whose schema
    #: is not the engine's (e.g. a strict-mode variant); else built from the above.
    raw: dict[str, Any] | None = None
    #: False for a tool that is not anda's (e.g. LangMem's), whose result is
    #: not a KIP response: only its place in the history is checked.
    check: bool = True

    @property
    def arguments(self) -> dict[str, Any]:
        if self.raw is not None:
            return self.raw
        arguments: dict[str, Any] = {"command": self.command}
        if self.parameters is not None:
            arguments["parameters"] = self.parameters
        return arguments


@dataclass(frozen=True)
class Answer:
    """A step where the model answers in text, ending the agent's loop."""

    text: str


Step = ToolCall | Answer


@dataclass
class Exchange:
    """One request the stand-in received, and what it answered."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int = 0
    reply: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Seen:
    """A tool call or a tool result found in a request's conversation history."""

    kind: str  # "call" or "result"
    call_id: str
    name: str = ""
    arguments: Any = None
    content: str = ""
    is_error: bool | None = None


class StandIn:
    """The stand-in server: ``with StandIn(script, ...) as api: api.url``."""

    def __init__(
        self,
        script: Sequence[Step],
        *,
        request: str,
        model: str,
        tools: dict[str, list[dict[str, Any]]] | None = None,
        system: str | None = KIP_CARD,
    ) -> None:
        self.script = list(script)
        # A text the system prompt must carry (None: no check, for an agent
        # whose memory is not anda's tools, e.g. an ADK memory service).
        self.system = system
        self.request = request
        self.model = model
        # The tools each API must be sent (api -> list), where they are not
        # exactly anda.tools' (e.g. a framework's strict-mode variant).
        self.tools = tools or {}
        self.exchanges: list[Exchange] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # -- one request ----------------------------------------------------------

    def answer(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> Exchange:
        with self._lock:
            exchange = Exchange(path, headers, body)
            round_ = len(self.exchanges)
            self.exchanges.append(exchange)
            api = _PATHS.get(path)
            problems = self._check(api, round_, headers, body) if api else [f"no API at {path}"]
            if problems:
                self.failures += [f"request {round_} to {path}: {problem}" for problem in problems]
                exchange.status, exchange.reply = 400, _error(api, "; ".join(problems))
            else:
                assert api is not None
                exchange.status, exchange.reply = 200, _reply(api, round_, self.script, body)
            return exchange

    def _check(
        self, api: str, round_: int, headers: dict[str, str], body: dict[str, Any]
    ) -> list[str]:
        if round_ >= len(self.script):
            return [f"the script has only {len(self.script)} steps"]
        problems = []
        # Anthropic's API takes the key as x-api-key or as a bearer token (the
        # pinned SDK sends the latter); OpenAI's only as a bearer token.
        sent = {headers.get("authorization")}
        if api == "anthropic":
            sent.add(f"Bearer {headers.get('x-api-key')}")
        if f"Bearer {API_KEY}" not in sent:
            problems.append("the test key was not sent")
        if api == "anthropic" and not headers.get("anthropic-version"):
            problems.append("no anthropic-version header")
        if body.get("model") != self.model:
            problems.append(f"model {body.get('model')!r}, expected {self.model!r}")
        if body.get("tools") != self.tools.get(api, _expected_tools(api)):
            problems.append(f"tools are not anda's: {body.get('tools')!r}")
        system, user, seen = _conversation(api, body)
        if self.system is not None and self.system not in system:
            problems.append("the system prompt does not carry the KIP syntax card")
        if user != self.request:
            problems.append(f"first user message {user!r}, expected {self.request!r}")
        problems += self._check_history(api, round_, seen)
        return problems

    def _check_history(self, api: str, round_: int, seen: list[_Seen]) -> list[str]:
        """Every call made so far must be in the history, then its result."""
        problems = []
        calls = {item.call_id: item for item in seen if item.kind == "call"}
        results = {item.call_id: item for item in seen if item.kind == "result"}
        for index, step in enumerate(self.script[:round_]):
            if not isinstance(step, ToolCall):
                continue
            made = call_id(api, index)
            call, result = calls.get(made), results.get(made)
            if call is None or (call.name, call.arguments) != (step.name, step.arguments):
                problems.append(f"the history lacks tool call {made} as it was made: {call}")
            if result is None:
                problems.append(f"no tool result for {made}")
                continue
            if call is not None and seen.index(result) < seen.index(call):
                problems.append(f"the result for {made} comes before its call")
            if step.check:
                problems += _check_result(made, step.expect, result)
        extra = set(results) - {call_id(api, index) for index in range(round_)}
        if extra:
            problems.append(f"results for calls never made: {sorted(extra)}")
        return problems


def _check_result(made: str, expect: str, result: _Seen) -> list[str]:
    content = result.content
    problems = []
    wrapped = _json_object(content)
    if (
        isinstance(wrapped, dict)
        and list(wrapped) == ["error"]
        and isinstance(wrapped["error"], str)
    ):
        # A failed tool result wrapped for a provider with no error flag
        # (pydantic-ai sends {"error": <text>} to OpenAI).
        content = wrapped["error"]
    if isinstance(content, str) and "\nresponse: " in content:
        # A framework's failed tool (anda.integrations.tool_error_text): the
        # typed error on the first line, then the whole response.
        summary, content = content.split("\nresponse: ", 1)
        if expect not in summary:
            problems.append(f"the error for {made} does not name {expect}: {summary!r}")
    try:
        response = json.loads(content)
    except (TypeError, ValueError):
        return [f"the result for {made} is not a KIP response: {result.content!r}"]
    if expect == "succeeded":
        if response.get("status") != "succeeded":
            problems.append(f"the result for {made} did not succeed: {result.content}")
    elif expect not in _error_codes(response):
        problems.append(f"the result for {made} is not a {expect} error: {result.content}")
    if result.is_error is not None and result.is_error != (expect != "succeeded"):
        problems.append(f"the result for {made} has is_error={result.is_error}")
    return problems


def _error_codes(response: dict[str, Any]) -> list[str]:
    # The engine reports an error for the whole request at the top, and one
    # for an operation in that operation's result.
    errors = [response.get("error")]
    errors += [item.get("error") for item in response.get("results") or []]
    return [error["code"] for error in errors if isinstance(error, dict) and "code" in error]


def _expected_tools(api: str) -> list[dict[str, Any]]:
    if api == "anthropic":
        return anda.tools.anthropic()
    return anda.tools.openai(api="chat" if api == "chat" else "responses")


def call_id(api: str, index: int) -> str:
    """The id of the tool call the stand-in makes at step ``index``.

    Shaped like the real ids; the index makes each one traceable to its step.
    """
    if api == "anthropic":
        return f"toolu_01StandIn{index:04d}"
    return f"call_StandIn{index:04d}"


# -- reading a request's conversation -------------------------------------------


def tool_results(api: str, body: dict[str, Any]) -> dict[str, tuple[str, bool | None]]:
    """The tool results a request sends back: call id -> (content, is_error).

    ``is_error`` is ``None`` for OpenAI, whose tool results have no such flag.
    """
    _, _, seen = _conversation(api, body)
    return {item.call_id: (item.content, item.is_error) for item in seen if item.kind == "result"}


def _conversation(api: str, body: dict[str, Any]) -> tuple[str, Any, list[_Seen]]:
    """The system prompt, the first user message, and the tool calls and
    results of the history, in order."""
    if api == "chat":
        return _chat_conversation(body)
    if api == "responses":
        return _responses_conversation(body)
    return _anthropic_conversation(body)


def _chat_conversation(body: dict[str, Any]) -> tuple[str, Any, list[_Seen]]:
    messages = body.get("messages") or []
    system = "".join(
        message.get("content") or ""
        for message in messages
        if message.get("role") in ("system", "developer")
    )
    users = [message.get("content") for message in messages if message.get("role") == "user"]
    seen = []
    for message in messages:
        if message.get("role") == "assistant":
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                seen.append(_Seen("call", call.get("id"), function.get("name"), _json(function)))
        elif message.get("role") == "tool":
            seen.append(
                _Seen("result", message.get("tool_call_id"), content=message.get("content"))
            )
    return system, users[0] if users else None, seen


def _responses_conversation(body: dict[str, Any]) -> tuple[str, Any, list[_Seen]]:
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    items = items or []
    users = [item.get("content") for item in items if item.get("role") == "user"]
    seen = []
    for item in items:
        if item.get("type") == "function_call":
            seen.append(_Seen("call", item.get("call_id"), item.get("name"), _json(item)))
        elif item.get("type") == "function_call_output":
            seen.append(_Seen("result", item.get("call_id"), content=item.get("output")))
    return body.get("instructions") or "", users[0] if users else None, seen


def _anthropic_conversation(body: dict[str, Any]) -> tuple[str, Any, list[_Seen]]:
    system = body.get("system") or ""
    if isinstance(system, list):
        system = "".join(block.get("text", "") for block in system)
    messages = body.get("messages") or []
    users = [
        _block_text(message.get("content")) for message in messages if message.get("role") == "user"
    ]
    seen = []
    for message in messages:
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if block.get("type") == "tool_use":
                seen.append(_Seen("call", block.get("id"), block.get("name"), block.get("input")))
            elif block.get("type") == "tool_result":
                seen.append(
                    _Seen(
                        "result",
                        block.get("tool_use_id"),
                        content=_block_text(block.get("content")),
                        # None when left out (Anthropic then reads it as false):
                        # some frameworks never send the flag.
                        is_error=block.get("is_error"),
                    )
                )
    return system, users[0] if users else None, seen


def _block_text(content: Any) -> Any:
    """Content that is a list of text blocks, as its text; other content as it is."""
    if (
        isinstance(content, list)
        and content
        and all(isinstance(block, dict) and block.get("type") == "text" for block in content)
    ):
        return "".join(block.get("text", "") for block in content)
    return content


def _json_object(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def _json(holder: dict[str, Any]) -> Any:
    # OpenAI sends arguments as a JSON string.
    try:
        return json.loads(holder.get("arguments") or "")
    except ValueError:
        return holder.get("arguments")


# -- the answers, in each API's shape --------------------------------------------

_USAGE_CHAT = {
    "prompt_tokens": 1200,
    "completion_tokens": 60,
    "total_tokens": 1260,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
_USAGE_RESPONSES = {
    "input_tokens": 1200,
    "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
    "output_tokens": 60,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 1260,
}
_USAGE_ANTHROPIC = {
    "input_tokens": 1200,
    "output_tokens": 60,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "service_tier": "standard",
}
_CREATED = 1_760_000_000


def _reply(api: str, round_: int, script: list[Step], body: dict[str, Any]) -> dict[str, Any]:
    step = script[round_]
    if api == "chat":
        return _chat_reply(round_, step, body)
    if api == "responses":
        return _responses_reply(round_, step, body)
    return _anthropic_reply(round_, step, body)


def _chat_reply(round_: int, step: Step, body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
    if isinstance(step, ToolCall):
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": call_id("chat", round_),
                "type": "function",
                "function": {"name": step.name, "arguments": json.dumps(step.arguments)},
            }
        ]
        finish_reason = "tool_calls"
    else:
        message["content"] = step.text
        finish_reason = "stop"
    return {
        "id": f"chatcmpl-StandIn{round_:04d}",
        "object": "chat.completion",
        "created": _CREATED + round_,
        "model": body["model"],
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": _USAGE_CHAT,
        "service_tier": "default",
        "system_fingerprint": None,
    }


def _responses_reply(round_: int, step: Step, body: dict[str, Any]) -> dict[str, Any]:
    if isinstance(step, ToolCall):
        item: dict[str, Any] = {
            "id": f"fc_StandIn{round_:04d}",
            "type": "function_call",
            "status": "completed",
            "arguments": json.dumps(step.arguments),
            "call_id": call_id("responses", round_),
            "name": step.name,
        }
    else:
        item = {
            "id": f"msg_StandIn{round_:04d}",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": step.text, "annotations": [], "logprobs": []}
            ],
        }
    return {
        "id": f"resp_StandIn{round_:04d}",
        "object": "response",
        "created_at": _CREATED + round_,
        "completed_at": _CREATED + round_ + 1,
        "status": "completed",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": None,
        "max_tool_calls": None,
        "model": body["model"],
        "output": [item],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": body.get("tools", []),
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _USAGE_RESPONSES,
        "user": None,
        "metadata": {},
    }


def _anthropic_reply(round_: int, step: Step, body: dict[str, Any]) -> dict[str, Any]:
    if isinstance(step, ToolCall):
        content: list[dict[str, Any]] = [
            {"type": "text", "text": "Let me check my memory."},
            {
                "type": "tool_use",
                "id": call_id("anthropic", round_),
                "name": step.name,
                "input": step.arguments,
            },
        ]
        stop_reason = "tool_use"
    else:
        content = [{"type": "text", "text": step.text}]
        stop_reason = "end_turn"
    return {
        "id": f"msg_01StandIn{round_:04d}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": _USAGE_ANTHROPIC,
    }


def _error(api: str | None, message: str) -> dict[str, Any]:
    if api == "anthropic":
        return {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": message},
        }
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    }


# -- HTTP -------------------------------------------------------------------------


def _handler(standin: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1 with a Content-Length on every reply: the SDKs keep connections alive.
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"unparsed": raw.decode("utf-8", "replace")}
            exchange = standin.answer(self.path, headers, body)
            payload = json.dumps(exchange.reply).encode()
            self.send_response(exchange.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-request-id", f"req_StandIn{len(standin.exchanges):04d}")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the exchanges are recorded; no noise on stderr

    return Handler
