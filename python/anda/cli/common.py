"""What the subcommands of ``python -m anda`` share: the options that say
which memory (``--db``, ``$ANDA_DB``, ``--name``, ``--storage-option``, ...),
opening it, reading a command's inputs, logging and signals.

A ``--db`` (or ``$ANDA_DB``) location is a store (``None`` for one in memory,
a directory, a bucket URL) or a server's ``http(s)://`` URL, opened by
:func:`anda.open_memory` as a :class:`anda.Nexus` or an :class:`anda.Client`.
A subcommand that needs the store itself, not a memory, refuses a URL with
:func:`refuse_server` before anything is opened.

>>> import argparse
>>> parser = argparse.ArgumentParser(prog="example")
>>> add_store_arguments(parser)
>>> args = parser.parse_args(["--db", "http://127.0.0.1:8080", "--storage-option", "a=b"])
>>> args.db, storage_options(args.storage_options, "--storage-option")
('http://127.0.0.1:8080', {'a': 'b'})
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, NoReturn

from anda._client import Client
from anda._location import is_url, open_memory
from anda._nexus import Nexus

__all__ = [
    "LOG_LEVELS",
    "add_log_level_argument",
    "add_store_arguments",
    "configure_logging",
    "handle_signals",
    "open_from_arguments",
    "parse_parameters",
    "progress_bar",
    "read_input",
    "refuse_server",
    "storage_options",
    "subcommand_parser",
    "usage_error",
]

#: The choices of ``--log-level``.
LOG_LEVELS = ("debug", "info", "warning", "error")

#: The signals that stop a long-running subcommand (SIGINT is Ctrl-C).
STOP_SIGNALS = ("SIGTERM", "SIGINT")

# The options only add_store_arguments(memory_options=True) adds; absent, they are None.
_MEMORY_OPTIONS = ("readonly", "tenancy", "schema_packages")


def subcommand_parser(name: str, description: str, example: str) -> argparse.ArgumentParser:
    """The parser of ``python -m anda NAME``, its help ending with ``example``."""
    return argparse.ArgumentParser(
        prog=f"python -m anda {name}", description=description, epilog=f"Example: {example}"
    )


def add_store_arguments(
    parser: argparse.ArgumentParser,
    *,
    memory_options: bool = True,
    db_help: str | None = None,
    readonly_help: str = "refuse state-changing commands",
) -> None:
    """``--db`` (default ``$ANDA_DB``), ``--name`` and ``--storage-option``;
    with ``memory_options`` also ``--readonly``, ``--tenancy``, ``--caller``
    and ``--schema-package``."""
    parser.add_argument(
        "--db",
        default=os.environ.get("ANDA_DB") or None,
        help=db_help
        or "where the memory is: a store directory, a bucket (s3://, gs://, az://; "
        "credentials from the environment), or a server's http(s):// URL "
        "(default: $ANDA_DB, else an in-memory store that is lost on exit)",
    )
    parser.add_argument("--name", default=None, help="database name inside the store")
    if memory_options:
        parser.add_argument("--readonly", action="store_true", help=readonly_help)
        parser.add_argument(
            "--tenancy",
            choices=("shared", "per_caller"),
            default=None,
            help="one shared memory (the default), or one memory per caller",
        )
        parser.add_argument(
            "--caller", default=None, help="who the calls run as (a principal or any id)"
        )
    parser.add_argument(
        "--storage-option",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        dest="storage_options",
        help="an object_store option for a bucket --db (e.g. aws_endpoint=URL); repeatable",
    )
    if memory_options:
        parser.add_argument(
            "--schema-package",
            action="append",
            default=None,
            metavar="FILE",
            dest="schema_packages",
            help="a Schema Package (JSON file) to install and activate; repeatable",
        )


def refuse_server(parser: argparse.ArgumentParser, location: str | None, why: str) -> None:
    """Exit with status 2 when ``location`` is a server's URL: the
    subcommand needs the store itself, for the reason ``why``. Call it before
    opening anything."""
    if is_url(location):
        parser.error(
            f"--db (or $ANDA_DB) {location} is a server, and {why}: run this where the "
            "store is, with --db naming its directory or bucket"
        )


def open_from_arguments(args: argparse.Namespace, **given: Any) -> Nexus | Client:
    """The memory the parsed arguments name (``given`` overrides them).

    Raises ``anda.AndaError`` (the store cannot be opened), ``ValueError``
    or ``TypeError`` (options it refuses: a store option with a server URL,
    a malformed ``--storage-option``)."""
    options: dict[str, Any] = {option: getattr(args, option, None) for option in _MEMORY_OPTIONS}
    options |= given
    return open_memory(
        args.db,
        readonly=bool(options.pop("readonly")),
        name=args.name,
        storage_options=storage_options(args.storage_options, "--storage-option"),
        **options,
    )


def storage_options(given: list[str] | None, flag: str) -> dict[str, str] | None:
    """``KEY=VALUE`` arguments as a ``storage_options`` mapping (``None`` if none)."""
    if not given:
        return None
    pairs = [option.partition("=") for option in given]
    if any(not key or not sep for key, sep, _ in pairs):
        raise ValueError(f"{flag} takes KEY=VALUE")
    return {key: value for key, _, value in pairs}


def read_input(parser: argparse.ArgumentParser, path: str) -> str:
    """The text of the file at ``path`` (``-``: standard input); a file that
    cannot be read is a usage error."""
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as err:
        usage_error(parser, f"cannot read {path}: {err}")


def parse_parameters(parser: argparse.ArgumentParser, text: str | None) -> dict[str, Any] | None:
    """``--params``: a JSON object, or ``None`` when not given."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        usage_error(parser, f"--params is not valid JSON: {err}")
    if not isinstance(value, dict):
        usage_error(parser, "--params must be a JSON object")
    return value


def usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """The usage, then ``message``, on standard error; exit status 2."""
    parser.error(message)


def add_log_level_argument(parser: argparse.ArgumentParser, *, default: str, help: str) -> None:
    """``--log-level``, one of :data:`LOG_LEVELS`."""
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default=default, help=f"{help} (default: {default})"
    )


def configure_logging(level: str, format: str) -> None:
    """Log records of ``level`` and above to standard error, never stdout
    (it may be a protocol channel)."""
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format=format)


@contextlib.contextmanager
def handle_signals(handler: Callable[[int, FrameType | None], Any]) -> Iterator[None]:
    """Runs ``handler`` on SIGTERM and SIGINT (those the platform has) inside
    the block, and restores the previous handlers after it."""
    previous: dict[int, Any] = {}
    try:
        for name in STOP_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is not None:
                previous[signum] = signal.signal(signum, handler)
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def progress_bar(enabled: bool, total: int | None, *, unit: str, desc: str) -> Any:
    """A tqdm bar on standard error when it is a terminal (``anda[cli]``), else ``None``."""
    if not enabled or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        print("anda: pip install 'anda[cli]' for a progress bar", file=sys.stderr)
        return None
    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr)
