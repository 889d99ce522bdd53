"""The exceptions anda raises.

Everything anda raises on its own account derives from :class:`AndaError`.
A command the engine rejects raises a :class:`KipError`, or more precisely the
subclass for the error's category, so a caller can be as broad or as narrow as
it needs:

>>> import anda
>>> with anda.Nexus() as nexus:
...     try:
...         nexus.execute_kip("FIND(?x WHERE")
...     except anda.KipSyntaxError as err:
...         print(err.code, err.category)
InvalidSyntax syntax

Bad Python input (a value that is not JSON, NaN, a non-``str`` key, an integer
the engine cannot represent, nesting deeper than :data:`anda.MAX_JSON_DEPTH`)
raises the built-in :class:`TypeError` or :class:`ValueError`, naming where
the value sits, e.g. ``parameters['tags'][2]``.
"""

from __future__ import annotations

from typing import Any

from anda._deprecation import old_name

__all__ = [
    "AndaError",
    "CorruptStoreError",
    "EnginePanicError",
    "ForkedProcessError",
    "KipArtifactError",
    "KipDataError",
    "KipEpistemicError",
    "KipError",
    "KipGovernanceError",
    "KipHistoryError",
    "KipProtocolError",
    "KipResourceError",
    "KipSchemaError",
    "KipSearchError",
    "KipSyntaxError",
    "KipSystemError",
    "KipTransactionError",
    "KipTransportError",
    "MemoryClosedError",
    "OutcomeUnknownError",
    "RemoteError",
    "ServerUnreachableError",
    "StoreError",
    "StoreLockedError",
    "error_from_response",
    "first_error",
]


class AndaError(Exception):
    """Base class of every exception anda raises itself."""


class StoreError(AndaError):
    """A store could not be opened, flushed or closed."""


class StoreLockedError(StoreError):
    """The store directory is already open in another Nexus, in this process or another."""


class CorruptStoreError(StoreError):
    """The store is damaged: records its own metadata lists cannot be read.

    Raised when a store is opened with documents the engine had to skip, and
    by ``Nexus(path, verify=True)``; :meth:`anda.Nexus.verify` and
    ``python -m anda check`` list every problem.
    """


class OutcomeUnknownError(StoreError):
    """A call's writes may or may not be durable: the store could not sync them.

    The engine took the writes, but making them durable on disk failed (an
    fsync error, a disk that filled or turned read-only under the journal),
    so whether they survive is unknown. The store then refuses every further
    call with this error until it is closed and opened again; reopening
    replays exactly what reached the disk. Read the state back before
    writing again.
    """


class RemoteError(AndaError):
    """The exchange with the server failed outside KIP.

    The connection broke, timed out, or the server answered with something
    that is not a KIP response (a proxy's error page, a wrong URL).

    Attributes:
        url: the server's URL.
        status: the HTTP status, when the server answered at all.
        outcome_unknown: ``True`` when the request may have reached the
            server and could have written: read the state back before
            sending the write again. ``False`` when nothing was sent, or the
            request could not write.
    """

    def __init__(
        self, message: str, *, url: str, status: int | None = None, outcome_unknown: bool = False
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.outcome_unknown = outcome_unknown


class ServerUnreachableError(RemoteError):
    """No connection to the server could be made; nothing was sent."""


class MemoryClosedError(AndaError):
    """A memory (an :class:`anda.Nexus` or an :class:`anda.Client`) was used
    after its ``close()``.

    Formerly ``NexusClosedError``, a name that still works (it is this class,
    so ``except anda.NexusClosedError`` catches it) but warns.

    >>> import anda
    >>> nexus = anda.Nexus()
    >>> nexus.close()
    >>> try:
    ...     nexus.execute_kip("DESCRIBE PRIMER")
    ... except anda.MemoryClosedError as err:
    ...     print(err)
    this Nexus is closed; open a new one to use the store again
    """


class ForkedProcessError(AndaError):
    """A Nexus opened in a parent process was used in a forked child.

    Open a new :class:`anda.Nexus` in the child instead.
    """


class EnginePanicError(AndaError):
    """The Rust engine panicked while running a call.

    The panic is contained: the interpreter keeps running and the store stays
    usable for other calls.
    """


class KipError(AndaError):
    """The engine rejected a KIP command.

    Attributes:
        code: the engine's stable error name, e.g. ``"InvalidSyntax"``
            or ``"ReadonlyViolation"``.
        category: the error's family (``"syntax"``, ``"schema"``, ...).
        message: what went wrong, in the engine's words.
        hint: what to change, or ``None``.
        retry: the engine's retry classification (``"requires_different_input"``,
            ``"safe_same_request"``, ...), or ``None``.
        details: structured detail from the engine, or ``None``.
        response: the full response envelope, as returned on success.

    >>> import anda
    >>> with anda.Nexus() as nexus:
    ...     try:
    ...         nexus.execute_kip('FIND(?x) WHERE { ?x {type: "NoSuchType"} }')
    ...     except anda.KipError as err:
    ...         print(type(err).__name__, err.response["status"])
    KipSchemaError failed
    """

    category_name: str | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str,
        category: str | None = None,
        hint: str | None = None,
        retry: str | None = None,
        details: Any = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.category = category
        self.message = message
        self.hint = hint
        self.retry = retry
        self.details = details
        self.response = response

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_kip_error,
            (
                type(self),
                self.message,
                {
                    "code": self.code,
                    "category": self.category,
                    "hint": self.hint,
                    "retry": self.retry,
                    "details": self.details,
                    "response": self.response,
                },
            ),
        )


def _rebuild_kip_error(cls: type[KipError], message: str, fields: dict[str, Any]) -> KipError:
    return cls(message, **fields)


class KipSyntaxError(KipError):
    """The command text could not be parsed."""

    category_name = "syntax"


class KipProtocolError(KipError):
    """The request envelope or operation shape is wrong (``ReadonlyViolation`` too)."""

    category_name = "protocol"


class KipSchemaError(KipError):
    """A schema symbol, field or package problem (e.g. an unknown type)."""

    category_name = "schema"


class KipDataError(KipError):
    """An identity or reference problem in the data."""

    category_name = "data"


class KipEpistemicError(KipError):
    """An epistemic or mutability rule was violated."""

    category_name = "epistemic"


class KipGovernanceError(KipError):
    """Authentication, authorization or protected state."""

    category_name = "governance"


class KipTransactionError(KipError):
    """A transaction precondition, conflict or unknown outcome."""

    category_name = "transaction"


class KipHistoryError(KipError):
    """Historical reads and cursors."""

    category_name = "history"


class KipSearchError(KipError):
    """SEARCH modes and indexes."""

    category_name = "search"


class KipArtifactError(KipError):
    """Artifacts, digests and proofs."""

    category_name = "artifact"


class KipResourceError(KipError):
    """Limits, quotas and timeouts."""

    category_name = "resource"


class KipTransportError(KipError):
    """The transport itself failed."""

    category_name = "transport"


class KipSystemError(KipError):
    """An unclassified internal engine failure."""

    category_name = "system"


_BY_CATEGORY: dict[str, type[KipError]] = {
    cls.category_name: cls
    for cls in (
        KipSyntaxError,
        KipProtocolError,
        KipSchemaError,
        KipDataError,
        KipEpistemicError,
        KipGovernanceError,
        KipTransactionError,
        KipHistoryError,
        KipSearchError,
        KipArtifactError,
        KipResourceError,
        KipTransportError,
        KipSystemError,
    )
    if cls.category_name is not None
}


def first_error(response: dict[str, Any]) -> dict[str, Any]:
    """The error of a response that did not succeed: the request's own, else
    the first failed operation's."""
    error = response.get("error")
    if isinstance(error, dict):
        return error
    for result in response.get("results") or ():
        operation_error = result.get("error") if isinstance(result, dict) else None
        if isinstance(operation_error, dict):
            return operation_error
    return {
        "code": "InternalError",
        "category": "system",
        "message": f"the engine answered {response.get('status')!r} without an error",
    }


def error_from_response(response: dict[str, Any]) -> KipError:
    """Builds the exception for a response whose ``status`` is not ``"succeeded"``.

    The request-level error wins; otherwise the first failed operation's error
    is used. The whole response stays available as ``err.response``.

    >>> err = error_from_response({
    ...     "status": "failed",
    ...     "error": {"code": "InvalidSyntax", "category": "syntax", "message": "bad"},
    ... })
    >>> type(err).__name__, str(err)
    ('KipSyntaxError', 'InvalidSyntax: bad')
    """
    error = first_error(response)
    category = error.get("category")
    retry = error.get("retry")
    cls = _BY_CATEGORY.get(category, KipError) if isinstance(category, str) else KipError
    return cls(
        str(error.get("message", "")),
        code=str(error.get("code", "InternalError")),
        category=category if isinstance(category, str) else None,
        hint=error.get("hint"),
        retry=retry.get("class") if isinstance(retry, dict) else None,
        details=error.get("details"),
        response=response,
    )


# Old names, kept so code written against them still runs; each warns once used.
_DEPRECATED = {"NexusClosedError": ("MemoryClosedError", MemoryClosedError)}


def __getattr__(name: str) -> Any:
    return old_name(__name__, name, _DEPRECATED)
