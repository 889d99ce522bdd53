"""Where ``anda serve``'s requests meet :mod:`anda.telemetry`: the outermost
middleware, which passes every request straight on (one attribute look-up)
until telemetry is instrumented, and then hands it to the observer for a
SERVER span under the caller's trace."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from anda import _observer


class ObservedRequests:
    """ASGI middleware: each HTTP request observed while telemetry is on."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        observer = _observer.current
        if observer is None or scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        await observer.serve(self._app, scope, receive, send)
