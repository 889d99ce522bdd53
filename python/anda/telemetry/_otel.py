"""The observer :func:`anda.telemetry.instrument` installs: a span and three
metrics per memory call, a span per HTTP request ``anda serve`` answers, and
the trace context a :class:`anda.Client` sends along. Imported only then."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

import anda
from anda.errors import first_error
from anda.telemetry import _kinds

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from anda._base import BaseMemory

Response = dict[str, Any]

#: Buckets of the call duration, in seconds: a command takes tens of
#: microseconds to seconds.
DURATION_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: The buckets the HTTP semantic conventions advise for request durations.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
#: The routes of ``anda serve`` whose path is the route; the inspector's
#: pages are all under ``/view``.
ROUTES = frozenset({"/", "/kip", "/changes", "/mcp"})


class Telemetry:
    """Spans and metrics for memory calls, under the GenAI semantic
    conventions for memory operations (``gen_ai.operation.name``,
    ``gen_ai.memory.*``) and KIP's own attributes (``anda.kip.*``)."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
        capture_values: bool,
    ) -> None:
        self.capture_values = capture_values
        self._tracer = trace.get_tracer("anda", anda.__version__, tracer_provider)
        meter = metrics.get_meter("anda", anda.__version__, meter_provider)
        self._calls = meter.create_counter(
            "anda.memory.calls", unit="{call}", description="Memory calls made."
        )
        self._errors = meter.create_counter(
            "anda.memory.errors",
            unit="{error}",
            description="Memory calls that failed: refused by the engine, or raised.",
        )
        self._duration = meter.create_histogram(
            "anda.memory.duration",
            unit="s",
            description="How long memory calls took.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._requests = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=HTTP_BUCKETS,
        )

    # -- memory calls ------------------------------------------------------------------

    def call(
        self,
        memory: BaseMemory,
        call: str,
        subject: Any,
        parameters: Any,
        primitive: Callable[..., Response],
        args: tuple[Any, ...],
    ) -> Response:
        with self._observed(memory, call, subject, parameters) as observed:
            response = primitive(*args)
            observed.answered(response)
        return response

    async def call_async(
        self,
        memory: BaseMemory,
        call: str,
        subject: Any,
        parameters: Any,
        primitive: Callable[..., Awaitable[Response]],
        args: tuple[Any, ...],
    ) -> Response:
        with self._observed(memory, call, subject, parameters) as observed:
            response = await primitive(*args)
            observed.answered(response)
        return response

    @contextmanager
    def _observed(
        self, memory: BaseMemory, call: str, subject: Any, parameters: Any
    ) -> Iterator[_Call]:
        """The call's span, current while the call runs; an exception ends it."""
        observed = _Call(self, memory, call, subject, parameters)
        token = context.attach(trace.set_span_in_context(observed.span))
        try:
            yield observed
        except BaseException as err:
            observed.raised(err)
            raise
        finally:
            context.detach(token)

    # -- HTTP --------------------------------------------------------------------------

    def inject(self, headers: MutableMapping[str, str]) -> None:
        propagate.inject(headers)

    async def serve(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """One request to ``anda serve``: a SERVER span under the caller's
        trace (``traceparent``), with the HTTP semantic conventions'
        attributes; never a header's value, a body or a query."""
        carrier = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        method = scope["method"]
        path = scope["path"]
        route = _route(path)
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": path,
            "url.scheme": scope.get("scheme", "http"),
        }
        if route is not None:
            attributes["http.route"] = route
        server = scope.get("server")
        if server and server[1] is not None:
            attributes["server.address"], attributes["server.port"] = server[0], server[1]
        status = {"code": 0}

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        name = f"{method} {route}" if route else method
        started = time.perf_counter()
        with self._tracer.start_as_current_span(
            name,
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes=attributes,
        ) as span:
            try:
                await app(scope, receive, observed_send)
            finally:
                code = status["code"]
                measured = {k: attributes[k] for k in ("http.request.method", "url.scheme")}
                if route is not None:
                    measured["http.route"] = route
                if code:
                    span.set_attribute("http.response.status_code", code)
                    measured["http.response.status_code"] = code
                if code >= 500 or not code:
                    error = str(code) if code else "_OTHER"
                    span.set_attribute("error.type", error)
                    span.set_status(Status(StatusCode.ERROR))
                    measured["error.type"] = error
                self._requests.record(time.perf_counter() - started, measured)


class _Call:
    """One memory call being observed: its span, open until it ends."""

    __slots__ = ("_measured", "_started", "_telemetry", "call", "kinds", "operation", "span")

    def __init__(
        self, telemetry: Telemetry, memory: BaseMemory, call: str, subject: Any, parameters: Any
    ) -> None:
        self._telemetry = telemetry
        self.call = call
        texts = _kinds.command_texts(call, subject)
        self.kinds = [_kinds.kind(text) for text in texts]
        self.operation = _kinds.operation(self.kinds)
        command = _kinds.summary(self.kinds)
        client = isinstance(memory, anda.Client)
        self._measured: dict[str, Any] = {
            "gen_ai.operation.name": self.operation,
            "anda.kip.command": command,
            "anda.memory.type": type(memory).__name__,
        }
        attributes: dict[str, Any] = {
            **self._measured,
            "anda.call": call,
            "anda.kip.commands": self.kinds,
        }
        if client:
            attributes.update(_server_of(memory))
        if telemetry.capture_values:
            attributes.update(_values(call, texts, subject, parameters, self.operation))
        self.span = telemetry._tracer.start_span(
            self.operation,
            kind=SpanKind.CLIENT if client else SpanKind.INTERNAL,
            attributes=attributes,
        )
        self._started = time.perf_counter()

    def answered(self, response: Response) -> None:
        """The primitive answered: the engine's response, whatever its status."""
        status = response.get("status")
        ended: dict[str, Any] = {"anda.kip.status": str(status)}
        results = response.get("results")
        if isinstance(results, list):
            space = _space(results)
            if space is not None:
                ended["gen_ai.memory.store.id"] = ended["anda.kip.space_id"] = space
            count = _record_count(self.operation, self.kinds, results)
            if count is not None:
                ended["gen_ai.memory.record.count"] = count
        if status == "succeeded":
            self.span.set_attributes(ended)
            self._end(None)
            return
        code = first_error(response).get("code")
        error = code if isinstance(code, str) and code else "_OTHER"
        ended["anda.kip.error.code"] = error
        self.span.set_attributes(ended)
        self.span.set_status(Status(StatusCode.ERROR, f"{status}: {error}"))
        self._end(error)

    def raised(self, err: BaseException) -> None:
        """The primitive raised: the call has no response."""
        self.span.record_exception(err)
        self.span.set_attribute("anda.kip.status", "error")
        self.span.set_status(Status(StatusCode.ERROR, type(err).__name__))
        self._end(type(err).__qualname__)

    def _end(self, error: str | None) -> None:
        elapsed = time.perf_counter() - self._started
        telemetry = self._telemetry
        measured = self._measured
        if error is not None:
            self.span.set_attribute("error.type", error)
            measured = {**measured, "error.type": error}
            telemetry._errors.add(1, measured)
        telemetry._calls.add(1, measured)
        telemetry._duration.record(elapsed, measured)
        self.span.end()


def _route(path: str) -> str | None:
    """A path's route, so that spans and metrics have few names."""
    if path in ROUTES:
        return path
    if path == "/view" or path.startswith("/view/"):
        return "/view"
    return None


def _server_of(memory: Any) -> dict[str, Any]:
    """``server.address`` and ``server.port`` of a Client's server."""
    import urllib.parse

    parts = urllib.parse.urlsplit(memory.url)
    found: dict[str, Any] = {"server.address": parts.hostname or ""}
    port = parts.port or (443 if parts.scheme == "https" else 80)
    found["server.port"] = port
    return found


def _space(results: list[Any]) -> str | None:
    """The Space the call ran in, as the engine reports it per operation."""
    for result in results:
        if isinstance(result, dict):
            space = (result.get("context") or {}).get("space_id")
            if isinstance(space, str):
                return space
    return None


def _record_count(operation: str, kinds: list[str], results: list[Any]) -> int | None:
    """Records a search returned (its rows), or the writes a call attempted
    (unknown when one is a ``MUTATE`` transaction of any number of them)."""
    if operation != "search_memory":
        return None if "MUTATE" in kinds else len(kinds)
    rows = [r.get("result") for r in results if isinstance(r, dict)]
    lists = [len(row) for row in rows if isinstance(row, list)]
    return sum(lists) if lists else None


def _values(
    call: str, texts: list[Any], subject: Any, parameters: Any, operation: str
) -> dict[str, Any]:
    """What the call was given (opt-in): its commands and its values."""
    commands = [text for text in texts if isinstance(text, str)]
    found: dict[str, Any] = {"anda.kip.request": _json(call, subject, parameters)}
    if commands:
        found["anda.kip.command.text"] = commands
        if operation == "search_memory":
            found["gen_ai.memory.query.text"] = "\n".join(commands)
    return found


def _json(call: str, subject: Any, parameters: Any) -> str:
    if call == "call_tool" and isinstance(subject, str):
        return subject
    if call == "execute_kip":
        if isinstance(subject, str):
            subject = {"command": subject}
        else:
            subject = {"operations": [{"command": c, "parameters": p} for c, p in subject]}
        if parameters is not None:
            subject["parameters"] = parameters
    elif call == "bulk_write":
        subject = [{"command": c, "parameters": p} for c, p in subject]
    return json.dumps(subject, ensure_ascii=False, default=str)
