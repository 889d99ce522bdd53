"""The ASGI application: its routes and what they run (the request guard is
in :mod:`anda.server._guard`, the engine calls' shield in
:mod:`anda.server._shield`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import anda
from anda import mcp as anda_mcp
from anda._calls import TOOLS, invalid_envelope, may_write
from anda._commits import commit_signal
from anda.errors import AndaError, MemoryClosedError, first_error
from anda.server import _audit, _wire
from anda.server._feed import Feeds
from anda.server._guard import CALLER, Guard, checked_keys, mcp_caller, request_caller
from anda.server._list_logs import answer as answer_list_logs
from anda.server._shield import Detached
from anda.server._telemetry import ObservedRequests
from anda.view import _web as _view

_log = logging.getLogger("anda.server")

#: Largest request body accepted, in bytes (as Anda's Rust server).
DEFAULT_MAX_BODY = 2 * 1024 * 1024
#: Seconds a request may take to arrive, and its KIP execution to answer.
DEFAULT_TIMEOUT = 30.0
#: Requests (and engine calls outliving their answer) served at once.
DEFAULT_MAX_IN_FLIGHT = 64


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
    keys = checked_keys(api_keys, caller)
    _positive("max_body", max_body, int)
    _positive("timeout", timeout, (int, float))
    _positive("max_in_flight", max_in_flight, int)
    retention = _audit.check_retention(log_retention_days)
    per_caller = getattr(memory, "tenancy", "shared") == "per_caller"
    log = _audit.open_log(
        audit_log, getattr(memory, "path", None), max_request_bytes=max_logged_request_bytes
    )
    signal = commit_signal(memory)
    engine = Detached(memory, signal)
    feeds = Feeds(engine, signal)
    mcp_server = anda_mcp.create_server(engine, caller=mcp_caller)
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
        caller = request.scope.get(CALLER)
        body = await request.body()
        listed = await _list_logs(log, body, caller, per_caller)
        if listed is not None:
            return listed
        return await _execute(engine, body, caller, timeout)

    async def changes(request: Request) -> Response:
        return await feeds.endpoint(request, request.scope.get(CALLER))

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
        Guard,
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
            *_view.view_routes(engine, feeds, request_caller),
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
        answer_list_logs, log, params, caller, per_caller=per_caller
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
    engine: Detached, body: bytes, caller: str | None, timeout: float
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


def _positive(name: str, value: object, kind: type | tuple[type, ...]) -> None:
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:  # type: ignore[operator]
        raise ValueError(f"{name} must be a positive number, not {value!r}")
