"""The request guard every HTTP request passes first: authentication
before anything reads the body, the bound on requests in flight, the body's
size and arrival deadline, the execution deadline's backstop, and one
access-log and audit-log record."""

from __future__ import annotations

import asyncio
import base64
import hmac
import ipaddress
import json
import logging
import time
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mcp.server import ServerRequestContext
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from anda._calls import failure
from anda.server import _audit, _wire
from anda.view import _web as _view

if TYPE_CHECKING:
    from anda.server._shield import Detached

_log = logging.getLogger("anda.server")

#: Where the guard leaves the authenticated caller for the routes.
CALLER = "anda.caller"
_LOOPBACK_NAMES = frozenset({"localhost"})


def request_caller(request: Request) -> str | None:
    caller: str | None = request.scope.get(CALLER)
    return caller


def mcp_caller(ctx: ServerRequestContext[Any, Any]) -> str | None:
    request = ctx.request
    caller: str | None = request.scope.get(CALLER) if isinstance(request, Request) else None
    return caller


class Guard:
    """Every HTTP request passes here first: authentication before anything
    reads the body, the bound on requests in flight, the body's size and
    arrival deadline, the execution deadline, and one access-log record."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: list[tuple[bytes, str | None]],
        caller: str | None,
        engine: Detached,
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
                await refuse(send, 401, _wire.unauthenticated(), (b"www-authenticate", challenge))
                return
            caller = found[0]
        elif _local(headers):
            caller = self._caller
        else:
            await refuse(send, 403, _foreign())
            return
        seen["caller"] = caller
        if scope["path"] in ("/changes", _view.CHANGES_PATH):
            await self._stream(scope, receive, send, caller)
            return
        if self._in_flight >= self._max_in_flight or self._engine.running >= self._max_in_flight:
            await refuse(send, 429, _wire.busy(self._max_in_flight), (b"retry-after", b"1"))
            return
        self._in_flight += 1
        try:
            body = await self._read_body(receive, send, headers, seen)
            if body is None:
                return
            scope[CALLER] = caller
            if scope["path"] == "/mcp":
                _audit.note_mcp(body)
            await self._respond(scope, _replay(body, receive), send, seen)
        finally:
            self._in_flight -= 1

    async def _stream(self, scope: Scope, receive: Receive, send: Send, caller: str | None) -> None:
        """``GET /changes``: a stream lasts as long as its follower, so it is
        bounded apart from the requests in flight, and has no deadline."""
        if self._streams >= self._max_in_flight:
            await refuse(send, 429, _wire.busy(self._max_in_flight), (b"retry-after", b"1"))
            return
        self._streams += 1
        try:
            scope[CALLER] = caller
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
            await refuse(send, 413, _wire.too_large(self._max_body))
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
            await refuse(send, 408, _wire.timed_out(message))
            return None
        if not arrived:
            return None
        if seen["size"] > self._max_body:
            await refuse(send, 413, _wire.too_large(self._max_body))
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
                await refuse(send, 408, _wire.timed_out("the request ran past its deadline"))


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


async def refuse(
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


def checked_keys(
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
