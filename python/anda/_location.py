"""One place that turns a store location into a memory.

``None`` is an in-memory store, a path a directory store, an ``s3://``,
``gs://`` or ``az://`` URL a bucket store, and an ``http://`` or
``https://`` URL a server (``python -m anda serve``) reached through
:class:`anda.Client`. ``ANDA_DB``, ``--db`` and :func:`anda.open_memory` all
go through here, so each accepts every kind of location.
"""

from __future__ import annotations

import os
from typing import Any

from anda._client import Client
from anda._nexus import Nexus

__all__ = ["is_url", "open_memory"]

#: The environment variable holding the bearer key for a server location.
API_KEY_VARIABLE = "ANDA_API_KEY"


def is_url(location: object) -> bool:
    """Whether ``location`` names a server rather than a store."""
    return isinstance(location, str) and location.lower().startswith(("http://", "https://"))


def open_memory(
    location: str | os.PathLike[str] | None = None, *, readonly: bool = False, **options: Any
) -> Nexus | Client:
    """Opens the memory at ``location``: a store, or a server.

    Store options (``name``, ``tenancy``, ``verify``, ``schema_packages``,
    ``storage_options``) go to :class:`anda.Nexus`;
    a server decides them itself, so they are refused with a URL. A server's
    key comes from the ``ANDA_API_KEY`` environment variable.

    >>> import anda
    >>> with anda.open_memory() as memory:
    ...     type(memory).__name__, memory.execute_kip("DESCRIBE PRIMER")["status"]
    ('Nexus', 'succeeded')
    """
    if is_url(location):
        given = sorted(key for key, value in options.items() if value is not None)
        if given:
            raise ValueError(
                f"{', '.join(given)} cannot be chosen by a client: the server at "
                f"{location} decides them"
            )
        return Client(
            str(location), api_key=os.environ.get(API_KEY_VARIABLE) or None, readonly=readonly
        )
    return Nexus(location, readonly=readonly, **{k: v for k, v in options.items() if v is not None})
