"""Where :mod:`anda.telemetry` hooks into anda: ``current`` is ``None``
until :func:`anda.telemetry.instrument` sets it.

Every call of a memory's public face (:mod:`anda._base`) reads it once and,
while it is ``None``, calls its primitive directly: that one look-up is the
whole cost of telemetry when it is off, and nothing of OpenTelemetry is
imported. A :class:`anda.Client` asks it for the headers that carry the
trace to the server, and ``anda serve`` hands it each HTTP request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from anda._base import BaseMemory

__all__ = ["Observer", "current"]

#: A primitive's answer: the engine's response envelope.
Response = dict[str, Any]


class Observer(Protocol):
    """What the hook calls (:class:`anda.telemetry._otel.Telemetry`)."""

    def call(
        self,
        memory: BaseMemory,
        call: str,
        subject: Any,
        parameters: Any,
        primitive: Callable[..., Response],
        args: tuple[Any, ...],
    ) -> Response:
        """Runs ``primitive(*args)`` for ``memory``'s public ``call`` (e.g.
        ``"execute_kip"``): ``subject`` holds its commands (a batch, tool
        arguments, a request envelope or bulk writes), ``parameters`` the
        values they share."""

    async def call_async(
        self,
        memory: BaseMemory,
        call: str,
        subject: Any,
        parameters: Any,
        primitive: Callable[..., Awaitable[Response]],
        args: tuple[Any, ...],
    ) -> Response:
        """:meth:`call`, awaited."""

    def inject(self, headers: MutableMapping[str, str]) -> None:
        """Adds the headers that carry the current trace to a server."""

    async def serve(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Serves one HTTP request with ``app``, observed."""


#: The observer in force, or ``None``: telemetry is off.
current: Observer | None = None
