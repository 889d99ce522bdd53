"""anda: the Anda memory engine for Python.

Run KIP (Knowledge Interaction Protocol) commands against an embedded
Cognitive Nexus — the real ``anda_engine`` memory over AndaDB, in memory or in
a directory on disk.

>>> import anda
>>> anda.execute_kip("DESCRIBE PRIMER")["status"]
'succeeded'

Importing is cheap: no store exists until the first call needs one.
"""

from anda import _anda, bulk, tools
from anda._base import Command, Execution
from anda._calls import Response
from anda._capsules import Capsule, SchemaPackage
from anda._changes import ChangeFeed
from anda._client import Client
from anda._copy import CopyResult, copy_store
from anda._default import default_memory, default_nexus, execute_kip
from anda._deprecation import old_name
from anda._location import open_memory
from anda._logs import LogPage
from anda._memory import Memory
from anda._nexus import Nexus, Tenancy, VerifyReport
from anda.errors import (
    AndaError,
    CorruptStoreError,
    EnginePanicError,
    ForkedProcessError,
    KipArtifactError,
    KipDataError,
    KipEpistemicError,
    KipError,
    KipGovernanceError,
    KipHistoryError,
    KipProtocolError,
    KipResourceError,
    KipSchemaError,
    KipSearchError,
    KipSyntaxError,
    KipSystemError,
    KipTransactionError,
    KipTransportError,
    MemoryClosedError,
    OutcomeUnknownError,
    RemoteError,
    ServerUnreachableError,
    StoreError,
    StoreLockedError,
)

#: This package's version.
__version__: str = _anda.__version__
#: The version of the ``anda_engine`` crate compiled in.
ENGINE_VERSION: str = _anda.ANDA_ENGINE_VERSION
#: The KIP protocol version the engine speaks.
KIP_VERSION: str = _anda.KIP_VERSION
#: Versions of every anda crate compiled in.
CRATE_VERSIONS: dict[str, str] = {
    "anda_engine": _anda.ANDA_ENGINE_VERSION,
    "anda_kip": _anda.ANDA_KIP_VERSION,
    "anda_cognitive_nexus": _anda.ANDA_COGNITIVE_NEXUS_VERSION,
    "anda_db": _anda.ANDA_DB_VERSION,
}
#: The deepest nesting accepted in one parameter value.
MAX_JSON_DEPTH: int = _anda.MAX_JSON_DEPTH
#: The largest integer magnitude accepted in parameters (2**53 - 1).
MAX_SAFE_INTEGER: int = _anda.MAX_SAFE_INTEGER


def caller_principal(caller: str) -> str:
    """The Principal (as text) a caller id runs as under ``tenancy="per_caller"``.

    A Principal's text (``"aaaaa-aa"``) is that Principal. Any other string is
    hashed into a self-authenticating Principal (SHA-224 of the fixed prefix
    ``anda-caller-id:`` and the id's UTF-8 bytes): the same id always reaches
    the same memory, and two ids never share one. The returned text is an
    alias of the id it came from. The anonymous Principal (``"2vxsx-fae"``)
    is nobody: under ``per_caller`` it may do nothing.

    >>> import anda
    >>> anda.caller_principal("alice") == anda.caller_principal("alice")
    True
    >>> anda.caller_principal("alice") != anda.caller_principal("bob")
    True
    >>> anda.caller_principal("aaaaa-aa")
    'aaaaa-aa'
    """
    if not isinstance(caller, str):
        raise TypeError(f"caller must be str, not {type(caller).__name__}")
    return _anda.caller_principal(caller)


# Old names, kept so code written against them still runs; each warns once used.
_DEPRECATED = {"NexusClosedError": ("MemoryClosedError", MemoryClosedError)}


def __getattr__(name: str) -> object:
    return old_name(__name__, name, _DEPRECATED)


__all__ = [
    "CRATE_VERSIONS",
    "ENGINE_VERSION",
    "KIP_VERSION",
    "MAX_JSON_DEPTH",
    "MAX_SAFE_INTEGER",
    "AndaError",
    "Capsule",
    "ChangeFeed",
    "Client",
    "Command",
    "CopyResult",
    "CorruptStoreError",
    "EnginePanicError",
    "Execution",
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
    "LogPage",
    "Memory",
    "MemoryClosedError",
    "Nexus",
    "OutcomeUnknownError",
    "RemoteError",
    "Response",
    "SchemaPackage",
    "ServerUnreachableError",
    "StoreError",
    "StoreLockedError",
    "Tenancy",
    "VerifyReport",
    "__version__",
    "bulk",
    "caller_principal",
    "copy_store",
    "default_memory",
    "default_nexus",
    "execute_kip",
    "open_memory",
    "tools",
]
