"""anda inside agent frameworks: one module per framework, each an optional extra.

Every module here is a thin adapter over the memory's public face, so it works
with any memory (an embedded :class:`anda.Nexus` or an :class:`anda.Client`),
and imports its framework only when the module itself is imported: importing
``anda`` or this package imports none. A framework that is not installed
raises ``ImportError`` naming the extra to install, e.g.
``pip install 'anda[langchain]'``.

A failed KIP command reaches the framework as that framework reports a failed
tool, with the engine's typed error in the message (:func:`tool_error_text`).
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from anda.errors import error_from_response

__all__ = ["require", "tool_error_text"]


def require(module: str, extra: str) -> Any:
    """Imports ``module``, or raises ``ImportError`` naming the extra that installs it.

    >>> require("json", "none").dumps([1])
    '[1]'
    >>> require("no_such_framework", "example")
    Traceback (most recent call last):
    ...
    ImportError: no_such_framework is not installed: pip install 'anda[example]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{module.split('.')[0]} is not installed: pip install 'anda[{extra}]'",
            name=module,
        ) from err


def tool_error_text(response: dict[str, Any]) -> str:
    """What a model reads when a tool call fails: the engine's typed error.

    The exception class anda raises for it, the engine's code, message and
    hint, then the whole response envelope (so a failed batch still shows
    each operation's result).

    >>> import anda
    >>> with anda.Nexus() as nexus:
    ...     result = nexus.call_tool("execute_kip", {"command": "FIND(?x WHERE"})
    >>> print(tool_error_text(result.response))  # doctest: +ELLIPSIS
    KipSyntaxError: InvalidSyntax: ...
    response: {"kip":"2.0","status":"failed",...}
    """
    error = error_from_response(response)
    envelope = json.dumps(response, ensure_ascii=False, separators=(",", ":"))
    return f"{type(error).__name__}: {error}\nresponse: {envelope}"
