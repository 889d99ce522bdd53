"""Shared fixtures. Every test runs against the built extension and the real engine."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

import anda

# Hypothesis profiles, chosen with HYPOTHESIS_PROFILE (the noxfile sets it):
# "quick" for `nox -s test`, "thorough" for `nox -s test-deep`, and "ci",
# derandomized so that a CI run is reproducible. Failing examples are kept
# outside the repository.
_EXAMPLES = DirectoryBasedExampleDatabase(
    os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")),
        "anda",
        "hypothesis-examples",
    )
)
_COMMON = {
    "deadline": None,  # never a wall-clock limit: engine latency varies with the machine
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("quick", max_examples=30, database=_EXAMPLES, **_COMMON)
settings.register_profile("ci", max_examples=30, derandomize=True, database=None, **_COMMON)
settings.register_profile("thorough", max_examples=600, database=_EXAMPLES, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))

UPSERT_PERSON = (
    'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }'
)
FIND_PERSON_NAME = 'FIND(?p.name) WHERE { ?p {type: "Person", key: :key} }'
FIND_ALL_PEOPLE = 'FIND(?p.key, ?p.name) WHERE { ?p {type: "Person"} } ORDER BY ?p.key ASC'


def result(response: dict[str, Any], index: int = 0) -> Any:
    """The result value of one operation of a successful response."""
    operation = response["results"][index]
    assert operation["status"] == "succeeded", operation
    return operation["result"]


def people(nexus: anda.Nexus) -> list[Any]:
    return result(nexus.execute_kip(FIND_ALL_PEOPLE))


@pytest.fixture
def nexus() -> Iterator[anda.Nexus]:
    with anda.Nexus() as store:
        yield store


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


def run_python(
    code: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a fresh interpreter (the same one, with the same anda)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
        **kwargs,
    )
