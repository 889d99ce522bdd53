"""Helpers for testing code that uses anda.

- :func:`dump_store`: a canonical, comparable snapshot of a store's contents.
- :func:`open_with_faults`: a directory store behind a fault-injecting object
  store, to prove that code survives storage failures.
- :mod:`anda.testing.strategies`: Hypothesis strategies that generate KIP
  commands and parameters in the pinned engine's dialect (needs
  ``hypothesis``; ``pip install 'anda[testing]'``).

>>> import anda
>>> from anda.testing import dump_store
>>> with anda.Nexus() as nexus:
...     before = dump_store(nexus)
...     _ = nexus.execute_kip(
...         'UPSERT CONCEPT ?t { MATCH { type: "Topic", key: "kip" } }', dry_run=True
...     )
...     dump_store(nexus) == before
True
"""

from __future__ import annotations

import os
from typing import Any, Literal

from anda import _anda
from anda._nexus import Nexus
from anda.testing._snapshot import CONCEPT_STATES, dump_store

__all__ = ["CONCEPT_STATES", "FaultInjector", "dump_store", "open_with_faults"]

#: A storage operation a fault can hit.
StorageOperation = Literal[
    "put", "get", "delete", "list", "copy", "rename",
    "multipart_start", "multipart_part", "multipart_complete", "multipart_abort",
]  # fmt: skip
#: What a fault does: fail before storage, lose the acknowledgement after it,
#: keep part of a put, cut the power (every later request fails), or wait.
FaultKind = Literal["error", "error_after", "torn", "crash", "delay"]


class FaultInjector:
    """Schedules storage faults for a store opened by :func:`open_with_faults`.

    Rules fire on the object-store requests AndaDB makes (after ``skip``
    matching requests, at most ``times`` times); :meth:`reset` removes them all.
    """

    __slots__ = ("_native",)

    def __init__(self, nexus: Nexus) -> None:
        self._native = nexus._native

    def fail(
        self,
        operation: StorageOperation,
        kind: FaultKind = "error",
        *,
        path_contains: str | None = None,
        skip: int = 0,
        times: int = 1,
        keep_bytes: int = 0,
        delay: float = 0.0,
    ) -> None:
        """Adds a rule: the next matching ``operation`` (on a path containing
        ``path_contains``, if given) fails as ``kind`` says. ``torn`` keeps the
        first ``keep_bytes`` of a put; ``delay`` holds one request ``delay``
        seconds."""
        _anda._fault_rule(
            self._native, operation, kind, path_contains, skip, times, keep_bytes, delay
        )

    def crash_after(self, mutations: int) -> None:
        """Cuts the power after ``mutations`` more attempted writes: that one
        and every later request fail until :meth:`reset`."""
        _anda._fault_crash_after(self._native, mutations)

    def reset(self) -> None:
        """Removes every rule, restores power and clears the event log."""
        _anda._fault_reset(self._native)

    def events(self) -> list[tuple[str, str, str]]:
        """Each write the store attempted, as ``(operation, path, outcome)``;
        outcome is ``Attempted``, ``BackendSucceeded``, ``BackendFailed``,
        ``ResponseFailed`` (a fault fired) or ``Cancelled``."""
        return _anda._fault_events(self._native)


def open_with_faults(
    path: str | os.PathLike[str], *, name: str | None = None
) -> tuple[Nexus, FaultInjector]:
    """Opens the directory store at ``path`` behind a fault-injecting object
    store, for reliability tests: every call either succeeds or raises an
    :class:`anda.AndaError`, whatever the faults.

    >>> import tempfile, anda
    >>> from anda.testing import open_with_faults
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     nexus, faults = open_with_faults(directory)
    ...     faults.fail("put", times=1000)
    ...     try:
    ...         nexus.execute_kip('UPSERT CONCEPT ?p { MATCH { type: "Person", key: "a" } }')
    ...     except anda.AndaError as err:
    ...         refused = type(err).__name__
    ...     faults.reset()
    ...     nexus.close()
    >>> refused
    'KipSystemError'
    """
    options: dict[str, Any] = {} if name is None else {"name": name}
    nexus = Nexus(path, _inject_faults=True, **options)
    return nexus, FaultInjector(nexus)
