"""``anda.Client``: a memory served over HTTP, by ``python -m anda serve`` or by
Anda's own server (``anda_cognitive_nexus_server``).

Only the standard library is used, so a bare ``pip install anda`` can talk to
a server. Requests are the upstream wire format: ``POST /kip`` with
``{"method": "execute_kip", "params": <KIP 2.0 request envelope>}``.
"""

from __future__ import annotations

import json
import math
import random
import select
import threading
import time
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from anda import _anda
from anda._calls import (
    READ_WRITE_TOOL,
    READONLY_TOOL,
    TOOLS,
    ToolResult,
    check_bool,
    check_caller,
    check_tool_call,
    declared_read,
    dry_run_option,
    invalid_envelope,
    normalise,
)
from anda._nexus import Command, Execution
from anda.bulk import BulkResult, Operation, Write, write_chunks
from anda.errors import (
    NexusClosedError,
    RemoteError,
    ServerUnreachableError,
    error_from_response,
)

if TYPE_CHECKING:
    import http.client

__all__ = ["Client", "RemoteError", "ServerUnreachableError"]

# A pooled connection idle longer than this is dropped rather than reused: the
# server may close it at any moment after its keep-alive window (uvicorn: 5 s),
# and a request sent into that race has an unknown fate.
_MAX_IDLE_SECONDS = 3.0
_MAX_IDLE_CONNECTIONS = 16
_USER_AGENT = f"anda-python/{_anda.__version__}"


class _NotSent(Exception):
    """The request never reached the server in full: re-sending is safe."""


class _Broken(Exception):
    """The connection failed after the request was sent."""


class Client:
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
        readonly: send every call to the read-only method
            (``execute_kip_readonly``), so no call can write, whatever the
            server allows. Anda's Rust server has no such method.
        retries: how many times a call may be re-sent, and only when that is
            safe: the connection failed before the request went out; the
            server answered with a ``safe_same_request`` retry class (rate
            limited, shutting down); or the call cannot write (read-only, or
            a dry run) and the connection broke. A write whose outcome is
            unknown is never re-sent.

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
    """

    __slots__ = ("_api_key", "_closed", "_path", "_pool", "_readonly", "_retries", "_url")

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
        self._path = base + "/kip"
        self._api_key = api_key
        self._readonly = readonly
        self._retries = retries
        self._closed = False
        self._pool = _Pool(parts.scheme, parts.hostname, parts.port, float(timeout))

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self._url

    @property
    def readonly(self) -> bool:
        """Whether every call goes to the read-only method."""
        return self._readonly

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def execute_kip(
        self,
        command: Command,
        parameters: Mapping[str, Any] | None = None,
        dry_run: bool = False,
        *,
        execution: Execution | None = None,
        caller: str | None = None,
    ) -> dict[str, Any]:
        """Runs KIP on the server: the call and result of :meth:`anda.Nexus.execute_kip`.

        Raises:
            anda.KipError: the engine (or the server) refused the request; a
                subclass per error category, as :class:`anda.Nexus` raises.
            anda.RemoteError: the exchange failed outside KIP
                (:class:`anda.ServerUnreachableError` if nothing was sent).
            TypeError, ValueError: an argument the engine could not take, or
                ``caller`` other than ``None``.
            anda.NexusClosedError: the Client is closed.

        >>> import anda
        >>> client = anda.Client("http://127.0.0.1:8080")
        >>> client.execute_kip("DESCRIBE PRIMER", caller="alice")
        Traceback (most recent call last):
        ...
        ValueError: the server decides who a Client's calls run as, from its API key; ...
        """
        params = self._envelope(command, parameters, dry_run, execution, caller)
        method = self._method()
        response = self._exchange(method, params, safe=declared_read(method, dry_run))
        if response.get("status") != "succeeded":
            raise error_from_response(response)
        return response

    async def execute_kip_async(
        self,
        command: Command,
        parameters: Mapping[str, Any] | None = None,
        dry_run: bool = False,
        *,
        execution: Execution | None = None,
        caller: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`execute_kip` for ``asyncio``, run on a worker thread.

        Cancelling the awaiting task abandons the answer, not the request: a
        write already sent may still commit.
        """
        import asyncio  # here, not at the top: `import anda` stays cheap

        return await asyncio.to_thread(
            self.execute_kip, command, parameters, dry_run, execution=execution, caller=caller
        )

    def call_tool(
        self, name: str, arguments: str | Mapping[str, Any], *, caller: str | None = None
    ) -> ToolResult:
        """Runs a model's tool call on the server, as :meth:`anda.Nexus.call_tool` does.

        Arguments the engine refuses come back in the result, not raised.

        Raises:
            ValueError: ``name`` is not one of the two tools, or ``caller``
                is not ``None``.
            anda.RemoteError: the exchange failed outside KIP.
            anda.NexusClosedError: the Client is closed.

        >>> import anda
        >>> client = anda.Client("http://127.0.0.1:8080")
        >>> client.call_tool("execute_kip", "{not json").response["error"]["code"]
        'InvalidRequestEnvelope'
        """
        check_tool_call(name, caller)
        self._check_open(caller)
        if name not in TOOLS:
            raise ValueError(
                f"unknown tool {name!r}: anda runs 'execute_kip' and 'execute_kip_readonly'"
            )
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments, parse_constant=_not_json)
            except ValueError as err:
                return ToolResult.from_response(_invalid_arguments(f"not valid JSON: {err}"))
        try:
            arguments = _to_json(arguments, 0)
        except (TypeError, ValueError) as err:
            return ToolResult.from_response(_invalid_arguments(f"arguments{err}"))
        if self._readonly:
            name = READONLY_TOOL
        dry_run = arguments.get("dry_run") if isinstance(arguments, dict) else None
        safe = declared_read(name, dry_run)
        return ToolResult.from_response(self._exchange(name, _tool_params(arguments), safe=safe))

    def execute_request(
        self, request: Mapping[str, Any], *, readonly: bool = False, caller: str | None = None
    ) -> dict[str, Any]:
        """Sends a whole KIP 2.0 request envelope: the call and result of
        :meth:`anda.Nexus.execute_request` (the response is returned, not
        raised, whatever its status).

        Raises:
            TypeError, ValueError: ``request`` is not a JSON object the engine
                could take, or ``caller`` is not ``None``.
            anda.RemoteError: the exchange failed outside KIP.
            anda.NexusClosedError: the Client is closed.
        """
        check_bool("readonly", readonly)
        self._check_open(caller)
        if not isinstance(request, Mapping):
            raise TypeError(f"request must be a mapping, not {type(request).__name__}")
        try:
            params = _to_json(request, 0)
        except (TypeError, ValueError) as err:
            raise type(err)(f"request{err}") from None
        method = READONLY_TOOL if readonly else self._method()
        return self._exchange(method, params, safe=declared_read(method, dry_run_option(params)))

    async def execute_request_async(
        self, request: Mapping[str, Any], *, readonly: bool = False, caller: str | None = None
    ) -> dict[str, Any]:
        """:meth:`execute_request` for ``asyncio``, run on a worker thread."""
        import asyncio

        return await asyncio.to_thread(
            self.execute_request, request, readonly=readonly, caller=caller
        )

    def bulk_write(
        self,
        operations: Iterable[Operation],
        *,
        chunk_size: int | None = None,
        progress: Callable[[int], None] | None = None,
        caller: str | None = None,
    ) -> BulkResult:
        """:meth:`anda.Nexus.bulk_write` on the server: the same chunks, each
        sent as one ``MUTATE`` request (one transaction on the server).

        A chunk whose answer is lost raises :class:`anda.RemoteError` with
        ``outcome_unknown``; ``err.committed`` of the :class:`BulkWriteError`
        it comes wrapped in counts only the chunks known to be stored.
        """
        self._check_open(caller)

        def commit(writes: list[Write]) -> None:
            command, parameters = _anda.combine_writes(writes)
            self.execute_kip(command, parameters)

        return write_chunks(operations, commit, chunk_size=chunk_size, progress=progress)

    async def call_tool_async(
        self, name: str, arguments: str | Mapping[str, Any], *, caller: str | None = None
    ) -> ToolResult:
        """:meth:`call_tool` for ``asyncio``, run on a worker thread."""
        import asyncio

        return await asyncio.to_thread(self.call_tool, name, arguments, caller=caller)

    def close(self) -> None:
        """Closes the pooled connections. Idempotent; the server is not affected.

        >>> import anda
        >>> client = anda.Client("http://127.0.0.1:8080")
        >>> client.close(); client.close()
        >>> client.closed
        True
        """
        self._closed = True
        self._pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("read-only" if self._readonly else "open")
        return f"<anda.Client {self._url!r} ({state})>"

    # -- the wire --------------------------------------------------------------

    def _method(self) -> str:
        return READONLY_TOOL if self._readonly else READ_WRITE_TOOL

    def _check_open(self, caller: object) -> None:
        if caller is not None:
            raise ValueError(
                "the server decides who a Client's calls run as, from its API key; "
                "give each caller its own key (python -m anda serve --keys-file) "
                "and pass caller=None"
            )
        if self._closed:
            raise NexusClosedError("this Client is closed; open a new one to reach the server")

    def _envelope(
        self,
        command: Command,
        parameters: Mapping[str, Any] | None,
        dry_run: bool,
        execution: Execution | None,
        caller: str | None,
    ) -> dict[str, Any]:
        """The KIP 2.0 request envelope for a Nexus-style call."""
        batch, mode = normalise(command, execution, self._readonly)
        check_bool("dry_run", dry_run)
        check_caller(caller)
        self._check_open(caller)
        if isinstance(batch, str):
            operations = [{"command": _text(batch, "command")}]
        else:
            if mode is None and len(batch) > 1:
                # What the engine's read-only path defaults to; the wire wants it said.
                mode = "independent"
            operations = []
            for index, (text, own) in enumerate(batch):
                operation: dict[str, Any] = {"command": _text(text, f"commands[{index}]")}
                if own is not None:
                    operation["parameters"] = _parameters(own, f"commands[{index}] parameters")
                operations.append(operation)
        envelope: dict[str, Any] = {"kip": _anda.KIP_VERSION, "operations": operations}
        if mode is not None:
            envelope["execution"] = {"mode": mode}
        if parameters is not None:
            envelope["parameters"] = _parameters(parameters, "parameters")
        if dry_run:
            envelope["options"] = {"dry_run": True}
        return envelope

    def _exchange(self, method: str, params: Any, *, safe: bool) -> dict[str, Any]:
        """Sends one call, re-sending only when that is safe; returns the KIP response."""
        if self._closed:
            raise NexusClosedError("this Client is closed; open a new one to reach the server")
        body = json.dumps(
            {"method": method, "params": params}, ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key}"
        attempt = 0
        while True:
            can_retry = attempt < self._retries
            attempt += 1
            try:
                status, data = self._pool.send(self._path, body, headers)
            except _NotSent as err:
                if can_retry:
                    _backoff(attempt, None)
                    continue
                raise ServerUnreachableError(
                    f"cannot reach {self._url}: {err.__cause__}", url=self._url
                ) from err.__cause__
            except _Broken as err:
                timed_out = isinstance(err.__cause__, TimeoutError)
                if safe and can_retry and not timed_out:
                    _backoff(attempt, None)
                    continue
                what = (
                    "no answer in time" if timed_out else f"the connection broke: {err.__cause__}"
                )
                unknown = "" if safe else "; the write may or may not have committed"
                raise RemoteError(
                    f"{self._url}: {what}{unknown}", url=self._url, outcome_unknown=not safe
                ) from err.__cause__
            response = self._decode(status, data, safe=safe)
            retry = _retry_info(response)
            if can_retry and retry.get("class") == "safe_same_request":
                _backoff(attempt, retry.get("after_ms"))
                continue
            return response

    def _decode(self, status: int, data: bytes, *, safe: bool) -> dict[str, Any]:
        try:
            response = json.loads(data)
        except ValueError:
            response = None
        if isinstance(response, dict) and isinstance(response.get("status"), str):
            return response
        # A 5xx without a KIP body (a proxy's error page) says nothing about a write.
        raise RemoteError(
            f"{self._url} answered HTTP {status} without a KIP response"
            f" (is it an anda server?): {data[:200]!r}",
            url=self._url,
            status=status,
            outcome_unknown=status >= 500 and not safe,
        )


class _Pool:
    """Kept-alive HTTP connections to one server, safe to share between threads."""

    def __init__(self, scheme: str, host: str, port: int | None, timeout: float) -> None:
        self._https = scheme == "https"
        self._host = host
        self._port = port
        self._timeout = timeout
        self._idle: list[tuple[http.client.HTTPConnection, float]] = []
        self._lock = threading.Lock()
        self._closed = False

    def send(self, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """One request on one connection: ``_NotSent`` or ``_Broken`` on failure."""
        import http.client

        connection = self._take()
        try:
            connection.request("POST", path, body, dict(headers))
        except OSError as err:
            # The request was not written in full, so no server can have run it.
            connection.close()
            raise _NotSent from err
        try:
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as err:
            connection.close()
            raise _Broken from err
        if response.will_close:
            connection.close()
        else:
            self._give_back(connection)
        return response.status, data

    def _take(self) -> http.client.HTTPConnection:
        import http.client

        with self._lock:
            while self._idle:
                connection, since = self._idle.pop()
                if time.monotonic() - since < _MAX_IDLE_SECONDS and _alive(connection):
                    return connection
                connection.close()
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = kind(self._host, self._port, timeout=self._timeout)
        try:
            connection.connect()
        except OSError as err:
            connection.close()
            raise _NotSent from err
        return connection

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < _MAX_IDLE_CONNECTIONS:
                self._idle.append((connection, time.monotonic()))
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection, _ in idle:
            connection.close()


def _alive(connection: http.client.HTTPConnection) -> bool:
    """An idle connection is dead if it became readable: the server closed it."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _backoff(attempt: int, after_ms: object) -> None:
    if isinstance(after_ms, int) and not isinstance(after_ms, bool) and 0 <= after_ms <= 60_000:
        time.sleep(after_ms / 1000)
    else:
        time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))


def _retry_info(response: dict[str, Any]) -> dict[str, Any]:
    error = response.get("error")
    retry = error.get("retry") if isinstance(error, dict) else None
    return retry if isinstance(retry, dict) else {}


def _tool_params(arguments: Any) -> Any:
    """A model's tool arguments as the wire envelope, where they map one to one.

    Anything else goes as it is, for the engine to judge (and answer) exactly
    as it judges a model's call.
    """
    if not isinstance(arguments, dict) or not arguments.keys() <= _TOOL_FIELDS:
        return arguments
    if ("command" in arguments) == ("operations" in arguments):
        return arguments
    if "command" in arguments:
        operations: Any = [{"command": arguments["command"]}]
    else:
        operations = arguments["operations"]
        if not isinstance(operations, list):
            return arguments
        operations = [{"command": op} if isinstance(op, str) else op for op in operations]
    envelope: dict[str, Any] = {"kip": _anda.KIP_VERSION, "operations": operations}
    for field in ("execution", "read", "parameters"):
        if arguments.get(field) is not None:
            envelope[field] = arguments[field]
    if arguments.get("dry_run") is not None:
        envelope["options"] = {"dry_run": arguments["dry_run"]}
    return envelope


_TOOL_FIELDS = frozenset({"command", "operations", "execution", "read", "parameters", "dry_run"})


def _invalid_arguments(detail: str) -> dict[str, Any]:
    return invalid_envelope(f"invalid tool arguments: {detail}")


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _text(value: str, where: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"{where}: string contains a lone surrogate, which has no UTF-8 encoding"
        ) from None
    return value


def _parameters(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{where}: expected a mapping of parameter names to values, got {type(value).__name__}"
        )
    try:
        return _mapping(value, 0)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{where}{err}") from None


def _to_json(value: object, depth: int) -> Any:
    """``value`` as plain JSON, under the engine's rules (as :class:`anda.Nexus`
    converts it); errors read ``<path>: <problem>``, the path to be prefixed."""
    if depth > _anda.MAX_JSON_DEPTH:
        raise ValueError(
            f": nesting deeper than {_anda.MAX_JSON_DEPTH} levels (or a value that contains itself)"
        )
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value, "")
    if isinstance(value, int):
        if abs(value) > _anda.MAX_SAFE_INTEGER:
            raise ValueError(
                f": integer {value} is outside the range the engine takes "
                f"(±{_anda.MAX_SAFE_INTEGER})"
            )
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f": {value} is not a JSON number (NaN and infinities are not allowed)")
        if value.is_integer() and abs(value) > _anda.MAX_SAFE_INTEGER:
            raise ValueError(
                f": {value} is an integral number outside the range the engine takes "
                f"(±{_anda.MAX_SAFE_INTEGER})"
            )
        return value
    if isinstance(value, (list, tuple)):
        items = []
        for index, item in enumerate(value):
            try:
                items.append(_to_json(item, depth + 1))
            except (TypeError, ValueError) as err:
                raise type(err)(f"[{index}]{err}") from None
        return items
    if isinstance(value, Mapping):
        return _mapping(value, depth + 1)
    raise TypeError(
        f": {type(value).__name__} is not JSON-compatible (use None, bool, int, float, str, "
        "list, tuple or a mapping with str keys)"
    )


def _mapping(value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f": keys must be str, got {type(key).__name__} key {key!r}")
        try:
            result[_text(key, "")] = _to_json(item, depth)
        except (TypeError, ValueError) as err:
            raise type(err)(f"[{_quoted(key)}]{err}") from None
    return result


def _quoted(key: str) -> str:
    """A key in an error path, quoted as :class:`anda.Nexus` quotes it."""
    quote = '"' if "'" in key and '"' not in key else "'"
    escapes = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", quote: "\\" + quote}
    return (
        quote
        + "".join(
            escapes.get(c) or (f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else c)
            for c in key
        )
        + quote
    )
