"""Durable memory at in-memory speed: a directory store against the in-memory
store, in one run, on the same machine (fsync latency varies tenfold between
moments of a shared machine, so only ratios within one run mean anything).

- one write (median of single UPSERTs) and 4 threads writing, at 1k and 10k
  concepts, each kind (three alternated rounds, medians);
- at 1k concepts, 4 threads writing each kind, then 1 and 8 threads writing
  one directory store;
- ``bulk_write`` into each kind;
- reopening after a SIGKILL that left a full journal, at 10k concepts;
- what one commit costs the disk: syncs (``strace -c``) and bytes written
  (``/proc/self/io``), per single-write commit at 1k concepts.

Targets (reported, never asserted): a single write on a directory store at
most 1.5x the in-memory store's at 1k concepts and 1.2x at 10k; 4 threads on
a directory store at least 0.8x the in-memory store's 4-thread rate; reopening
with a full journal under 2 s at 10k concepts.

    python tools/anda_bench/durable_bench.py --into bench-results/bench.json

``--into`` adds the figures to another run's JSON under ``"durable"`` (``nox
-s bench`` puts them in its bench.json, which docs/performance.md quotes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anda

UPSERT = 'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }'
JOURNAL = "anda.journal"


def load(nexus: anda.Nexus, first: int, last: int) -> None:
    nexus.bulk_write(
        {"upsert": {"type": "Person", "key": f"p{i}", "name": f"Person {i}"}}
        for i in range(first, last)
    )


def single_write_ms(nexus: anda.Nexus, tag: str, count: int) -> float:
    samples = []
    for i in range(count):
        started = time.perf_counter()
        nexus.execute_kip(UPSERT, {"key": f"{tag}-{i}", "name": f"single {i}"})
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1000, 2)


def writes_per_second(nexus: anda.Nexus, threads: int, per_thread: int, tag: str) -> float:
    def write(thread: int) -> None:
        for i in range(per_thread):
            nexus.execute_kip(UPSERT, {"key": f"{tag}-{thread}-{i}", "name": "threaded"})

    workers = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return round(threads * per_thread / (time.perf_counter() - started), 1)


def alternated(
    stores: dict[str, anda.Nexus], prefix: str, measure: Callable[[anda.Nexus, str], float]
) -> dict[str, list[float]]:
    """``measure(nexus, tag)`` for each store, over three rounds that alternate
    the kinds so that a slow moment of the machine hits each; tags are unique."""
    rounds: dict[str, list[float]] = {kind: [] for kind in stores}
    for round_ in range(3):
        for kind, nexus in stores.items():
            rounds[kind].append(measure(nexus, f"{prefix}-{kind}{round_}"))
    return rounds


def latency(sizes: list[int], count: int, per_thread: int, work: Path) -> list[dict[str, Any]]:
    rows = []
    memory, directory = anda.Nexus(), anda.Nexus(work / "latency")
    stores = {"memory": memory, "directory": directory}
    stored = 0
    try:
        for size in sizes:
            load(memory, stored, size)
            load(directory, stored, size)
            stored = size
            # The load's checkpoint runs now, not under the timed writes; its
            # time is reported beside them.
            memory.flush()
            started = time.perf_counter()
            directory.flush()
            checkpoint_s = round(time.perf_counter() - started, 2)
            ms = alternated(
                stores, f"s{size}", lambda nexus, tag: single_write_ms(nexus, tag, count)
            )
            rates = alternated(
                stores, f"t{size}", lambda nexus, tag: writes_per_second(nexus, 4, per_thread, tag)
            )
            mem, disk = statistics.median(ms["memory"]), statistics.median(ms["directory"])
            mem_rate = statistics.median(rates["memory"])
            disk_rate = statistics.median(rates["directory"])
            rows.append(
                {
                    "concepts": size,
                    "memory_ms": mem,
                    "directory_ms": disk,
                    "ratio": round(disk / mem, 2),
                    "target": 1.5 if size <= 1000 else 1.2,
                    "memory_4_threads_writes_per_s": mem_rate,
                    "directory_4_threads_writes_per_s": disk_rate,
                    "ratio_4_threads": round(disk_rate / mem_rate, 2),
                    "checkpoint_after_load_s": checkpoint_s,
                }
            )
    finally:
        memory.close()
        directory.close()
    return rows


def threads(per_thread: int, work: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with anda.Nexus() as memory, anda.Nexus(work / "threads") as directory:
        stores = {"memory": memory, "directory": directory}
        for nexus in stores.values():
            load(nexus, 0, 1000)
            nexus.flush()
        rounds = alternated(
            stores, "t", lambda nexus, tag: writes_per_second(nexus, 4, per_thread, tag)
        )
        for count in (1, 8):
            figures[f"directory_{count}_threads_writes_per_s"] = writes_per_second(
                directory, count, per_thread, f"d{count}"
            )
    for kind, rates in rounds.items():
        figures[f"{kind}_4_threads_writes_per_s"] = statistics.median(rates)
    figures["rounds_4_threads"] = rounds
    memory_rate = figures["memory_4_threads_writes_per_s"]
    figures["ratio_4_threads"] = round(figures["directory_4_threads_writes_per_s"] / memory_rate, 2)
    figures["target_4_threads"] = 0.8
    return figures


def bulk(count: int, work: Path) -> dict[str, Any]:
    figures = {}
    for kind in ("memory", "directory"):
        with anda.Nexus(None if kind == "memory" else work / "bulk") as nexus:
            started = time.perf_counter()
            load(nexus, 0, count)
            figures[f"{kind}_writes_per_s"] = round(count / (time.perf_counter() - started))
    figures["ratio"] = round(figures["directory_writes_per_s"] / figures["memory_writes_per_s"], 2)
    return figures


KILLED_WITH_A_FULL_JOURNAL = f"""
import anda, os, signal, sys
nexus = anda.Nexus(sys.argv[1])
journal = os.path.join(sys.argv[1], {JOURNAL!r})
limit = int(sys.argv[2])
i = 0
while not os.path.exists(journal) or os.path.getsize(journal) < limit:
    nexus.execute_kip({UPSERT!r}, {{"key": f"j{{i}}", "name": "journaled"}})
    i += 1
print(i, os.path.getsize(journal), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""

REOPEN = """
import anda, sys, time
started = time.perf_counter()
nexus = anda.Nexus(sys.argv[1])
print(time.perf_counter() - started)
nexus.close()
"""


def reopen_after_crash(concepts: int, journal_bytes: int, work: Path) -> dict[str, Any]:
    store = work / "reopen"
    with anda.Nexus(store) as nexus:
        load(nexus, 0, concepts)
    # A clean reopen first, for comparison.
    clean = subprocess.run(
        [sys.executable, "-c", REOPEN, str(store)], capture_output=True, text=True
    )
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WITH_A_FULL_JOURNAL, str(store), str(journal_bytes)],
        capture_output=True,
        text=True,
    )
    commits, left = (int(x) for x in killed.stdout.split())
    replay = subprocess.run(
        [sys.executable, "-c", REOPEN, str(store)], capture_output=True, text=True, check=True
    )
    return {
        "concepts": concepts,
        "journal_bytes": left,
        "commits_in_journal": commits,
        "reopen_clean_s": round(float(clean.stdout), 3),
        "reopen_with_journal_s": round(float(replay.stdout), 3),
        "target_s": 2.0,
    }


def open_with_leaked_directories(concepts: int, leaked: int, work: Path) -> dict[str, Any]:
    """Opening a store that holds the empty directories older anda left for
    every retired generation (about 27 a commit), and the same store once a
    writable open has removed them. Read-only opens, which remove nothing,
    time both; medians of three."""
    store = work / "leaked"
    with anda.Nexus(store) as nexus:
        load(nexus, 0, concepts)
    collection = store / "gen" / "anda_db" / "concepts"
    for i in range(leaked):
        (collection / "btree_indexes" / "leaked" / f"bucket_{i}.cbor").mkdir(parents=True)

    def open_s() -> float:
        samples = []
        for _ in range(3):
            proc = subprocess.run(
                [sys.executable, "-c", REOPEN_READONLY, str(store)],
                capture_output=True,
                text=True,
                check=True,
            )
            samples.append(float(proc.stdout))
        return round(statistics.median(samples), 3)

    with_leaks = open_s()
    anda.Nexus(store).close()  # a writable open removes them
    remaining = sum(1 for _ in (store / "gen").rglob("*") if _.is_dir() and not any(_.iterdir()))
    return {
        "concepts": concepts,
        "empty_directories": leaked,
        "open_with_them_s": with_leaks,
        "open_after_removal_s": open_s(),
        "empty_directories_left": remaining,
    }


REOPEN_READONLY = """
import anda, sys, time
started = time.perf_counter()
nexus = anda.Nexus(sys.argv[1], readonly=True)
print(time.perf_counter() - started)
nexus.close()
"""

PER_COMMIT = f"""
import anda, json, sys
nexus = anda.Nexus(sys.argv[1])
nexus.bulk_write({{"upsert": {{"type": "Person", "key": f"p{{i}}"}}}} for i in range(1000))
nexus.flush()
def io():
    fields = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
    return int(fields["wchar"]), int(fields["write_bytes"])
before = io()
print("BEGIN", flush=True)
for i in range(int(sys.argv[2])):
    nexus.execute_kip({UPSERT!r}, {{"key": f"c{{i}}", "name": "counted"}})
print("END", flush=True)
after = io()
print(json.dumps([after[0] - before[0], after[1] - before[1]]))
nexus.close()
"""


def per_commit(commits: int, work: Path) -> dict[str, Any]:
    """Syncs and bytes of single-write commits, counted over the commits alone
    (strace counts the whole process, so the load and close are counted in a
    run without the commits and subtracted)."""
    counts = {}
    for label, n in (("with", commits), ("without", 0)):
        store = work / f"per-commit-{label}"
        shutil.rmtree(store, ignore_errors=True)
        trace = work / f"strace-{label}.txt"
        proc = subprocess.run(
            [
                *("strace", "-f", "-c", "-o", str(trace), "-e", "trace=fsync,fdatasync,syncfs"),
                *(sys.executable, "-c", PER_COMMIT, str(store), str(n)),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        row = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", re.M)
        syscalls = {
            name: int(calls) for calls, name in row.findall(trace.read_text()) if name != "total"
        }
        written, disk = json.loads(proc.stdout.strip().splitlines()[-1])
        counts[label] = (sum(syscalls.values()), written, disk)
    syncs = (counts["with"][0] - counts["without"][0]) / commits
    return {
        "commits": commits,
        "concepts": 1000,
        "syncs_per_commit": round(syncs, 2),
        "bytes_written_per_commit": round(counts["with"][1] / commits),
        "bytes_reaching_disk_per_commit": round(counts["with"][2] / commits),
        "before_journal": {
            "syncs_per_commit": 330,
            "bytes_written_per_commit": 87_000,
            "source": "docs/write-amplification.md (anda_db 0.14.2, the landed release build)",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--into", type=Path, help="add the figures to this JSON file")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and counts")
    args = parser.parse_args()
    quick = args.quick
    work = Path(tempfile.mkdtemp(prefix="anda-durable-bench-"))
    try:
        figures: dict[str, Any] = {"engine": anda.ENGINE_VERSION}
        per_thread = 10 if quick else 40
        figures["single_write"] = latency(
            [1000, 3000 if quick else 10_000], 15 if quick else 30, per_thread, work
        )
        figures["threads"] = threads(per_thread, work)
        figures["bulk_write"] = bulk(2000 if quick else 10_000, work)
        figures["reopen_after_crash"] = reopen_after_crash(
            3000 if quick else 10_000, (8 if quick else 63) << 20, work
        )
        figures["leaked_directories"] = open_with_leaked_directories(
            1000, 400 if quick else 1400, work
        )
        if shutil.which("strace") and sys.platform == "linux":
            figures["per_commit"] = per_commit(20 if quick else 100, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for row in figures["single_write"]:
        print(
            f"one write at {row['concepts']:,} concepts: memory {row['memory_ms']} ms, "
            f"directory {row['directory_ms']} ms ({row['ratio']}x; target <= {row['target']}x); "
            f"the load's checkpoint {row['checkpoint_after_load_s']} s; 4 threads: memory "
            f"{row['memory_4_threads_writes_per_s']}/s, directory "
            f"{row['directory_4_threads_writes_per_s']}/s ({row['ratio_4_threads']}x)"
        )
    t = figures["threads"]
    rates = ", ".join(f"{n} {t[f'directory_{n}_threads_writes_per_s']}/s" for n in (1, 4, 8))
    print(
        f"threads writing one directory store: {rates}; 4 in memory "
        f"{t['memory_4_threads_writes_per_s']}/s ({t['ratio_4_threads']}x; target >= 0.8x)"
    )
    b = figures["bulk_write"]
    rates = f"memory {b['memory_writes_per_s']}/s, directory {b['directory_writes_per_s']}/s"
    print(f"bulk_write: {rates}")
    r = figures["reopen_after_crash"]
    print(
        f"reopen after a crash at {r['concepts']:,} concepts with {r['journal_bytes'] >> 20} MiB "
        f"of journal: {r['reopen_with_journal_s']} s (clean: {r['reopen_clean_s']} s; "
        "target < 2 s)"
    )
    d = figures["leaked_directories"]
    print(
        f"open with {d['empty_directories']:,} empty directories left by older anda: "
        f"{d['open_with_them_s']} s; after the first writable open removed them: "
        f"{d['open_after_removal_s']} s ({d['empty_directories_left']} left)"
    )
    if "per_commit" in figures:
        c = figures["per_commit"]
        print(
            f"per single-write commit at 1k concepts: {c['syncs_per_commit']} syncs, "
            f"{c['bytes_written_per_commit']:,} bytes written "
            f"(before the journal: ~330 fsyncs, ~87,000 bytes)"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
    if args.into:
        merged = json.loads(args.into.read_text()) if args.into.exists() else {}
        merged["durable"] = figures
        args.into.write_text(json.dumps(merged, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
