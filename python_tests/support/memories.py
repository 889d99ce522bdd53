"""Every kind of memory, opened fresh, and a call's outcome in a form two
memories can be compared by.

The kinds: an embedded :class:`anda.Nexus` in memory and on disk; an
:class:`anda.Client` of the ``python -m anda serve`` application, run by
uvicorn on a free port in this process; and the server's own wrapper of its
memory (the ``anda.Memory`` its routes and MCP server call).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anda
from anda.tools import ToolResult

#: Every kind of memory; the first is the reference the others must equal.
KINDS = ("nexus", "nexus-on-disk", "client", "server-wrapper")
#: The kinds with the whole public face (the wrapper carries the protocol only).
FULL_KINDS = ("nexus", "nexus-on-disk", "client")

# Fields that say when, not what (a digest covers the time of export): two
# memories never agree on them.
_VOLATILE = frozenset(
    {
        "committed_at",
        "receipt_digest",
        "exported_at",
        "created_at",
        "updated_at",
        "content_digest",
        "integrity",
    }
)


@contextlib.contextmanager
def open_memory(kind: str, tmp_path: Path) -> Iterator[Any]:
    """A fresh, empty memory of ``kind``."""
    if kind == "nexus":
        with anda.Nexus() as nexus:
            yield nexus
    elif kind == "nexus-on-disk":
        with anda.Nexus(tmp_path / f"store-{time.monotonic_ns()}") as nexus:
            yield nexus
    elif kind == "client":
        with anda.Nexus() as nexus, served(nexus) as url, anda.Client(url) as client:
            yield client
    elif kind == "server-wrapper":
        with anda.Nexus() as nexus:
            yield server_wrapper(nexus)
    else:
        raise ValueError(kind)


def server_wrapper(memory: anda.Nexus) -> Any:
    """The ``anda.Memory`` the server's routes and MCP server call, taken from
    the application ``create_app`` builds, as the server builds it."""
    from anda.server import create_app

    app = create_app(memory, close_memory=False)
    [guard] = [m for m in app.user_middleware if "engine" in m.kwargs]
    return guard.kwargs["engine"]


@contextlib.contextmanager
def served(memory: anda.Nexus) -> Iterator[str]:
    """``memory`` behind the ``anda serve`` application, on uvicorn on a free port."""
    import uvicorn

    from anda.server import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(memory, close_memory=False)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def call(memory: Any, mode: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """``memory.<name>(...)``, or with ``mode == "async"`` its ``_async`` twin, awaited."""
    if mode == "sync":
        return getattr(memory, name)(*args, **kwargs)

    async def main() -> Any:
        return await getattr(memory, f"{name}_async")(*args, **kwargs)

    return asyncio.run(main())


def outcome(run: Callable[[], Any]) -> tuple[Any, ...]:
    """What ``run()`` returned, or the exception it raised, comparable across
    memories: the type, the message, and a KIP error's response."""
    try:
        value = run()
    except Exception as err:  # noqa: BLE001 - every error is part of the outcome
        response = getattr(err, "response", None)
        return ("raised", type(err), str(err), normalised(response))
    if isinstance(value, ToolResult):
        return ("tool", value.is_error, normalised(value.response))
    return ("returned", normalised(value))


def normalised(value: Any) -> Any:
    """``value`` without the fields that say when rather than what."""
    if isinstance(value, dict):
        return {k: _field(k, v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [normalised(item) for item in value]
    return value


def _field(key: str, value: Any) -> Any:
    if key == "tx_id" and isinstance(value, str):
        # A dry run's transaction id ends in a random "~<nonce>".
        return value.partition("~")[0]
    return normalised(value)
