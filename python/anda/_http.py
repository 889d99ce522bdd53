"""The HTTP side of :class:`anda.Client`: one call to ``POST /kip``, re-sent
only when that is safe, over kept-alive connections.

Only the standard library is used, so a bare ``pip install anda`` can talk to
a server.
"""

from __future__ import annotations

import json
import random
import select
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anda import _anda, _observer
from anda.errors import RemoteError, ServerUnreachableError

if TYPE_CHECKING:
    import http.client

__all__ = ["Wire"]

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


class Wire:
    """Calls to one server's ``/kip``: ``{"method": ..., "params": ...}`` in,
    a KIP response envelope out.

    Args:
        scheme, host, port: where the server is.
        url: its base URL, as errors name it.
        path: the path of ``/kip`` on it.
        api_key: the bearer key, or ``None``.
        timeout: seconds for a connection, and for each read of an answer.
        retries: how many times a call may be re-sent when that is safe.
    """

    def __init__(
        self,
        *,
        scheme: str,
        host: str,
        port: int | None,
        url: str,
        path: str,
        api_key: str | None,
        timeout: float,
        retries: int,
    ) -> None:
        self._url = url
        self._path = path
        self._api_key = api_key
        self._retries = retries
        self._pool = _Pool(scheme, host, port, timeout)

    def close(self) -> None:
        """Closes the idle connections; a call still running keeps its own."""
        self._pool.close()

    def exchange(self, method: str, params: Any, *, safe: bool) -> dict[str, Any]:
        """Sends one call, re-sending only when that is safe (``safe``: it
        cannot write); returns the KIP response."""
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
        observer = _observer.current
        if observer is not None:
            observer.inject(headers)  # the trace goes on at the server (anda.telemetry)
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
