"""Damaged, hostile and wrong store directories: a typed error or a correct answer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import anda
from conftest import UPSERT_PERSON, people

ROOT = Path(__file__).resolve().parent.parent


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
