"""The Pythonic surface over the native store: argument checks, the context
manager, async calls and the process-wide default store."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from anda import _anda
from anda._calls import ToolResult, check_bool, check_caller, check_tool_call, normalise
from anda._capsules import (
    DEFAULT_SPACE,
    Capsule,
    SchemaPackage,
    capsule_text,
    export_command,
    package_source,
    package_sources,
)
from anda.bulk import BulkResult, Operation, Write, write_chunks
from anda.errors import AndaError, CorruptStoreError, StoreError, error_from_response

if TYPE_CHECKING:
    import asyncio

    from anda._client import Client

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

#: One command, or a batch: each item a command or a ``(command, parameters)`` pair.
Command = str | Sequence[str | tuple[str, Mapping[str, Any] | None]]
#: How the operations of a batch relate to one another.
Execution = Literal["sequence", "independent", "atomic"]
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


class Nexus:
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
            if readonly is True and not _has_entries(path):
                # Read-only never creates: a typo'd path must not read as an empty memory.
                raise StoreError(f"no store to open read-only at {path!r}")
        if not isinstance(name, str):
            raise TypeError(f"name must be str, not {type(name).__name__}")
        check_bool("readonly", readonly)
        if tenancy not in _TENANCIES:
            raise ValueError(f"tenancy must be one of {_TENANCIES}, not {tenancy!r}")
        check_bool("verify", verify)
        packages = package_sources(schema_packages)
        if packages and readonly is True:
            raise ValueError("schema_packages need a writable store; open it without readonly")
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

    def execute_kip(
        self,
        command: Command,
        parameters: Mapping[str, Any] | None = None,
        dry_run: bool = False,
        *,
        execution: Execution | None = None,
        caller: str | None = None,
    ) -> dict[str, Any]:
        """Runs a KIP command (KQL, KML or META) and returns the response envelope.

        Args:
            command: one command, or a batch: a sequence whose items are
                commands or ``(command, parameters)`` pairs.
            parameters: values for the ``:name`` placeholders, bound as data
                (never spliced into the text). For a batch they are shared by
                every operation; a pair's own parameters take precedence.
            dry_run: validate and plan without changing anything.
            execution: for a batch, ``"sequence"`` (the default: in order,
                each operation its own commit, stopping at the first failure),
                ``"independent"`` (every operation runs), or ``"atomic"``,
                which the pinned engine refuses (``UnsupportedCapability``):
                for all-or-nothing, send one ``MUTATE { ... }`` command.
                At most 256 operations per batch.
            caller: who the call runs as, under ``tenancy="per_caller"``: a
                Principal's text or any other string id (ignored by a shared
                store).

        Returns:
            The engine's response as plain Python objects:
            ``{"kip": "2.0", "status": "succeeded", "results": [{"status": ...,
            "result": ...}, ...], ...}``, one result per operation.

        Raises:
            anda.KipError: the engine rejected the command (a subclass per
                error category); ``err.response`` holds the full response.
            TypeError, ValueError: an argument is not what the engine can take.
            anda.NexusClosedError: the Nexus is closed.

        >>> import anda
        >>> with anda.Nexus() as nexus:
        ...     response = nexus.execute_kip(
        ...         'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } '
        ...         "SET FIELDS { name: :name } }",
        ...         {"key": "grace", "name": "Grace Hopper"},
        ...     )
        ...     found = nexus.execute_kip(
        ...         [
        ...             'FIND(?p.name) WHERE { ?p {type: "Person", key: "grace"} }',
        ...             "DESCRIBE PRIMER",
        ...         ],
        ...         execution="independent",
        ...     )
        >>> [result["status"] for result in found["results"]]
        ['succeeded', 'succeeded']
        >>> found["results"][0]["result"]
        ['Grace Hopper']
        """
        batch, mode = normalise(command, execution, self._native.readonly)
        check_bool("dry_run", dry_run)
        check_caller(caller)
        response = self._native.execute(batch, parameters, dry_run, mode, caller)
        return _checked(response)

    async def execute_kip_async(
        self,
        command: Command,
        parameters: Mapping[str, Any] | None = None,
        dry_run: bool = False,
        *,
        execution: Execution | None = None,
        caller: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`execute_kip` for ``asyncio``: same arguments, same result.

        The engine runs on its own threads; the event loop is never blocked.
        Cancelling the awaiting task aborts the engine call.

        >>> import anda, asyncio
        >>> async def main():
        ...     with anda.Nexus() as nexus:
        ...         response = await nexus.execute_kip_async("DESCRIBE PRIMER")
        ...         return response["status"]
        >>> asyncio.run(main())
        'succeeded'
        """
        batch, mode = normalise(command, execution, self._native.readonly)
        check_bool("dry_run", dry_run)
        check_caller(caller)
        response = await _awaited(
            lambda reply: self._native.execute_async(
                batch, parameters, dry_run, mode, caller, reply
            )
        )
        return _checked(response)

    def bulk_write(
        self,
        operations: Iterable[Operation],
        *,
        chunk_size: int | None = None,
        progress: Callable[[int], None] | None = None,
        caller: str | None = None,
    ) -> BulkResult:
        """Writes many operations in as few engine transactions as fit.

        Operations are read lazily (a generator or a file's lines keep memory
        flat whatever their number) and committed a chunk at a time, each
        chunk as ONE ``MUTATE`` transaction. The first chunk holds
        :data:`anda.bulk.DEFAULT_CHUNK_SIZE` operations; each one that goes
        in whole doubles the next (up to :data:`anda.bulk.MAX_CHUNK_SIZE`,
        and never more KIP text than the engine parses), since every
        transaction pays a cost that grows with the store. Each operation
        keeps its own parameters and ``?handles`` (they are renamed apart
        inside the transaction; values are never written into the KIP text).
        See :mod:`anda.bulk` for what an operation may be.

        What is atomic: each chunk. A chunk the engine finds too large is
        split and retried (a refused transaction writes nothing), and later
        chunks keep to half its size. If a chunk is refused for any other
        reason, or an operation cannot be sent, the write stops with
        :class:`anda.bulk.BulkWriteError`: every operation before
        ``err.committed`` is stored, none after it; resume from there.

        Args:
            operations: the writes, in order.
            chunk_size: a fixed number of operations per transaction,
                instead of chunks that grow.
            progress: called after each transaction with the number of
                operations committed so far.
            caller: who the writes run as (see ``tenancy``).

        Returns:
            A :class:`anda.bulk.BulkResult` (``operations``, ``transactions``).

        >>> import anda
        >>> with anda.Nexus() as nexus:
        ...     rows = ({"upsert": {"type": "Person", "key": f"p{i}"}} for i in range(450))
        ...     nexus.bulk_write(rows)
        BulkResult(operations=450, transactions=2)
        """
        check_caller(caller)
        native = self._native

        def commit(chunk: list[Write]) -> None:
            _checked(native.write_all(chunk, caller))

        return write_chunks(operations, commit, chunk_size=chunk_size, progress=progress)

    def call_tool(
        self, name: str, arguments: str | Mapping[str, Any], *, caller: str | None = None
    ) -> ToolResult:
        """Runs a model's call of ``execute_kip`` or ``execute_kip_readonly``.

        Args:
            name: the tool the model called.
            arguments: exactly what the model produced, as JSON text or a
                dict: ``command`` or ``operations``, and optionally
                ``parameters``, ``dry_run``, ``execution``, ``read``. They are
                read by the engine's own tool-argument type, as anda_engine
                runs its tool.
            caller: who the call runs as (see ``tenancy``).

        Returns:
            A :class:`anda.tools.ToolResult`. Arguments that are malformed or
            invalid, and commands the engine refuses, do not raise: they come
            back with ``is_error=True`` and the engine's error in the
            response, for the model to read and correct.
            ``execute_kip_readonly`` takes the read-only path even on a
            writable store.

        Raises:
            ValueError: ``name`` is not one of the two tools.
            anda.NexusClosedError: the Nexus is closed.

        >>> import anda, json
        >>> upsert = 'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :k } }'
        >>> with anda.Nexus() as nexus:
        ...     # JSON text, as a model's tool call carries it:
        ...     written = nexus.call_tool(
        ...         "execute_kip", json.dumps({"command": upsert, "parameters": {"k": "ada"}})
        ...     )
        ...     refused = nexus.call_tool("execute_kip_readonly", {"command": upsert})
        >>> written.is_error, refused.is_error, refused.error["code"]
        (False, True, 'ReadonlyViolation')
        """
        check_tool_call(name, caller)
        return ToolResult.from_response(self._native.call_tool(name, arguments, caller))

    async def call_tool_async(
        self, name: str, arguments: str | Mapping[str, Any], *, caller: str | None = None
    ) -> ToolResult:
        """:meth:`call_tool` for ``asyncio``: same arguments, same result.

        >>> import anda, asyncio
        >>> async def main():
        ...     with anda.Nexus() as nexus:
        ...         return await nexus.call_tool_async(
        ...             "execute_kip_readonly", {"command": "DESCRIBE PRIMER"}
        ...         )
        >>> asyncio.run(main()).is_error
        False
        """
        check_tool_call(name, caller)
        response = await _awaited(
            lambda reply: self._native.call_tool_async(name, arguments, caller, reply)
        )
        return ToolResult.from_response(response)

    def execute_request(
        self, request: Mapping[str, Any], *, readonly: bool = False, caller: str | None = None
    ) -> dict[str, Any]:
        """Runs a whole KIP 2.0 request envelope, as ``POST /kip`` carries it
        in ``params``, and returns the engine's response envelope as it is.

        For what :meth:`execute_kip` does not say: ``preconditions``,
        ``context``, ``requires``, ``ingest``, ``read`` bindings,
        ``request_id`` and ``options``. The engine checks every member and
        answers a refusal in the response (``status`` ``"failed"``), which is
        returned, not raised: a partial batch has results worth reading.
        ``space`` is refused: a request runs in the Space the store gives its
        caller.

        Args:
            request: the envelope (``kip``, ``operations``, ...).
            readonly: take the read-only path (``execute_kip_readonly``),
                which refuses the whole request if any operation writes.
            caller: who the request runs as (see :meth:`execute_kip`).

        Raises:
            TypeError: ``caller`` is not a str.
            anda.NexusClosedError: the Nexus is closed.

        >>> import anda
        >>> with anda.Nexus() as nexus:
        ...     response = nexus.execute_request({
        ...         "kip": "2.0",
        ...         "request_id": "r-1",
        ...         "operations": [{"command": "DESCRIBE PRIMER"}],
        ...     })
        >>> response["request_id"], response["status"]
        ('r-1', 'succeeded')
        """
        check_bool("readonly", readonly)
        check_caller(caller)
        response: dict[str, Any] = self._native.execute_envelope(request, readonly, caller)
        return response

    async def execute_request_async(
        self, request: Mapping[str, Any], *, readonly: bool = False, caller: str | None = None
    ) -> dict[str, Any]:
        """:meth:`execute_request` for ``asyncio``: same arguments, same result."""
        check_bool("readonly", readonly)
        check_caller(caller)
        response: dict[str, Any] = await _awaited(
            lambda reply: self._native.execute_envelope_async(request, readonly, caller, reply)
        )
        return response

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
        self._refuse_if_readonly("install a schema package")
        return _result(self._native.install_schema_packages([source], activate))

    def export_capsule(
        self,
        query: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        *,
        caller: str | None = None,
    ) -> dict[str, Any]:
        """Exports memory as a KIP Capsule: a self-verifying artifact (its
        records, the schema they depend on, a content digest) that
        :meth:`import_capsule` reads into another store.

        Args:
            query: ``None`` for the whole memory (every concept, proposition,
                assertion, evidence and activity, with what they reference);
                the patterns of a ``WHERE`` block that binds ``?roots`` (e.g.
                ``'?roots {type: "Person"}'``); or a whole ``EXPORT CAPSULE``
                command, for ``WITH { closure: ... }`` or ``AS OF SEQ``.
            parameters: values for the query's ``:name`` placeholders.
            caller: who exports, under ``tenancy="per_caller"``.

        Returns:
            The Capsule as a dict (``format``, ``payload``, ``integrity``).

        >>> import anda
        >>> with anda.Nexus() as nexus:
        ...     _ = nexus.execute_kip(
        ...         'UPSERT CONCEPT ?p { MATCH { type: "Person", key: "ada" } }'
        ...     )
        ...     capsule = nexus.export_capsule('?roots {type: "Person"}')
        >>> capsule["format"], len(capsule["payload"]["records"])
        ('KIP-Cognitive-Capsule', 1)
        """
        response = self.execute_kip(export_command(query), parameters, caller=caller)
        capsule: dict[str, Any] = response["results"][0]["result"]
        return capsule

    def verify_capsule(self, capsule: Capsule) -> dict[str, Any]:
        """Checks a Capsule's integrity (``VERIFY CAPSULE``): its payload must
        digest to what it declares.

        Returns:
            The engine's verdict, e.g. ``{"valid": True, "records": 3, ...}``.

        Raises:
            anda.KipArtifactError: the capsule was modified
                (``DigestMismatch``) or is not a capsule.
        """
        response = self.execute_kip("VERIFY CAPSULE :capsule", {"capsule": capsule_text(capsule)})
        verdict: dict[str, Any] = response["results"][0]["result"]
        return verdict

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
        self._refuse_if_readonly("import a capsule")
        return _result(self._native.import_capsule(text, False))

    def _refuse_if_readonly(self, what: str) -> None:
        if self._native.readonly:
            raise error_from_response(
                {
                    "status": "failed",
                    "error": {
                        "code": "ReadonlyViolation",
                        "category": "protocol",
                        "message": f"this Nexus is read-only: cannot {what}",
                    },
                }
            )

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

    def __enter__(self) -> Nexus:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "in memory" if self.path is None else repr(self.path)
        state = "closed" if self.closed else ("read-only" if self.readonly else "open")
        return f"<anda.Nexus {where} ({state})>"


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


def _has_entries(path: str) -> bool:
    try:
        with os.scandir(path) as entries:
            return any(True for _ in entries)
    except OSError:
        return False


async def _awaited(start: Callable[[_anda._Reply], _anda.NativeTask]) -> Any:
    """Starts a native call and awaits its result; cancelling aborts the call."""
    import asyncio

    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    inbox = _inbox(loop)
    if inbox is None:
        task = start(_settler(loop, future))
    else:
        token = inbox.new_token()
        task = start((inbox.native, token))
        # Only this thread collects, so the result cannot come before this.
        inbox.expect(token, future)
    try:
        return await future
    except asyncio.CancelledError:
        task.cancel()
        if inbox is not None:
            inbox.forget(token)
        raise


def _settler(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]
) -> Callable[[Any, BaseException | None], None]:
    """A callback, called on an engine thread, that settles `future` on its loop."""

    def deliver(result: Any, error: BaseException | None) -> None:
        # A closed loop (RuntimeError) means nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, future, result, error)

    return deliver


class _Inbox:
    """Where one event loop collects its finished async calls.

    Engine threads queue results natively and ring a socket the loop
    watches, so they never take the GIL; the loop builds the results' Python
    objects itself when it collects them.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, native_type: type[_anda.NativeInbox]):
        import socket

        self._bell, ringer = socket.socketpair()
        with ringer:
            self.native = native_type(ringer.fileno())
        self._bell.setblocking(False)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._tokens = itertools.count()
        try:
            loop.add_reader(self._bell.fileno(), self._collect)
        except BaseException:
            self._bell.close()
            raise
        weakref.finalize(loop, self._bell.close)

    def new_token(self) -> int:
        return next(self._tokens)

    def expect(self, token: int, future: asyncio.Future[Any]) -> None:
        self._waiting[token] = future

    def forget(self, token: int) -> None:
        self._waiting.pop(token, None)

    def _collect(self) -> None:
        # The socket first: a result queued after this read rings again.
        with contextlib.suppress(BlockingIOError, InterruptedError):
            self._bell.recv(4096)
        for token, result, error in self.native.take():
            future = self._waiting.pop(token, None)
            if future is not None:
                _settle(future, result, error)


_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Inbox | None] = (
    weakref.WeakKeyDictionary()
)
_inboxes_lock = threading.Lock()


def _inbox(loop: asyncio.AbstractEventLoop) -> _Inbox | None:
    """The loop's inbox, made on first use; ``None`` where the loop cannot
    watch a socket (Windows' proactor loop), so results come by callback."""
    native_type = getattr(_anda, "NativeInbox", None)
    if native_type is None:
        return None
    with _inboxes_lock:
        try:
            return _inboxes[loop]
        except KeyError:
            pass
        except TypeError:  # a loop that takes no weak references
            return None
        try:
            inbox: _Inbox | None = _Inbox(loop, native_type)
        except NotImplementedError:
            inbox = None
        _inboxes[loop] = inbox
        return inbox


def _result(response: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = _checked(response)["result"]
    return result


def _checked(response: dict[str, Any]) -> dict[str, Any]:
    if response.get("status") != "succeeded":
        raise error_from_response(response)
    return response


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


_default_lock = threading.Lock()
_default: Nexus | Client | None = None


def default_memory() -> Nexus | Client:
    """The process-wide memory behind :func:`anda.execute_kip`, created on first use.

    In memory, or the location named by the ``ANDA_DB`` environment variable
    if it is set: a directory, or a server's ``http(s)://`` URL (its key in
    ``ANDA_API_KEY``), which gives an :class:`anda.Client`. If it was closed,
    the next use opens it again.

    >>> import anda
    >>> anda.default_memory() is anda.default_memory()
    True
    """
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            from anda._location import open_memory

            _default = open_memory(os.environ.get("ANDA_DB") or None)
        return _default


def default_nexus() -> Nexus | Client:
    """Deprecated: the old name of :func:`default_memory`, which may be an
    :class:`anda.Client` rather than a Nexus. Warns, then returns it.

    >>> import anda, warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     anda.default_nexus() is anda.default_memory()
    True
    """
    import warnings

    warnings.warn(
        "anda.default_nexus() is deprecated: call anda.default_memory()",
        DeprecationWarning,
        stacklevel=2,
    )
    return default_memory()


def execute_kip(
    command: str,
    parameters: Mapping[str, Any] | None = None,
    dry_run: bool = False,
    *,
    caller: str | None = None,
) -> dict[str, Any]:
    """Runs a KIP command on the process-wide default store (see :func:`default_memory`).

    The same call as :meth:`Nexus.execute_kip`.

    >>> import anda
    >>> anda.execute_kip("DESCRIBE PRIMER")["status"]
    'succeeded'
    """
    return default_memory().execute_kip(command, parameters, dry_run, caller=caller)


@atexit.register
def _close_open_stores() -> None:
    for nexus in list(_open_stores):
        try:
            nexus.close()
        except AndaError as err:  # exit goes on for the other stores
            print(f"anda: could not close {nexus!r} at exit: {err}", file=sys.stderr)
