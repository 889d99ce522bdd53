"""Damaged, hostile and wrong store directories: a typed error or a correct answer."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import anda
from conftest import UPSERT_PERSON, people, result, run_python

ROOT = Path(__file__).resolve().parent.parent
FIND_NAMES = 'FIND(?p.name) WHERE { ?p {type: "Person"} }'


def _store_with_people(path: Path, count: int = 12) -> list[list[str]]:
    with anda.Nexus(path) as store:
        store.execute_kip(
            [(UPSERT_PERSON, {"key": f"p{i:02d}", "name": f"P{i}"}) for i in range(count)]
        )
        return people(store)


def _listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_a_sound_store_verifies(store_dir: Path) -> None:
    _store_with_people(store_dir)
    with anda.Nexus(store_dir) as store:
        report = store.verify()
    assert report.ok
    assert report.problems == ()
    assert report.collections["concepts"] >= 12
    assert report.documents_read >= sum(report.collections.values())


@pytest.mark.parametrize("damage", ["truncate", "zero", "delete"])
def test_a_damaged_concept_is_never_left_out_silently(store_dir: Path, damage: str) -> None:
    expected = _store_with_people(store_dir)
    [victim, *_] = sorted((store_dir / "gen").rglob("concepts/data/*/*"))
    if damage == "delete":
        victim.unlink()
    elif damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:7])
    else:
        victim.write_bytes(bytes(victim.stat().st_size))
    try:
        with anda.Nexus(store_dir) as store:
            found = people(store)
            report = store.verify()
    except anda.StoreError as err:
        assert "concepts" in str(err), err
    else:
        # The pinned engine's KQL reads an unreadable record as absent; when
        # an answer is short, verify() must name the damage.
        assert found == expected or any(p.collection == "concepts" for p in report.problems)
    # A full check names the damage whatever the read path did.
    with pytest.raises(anda.CorruptStoreError, match="concepts"):
        anda.Nexus(store_dir, verify=True)


def _damage(victim: Path, damage: str) -> None:
    data = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "zero":
        victim.write_bytes(bytes(len(data)))
    else:
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(flipped))


def _a_concept_file(store_dir: Path) -> Path:
    victims = sorted(store_dir.glob("gen/anda_db/concepts/data/*/*"))
    assert len(victims) >= 12, victims
    return victims[len(victims) // 2]


def _find_names_refused(store_dir: Path, victim: Path) -> None:
    with (
        anda.Nexus(store_dir) as store,
        pytest.raises(anda.CorruptStoreError, match=re.escape(victim.name)) as refused,
    ):
        store.execute_kip(FIND_NAMES)
    assert "concepts" in str(refused.value)


@pytest.mark.parametrize("damage", ["truncate", "zero", "flip"])
def test_a_damaged_record_is_refused_never_read_as_absent(store_dir: Path, damage: str) -> None:
    # Each of these damages made the FIND answer 11 names of 12, no error:
    # the engine's KQL reads a record it cannot decode as absent.
    _store_with_people(store_dir)
    with anda.Nexus(store_dir) as store:
        assert sorted(result(store.execute_kip(FIND_NAMES))) == sorted(f"P{i}" for i in range(12))
    victim = _a_concept_file(store_dir)
    _damage(victim, damage)
    _find_names_refused(store_dir, victim)


def test_a_damaged_record_is_refused_after_a_replay_and_in_a_copy(tmp_path: Path) -> None:
    # Objects put in the directory by a replayed journal, and by copy_store's
    # destination, are checked as well as those of a checkpoint.
    source, copy = tmp_path / "source", tmp_path / "copy"
    killed = run_python(
        "import anda, os, signal, sys\n"
        "nexus = anda.Nexus(sys.argv[1])\n"
        f"nexus.execute_kip([({UPSERT_PERSON!r}, {{'key': f'p{{i:02d}}', 'name': f'P{{i}}'}})"
        " for i in range(12)])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n",
        str(source),
    )
    assert killed.returncode == -9, killed.stderr
    with anda.Nexus(source) as store:
        assert len(result(store.execute_kip(FIND_NAMES))) == 12
    anda.copy_store(source, copy)
    for store_dir in (source, copy):
        victim = _a_concept_file(store_dir)
        _damage(victim, "flip")
        _find_names_refused(store_dir, victim)


def test_check_cli_reports_for_cron(store_dir: Path) -> None:
    _store_with_people(store_dir)

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "anda", "check", "--db", str(store_dir), "--json"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    sound = check()
    assert sound.returncode == 0, sound.stderr
    assert json.loads(sound.stdout)["ok"] is True
    [victim, *_] = sorted((store_dir / "gen").rglob("concepts/data/*/*"))
    victim.unlink()
    damaged = check()
    assert damaged.returncode == 1, damaged.stderr
    report = json.loads(damaged.stdout)
    assert report["ok"] is False
    assert any("concepts" in problem for problem in report["problems"])
    missing = subprocess.run(
        [sys.executable, "-m", "anda", "check", "--db", str(store_dir / "nope")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert missing.returncode == 3


def test_a_directory_that_is_not_a_store_is_left_alone(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"\xff\xd8 not a store")
    before = _listing(photos)
    with pytest.raises(anda.StoreError, match="not empty and holds no anda store"):
        anda.Nexus(photos)
    assert _listing(photos) == before


def test_a_file_is_not_a_store(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me", encoding="utf-8")
    with pytest.raises(anda.StoreError):
        anda.Nexus(notes)
    assert notes.read_text(encoding="utf-8") == "keep me"


def test_a_symlink_inside_a_store_is_never_followed(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    expected = _store_with_people(store_dir)
    outside = tmp_path / "outside"
    outside.mkdir()
    concepts = next((store_dir / "gen").rglob("concepts"))
    moved = tmp_path / "moved-concepts"
    shutil.move(str(concepts), moved)
    os.symlink(moved, concepts)
    with pytest.raises(anda.StoreError, match="symbolic link"):
        anda.Nexus(store_dir)
    # Put back, the store is whole again.
    concepts.unlink()
    shutil.move(str(moved), concepts)
    with anda.Nexus(store_dir) as store:
        assert people(store) == expected
    assert list(outside.iterdir()) == []


@pytest.mark.timeout(900)
def test_damaging_each_file_never_gives_a_wrong_answer(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "reliability" / "corrupt.py"),
            "--data-files",
            "2",
            "--files",
            "2",
            "--out",
            str(tmp_path / "corrupt.json"),
        ],
        capture_output=True,
        text=True,
        timeout=850,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads((tmp_path / "corrupt.json").read_text())
    assert figures["findings"] == []
    assert figures["damaged_copies"] == 5 * 4
