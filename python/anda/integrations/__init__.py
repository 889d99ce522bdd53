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


#: The distribution a user installs for each framework's import package (the
#: longest dotted prefix of a module that is listed here names it): what the
#: message of a missing framework names, beside the extra that installs it.
_DISTRIBUTIONS = {
    "agent_framework": "agent-framework-core",
    "agents": "openai-agents",
    "google.adk": "google-adk",
    "google.genai": "google-genai",
    "langchain_core": "langchain-core",
    "langgraph": "langgraph",
    "llama_index": "llama-index-core",
    "pydantic_ai": "pydantic-ai-slim",
    "pydantic_core": "pydantic-core",
}


def require(module: str, extra: str, *, distribution: str | None = None) -> Any:
    """Imports ``module``, or raises ``ImportError`` naming what to install.

    The message names the distribution that provides ``module`` (as
    ``pip install`` spells it: ``google-adk`` for ``google.adk.memory``, not
    ``google``), then the extra that installs it. ``distribution`` names it
    where the package's own table does not; otherwise an unlisted module's
    top-level name is used.

    >>> require("json", "none").dumps([1])
    '[1]'
    >>> require("no_such_framework.tools", "example")
    Traceback (most recent call last):
    ...
    ImportError: no-such-framework is not installed: pip install 'anda[example]'
    >>> require("acme.agents.memory", "acme", distribution="acme-agents")
    Traceback (most recent call last):
    ...
    ImportError: acme-agents is not installed: pip install 'anda[acme]'
    >>> _distribution("google.adk.memory.base_memory_service")
    'google-adk'
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        name = distribution or _distribution(module)
        raise ImportError(
            f"{name} is not installed: pip install 'anda[{extra}]'", name=module
        ) from err


def _distribution(module: str) -> str:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        known = _DISTRIBUTIONS.get(".".join(parts[:end]))
        if known is not None:
            return known
    return parts[0].replace("_", "-")


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
