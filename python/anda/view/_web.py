"""The inspector as a web page: routes under ``/view`` (``pip install
'anda[server]'``).

``GET /view/`` is the page, ``/view/static/`` its script and stylesheet
(package data, nothing from anywhere else), and ``/view/api/*`` the HTML
fragments it shows, each read by :mod:`anda.view._reads` on the memory's
read-only path: ``search`` (``q``, ``type``), ``card`` (``id``,
``as_of``), ``primer``, and ``changes``, the change feed as server-sent
events (:mod:`anda.server._feed`, the same stream as ``GET /changes``). Only
``GET`` is routed: the page has no way to write.

:func:`view_routes` are mounted by :func:`anda.server.create_app` behind its
keys; :func:`create_view_app` is the page alone, for ``python -m anda view``,
which answers only requests addressed to a loopback host from no other
origin.
"""

from __future__ import annotations

import contextlib
import ipaddress
import urllib.parse
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from anda._calls import READONLY_TOOL
from anda._commits import commit_signal
from anda.errors import AndaError, KipError
from anda.server import _audit
from anda.server._feed import Feeds
from anda.view import _html, _reads

__all__ = ["CHANGES_PATH", "PREFIX", "create_view_app", "view_routes"]

#: Where the page lives.
PREFIX = "/view"
#: The page's change feed: a stream, which a server must not cut at a deadline.
CHANGES_PATH = f"{PREFIX}/api/changes"
#: Seconds between two reads of an idle feed when no commit signal wakes it
#: (a memory written by another process, or a Client's server).
IDLE_READ_SECONDS = 1.0

_STATIC = {"view.js": "text/javascript", "view.css": "text/css"}
# Nothing but this origin: no script, style, font or image from the internet.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def view_routes(
    memory: Any, feeds: Feeds, caller_of: Callable[[Request], str | None]
) -> list[BaseRoute]:
    """The page's routes over ``memory`` (read through
    ``execute_request_async(..., readonly=True)``); ``caller_of`` says who a
    request reads as, ``feeds`` serves its change feed."""

    async def read(request: Request, reading: _reads.Read[Any]) -> Any:
        caller = caller_of(request)

        async def execute(envelope: dict[str, Any]) -> dict[str, Any]:
            response: dict[str, Any] = await memory.execute_request_async(
                envelope, readonly=True, caller=caller
            )
            # Behind anda serve, the request's audit log entry says what the page read.
            _audit.note_call(READONLY_TOOL, envelope, response)
            return response

        return await _reads.run_async(reading, execute)

    async def page(request: Request) -> Response:
        text = (resources.files("anda.view") / "static" / "index.html").read_text("utf-8")
        return HTMLResponse(text, headers=_HEADERS)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return Response("not found", 404, media_type="text/plain")
        body = (resources.files("anda.view") / "static" / name).read_bytes()
        return Response(body, media_type=_STATIC[name], headers=_HEADERS)

    async def search(request: Request) -> Response:
        term = request.query_params.get("q", "")
        kind = request.query_params.get("type") or None
        return await _fragment(lambda: read(request, _reads.search(term, kind)), _html.search_html)

    async def card(request: Request) -> Response:
        concept = request.query_params.get("id", "")
        as_of_text = request.query_params.get("as_of", "")
        if not concept or (as_of_text and not (as_of_text.isascii() and as_of_text.isdigit())):
            message = "card needs ?id=<concept id> and, optionally, ?as_of=<space_seq>"
            return _error(400, ValueError(message))
        as_of = int(as_of_text) if as_of_text else None

        async def both() -> tuple[Any, Any]:
            data = await read(request, _reads.card(concept, as_of))
            if data is None:
                return None, None
            return data, await read(request, _reads.history(data))

        def shown(found: tuple[Any, Any]) -> str:
            data, timeline = found
            if data is None:
                when = "" if as_of is None else f" at seq {as_of}"
                return f'<p class="empty">No concept {_html._e(concept)}{when}.</p>'
            return _html.card_html(data, timeline)

        return await _fragment(both, shown)

    async def primer(request: Request) -> Response:
        return await _fragment(lambda: read(request, _reads.primer()), _html.primer_html)

    async def changes(request: Request) -> Response:
        return await feeds.endpoint(request, caller_of(request))

    return [
        Route(PREFIX, lambda request: RedirectResponse(f"{PREFIX}/"), methods=["GET"]),
        Route(f"{PREFIX}/", page, methods=["GET"]),
        Route(f"{PREFIX}/static/{{name}}", static, methods=["GET"]),
        Route(f"{PREFIX}/api/search", search, methods=["GET"]),
        Route(f"{PREFIX}/api/card", card, methods=["GET"]),
        Route(f"{PREFIX}/api/primer", primer, methods=["GET"]),
        Route(CHANGES_PATH, changes, methods=["GET"]),
    ]


async def _fragment(reading: Callable[[], Any], render: Callable[[Any], str]) -> Response:
    try:
        found = await reading()
    except KipError as err:
        return _error(403 if err.code in ("NotAuthorized", "Forbidden") else 400, err)
    except AndaError as err:
        return _error(500, err)
    return HTMLResponse(render(found), headers=_HEADERS)


def _error(status: int, error: BaseException) -> Response:
    return HTMLResponse(_html.error_html(error), status_code=status, headers=_HEADERS)


def create_view_app(
    memory: Any, *, caller: str | None = None, close_memory: bool = False
) -> Starlette:
    """The page alone over ``memory``, reading as ``caller``: what ``python
    -m anda view`` serves. It answers only requests addressed to a loopback
    host (``127.0.0.1``, ``localhost``) from no other origin, so neither a
    web page elsewhere nor a DNS-rebinding name can read the memory through
    it. ``app.state.feeds.stop()`` ends the change feed's streams (a host
    calls it as its shutdown begins).

    >>> import anda
    >>> from starlette.testclient import TestClient
    >>> app = create_view_app(anda.Nexus())
    >>> with TestClient(app, base_url="http://127.0.0.1") as http:
    ...     page = http.get("/view/")
    ...     elsewhere = http.get("/view/", headers={"Origin": "https://example.org"})
    >>> page.status_code, elsewhere.status_code
    (200, 403)
    """
    feeds = Feeds(memory, commit_signal(memory), keep_alive=IDLE_READ_SECONDS)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            feeds.stop()
            if close_memory:
                memory.close()

    routes = view_routes(memory, feeds, lambda request: caller)
    routes.append(Route("/", lambda request: RedirectResponse(f"{PREFIX}/"), methods=["GET"]))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(_LoopbackOnly)
    app.state.feeds = feeds
    return app


class _LoopbackOnly:
    """Refuses (403) a request addressed to another host, or sent from a page of another origin."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            host = headers.get(b"host", b"").decode("latin-1")
            origin = headers.get(b"origin")
            local = _loopback(urllib.parse.urlsplit(f"//{host}").hostname) and (
                origin is None
                or _loopback(urllib.parse.urlsplit(origin.decode("latin-1")).hostname)
            )
            if not local:
                response = Response(
                    "the inspector answers only requests to a loopback host from no other origin",
                    403,
                    media_type="text/plain",
                )
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
