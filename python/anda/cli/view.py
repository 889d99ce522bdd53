"""``python -m anda view``: the inspector, a read-only web page of a memory
(``pip install 'anda[server]'``; the page is :mod:`anda.view`).

Opens the memory ``--db`` names read-only (a store, or a server's URL through
:class:`anda.Client`), serves the page on 127.0.0.1 at a free port, prints
its URL and opens it in a browser (unless ``--no-browser``). Exit status 0
after SIGTERM or SIGINT (Ctrl-C); 1 when the memory cannot be opened; 2 for
options it refuses.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import webbrowser
from collections.abc import Sequence
from types import FrameType

import anda
from anda.cli.common import (
    add_log_level_argument,
    add_store_arguments,
    configure_logging,
    handle_signals,
    open_from_arguments,
    subcommand_parser,
)

# anda.view._web first: if starlette is missing, the ImportError names the extra.
from anda.view._web import PREFIX, create_view_app

__all__ = ["main"]


class _Stopped(Exception):
    """SIGTERM or SIGINT: the page has shut down gracefully."""


def _parser() -> argparse.ArgumentParser:
    parser = subcommand_parser(
        "view",
        "Open the inspector: a read-only web page of an Anda memory (search concepts, their "
        "cards, neighbours, history, the primer and the changes as they commit), served on "
        "this machine only.",
        "python -m anda view --db ./memory",
    )
    add_store_arguments(parser, readonly_help="(always on: the inspector only reads)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="loopback address to bind (default: 127.0.0.1); the page is for this machine only",
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: 0, a free one)")
    parser.add_argument(
        "--no-browser", action="store_true", help="print the URL without opening a browser"
    )
    add_log_level_argument(parser, default="warning", help="what to log on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m anda view [options]``."""
    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        parser.error(
            f"--host {args.host}: the inspector serves this machine only (127.0.0.1, ::1 or "
            "localhost); to share a memory's page, use python -m anda serve, whose /view is "
            "behind its keys"
        )
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a port")
    configure_logging(args.log_level, "anda view: %(levelname)s %(name)s: %(message)s")
    try:
        listener = socket.create_server((args.host, args.port))
    except OSError as err:
        _say(f"error: cannot listen on {args.host}:{args.port}: {err}")
        return 1
    with contextlib.closing(listener), contextlib.suppress(_Stopped), handle_signals(_stop):
        try:
            memory = open_from_arguments(args, readonly=True)
        except (anda.AndaError, TypeError, ValueError) as err:
            _say(f"error: cannot open the memory: {err}")
            return 1
        try:
            return _serve(memory, listener, args)
        except _Stopped:
            return 0
        finally:
            memory.close()
    return 0


def _serve(
    memory: anda.Nexus | anda.Client, listener: socket.socket, args: argparse.Namespace
) -> int:
    import uvicorn

    app = create_view_app(memory, caller=args.caller)
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}{PREFIX}/"
    where = memory.url if isinstance(memory, anda.Client) else (memory.path or "an IN-MEMORY store")
    _say(f"the inspector of {where} (read-only) is at {url}")
    print(url, flush=True)
    if not args.no_browser:
        # The socket already listens: the browser's request waits for the server below.
        webbrowser.open(url)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # uvicorn waits for open responses: the change feed's streams end first.
            app.state.feeds.stop()
            await super().shutdown(sockets)

    config = uvicorn.Config(app, log_config=None, access_log=False, server_header=False)
    Server(config).run(sockets=[listener])
    return 0


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped(signum)


def _say(message: str) -> None:
    print(f"anda view: {message}", file=sys.stderr, flush=True)
