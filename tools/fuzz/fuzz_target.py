"""One fuzz input, decoded and run against anda: the part of the harness that
needs no atheris (the regression tests replay inputs through it).

An input is ``mode byte, flags byte, payload``. The mode is ``data[0] % 8``
and the flags are ``data[1] - ord("0")`` (so a seed written as ``b"10..."``
reads mode 1, no flags). The payload is UTF-8 text (``surrogatepass``, so
encoded lone surrogates reach anda's checks), laid out per mode with control
characters as separators, which keeps every seed a readable, valid input:

===  ============  ==============================================================
0    text          ``execute_kip(payload)``
1    params        ``command NUL params-json``
2    batch         ``item RS item RS ... [GS shared-params-json]``, item = command
                   or ``command NUL params-json``
3    tool, text    ``call_tool(name, payload)``: raw JSON-text arguments
4    tool, dict    ``call_tool(name, json.loads(payload))``
5    dry run       as 2 (as 1 when there is no RS or GS), with ``dry_run=True``
6    bulk          ``bulk_write``: one JSON operation per line (object, string or
                   ``[command, params]``)
7    per-caller    ``caller NUL command NUL params-json`` on a per-caller store
===  ============  ==============================================================

Flag bits: 1 dry_run; 2|4 execution (None, sequence, independent, atomic);
8 ``execute_kip_readonly`` for tools; 16 decimal-string keys become int keys;
32 lists become tuples; 64 every parameter value wrapped in 100 lists (past
``anda.MAX_JSON_DEPTH``). 128: for bulk, bits 0-4 are the chunk size; for
per-caller, the caller text is sent as is (else one of :data:`CALLERS`).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anda
from anda.tools import ToolResult

MODES = ("text", "params", "batch", "tool_text", "tool_dict", "dry_run", "bulk", "per_caller")
NUL, RS, GS = "\x00", "\x1e", "\x1d"
_EXECUTIONS = (None, "sequence", "independent", "atomic")
_TOOLS = ("execute_kip", "execute_kip_readonly")
# A long-lived store accumulates state; a fresh one every so often keeps memory
# (and query cost) bounded while still letting writes feed later reads.
RECREATE_EVERY = 1000
_INT_KEY = re.compile(r"-?[0-9]{1,30}")
_ANDA_DIR = os.path.dirname(anda.__file__) + os.sep
_SOURCES: dict[str, list[str]] = {}
# A line that raises on purpose, or hands the value to the native checks.
_CHECK_LINE = re.compile(r"^raise\b|\bnative\b|_native\.|_anda\.")
# Where the engine's words end and the input's begin: a quote of any kind,
# unless it is a short token the parser expected (')', '"').
_CUT = re.compile(r"""'[^'\n]{1,2}'|["`']""")
_SUBSCRIPT = re.compile(r"""\[(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?[0-9]+)\]""")
_TRACE = re.compile(r"\s*at line [0-9]+, column [0-9]+: ")
# :params, ?vars and dotted.paths name the input's own fields.
_NAME = re.compile(r"[:?][A-Za-z_][A-Za-z0-9_]*|\b\w+(?:\.\w+)+")
_NUMBER = re.compile(r"[0-9]+")
_RUN = re.compile(r"(\W)\1{3,}")  # an echoed [[[[[... is one shape whatever its depth
# Who calls the per-caller store: a new caller costs the engine a MemorySpace
# (~50 ms), so most inputs pick one of these; flag 128 sends the text as is,
# for the first NEW_CALLERS new texts of each store.
CALLERS = ("alice", "bob", "aaaaa-aa", "2vxsx-fae")
NEW_CALLERS = 16


class Finding(Exception):
    """An outcome anda must never produce: a result that breaks an invariant,
    or a TypeError/ValueError that no input check of anda's raised."""


@dataclass
class Call:
    """What one input asks of anda (decoded, not yet run)."""

    mode: str
    flags: int
    command: Any = None
    parameters: Any = None
    dry_run: bool = False
    execution: str | None = None
    caller: str | None = None
    tool: str = "execute_kip"
    arguments: Any = None
    operations: list[Any] = field(default_factory=list)
    chunk_size: int = anda.bulk.DEFAULT_CHUNK_SIZE


def encode(mode: int, payload: str, flags: int = 0) -> bytes:
    """The input bytes for a seed: the inverse of :func:`decode`."""
    return bytes([ord("0") + mode, (ord("0") + flags) & 0xFF]) + payload.encode(
        "utf-8", "surrogatepass"
    )


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


def _json(text: str) -> Any:
    """JSON with Python's extensions (NaN, Infinity, big ints, ``\\ud800``);
    ``None`` when the text is not JSON, so a mutated value still runs."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _twist(value: Any, flags: int, depth: int = 0) -> Any:
    """Reshapes JSON into what JSON cannot say: int keys, tuples."""
    if depth > 200:
        return value
    if isinstance(value, dict):
        return {
            (int(k) if flags & 16 and _INT_KEY.fullmatch(k) else k): _twist(v, flags, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        items = [_twist(v, flags, depth + 1) for v in value]
        return tuple(items) if flags & 32 else items
    return value


def _deepen(value: Any) -> Any:
    for _ in range(100):
        value = [value]
    return value


def _parameters(text: str, flags: int) -> Any:
    value = _twist(_json(text), flags)
    if flags & 64 and isinstance(value, dict):
        value = {k: _deepen(v) for k, v in value.items()}
    return value


def _command_params(text: str, flags: int) -> tuple[str, Any]:
    command, _, params = text.partition(NUL)
    return command, _parameters(params, flags) if params else None


def _batch(text: str, flags: int) -> tuple[list[Any], Any]:
    items_text, _, shared = text.partition(GS)
    items: list[Any] = []
    for item in items_text.split(RS):
        if NUL in item:
            items.append(_command_params(item, flags))
        else:
            items.append(item)
    return items, _parameters(shared, flags) if shared else None


def _operation(line: str, flags: int) -> Any:
    value = _twist(_json(line), flags)
    if value is None:
        return line  # a bare command line
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return tuple(value)
    return value


def decode(data: bytes) -> Call:
    """Reads one input. Never raises: every byte string is some call."""
    if len(data) < 2:
        data = bytes(data) + b"00"[len(data) :]
    mode = MODES[data[0] % len(MODES)]
    flags = (data[1] - ord("0")) & 0xFF
    text = _text(data[2:])
    call = Call(mode, flags, dry_run=bool(flags & 1), execution=_EXECUTIONS[(flags >> 1) & 3])
    call.tool = _TOOLS[(flags >> 3) & 1]
    if mode == "text":
        call.command = text
    elif mode == "params":
        call.command, call.parameters = _command_params(text, flags)
    elif mode in ("batch", "dry_run"):
        if mode == "dry_run":
            call.dry_run = True
        if mode == "dry_run" and RS not in text and GS not in text:
            call.command, call.parameters = _command_params(text, flags)
        else:
            call.command, call.parameters = _batch(text, flags)
    elif mode == "tool_text":
        call.arguments = text
    elif mode == "tool_dict":
        arguments = _twist(_json(text), flags)
        call.arguments = {"command": text} if arguments is None else arguments
    elif mode == "bulk":
        call.operations = [_operation(line, flags) for line in text.split("\n") if line]
        if flags & 128:
            call.chunk_size = flags & 31
    else:  # per_caller
        caller, _, rest = text.partition(NUL)
        call.caller = caller if flags & 128 else CALLERS[len(caller) % len(CALLERS)]
        call.command, call.parameters = _command_params(rest, flags)
    return call


def _source_line(path: str, lineno: int) -> str:
    # The source as it was when first seen here, not as linecache rereads it:
    # anda's files may be edited during a long run, and a shifted line would
    # misname the statement that raised.
    if path not in _SOURCES:
        try:
            with open(path, encoding="utf-8") as file:
                _SOURCES[path] = file.read().splitlines()
        except OSError:
            _SOURCES[path] = []
    lines = _SOURCES[path]
    return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""


def _snapshot_sources() -> None:
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.split(".")[0] == "anda" and path and path.endswith(".py"):
            _source_line(path, 0)


def _check_raised_by_anda(err: BaseException) -> None:
    """A TypeError/ValueError is an input check only where anda raises it on
    purpose (or its native layer does); one from, say, indexing None inside
    anda is a bug that merely shares the type."""
    last = None
    for frame, lineno in traceback.walk_tb(err.__traceback__):
        last = (frame.f_code.co_filename, lineno)
    if last is None:
        return  # built by anda and handed over unraised (a BulkWriteError's cause)
    path, lineno = last
    line = _source_line(path, lineno)
    if not (path.startswith(_ANDA_DIR) and _CHECK_LINE.search(line)):
        raise Finding(
            f"{type(err).__name__} not raised by an input check ({path}:{lineno}: {line}): {err}"
        ) from err


def _json_text(value: Any, what: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise Finding(f"{what} is not JSON: {err}") from err


def _check_response(response: Any, operations: int) -> None:
    if not isinstance(response, dict) or response.get("status") != "succeeded":
        raise Finding(f"execute_kip returned without succeeding: {response!r:.500}")
    results = response.get("results")
    if not isinstance(results, list) or len(results) != operations:
        raise Finding(f"{operations} operations, results {results!r:.500}")
    _json_text(response, "the response")


def _check_tool_result(result: Any) -> None:
    if not isinstance(result, ToolResult):
        raise Finding(f"call_tool returned {type(result).__name__}")
    if result.is_error != (result.response.get("status") != "succeeded"):
        raise Finding(f"is_error {result.is_error} for status {result.response.get('status')!r}")
    if result.is_error and not isinstance(result.error, dict):
        raise Finding("an error result without an error object")
    _json_text(result.response, "the tool response")


def _operations(call: Call) -> Iterator[Any]:
    # Lazily, as a caller streaming a file would hand them over.
    yield from call.operations


class Target:
    """Runs decoded inputs against long-lived stores, counting the outcomes."""

    def __init__(self, recreate_every: int = RECREATE_EVERY) -> None:
        _snapshot_sources()
        self.recreate_every = recreate_every
        self.runs = 0
        self.outcomes: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()  # time per mode: where the budget goes
        self._shared: anda.Nexus | None = None
        self._per_caller: anda.Nexus | None = None
        self.signature = ""
        self._callers: set[str | None] = set()
        self._shared_runs = self._per_caller_runs = 0

    def _store(self, mode: str) -> anda.Nexus:
        # Each store is renewed after its own count of inputs: the per-caller
        # one serves few, and each renewal costs it its callers' MemorySpaces.
        if mode == "per_caller":
            if self._per_caller is None or self._per_caller_runs >= self.recreate_every:
                if self._per_caller is not None:
                    self._per_caller.close()
                self._per_caller = anda.Nexus(tenancy="per_caller")
                self._per_caller_runs, self._callers = 0, set(CALLERS)
            self._per_caller_runs += 1
            return self._per_caller
        if self._shared is None or self._shared_runs >= self.recreate_every:
            if self._shared is not None:
                self._shared.close()
            self._shared, self._shared_runs = anda.Nexus(), 0
        self._shared_runs += 1
        return self._shared

    def close(self) -> None:
        for store in (self._shared, self._per_caller):
            if store is not None:
                store.close()
        self._shared = self._per_caller = None

    def run(self, data: bytes) -> str:
        """Runs one input. Returns the outcome's name; raises on a finding
        (:class:`Finding`, or any exception anda must not raise). The
        outcome's :attr:`signature` is left for the harness to feed back."""
        call = decode(data)
        store = self._store(call.mode)
        self.runs += 1
        started = time.perf_counter()
        try:
            outcome, message = self._execute(call, store)
        except anda.EnginePanicError:
            raise  # contained, but still a Rust panic: a bug
        except anda.KipError as err:
            outcome, message = f"{type(err).__name__}:{err.code}", str(err)
        except anda.bulk.BulkWriteError as err:
            if isinstance(err.cause, (TypeError, ValueError)):
                _check_raised_by_anda(err.cause)
            outcome, message = f"BulkWriteError:{type(err.cause).__name__}", str(err.cause)
        except anda.AndaError as err:
            outcome, message = type(err).__name__, str(err)
        except (TypeError, ValueError) as err:
            # anda's input checks (a UnicodeEncodeError is a ValueError)
            _check_raised_by_anda(err)
            outcome, message = type(err).__name__, str(err)
        self.outcomes[f"{call.mode}:{outcome}"] += 1
        self.seconds[call.mode] += time.perf_counter() - started
        self.signature = f"{call.mode}:{outcome}:{shape(message)}"
        return outcome

    def _execute(self, call: Call, store: anda.Nexus) -> tuple[str, str]:
        if call.mode in ("tool_text", "tool_dict"):
            result = store.call_tool(call.tool, call.arguments)
            _check_tool_result(result)
            if result.error is None:
                return "tool_ok", ""
            return f"tool_error:{result.error.get('code')}", str(result.error.get("message"))
        if call.mode == "bulk":
            done = store.bulk_write(_operations(call), chunk_size=call.chunk_size)
            if done.operations != len(call.operations):
                raise Finding(f"bulk_write wrote {done.operations} of {len(call.operations)}")
            return "bulk_ok", ""
        if call.mode == "per_caller" and call.caller not in self._callers:
            if len(self._callers) >= NEW_CALLERS:
                call.caller = CALLERS[len(call.caller or "") % len(CALLERS)]
            else:
                self._callers.add(call.caller)
        response = store.execute_kip(
            call.command,
            call.parameters,
            call.dry_run,
            execution=call.execution,
            caller=call.caller,
        )
        count = 1 if isinstance(call.command, str) else len(call.command)
        _check_response(response, count)
        return "ok", ""


def shape(message: str) -> str:
    """An error message without the input it quotes: its first line and parser
    trace lines (three at most), each up to the first quote, with names and
    numbers blanked. What is left
    names the engine's path: which check refused, which token the parser
    expected (``at line #, column #: expected ')', found``)."""
    first, *rest = _SUBSCRIPT.sub("[_]", message).splitlines() or [""]
    # Later lines are the parser's trace, or input a quoted newline let through.
    lines = []
    for line in [first, *(line for line in rest if _TRACE.match(line))][:3]:
        cut = next((m.start() for m in _CUT.finditer(line) if len(m[0]) == 1), len(line))
        line = _NUMBER.sub("#", _NAME.sub("_", line[:cut]))
        lines.append(_RUN.sub(r"\1\1\1", line)[:120])
    return " | ".join(lines)
