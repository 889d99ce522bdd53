"""anda: the Anda memory engine for Python.

Run KIP (Knowledge Interaction Protocol) commands against an embedded
Cognitive Nexus — the real ``anda_engine`` memory over AndaDB, in memory or in
a directory on disk.

>>> import anda
>>> anda.execute_kip("DESCRIBE PRIMER")["status"]
'succeeded'

Importing is cheap: no store exists until the first call needs one.
"""

from anda import _anda
from anda._nexus import Command, Execution, Nexus, default_nexus, execute_kip
from anda.errors import (
    AndaError,
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
    NexusClosedError,
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

__all__ = [
    "CRATE_VERSIONS",
    "ENGINE_VERSION",
    "KIP_VERSION",
    "MAX_JSON_DEPTH",
    "MAX_SAFE_INTEGER",
    "AndaError",
    "Command",
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
    "Nexus",
    "NexusClosedError",
    "StoreError",
    "StoreLockedError",
    "__version__",
    "default_nexus",
    "execute_kip",
]
