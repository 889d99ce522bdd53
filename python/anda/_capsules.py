"""Schema Package artifacts and KIP Capsules as the native layer takes them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Capsule", "SchemaPackage", "capsule_text", "export_command", "package_sources"]

#: A Schema Package artifact: a mapping, its JSON text, or the path of a JSON file.
SchemaPackage = Mapping[str, Any] | str | os.PathLike[str]
#: A KIP Capsule: the mapping ``export_capsule`` returns, or its JSON text.
Capsule = Mapping[str, Any] | str

#: The Space a host operation (capsule import, schema activation) acts on.
DEFAULT_SPACE = "kip:space:default"

#: Every element kind the engine exports, so an export without a query is the whole store.
WHOLE_STORE_EXPORT = (
    "EXPORT CAPSULE ?roots WHERE { ?roots {} "
    "UNION { ?roots (?s, ?p, ?o) } UNION { ?roots ASSERTION {} } "
    "UNION { ?roots EVIDENCE {} } UNION { ?roots ACTIVITY {} } }"
)


def package_source(package: object) -> tuple[str, str]:
    """``(source, artifact JSON)`` for one package: the source is the file
    path, or ``"<python>"`` for a mapping or JSON text."""
    if isinstance(package, Mapping):
        return "<python>", json.dumps(package)
    if isinstance(package, str) and package.lstrip().startswith("{"):
        return "<python>", package
    if isinstance(package, str | os.PathLike):
        path = os.fspath(package)
        if not isinstance(path, str):
            raise TypeError(f"a schema package path must be str, not bytes: {path!r}")
        with open(path, encoding="utf-8") as file:
            return path, file.read()
    raise TypeError(
        "a schema package is a mapping, its JSON text or a file path, not " + type(package).__name__
    )


def package_sources(packages: Iterable[SchemaPackage]) -> list[tuple[str, str]]:
    if isinstance(packages, str | bytes | Mapping | os.PathLike):
        raise TypeError("schema_packages is a list of packages; wrap a single one in [...]")
    return [package_source(package) for package in packages]


def capsule_text(capsule: object) -> str:
    """The capsule as JSON text, the form the engine verifies and imports."""
    if isinstance(capsule, str):
        return capsule
    if isinstance(capsule, Mapping):
        return json.dumps(capsule)
    raise TypeError(f"a capsule is a mapping or its JSON text, not {type(capsule).__name__}")


def export_command(query: str | None) -> str:
    """``query`` as an ``EXPORT CAPSULE`` command: the whole store when
    ``None``; a whole command as given; otherwise the body of a ``WHERE``
    that binds ``?roots``."""
    if query is None:
        return WHOLE_STORE_EXPORT
    if not isinstance(query, str):
        raise TypeError(f"query must be str or None, not {type(query).__name__}")
    if query.lstrip().upper().startswith("EXPORT"):
        return query
    if "?roots" not in query:
        raise ValueError(
            "a query is an EXPORT CAPSULE command, or the patterns of its WHERE block "
            "binding ?roots (for example '?roots {type: \"Person\"}')"
        )
    return f"EXPORT CAPSULE ?roots WHERE {{ {query} }}"
