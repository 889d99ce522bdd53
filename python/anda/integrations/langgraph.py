"""A LangGraph store on anda: ``AndaStore(memory)`` is a ``BaseStore``.

LangGraph agents (``create_agent(..., store=...)``, ``graph.compile(store=...)``)
and LangMem's memory tools read and write it unchanged; every call is KIP on
the memory (a :class:`anda.Nexus` or an :class:`anda.Client`), so the items
are durable when the call returns and readable by any other door.

>>> import anda
>>> from anda.integrations.langgraph import AndaStore
>>> store = AndaStore(anda.Nexus())
>>> store.put(("memories", "alice"), "m1", {"text": "Alice prefers dark mode"})
>>> store.get(("memories", "alice"), "m1").value
{'text': 'Alice prefers dark mode'}
>>> [item.key for item in store.search(("memories",), query="dark mode")]
['m1']
>>> store.delete(("memories", "alice"), "m1")
>>> store.get(("memories", "alice"), "m1") is None
True

How an item is kept: one Concept of the draft type ``LangGraphItem`` (defined
in the memory's Space by the first write, as ``DEFINE CONCEPT TYPE`` does),
whose ``key`` is its namespace and key as a JSON array (``["docs","a"]`` for
key ``"a"`` in ``("docs",)``: out of the search index, so a namespace label
never matches a query) and whose ``value`` attribute is the value;
``created_at`` and ``updated_at`` are the engine's own. The writes
of one ``batch`` are one ``MUTATE``: one transaction, all or nothing. A delete
is ``PURGE`` (physical erasure), and is read back in the same request: a
delete that left the item readable raises :class:`anda.AndaError`.

Search is the engine's keyword ``SEARCH CONCEPT`` (BM25 over the item's
text), ranked by its score, with LangGraph's value filters (exact values,
nested objects, ``$eq``, ``$ne``, ``$gt``, ``$gte``, ``$lt``, ``$lte``) run
as KIP ``FILTER``\\s where they can be, and checked again in Python with
LangGraph's semantics. There are no embeddings, so ``index`` (of the store or
of one ``put``) changes nothing. TTL is unsupported (``supports_ttl`` is
``False``): a ``put`` with a ``ttl`` raises ``NotImplementedError``.

One memory per user: on a ``Nexus(tenancy="per_caller")``, ``caller_label=i``
makes namespace label ``i`` the caller every operation runs as, so each
user's items live in a memory that user owns and no other user's search,
list or get can reach (``("memories", "{langgraph_user_id}")`` is
``caller_label=1``). ``caller="..."`` runs every operation as one caller.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from anda.errors import AndaError, KipError, error_from_response
from anda.integrations import require

if TYPE_CHECKING:
    from anda._memory import Memory

__all__ = ["ITEM_TYPE", "AndaStore"]

_base = require("langgraph.store.base", "langgraph")
_BaseStore: Any = _base.BaseStore

#: The Concept type each item is kept as (a draft type, defined on first write).
ITEM_TYPE = "LangGraphItem"
_DEFINE = (
    f"DEFINE CONCEPT TYPE {json.dumps(ITEM_TYPE)} {{description: "
    '"An item of a LangGraph store: a JSON value under a namespace and a key."}'
)
_CONCEPT = f"{{type: {json.dumps(ITEM_TYPE)}}}"
_ROW = "?i.key, ?i.attributes.value, ?i._system.created_at, ?i._system.updated_at"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_COMPARISONS = {"$eq": "==", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
# A query's candidates: the engine's best keyword matches, before the
# namespace and value filters; at least this many.
_MIN_CANDIDATES = 100

# One step of a batch: the commands to run (as one KIP batch), the caller, and
# the execution mode; the plan is sent back the response envelope.
_Request = tuple[list[tuple[str, dict[str, Any]]], "str | None", str]
_Plan = Generator[_Request, dict[str, Any], list[Any]]


class AndaStore(_BaseStore):  # type: ignore[misc]
    """A LangGraph ``BaseStore`` whose items live in an anda memory.

    Args:
        memory: any memory: an :class:`anda.Nexus` or an :class:`anda.Client`.
        caller: run every operation as this caller (``tenancy="per_caller"``).
        caller_label: run each operation as the caller its namespace names at
            this position: per-user namespaces on per-user memories. An
            operation whose namespace (or search prefix, or listing prefix)
            does not reach that label raises ``ValueError``: no operation can
            span users.

    >>> import anda
    >>> from anda.integrations.langgraph import AndaStore
    >>> users = anda.Nexus(tenancy="per_caller")
    >>> store = AndaStore(users, caller_label=1)
    >>> store.put(("memories", "alice"), "tz", {"text": "Alice lives in Lisbon"})
    >>> store.search(("memories", "bob"), query="Lisbon")
    []
    >>> [item.value["text"] for item in store.search(("memories", "alice"), query="Lisbon")]
    ['Alice lives in Lisbon']
    """

    supports_ttl = False
    """TTL is not supported: items live until deleted."""

    def __init__(
        self,
        memory: Memory,
        *,
        caller: str | None = None,
        caller_label: int | None = None,
    ) -> None:
        if caller is not None and caller_label is not None:
            raise ValueError("give caller or caller_label, not both")
        if caller is not None and not isinstance(caller, str):
            raise TypeError(f"caller must be str or None, not {type(caller).__name__}")
        if caller_label is not None and (
            isinstance(caller_label, bool) or not isinstance(caller_label, int) or caller_label < 0
        ):
            raise ValueError(
                f"caller_label must be a label's position (an int >= 0), not {caller_label!r}"
            )
        self.memory = memory
        """The memory the items live in."""
        self.caller = caller
        """The caller every operation runs as, if one was given."""
        self.caller_label = caller_label
        """Which namespace label names each operation's caller, if any."""
        # The callers whose Space already has the item type.
        self._defined: set[str | None] = set()

    # -- BaseStore ------------------------------------------------------------------

    def batch(self, ops: Iterable[Any]) -> list[Any]:
        """Runs LangGraph's operations: reads first, then the writes as one transaction."""
        plan = self._plan(list(ops))
        try:
            request = next(plan)
            while True:
                commands, caller, execution = request
                request = plan.send(_run(self.memory.execute_kip, commands, caller, execution))
        except StopIteration as done:
            results: list[Any] = done.value
            return results

    async def abatch(self, ops: Iterable[Any]) -> list[Any]:
        """:meth:`batch` for ``asyncio``, on the memory's async calls."""
        plan = self._plan(list(ops))
        try:
            request = next(plan)
            while True:
                commands, caller, execution = request
                response = await _run_async(
                    self.memory.execute_kip_async, commands, caller, execution
                )
                request = plan.send(response)
        except StopIteration as done:
            results: list[Any] = done.value
            return results

    # -- the plan of one batch (no I/O: the drivers above run its requests) ----------

    def _plan(self, ops: list[Any]) -> _Plan:
        results: list[Any] = [None] * len(ops)
        reads: dict[str | None, list[int]] = {}
        writes: dict[tuple[tuple[str, ...], str], Any] = {}
        for index, op in enumerate(ops):
            _validate(op)
            if isinstance(op, _base.PutOp):
                # The last write to an item wins, as in LangGraph's own stores.
                writes.pop((tuple(op.namespace), op.key), None)
                writes[(tuple(op.namespace), op.key)] = op
            elif isinstance(op, (_base.GetOp, _base.SearchOp, _base.ListNamespacesOp)):
                reads.setdefault(self._caller_of(op), []).append(index)
            else:
                raise ValueError(f"unknown operation: {type(op).__name__}")
        for caller, indexes in reads.items():
            commands = [_read_command(ops[index]) for index in indexes]
            response = yield [command for command, _ in commands], caller, "independent"
            for index, (_, parse), result in zip(
                indexes, commands, response["results"], strict=True
            ):
                results[index] = parse(_operation_result(result, read=True))
        by_caller: dict[str | None, list[Any]] = {}
        for op in writes.values():
            by_caller.setdefault(self._caller_of(op), []).append(op)
        for caller, puts in by_caller.items():
            if caller not in self._defined:
                yield from self._define(caller)
            mutate, deleted = _mutation(puts)
            request = [mutate]
            if deleted:
                # The deletes are read back in the same request.
                check = f"FIND(?i.key) WHERE {{ ?i {_CONCEPT} FILTER(IN(?i.key, :keys)) }}"
                request.append((check, {"keys": deleted}))
            response = yield request, caller, "sequence"
            _operation_result(response["results"][0], read=False)
            if deleted:
                left = _operation_result(response["results"][1], read=True)
                if left:
                    raise AndaError(f"a delete left items readable: {left}")
        return results

    def _define(self, caller: str | None) -> Generator[_Request, dict[str, Any], None]:
        response = yield [(_DEFINE, {})], caller, "sequence"
        result = response["results"][0]
        error = result.get("error")
        if result.get("status") != "succeeded" and not (
            isinstance(error, dict) and error.get("code") == "SchemaSymbolConflict"
        ):
            raise error_from_response(response)
        self._defined.add(caller)

    def _caller_of(self, op: Any) -> str | None:
        if self.caller_label is None:
            return self.caller
        label = self.caller_label
        if isinstance(op, _base.ListNamespacesOp):
            for condition in op.match_conditions or ():
                path = tuple(condition.path)
                if condition.match_type == "prefix" and len(path) > label and path[label] != "*":
                    return str(path[label])
            namespace: tuple[str, ...] = ()
        elif isinstance(op, _base.SearchOp):
            namespace = tuple(op.namespace_prefix)
        else:
            namespace = tuple(op.namespace)
        if len(namespace) <= label:
            raise ValueError(
                f"this store keeps each user in their own memory, named by namespace label "
                f"{label}: {type(op).__name__} on {namespace!r} names no user"
            )
        return namespace[label]


# -- running a plan's requests ------------------------------------------------------


def _run(
    execute: Callable[..., dict[str, Any]],
    commands: list[tuple[str, dict[str, Any]]],
    caller: str | None,
    execution: str,
) -> dict[str, Any]:
    try:
        return execute(list(commands), execution=execution, caller=caller)
    except KipError as err:
        # The per-operation results are in the response; the plan reads them.
        if err.response is None:
            raise
        return err.response


async def _run_async(
    execute: Callable[..., Awaitable[dict[str, Any]]],
    commands: list[tuple[str, dict[str, Any]]],
    caller: str | None,
    execution: str,
) -> dict[str, Any]:
    try:
        return await execute(list(commands), execution=execution, caller=caller)
    except KipError as err:
        if err.response is None:
            raise
        return err.response


def _operation_result(result: dict[str, Any], *, read: bool) -> Any:
    if result.get("status") in ("succeeded", "no_effect"):
        return result.get("result")
    error = result.get("error")
    if read and isinstance(error, dict) and error.get("code") == "SchemaSymbolNotFound":
        # No write has defined the item type in this Space yet: nothing is stored.
        return []
    raise error_from_response({"status": result.get("status"), "results": [result]})


# -- operations as KIP ----------------------------------------------------------------


def _validate(op: Any) -> None:
    _base.validate_op_namespace(op)
    if isinstance(op, _base.PutOp) and op.value is not None:
        if not op.namespace:
            raise _base.InvalidNamespaceError("Namespace cannot be empty.")
        if op.namespace[0] == "langgraph":
            raise _base.InvalidNamespaceError(
                f'Root label for namespace cannot be "langgraph". Got: {op.namespace}'
            )
        if not isinstance(op.value, Mapping):
            raise TypeError(f"a value must be a mapping, not {type(op.value).__name__}")
    if isinstance(op, _base.PutOp) and op.ttl is not None:
        raise NotImplementedError("TTL is not supported by AndaStore; set ttl=None")


def _item_key(namespace: Sequence[str], key: str) -> str:
    return json.dumps([*namespace, key], ensure_ascii=False, separators=(",", ":"))


def _prefix(namespace: Sequence[str]) -> str:
    """What the key of every item under ``namespace`` starts with: ``["a",``
    for ("a",) (each label is followed by a comma, the item's key comes last)."""
    return _item_key(namespace, "")[: -len('""]')]


def _read_command(op: Any) -> tuple[tuple[str, dict[str, Any]], Callable[[Any], Any]]:
    if isinstance(op, _base.GetOp):
        command = f"FIND({_ROW}) WHERE {{ ?i {{type: {json.dumps(ITEM_TYPE)}, key: :key}} }}"
        parameters = {"key": _item_key(op.namespace, op.key)}
        return (command, parameters), lambda rows: _item(rows[0]) if rows else None
    if isinstance(op, _base.SearchOp):
        return _search_command(op)
    return _list_command(op)


def _search_command(op: Any) -> tuple[tuple[str, dict[str, Any]], Callable[[Any], Any]]:
    parameters: dict[str, Any] = {}
    filters: list[str] = []
    if op.namespace_prefix:
        parameters["prefix"] = _prefix(op.namespace_prefix)
        filters.append("FILTER(STARTS_WITH(?i.key, :prefix))")
    exact = _kip_filters(op.filter or {}, "?i.attributes.value", parameters, filters)
    wanted = max(op.offset, 0) + max(op.limit, 0)
    if op.query:
        parameters["query"] = op.query
        parameters["candidates"] = max(_MIN_CANDIDATES, 10 * wanted)
        pattern = f"?i SEARCH CONCEPT :query WITH TYPE {json.dumps(ITEM_TYPE)} LIMIT :candidates"
        projection = f"{_ROW}, ?i.retrieval.score"
        order = "ORDER BY ?i.retrieval.score DESC"
    else:
        pattern = f"?i {_CONCEPT}"
        projection = _ROW
        order = "ORDER BY ?i._system.updated_at DESC"
    limit = ""
    if exact:
        # Every filter ran in the engine, so the engine can stop at the page's end.
        parameters["limit"] = max(wanted, 1)
        limit = " LIMIT :limit"
    where = " ".join([pattern, *filters])
    command = f"FIND({projection}) WHERE {{ {where} }} {order}{limit}"

    def parse(rows: Any) -> list[Any]:
        found = [
            _item(row, search=True, score=row[4] if op.query else None)
            for row in rows
            if _matches(row[1], op.filter or {})
        ]
        return found[op.offset : op.offset + op.limit]

    return (command, parameters), parse


def _list_command(op: Any) -> tuple[tuple[str, dict[str, Any]], Callable[[Any], Any]]:
    parameters: dict[str, Any] = {}
    where = f"?i {_CONCEPT}"
    for condition in op.match_conditions or ():
        if condition.match_type == "prefix":
            fixed: list[str] = []
            for label in condition.path:
                if label == "*":
                    break
                fixed.append(label)
            if fixed:
                parameters["prefix"] = _prefix(fixed)
                where += " FILTER(STARTS_WITH(?i.key, :prefix))"
                break
    command = f"FIND(?i.key) WHERE {{ {where} }}"

    def parse(rows: Any) -> list[tuple[str, ...]]:
        namespaces = {tuple(json.loads(key)[:-1]) for key in rows}
        namespaces = {
            namespace
            for namespace in namespaces
            if all(_namespace_matches(c, namespace) for c in op.match_conditions or ())
        }
        if op.max_depth is not None:
            namespaces = {namespace[: op.max_depth] for namespace in namespaces}
        return sorted(namespaces)[op.offset : op.offset + op.limit]

    return (command, parameters), parse


def _mutation(puts: list[Any]) -> tuple[tuple[str, dict[str, Any]], list[str]]:
    """One MUTATE for the writes: puts as UPSERTs, deletes as PURGEs."""
    statements: list[str] = []
    parameters: dict[str, Any] = {}
    deleted: list[str] = []
    for index, op in enumerate(puts):
        key = _item_key(op.namespace, op.key)
        parameters[f"k{index}"] = key
        if op.value is None:
            deleted.append(key)
            statements.append(
                f"PURGE ?d{index} WHERE {{ ?d{index} {{type: {json.dumps(ITEM_TYPE)}, "
                f'key: :k{index}}} }} CONFIRM "PURGE"'
            )
            continue
        parameters[f"v{index}"] = dict(op.value)
        statements.append(
            f"UPSERT CONCEPT ?w{index} {{ MATCH {{type: {json.dumps(ITEM_TYPE)}, key: :k{index}}} "
            f"SET ATTRIBUTES {{value: :v{index}}} }}"
        )
    return ("MUTATE { " + " ".join(statements) + " }", parameters), deleted


def _item(row: Sequence[Any], *, search: bool = False, score: Any = None) -> Any:
    item_key, value, created_at, updated_at = row[:4]
    *namespace, key = json.loads(item_key)
    fields = {
        "namespace": tuple(namespace),
        "key": key,
        "value": value,
        "created_at": _timestamp(created_at),
        "updated_at": _timestamp(updated_at),
    }
    if search:
        return _base.SearchItem(score=score, **fields)
    return _base.Item(**fields)


def _timestamp(text: str) -> datetime:
    # "2026-08-16T01:00:00.123Z"; Python 3.10's fromisoformat reads no "Z".
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- LangGraph's filters, as KIP FILTERs and in Python --------------------------------


def _kip_filters(
    conditions: Mapping[str, Any], path: str, parameters: dict[str, Any], out: list[str]
) -> bool:
    """Appends a FILTER for each condition KIP can test; ``True`` if it could test all."""
    exact = True
    for name, expected in conditions.items():
        field = f"{path}.{name}" if _IDENTIFIER.match(name) else f"{path}[{json.dumps(name)}]"
        if isinstance(expected, Mapping) and any(str(k).startswith("$") for k in expected):
            for operator, operand in expected.items():
                exact &= _comparison(field, operator, operand, parameters, out)
        elif isinstance(expected, Mapping):
            exact &= _kip_filters(expected, field, parameters, out)
        else:
            exact &= _comparison(field, "$eq", expected, parameters, out)
    return exact


def _comparison(
    field: str, operator: str, operand: Any, parameters: dict[str, Any], out: list[str]
) -> bool:
    if operator not in _COMPARISONS:
        raise ValueError(f"Unsupported operator: {operator}")
    scalar = isinstance(operand, (str, int, float)) and not isinstance(operand, bool)
    if operator in ("$eq", "$ne") and operand is None:
        out.append(f"FILTER({'IS_NULL' if operator == '$eq' else 'IS_NOT_NULL'}({field}))")
        return True
    if not scalar or (operator not in ("$eq", "$ne") and isinstance(operand, str)):
        # Booleans (True == 1 in Python), arrays, objects and string ordering are
        # left to the Python check.
        return False
    name = f"f{len(parameters)}"
    parameters[name] = operand
    if operator == "$ne":
        # A missing field is "not equal" in LangGraph; KIP's null fails a comparison.
        out.append(f"FILTER(IS_NULL({field}) || {field} != :{name})")
    else:
        out.append(f"FILTER({field} {_COMPARISONS[operator]} :{name})")
    return True


def _matches(value: Any, conditions: Mapping[str, Any]) -> bool:
    """LangGraph's filter semantics (as its in-memory store applies them)."""
    if not isinstance(value, Mapping):
        return not conditions
    return all(_compare(value.get(name), expected) for name, expected in conditions.items())


def _compare(actual: Any, expected: Any) -> bool:
    if isinstance(expected, Mapping):
        if any(str(key).startswith("$") for key in expected):
            return all(_apply(actual, op, operand) for op, operand in expected.items())
        return isinstance(actual, Mapping) and all(
            _compare(actual.get(key), value) for key, value in expected.items()
        )
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(actual, (list, tuple))
            and len(actual) == len(expected)
            and all(_compare(a, e) for a, e in zip(actual, expected, strict=False))
        )
    return bool(actual == expected)


def _apply(actual: Any, operator: str, operand: Any) -> bool:
    if operator == "$eq":
        return bool(actual == operand)
    if operator == "$ne":
        return bool(actual != operand)
    if operator not in _COMPARISONS:
        raise ValueError(f"Unsupported operator: {operator}")
    try:
        left, right = float(actual), float(operand)
    except (TypeError, ValueError):
        return False
    return {"$gt": left > right, "$gte": left >= right, "$lt": left < right}.get(
        operator, left <= right
    )


def _namespace_matches(condition: Any, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    pairs = (
        zip(namespace, path, strict=False)
        if condition.match_type == "prefix"
        else zip(reversed(namespace), reversed(path), strict=False)
    )
    return all(want == "*" or have == want for have, want in pairs)
