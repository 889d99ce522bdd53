"""The package itself: import cost, versions, typing markers, public names."""

from __future__ import annotations

import importlib.resources
import re

import pytest

import anda
from conftest import run_python


def test_import_creates_no_store() -> None:
    code = (
        "import anda, anda._default as n, sys\n"
        "assert n._default is None, 'a default store exists after import'\n"
        "assert 'asyncio' not in sys.modules, 'import anda pulled in asyncio'\n"
        "print('ok')"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_versions_are_exposed() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", anda.__version__)
    assert anda.ENGINE_VERSION.startswith("0.17.")
    assert anda.KIP_VERSION == "2.0"
    assert set(anda.CRATE_VERSIONS) == {
        "anda_engine",
        "anda_kip",
        "anda_cognitive_nexus",
        "anda_db",
    }
    assert anda.CRATE_VERSIONS["anda_engine"] == anda.ENGINE_VERSION


def test_package_is_typed() -> None:
    files = importlib.resources.files("anda")
    assert files.joinpath("py.typed").is_file()
    assert files.joinpath("_anda.pyi").is_file()


def test_public_names_resolve() -> None:
    for name in anda.__all__:
        assert hasattr(anda, name), name
    assert issubclass(anda.KipError, anda.AndaError)
    assert issubclass(anda.AndaError, Exception)
    assert issubclass(anda.KipSyntaxError, anda.KipError)


def test_every_public_callable_has_a_docstring_with_an_example() -> None:
    for obj in (
        anda.Nexus,
        anda.Nexus.execute_kip,
        anda.Nexus.execute_kip_async,
        anda.Nexus.close,
        anda.Nexus.flush,
        anda.execute_kip,
        anda.default_memory,
        anda.default_nexus,
        anda.KipError,
    ):
        assert obj.__doc__, obj
        assert ">>> " in obj.__doc__, obj


def test_default_nexus_is_a_deprecated_name_of_default_memory() -> None:
    with pytest.warns(DeprecationWarning, match="default_memory"):
        assert anda.default_nexus() is anda.default_memory()
