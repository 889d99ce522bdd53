"""A griffe extension for the site: anda's docstrings, read as Markdown.

The docstrings are written for ``help()`` and doctest (Google style, with
Sphinx's roles), and the site renders them as Markdown. Two things need
translating, and nothing else is changed:

- a doctest session (``>>>`` lines and their output) becomes a ``pycon``
  code block, so ``rows[0]["name"]`` is code, not a Markdown link; the
  ``# doctest: ...`` directives are left out of what is shown;
- a Sphinx role (``:class:`anda.Nexus```, ``:meth:`verify```) becomes a link
  to the object's API entry when the site documents it, else inline code.

mkdocs.yml loads it as ``docs/griffe_markdown.py``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|data|attr|mod|exc|obj):`~?(?P<target>[^`]+)`")
_DIRECTIVE = re.compile(r"\s*#\s*doctest:.*$")


class MarkdownDocstrings(griffe.Extension):
    """Rewrites each docstring for Markdown once the object tree is complete."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is None:
            return
        text = _fence_doctests(obj.docstring.value)
        obj.docstring.value = _ROLE.sub(lambda match: _link(obj, match["target"]), text)


def _fence_doctests(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.lstrip().startswith(">>>"):
            out.append(line)
            index += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        session: list[str] = []
        while index < len(lines) and lines[index].strip():
            session.append(_DIRECTIVE.sub("", lines[index].removeprefix(indent)))
            index += 1
        if out and out[-1].strip():
            out.append("")
        out.extend([f"{indent}```pycon", *(indent + part for part in session), f"{indent}```"])
    return "\n".join(out)


def _link(obj: griffe.Object, target: str) -> str:
    """``[`target`][path]`` when ``target`` names a documented object, else `` `target` ``."""
    shown = f"`{target}`"
    scopes = [obj, *_parents(obj)]
    candidates = [target] + [f"{scope.path}.{target}" for scope in scopes]
    if not target.startswith("anda."):
        candidates.append(f"anda.{target}")
    for candidate in candidates:
        try:
            found = obj.modules_collection[candidate]
        except (KeyError, ValueError):
            continue
        if not any(part.startswith("_") for part in candidate.split(".")[1:]):
            return f"[{shown}][{candidate}]"
        return f"[{shown}][{getattr(found, 'path', candidate)}]"
    return shown


def _parents(obj: griffe.Object) -> list[griffe.Object]:
    parents = []
    parent = obj.parent
    while parent is not None:
        parents.append(parent)
        parent = parent.parent
    return parents
