"""Every public name of anda has a docstring: ``python docs/check_docstrings.py``.

Public means: listed in ``__all__`` of ``anda`` or of one of its public
modules, and the public members (methods, properties, attributes) of the
classes listed there. The package is read the way the site reads it, with
griffe, statically (the native module from its stubs): nothing is imported
or built. ``#:`` comments document attributes (griffe-sphinx reads them).

A member of a class counts as documented by its own docstring, by the one it
inherits from the method it overrides (griffe-inherited-docstrings), or, for
an attribute, by its class's docstring: in an ``Attributes:`` section or
named in it as ``name``.

Exit status 1, and one line per name, when a docstring is missing, or when a
name in ``KNOWN_UNDOCUMENTED`` has been documented since (so the list only
shrinks).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import griffe

ROOT = Path(__file__).resolve().parent.parent
#: The modules whose ``__all__`` is public API (``nox -s docs`` renders each).
PUBLIC_MODULES = (
    "anda",
    "anda.bulk",
    "anda.errors",
    "anda.integrations",
    "anda.integrations.agent_framework",
    "anda.integrations.google_adk",
    "anda.integrations.langchain",
    "anda.integrations.langgraph",
    "anda.integrations.llamaindex",
    "anda.integrations.openai_agents",
    "anda.integrations.pydantic_ai",
    "anda.mcp",
    "anda.server",
    "anda.telemetry",
    "anda.testing",
    "anda.testing.strategies",
    "anda.tools",
    "anda.view",
)
# Inherited from Exception, never anda's to document.
_EXCEPTION_MEMBERS = {"args", "with_traceback", "add_note"}
#: Public names still without a docstring in the sources (found when this check
#: was written). Each must be documented there, then removed here; the check
#: fails on a stale entry, and on any name not listed.
KNOWN_UNDOCUMENTED: frozenset[str] = frozenset(
    {
        "anda.KipError.category_name",
        "anda.testing.strategies.Concept.key",
        "anda.testing.strategies.Concept.type",
        "anda.testing.strategies.Find.limit",
        "anda.testing.strategies.Find.order",
        "anda.testing.strategies.Find.other_type",
        "anda.testing.strategies.Find.predicate",
        "anda.testing.strategies.Find.text",
        "anda.testing.strategies.Find.type",
        "anda.testing.strategies.Relate.object",
        "anda.testing.strategies.Relate.predicate",
        "anda.testing.strategies.Relate.subject",
        "anda.testing.strategies.Tombstone.concept",
        "anda.testing.strategies.Upsert.attributes",
        "anda.testing.strategies.Upsert.concept",
        "anda.testing.strategies.Upsert.name",
        "anda.testing.strategies.concepts",
        "anda.testing.strategies.kql_reads",
    }
)


def _target(obj: griffe.Object | griffe.Alias) -> griffe.Object:
    return obj.final_target if isinstance(obj, griffe.Alias) else obj


def missing_docstrings() -> list[str]:
    """The public names without a docstring, as dotted paths."""
    package = griffe.load(
        "anda",
        search_paths=[str(ROOT / "python")],
        extensions=griffe.load_extensions("griffe_sphinx", "griffe_inherited_docstrings"),
        allow_inspection=False,
        resolve_aliases=True,
        resolve_external=False,
    )
    missing: list[str] = []
    seen: set[str] = set()
    for module_path in PUBLIC_MODULES:
        module = package if module_path == "anda" else package[module_path.removeprefix("anda.")]
        names = module.exports
        if names is None:
            missing.append(f"{module_path}: no __all__")
            continue
        for name in names:
            name = name if isinstance(name, str) else name.name
            obj = _target(module[name])
            shown = f"{module_path}.{name}"
            if obj.path in seen:
                continue
            seen.add(obj.path)
            if not obj.docstring or not obj.docstring.value.strip():
                missing.append(shown)
            if obj.is_class:
                described = _described_in(obj)
                for member_name, member in obj.all_members.items():
                    if member_name.startswith("_") or member_name in _EXCEPTION_MEMBERS:
                        continue
                    member = _target(member)
                    if member.docstring and member.docstring.value.strip():
                        continue
                    if member.is_attribute and member_name in described:
                        continue
                    # An override is reported once, where it is first defined.
                    definer = next(
                        (base for base in reversed(obj.mro()) if member_name in base.members),
                        obj,
                    )
                    where = shown if definer is obj else _public_path(definer, package)
                    if f"{where}.{member_name}" not in missing:
                        missing.append(f"{where}.{member_name}")
    return missing


def _public_path(obj: griffe.Object, package: griffe.Object) -> str:
    """``anda.KipError`` rather than ``anda.errors.KipError``, where it is exported so."""
    for name in package.exports or ():
        if isinstance(name, str) and _target(package[name]).path == obj.path:
            return f"anda.{name}"
    return obj.path


def _described_in(cls: griffe.Object) -> set[str]:
    """The attribute names a class's docstring (or a base class's) documents."""
    names: set[str] = set()
    for klass in [cls, *cls.mro()]:
        if klass.docstring is None:
            continue
        for span in re.findall(r"``(.+?)``", klass.docstring.value):
            names.update(re.findall(r"\w+", span))
        for section in klass.docstring.parse("google"):
            if section.kind is griffe.DocstringSectionKind.attributes:
                names.update(item.name for item in section.value)
    return names


def main() -> int:
    found = missing_docstrings()
    missing = [name for name in found if name not in KNOWN_UNDOCUMENTED]
    stale = sorted(KNOWN_UNDOCUMENTED - set(found))
    for name in missing:
        print(f"no docstring: {name}")
    for name in stale:
        print(f"documented now, remove it from KNOWN_UNDOCUMENTED: {name}")
    if missing or stale:
        print(f"{len(missing)} public name(s) without a docstring", file=sys.stderr)
        return 1
    print(f"every public name has a docstring ({len(KNOWN_UNDOCUMENTED)} known exceptions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
