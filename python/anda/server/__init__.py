"""The HTTP door: ``python -m anda serve`` (``pip install 'anda[server]'``).

One process owns the store and serves it:

- ``POST /kip``: KIP, in the wire format of Anda's own Rust server
  (``anda_cognitive_nexus_server``), so its clients (``anda.Client``, Anda's
  MCP bridge, skill scripts, ``curl``) work against either. The body is
  ``{"method": "execute_kip", "params": <KIP 2.0 request envelope>}``
  (``execute_kip_readonly`` runs reads only); the answer is the KIP response
  envelope, with HTTP 200, 207 for a ``partial`` batch, or the status of its
  error (400 for a bad command, 401, 403, 404, 408, 409, 410, 413, 429, 501,
  503, 500) as the Rust server maps them.
- ``/mcp``: the MCP server of :mod:`anda.mcp`, over streamable HTTP.
- ``{"method": "list_logs", ...}`` at ``/kip``: the audit log, kept of every
  request but ``GET /`` (who asked, never a key; when; the commands; the
  outcome), answered as the Rust server answers it.
- ``GET /changes``: the committed changes, as server-sent events.
- ``/view/``: the inspector (:mod:`anda.view`), a read-only web page of the
  memory, behind the same keys (a browser gives the key as a Basic password).
- ``GET /``: service information, for probes.

With API keys (``--api-key-env``, ``--keys-file``) every request but ``GET /``
needs ``Authorization: Bearer <key>``, checked before the body is read; each
key maps to the caller its requests run as, so under ``--tenancy
per_caller`` each key has a memory of its own. Without keys the server binds
only to loopback. Bodies are bounded (413), requests have a deadline (408: a
write that overruns keeps running, and its answer says the outcome is
unknown), requests in flight are bounded (429). One log record per request
goes to the ``anda.server`` logger, never with a body or a key.

Several workers: a store can be open in one process only, so one
``python -m anda serve`` owns it and every other process is its client. To
spread HTTP work over worker processes (gunicorn with
``uvicorn.workers.UvicornWorker``, or ``uvicorn --workers``), give each worker
``app = create_app(anda.Client(owner_url, api_key=owner_key),
api_keys={worker_key: None})``: the workers share the owner's memory and all
run as the owner key's caller (a Client cannot choose a caller, so
per-caller tenancy stays with the owning server).

>>> from anda.server import create_app
>>> import anda
>>> with anda.Nexus() as memory:
...     [route.path for route in create_app(memory, close_memory=False).routes][:5]
['/', '/kip', '/changes', '/mcp', '/view']
"""

from __future__ import annotations

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
    from mcp.server import lowlevel  # noqa: F401
except ModuleNotFoundError as _err:  # only a missing package; a broken one raises as it is
    if (_err.name or "").partition(".")[0] not in {"starlette", "uvicorn", "mcp", "mcp_types"}:
        raise
    raise ImportError(
        "anda.server needs starlette, uvicorn and the MCP SDK: pip install 'anda[server]'"
    ) from _err

from collections.abc import Sequence

from anda.server._app import (
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_TIMEOUT,
    create_app,
)

__all__ = ["DEFAULT_MAX_BODY", "DEFAULT_MAX_IN_FLIGHT", "DEFAULT_TIMEOUT", "create_app", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m anda serve``: serves until SIGTERM or SIGINT, then returns 0.

    On a signal the server stops accepting connections, finishes the
    requests in flight and the writes that outlived their answers, then
    flushes and closes the store. Exit status 2: a configuration it refuses
    (no key on a non-loopback address, an unreadable keys file, a server's
    URL as ``--db``: this process owns the store); 1: the store could not be
    opened. The command line itself is ``anda.cli.serve``.

    >>> from anda.server import main
    >>> try:
    ...     main(["--help"])
    ... except SystemExit as done:
    ...     print("exit status", done.code)
    usage: python -m anda serve [-h] [--db DB] [--name NAME] [--readonly] ...
    exit status 0
    """
    from anda.cli.serve import main as serve

    return serve(argv)
