"""``anda.Client``: a memory served over HTTP, by ``python -m anda serve`` or by
Anda's own server (``anda_cognitive_nexus_server``).

The memory's public face (:mod:`anda._base`) over HTTP (:mod:`anda._http`):
``POST /kip`` with ``{"method": "execute_kip", "params": <KIP 2.0 request
envelope>}``, the envelope built and checked by the native code an
:class:`anda.Nexus` runs for the same call.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from anda import _anda
from anda._base import BaseMemory, Batch
from anda._calls import READONLY_TOOL, check_bool, declared_read, dry_run_option
from anda._changes import ChangeFeed
from anda._http import Wire
from anda._logs import LogPage
from anda.bulk import Write
from anda.errors import MemoryClosedError, RemoteError, ServerUnreachableError

__all__ = ["Client", "RemoteError", "ServerUnreachableError"]


class Client(BaseMemory):
    """A memory on a server, with the same calls as :class:`anda.Nexus`.

    Args:
        url: the server, e.g. ``"http://127.0.0.1:8080"`` (a trailing
            ``/kip`` is accepted too). ``https://`` uses the system's
            certificate store.
        api_key: the bearer key, if the server requires one. Never shown in
            ``repr()`` or in errors.
        timeout: seconds to wait for a connection, and for each read of the
            answer. Longer than ``python -m anda serve``'s default
            ``--timeout`` (30 s), so a slow request gets the server's own
            answer (HTTP 408 with a KIP error) instead of a socket timeout.
        readonly: no call can write, whatever the server allows: each is
            first proven to read by the engine's own read-only gate, here,
            and a write is refused before anything is sent.
        retries: how many times a call may be re-sent, and only when that is
            safe: the connection failed before the request went out; the
            server answered with a ``safe_same_request`` retry class (rate
            limited, shutting down); or the call cannot write (read-only, or
            a dry run) and the connection broke. A write whose outcome is
            unknown is never re-sent.

    Every call is checked here by the same native code an :class:`anda.Nexus`
    runs (a value either refuses is refused with the same error and message),
    and reaches the server as an ``execute_kip`` request envelope, the method
    every KIP 2.0 server knows: ``python -m anda serve`` as well as Anda's own
    server. Only a read-only call whose commands do not parse here is sent to
    ``execute_kip_readonly``, for the server to judge.

    Who a call runs as is decided by the server, from the key (see
    ``python -m anda serve --keys-file``); ``caller=`` other than ``None``
    raises ``ValueError``, so a client can never claim another caller's
    memory. A Client is safe to share between threads: each call takes a
    kept-alive connection from a pool.

    >>> import anda
    >>> client = anda.Client("http://127.0.0.1:8080", api_key="secret")
    >>> client
    <anda.Client 'http://127.0.0.1:8080' (open)>
    >>> client.url, client.readonly
    ('http://127.0.0.1:8080', False)
    >>> with client:
    ...     client.execute_kip("DESCRIBE PRIMER")["status"]  # doctest: +SKIP
    'succeeded'
    >>> client.execute_kip("DESCRIBE PRIMER", caller="alice")
    Traceback (most recent call last):
    ...
    ValueError: the server decides who a Client's calls run as, from its API key; ...
    """

    __slots__ = ("_closed", "_readonly", "_url", "_wire")

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        readonly: bool = False,
        retries: int = 2,
    ) -> None:
        if not isinstance(url, str):
            raise TypeError(f"url must be str, not {type(url).__name__}")
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise ValueError("api_key must be a non-empty str or None")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        check_bool("readonly", readonly)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, not {retries!r}")
        parts = urllib.parse.urlsplit(url)
        if parts.username is not None or parts.password is not None:
            raise ValueError("put credentials in api_key=, not in the URL")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be an http:// or https:// URL, not {url!r}")
        base = parts.path.rstrip("/")
        base = base.removesuffix("/kip")
        self._url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, base, "", ""))
        self._readonly = readonly
        self._closed = False
        self._wire = Wire(
            scheme=parts.scheme,
            host=parts.hostname,
            port=parts.port,
            url=self._url,
            path=base + "/kip",
            api_key=api_key,
            timeout=float(timeout),
            retries=retries,
        )

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self._url

    @property
    def readonly(self) -> bool:
        """Whether every call must be proven to read before it is sent."""
        return self._readonly

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def close(self) -> None:
        """Closes the pooled connections. Idempotent; the server is not affected.

        >>> import anda
        >>> client = anda.Client("http://127.0.0.1:8080")
        >>> client.close(); client.close()
        >>> client.closed
        True
        """
        self._closed = True
        self._wire.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("read-only" if self._readonly else "open")
        return f"<anda.Client {self._url!r} ({state})>"

    # -- the primitives (see anda._base) -------------------------------------------------

    def _admit(self, caller: str | None) -> None:
        if caller is not None:
            raise ValueError(
                "the server decides who a Client's calls run as, from its API key; "
                "give each caller its own key (python -m anda serve --keys-file) "
                "and pass caller=None"
            )
        if self._closed:
            raise MemoryClosedError("this Client is closed; open a new one to reach the server")

    def _execute(
        self, batch: Batch, mode: str | None, parameters: Any, dry_run: bool, caller: str | None
    ) -> dict[str, Any]:
        self._admit(caller)
        sent = _anda.kip_request(batch, parameters, dry_run, mode, self._readonly)
        return self._send(sent, reads=self._readonly or dry_run)

    async def _execute_async(
        self, batch: Batch, mode: str | None, parameters: Any, dry_run: bool, caller: str | None
    ) -> dict[str, Any]:
        import asyncio  # here, not at the top: `import anda` stays cheap

        return await asyncio.to_thread(self._execute, batch, mode, parameters, dry_run, caller)

    def _call_tool(self, name: str, arguments: Any, caller: str | None) -> dict[str, Any]:
        self._admit(caller)
        readonly = self._readonly or name == READONLY_TOOL
        return self._send(_anda.tool_request(name, arguments, readonly), reads=readonly)

    async def _call_tool_async(
        self, name: str, arguments: Any, caller: str | None
    ) -> dict[str, Any]:
        import asyncio

        return await asyncio.to_thread(self._call_tool, name, arguments, caller)

    def _execute_request(self, request: Any, readonly: bool, caller: str | None) -> dict[str, Any]:
        self._admit(caller)
        readonly = readonly or self._readonly
        return self._send(_anda.envelope_request(request, readonly), reads=readonly)

    async def _execute_request_async(
        self, request: Any, readonly: bool, caller: str | None
    ) -> dict[str, Any]:
        import asyncio

        return await asyncio.to_thread(self._execute_request, request, readonly, caller)

    def _write_all(self, writes: list[Write], caller: str | None) -> dict[str, Any]:
        command, parameters = _anda.combine_writes(writes)
        return self._execute(command, None, parameters, False, caller)

    def _send(self, sent: tuple[str | None, Any], *, reads: bool) -> dict[str, Any]:
        """Sends a prepared request (see ``_anda.kip_request``), or returns the
        response it earned without being sent. ``reads``: it was proven to
        read, so a lost answer may be asked again."""
        method, envelope = sent
        if method is None:
            refusal: dict[str, Any] = envelope
            return refusal
        safe = reads or declared_read(method, dry_run_option(envelope))
        return self._wire.exchange(method, envelope, safe=safe)

    def changes(
        self,
        since: int | str = 0,
        *,
        limit: int = 100,
        follow: bool = False,
        caller: str | None = None,
        poll_interval: float = 0.5,
    ) -> ChangeFeed:
        """The server's committed changes after ``since``, as
        :meth:`anda.Nexus.changes` reads them (pages of ``CHANGES`` over
        ``POST /kip``). With ``follow``, it listens to ``GET /changes`` (the
        server-sent events of ``python -m anda serve``) and reconnects from
        its position when the connection or the server goes away, giving up
        with :class:`anda.ServerUnreachableError` after ``timeout`` seconds
        without the server; a server without that route (Anda's own) is
        re-read every ``poll_interval`` seconds instead.

        ``caller`` must be ``None``: the server follows the key's caller.

        >>> import anda
        >>> with anda.Client("http://127.0.0.1:8080", api_key="secret") as client:
        ...     feed = client.changes(since=0, follow=True)
        ...     for envelope in feed:  # doctest: +SKIP
        ...         print(envelope["space_seq"], envelope["tx_id"])
        ...     feed
        <anda.ChangeFeed at space_seq 0 (following)>
        """
        from anda._changes import client_feed

        self._admit(caller)
        return client_feed(self, since, limit=limit, follow=follow, poll_interval=poll_interval)

    def list_logs(self, cursor: str | None = None, limit: int | None = None) -> LogPage:
        """One page of the server's audit log (``list_logs``), oldest first.

        Args:
            cursor: the ``next_cursor`` of the previous page (``None``: the
                first page).
            limit: entries per page: 10 by default, at most 100; 0 asks for
                an empty page.

        Returns:
            A :class:`anda.LogPage` ``(logs, next_cursor)``; ``next_cursor``
            is ``None`` once a page comes back short. Under per-caller
            tenancy a key reads only its caller's entries.

        Raises:
            anda.KipError: the server refused (a malformed cursor:
                ``CursorInvalidated``; a server that keeps no log:
                ``UnsupportedCapability``).
            anda.RemoteError: the exchange failed outside KIP.

        >>> import anda
        >>> with anda.Client("http://127.0.0.1:8080", api_key="secret") as client:
        ...     logs, cursor = client.list_logs(limit=100)  # doctest: +SKIP
        ...     while cursor is not None:  # doctest: +SKIP
        ...         more, cursor = client.list_logs(cursor, limit=100)
        ...         logs += more
        """
        from anda._logs import list_logs

        self._admit(None)
        return list_logs(self._wire.exchange, cursor, limit)
