"""The rules of a call that every door shares: the tools' names, argument
checks, batch normalisation, error envelopes, whether a call may write, a
tool call's result, and where a response keeps the primer.

Every memory (``Nexus``, ``Client``) and every door (the LLM tools, MCP, the
server, the command line) imports these from here; this module imports no
door, so no door depends on another's private names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from anda import _anda
from anda.errors import first_error

if TYPE_CHECKING:
    from anda._memory import Memory

#: The tool that reads and writes.
READ_WRITE_TOOL = "execute_kip"
#: The tool that only reads: the engine refuses a write sent to it.
READONLY_TOOL = "execute_kip_readonly"
#: Both tools, as models see them and ``POST /kip`` names its methods.
TOOLS = (READ_WRITE_TOOL, READONLY_TOOL)
#: How the operations of a batch relate to one another (see ``anda.Execution``).
EXECUTIONS = ("sequence", "independent", "atomic")
#: The META command whose result says what a memory holds now.
DESCRIBE_PRIMER = "DESCRIBE PRIMER"

# -- argument checks ----------------------------------------------------------------


def check_bool(name: str, value: object) -> bool:
    """``value``, if it is a bool; ``TypeError`` naming ``name`` otherwise.

    >>> check_bool("dry_run", 1)
    Traceback (most recent call last):
    ...
    TypeError: dry_run must be bool, not int
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be bool, not {type(value).__name__}")
    return value


def check_caller(caller: object) -> None:
    if caller is not None and not isinstance(caller, str):
        raise TypeError(f"caller must be str or None, not {type(caller).__name__}")


def check_tool_call(name: object, caller: object) -> None:
    if not isinstance(name, str):
        raise TypeError(f"name must be str, not {type(name).__name__}")
    check_caller(caller)


def normalise(
    command: object, execution: str | None, readonly: bool
) -> tuple[str | list[tuple[str, Any]], str | None]:
    """Checks the call's shape: one command, or a batch as (command, parameters) pairs.

    A batch on a writable memory runs in ``"sequence"`` unless told
    otherwise; the read-only path keeps the engine's own default.

    >>> normalise(["DESCRIBE PRIMER", ("FIND(?p) WHERE { ?p {type: :t} }", {"t": "Person"})],
    ...           None, False)
    ([('DESCRIBE PRIMER', None), ('FIND(?p) WHERE { ?p {type: :t} }', {'t': 'Person'})], 'sequence')
    """
    if execution is not None and execution not in EXECUTIONS:
        raise ValueError(f"execution must be one of {EXECUTIONS} or None, not {execution!r}")
    if isinstance(command, str):
        return command, execution
    if isinstance(command, (bytes, bytearray, memoryview)):
        raise TypeError("command must be str (decode bytes first), not " + type(command).__name__)
    if not isinstance(command, Sequence):
        raise TypeError(
            "command must be a str or a sequence of commands, not " + type(command).__name__
        )
    if not command:
        raise ValueError("a batch needs at least one command")
    batch: list[tuple[str, Any]] = []
    for index, item in enumerate(command):
        if isinstance(item, str):
            batch.append((item, None))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            batch.append(item)
        else:
            raise TypeError(
                f"commands[{index}] must be a str or a (command, parameters) tuple, "
                f"not {type(item).__name__}"
            )
    if execution is None and len(batch) > 1 and not readonly:
        execution = "sequence"
    return batch, execution


# -- may this call write? -------------------------------------------------------------
#
# Two doors ask, with different stakes, so there are two answers built on one
# base. A Client asks before re-sending a call whose answer was lost: it trusts
# only what the caller declared (`declared_read`), as its `retries` and
# `RemoteError.outcome_unknown` promise. The server asks when a deadline
# passes: it has the commands in hand, so it also reads their verbs
# (`may_write`), to answer a read's timeout as safe to repeat instead of
# "outcome unknown". Either rule errs towards "may write".


def declared_read(method: str, dry_run: object) -> bool:
    """Whether a call says it cannot write: sent to the read-only tool, or
    marked as a dry run (``dry_run`` is the flag's value as sent).

    >>> declared_read("execute_kip", True), declared_read("execute_kip_readonly", None)
    (True, True)
    >>> declared_read("execute_kip", "yes")
    False
    """
    return method == READONLY_TOOL or dry_run is True


def dry_run_option(envelope: Any) -> Any:
    """The ``options.dry_run`` of a KIP 2.0 request envelope, or ``None``."""
    options = envelope.get("options") if isinstance(envelope, dict) else None
    return options.get("dry_run") if isinstance(options, dict) else None


_READ_VERB = re.compile(r"\s*(FIND|SEARCH|DESCRIBE|LIST)\b", re.IGNORECASE)


def may_write(method: str, arguments: dict[str, Any], readonly: bool) -> bool:
    """Whether a call could change state, judged from its commands too: when
    its answer is lost, a write's outcome is unknown, while a read may simply
    be sent again. ``arguments`` are tool arguments or a request envelope.

    Only commands that start with a read verb count as reads.

    >>> may_write("execute_kip", {"command": "FIND(?p) WHERE { ?p {type: \\"Person\\"} }"}, False)
    False
    >>> may_write("execute_kip", {"operations": ["DESCRIBE PRIMER", "UPSERT ..."]}, False)
    True
    >>> may_write("execute_kip_readonly", {"command": "UPSERT ..."}, False)
    False
    """
    dry_run = arguments.get("dry_run") is True or dry_run_option(arguments) is True
    if readonly or declared_read(method, dry_run):
        return False
    if "command" in arguments:
        commands: list[Any] = [arguments["command"]]
    else:
        operations = arguments.get("operations")
        commands = [
            op.get("command") if isinstance(op, dict) else op
            for op in (operations if isinstance(operations, list) else [None])
        ]
    return not all(isinstance(text, str) and _READ_VERB.match(text) for text in commands)


# -- error envelopes ------------------------------------------------------------------


def failure(
    code: str,
    category: str,
    message: str,
    *,
    retry: str,
    hint: str | None = None,
    status: str = "failed",
) -> dict[str, Any]:
    """A KIP response envelope for one error, shaped as the engine shapes its own.

    >>> busy = failure("RateLimited", "resource", "busy", retry="safe_same_request")
    >>> busy["status"], busy["error"]["retry"], busy["results"][0]["error"] is busy["error"]
    ('failed', {'class': 'safe_same_request'}, True)
    """
    error: dict[str, Any] = {"code": code, "category": category, "message": message}
    if hint is not None:
        error["hint"] = hint
    error["retry"] = {"class": retry}
    if status == "outcome_unknown":
        # Nothing is known per operation, so there are no results to report.
        return {"kip": _anda.KIP_VERSION, "status": status, "results": [], "error": error}
    return {
        "kip": _anda.KIP_VERSION,
        "status": status,
        "results": [{"status": "failed", "error": error}],
        "error": error,
    }


def invalid_envelope(message: str) -> dict[str, Any]:
    """An ``InvalidRequestEnvelope`` failure."""
    return failure(
        "InvalidRequestEnvelope",
        "protocol",
        message,
        retry="requires_different_input",
        hint="Send params as a KIP 2.0 request envelope: "
        '{"kip": "2.0", "operations": [{"command": "..."}]}.',
    )


# -- a tool call's result -------------------------------------------------------------


class Response(dict[str, Any]):
    """A KIP response envelope: a plain ``dict`` (JSON as the engine sent it)
    that also draws itself in a notebook, each operation's result with the
    concepts in it (``anda.view`` renders it; nothing is imported before).

    >>> import anda
    >>> response = anda.Nexus().execute_kip("DESCRIBE PRIMER")
    >>> isinstance(response, anda.Response), isinstance(response, dict), response["status"]
    (True, True, 'succeeded')
    >>> "status <b>succeeded</b>" in response._repr_html_()
    True
    """

    __slots__ = ()

    def _repr_html_(self) -> str:
        from anda.view import show

        return show(self)._repr_html_()


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one tool call, ready to hand back to the model.

    Attributes:
        response: the engine's KIP response envelope, as a dict.
        is_error: ``True`` unless the response's status is ``"succeeded"``
            (a ``"partial"`` batch is an error too, as in anda_engine's tool).
        content: the response as compact JSON text, what the model reads.

    >>> import anda
    >>> with anda.Nexus() as nexus:
    ...     result = nexus.call_tool("execute_kip", {"command": "FIND(?x WHERE"})
    >>> result.is_error, result.error["code"]
    (True, 'InvalidSyntax')
    >>> result.content.startswith('{"kip":"2.0"')
    True
    """

    response: dict[str, Any]
    is_error: bool
    content: str

    @property
    def error(self) -> dict[str, Any] | None:
        """The engine's error (``code``, ``category``, ``message``, ``hint``,
        ...): the request's, else the first failed operation's; ``None`` on
        success."""
        if not self.is_error:
            return None
        return first_error(self.response)

    @classmethod
    def from_response(cls, response: dict[str, Any]) -> ToolResult:
        """Wraps an engine response envelope."""
        return cls(
            response=response,
            is_error=response.get("status") != "succeeded",
            content=json.dumps(response, ensure_ascii=False, separators=(",", ":")),
        )


# -- the primer ---------------------------------------------------------------------


def primer_of(response: dict[str, Any]) -> dict[str, Any]:
    """The primer in a succeeded ``DESCRIBE PRIMER`` response: what the
    memory holds (``contents``), its ``space`` and its schema."""
    primer: dict[str, Any] = response["results"][0]["result"]
    return primer


def read_primer(memory: Memory, *, caller: str | None = None) -> dict[str, Any]:
    """The memory's live primer, as ``caller`` sees it; raises ``KipError``.

    >>> import anda
    >>> with anda.Nexus() as nexus:
    ...     "contents" in read_primer(nexus)
    True
    """
    return primer_of(memory.execute_kip(DESCRIBE_PRIMER, caller=caller))


async def read_primer_async(memory: Memory, *, caller: str | None = None) -> dict[str, Any]:
    """:func:`read_primer` for ``asyncio``."""
    return primer_of(await memory.execute_kip_async(DESCRIBE_PRIMER, caller=caller))
