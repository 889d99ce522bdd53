"""Copying a whole store, byte for byte, and proving the copy equal."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from anda import _anda
from anda._nexus import Nexus, _has_entries
from anda.errors import StoreError

__all__ = ["CopyResult", "copy_store"]

# anda's own lock file: each store has its own, so it is never copied.
_LOCK_FILE = "anda.lock"
_STORE_ENTRIES = frozenset({_LOCK_FILE, "gen", "meta"})


@dataclass(frozen=True)
class CopyResult:
    """What :func:`copy_store` copied.

    Attributes:
        files: files copied (the lock file stays behind).
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
) -> CopyResult:
    """Copies the whole store at ``source`` to ``destination``, then opens
    the copy and checks that it holds exactly what the source holds
    (:func:`anda.testing.dump_store`, ids and keys included).

    The copy is byte for byte: ids, keys, history and schema all come along,
    which a Capsule (:meth:`Nexus.import_capsule`) does not carry. The source
    is held open (so no other process writes to it) and flushed first.

    Args:
        source: a directory store.
        destination: a new or empty directory, or with ``overwrite`` an
            existing anda store, which is replaced.
        name: the database name inside the store.
        overwrite: replace an existing store at ``destination``.
        progress: called as ``progress(bytes_done, bytes_total)`` after each file.

    Raises:
        anda.StoreError: a location is not a store directory, the
            destination is not empty (without ``overwrite``), or the copy
            does not read back equal (it is removed then).
        anda.StoreLockedError: either store is open elsewhere.

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
    from anda.testing import dump_store

    source_path, target = Path(_local(source, "source")), Path(_local(destination, "destination"))
    if source_path.resolve() == target.resolve():
        raise StoreError("source and destination are the same store")
    if not _has_entries(os.fspath(source_path)):
        raise StoreError(f"no store to copy at {os.fspath(source_path)!r}")
    _prepare(target, name, overwrite)
    with Nexus(source_path, name=name, readonly=True) as nexus:
        nexus.flush()
        expected = dump_store(nexus)
        files = [
            path
            for path in sorted(source_path.rglob("*"))
            if path.is_file() and path.relative_to(source_path).parts != (_LOCK_FILE,)
        ]
        total = sum(path.stat().st_size for path in files)
        done = 0
        for path in files:
            copied = target / path.relative_to(source_path)
            copied.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copied)
            done += path.stat().st_size
            if progress is not None:
                progress(done, total)
    with Nexus(target, name=name, readonly=True) as copy:
        found = dump_store(copy)
    if found != expected:
        _clear(target)
        raise StoreError(
            f"the copy at {os.fspath(target)!r} did not read back equal to the source; removed it"
        )
    return CopyResult(files=len(files), bytes=total)


def _local(location: object, role: str) -> str:
    path = os.fspath(location)  # type: ignore[call-overload]
    if not isinstance(path, str):
        raise TypeError(f"{role} must be a str or os.PathLike[str] directory")
    if "://" in path:
        raise ValueError(
            f"{role} {path!r}: copy_store copies directory stores (not yet buckets "
            "or servers); for those, export a capsule and import it"
        )
    return path


def _prepare(target: Path, name: str, overwrite: bool) -> None:
    if not _has_entries(os.fspath(target)):
        target.mkdir(parents=True, exist_ok=True)
        return
    if not overwrite:
        raise StoreError(
            f"the destination {os.fspath(target)!r} is not empty; pass overwrite=True "
            "(--overwrite) to replace the store there"
        )
    if not {entry.name for entry in target.iterdir()} <= _STORE_ENTRIES:
        raise StoreError(f"refusing to overwrite {os.fspath(target)!r}: it is not an anda store")
    Nexus(target, name=name, readonly=True).close()  # a store, and nobody has it open
    _clear(target)


def _clear(target: Path) -> None:
    for entry in target.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
