"""Copying a whole store between locations, object by object, and proving
the copy equal: the procedure is ``anda_embedded``'s ``StoreCopy``; this
converts arguments, reports progress and cleans up after an interruption."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anda import _anda
from anda._nexus import Nexus, _bucket

__all__ = ["CopyResult", "copy_store"]


@dataclass(frozen=True)
class CopyResult:
    """What :func:`copy_store` copied.

    Attributes:
        files: objects copied (files, for a directory store); the lock file
            or lease of the source stays behind.
        bytes: bytes copied.
    """

    files: int
    bytes: int


def copy_store(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    name: str = _anda.DEFAULT_DB_NAME,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    source_storage_options: Mapping[str, Any] | None = None,
    destination_storage_options: Mapping[str, Any] | None = None,
) -> CopyResult:
    """Copies the whole store at ``source`` to ``destination``, then checks
    that the copy holds exactly what the source holds (every object read back
    byte for byte, ids and keys included) and opens it read-only.

    Either location is a directory or a bucket URL (``s3://``, ``gs://``,
    ``az://``), so this also backs a directory store up to a bucket, or
    brings a bucket store down to a disk. The copy is object for object, as
    AndaDB stored them: ids, keys, history and schema all come along, which a
    Capsule (:meth:`Nexus.import_capsule`) does not carry. The source is held
    open read-only for the whole copy, and the destination locked (or
    leased), so nobody writes to either meanwhile. A server
    (``http://``) owns its store: stop it and copy its ``--db`` location.

    Args:
        source: the store to copy.
        destination: a new or empty directory, a bucket prefix holding no
            store, or with ``overwrite`` the location of a store to replace.
        name: the database name inside the stores.
        overwrite: replace the store at ``destination``.
        progress: called as ``progress(bytes_done, bytes_total)`` as the copy
            goes.
        source_storage_options: for a bucket ``source``, as
            :class:`Nexus`'s ``storage_options``.
        destination_storage_options: likewise for ``destination``.

    Raises:
        anda.StoreError: ``source`` holds no store, ``destination`` holds
            one (without ``overwrite``) or something else, or the copy does
            not read back equal (it is removed then, as after any failure).
        anda.StoreLockedError: either store is open elsewhere.
        ValueError: a server URL, or the same location twice.

    >>> import tempfile, anda
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with anda.Nexus(f"{tmp}/a") as nexus:
    ...         _ = nexus.execute_kip('UPSERT CONCEPT ?p { MATCH { type: "Person", key: "ada" } }')
    ...     result = anda.copy_store(f"{tmp}/a", f"{tmp}/b")
    ...     with anda.Nexus(f"{tmp}/b", readonly=True) as copy:
    ...         found = copy.execute_kip('FIND(?p.key) WHERE { ?p {type: "Person"} }')
    >>> result.files > 0, found["results"][0]["result"]
    (True, ['ada'])
    """
    source = _location(source, "source")
    destination = _location(destination, "destination")
    if _same(source, destination):
        raise ValueError("source and destination are the same store")
    url, options = _bucket(destination, destination_storage_options)
    path = None if url is not None else destination
    with Nexus(source, name=name, readonly=True, storage_options=source_storage_options) as nexus:
        copy = _anda.NativeStoreCopy(
            nexus._native,
            path,
            url,
            options,
            name,
            _anda.DEFAULT_LEASE_TTL,
            overwrite,
            destination,
        )
        try:
            while (done := copy.step(nexus._native)) is not None:
                if progress is not None:
                    progress(*done)
        except BaseException:
            copy.abandon()
            raise
    try:
        files, copied = copy.finish()
    except BaseException:
        copy.abandon()  # a no-op unless finishing was interrupted
        raise
    return CopyResult(files=files, bytes=copied)


def _location(location: object, role: str) -> str:
    text = os.fspath(location)  # type: ignore[call-overload]
    if not isinstance(text, str):
        raise TypeError(f"{role} must be a str or os.PathLike[str], not bytes")
    if text.lower().startswith(("http://", "https://")):
        raise ValueError(
            f"{role} {text!r} is a server, which owns its store: stop it and copy its "
            "--db location, or move memory through it with a Capsule (export_capsule)"
        )
    return text


def _same(a: str, b: str) -> bool:
    if _anda.is_bucket_url(a) or _anda.is_bucket_url(b):
        return a.rstrip("/") == b.rstrip("/")
    return Path(a).resolve() == Path(b).resolve()
