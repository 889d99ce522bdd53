"""Stubs of the native module ``anda._anda`` (checked by ``mypy.stubtest``)."""

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias, final

__all__ = [
    "ANDA_COGNITIVE_NEXUS_VERSION",
    "ANDA_DB_VERSION",
    "ANDA_ENGINE_VERSION",
    "ANDA_KIP_VERSION",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_DB_NAME",
    "DEFAULT_LEASE_TTL",
    "KIP_VERSION",
    "MAX_CHUNK_SIZE",
    "MAX_CHUNK_TEXT",
    "MAX_JSON_DEPTH",
    "MAX_SAFE_INTEGER",
    "NativeInbox",
    "NativeNexus",
    "NativeStoreCopy",
    "NativeTask",
    "__version__",
    "_fault_crash_after",
    "_fault_events",
    "_fault_reset",
    "_fault_rule",
    "_hand_over_engine_logs",
    "_keep_engine_logs",
    "_panic_in_engine",
    "_sleep_in_engine",
    "agent_texts",
    "caller_principal",
    "combine_writes",
    "envelope_request",
    "is_bucket_url",
    "kip_request",
    "tool_definitions",
    "tool_request",
]

__version__: str
ANDA_ENGINE_VERSION: str
ANDA_KIP_VERSION: str
ANDA_COGNITIVE_NEXUS_VERSION: str
ANDA_DB_VERSION: str
KIP_VERSION: str
DEFAULT_DB_NAME: str
DEFAULT_LEASE_TTL: float
MAX_JSON_DEPTH: int
MAX_SAFE_INTEGER: int
DEFAULT_CHUNK_SIZE: int
MAX_CHUNK_SIZE: int
MAX_CHUNK_TEXT: int

def tool_definitions(readonly: bool) -> list[dict[str, Any]]: ...
def agent_texts() -> list[tuple[str, str]]: ...
def caller_principal(caller: str) -> str: ...
def is_bucket_url(location: str) -> bool: ...
def combine_writes(
    writes: list[tuple[str, Mapping[str, Any] | None]],
) -> tuple[str, dict[str, Any]]: ...

# What an anda.Client sends: (method, request envelope), or (None, the failed
# response the call earns without being sent).
_Prepared: TypeAlias = tuple[str | None, Any]

def kip_request(
    command: str | list[tuple[str, Mapping[str, Any] | None]],
    parameters: Mapping[str, Any] | None,
    dry_run: bool,
    execution: str | None,
    readonly: bool,
) -> _Prepared: ...
def tool_request(name: str, arguments: object, readonly: bool) -> _Prepared: ...
def envelope_request(request: object, readonly: bool) -> _Prepared: ...
def _panic_in_engine(message: str, on_worker: bool = False) -> None: ...
def _sleep_in_engine(seconds: float, on_worker: bool = False) -> None: ...
def _fault_rule(
    nexus: NativeNexus,
    op: str,
    kind: str,
    path_contains: str | None,
    skip: int,
    times: int,
    keep_bytes: int,
    delay_seconds: float,
) -> None: ...
def _fault_crash_after(nexus: NativeNexus, n: int) -> None: ...
def _fault_reset(nexus: NativeNexus) -> None: ...
def _fault_events(nexus: NativeNexus) -> list[tuple[str, str, str]]: ...
def _keep_engine_logs(level: int) -> bool: ...
def _hand_over_engine_logs() -> None: ...

_Batch = list[tuple[str, Mapping[str, Any] | None]]

@final
class NativeTask:
    def cancel(self) -> None: ...

@final
class NativeInbox:
    def __new__(cls, socket_fd: int) -> NativeInbox: ...
    def take(self) -> list[tuple[int, Any, BaseException | None]]: ...

# Where an async call's result goes: an (inbox, token) pair or a callback.
_Reply: TypeAlias = tuple[NativeInbox, int] | Callable[[Any, BaseException | None], None]

@final
class NativeStoreCopy:
    def __new__(
        cls,
        source: NativeNexus,
        path: str | os.PathLike[str] | None,
        url: str | None,
        storage_options: list[tuple[str, str]],
        name: str,
        lease_ttl: float,
        overwrite: bool,
        described: str,
    ) -> NativeStoreCopy: ...
    def step(self, source: NativeNexus) -> tuple[int, int] | None: ...
    def finish(self) -> tuple[int, int]: ...
    def abandon(self) -> None: ...

@final
class NativeNexus:
    def __new__(
        cls,
        path: str | os.PathLike[str] | None,
        name: str,
        readonly: bool,
        tenancy: str,
        schema_packages: list[tuple[str, str]],
        inject_faults: bool,
        url: str | None,
        storage_options: list[tuple[str, str]],
        lease_ttl: float,
    ) -> NativeNexus: ...
    @property
    def closed(self) -> bool: ...
    @property
    def readonly(self) -> bool: ...
    @property
    def path(self) -> str | None: ...
    @property
    def url(self) -> str | None: ...
    @property
    def tenancy(self) -> str: ...
    def execute(
        self,
        command: str | _Batch,
        parameters: Mapping[str, Any] | None,
        dry_run: bool,
        execution: str | None,
        caller: str | None,
    ) -> dict[str, Any]: ...
    def execute_async(
        self,
        command: str | _Batch,
        parameters: Mapping[str, Any] | None,
        dry_run: bool,
        execution: str | None,
        caller: str | None,
        reply: _Reply,
    ) -> NativeTask: ...
    def call_tool(self, name: str, arguments: object, caller: str | None) -> dict[str, Any]: ...
    def write_all(
        self, commands: list[tuple[str, Mapping[str, Any] | None]], caller: str | None
    ) -> dict[str, Any]: ...
    def call_tool_async(
        self,
        name: str,
        arguments: object,
        caller: str | None,
        reply: _Reply,
    ) -> NativeTask: ...
    def verify(
        self,
    ) -> tuple[list[tuple[str, int]], int, list[tuple[str, int | None, str]]]: ...
    def install_schema_packages(
        self, packages: list[tuple[str, str]], activate: bool
    ) -> dict[str, Any]: ...
    def import_capsule(self, capsule: str, dry_run: bool) -> dict[str, Any]: ...
    def execute_envelope(
        self, envelope: object, readonly: bool, caller: str | None
    ) -> dict[str, Any]: ...
    def execute_envelope_async(
        self,
        envelope: object,
        readonly: bool,
        caller: str | None,
        reply: _Reply,
    ) -> NativeTask: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
