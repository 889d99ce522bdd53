"""The process-wide memory behind :func:`anda.execute_kip`."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anda._client import Client
    from anda._nexus import Nexus

__all__ = ["default_memory", "default_nexus", "execute_kip"]

_default_lock = threading.Lock()
_default: Nexus | Client | None = None


def default_memory() -> Nexus | Client:
    """The process-wide memory behind :func:`anda.execute_kip`, created on first use.

    In memory, or the location named by the ``ANDA_DB`` environment variable
    if it is set: a directory, or a server's ``http(s)://`` URL (its key in
    ``ANDA_API_KEY``), which gives an :class:`anda.Client`. If it was closed,
    the next use opens it again.

    >>> import anda
    >>> anda.default_memory() is anda.default_memory()
    True
    """
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            from anda._location import open_memory

            _default = open_memory(os.environ.get("ANDA_DB") or None)
        return _default


def default_nexus() -> Nexus | Client:
    """Deprecated: the old name of :func:`default_memory`, which may be an
    :class:`anda.Client` rather than a Nexus. Warns, then returns it.

    >>> import anda, warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     anda.default_nexus() is anda.default_memory()
    True
    """
    import warnings

    warnings.warn(
        "anda.default_nexus() is deprecated: call anda.default_memory()",
        DeprecationWarning,
        stacklevel=2,
    )
    return default_memory()


def execute_kip(
    command: str,
    parameters: Mapping[str, Any] | None = None,
    dry_run: bool = False,
    *,
    caller: str | None = None,
) -> dict[str, Any]:
    """Runs a KIP command on the process-wide default store (see :func:`default_memory`).

    The same call as :meth:`Nexus.execute_kip`.

    >>> import anda
    >>> anda.execute_kip("DESCRIBE PRIMER")["status"]
    'succeeded'
    """
    return default_memory().execute_kip(command, parameters, dry_run, caller=caller)
