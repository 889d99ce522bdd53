"""Following a memory: the engine's change stream (KIP ``CHANGES``) as an
iterator and an async iterator.

One commit is one Change Envelope (KIP §36.1): ``space_id``, ``space_seq``
(the Space's commit sequence, 1, 2, ...), ``tx_id``, ``committed_at``,
``changes`` (one entry per element: ``op``, ``kind``, ``id``,
``new_version``, ...), and ``coverage``. A feed reads them in pages of
``CHANGES AFTER SEQ :seq LIMIT :n``, in commit order, each once, and keeps
its :attr:`ChangeFeed.position`: the sequence it has read through. Resume
by passing a position (or the last envelope's ``space_seq``) as ``since``.
Under per-caller tenancy a caller follows its own Space.

With ``follow=True`` a feed that has caught up waits for the next commit
instead of ending. Over a :class:`anda.Nexus` it wakes on the commit signal
(:mod:`anda._commits`) that the Nexus raises for every commit it makes, and
anda's own server for every write it runs; a commit by another process is
found by a re-read every ``poll_interval`` seconds. Over an
:class:`anda.Client` it listens to ``GET /changes``, the server-sent events
of ``python -m anda serve``, and reconnects from its position when the
connection or the server goes away; against a server without that route
(Anda's Rust server) it re-reads every ``poll_interval`` seconds.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import random
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from anda._commits import commit_signal
from anda.errors import RemoteError, ServerUnreachableError, error_from_response

if TYPE_CHECKING:
    from anda._memory import Memory

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "ChangeFeed"]

#: Envelopes per page unless told.
DEFAULT_PAGE = 100
#: The most envelopes a page may ask for.
MAX_PAGE = 1000
#: Seconds between re-reads when no commit signal can be had.
DEFAULT_POLL_INTERVAL = 0.5

_PAGE = "CHANGES AFTER SEQ :seq LIMIT :limit"


def check_since(since: object) -> int:
    """``since`` as a sequence: an int >= 0, or the digits of a ``next_cursor``."""
    if isinstance(since, str) and since.isascii() and since.isdigit():
        since = int(since)
    if isinstance(since, bool) or not isinstance(since, int):
        raise TypeError(
            f"since must be a space_seq (int >= 0) or a CHANGES next_cursor, not {since!r}"
        )
    if since < 0:
        raise ValueError(f"since must be >= 0, not {since}")
    return since


def _check_options(limit: object, poll_interval: object) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be an int in [1, {MAX_PAGE}], not {limit!r}")
    if (
        isinstance(poll_interval, bool)
        or not isinstance(poll_interval, (int, float))
        or not poll_interval > 0
    ):
        raise ValueError(
            f"poll_interval must be a positive number of seconds, not {poll_interval!r}"
        )


def page_of(response: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
    """The envelopes of a ``CHANGES`` answer and the sequence it consumed."""
    result = response["results"][0]
    envelopes = result.get("result") or []
    cursor = result.get("next_cursor")
    consumed = int(cursor) if isinstance(cursor, str) and cursor.isdigit() else None
    if consumed is None and envelopes:
        consumed = envelopes[-1]["space_seq"]
    return envelopes, consumed


class ChangeFeed:
    """Committed changes of a memory, oldest first, each once.

    Iterate it (``for envelope in feed``) or iterate it asynchronously
    (``async for envelope in feed``); each item is a Change Envelope dict.
    Made by :meth:`anda.Nexus.changes` and :meth:`anda.Client.changes`.

    Attributes:
        position: the ``space_seq`` the feed has read through: pass it as
            ``since`` to resume after the last envelope seen.

    A feed that follows never ends by itself: leave the loop, or call
    :meth:`close` (from any thread) to end it. It is also a context manager.

    Raises (while iterating):
        anda.KipError: the engine refused the read, e.g. an anonymous caller
            under per-caller tenancy (``NotAuthorized``).
        anda.RemoteError: a Client's server could not be reached for longer
            than its ``timeout``.

    >>> import anda
    >>> with anda.Nexus() as nexus:
    ...     _ = nexus.execute_kip('UPSERT CONCEPT ?p { MATCH { type: "Person", key: "ada" } }')
    ...     _ = nexus.execute_kip('UPSERT CONCEPT ?p { MATCH { type: "Person", key: "bo" } }')
    ...     feed = nexus.changes()
    ...     seen = [(e["space_seq"], e["changes"][0]["op"]) for e in feed]
    ...     again = [e["space_seq"] for e in nexus.changes(since=feed.position)]
    >>> seen, feed.position, again
    ([(1, 'create'), (2, 'create')], 2, [])
    """

    def __init__(
        self,
        memory: Memory,
        since: int | str = 0,
        *,
        limit: int = DEFAULT_PAGE,
        follow: bool = False,
        caller: str | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        self.position = check_since(since)
        _check_options(limit, poll_interval)
        if not isinstance(follow, bool):
            raise TypeError(f"follow must be a bool, not {type(follow).__name__}")
        self._memory = memory
        self._limit = limit
        self._follow = follow
        self._caller = caller
        self._poll = float(poll_interval)
        self._buffer: collections.deque[dict[str, Any]] = collections.deque()
        self._consumed = self.position
        self._closed = False
        # Set by client_feed: a Client that follows listens to GET /changes.
        self._http: _HttpFeed | None = None
        self._signal = commit_signal(memory)

    # -- the synchronous iterator ---------------------------------------------------

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        while True:
            if self._buffer:
                return self._take()
            if self._closed:
                raise StopIteration
            if self._http is not None and self._follow:
                envelope = self._http.next(self)
                if envelope is None:
                    raise StopIteration
                return envelope
            generation = self._signal.generation
            if self._fetch(self._memory.execute_kip(_PAGE, self._arguments(), caller=self._caller)):
                continue
            if not self._follow:
                raise StopIteration
            self._signal.wait(generation, self._poll)

    # -- the asynchronous iterator --------------------------------------------------

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while True:
            if self._buffer:
                return self._take()
            if self._closed:
                raise StopAsyncIteration
            if self._http is not None and self._follow:
                import asyncio

                envelope = await asyncio.to_thread(self._http.next, self)
                if envelope is None:
                    raise StopAsyncIteration
                return envelope
            generation = self._signal.generation
            response = await self._memory.execute_kip_async(
                _PAGE, self._arguments(), caller=self._caller
            )
            if self._fetch(response):
                continue
            if not self._follow:
                raise StopAsyncIteration
            await self._signal.wait_async(generation, self._poll)

    # -- ending ---------------------------------------------------------------------

    def close(self) -> None:
        """Ends the feed: iteration stops (a waiting one too). Idempotent."""
        self._closed = True
        self._signal.notify()
        if self._http is not None:
            self._http.close()

    async def aclose(self) -> None:
        """:meth:`close`, for ``async with`` and async generators' habits."""
        self.close()

    def __enter__(self) -> ChangeFeed:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> ChangeFeed:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "following" if self._follow else "reading"
        state = "closed" if self._closed else mode
        return f"<anda.ChangeFeed at space_seq {self.position} ({state})>"

    # -- pages ----------------------------------------------------------------------

    def _arguments(self) -> dict[str, int]:
        return {"seq": self._consumed, "limit": self._limit}

    def _fetch(self, response: dict[str, Any]) -> bool:
        """Takes in one page; whether the stream went on (more may follow)."""
        envelopes, consumed = page_of(response)
        self._buffer.extend(envelopes)
        if consumed is None or consumed <= self._consumed:
            return bool(envelopes)
        self._consumed = consumed
        if not envelopes:
            # The page held only what this caller may not see: walk past it.
            self.position = consumed
        return True

    def _take(self) -> dict[str, Any]:
        envelope = self._buffer.popleft()
        self.position = envelope["space_seq"]
        if not self._buffer:
            self.position = max(self.position, self._consumed)
        return envelope

    def _advance(self, seq: int) -> None:
        """A position the server reported past the last envelope sent."""
        self.position = max(self.position, seq)
        self._consumed = max(self._consumed, seq)


class _HttpFeed:
    """``GET /changes`` of ``python -m anda serve``, read as server-sent
    events, reconnecting from the feed's position."""

    def __init__(
        self, url: str, api_key: str | None, timeout: float, limit: int, poll_interval: float
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._path = parts.path.rstrip("/") + "/changes"
        self._url = url
        self._api_key = api_key
        self._timeout = timeout
        self._limit = limit
        self._poll = poll_interval
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None
        self._response: http.client.HTTPResponse | None = None
        self._closed = False
        self._unsupported = False
        self._retry = 0.5

    def next(self, feed: ChangeFeed) -> dict[str, Any] | None:
        """The next envelope, or ``None`` once the feed is closed."""
        failing_since: float | None = None
        attempt = 0
        while not self._closed:
            if self._unsupported:
                return self._poll_next(feed)
            try:
                response = self._response or self._connect(feed.position)
                if response is None:
                    continue
                envelope = self._read_event(feed, response)
            except (OSError, http.client.HTTPException) as err:
                self._drop()
                if self._closed:
                    return None
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > self._timeout:
                    raise ServerUnreachableError(
                        f"{self._url}: the change feed is unreachable: {err}", url=self._url
                    ) from err
                attempt += 1
                time.sleep(min(self._retry * attempt, 2.0) * (0.5 + random.random()))
                continue
            failing_since, attempt = None, 0
            if envelope is not None:
                return envelope
        return None

    def _poll_next(self, feed: ChangeFeed) -> dict[str, Any] | None:
        # The server has no /changes: re-read CHANGES every poll interval.
        while not self._closed:
            response = feed._memory.execute_kip(_PAGE, feed._arguments(), caller=None)
            if feed._fetch(response):
                if feed._buffer:
                    return feed._take()
                continue
            generation = feed._signal.generation
            feed._signal.wait(generation, self._poll)
        return None

    def _connect(self, position: int) -> http.client.HTTPResponse | None:
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = kind(self._host, self._port, timeout=self._timeout)
        headers = {
            "Accept": "text/event-stream",
            "Cache-Control": "no-cache",
            "Last-Event-ID": str(position),
        }
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key}"
        query = urllib.parse.urlencode({"limit": self._limit})
        with self._lock:
            if self._closed:
                return None
            self._connection = connection
        connection.request("GET", f"{self._path}?{query}", headers=headers)
        response = connection.getresponse()
        if response.status in (404, 405):
            response.read()
            self._drop()
            self._unsupported = True
            return None
        if response.status != 200:
            data = response.read()
            self._drop()
            try:
                body = json.loads(data)
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("status"), str):
                raise error_from_response(body)
            raise RemoteError(
                f"{self._url}: GET /changes answered HTTP {response.status}",
                url=self._url,
                status=response.status,
            )
        self._response = response
        return response

    def _read_event(
        self, feed: ChangeFeed, response: http.client.HTTPResponse
    ) -> dict[str, Any] | None:
        """Reads up to the end of one event; its envelope, if it carried one."""
        event, data, seq = "message", [], None
        while True:
            line = response.readline()
            if not line:
                raise ConnectionResetError("the server closed the change feed")
            text = line.decode("utf-8").rstrip("\r\n")
            if not text:
                break
            name, _, value = text.partition(":")
            value = value.removeprefix(" ")
            if name == "id" and value.isdigit():
                seq = int(value)
            elif name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "retry" and value.isdigit():
                self._retry = int(value) / 1000
        if event == "error" and data:
            raise error_from_response(json.loads("\n".join(data)))
        if event == "change" and data:
            envelope: dict[str, Any] = json.loads("\n".join(data))
            if envelope["space_seq"] <= feed.position:
                return None  # already seen (at-least-once delivery)
            feed.position = envelope["space_seq"]
            feed._consumed = max(feed._consumed, feed.position)
            return envelope
        if seq is not None:
            feed._advance(seq)
        return None

    def _drop(self) -> None:
        with self._lock:
            connection, self._connection, self._response = self._connection, None, None
        if connection is not None:
            connection.close()

    def close(self) -> None:
        self._closed = True
        with self._lock:
            connection = self._connection
        if connection is not None and connection.sock is not None:
            # Unblocks a read in progress on another thread.
            with contextlib.suppress(OSError):
                import socket

                connection.sock.shutdown(socket.SHUT_RDWR)


def client_feed(
    client: Any,
    since: int | str,
    *,
    limit: int,
    follow: bool,
    poll_interval: float,
) -> ChangeFeed:
    """A feed over an :class:`anda.Client`: pages over ``POST /kip``, and
    with ``follow`` the server's ``GET /changes`` stream."""
    feed = ChangeFeed(client, since, limit=limit, follow=follow, poll_interval=poll_interval)
    wire = client._wire
    feed._http = _HttpFeed(client.url, wire._api_key, wire._pool._timeout, limit, poll_interval)
    return feed
