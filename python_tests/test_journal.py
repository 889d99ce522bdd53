"""A directory store's journal: acknowledged writes survive a killed process,
a journal left behind is replayed (and named to anyone who only reads), and a
closed store is AndaDB's own layout with no journal and no empty directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import anda
from conftest import FIND_ALL_PEOPLE, UPSERT_PERSON, people, result, run_python

JOURNAL = "anda.journal"

KILLED_AFTER_WRITES = f"""
import anda, os, signal, sys
nexus = anda.Nexus(sys.argv[1])
for key in sys.argv[2:]:
    nexus.execute_kip({UPSERT_PERSON!r}, {{"key": key, "name": key.upper()}})
os.kill(os.getpid(), signal.SIGKILL)
"""


def _empty_directories(root: Path) -> list[str]:
    return [
        str(Path(dirpath).relative_to(root))
        for dirpath, dirnames, filenames in os.walk(root)
        if not dirnames and not filenames
    ]


def _killed_writer(store: Path, *keys: str) -> None:
    proc = run_python(KILLED_AFTER_WRITES, str(store), *keys)
    assert proc.returncode == -9, proc.stderr


def test_a_closed_store_is_andadb_layout_with_no_journal(store_dir: Path) -> None:
    with anda.Nexus(store_dir) as nexus:
        for i in range(30):
            nexus.execute_kip(UPSERT_PERSON, {"key": f"p{i}", "name": "x" * i})
        assert (store_dir / JOURNAL).exists()
    # anda.sums: the checksums of the payloads, read by anda only.
    assert sorted(os.listdir(store_dir)) == ["anda.lock", "anda.sums", "gen", "meta"]
    # Every retired generation took its directory with it.
    assert _empty_directories(store_dir) == []


def test_acknowledged_writes_survive_a_killed_process(store_dir: Path) -> None:
    _killed_writer(store_dir, "ada", "grace")
    assert (store_dir / JOURNAL).stat().st_size > 0
    with anda.Nexus(store_dir) as nexus:
        assert people(nexus) == [["ada", "ADA"], ["grace", "GRACE"]]
    assert not (store_dir / JOURNAL).exists()


def test_a_journal_left_behind_is_named_to_readers_until_a_writable_open(
    store_dir: Path,
) -> None:
    _killed_writer(store_dir, "ada")
    with pytest.raises(anda.StoreError, match="unreplayed journal") as refused:
        anda.Nexus(store_dir, readonly=True)
    assert "Open it once with anda, writable" in str(refused.value)

    check = subprocess.run(
        [sys.executable, "-m", "anda", "check", "--db", str(store_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode != 0
    assert "unreplayed journal" in check.stderr + check.stdout

    with anda.Nexus(store_dir):
        pass
    with anda.Nexus(store_dir, readonly=True) as reader:
        assert people(reader) == [["ada", "ADA"]]
    check = subprocess.run(
        [sys.executable, "-m", "anda", "check", "--db", str(store_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_copy_of_a_store_with_a_journal_is_refused_then_whole(tmp_path: Path) -> None:
    source, destination = tmp_path / "source", tmp_path / "copy"
    _killed_writer(source, "ada")
    with pytest.raises(anda.StoreError, match="unreplayed journal"):
        anda.copy_store(source, destination)
    with anda.Nexus(source):
        pass
    anda.copy_store(source, destination)
    assert not (destination / JOURNAL).exists()
    with anda.Nexus(destination, readonly=True) as copy:
        assert people(copy) == [["ada", "ADA"]]


def test_a_damaged_journal_is_refused_not_cut(store_dir: Path) -> None:
    code = f"""
import anda, os, signal, sys
nexus = anda.Nexus(sys.argv[1])
nexus.execute_kip({UPSERT_PERSON!r}, {{"key": "first", "name": "F"}})
print(os.path.getsize(os.path.join(sys.argv[1], {JOURNAL!r})), flush=True)
nexus.execute_kip({UPSERT_PERSON!r}, {{"key": "second", "name": "S"}})
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = run_python(code, str(store_dir))
    assert proc.returncode == -9, proc.stderr
    first_syncs = int(proc.stdout.split()[0])
    journal = store_dir / JOURNAL
    data = bytearray(journal.read_bytes())
    assert len(data) > first_syncs
    data[first_syncs // 2] ^= 0xFF  # inside what was synced before the second write
    journal.write_bytes(bytes(data))
    with pytest.raises(anda.CorruptStoreError, match="journal is damaged"):
        anda.Nexus(store_dir)
    assert journal.read_bytes() == bytes(data), "a refused journal is left as it was"


def test_threads_writing_one_store_all_get_their_writes(store_dir: Path) -> None:
    with anda.Nexus(store_dir) as nexus:

        def write(thread: int) -> None:
            for i in range(10):
                nexus.execute_kip(UPSERT_PERSON, {"key": f"t{thread}-{i}", "name": "n"})

        threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    proc = run_python(
        f"""
import anda, json, sys
with anda.Nexus(sys.argv[1], readonly=True) as nexus:
    print(json.dumps(nexus.execute_kip({FIND_ALL_PEOPLE!r})["results"][0]["result"]))
""",
        str(store_dir),
    )
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 40


def test_flush_checkpoints_the_journal(store_dir: Path) -> None:
    with anda.Nexus(store_dir) as nexus:
        result(nexus.execute_kip(UPSERT_PERSON, {"key": "ada", "name": "Ada"}))
        assert (store_dir / JOURNAL).exists()
        nexus.flush()
        assert not (store_dir / JOURNAL).exists()
