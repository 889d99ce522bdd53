"""``GET /changes``: the memory's committed changes as server-sent events.

Each commit is one event: ``id`` is its ``space_seq``, ``event`` is
``change``, ``data`` the Change Envelope as JSON. A reconnecting client sends
the last id it saw as ``Last-Event-ID`` (browsers' ``EventSource`` does so
itself) and the stream resumes after it; ``?since=N`` starts after ``N``
(default 0, the beginning), ``?limit=`` sets the page size read from the
engine (1 to 1000, default 100), ``?follow=false`` ends the stream once it
has caught up. An id without data moves the client's position past commits it
may not see. While nothing happens a comment line keeps the connection alive.

The route sits behind the same keys and tenancy as ``/kip``: a caller
follows its own memory, and a refusal (an anonymous caller under per-caller
tenancy, a bad ``since``) is answered as ``/kip`` answers it, before any
event. Streams are bounded in number (429 beyond it), and end when the server
shuts down.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from anda._changes import DEFAULT_PAGE, MAX_PAGE, page_of
from anda._commits import Signal
from anda.errors import KipError
from anda.server import _audit, _wire

__all__ = ["Feeds"]

#: Seconds between keep-alive comments on an idle stream.
KEEP_ALIVE_SECONDS = 15.0
#: Milliseconds a client should wait before reconnecting.
RECONNECT_MS = 1000

_PAGE = "CHANGES AFTER SEQ :seq LIMIT :limit"


class Feeds:
    """The open streams of one application, and their end at shutdown."""

    def __init__(self, engine: Any, signal: Signal, *, keep_alive: float = KEEP_ALIVE_SECONDS):
        self._engine = engine
        self._signal = signal
        self._keep_alive = keep_alive
        self._stopping = False
        self.open = 0

    def stop(self) -> None:
        """Ends every stream (at their next step) and refuses new ones."""
        self._stopping = True
        self._signal.notify()

    async def endpoint(self, request: Request, caller: str | None) -> Response:
        try:
            since, limit, follow = _arguments(request)
        except _wire.Refusal as refusal:
            _audit.note_answer(refusal.response)
            return JSONResponse(refusal.response, status_code=refusal.status)
        if self._stopping:
            refused = _wire.internal("the server is shutting down", safe=True)
            _audit.note_answer(refused)
            return JSONResponse(refused, 503)
        # The first page is read before the stream starts, so that a refusal
        # is an HTTP status, as /kip answers it.
        asked = {"since": since, "limit": limit, "follow": follow}
        # Taken before the first read: a commit after it wakes the stream.
        generation = self._signal.generation
        try:
            first = await self._page(since, limit, caller)
        except KipError as err:
            refused = err.response or _wire.internal(str(err), safe=True)
            _audit.note_call("changes", asked, refused)
            return JSONResponse(refused, status_code=_wire.response_status(refused))
        _audit.note_call("changes", asked, {"status": "succeeded"})
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            self._stream(first, generation, since, limit, follow, caller),
            media_type="text/event-stream",
            headers=headers,
        )

    async def _page(
        self, after: int, limit: int, caller: str | None
    ) -> tuple[list[dict[str, Any]], int | None]:
        response = await self._engine.execute_kip_async(
            _PAGE, {"seq": after, "limit": limit}, caller=caller
        )
        return page_of(response)

    async def _stream(
        self,
        first: tuple[list[dict[str, Any]], int | None],
        generation: int,
        position: int,
        limit: int,
        follow: bool,
        caller: str | None,
    ) -> AsyncIterator[bytes]:
        self.open += 1
        try:
            yield f"retry: {RECONNECT_MS}\n\n".encode()
            page: tuple[list[dict[str, Any]], int | None] | None = first
            while not self._stopping:
                if page is None:
                    generation = self._signal.generation
                    try:
                        page = await self._page(position, limit, caller)
                    except KipError as err:
                        yield _event(
                            "error", None, err.response or _wire.internal(str(err), safe=True)
                        )
                        return
                envelopes, consumed = page
                page = None
                for envelope in envelopes:
                    position = envelope["space_seq"]
                    yield _event("change", position, envelope)
                if consumed is not None and consumed > position:
                    position = consumed
                    yield f"id: {position}\n\n".encode()
                if consumed is not None:
                    continue
                if not follow:
                    return
                await self._signal.wait_async(generation, self._keep_alive)
                if self._signal.generation == generation and not self._stopping:
                    yield b": keep-alive\n\n"
        finally:
            self.open -= 1


def _event(kind: str, seq: int | None, data: Any) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = "" if seq is None else f"id: {seq}\n"
    return f"{head}event: {kind}\ndata: {text}\n\n".encode()


def _arguments(request: Request) -> tuple[int, int, bool]:
    """``since`` (``Last-Event-ID`` first), ``limit`` and ``follow``."""
    query = request.query_params
    since_text = request.headers.get("last-event-id") or query.get("since") or "0"
    if not since_text.isascii() or not since_text.isdigit() or len(since_text) > 19:
        raise _wire.invalid(
            f"since (or Last-Event-ID) must be a space_seq, a whole number >= 0, not {since_text!r}"
        )
    limit_text = query.get("limit", str(DEFAULT_PAGE))
    if not limit_text.isascii() or not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_PAGE:
        raise _wire.invalid(f"limit must be a whole number in [1, {MAX_PAGE}], not {limit_text!r}")
    follow_text = query.get("follow", "true").lower()
    if follow_text not in ("true", "false", "1", "0"):
        raise _wire.invalid(f"follow must be true or false, not {follow_text!r}")
    return int(since_text), int(limit_text), follow_text in ("true", "1")
