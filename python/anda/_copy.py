"""Copying a whole store between locations, object by object, and proving
the copy equal."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anda import _anda
from anda._nexus import Nexus, _bucket
from anda._snapshot import dump_store
from anda.errors import StoreError

__all__ = ["CopyResult", "copy_store"]

# Objects copied per native call: progress between calls, and Ctrl-C.
_BATCH_BYTES = 8 * 1024 * 1024


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
    """Copies the whole store at ``source`` to ``destination``, then opens
    the copy and checks that it holds exactly what the source holds
    (:func:`anda.testing.dump_store`, ids and keys included).

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

    def held(overwrite: bool) -> _anda.NativeCopyDestination:
        return _anda.NativeCopyDestination(
            path, url, options, name, _anda.DEFAULT_LEASE_TTL, overwrite
        )

    copied = total = 0
    with Nexus(source, name=name, readonly=True, storage_options=source_storage_options) as nexus:
        expected = dump_store(nexus)
        objects = nexus._native._stored_objects()
        total = sum(size for _, size in objects)
        target = held(overwrite)
        try:
            for batch in _batches(objects):
                copied += target.copy_from(nexus._native, batch)
                if progress is not None:
                    progress(copied, total)
        except BaseException:
            target.release()
            _discard(held)
            raise
        target.release()
    try:
        with Nexus(
            destination, name=name, readonly=True, storage_options=destination_storage_options
        ) as copy:
            found = dump_store(copy)
    except BaseException:
        _discard(held)
        raise
    if found != expected:
        _discard(held)
        raise StoreError(
            f"the copy at {destination!r} did not read back equal to the source; removed it"
        )
    return CopyResult(files=len(objects), bytes=copied)


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


def _batches(objects: list[tuple[str, int]]) -> list[list[str]]:
    batches: list[list[str]] = []
    size = _BATCH_BYTES
    for key, length in objects:
        if size >= _BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(key)
        size += length
    return batches


def _discard(held: Callable[[bool], _anda.NativeCopyDestination]) -> None:
    """Deletes a failed copy: taking the destination with ``overwrite`` clears it."""
    held(True).release()
