"""The ASGI application: routes, the request guard, and engine calls no
deadline can cut short."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import anda
from anda import mcp as anda_mcp
from anda._calls import READONLY_TOOL, TOOLS, ToolResult, failure, invalid_envelope, may_write
from anda._changes import Signal, commit_signal, committed
from anda.errors import AndaError, MemoryClosedError, first_error
from anda.server import _audit, _wire
from anda.server._feed import Feeds
from anda.server._telemetry import ObservedRequests
from anda.view import _web as _view

_log = logging.getLogger("anda.server")

#: Largest request body accepted, in bytes (as Anda's Rust server).
DEFAULT_MAX_BODY = 2 * 1024 * 1024
#: Seconds a request may take to arrive, and its KIP execution to answer.
DEFAULT_TIMEOUT = 30.0
#: Requests (and engine calls outliving their answer) served at once.
DEFAULT_MAX_IN_FLIGHT = 64

# Where the guard leaves the authenticated caller for the routes.
_CALLER = "anda.caller"
_LOOPBACK_NAMES = frozenset({"localhost"})


def create_app(
    memory: anda.Memory,
    *,
    api_keys: Mapping[str, str | None] | None = None,
    caller: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    timeout: float = DEFAULT_TIMEOUT,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    close_memory: bool = True,
    audit_log: str | os.PathLike[str] | None = None,
    log_retention_days: int = _audit.DEFAULT_RETENTION_DAYS,
    max_logged_request_bytes: int = _audit.DEFAULT_MAX_LOGGED_REQUEST_BYTES,
) -> Starlette:
    """The HTTP application over ``memory``: KIP at ``/kip``, MCP at ``/mcp``,
    the change feed at ``/changes``, the inspector (a read-only web page) at
    ``/view``.

    Args:
        memory: any :class:`anda.Memory`, usually the :class:`anda.Nexus`
            this process owns.
        api_keys: bearer keys, each mapped to the caller id its requests run
            as (``None``: ``caller``). Without keys nothing is authenticated,
            so only requests addressed to a loopback host from no other
            origin are served (a web page must not reach a local memory).
        caller: who requests run as when their key maps to ``None``, or when
            there are no keys.
        max_body: the largest request body, in bytes (413 beyond it).
        timeout: seconds for a request body to arrive and for its KIP
            execution to answer (408 beyond either). A write that overruns
            keeps running and its answer says its outcome is unknown.
        max_in_flight: requests served at once (429 beyond it), counting
            engine calls that outlived their answer.
        close_memory: close ``memory`` when the application shuts down,
            after every running engine call has finished.
        audit_log: where the audit log of every request is kept: a SQLite
            file path, or ``":memory:"``. ``None`` (the default):
            ``anda.audit.sqlite`` inside a directory store, else memory. It
            is read with the ``list_logs`` method (see
            :meth:`anda.Client.list_logs`).
        log_retention_days: days an audit log entry is kept; 0 keeps every
            entry.
        max_logged_request_bytes: the largest request an entry stores
            whole (at least 256); a larger one is stored cut, with a note.

    ``GET /`` answers service information, unauthenticated, for probes (and
    is the one route the audit log leaves out). ``GET /changes`` streams the
    committed changes as server-sent events;
    ``app.state.feeds.stop()`` ends those streams, which a host must call as
    its shutdown begins (``python -m anda serve`` does), since an ASGI server
    waits for open streams before it shuts the application down. ``/view/``
    is the page of :mod:`anda.view`, behind the same keys: a browser gives
    the key as the password of HTTP Basic authentication (any user name),
    and its reads run as that key's caller, on the read-only path.

    >>> import anda
    >>> from anda.server import create_app
    >>> from starlette.testclient import TestClient
    >>> envelope = {"kip": "2.0", "operations": [{"command": "DESCRIBE PRIMER"}]}
    >>> with anda.Nexus() as memory:
    ...     app = create_app(memory, api_keys={"s3cret": None}, close_memory=False)
    ...     with TestClient(app) as http:
    ...         refused = http.post("/kip", json={"method": "execute_kip", "params": envelope})
    ...         answer = http.post(
    ...             "/kip",
    ...             json={"method": "execute_kip", "params": envelope},
    ...             headers={"Authorization": "Bearer s3cret"},
    ...         )
    >>> refused.status_code, answer.status_code, answer.json()["status"]
    (401, 200, 'succeeded')
    """
    if not isinstance(memory, anda.Memory):
        raise TypeError(f"memory must be an anda.Memory, not {type(memory).__name__}")
    keys = _checked_keys(api_keys, caller)
    _positive("max_body", max_body, int)
    _positive("timeout", timeout, (int, float))
    _positive("max_in_flight", max_in_flight, int)
    retention = _audit.check_retention(log_retention_days)
    per_caller = getattr(memory, "tenancy", "shared") == "per_caller"
    log = _audit.open_log(
        audit_log, getattr(memory, "path", None), max_request_bytes=max_logged_request_bytes
    )
    signal = commit_signal(memory)
    engine = _Detached(memory, signal)
    feeds = Feeds(engine, signal)
    mcp_server = anda_mcp.create_server(engine, caller=_mcp_caller)
    sessions = StreamableHTTPSessionManager(
        app=mcp_server, json_response=True, stateless=True, max_request_body_size=max_body
    )

    async def info(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "name": "anda",
                "version": anda.__version__,
                "engine_version": anda.ENGINE_VERSION,
                "kip_version": anda.KIP_VERSION,
            }
        )

    async def kip(request: Request) -> JSONResponse:
        caller = request.scope.get(_CALLER)
        body = await request.body()
        listed = await _list_logs(log, body, caller, per_caller)
        if listed is not None:
            return listed
        return await _execute(engine, body, caller, timeout)

    async def changes(request: Request) -> Response:
        return await feeds.endpoint(request, request.scope.get(_CALLER))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pruning = asyncio.ensure_future(_prune(log, retention))
        try:
            async with sessions.run():
                yield
        finally:
            feeds.stop()
            pruning.cancel()
            # uvicorn has finished every request; writes that outlived theirs finish now.
            await engine.drain()
            await asyncio.to_thread(log.close)
            if close_memory:
                await asyncio.to_thread(memory.close)
                _log.info("the memory is closed")

    guard = Middleware(
        _Guard,
        keys=keys,
        caller=caller,
        engine=engine,
        max_body=max_body,
        timeout=float(timeout),
        max_in_flight=max_in_flight,
        log=log,
    )
    app = Starlette(
        routes=[
            Route("/", info, methods=["GET"]),
            Route("/kip", kip, methods=["POST"]),
            Route("/changes", changes, methods=["GET"]),
            Route("/mcp", StreamableHTTPASGIApp(sessions)),
            *_view.view_routes(engine, feeds, _request_caller),
        ],
        middleware=[Middleware(ObservedRequests), guard],
        lifespan=lifespan,
    )
    app.state.feeds = feeds
    app.state.audit_log = log
    return app


async def _list_logs(
    log: _audit.AuditLog, body: bytes, caller: str | None, per_caller: bool
) -> JSONResponse | None:
    """The answer to a ``list_logs`` call, or ``None`` for any other body."""
    # A cheap look first: only a body that names the method is read twice.
    if b"list_logs" not in body:
        return None
    try:
        payload = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(payload, dict) or payload.get("method") != _audit.LIST_LOGS:
        return None
    if "params" not in payload:
        return _answer(400, invalid_envelope("missing field `params`"))
    params = payload["params"]
    status, response = await asyncio.to_thread(
        _audit.list_logs_answer, log, params, caller, per_caller=per_caller
    )
    _audit.note_call(_audit.LIST_LOGS, params, response)
    return _answer(status, response)


async def _prune(log: _audit.AuditLog, retention_days: int) -> None:
    """Deletes audit log entries past their retention, now and every hour."""
    if retention_days == 0:
        return
    while True:
        try:
            pruned = await asyncio.to_thread(log.prune_expired, retention_days)
        except Exception as err:  # noqa: BLE001 - logged, and tried again next hour
            _log.error("cannot prune the audit log: %s", err)
        else:
            if pruned:
                _log.info("pruned %d expired audit log entries", pruned)
        await asyncio.sleep(3600)


async def _execute(
    engine: _Detached, body: bytes, caller: str | None, timeout: float
) -> JSONResponse:
    """``POST /kip``: one JSON-RPC-style call, answered with a KIP response envelope."""
    try:
        payload = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:
        return _answer(400, invalid_envelope(f"malformed JSON: {err}"))
    _audit.note_payload(payload)
    try:
        method, arguments, envelope, request_id = _call(payload)
    except _wire.Refusal as refusal:
        return _answer(refusal.status, refusal.response)
    writes = may_write(method, arguments, engine.readonly)
    task = engine.start(method, arguments, caller, envelope=envelope)
    try:
        result = await asyncio.wait_for(asyncio.shield(task), timeout)
    except asyncio.TimeoutError:
        _log.warning("%s ran past the %ss deadline and goes on in the background", method, timeout)
        if writes:
            return _answer(408, _wire.outcome_unknown())
        return _answer(408, _wire.timed_out(f"the read ran past the {timeout}s deadline"))
    except MemoryClosedError:
        return _answer(503, _wire.internal("the server is shutting down", safe=True))
    except AndaError as err:
        _log.error("%s failed: %s: %s", method, type(err).__name__, err)
        message = f"the engine call failed: {type(err).__name__}"
        return _answer(500, _wire.internal(message, safe=not writes))
    response = result
    if request_id is not None:
        # Echoed, as the engine echoes it when it reads the envelope itself.
        response = {**response, "request_id": request_id}
    _audit.note_call(method, payload["params"], response)
    status = _wire.response_status(response)
    if status >= 500:
        error = first_error(response)
        _log.error("%s failed: %s: %s", method, error.get("code"), error.get("message"))
    return _answer(status, response)


def _call(payload: Any) -> tuple[str, dict[str, Any], bool, str | None]:
    """The method, arguments (see :func:`_wire.call_arguments`) and request id
    of a ``{"method", "params"}`` body."""
    if not isinstance(payload, dict) or not isinstance(payload.get("method"), str):
        raise _wire.invalid('the body must be an object {"method": "execute_kip", "params": ...}')
    method = payload["method"]
    if method not in TOOLS:
        raise _wire.invalid(f"unknown method: {method}")
    if "params" not in payload:
        raise _wire.invalid("missing field `params`")
    return method, *_wire.call_arguments(payload["params"])


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _answer(status: int, response: dict[str, Any]) -> JSONResponse:
    _audit.note_answer(response)
    return JSONResponse(response, status_code=status)


class _Detached:
    """The memory, as the application calls it: engine calls run as tasks of
    their own, so no deadline, disconnect or cancellation ever aborts one
    halfway (a write cut short would leave the store half-written).

    An :class:`anda.Memory` itself, for the MCP server. It never closes the
    memory; the application's shutdown does.
    """

    def __init__(self, memory: anda.Memory, signal: Signal) -> None:
        self._memory = memory
        self._signal = signal
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def readonly(self) -> bool:
        return self._memory.readonly

    @property
    def running(self) -> int:
        """Engine calls still running, answered or not."""
        return len(self._tasks)

    def start(
        self, name: str, arguments: Any, caller: str | None, *, envelope: bool = False
    ) -> asyncio.Task[dict[str, Any]]:
        """Runs a tool call, or with ``envelope`` a whole request envelope;
        the task's result is the response envelope."""
        if envelope:
            readonly = name == READONLY_TOOL
            return self._run(
                self._memory.execute_request_async(arguments, readonly=readonly, caller=caller)
            )
        return self._run(
            self._response(self._memory.call_tool_async(name, arguments, caller=caller))
        )

    @staticmethod
    async def _response(call: Awaitable[ToolResult]) -> dict[str, Any]:
        return (await call).response

    def _run(self, call: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(call)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is None:
            result = task.result()
            # Wakes the change feed's streams when this call committed.
            if committed(result.response if isinstance(result, ToolResult) else result):
                self._signal.notify()
        # Whoever awaited it may be gone; its error must not go unseen either.
        if not task.cancelled() and task.exception() is not None:
            _log.debug("an engine call failed: %r", task.exception())

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def execute_kip(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._memory.execute_kip(*args, **kwargs)

    async def execute_kip_async(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = await asyncio.shield(
            self._run(self._memory.execute_kip_async(*args, **kwargs))
        )
        return result

    def call_tool(self, *args: Any, **kwargs: Any) -> ToolResult:
        return self._memory.call_tool(*args, **kwargs)

    async def call_tool_async(
        self, name: str, arguments: Any, *, caller: str | None = None
    ) -> ToolResult:
        result: ToolResult = await asyncio.shield(
            self._run(self._memory.call_tool_async(name, arguments, caller=caller))
        )
        # An MCP tool call: the request's audit log entry says what it ran.
        _audit.note_call(name, arguments, result.response)
        return result

    def execute_request(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._memory.execute_request(*args, **kwargs)

    async def execute_request_async(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = await asyncio.shield(
            self._run(self._memory.execute_request_async(*args, **kwargs))
        )
        return result

    def close(self) -> None:
        """Nothing: the application closes the memory once every call is done."""


def _request_caller(request: Request) -> str | None:
    caller: str | None = request.scope.get(_CALLER)
    return caller


def _mcp_caller(ctx: ServerRequestContext[Any, Any]) -> str | None:
    request = ctx.request
    caller: str | None = request.scope.get(_CALLER) if isinstance(request, Request) else None
    return caller


class _Guard:
    """Every HTTP request passes here first: authentication before anything
    reads the body, the bound on requests in flight, the body's size and
    arrival deadline, the execution deadline, and one access-log record."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: list[tuple[bytes, str | None]],
        caller: str | None,
        engine: _Detached,
        max_body: int,
        timeout: float,
        max_in_flight: int,
        log: _audit.AuditLog,
    ) -> None:
        self._app = app
        self._keys = keys
        self._caller = caller
        self._engine = engine
        self._max_body = max_body
        self._timeout = timeout
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        self._streams = 0
        self._log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.monotonic()
        seen: dict[str, Any] = {"status": 0, "size": 0, "caller": None}

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            await send(message)

        # Every request but the probe of GET / gets an audit log entry.
        token = _audit.begin(scope["method"], scope["path"]) if scope["path"] != "/" else None
        try:
            await self._serve(scope, receive, observed_send, seen)
        finally:
            if token is not None:
                self._record(token, seen)
            # Never the body, the headers or the key: method, path, outcome, who, how big.
            _log.info(
                "%s %s %s %.1fms caller=%s in=%dB",
                scope["method"],
                scope["path"],
                seen["status"] or "-",
                (time.monotonic() - started) * 1000,
                seen["caller"] or "-",
                seen["size"],
                extra={
                    "http_method": scope["method"],
                    "path": scope["path"],
                    "status": seen["status"],
                    "duration_ms": round((time.monotonic() - started) * 1000, 3),
                    "caller": seen["caller"],
                    "request_bytes": seen["size"],
                },
            )

    def _record(self, token: Any, seen: dict[str, Any]) -> None:
        entry = _audit.current()
        _audit.end(token)
        if entry is not None:
            entry.caller = seen["caller"]
            entry.http_status = seen["status"]
            entry.request_bytes = seen["size"]
            self._log.record(entry)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, seen: dict[str, Any]
    ) -> None:
        if scope["path"] == "/":
            await self._app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if self._keys:
            # The inspector's page also takes the key as a Basic password: a browser can send that.
            page = scope["path"] == _view.PREFIX or scope["path"].startswith(_view.PREFIX + "/")
            found = self._authenticate(headers.get(b"authorization", b""), basic=page)
            if found is None:
                challenge = b'Basic realm="anda", charset="UTF-8"' if page else b"Bearer"
                await _refuse(send, 401, _wire.unauthenticated(), (b"www-authenticate", challenge))
                return
            caller = found[0]
        elif _local(headers):
            caller = self._caller
        else:
            await _refuse(send, 403, _foreign())
            return
        seen["caller"] = caller
        if scope["path"] in ("/changes", _view.CHANGES_PATH):
            await self._stream(scope, receive, send, caller)
            return
        if self._in_flight >= self._max_in_flight or self._engine.running >= self._max_in_flight:
            await _refuse(send, 429, _wire.busy(self._max_in_flight), (b"retry-after", b"1"))
            return
        self._in_flight += 1
        try:
            body = await self._read_body(receive, send, headers, seen)
            if body is None:
                return
            scope[_CALLER] = caller
            if scope["path"] == "/mcp":
                _audit.note_mcp(body)
            await self._respond(scope, _replay(body, receive), send, seen)
        finally:
            self._in_flight -= 1

    async def _stream(self, scope: Scope, receive: Receive, send: Send, caller: str | None) -> None:
        """``GET /changes``: a stream lasts as long as its follower, so it is
        bounded apart from the requests in flight, and has no deadline."""
        if self._streams >= self._max_in_flight:
            await _refuse(send, 429, _wire.busy(self._max_in_flight), (b"retry-after", b"1"))
            return
        self._streams += 1
        try:
            scope[_CALLER] = caller
            await self._app(scope, receive, send)
        finally:
            self._streams -= 1

    def _authenticate(self, header: bytes, *, basic: bool = False) -> tuple[str | None] | None:
        scheme, _, token = header.partition(b" ")
        if basic and scheme.lower() == b"basic":
            token = _basic_password(token.strip())
        elif scheme.lower() != b"bearer":
            return None
        token = token.strip()
        found: tuple[str | None] | None = None
        # Every key is compared, in constant time, whichever matches.
        for key, caller in self._keys:
            if hmac.compare_digest(key, token):
                found = (caller,)
        return found

    async def _read_body(
        self, receive: Receive, send: Send, headers: dict[bytes, bytes], seen: dict[str, Any]
    ) -> bytes | None:
        """The whole body, or ``None`` once the request has been answered."""
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self._max_body:
            await _refuse(send, 413, _wire.too_large(self._max_body))
            return None
        chunks: list[bytes] = []

        async def read() -> bool:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return False
                chunk = message.get("body", b"")
                seen["size"] += len(chunk)
                # Counted as it streams: a Content-Length can lie, a chunked body has none.
                if seen["size"] > self._max_body:
                    return True
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return True

        try:
            arrived = await asyncio.wait_for(read(), self._timeout)
        except asyncio.TimeoutError:
            message = f"the request body did not arrive within {self._timeout}s"
            await _refuse(send, 408, _wire.timed_out(message))
            return None
        if not arrived:
            return None
        if seen["size"] > self._max_body:
            await _refuse(send, 413, _wire.too_large(self._max_body))
            return None
        return b"".join(chunks)

    async def _respond(
        self, scope: Scope, receive: Receive, send: Send, seen: dict[str, Any]
    ) -> None:
        # A backstop past the KIP handler's own deadline (which answers first,
        # and more precisely); the engine call itself is never cut short.
        try:
            await asyncio.wait_for(self._app(scope, receive, send), 2 * self._timeout)
        except asyncio.TimeoutError:
            if not seen["status"]:
                await _refuse(send, 408, _wire.timed_out("the request ran past its deadline"))


def _basic_password(credentials: bytes) -> bytes:
    """The password of HTTP Basic credentials (``b""`` if malformed); the user name is ignored."""
    try:
        decoded = base64.b64decode(credentials, validate=True)
    except ValueError:
        return b""
    return decoded.partition(b":")[2]


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body, already read, handed to the application as if it streamed in."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _refuse(
    send: Send, status: int, response: dict[str, Any], *extra: tuple[bytes, bytes]
) -> None:
    """Answers for the guard; the connection closes, as the body may be unread."""
    _audit.note_answer(response)
    body = json.dumps(response, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _local(headers: dict[bytes, bytes]) -> bool:
    """Whether an unauthenticated request is addressed to this machine by this
    machine: a loopback ``Host`` (no DNS rebinding) and no foreign ``Origin``
    (no web page posting across origins)."""
    host = headers.get(b"host", b"").decode("latin-1")
    if not _loopback(urllib.parse.urlsplit(f"//{host}").hostname):
        return False
    origin = headers.get(b"origin")
    return origin is None or _loopback(urllib.parse.urlsplit(origin.decode("latin-1")).hostname)


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server on this machine.

    >>> [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "example.org")]
    [True, True, True, False, False]
    """
    return _loopback(host.strip("[]"))


def _foreign() -> dict[str, Any]:
    return failure(
        "NotAuthorized",
        "governance",
        "without API keys this server only answers requests to a loopback host from no "
        "other origin",
        retry="requires_authority",
        hint="Connect to 127.0.0.1, or start the server with an API key.",
    )


def _checked_keys(
    api_keys: Mapping[str, str | None] | None, caller: str | None
) -> list[tuple[bytes, str | None]]:
    if caller is not None and not isinstance(caller, str):
        raise TypeError(f"caller must be str or None, not {type(caller).__name__}")
    keys: list[tuple[bytes, str | None]] = []
    for token, key_caller in (api_keys or {}).items():
        if not isinstance(token, str) or not token.strip() or token != token.strip():
            raise ValueError("every API key must be a non-empty str without surrounding spaces")
        if key_caller is not None and not isinstance(key_caller, str):
            raise TypeError("every API key must map to a caller id (str) or None")
        keys.append((token.encode("utf-8"), caller if key_caller is None else key_caller))
    return keys


def _positive(name: str, value: object, kind: type | tuple[type, ...]) -> None:
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:  # type: ignore[operator]
        raise ValueError(f"{name} must be a positive number, not {value!r}")
