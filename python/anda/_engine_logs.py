"""The engine's log records in Python's :mod:`logging`.

AndaDB and the engine report what goes wrong (a record skipped, a recovery,
an object store retry) in Rust ``log`` records and ``tracing`` events. They
reach the ``anda.engine`` logger hierarchy, one logger per Rust module:
``anda.engine.anda_db.collection`` for ``anda_db::collection``. The native
side queues them on the engine's threads (which never wait for the GIL) and
the thread that made a call hands them over here as the call ends, so a
record reaches :mod:`logging` before the call that caused it returns.

Quiet by default: the ``anda`` logger has a :class:`logging.NullHandler`, so
nothing is printed until the application configures logging (e.g.
``logging.basicConfig()``); then AndaDB's warnings show up with its own.
Which records the engine keeps is read from the levels of the
``anda.engine`` loggers when a store opens: the least severe level any of
them is enabled for (WARNING unless configured).
"""

from __future__ import annotations

import atexit
import sys
from collections.abc import Sequence
from typing import Any

from anda import _anda

__all__ = ["ENGINE_LOGGER", "emit", "follow_levels"]

#: The logger every engine record goes to, or to one of its children.
ENGINE_LOGGER = "anda.engine"

_WARNING = 30

# Set once the interpreter begins to exit: records then go nowhere. The
# handler is registered when the first store opens, after anda's own that
# closes the stores left open, so it runs before that one (atexit is LIFO).
_exiting = False
_watching_exit = False


def _exit() -> None:
    global _exiting
    _exiting = True


def follow_levels() -> None:
    """Tells the engine which records to keep: those at the least severe
    level any ``anda.engine`` logger is enabled for.

    Imports nothing: where :mod:`logging` was never imported, nobody
    configured it, and the engine keeps WARNING and above.
    """
    global _watching_exit
    if not _watching_exit:
        _watching_exit = True
        atexit.register(_exit)
    level = _WARNING if "logging" not in sys.modules else _least_severe(_logging())
    _anda._keep_engine_logs(level)


def _logging() -> Any:  # logging.Manager; logging is imported only when used
    """:mod:`logging`'s manager, with the ``anda`` logger made quiet (a
    :class:`logging.NullHandler`) the first time."""
    import logging

    quiet = logging.getLogger("anda")
    if not any(isinstance(handler, logging.NullHandler) for handler in quiet.handlers):
        quiet.addHandler(logging.NullHandler())
    return logging.Logger.manager


def _least_severe(manager: Any) -> int:
    import logging

    level = logging.getLogger(ENGINE_LOGGER).getEffectiveLevel()
    for name, logger in list(manager.loggerDict.items()):
        if name.startswith(ENGINE_LOGGER + ".") and isinstance(logger, logging.Logger):
            level = min(level, logger.getEffectiveLevel())
    # logging.disable(n) silences n and below everywhere.
    disabled: int = manager.disable
    return max(level, disabled + 1)


#: One record as the native side hands it over.
Handed = tuple[int, str, str, Sequence[tuple[str, str]], str | None, int | None]


def emit(records: Sequence[Handed], dropped: int) -> None:
    """Logs records handed over by the native side: ``(level, target,
    message, fields, file, line)`` each, oldest first; ``dropped`` counts
    those lost because more arrived between two calls than are kept."""
    if _exiting:
        return
    _logging()
    import logging

    for level, target, message, fields, file, line in records:
        logger = logging.getLogger(f"{ENGINE_LOGGER}.{target.replace('::', '.')}")
        if not logger.isEnabledFor(level):
            continue
        shown = message
        if fields:
            shown += " (" + ", ".join(f"{key}={value}" for key, value in fields) + ")"
        record = logger.makeRecord(
            logger.name,
            level,
            file or "<engine>",
            line or 0,
            shown,
            (),
            None,
            extra={"engine_target": target, "engine_fields": dict(fields)},
        )
        logger.handle(record)
    if dropped:
        logging.getLogger(ENGINE_LOGGER).warning(
            "%d engine log records were dropped: more arrived between two calls "
            "than the engine keeps",
            dropped,
        )
