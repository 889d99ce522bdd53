"""Small, always-on versions of tools/reliability: crash cycles, the crash
checker's own judgement, threads, tasks and open/close cycles."""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import anda
from anda.testing import dump_store

TOOLS = Path(__file__).resolve().parents[1] / "tools" / "reliability"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"reliability_{name}", TOOLS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


crash = _load("crash")
stress = _load("stress")


# -- crash cycles ---------------------------------------------------------------


@pytest.mark.timeout(300)
def test_crash_cycles_lose_nothing(tmp_path: Path) -> None:
    out = tmp_path / "crash.json"
    argv = [sys.executable, str(TOOLS / "crash.py"), "--cycles", "3", "--seed", "7"]
    argv += ["--dir", str(tmp_path / "work"), "--out", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=280, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(out.read_text())
    assert figures["cycles"] == 3
    for failure in ("lost", "phantom", "failed_reopens", "torn_transactions", "writer_errors"):
        assert figures[failure] == 0, figures
    assert figures["ok"], figures


@pytest.mark.timeout(300)
@pytest.mark.parametrize("threads", [1, 4])
def test_power_cuts_lose_nothing_acknowledged(tmp_path: Path, threads: int) -> None:
    out = tmp_path / "powercut.json"
    argv = [sys.executable, str(TOOLS / "powercut.py"), "--states", "12", "--calls", "16"]
    argv += ["--seed", "5", "--dir", str(tmp_path / "work"), "--out", str(out)]
    argv += ["--threads", str(threads)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=280, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(out.read_text())
    assert figures["states"] == 12
    assert figures["threads"] == threads
    assert figures["failures"] == 0, figures
    assert figures["acknowledged_writes_checked"] > 0, figures
    # The record holds what a power cut decides on.
    for change in ("write", "fsync", "rename", "syncfs"):
        assert figures["changes_by_kind"].get(change, 0) > 0, figures


def _write_calls(nexus: anda.Nexus, kinds: list[str], seed: int, log: Path) -> list[Any]:
    """Drives the crash writer on ``nexus`` (no kill) and reads its log back."""
    with log.open("a") as file:

        def record(entry: dict[str, Any]) -> None:
            file.write(json.dumps(entry) + "\n")

        writer = crash.Writer(nexus, random.Random(seed), 1, [], record)
        actions = {
            "single": writer.single,
            "batch": writer.batch,
            "independent": writer.independent,
            "mutate": writer.mutate,
            "assert": writer.relation,
            "bulk": writer.bulk,
            "tombstone": writer.tombstone,
        }
        for kind in kinds:
            writer.calls += 1
            actions[kind]()
    return crash.read_log(log)[1]


def _observed(nexus: anda.Nexus) -> Any:
    model, problems = crash.model_from_dump(dump_store(nexus))
    assert problems == []
    return model


ALL_KINDS = ["single", "mutate", "bulk", "batch", "assert", "independent", "tombstone"]


@pytest.mark.parametrize("seed", range(4))
def test_the_crash_model_of_every_write_agrees_with_the_engine(seed: int, tmp_path: Path) -> None:
    with anda.Nexus() as nexus:
        calls = _write_calls(nexus, ALL_KINDS * 3, seed, tmp_path / "log")
        verdict = crash.judge(crash.Model(), calls, _observed(nexus))
    assert verdict.matched == "nothing in flight", verdict.lost + verdict.phantom
    assert {call.kind for call in calls} >= {"single", "mutate", "bulk", "batch"}


def test_the_crash_checker_sees_a_lost_write(tmp_path: Path) -> None:
    with anda.Nexus() as nexus:
        calls = _write_calls(nexus, ["single", "mutate", "bulk"], 1, tmp_path / "log")
        observed = _observed(nexus)
    key = next(iter(observed.concepts))
    del observed.concepts[key]
    verdict = crash.judge(crash.Model(), calls, observed)
    assert verdict.matched is None
    assert len(verdict.lost) + len(verdict.torn) >= 1


def test_the_crash_checker_sees_a_torn_transaction(tmp_path: Path) -> None:
    with anda.Nexus() as nexus:
        calls = _write_calls(nexus, ["mutate"], 2, tmp_path / "log")
    (mutate,) = calls
    mutate.done = 0  # killed in flight: all or nothing is fine, half is not
    effects = mutate.steps[0]
    for shown in ([], effects):
        verdict = crash.judge(crash.Model(), calls, crash.Model().applied([shown]))
        assert verdict.matched is not None
    half = [effect for effect in effects if effect[0] != "assert"]
    verdict = crash.judge(crash.Model(), calls, crash.Model().applied([half]))
    assert verdict.matched is None
    assert crash.torn_transactions(verdict) == 1


def test_the_crash_checker_allows_prefixes_and_whole_chunks_only() -> None:
    upserts = [[["upsert", "Person", f"k{i}", f"n{i}", {"v": i}]] for i in range(6)]
    batch = crash.Call("1.1", "batch", upserts)
    bulk = crash.Call("1.2", "bulk", upserts, chunk=3, done=3)
    for call, allowed, refused in (
        (batch, upserts[:2], [upserts[0], upserts[2]]),
        (bulk, upserts, upserts[:4]),
    ):
        assert crash.judge(crash.Model(), [call], crash.Model().applied(allowed)).matched
        assert crash.judge(crash.Model(), [call], crash.Model().applied(refused)).matched is None
    # An acknowledged chunk must be there even if the rest of the call is not.
    assert crash.judge(crash.Model(), [bulk], crash.Model().applied(upserts[:2])).lost


# -- threads, tasks, open and close ---------------------------------------------


def _check(part: Any) -> None:
    assert part.ok, part.problems


def test_threads_on_one_store_match_the_model() -> None:
    _check(stress.thread_stress(threads=8, operations=60, seed=3))


def test_concurrent_async_tasks() -> None:
    _check(stress.async_stress(tasks=200))


def test_stores_opened_and_closed_concurrently() -> None:
    _check(stress.open_close_concurrently(threads=4, cycles=2, seed=4))


def test_closing_a_store_in_use() -> None:
    _check(stress.close_while_in_use(threads=4))


def test_open_close_cycles(tmp_path: Path) -> None:
    with anda.Nexus(tmp_path) as nexus:
        nexus.execute_kip(stress.UPSERT, {"key": "kept", "name": "kept"})
    for _ in range(50):
        with anda.Nexus(tmp_path) as nexus:
            found = nexus.execute_kip(stress.FIND_NAME, {"key": "kept"})
        assert found["results"][0]["result"] == ["kept"]
