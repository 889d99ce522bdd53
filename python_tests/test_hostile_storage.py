"""A full disk and a read-only file system: typed errors, and nothing lost.

On a machine that lets the tests mount a small tmpfs (root with
CAP_SYS_ADMIN, as here and in most CI containers) the disk really fills and
the file system really turns read-only; elsewhere the fault-injecting store
stands in, failing every write the way a full or read-only disk does.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import anda
from anda.testing import open_with_faults

UPSERT = 'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }'
FIND = 'FIND(?p.name) WHERE { ?p {type: "Person", key: :key} }'


def _mount(*args: str) -> bool:
    try:
        done = subprocess.run(["mount", *args], capture_output=True, check=False, timeout=60)
    except OSError:  # no mount(8) here (Windows)
        return False
    return done.returncode == 0


@contextlib.contextmanager
def _small_filesystem(path: Path, size: str) -> Iterator[bool]:
    """A tmpfs of ``size`` at ``path``; yields whether it could be mounted."""
    path.mkdir()
    mounted = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False, timeout=60)


def _name(nexus: anda.Nexus, key: str) -> list[str]:
    rows: list[str] = nexus.execute_kip(FIND, {"key": key})["results"][0]["result"]
    return rows


def _fill(nexus: anda.Nexus) -> tuple[dict[str, str], BaseException]:
    """Writes until storage refuses; returns what was acknowledged and the refusal."""
    acknowledged: dict[str, str] = {}
    for i in range(10_000):
        name = f"{i:05d}" + "x" * 20_000
        try:
            nexus.execute_kip(UPSERT, {"key": f"k{i}", "name": name})
        except anda.AndaError as err:
            return acknowledged, err
        acknowledged[f"k{i}"] = name
    raise AssertionError("storage never filled up")


def test_a_full_disk_gives_typed_errors_and_loses_nothing(tmp_path: Path) -> None:
    store = tmp_path / "small"
    with _small_filesystem(store, "3m") as mounted:
        if mounted:
            nexus = anda.Nexus(store)
        else:
            nexus, faults = open_with_faults(store)
            nexus.execute_kip(UPSERT, {"key": "k0", "name": "first"})
            faults.fail("put", times=10**9)
        acknowledged, refusal = _fill(nexus)
        if not mounted:
            acknowledged = {"k0": "first"}
        assert isinstance(refusal, anda.AndaError)
        assert acknowledged, "nothing was written before the disk filled"
        if mounted:
            # The journal could not take the last call's writes: whether they
            # survive is unknown, and the store takes no further call.
            assert isinstance(refusal, anda.OutcomeUnknownError), refusal
            with pytest.raises(anda.OutcomeUnknownError, match="reopened"):
                _name(nexus, "k0")
        # Closing may fail to flush on a full disk, but only with a typed error.
        with contextlib.suppress(anda.AndaError):
            nexus.close()
        if mounted:
            assert _mount("-o", "remount,size=64m", str(store))
        else:
            faults.reset()
        with anda.Nexus(store) as reopened:
            for key, name in acknowledged.items():
                assert _name(reopened, key) == [name], key
            assert reopened.verify().ok
            # And it takes writes again.
            reopened.execute_kip(UPSERT, {"key": "after", "name": "after"})


def test_a_read_only_file_system_gives_typed_errors_and_keeps_the_data(tmp_path: Path) -> None:
    store = tmp_path / "ro"
    with _small_filesystem(store, "64m") as mounted:
        with anda.Nexus(store) as nexus:
            nexus.execute_kip(UPSERT, {"key": "kept", "name": "Kept"})
        if mounted:
            assert _mount("-o", "remount,ro", str(store))
            for readonly in (False, True):
                with pytest.raises(anda.StoreError):
                    anda.Nexus(store, readonly=readonly)
            assert _mount("-o", "remount,rw", str(store))
        else:
            nexus, faults = open_with_faults(store)
            for operation in ("put", "delete", "copy", "rename"):
                faults.fail(operation, times=10**9)
            with pytest.raises(anda.AndaError):
                nexus.execute_kip(UPSERT, {"key": "refused", "name": "Refused"})
            faults.reset()
            with contextlib.suppress(anda.AndaError):
                nexus.close()
        with anda.Nexus(store, readonly=True) as reopened:
            assert _name(reopened, "kept") == ["Kept"]
            assert _name(reopened, "refused") == []
            assert reopened.verify().ok


def test_a_checkpoint_on_a_full_disk_loses_nothing_and_completes_once_space_returns(
    tmp_path: Path,
) -> None:
    disk = tmp_path / "disk"
    with _small_filesystem(disk, "8m") as mounted:
        if not mounted:
            pytest.skip(
                "needs a small tmpfs (root with CAP_SYS_ADMIN): the checkpoint is below "
                "the fault-injecting store"
            )
        nexus = anda.Nexus(disk / "store")
        nexus.execute_kip(UPSERT, {"key": "before", "name": "Before"})
        nexus.flush()
        nexus.execute_kip(UPSERT, {"key": "journaled", "name": "J" * 2000})  # acknowledged
        filler = disk / "filler"
        with filler.open("wb", buffering=0) as file, contextlib.suppress(OSError):
            while True:
                file.write(bytes(65536))
        # The checkpoint cannot write its files: a typed error, not an unknown outcome.
        with pytest.raises(anda.StoreError, match="nothing acknowledged is lost") as refused:
            nexus.flush()
        assert not isinstance(refused.value, anda.OutcomeUnknownError)
        assert _name(nexus, "journaled") == ["J" * 2000]
        filler.unlink()
        nexus.flush()  # space is back: the same store completes the checkpoint
        nexus.execute_kip(UPSERT, {"key": "after", "name": "After"})
        nexus.close()
        with anda.Nexus(disk / "store", readonly=True) as reopened:
            for key, name in (("before", "Before"), ("journaled", "J" * 2000), ("after", "After")):
                assert _name(reopened, key) == [name], key
            assert reopened.verify().ok
