"""``anda.Nexus``: the memory's public face (:mod:`anda._base`) over the
native store, with what only a store has: opening, verifying, schema
packages, capsule import, flushing and closing."""

from __future__ import annotations

import atexit
import os
import sys
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from anda import _anda, _engine_logs
from anda._awaiting import awaited
from anda._base import BaseMemory, Batch, Command, Execution
from anda._calls import check_bool
from anda._capsules import (
    DEFAULT_SPACE,
    Capsule,
    SchemaPackage,
    capsule_text,
    package_source,
    package_sources,
)
from anda._changes import ChangeFeed
from anda._commits import committed, notify_commit
from anda._default import default_memory, default_nexus, execute_kip
from anda.bulk import Write
from anda.errors import AndaError, CorruptStoreError, error_from_response

__all__ = [
    "Command",
    "Execution",
    "Nexus",
    "Tenancy",
    "VerifyReport",
    "default_memory",
    "default_nexus",
    "execute_kip",
]

#: How callers are bound to memory: one shared memory, or one per caller.
Tenancy = Literal["shared", "per_caller"]

_TENANCIES = ("shared", "per_caller")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a store: where, and what."""

    collection: str
    document: int | None
    message: str

    def __str__(self) -> str:
        where = self.collection if self.document is None else f"{self.collection}/{self.document}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Nexus.verify` found.

    Attributes:
        ok: no problem found.
        problems: each damaged or missing record.
        documents_read: records read back.
        collections: each collection checked, with the records its metadata lists.
    """

    ok: bool
    problems: tuple[Problem, ...]
    documents_read: int
    collections: dict[str, int]


# Stores still open, closed (and so flushed) at interpreter exit.
_open_stores: weakref.WeakSet[Nexus] = weakref.WeakSet()


class Nexus(BaseMemory):
    """An embedded Cognitive Nexus: AndaDB + Cognitive Nexus + anda_engine memory.

    Args:
        path: ``None`` for an in-memory store, a directory (``str`` or
            ``os.PathLike``) for a persistent one, created if missing, or a
            bucket URL: ``s3://bucket/prefix``, ``gs://bucket/prefix``,
            ``az://container/prefix`` (also ``abfs://``, ``abfss://``).
        name: the database name inside the store. The default is the one
            ``anda_engine`` uses, so an Anda agent opening the same directory
            sees the same memory.
        readonly: refuse every state-changing command with a
            :class:`anda.KipProtocolError` (code ``ReadonlyViolation``). A
            read-only directory store must already exist.
        tenancy: ``"shared"`` (the default): one memory, and every call runs
            as the store's owner whatever ``caller`` it names.
            ``"per_caller"``: every ``caller`` runs as its own Principal in a
            MemorySpace it owns (the engine's ``Tenancy::PerCallerSpace``), so
            what one caller writes no other caller can read, search, describe
            or overwrite; a call with no caller is anonymous and may do
            nothing. See :func:`anda.caller_principal` for how an id maps to
            a Principal.
        verify: read back every record when opening (as :meth:`verify`
            does) and refuse a damaged store with
            :class:`anda.CorruptStoreError`. It costs a full read of the
            store. Without it, opening still refuses a store whose engine
            had to skip records while opening.
        schema_packages: Schema Package artifacts (mappings, JSON text or
            JSON file paths) to install and activate in the default Space on
            top of the bootstrap Cognitive Memory profile and general domain,
            as :meth:`install_schema_package` does. Idempotent: reopening with
            the same packages changes nothing, and a package stays active when
            a later open leaves it out. A refused package raises the engine's
            :class:`anda.KipError` and is not installed.
        storage_options: for a bucket URL, object_store's configuration
            keys (``aws_endpoint``, ``aws_region``, ``aws_access_key_id``,
            ``google_service_account``, ``azure_storage_account_key``, ...),
            values turned into strings; the environment (``AWS_*``,
            ``GOOGLE_*``, ``AZURE_*``) fills what is not given. An unknown key
            raises ``ValueError`` naming it; options with anything but a
            bucket URL raise ``TypeError``. No value is ever shown in a
            ``repr``, a message or a log. A bucket store is held by one
            ``Nexus`` at a time through a lease object beside the data
            (``<name>.lease``): a second opener anywhere, read-only included,
            gets :class:`anda.StoreLockedError` naming the holder.

    A directory can be open in one Nexus at a time; a second one, in this
    process or another, raises :class:`anda.StoreLockedError`. A Nexus is safe
    to share between threads; the GIL is released while the engine works.

    >>> import anda
    >>> with anda.Nexus() as nexus:
    ...     response = nexus.execute_kip(
    ...         'UPSERT CONCEPT ?p { MATCH { type: "Person", key: "ada" } '
    ...         'SET FIELDS { name: "Ada" } }'
    ...     )
    ...     rows = nexus.execute_kip(
    ...         'FIND(?p.name) WHERE { ?p {type: "Person", key: "ada"} }'
    ...     )["results"][0]["result"]
    >>> response["status"], rows
    ('succeeded', ['Ada'])
    """

    __slots__ = ("__weakref__", "_native")

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        name: str = _anda.DEFAULT_DB_NAME,
        readonly: bool = False,
        tenancy: Tenancy = "shared",
        verify: bool = False,
        schema_packages: Iterable[SchemaPackage] = (),
        storage_options: Mapping[str, Any] | None = None,
        _inject_faults: bool = False,
        _lease_ttl: float = _anda.DEFAULT_LEASE_TTL,
    ) -> None:
        url, options = _bucket(path, storage_options)
        if url is not None:
            path = None
        if path is not None:
            path = os.fspath(path)
            if not isinstance(path, str):
                raise TypeError(f"path must be str or os.PathLike[str], not bytes: {path!r}")
            if not path:
                raise ValueError("path must not be empty; pass None for an in-memory store")
        if not isinstance(name, str):
            raise TypeError(f"name must be str, not {type(name).__name__}")
        check_bool("readonly", readonly)
        if tenancy not in _TENANCIES:
            raise ValueError(f"tenancy must be one of {_TENANCIES}, not {tenancy!r}")
        check_bool("verify", verify)
        packages = package_sources(schema_packages)
        if packages and readonly is True:
            raise ValueError("schema_packages need a writable store; open it without readonly")
        _engine_logs.follow_levels()
        self._native = _anda.NativeNexus(
            path, name, readonly, tenancy, packages, _inject_faults, url, options, _lease_ttl
        )
        _open_stores.add(self)
        if verify:
            report = self.verify()
            if not report.ok:
                # Only reads have run, so closing writes nothing new.
                self.close()
                shown = "; ".join(str(problem) for problem in report.problems[:10])
                raise CorruptStoreError(
                    f"the store at {path!r} is damaged ({len(report.problems)} problem(s)): "
                    + shown
                )

    @property
    def path(self) -> str | None:
        """The store directory or bucket URL, or ``None`` for an in-memory store."""
        if self._native.url is not None:
            return self._native.url
        path = self._native.path
        return None if path is None else os.fspath(path)

    @property
    def readonly(self) -> bool:
        """Whether state-changing commands are refused."""
        return self._native.readonly

    @property
    def tenancy(self) -> Tenancy:
        """``"shared"`` or ``"per_caller"``: how callers are bound to memory."""
        return "per_caller" if self._native.tenancy == "per_caller" else "shared"

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._native.closed

    # -- the primitives (see anda._base) -------------------------------------------------

    def _admit(self, caller: str | None) -> None:
        """Nothing: the native store refuses a call once closed."""

    def _execute(
        self, batch: Batch, mode: str | None, parameters: Any, dry_run: bool, caller: str | None
    ) -> dict[str, Any]:
        return _signalled(self, self._native.execute(batch, parameters, dry_run, mode, caller))

    async def _execute_async(
        self, batch: Batch, mode: str | None, parameters: Any, dry_run: bool, caller: str | None
    ) -> dict[str, Any]:
        response: dict[str, Any] = await awaited(
            lambda reply: self._native.execute_async(
                batch, parameters, dry_run, mode, caller, reply
            )
        )
        return _signalled(self, response)

    def _call_tool(self, name: str, arguments: Any, caller: str | None) -> dict[str, Any]:
        return _signalled(self, self._native.call_tool(name, arguments, caller))

    async def _call_tool_async(
        self, name: str, arguments: Any, caller: str | None
    ) -> dict[str, Any]:
        response: dict[str, Any] = await awaited(
            lambda reply: self._native.call_tool_async(name, arguments, caller, reply)
        )
        return _signalled(self, response)

    def _execute_request(self, request: Any, readonly: bool, caller: str | None) -> dict[str, Any]:
        return _signalled(self, self._native.execute_envelope(request, readonly, caller))

    async def _execute_request_async(
        self, request: Any, readonly: bool, caller: str | None
    ) -> dict[str, Any]:
        response: dict[str, Any] = await awaited(
            lambda reply: self._native.execute_envelope_async(request, readonly, caller, reply)
        )
        return _signalled(self, response)

    def _write_all(self, writes: list[Write], caller: str | None) -> dict[str, Any]:
        written: dict[str, Any] = self._native.write_all(writes, caller)
        notify_commit(self)
        return written

    # -- what only a store has ---------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Reads back every record the store's own metadata lists, and
        reports each one that is missing, unreadable or malformed.

        A full read of the store: run it from a maintenance job (``python -m
        anda check --db PATH`` does), not on every request.

        >>> import anda
        >>> with anda.Nexus() as nexus:
        ...     report = nexus.verify()
        >>> report.ok, report.problems, report.documents_read > 0
        (True, (), True)
        """
        collections, documents_read, problems = self._native.verify()
        found = tuple(Problem(*problem) for problem in problems)
        return VerifyReport(
            ok=not found,
            problems=found,
            documents_read=documents_read,
            collections=dict(collections),
        )

    def install_schema_package(
        self, package: SchemaPackage, *, activate: bool = True
    ) -> dict[str, Any]:
        """Installs a Schema Package and, with ``activate`` (the default), puts
        it in force in the default Space beside the packages already active.

        Args:
            package: the artifact: a mapping, its JSON text, or a JSON file path.
            activate: ``False`` only installs it: stored, checked, but not in
                force (its types are unknown to commands and ``LIST SCHEMA
                PACKAGES``) until it is installed again with ``activate``.

        Returns:
            ``{"installed": [package_ref], "schema_environment_version": n,
            "active": {package_id: version}}``. Installing the same package
            again changes nothing (the version stays).

        Raises:
            anda.KipError: the engine refused the package: unreadable
                (``ArtifactParseError``), invalid, a new content under an
                installed version (``DigestMismatch``), or defining a name
                another active package already defines
                (``SchemaSymbolConflict``). Nothing is installed then.
            anda.KipProtocolError: the store is read-only.

        >>> import anda
        >>> with anda.Nexus() as nexus:
        ...     result = nexus.install_schema_package("examples/schema/support-1.0.0.json")
        ...     created = nexus.execute_kip(
        ...         'UPSERT CONCEPT ?t { MATCH { type: "Ticket", key: "T-1" } '
        ...         'SET FIELDS { name: "Login fails" } }'
        ...     )
        >>> result["active"]["kip://example.com/support"], created["status"]
        ('1.0.0', 'succeeded')
        """
        source = package_source(package)
        check_bool("activate", activate)
        return _result(self._native.install_schema_packages([source], activate))

    def import_capsule(self, capsule: Capsule, *, dry_run: bool = False) -> dict[str, Any]:
        """Imports a Capsule into this store's default Space.

        The engine's ``merge`` import: the capsule is verified first (a
        tampered one is refused before anything is written), every schema
        package it depends on must be active here, and every record gets a new
        id in this store (``identity_map`` says which). Importing the same
        capsule again resolves to the elements the first import created
        instead of duplicating them. Keys are not carried over: the engine
        treats a ``key`` as local to the Space that assigned it (two memories'
        ``"alice"`` may be two people), so imported concepts have none. To
        move or back up a whole store with its keys and ids, use
        :func:`anda.copy_store`. With ``dry_run``, it is checked and
        previewed (``PREVIEW IMPORT CAPSULE``) and nothing is written.

        Returns:
            ``{"imported": bool, "counts": {kind: n}, "identity_map": {source
            id: new id}, "warnings": [...]}``.

        Raises:
            anda.KipArtifactError: the capsule fails verification.
            anda.KipSchemaError: it needs a schema package this store lacks
                (``SchemaPackageUnavailable``).
            anda.KipProtocolError: the store is read-only.

        >>> import anda
        >>> with anda.Nexus() as source, anda.Nexus() as other:
        ...     _ = source.execute_kip(
        ...         'UPSERT CONCEPT ?p { MATCH { type: "Person", key: "ada" } '
        ...         'SET FIELDS { name: "Ada" } }'
        ...     )
        ...     report = other.import_capsule(source.export_capsule())
        ...     found = other.execute_kip('FIND(?p.name, ?p.key) WHERE { ?p {type: "Person"} }')
        >>> report["imported"], report["counts"], found["results"][0]["result"]
        (True, {'concept': 1}, [['Ada', None]])
        """
        text = capsule_text(capsule)
        check_bool("dry_run", dry_run)
        if dry_run:
            response = self.execute_kip(
                "PREVIEW IMPORT CAPSULE :capsule INTO :space",
                {"capsule": text, "space": DEFAULT_SPACE},
            )
            preview: dict[str, Any] = response["results"][0]["result"]
            return preview
        return _result(self._native.import_capsule(text, False))

    def flush(self) -> None:
        """Writes everything pending to storage without closing.

        >>> import anda
        >>> with anda.Nexus() as nexus:
        ...     nexus.flush()
        """
        self._native.flush()

    def close(self) -> None:
        """Waits for running calls, flushes everything to disk and closes.

        Idempotent. Also called on exit from a ``with`` block and, for stores
        still open, at interpreter exit.

        >>> import anda
        >>> nexus = anda.Nexus()
        >>> nexus.close(); nexus.close()
        >>> nexus.closed
        True
        """
        _open_stores.discard(self)
        self._native.close()

    def __repr__(self) -> str:
        where = "in memory" if self.path is None else repr(self.path)
        state = "closed" if self.closed else ("read-only" if self.readonly else "open")
        return f"<anda.Nexus {where} ({state})>"

    def changes(
        self,
        since: int | str = 0,
        *,
        limit: int = 100,
        follow: bool = False,
        caller: str | None = None,
        poll_interval: float = 0.5,
    ) -> ChangeFeed:
        """The committed changes after ``since``, one Change Envelope per
        commit, oldest first: an iterator and an async iterator (see
        :class:`anda.ChangeFeed`).

        Args:
            since: the ``space_seq`` to continue after (0: from the first
                commit), e.g. a feed's ``position`` or the last envelope's
                ``space_seq``.
            limit: envelopes read per ``CHANGES`` page (1 to 1000).
            follow: once caught up, wait for new commits instead of ending.
            caller: whose Space to follow, under ``tenancy="per_caller"``.
            poll_interval: with ``follow``, the longest wait between two
                reads when no commit signal arrives: a commit through this
                ``Nexus`` object (or ``python -m anda serve`` over it) wakes
                its followers at once; one by another process is found by
                the next read.

        >>> import anda
        >>> with anda.Nexus() as nexus:
        ...     _ = nexus.execute_kip('UPSERT CONCEPT ?p { MATCH { type: "Person", key: "ada" } }')
        ...     [(e["space_seq"], e["changes"][0]["id"]) for e in nexus.changes()]
        [(1, 'C-1')]
        """
        return ChangeFeed(
            self, since, limit=limit, follow=follow, caller=caller, poll_interval=poll_interval
        )


def _signalled(nexus: Nexus, response: dict[str, Any]) -> dict[str, Any]:
    """``response``, after waking ``nexus``'s followers if it committed."""
    if committed(response):
        notify_commit(nexus)
    return response


def _bucket(
    path: object, storage_options: Mapping[str, Any] | None
) -> tuple[str | None, list[tuple[str, str]]]:
    """The bucket URL ``path`` names (or ``None``) and the options as strings."""
    url = path if isinstance(path, str) and _anda.is_bucket_url(path) else None
    if storage_options is None:
        return url, []
    if url is None:
        raise TypeError(
            "storage_options configures a bucket store (s3://, gs://, az://); "
            f"{'an in-memory store' if path is None else 'a directory'} takes none"
        )
    if not isinstance(storage_options, Mapping):
        raise TypeError(f"storage_options must be a mapping, not {type(storage_options).__name__}")
    options = []
    for key, value in storage_options.items():
        if not isinstance(key, str):
            raise TypeError(f"storage option keys must be str, not {type(key).__name__}")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        options.append((key, text))
    return url, options


def _result(response: dict[str, Any]) -> dict[str, Any]:
    if response.get("status") != "succeeded":
        raise error_from_response(response)
    result: dict[str, Any] = response["result"]
    return result


@atexit.register
def _close_open_stores() -> None:
    for nexus in list(_open_stores):
        try:
            nexus.close()
        except AndaError as err:  # exit goes on for the other stores
            print(f"anda: could not close {nexus!r} at exit: {err}", file=sys.stderr)
