"""``python -m anda serve``: open a store and serve it over HTTP
(``pip install 'anda[server]'``; the app is :func:`anda.server.create_app`).

This process owns the store it serves, so ``--db`` names a store, never
another server. Exit status 0 after SIGTERM or SIGINT; 1 when the store
cannot be opened; 2 for a configuration it refuses.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sqlite3
import sys
from collections.abc import Sequence
from types import FrameType

import anda
from anda.cli.common import (
    add_log_level_argument,
    add_store_arguments,
    configure_logging,
    handle_signals,
    open_from_arguments,
    refuse_server,
    subcommand_parser,
)

# anda.server, not its dependencies first: if one is missing, the ImportError names the extra.
from anda.server import DEFAULT_MAX_BODY, DEFAULT_MAX_IN_FLIGHT, DEFAULT_TIMEOUT, create_app
from anda.server._audit import (
    DEFAULT_MAX_LOGGED_REQUEST_BYTES,
    DEFAULT_RETENTION_DAYS,
    check_retention,
)
from anda.server._guard import is_loopback

__all__ = ["main"]


class _UsageError(Exception):
    """A configuration the server refuses to start with (exit status 2)."""


class _Stopped(Exception):
    """SIGTERM or SIGINT: the server has shut down gracefully."""


def _parser() -> argparse.ArgumentParser:
    parser = subcommand_parser(
        "serve",
        "Serve an Anda memory over HTTP: KIP at POST /kip (the wire format of "
        "Anda's own server), MCP over streamable HTTP at /mcp, the change feed at "
        "GET /changes; every request is kept in an audit log (list_logs, python -m anda logs).",
        "ANDA_KEY=... python -m anda serve --db ./memory --api-key-env ANDA_KEY",
    )
    add_store_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (default: 8080)")
    parser.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="require a bearer key, read from this environment variable (its calls run as "
        "--caller)",
    )
    parser.add_argument(
        "--keys-file",
        metavar="PATH",
        help='bearer keys from a JSON file {"<key>": "<caller id>", ...}; under --tenancy '
        "per_caller each caller has a memory of its own",
    )
    parser.add_argument(
        "--max-body",
        type=int,
        default=DEFAULT_MAX_BODY,
        metavar="BYTES",
        help=f"largest request body (default: {DEFAULT_MAX_BODY})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"deadline for a request to arrive and to be answered (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=DEFAULT_MAX_IN_FLIGHT,
        metavar="N",
        help=f"requests served at once; more are refused with 429 (default: "
        f"{DEFAULT_MAX_IN_FLIGHT})",
    )
    parser.add_argument(
        "--audit-log",
        metavar="PATH",
        help="the audit log's SQLite file, or :memory: (default: anda.audit.sqlite inside a "
        "directory store, else in memory)",
    )
    parser.add_argument(
        "--log-retention-days",
        type=int,
        default=DEFAULT_RETENTION_DAYS,
        metavar="DAYS",
        help=f"days an audit log entry is kept; 0 keeps every entry (default: "
        f"{DEFAULT_RETENTION_DAYS})",
    )
    parser.add_argument(
        "--max-logged-request-bytes",
        type=int,
        default=DEFAULT_MAX_LOGGED_REQUEST_BYTES,
        metavar="BYTES",
        help=f"the largest request an audit log entry stores whole; larger ones are cut "
        f"(default: {DEFAULT_MAX_LOGGED_REQUEST_BYTES}, at least 256)",
    )
    add_log_level_argument(
        parser, default="info", help="what to log on stderr; info logs every request"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m anda serve [options]``: see :func:`anda.server.main`."""
    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    refuse_server(parser, args.db, "this process owns the store it serves")
    configure_logging(args.log_level, "%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        keys = _keys(args)
        if not keys and not is_loopback(args.host):
            raise _UsageError(
                f"refusing to serve on {args.host} without an API key: anyone who can reach it "
                "could read and write the memory; pass --api-key-env or --keys-file, or bind "
                "to 127.0.0.1"
            )
        for option in ("max_body", "timeout", "max_in_flight"):
            if not getattr(args, option) > 0:
                raise _UsageError(f"--{option.replace('_', '-')} must be positive")
        try:
            check_retention(args.log_retention_days)
        except ValueError as err:
            raise _UsageError(f"--log-retention-days: {err}") from None
    except _UsageError as err:
        _say(f"error: {err}")
        return 2
    with contextlib.suppress(_Stopped), handle_signals(_stop):
        try:
            # A URL was refused above: this process owns a store.
            memory = open_from_arguments(args)
            assert isinstance(memory, anda.Nexus)
        except (anda.AndaError, TypeError, ValueError) as err:
            _say(f"error: cannot open the store: {err}")
            return 1
        try:
            app = create_app(
                memory,
                api_keys=keys,
                caller=args.caller,
                max_body=args.max_body,
                timeout=args.timeout,
                max_in_flight=args.max_in_flight,
                audit_log=args.audit_log,
                log_retention_days=args.log_retention_days,
                max_logged_request_bytes=args.max_logged_request_bytes,
            )
            where = "IN MEMORY (lost on exit)" if memory.path is None else memory.path
            _say(
                f"serving {where} on http://{args.host}:{args.port} ({memory.tenancy} tenancy, "
                f"{'read-only' if memory.readonly else 'writable'}, {len(keys)} API key(s))"
            )
            import uvicorn

            config = uvicorn.Config(
                app,
                host=args.host,
                port=args.port,
                log_config=None,  # this process's logging, as configured above
                access_log=False,  # the app logs every request itself, without secrets
                server_header=False,
            )

            class Server(uvicorn.Server):
                async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
                    # uvicorn waits for open responses before the app's own
                    # shutdown: the change feed's streams must end first.
                    app.state.feeds.stop()
                    await super().shutdown(sockets)

            # uvicorn re-raises a signal it shut down for; _stop turns it into _Stopped.
            Server(config).run()
        except _Stopped:
            pass
        except (sqlite3.Error, OSError) as err:
            _say(f"error: cannot open the audit log {args.audit_log}: {err}")
            return 1
        finally:
            memory.close()
    return 0


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped(signum)


def _keys(args: argparse.Namespace) -> dict[str, str | None]:
    """The bearer keys and their callers, from --api-key-env and --keys-file."""
    keys: dict[str, str | None] = {}
    if args.keys_file is not None:
        try:
            with open(args.keys_file, encoding="utf-8") as handle:
                loaded = json.load(handle)
        except (OSError, ValueError) as err:
            raise _UsageError(f"cannot read --keys-file {args.keys_file}: {err}") from None
        if not isinstance(loaded, dict) or not all(
            isinstance(key, str) and key.strip() == key and key and isinstance(caller, str)
            for key, caller in loaded.items()
        ):
            raise _UsageError(
                f"--keys-file {args.keys_file} must hold a JSON object mapping each key "
                "(non-empty, no surrounding spaces) to a caller id"
            )
        keys.update(loaded)
    if args.api_key_env is not None:
        key = os.environ.get(args.api_key_env, "")
        if not key.strip() or key.strip() != key:
            raise _UsageError(
                f"--api-key-env: ${args.api_key_env} is unset, empty or has surrounding spaces"
            )
        keys[key] = args.caller
    return keys


def _say(message: str) -> None:
    print(f"anda serve: {message}", file=sys.stderr, flush=True)
