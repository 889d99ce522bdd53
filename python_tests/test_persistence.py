"""Directory stores: persistence across processes, the directory lock, flush
at exit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import anda
from conftest import FIND_ALL_PEOPLE, UPSERT_PERSON, people, result, run_python

WRITE = f"""
import anda, sys
with anda.Nexus(sys.argv[1]) as nexus:
    for key in sys.argv[2:]:
        nexus.execute_kip({UPSERT_PERSON!r}, {{"key": key, "name": key.upper()}})
"""

READ = f"""
import anda, json, sys
with anda.Nexus(sys.argv[1]) as nexus:
    print(json.dumps(nexus.execute_kip({FIND_ALL_PEOPLE!r})["results"][0]["result"]))
"""


def _read_in_new_process(path: Path) -> list[list[str]]:
    proc = run_python(READ, str(path))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_changes_survive_close_and_reopen_in_a_new_process(store_dir: Path) -> None:
    proc = run_python(WRITE, str(store_dir), "ada", "grace")
    assert proc.returncode == 0, proc.stderr
    assert _read_in_new_process(store_dir) == [["ada", "ADA"], ["grace", "GRACE"]]
    with anda.Nexus(store_dir) as nexus:
        nexus.execute_kip(UPSERT_PERSON, {"key": "alan", "name": "ALAN"})
        assert nexus.path == str(store_dir)
    assert _read_in_new_process(store_dir) == [["ada", "ADA"], ["alan", "ALAN"], ["grace", "GRACE"]]


def test_a_store_left_open_is_flushed_at_exit(store_dir: Path) -> None:
    code = f"""
import anda, sys
nexus = anda.Nexus(sys.argv[1])
nexus.execute_kip({UPSERT_PERSON!r}, {{"key": "exit", "name": "EXIT"}})
"""
    proc = run_python(code, str(store_dir))
    assert proc.returncode == 0, proc.stderr
    assert _read_in_new_process(store_dir) == [["exit", "EXIT"]]


def test_a_dropped_store_is_flushed(store_dir: Path) -> None:
    code = f"""
import anda, gc, sys
nexus = anda.Nexus(sys.argv[1])
nexus.execute_kip({UPSERT_PERSON!r}, {{"key": "gc", "name": "GC"}})
del nexus
gc.collect()
reopened = anda.Nexus(sys.argv[1])
print(len(reopened.execute_kip({FIND_ALL_PEOPLE!r})["results"][0]["result"]))
reopened.close()
"""
    proc = run_python(code, str(store_dir))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"


def test_flush_makes_changes_visible_to_a_crashed_process(store_dir: Path) -> None:
    code = f"""
import anda, os, sys
nexus = anda.Nexus(sys.argv[1])
nexus.execute_kip({UPSERT_PERSON!r}, {{"key": "flushed", "name": "F"}})
nexus.flush()
os._exit(0)  # no close, no atexit
"""
    proc = run_python(code, str(store_dir))
    assert proc.returncode == 0, proc.stderr
    assert _read_in_new_process(store_dir) == [["flushed", "F"]]


def test_directory_is_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c"
    with anda.Nexus(target) as nexus:
        assert people(nexus) == []
    assert target.is_dir()


def test_second_nexus_on_the_same_directory_fails_clearly(store_dir: Path) -> None:
    with anda.Nexus(store_dir) as nexus:
        with pytest.raises(anda.StoreLockedError, match="already open"):
            anda.Nexus(store_dir)
        nexus.execute_kip(UPSERT_PERSON, {"key": "still", "name": "works"})
    with anda.Nexus(store_dir) as again:
        assert people(again) == [["still", "works"]]


def test_another_process_cannot_open_a_held_directory(store_dir: Path) -> None:
    code = """
import anda, sys
try:
    anda.Nexus(sys.argv[1])
except anda.StoreLockedError as err:
    print("locked:", err)
    sys.exit(3)
"""
    with anda.Nexus(store_dir) as nexus:
        proc = run_python(code, str(store_dir))
        assert proc.returncode == 3, proc.stderr
        assert "already open" in proc.stdout
        nexus.execute_kip("DESCRIBE PRIMER")
    proc = run_python(code, str(store_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_store_uses_anda_db(tmp_path: Path) -> None:
    code = f"""
import anda
anda.execute_kip({UPSERT_PERSON!r}, {{"key": "env", "name": "ENV"}})
"""
    proc = run_python(code, env={"ANDA_DB": str(tmp_path / "env-store")})
    assert proc.returncode == 0, proc.stderr
    assert _read_in_new_process(tmp_path / "env-store") == [["env", "ENV"]]


def test_named_databases_are_separate(store_dir: Path) -> None:
    with anda.Nexus(store_dir, name="first") as nexus:
        nexus.execute_kip(UPSERT_PERSON, {"key": "one", "name": "ONE"})
    with anda.Nexus(store_dir, name="second") as nexus:
        assert people(nexus) == []
    with anda.Nexus(store_dir, name="first") as nexus:
        assert result(nexus.execute_kip(FIND_ALL_PEOPLE)) == [["one", "ONE"]]


def test_pathlike_and_str_paths(store_dir: Path) -> None:
    with anda.Nexus(str(store_dir)) as nexus:
        assert nexus.path == str(store_dir)
        assert repr(nexus).startswith("<anda.Nexus")
    assert sys.modules["anda"] is anda
