"""Power cuts: build the disk states a power cut could leave, and open each.

A SIGKILLed process leaves the page cache to the kernel, which writes it out:
``crash.py`` cannot see a missing fsync. This harness, in the spirit of
SQLite's crash-test VFS and ALICE (OSDI 2014), records every change anda makes
to a directory store (each journal append and sync, each file a checkpoint
writes, renames, removals, directory syncs, ``syncfs``; anda writes them to
``$ANDA_POWERCUT_TRACE``, see ``tools/anda_embedded/src/journal/disk.rs``) and
every acknowledgement, while a writer process runs a plan of calls: single
upserts, two-person MUTATE transactions, flushes (checkpoints) and a close,
one after another or (``--threads``) from several threads at once, whose
calls share syncs and pass their writes into the journal while others commit.

Then, for many points of the record, it builds a disk a power cut at that
point could leave: every change a later sync made durable is there; of the
others, any subset, an append torn at 512-byte sectors, a rename without the
data written before it (the pessimistic model of ALICE; a change that needs
one that was lost, such as a file in a directory never made, is lost too).
Each disk is opened in a fresh process, which must open it and find every
acknowledged write, nothing never written, every MUTATE whole or absent, and
``verify()`` sound.

    python tools/reliability/powercut.py --states 300 --seed 1
    python tools/reliability/powercut.py --states 300 --threads 4

Prints a summary line, writes the figures as JSON (``--out``) and exits 1 on
any failure (the failing disk is kept under ``--dir`` for inspection).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UPSERT = 'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }'
MUTATE = (
    "MUTATE {\n"
    '  UPSERT CONCEPT ?a { MATCH { type: "Person", key: :a } SET FIELDS { name: :an } }\n'
    '  UPSERT CONCEPT ?b { MATCH { type: "Person", key: :b } SET FIELDS { name: :bn } }\n'
    "}"
)
FIND = 'FIND(?p.key, ?p.name) WHERE { ?p {type: "Person"} }'
SECTOR = 512

# -- the plan and the writer ---------------------------------------------------


def make_plan(calls: int, rng: random.Random) -> list[dict[str, Any]]:
    """What the writer does, one acknowledgement per entry."""
    plan: list[dict[str, Any]] = [{"call": "open"}]
    for i in range(calls):
        roll = rng.random()
        if roll < 0.15 and i > 0:
            plan.append({"call": "flush"})
        elif roll < 0.35:
            plan.append({"call": "mutate", "people": {f"m{i}a": f"A{i}", f"m{i}b": f"B{i}"}})
        else:
            plan.append(
                {"call": "upsert", "people": {f"u{i}": f"N{i}-" + "x" * rng.randrange(600)}}
            )
    plan.append({"call": "close"})
    return plan


# The plan, from one thread or several: each takes every n-th call and notes,
# around each, how long the record was (anda appends to it as it changes the
# disk). With several, a call is acknowledged at any point of the record past
# its end, and may have left writes at any point past its start; with one,
# the calls run in the plan's order and its acknowledgements say as much.
WRITER = """
import anda, json, os, sys, threading
plan = json.load(open(sys.argv[2]))
threads, record = int(sys.argv[5]), os.environ["ANDA_POWERCUT_TRACE"]
spans = [None] * len(plan)
nexus = anda.Nexus(sys.argv[1])
spans[0] = (0, os.path.getsize(record))

def call(index):
    step = plan[index]
    started = os.path.getsize(record)
    if step["call"] == "flush":
        nexus.flush()
    elif step["call"] == "close":
        nexus.close()
    elif step["call"] == "upsert":
        [(key, name)] = step["people"].items()
        nexus.execute_kip(sys.argv[3], {"key": key, "name": name})
    else:
        (a, an), (b, bn) = step["people"].items()
        nexus.execute_kip(sys.argv[4], {"a": a, "an": an, "b": b, "bn": bn})
    spans[index] = (started, os.path.getsize(record))

def run(first):
    for index in range(first, len(plan) - 1, threads):
        call(index)

workers = [threading.Thread(target=run, args=(1 + t,)) for t in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
call(len(plan) - 1)
json.dump(spans, open(sys.argv[6], "w"))
"""


@dataclass
class Record:
    """A run's changes, and for each call of the plan the first op it may
    have changed the disk with and the op from which it is acknowledged."""

    ops: list[dict[str, Any]]
    started_at: list[int]
    acknowledged_at: list[int]

    def calls_before(self, cut: int) -> tuple[set[int], set[int]]:
        """The calls acknowledged, and the calls started, before ``ops[cut]``."""
        acknowledged = {i for i, at in enumerate(self.acknowledged_at) if at <= cut}
        started = {i for i, at in enumerate(self.started_at) if at < cut}
        return acknowledged, started


def record(store: Path, plan: list[dict[str, Any]], work: Path, threads: int) -> Record:
    """Runs the plan on a new store; returns the record of its changes."""
    trace, plan_file, spans_file = work / "trace.jsonl", work / "plan.json", work / "spans.json"
    trace.unlink(missing_ok=True)
    plan_file.write_text(json.dumps(plan))
    env = {**os.environ, "ANDA_POWERCUT_TRACE": str(trace)}
    argv = [sys.executable, "-c", WRITER, str(store), str(plan_file), UPSERT, MUTATE]
    argv += [str(threads), str(spans_file)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"the writer failed: {proc.stderr[-2000:]}")
    lines = trace.read_bytes().splitlines(keepends=True)
    ops = [json.loads(line) for line in lines]
    for op in ops:
        if op["op"] == "write":
            op["data"] = bytes.fromhex(op["data"])
    acks = [i for i, op in enumerate(ops) if op["op"] == "ack"]
    if len(acks) != len(plan):
        raise SystemExit(f"{len(acks)} acknowledgements recorded for {len(plan)} calls")
    if threads == 1:
        # One call at a time: the n-th acknowledgement ends the n-th call,
        # which is in flight from the one before.
        return Record(ops, [0, *acks[:-1]], [ack + 1 for ack in acks])
    # Byte offsets in the record, turned into op positions.
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    spans = json.loads(spans_file.read_text())
    return Record(
        ops,
        [bisect.bisect_right(starts, start) - 1 for start, _ in spans],
        [bisect.bisect_left(starts, done) for _, done in spans],
    )


# -- the disk a power cut leaves -----------------------------------------------


def _parent(path: str) -> str:
    return os.path.dirname(path)


def durable_before(ops: list[dict[str, Any]], cut: int) -> list[bool]:
    """For each change before ``cut``, whether a sync before ``cut`` made it durable."""
    pinned = [False] * cut
    synced_files: set[str] = set()
    synced_dirs: set[str] = set()
    syncfs = False
    for index in reversed(range(cut)):
        op = ops[index]
        kind = op["op"]
        if kind == "syncfs":
            syncfs = True
        elif kind == "fsync":
            synced_files.add(op["path"])
        elif kind == "fsync_dir":
            synced_dirs.add(op["path"])
        elif kind in ("write", "extend"):
            pinned[index] = syncfs or op["path"] in synced_files
        elif kind in ("create", "rename", "unlink", "mkdir", "rmdir"):
            pinned[index] = syncfs or _parent(op["path"]) in synced_dirs
    return pinned


@dataclass
class Disk:
    files: dict[str, bytearray] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=lambda: {""})

    def apply(self, op: dict[str, Any], sectors: set[int] | None) -> None:
        kind, path = op["op"], op.get("path", "")
        if kind == "create" and _parent(path) in self.dirs:
            self.files[path] = bytearray()
        elif kind == "write" and path in self.files:
            data, offset = op["data"], op["offset"]
            file = self.files[path]
            if len(file) < offset + len(data):
                file.extend(bytes(offset + len(data) - len(file)))
            for start in range(0, len(data), SECTOR):
                if sectors is None or start // SECTOR in sectors:
                    file[offset + start : offset + start + SECTOR] = data[start : start + SECTOR]
        elif kind == "extend" and path in self.files:
            # A prepared journal: zeros written ahead (never torn: zeros over zeros).
            file = self.files[path]
            file.extend(bytes(max(0, op["len"] - len(file))))
        elif kind == "rename" and op["from"] in self.files and _parent(path) in self.dirs:
            self.files[path] = self.files.pop(op["from"])
        elif kind == "unlink":
            self.files.pop(path, None)
        elif kind == "mkdir" and _parent(path) in self.dirs:
            self.dirs.add(path)
        elif kind == "rmdir" and not any(
            _parent(p) == path for p in [*self.files, *self.dirs] if p != path
        ):
            self.dirs.discard(path)

    def write_to(self, root: Path) -> None:
        root.mkdir(parents=True)
        (root / "anda.lock").touch()
        for directory in sorted(self.dirs):
            (root / directory).mkdir(parents=True, exist_ok=True)
        for path, data in self.files.items():
            (root / path).write_bytes(bytes(data))


def cut_disk(ops: list[dict[str, Any]], cut: int, rng: random.Random, kind: str) -> Disk:
    """The disk after a power cut just before ``ops[cut]``.

    ``kind``: "synced" keeps only what syncs made durable, "everything" all
    changes (what SIGKILL leaves), "random" the synced ones and a random
    subset of the rest, appends possibly torn at sector boundaries.
    """
    pinned = durable_before(ops, cut)
    disk = Disk()
    for index in range(cut):
        op = ops[index]
        if op["op"] in ("ack", "fsync", "fsync_dir", "syncfs"):
            continue
        sectors: set[int] | None = None
        if not pinned[index]:
            if kind == "synced" or (kind == "random" and rng.random() < 0.5):
                continue
            if kind == "random" and op["op"] == "write" and rng.random() < 0.5:
                count = -(-len(op["data"]) // SECTOR)
                sectors = {s for s in range(count) if rng.random() < 0.5}
        disk.apply(op, sectors)
    return disk


# -- checking a disk -----------------------------------------------------------

CHECKER = f"""
import anda, json, sys
try:
    nexus = anda.Nexus(sys.argv[1])
except anda.AndaError as err:
    print(json.dumps({{"opened": False, "error": f"{{type(err).__name__}}: {{err}}"}}))
    raise SystemExit(0)
rows = nexus.execute_kip({FIND!r})["results"][0]["result"]
problems = [str(problem) for problem in nexus.verify().problems]
nexus.close()
print(json.dumps({{"opened": True, "people": dict(rows), "verify": problems}}))
"""


def check(root: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", CHECKER, str(root)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        return {
            "opened": False,
            "error": f"the checker exited {proc.returncode}: {proc.stderr[-1500:]}",
        }
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def judge(
    plan: list[dict[str, Any]], acknowledged: set[int], started: set[int], found: dict[str, Any]
) -> list[str]:
    """What is wrong with a reopened disk, given the calls acknowledged and
    the calls started (those in flight may have happened or not)."""
    if not found["opened"]:
        return [f"did not open: {found['error']}"]
    problems = [f"verify: {problem}" for problem in found["verify"]]
    people: dict[str, str] = found["people"]
    may_hold: dict[str, str] = {}
    for index in sorted(started | acknowledged):
        written = plan[index].get("people", {})
        may_hold.update(written)
        if index not in acknowledged:
            continue
        for key, name in written.items():
            if people.get(key) != name:
                problems.append(f"lost: call {index} wrote {key}, reads {people.get(key)!r}")
    for key, name in people.items():
        if may_hold.get(key) != name:
            problems.append(f"phantom: {key}={name[:20]!r} was never written")
    for step in plan:
        if step["call"] == "mutate":
            present = [key in people for key in step["people"]]
            if any(present) and not all(present):
                problems.append(f"torn MUTATE: {sorted(step['people'])} stored {present}")
    return problems


# -- the run -------------------------------------------------------------------


def choose_cuts(
    ops: list[dict[str, Any]], states: int, rng: random.Random
) -> list[tuple[int, str]]:
    """Cut points with the kind of disk for each: every sync's neighbourhood
    first (where durability is decided), then anywhere."""
    barriers = [
        i for i, op in enumerate(ops) if op["op"] in ("fsync", "fsync_dir", "syncfs", "rename")
    ]
    cuts: list[tuple[int, str]] = [(len(ops), "synced")]
    while len(cuts) < states:
        if barriers and rng.random() < 0.6:
            cut = min(len(ops), rng.choice(barriers) + rng.choice((0, 1)))
        else:
            cut = rng.randrange(len(ops) + 1)
        kind = rng.choice(("random", "random", "random", "synced", "everything"))
        cuts.append((cut, kind))
    return cuts[:states]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", type=int, default=300, help="disks to build and open")
    parser.add_argument("--calls", type=int, default=40, help="calls in the writer's plan")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, help="keep the work here (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/powercut.json"))
    parser.add_argument("--jobs", type=int, default=2, help="disks checked at once")
    parser.add_argument("--threads", type=int, default=1, help="threads running the plan")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    work = args.dir or Path(tempfile.mkdtemp(prefix="anda-powercut-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    plan = make_plan(args.calls, rng)
    recorded = record(work / "store", plan, work, max(1, args.threads))
    ops = recorded.ops
    cuts = choose_cuts(ops, args.states, rng)
    seeds = [rng.randrange(2**32) for _ in cuts]

    def one(index: int) -> dict[str, Any]:
        cut, kind = cuts[index]
        disk = cut_disk(ops, cut, random.Random(seeds[index]), kind)
        root = work / f"disk-{index}"
        shutil.rmtree(root, ignore_errors=True)
        disk.write_to(root)
        acknowledged, started = recorded.calls_before(cut)
        problems = judge(plan, acknowledged, started, check(root))
        if not problems:
            shutil.rmtree(root)
        return {
            "cut": cut,
            "kind": kind,
            "acknowledged": sorted(acknowledged),
            "problems": problems,
        }

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = list(pool.map(one, range(len(cuts))))
    failures = [outcome for outcome in outcomes if outcome["problems"]]
    kinds = Counter(op["op"] for op in ops)
    figures = {
        "states": len(outcomes),
        "calls": len(plan),
        "recorded_changes": len(ops) - kinds["ack"],
        "changes_by_kind": dict(sorted(kinds.items())),
        "states_by_kind": dict(Counter(outcome["kind"] for outcome in outcomes)),
        "threads": max(1, args.threads),
        "acknowledged_writes_checked": sum(
            len(plan[index].get("people", {}))
            for outcome in outcomes
            for index in outcome["acknowledged"]
        ),
        "failures": len(failures),
        "first_failures": failures[:5],
        "seconds": round(time.monotonic() - started, 1),
        "ok": not failures,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print(
        f"powercut: {figures['states']} disks from {figures['recorded_changes']} recorded changes "
        f"of {figures['calls']} calls"
        + (f" from {figures['threads']} threads" if figures["threads"] > 1 else "")
        + f"; {figures['acknowledged_writes_checked']} acknowledged "
        f"writes checked; {figures['failures']} failures ({figures['seconds']} s)"
    )
    for failure in failures[:5]:
        print(f"  cut {failure['cut']} ({failure['kind']}): {failure['problems'][:3]}")
    if failures:
        print(f"failing disks kept in {work}")
    elif args.dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
