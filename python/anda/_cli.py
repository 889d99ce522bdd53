"""What every ``python -m anda`` subcommand that opens a memory shares."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from anda._client import Client
from anda._location import open_memory
from anda._nexus import Nexus

__all__ = ["add_store_arguments", "open_from_arguments", "progress_bar"]


def add_store_arguments(
    parser: argparse.ArgumentParser, *, readonly_help: str = "refuse state-changing commands"
) -> None:
    """``--db``, ``--name``, ``--readonly``, ``--tenancy``, ``--caller`` and
    ``--schema-package``."""
    parser.add_argument(
        "--db",
        default=os.environ.get("ANDA_DB") or None,
        help="where the memory is: a store directory, a bucket (s3://, gs://, az://; "
        "credentials from the environment), or a server's http(s):// URL "
        "(default: $ANDA_DB, else an in-memory store that is lost on exit)",
    )
    parser.add_argument("--name", default=None, help="database name inside the store")
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
    parser.add_argument(
        "--schema-package",
        action="append",
        default=None,
        metavar="FILE",
        dest="schema_packages",
        help="a Schema Package (JSON file) to install and activate; repeatable",
    )


def open_from_arguments(args: argparse.Namespace, **extra: Any) -> Nexus | Client:
    """The memory the parsed arguments name."""
    return open_memory(
        args.db,
        readonly=args.readonly,
        name=args.name,
        tenancy=args.tenancy,
        schema_packages=args.schema_packages,
        storage_options=storage_options(args.storage_options, "--storage-option"),
        **extra,
    )


def storage_options(given: list[str] | None, flag: str) -> dict[str, str] | None:
    """``KEY=VALUE`` arguments as a ``storage_options`` mapping (``None`` if none)."""
    if not given:
        return None
    pairs = [option.partition("=") for option in given]
    if any(not key or not sep for key, sep, _ in pairs):
        raise ValueError(f"{flag} takes KEY=VALUE")
    return {key: value for key, _, value in pairs}


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
