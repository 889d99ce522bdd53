"""The memory's public face, written once: every call a memory offers, with its
signature, its checks, its docstring and its ``asyncio`` twin, over a few
primitives that each memory implements (as httpx writes its clients over one
``BaseClient``).

:class:`anda.Nexus` implements the primitives with the native store,
:class:`anda.Client` with HTTP to a server. Everything here that is only KIP
(capsules, the primer) therefore works on both, and both check a call the same
way before it reaches their primitive.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from anda import _observer
from anda._calls import Response, ToolResult, check_bool, check_caller, check_tool_call, normalise
from anda._capsules import Capsule, capsule_text, export_command
from anda.bulk import BulkResult, Operation, Write, write_chunks
from anda.errors import AndaError, error_from_response

__all__ = ["BaseMemory", "Command", "Execution"]

#: One command, or a batch: each item a command or a ``(command, parameters)`` pair.
Command = str | Sequence[str | tuple[str, Mapping[str, Any] | None]]
#: How the operations of a batch relate to one another.
Execution = Literal["sequence", "independent", "atomic"]

#: What a primitive is given for one KIP call: the command or batch (as
#: :func:`anda._calls.normalise` leaves it) and its execution mode.
Batch = str | list[tuple[str, Any]]

_Self = TypeVar("_Self", bound="BaseMemory")


class BaseMemory(abc.ABC):
    """What every memory offers, over the primitives a memory implements.

    A subclass provides ``readonly``, ``closed``, ``close()`` and the
    primitives (``_execute``, ``_call_tool``, ``_execute_request``, their
    ``_async`` twins, and ``_write_all``), each given arguments already
    checked here and returning the engine's response envelope as it is.
    """

    __slots__ = ()

    # -- what a memory is --------------------------------------------------------------

    @property
    @abc.abstractmethod
    def readonly(self) -> bool:
        """Whether state-changing commands are refused."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""

    @abc.abstractmethod
    def close(self) -> None:
        """Releases the memory. Idempotent."""

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _repr_html_(self) -> str | None:
        """A notebook shows a memory as :func:`anda.view.overview` draws it:
        its primer and latest changes (read-only); a refused read shows the
        engine's error. Nothing for a closed memory (its plain ``repr``)."""
        if self.closed:
            return None
        from anda.view import _html, overview

        try:
            return overview(self)._repr_html_()
        except AndaError as err:
            return _html.inline(_html.error_html(err))

    # -- the primitives ----------------------------------------------------------------

    @abc.abstractmethod
    def _execute(
        self, batch: Batch, mode: str | None, parameters: Any, dry_run: bool, caller: str | None
    ) -> dict[str, Any]:
        """Runs one KIP call; the response envelope, whatever its status."""

    @abc.abstractmethod
    async def _execute_async(
        self, batch: Batch, mode: str | None, parameters: Any, dry_run: bool, caller: str | None
    ) -> dict[str, Any]:
        """:meth:`_execute`, awaited."""

    @abc.abstractmethod
    def _call_tool(self, name: str, arguments: Any, caller: str | None) -> dict[str, Any]:
        """Runs a model's tool call; the response envelope."""

    @abc.abstractmethod
    async def _call_tool_async(
        self, name: str, arguments: Any, caller: str | None
    ) -> dict[str, Any]:
        """:meth:`_call_tool`, awaited."""

    @abc.abstractmethod
    def _execute_request(self, request: Any, readonly: bool, caller: str | None) -> dict[str, Any]:
        """Runs a whole request envelope; the response envelope."""

    @abc.abstractmethod
    async def _execute_request_async(
        self, request: Any, readonly: bool, caller: str | None
    ) -> dict[str, Any]:
        """:meth:`_execute_request`, awaited."""

    @abc.abstractmethod
    def _write_all(self, writes: list[Write], caller: str | None) -> dict[str, Any]:
        """Commits KML writes as one transaction; the response envelope."""

    # -- KIP ---------------------------------------------------------------------------

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
                store; a :class:`anda.Client` takes only ``None``, as its
                server decides).

        Returns:
            The engine's response as plain Python objects:
            ``{"kip": "2.0", "status": "succeeded", "results": [{"status": ...,
            "result": ...}, ...], ...}``, one result per operation.

        Raises:
            anda.KipError: the engine rejected the command (a subclass per
                error category); ``err.response`` holds the full response.
            TypeError, ValueError: an argument is not what the engine can take.
            anda.MemoryClosedError: the memory is closed.
            anda.RemoteError: (a :class:`anda.Client`) the exchange failed
                outside KIP.

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
        batch, mode = normalise(command, execution, self.readonly)
        check_bool("dry_run", dry_run)
        check_caller(caller)
        observer = _observer.current
        if observer is None:
            return _succeeded(self._execute(batch, mode, parameters, dry_run, caller))
        args = (batch, mode, parameters, dry_run, caller)
        return _succeeded(
            observer.call(self, "execute_kip", batch, parameters, self._execute, args)
        )

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

        A :class:`anda.Nexus` runs the engine on its own threads and never
        blocks the event loop; cancelling the awaiting task aborts the engine
        call. A :class:`anda.Client` waits on a worker thread; cancelling
        abandons the answer, not the request (a write already sent may still
        commit).

        >>> import anda, asyncio
        >>> async def main():
        ...     with anda.Nexus() as nexus:
        ...         response = await nexus.execute_kip_async("DESCRIBE PRIMER")
        ...         return response["status"]
        >>> asyncio.run(main())
        'succeeded'
        """
        batch, mode = normalise(command, execution, self.readonly)
        check_bool("dry_run", dry_run)
        check_caller(caller)
        observer = _observer.current
        if observer is None:
            return _succeeded(await self._execute_async(batch, mode, parameters, dry_run, caller))
        args = (batch, mode, parameters, dry_run, caller)
        return _succeeded(
            await observer.call_async(
                self, "execute_kip", batch, parameters, self._execute_async, args
            )
        )

    def execute_request(
        self, request: Mapping[str, Any], *, readonly: bool = False, caller: str | None = None
    ) -> dict[str, Any]:
        """Runs a whole KIP 2.0 request envelope, as ``POST /kip`` carries it
        in ``params``, and returns the engine's response envelope as it is.

        For what :meth:`execute_kip` does not say: ``preconditions``,
        ``context``, ``requires``, ``ingest``, ``read`` bindings,
        ``request_id`` and ``options``. The engine checks every member and
        answers a refusal in the response (``status`` ``"failed"``), which is
        returned, not raised: a partial batch has results worth reading. A
        request that is not JSON is answered the same way
        (``InvalidRequestEnvelope``). ``space`` is refused: a request runs in
        the Space the store gives its caller.

        Args:
            request: the envelope (``kip``, ``operations``, ...).
            readonly: take the read-only path (``execute_kip_readonly``),
                which refuses the whole request if any operation writes.
            caller: who the request runs as (see :meth:`execute_kip`).

        Raises:
            TypeError: ``readonly`` is not a bool, or ``caller`` not a str.
            anda.MemoryClosedError: the memory is closed.

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
        observer = _observer.current
        if observer is None:
            return self._execute_request(request, readonly, caller)
        args = (request, readonly, caller)
        return observer.call(self, "execute_request", request, None, self._execute_request, args)

    async def execute_request_async(
        self, request: Mapping[str, Any], *, readonly: bool = False, caller: str | None = None
    ) -> dict[str, Any]:
        """:meth:`execute_request` for ``asyncio``: same arguments, same result.

        >>> import anda, asyncio
        >>> envelope = {"kip": "2.0", "operations": [{"command": "DESCRIBE PRIMER"}]}
        >>> async def main():
        ...     with anda.Nexus() as nexus:
        ...         return (await nexus.execute_request_async(envelope))["status"]
        >>> asyncio.run(main())
        'succeeded'
        """
        check_bool("readonly", readonly)
        check_caller(caller)
        observer = _observer.current
        if observer is None:
            return await self._execute_request_async(request, readonly, caller)
        args = (request, readonly, caller)
        return await observer.call_async(
            self, "execute_request", request, None, self._execute_request_async, args
        )

    # -- a model's tool calls ----------------------------------------------------------

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
            caller: who the call runs as (see :meth:`execute_kip`).

        Returns:
            A :class:`anda.tools.ToolResult`. Arguments that are malformed or
            invalid, and commands the engine refuses, do not raise: they come
            back with ``is_error=True`` and the engine's error in the
            response, for the model to read and correct.
            ``execute_kip_readonly`` takes the read-only path even on a
            writable store.

        Raises:
            ValueError: ``name`` is not one of the two tools.
            anda.MemoryClosedError: the memory is closed.

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
        observer = _observer.current
        if observer is None:
            return ToolResult.from_response(self._call_tool(name, arguments, caller))
        args = (name, arguments, caller)
        return ToolResult.from_response(
            observer.call(self, "call_tool", arguments, None, self._call_tool, args)
        )

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
        observer = _observer.current
        if observer is None:
            return ToolResult.from_response(await self._call_tool_async(name, arguments, caller))
        args = (name, arguments, caller)
        return ToolResult.from_response(
            await observer.call_async(
                self, "call_tool", arguments, None, self._call_tool_async, args
            )
        )

    # -- many writes -------------------------------------------------------------------

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
        ``err.committed`` is stored, none after it; resume from there. On a
        :class:`anda.Client`, a chunk whose answer is lost raises
        :class:`anda.RemoteError` with ``outcome_unknown`` (wrapped in the
        :class:`anda.bulk.BulkWriteError`, whose ``committed`` counts only the
        chunks known to be stored).

        Args:
            operations: the writes, in order.
            chunk_size: a fixed number of operations per transaction,
                instead of chunks that grow.
            progress: called after each transaction with the number of
                operations committed so far.
            caller: who the writes run as (see :meth:`execute_kip`).

        Returns:
            A :class:`anda.bulk.BulkResult` (``operations``, ``transactions``).

        >>> import anda
        >>> with anda.Nexus() as nexus:
        ...     rows = ({"upsert": {"type": "Person", "key": f"p{i}"}} for i in range(450))
        ...     nexus.bulk_write(rows)
        BulkResult(operations=450, transactions=2)
        """
        check_caller(caller)
        self._admit(caller)

        def commit(chunk: list[Write]) -> None:
            observer = _observer.current
            if observer is None:
                _succeeded(self._write_all(chunk, caller))
            else:
                args = (chunk, caller)
                _succeeded(observer.call(self, "bulk_write", chunk, None, self._write_all, args))

        return write_chunks(operations, commit, chunk_size=chunk_size, progress=progress)

    @abc.abstractmethod
    def _admit(self, caller: str | None) -> None:
        """Refuses a call this memory cannot take at all, before any work."""

    # -- calls that are only KIP -------------------------------------------------------

    def export_capsule(
        self,
        query: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        *,
        caller: str | None = None,
    ) -> dict[str, Any]:
        """Exports memory as a KIP Capsule: a self-verifying artifact (its
        records, the schema they depend on, a content digest) that
        :meth:`anda.Nexus.import_capsule` reads into another store.

        Args:
            query: ``None`` for the whole memory (every concept, proposition,
                assertion, evidence and activity, with what they reference);
                the patterns of a ``WHERE`` block that binds ``?roots`` (e.g.
                ``'?roots {type: "Person"}'``); or a whole ``EXPORT CAPSULE``
                command, for ``WITH { closure: ... }`` or ``AS OF SEQ``.
            parameters: values for the query's ``:name`` placeholders.
            caller: who exports (see :meth:`execute_kip`).

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
        return _first_result(response)

    async def export_capsule_async(
        self,
        query: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        *,
        caller: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`export_capsule` for ``asyncio``: same arguments, same result.

        >>> import anda, asyncio
        >>> async def main():
        ...     with anda.Nexus() as nexus:
        ...         await nexus.execute_kip_async(
        ...             'UPSERT CONCEPT ?p { MATCH { type: "Person", key: "ada" } }'
        ...         )
        ...         return await nexus.export_capsule_async()
        >>> asyncio.run(main())["format"]
        'KIP-Cognitive-Capsule'
        """
        command = export_command(query)
        return _first_result(await self.execute_kip_async(command, parameters, caller=caller))

    def verify_capsule(self, capsule: Capsule, *, caller: str | None = None) -> dict[str, Any]:
        """Checks a Capsule's integrity (``VERIFY CAPSULE``): its payload must
        digest to what it declares.

        Returns:
            The engine's verdict, e.g. ``{"valid": True, "records": 3, ...}``.

        Raises:
            anda.KipArtifactError: the capsule was modified
                (``DigestMismatch``) or is not a capsule.

        >>> import anda
        >>> with anda.Nexus() as nexus:
        ...     _ = nexus.execute_kip('UPSERT CONCEPT ?p { MATCH { type: "Person", key: "ada" } }')
        ...     nexus.verify_capsule(nexus.export_capsule())["valid"]
        True
        """
        return _first_result(self.execute_kip(*_verify(capsule), caller=caller))

    async def verify_capsule_async(
        self, capsule: Capsule, *, caller: str | None = None
    ) -> dict[str, Any]:
        """:meth:`verify_capsule` for ``asyncio``: same arguments, same result.

        >>> import anda, asyncio
        >>> async def main():
        ...     with anda.Nexus() as nexus:
        ...         nexus.execute_kip('UPSERT CONCEPT ?p { MATCH { type: "Person", key: "ada" } }')
        ...         return await nexus.verify_capsule_async(nexus.export_capsule())
        >>> asyncio.run(main())["valid"]
        True
        """
        return _first_result(await self.execute_kip_async(*_verify(capsule), caller=caller))


def _succeeded(response: dict[str, Any]) -> Response:
    """``response``, if it succeeded; the :class:`anda.KipError` it carries otherwise."""
    if response.get("status") != "succeeded":
        raise error_from_response(response)
    return Response(response)


def _first_result(response: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = response["results"][0]["result"]
    return result


def _verify(capsule: Capsule) -> tuple[str, dict[str, Any]]:
    return "VERIFY CAPSULE :capsule", {"capsule": capsule_text(capsule)}
