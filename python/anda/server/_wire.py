"""The ``/kip`` wire format of Anda's Rust server, on anda's memory.

Three things live here, all free of the web framework: reading a request's
``params`` into the engine's tool arguments, the HTTP status of a KIP
response, and the error envelopes the HTTP layer answers with itself (built
with the shared core, :mod:`anda._calls`).
"""

from __future__ import annotations

from typing import Any

from anda._calls import failure, invalid_envelope
from anda.errors import first_error

_REQUEST_ID_MAX = 256


class Refusal(Exception):
    """A request answered by the HTTP layer itself: an HTTP status and a KIP envelope."""

    def __init__(self, status: int, response: dict[str, Any]) -> None:
        super().__init__(response["error"]["message"])
        self.status = status
        self.response = response


def call_arguments(params: Any) -> tuple[dict[str, Any], bool, str | None]:
    """What a request's ``params`` asks of the engine: the arguments, whether
    they are a KIP 2.0 request envelope (else the tool arguments of the
    older shape), and the ``request_id`` to echo.

    An envelope (it has ``kip``) goes to the engine whole, which checks and
    honours every member (``preconditions``, ``context``, ``requires``,
    ``options``, ...) or refuses it with its own error. The older shape is
    ``command`` | ``commands`` | ``operations``, ``parameters``, ``dry_run``,
    as Anda's MCP bridge and skill scripts send it. Raises :class:`Refusal`
    for anything else.

    >>> call_arguments({"kip": "2.0", "operations": [{"command": "DESCRIBE PRIMER"}],
    ...                 "request_id": "r1"})
    ({'kip': '2.0', 'operations': [{'command': 'DESCRIBE PRIMER'}], 'request_id': 'r1'}, True, 'r1')
    >>> call_arguments({"commands": ["DESCRIBE PRIMER"]})
    ({'operations': ['DESCRIBE PRIMER'], 'execution': {'mode': 'sequence'}}, False, None)
    >>> call_arguments("DESCRIBE PRIMER")
    Traceback (most recent call last):
    ...
    anda.server._wire.Refusal: params must be a KIP 2.0 request envelope ...
    """
    if not isinstance(params, dict):
        raise invalid(
            "params must be a KIP 2.0 request envelope (an object with `kip` and "
            f"`operations`), not {_json_type(params)}"
        )
    if "kip" not in params:
        return _legacy(params), False, None
    request_id = params.get("request_id")
    return params, True, request_id if _valid_request_id(request_id) else None


def _valid_request_id(value: Any) -> bool:
    # Echoed in the answer, so it must be text that UTF-8 can carry.
    if not isinstance(value, str) or not value.strip() or len(value) > _REQUEST_ID_MAX:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _legacy(params: dict[str, Any]) -> dict[str, Any]:
    """The tool shape; KIP 1.x's ``commands`` batch ran in order, stopping at a failure."""
    if "commands" not in params:
        return params
    if "command" in params or "operations" in params:
        raise invalid("send one of `command`, `commands` or `operations`")
    arguments = {key: value for key, value in params.items() if key != "commands"}
    arguments["operations"] = params["commands"]
    arguments.setdefault("execution", {"mode": "sequence"})
    return arguments


# -- HTTP statuses (as anda_cognitive_nexus_server maps them) ------------------------

_STATUS_BY_CODE: dict[str, int] = {
    # Existence-neutral: "absent" and "not visible" must look the same.
    **dict.fromkeys(("NotFoundOrNotVisible", "TransactionUnknown"), 404),
    "Unauthenticated": 401,
    # State the client must re-read first (the epistemic rules included).
    **dict.fromkeys(
        (
            "VersionConflict",
            "PreconditionFailed",
            "SerializationConflict",
            "IdempotencyConflict",
            "SchemaEnvironmentChanged",
            "IdentityConflict",
            "ClientKeyConflict",
            "IdentityMergeConflict",
            "ImportPreviewConflict",
            "ImmutableField",
            "EpistemicRevisionRequired",
            "EvidenceCorrectionRequired",
            "EvidenceCorrectionConflict",
            "SupersessionMismatch",
            "InvalidLifecycleTransition",
            "ActivityTerminal",
            "LegalHoldConflict",
        ),
        409,
    ),
    # The coordinate the client holds is gone for good. (CursorInvalid is the
    # pinned engine's name for what newer registries call CursorInvalidated.)
    **dict.fromkeys(
        (
            "HistoricalSnapshotUnavailable",
            "HistoricalSchemaUnavailable",
            "CursorExpired",
            "CursorInvalid",
            "CursorInvalidated",
            "ChangeCursorExpired",
        ),
        410,
    ),
    **dict.fromkeys(("TransactionTooLarge", "ArtifactTooLarge"), 413),
    "RateLimited": 429,
    "ExecutionTimeout": 408,
    # A gap the runtime declares, not a bad request.
    **dict.fromkeys(
        (
            "UnsupportedCapability",
            "UnsupportedIsolation",
            "SearchModeUnsupported",
            "HistoricalSearchUnavailable",
        ),
        501,
    ),
    **dict.fromkeys(("SearchIndexUnavailable", "ArtifactUnavailable", "BlobUnavailable"), 503),
    # The write may have committed: never a clean client-side failure.
    **dict.fromkeys(("OutcomeUnknown", "InternalError"), 500),
}
# Syntax, protocol, schema, data, epistemic, history, search, artifact and
# resource: the request itself must change.
_CLIENT_CATEGORIES = frozenset(
    {
        "syntax",
        "protocol",
        "schema",
        "data",
        "epistemic",
        "history",
        "search",
        "artifact",
        "resource",
    }
)


def error_status(error: dict[str, Any]) -> int:
    """The HTTP status for a KIP error object.

    Codes with a more specific meaning first, then the category; an error
    this server cannot classify is a 500, since it cannot be proven
    client-caused.

    >>> error_status({"code": "InvalidSyntax", "category": "syntax"})
    400
    >>> error_status({"code": "NotAuthorized", "category": "governance"})
    403
    >>> error_status({"code": "SomeFutureCode"})
    500
    """
    status = _STATUS_BY_CODE.get(error.get("code"))  # type: ignore[arg-type]
    if status is not None:
        return status
    category = error.get("category")
    if category == "governance":
        return 403
    return 400 if category in _CLIENT_CATEGORIES else 500


def response_status(response: dict[str, Any]) -> int:
    """The HTTP status for a KIP response: 200, 207 for a ``partial`` batch
    (earlier writes are durable: an error status would invite re-sending
    them), else the status of its error.

    >>> response_status({"status": "partial", "results": []})
    207
    """
    status = response.get("status")
    if status == "succeeded":
        return 200
    if status == "partial":
        return 207
    # A failure without an error object is classified as the InternalError
    # first_error stands in for it: a 500.
    return error_status(first_error(response))


# -- what the HTTP layer answers itself ---------------------------------------------


def invalid(message: str) -> Refusal:
    """A 400 ``InvalidRequestEnvelope``."""
    return Refusal(400, invalid_envelope(message))


def unsupported(message: str) -> Refusal:
    """A 501 ``UnsupportedCapability``."""
    return Refusal(
        501,
        failure(
            "UnsupportedCapability",
            "protocol",
            message,
            retry="non_retryable",
            hint="Send only operations, execution, read, parameters and options.dry_run.",
        ),
    )


def unauthenticated() -> dict[str, Any]:
    return failure(
        "Unauthenticated",
        "governance",
        "missing or invalid API key",
        retry="requires_authority",
        hint="Send the header `Authorization: Bearer <key>`.",
    )


def too_large(limit: int) -> dict[str, Any]:
    return failure(
        "ResourceExhausted",
        "resource",
        f"the request body exceeds the server's limit of {limit} bytes",
        retry="requires_different_input",
        hint="Split the batch into smaller requests.",
    )


def busy(limit: int) -> dict[str, Any]:
    return failure(
        "RateLimited",
        "resource",
        f"the server is already running {limit} requests",
        retry="safe_same_request",
        hint="Back off and send the identical request again.",
    )


def timed_out(message: str) -> dict[str, Any]:
    # Overrides ExecutionTimeout's registered class: nothing here could have written.
    return failure("ExecutionTimeout", "resource", message, retry="safe_same_request")


def outcome_unknown() -> dict[str, Any]:
    return failure(
        "OutcomeUnknown",
        "transaction",
        "the response deadline passed while the write was still running; it may still "
        "commit. Read the state back instead of sending the write again",
        retry="outcome_lookup_required",
        status="outcome_unknown",
    )


def internal(message: str, *, safe: bool) -> dict[str, Any]:
    retry = "safe_same_request" if safe else "outcome_lookup_required"
    return failure("InternalError", "system", message, retry=retry)


def _json_type(value: Any) -> str:
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return "a " + type(value).__name__
