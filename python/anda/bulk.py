"""Loading many writes fast: :meth:`anda.Nexus.bulk_write` and its operations.

Every engine transaction flushes the store, so a write costs about the same
whatever it changes, and that cost grows with the store. A bulk write packs
many operations into one ``MUTATE { … }`` transaction per chunk, paying it
once per chunk instead of once per operation.

An operation is any of:

- a KML write command (``UPSERT``, ``ASSERT``, ``CREATE``, ``UPDATE``,
  ``TRANSITION``, ``MUTATE``, ...), as a ``str``;
- a ``(command, parameters)`` pair: the parameters stay data, bound by name
  (each operation's names are kept apart from the others');
- an :class:`Upsert` or a :class:`Relate`;
- a dict, as a line of ``python -m anda load`` reads it: ``{"command": ...,
  "parameters": {...}}``, ``{"upsert": {"type", "key", "name",
  "attributes"}}`` or ``{"relate": {"subject": [type, key], "predicate",
  "object": [type, key]}}``.

>>> import anda
>>> from anda.bulk import Relate, Upsert
>>> with anda.Nexus() as nexus:
...     result = nexus.bulk_write(
...         [
...             Upsert("Person", "ada", name="Ada Lovelace"),
...             Upsert("Organization", "analytical-engines", name="Analytical Engines"),
...             Relate(("Person", "ada"), "works_for", ("Organization", "analytical-engines")),
...         ]
...     )
>>> result.operations, result.transactions
(3, 1)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from anda import _anda
from anda.errors import AndaError, KipError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "BulkResult",
    "BulkWriteError",
    "Operation",
    "Relate",
    "Upsert",
    "Write",
    "operation_from_dict",
]

#: Operations in a bulk write's first transaction. The engine caps one
#: transaction by the size of its commit record (~2 MB) and of its change list
#: (4,096 entries): a few hundred typical writes fit with room to spare. Unless
#: told a fixed ``chunk_size``, later transactions grow from here (see
#: :meth:`anda.Nexus.bulk_write`); a chunk that does not fit is split and
#: retried, never partly applied. The policy's numbers are the native crate's
#: (``anda_embedded::DEFAULT_CHUNK_SIZE`` and the next two), shared with the
#: native benchmark.
DEFAULT_CHUNK_SIZE: int = _anda.DEFAULT_CHUNK_SIZE
#: The most operations a growing chunk reaches: at one change each they
#: already fill the engine's change list.
MAX_CHUNK_SIZE: int = _anda.MAX_CHUNK_SIZE
#: Command text per transaction, well inside the parser's 256 KiB.
MAX_CHUNK_TEXT: int = _anda.MAX_CHUNK_TEXT

# Engine codes that refuse a transaction for its size: its halves may pass.
_TOO_LARGE = frozenset({"ResourceExhausted", "TransactionTooLarge", "PayloadTooLarge"})
# ... or for two of its operations clashing, not for bad data.
_SPLIT_AND_RETRY = _TOO_LARGE | {
    "IdentityConflict",
    "DuplicateMutationTarget",
    "DuplicateLocalHandle",
}


@dataclass(frozen=True)
class Upsert:
    """Create or update the concept of ``type`` and ``key``, setting its
    ``name`` and ``attributes`` (the others stay as they are).

    >>> import anda
    >>> with anda.Nexus() as nexus:
    ...     command, parameters = Upsert("Person", "ada", name="Ada").render()
    ...     nexus.execute_kip(command, parameters)["status"]
    'succeeded'
    """

    type: str
    key: str
    name: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def render(self) -> tuple[str, dict[str, Any]]:
        """One ``MUTATE`` command doing this, and its parameters."""
        return _render_graph([self])


@dataclass(frozen=True)
class Relate:
    """Assert ``(subject, predicate, object)`` between two concepts, each
    named by ``(type, key)``; ``by`` (default: the subject) is the actor who
    states it. A concept that does not exist yet is created, bare.

    >>> import anda
    >>> with anda.Nexus() as nexus:
    ...     command, parameters = Relate(("Person", "ada"), "knows", ("Person", "charles")).render()
    ...     nexus.execute_kip(command, parameters)["status"]
    'succeeded'
    """

    subject: tuple[str, str]
    predicate: str
    object: tuple[str, str]
    by: tuple[str, str] | None = None

    def render(self) -> tuple[str, dict[str, Any]]:
        """One ``MUTATE`` command doing this, and its parameters."""
        return _render_graph([self])


#: A write command with its parameters, as the engine takes it.
Write = tuple[str, Mapping[str, Any] | None]
#: What :meth:`anda.Nexus.bulk_write` takes, one item at a time.
Operation = str | Write | Upsert | Relate | Mapping[str, Any]


@dataclass(frozen=True)
class BulkResult:
    """What a bulk write committed.

    Attributes:
        operations: how many operations were committed.
        transactions: how many engine transactions they took.
    """

    operations: int
    transactions: int


class BulkWriteError(AndaError):
    """A bulk write stopped. Everything before :attr:`committed` is stored;
    nothing from the failed transaction is.

    Attributes:
        committed: operations committed before the failure (all of them in
            whole transactions). To resume, fix the data and write the
            operations from this index on.
        index: the operation that caused the failure, when known.
        cause: the engine's :class:`anda.KipError`, or the ``ValueError`` /
            ``TypeError`` for an operation anda could not send.
    """

    def __init__(
        self, message: str, *, committed: int, index: int | None, cause: Exception
    ) -> None:
        super().__init__(message)
        self.committed = committed
        self.index = index
        self.cause = cause

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (str(self), self.committed, self.index, self.cause))


def _rebuild(message: str, committed: int, index: int | None, cause: Exception) -> BulkWriteError:
    return BulkWriteError(message, committed=committed, index=index, cause=cause)


# One operation, read: a command to pass on, or a structured write to merge.
_Item = Write | Upsert | Relate


def operation_from_dict(line: Mapping[str, Any]) -> Write | Upsert | Relate:
    """An operation written as JSON (a line of ``python -m anda load``).

    >>> operation_from_dict({"upsert": {"type": "Person", "key": "ada"}})
    Upsert(type='Person', key='ada', name=None, attributes={})
    >>> operation_from_dict({"command": "DESCRIBE PRIMER"})
    ('DESCRIBE PRIMER', None)
    """
    if "command" in line:
        _only(line, {"command", "parameters"})
        command, parameters = line["command"], line.get("parameters")
        if not isinstance(command, str):
            raise TypeError(f"'command' must be a str, not {type(command).__name__}")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise TypeError(f"'parameters' must be an object, not {type(parameters).__name__}")
        return command, parameters
    if "upsert" in line:
        _only(line, {"upsert"})
        spec = _mapping(line["upsert"], "upsert")
        _only(spec, {"type", "key", "name", "attributes"})
        name = spec.get("name")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"'name' must be a str, not {type(name).__name__}")
        return Upsert(
            _str(spec, "type"),
            _str(spec, "key"),
            name=name,
            attributes=_mapping(spec.get("attributes") or {}, "attributes"),
        )
    if "relate" in line:
        _only(line, {"relate"})
        spec = _mapping(line["relate"], "relate")
        _only(spec, {"subject", "predicate", "object", "by"})
        return Relate(
            _pair(spec, "subject"),
            _str(spec, "predicate"),
            _pair(spec, "object"),
            by=_pair(spec, "by") if spec.get("by") is not None else None,
        )
    raise ValueError(
        "an operation needs 'command', 'upsert' or 'relate', got keys " + repr(sorted(line))
    )


def write_chunks(
    operations: Iterable[Operation],
    commit: Callable[[list[Write]], None],
    *,
    chunk_size: int | None,
    progress: Callable[[int], None] | None,
) -> BulkResult:
    """The bulk write of any memory: streams ``operations`` into chunks and
    hands each, rendered, to ``commit`` (one transaction, all or nothing)."""
    if chunk_size is not None and (
        not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be a positive int or None, not {chunk_size!r}")
    if progress is not None and not callable(progress):
        raise TypeError("progress must be a callable taking the count of committed operations")
    state = _Committed(progress, chunk_size)
    for start, chunk in _chunks(operations, state):
        if state.commit_fitting(start, chunk, commit):
            state.grow()
    return BulkResult(operations=state.operations, transactions=state.transactions)


class _Committed:
    """What a bulk write has committed so far, how large its next chunk may
    be, and how it reports failures."""

    def __init__(self, progress: Callable[[int], None] | None, chunk_size: int | None) -> None:
        self.operations = self.transactions = 0
        self.chunk_limit = chunk_size or DEFAULT_CHUNK_SIZE
        # A transaction's fixed cost (the engine flushes the store on every
        # commit) grows with the store, so fewer, larger ones load faster.
        self._growing = chunk_size is None
        self._progress = progress

    def grow(self) -> None:
        """After a chunk went in whole: the next may be twice as large."""
        if self._growing:
            self.chunk_limit = min(2 * self.chunk_limit, MAX_CHUNK_SIZE)

    def commit_fitting(
        self, start: int, chunk: list[_Item], commit: Callable[[list[Write]], None]
    ) -> bool:
        """Commits ``chunk`` (operations ``start``...) as one transaction;
        False if it had to be split.

        If the engine refuses it as too large, or because two of its
        operations cannot share a transaction (one concept key claimed twice,
        one target changed twice), its halves are tried instead: a refused
        transaction wrote nothing, so that is safe. Refused as too large, it
        also stops the chunks from growing: later ones take half its size. A
        single operation the engine refuses stops the write.
        """
        writes, origins = _render_chunk(chunk)
        try:
            commit(writes)
        except KipError as err:
            if err.code in _SPLIT_AND_RETRY and len(chunk) > 1:
                middle = len(chunk) // 2
                if err.code in _TOO_LARGE and self._growing:
                    self._growing = False
                    self.chunk_limit = middle
                self.commit_fitting(start, chunk[:middle], commit)
                self.commit_fitting(start + middle, chunk[middle:], commit)
                return False
            last = start + len(chunk) - 1
            raise self.stopped(
                f"the transaction of operations {start}..{last} was refused "
                f"({err.code}: {err.message})",
                start if len(chunk) == 1 else None,
                err,
            ) from err
        except ValueError as err:
            # The native side names the write it cannot combine, and why.
            if len(err.args) == 2 and isinstance(err.args[1], int):
                message, position = str(err.args[0]), err.args[1]
            else:
                message, position = str(err), 0
            index = start + origins[position]
            raise self.stopped(
                f"operation {index}: {message}", index, ValueError(message)
            ) from None
        self.operations += len(chunk)
        self.transactions += 1
        if self._progress is not None:
            self._progress(self.operations)
        return True

    def stopped(self, why: str, index: int | None, cause: Exception) -> BulkWriteError:
        return BulkWriteError(
            f"bulk write stopped after {self.operations} committed operations: {why}",
            committed=self.operations,
            index=index,
            cause=cause,
        )


def _chunks(
    operations: Iterable[Operation], state: _Committed
) -> Iterator[tuple[int, list[_Item]]]:
    """Yields (index of the first operation, operations) chunks, lazily, each
    up to ``state.chunk_limit`` operations as it stands when the chunk fills."""
    if isinstance(operations, (str, bytes, Mapping)):
        raise TypeError(
            "operations must be an iterable of operations (a list, a generator, a file's "
            f"lines), not a single {type(operations).__name__}"
        )
    chunk: list[_Item] = []
    start = text = 0
    for index, operation in enumerate(operations):
        try:
            item = _as_item(operation)
        except (TypeError, ValueError) as err:
            raise state.stopped(f"operation {index}: {err}", index, err) from err
        size = _text_size(item)
        if chunk and (len(chunk) >= state.chunk_limit or text + size > MAX_CHUNK_TEXT):
            yield start, chunk
            chunk, start, text = [], index, 0
        chunk.append(item)
        text += size
    if chunk:
        yield start, chunk


def _as_item(operation: Operation) -> _Item:
    if isinstance(operation, str):
        return operation, None
    if isinstance(operation, (Upsert, Relate)):
        return operation
    if isinstance(operation, Mapping):
        return operation_from_dict(operation)
    if isinstance(operation, tuple) and len(operation) == 2 and isinstance(operation[0], str):
        parameters = operation[1]
        if parameters is not None and not isinstance(parameters, Mapping):
            raise TypeError(f"parameters must be a mapping, not {type(parameters).__name__}")
        return operation[0], parameters
    raise TypeError(
        "an operation is a command str, a (command, parameters) tuple, an Upsert, a Relate "
        f"or a dict, not {type(operation).__name__}"
    )


def _text_size(item: _Item) -> int:
    """About how much KIP text an operation adds to a transaction."""
    if isinstance(item, Upsert):
        return 96 + 24 * len(item.attributes)
    if isinstance(item, Relate):
        return 160
    return len(item[0])


def _render_chunk(chunk: list[_Item]) -> tuple[list[Write], list[int]]:
    """The writes of one transaction, and for each the chunk position it
    came from. Structured operations are merged into one ``MUTATE`` (one
    clause per concept: a transaction may claim a concept key once)."""
    structured = [item for item in chunk if isinstance(item, (Upsert, Relate))]
    writes: list[Write] = []
    origins: list[int] = []
    if structured:
        writes.append(_render_graph(structured))
        origins.append(next(i for i, item in enumerate(chunk) if item is structured[0]))
    for position, item in enumerate(chunk):
        if not isinstance(item, (Upsert, Relate)):
            writes.append(item)
            origins.append(position)
    return writes, origins


def _render_graph(items: list[Upsert | Relate]) -> tuple[str, dict[str, Any]]:
    """Upserts and relations as one ``MUTATE`` over one handle per concept.

    Every value is a parameter; only fixed words, handle numbers and
    attribute names (as KIP string literals) are written into the text.
    """
    concepts: dict[tuple[str, str], tuple[str | None, dict[str, Any]]] = {}
    relations: list[tuple[tuple[str, str], str, tuple[str, str], tuple[str, str]]] = []
    for item in items:
        if isinstance(item, Upsert):
            concept = (item.type, item.key)
            name, attributes = concepts.get(concept, (None, {}))
            concepts[concept] = (
                item.name if item.name is not None else name,
                {**attributes, **item.attributes},
            )
        else:
            by = item.by or item.subject
            for concept in (item.subject, item.object, by):
                concepts.setdefault(concept, (None, {}))
            relations.append((item.subject, item.predicate, item.object, by))

    handles = {concept: f"c{n}" for n, concept in enumerate(concepts)}
    parameters: dict[str, Any] = {}
    clauses = []
    for concept, (name, attributes) in concepts.items():
        handle = handles[concept]
        parameters[f"{handle}_type"], parameters[f"{handle}_key"] = concept
        clause = f"UPSERT CONCEPT ?{handle} {{ MATCH {{ type: :{handle}_type, key: :{handle}_key }}"
        if name is not None:
            parameters[f"{handle}_name"] = name
            clause += f" SET FIELDS {{ name: :{handle}_name }}"
        if attributes:
            pairs = []
            for j, (attribute, value) in enumerate(attributes.items()):
                parameters[f"{handle}_a{j}"] = value
                pairs.append(f"{_kip_string(attribute)}: :{handle}_a{j}")
            clause += " SET ATTRIBUTES { " + ", ".join(pairs) + " }"
        clauses.append(clause + " }")
    for n, (subject, predicate, obj, by) in enumerate(relations):
        parameters[f"r{n}_predicate"] = predicate
        clauses.append(
            f"ASSERT (?{handles[subject]}, :r{n}_predicate, ?{handles[obj]}) "
            f'{{ by: ?{handles[by]}, mode: "stated" }}'
        )
    return "MUTATE {\n" + "\n".join(clauses) + "\n}", parameters


def _kip_string(text: str) -> str:
    # KIP strings are JSON strings.
    return json.dumps(text, ensure_ascii=False)


def _only(mapping: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; expected some of {sorted(allowed)}")


def _mapping(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name!r} must be an object, not {type(value).__name__}")
    return value


def _str(spec: Mapping[str, Any], name: str) -> str:
    value = spec.get(name)
    if not isinstance(value, str):
        raise TypeError(f"{name!r} must be a str, not {type(value).__name__}")
    return value


def _pair(spec: Mapping[str, Any], name: str) -> tuple[str, str]:
    value = spec.get(name)
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(part, str) for part in value)
    ):
        raise TypeError(f"{name!r} must be a [type, key] pair of strings, not {value!r}")
    return value[0], value[1]
