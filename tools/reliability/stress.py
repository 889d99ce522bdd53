"""Concurrency and resource stress: many threads and tasks on one store,
stores opened and closed concurrently, and memory under large results,
maximal batches and repeated open/close.

    python tools/reliability/stress.py            # full budgets
    python tools/reliability/stress.py --small    # CI-size budgets

Each part checks a promise: no deadlock, no error, final contents equal to a
model of what was written, memory within a stated bound. Prints a table,
writes the figures as JSON (``--out``) and exits 1 if any promise is broken.
The memory parts run in fresh processes, so each has its own peak (VmHWM).
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import gc
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anda
from anda.bulk import Upsert
from anda.testing import dump_store

STALL_TIMEOUT = 600.0  # seconds without one finished operation: a deadlock
PROGRESS_EVERY = 60.0  # seconds between progress lines of a long part
PART_TIMEOUT = 3 * 3600.0  # one memory part in its own process
# Repetitions of a memory part: resident memory after the last must be
# within 10% of after the second.
REPEATS = 5

UPSERT = 'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }'
FIND_NAME = 'FIND(?p.name) WHERE { ?p {type: "Person", key: :key} }'
RELATE = (
    'MUTATE { UPSERT CONCEPT ?a { MATCH { type: "Person", key: :a } } '
    'UPSERT CONCEPT ?b { MATCH { type: "Person", key: :b } } '
    'ASSERT (?a, "knows", ?b) { by: ?a, mode: "stated" } }'
)
TOMBSTONE = 'TRANSITION ?c TO "tombstoned" WHERE { ?c {type: "Person", key: :key} } LIMIT 1'
SHARED = 'UPSERT CONCEPT ?o { MATCH { type: "Organization", key: :key } SET ATTRIBUTES { v: :v } }'
COUNT = 'FIND(COUNT(?p)) WHERE { ?p {type: "Person"} }'
CROSS = 'FIND(?a.key, ?b.key) WHERE { ?a {type: "Person"} ?b {type: "Topic"} }'


def memory() -> dict[str, int]:
    """This process's resident memory, its peak (KiB), threads and open files."""
    figures = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "Threads"):
                figures[name] = int(value.split()[0])
    figures["fds"] = len(os.listdir("/proc/self/fd"))
    return figures


@dataclass
class Part:
    """One part's promise, whether it held and what was measured."""

    name: str
    promise: str
    ok: bool = True
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.ok = False
        if len(self.problems) < 20:
            self.problems.append(problem)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "promise": self.promise,
            "ok": self.ok,
            **self.figures,
            "problems": self.problems,
        }


def rows(response: dict[str, Any], index: int = 0) -> Any:
    return response["results"][index]["result"]


# -- threads and tasks on one store -------------------------------------------


class PersonModel:
    """What one writer's people should be: names by key, tombstoned keys and
    relations. Each writer has keys of its own, so the model is exact."""

    def __init__(self) -> None:
        self.names: dict[str, str | None] = {}
        self.tombstoned: set[str] = set()
        self.relations: Counter[tuple[str, str]] = Counter()
        # Values written to the concepts every worker writes: the last one wins.
        self.shared: set[tuple[str, str]] = set()


# The operations of the mix, and their weights.
MIX = {
    "read": 40,
    "count": 8,
    "describe": 6,
    "dry_run": 5,
    "upsert": 25,
    "batch": 5,
    "shared": 8,
    # Few: the cost of a commit grows with the store, and these make it grow.
    "relate": 2,
    "tombstone": 1,
}


class Worker:
    """Mixed operations on one store, checked against the worker's model as it goes."""

    KEYS = 100  # people per worker, written over and over

    def __init__(self, nexus: anda.Nexus, n: int, seed: int, part: Part) -> None:
        self.nexus, self.n, self.part = nexus, n, part
        self.rng = random.Random(f"{seed}/{n}")
        self.model = PersonModel()
        self.done = 0
        self.kinds: Counter[str] = Counter()

    def key(self) -> str:
        return f"w{self.n}-{self.rng.randrange(self.KEYS)}"

    def step(self, i: int) -> None:
        kind = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        getattr(self, kind)(i)
        self.kinds[kind] += 1

    def read(self, i: int) -> None:
        key = self.key()
        found = rows(self.nexus.execute_kip(FIND_NAME, {"key": key}))
        expected = [self.model.names[key]] if key in self.model.names else []
        if found != expected:
            self.part.fail(f"worker {self.n} read {key}: {found}, expected {expected}")

    def upsert(self, i: int) -> None:
        key, name = self.key(), f"n{self.n}-{i}"
        self.nexus.execute_kip(UPSERT, {"key": key, "name": name})
        self.model.names[key] = name

    def batch(self, i: int) -> None:
        writes = [(self.key(), f"n{self.n}-{i}-{j}") for j in range(4)]
        self.nexus.execute_kip([(UPSERT, {"key": k, "name": v}) for k, v in writes])
        self.model.names.update(writes)

    def relate(self, i: int) -> None:
        a, b = self.key(), self.key()
        if a != b:
            self.nexus.execute_kip(RELATE, {"a": a, "b": b})
            for key in (a, b):
                self.model.names.setdefault(key, None)
            self.model.relations[(a, b)] += 1

    def tombstone(self, i: int) -> None:
        # A key of its own, created then tombstoned: tombstoned people stay so.
        key = f"d{self.n}-{i}"
        self.nexus.execute_kip([(UPSERT, {"key": key, "name": key}), (TOMBSTONE, {"key": key})])
        self.model.tombstoned.add(key)

    def shared(self, i: int) -> None:
        # Every worker writes the same few concepts: contention on one key.
        key, value = f"o{self.rng.randrange(8)}", f"{self.n}-{i}"
        self.nexus.execute_kip(SHARED, {"key": key, "v": value})
        self.model.shared.add((key, value))

    def dry_run(self, i: int) -> None:
        key = f"never{self.n}-{i}"
        self.nexus.execute_kip(UPSERT, {"key": key, "name": key}, dry_run=True)

    def count(self, i: int) -> None:
        rows(self.nexus.execute_kip(COUNT))

    def describe(self, i: int) -> None:
        rows(self.nexus.execute_kip("DESCRIBE PRIMER"))


def check_contents(nexus: anda.Nexus, models: list[PersonModel], part: Part) -> None:
    """The store holds exactly what the models say; each shared concept, one of
    the values written to it."""
    dump = dump_store(nexus)
    active = {row[1]: row[2] for row in dump["concepts"]["active"] if row[0].endswith("/Person")}
    tombstoned = {row[1] for row in dump["concepts"]["tombstoned"]}
    names: dict[str, str | None] = {}
    expected_tombstoned: set[str] = set()
    relations: Counter[tuple[str, str]] = Counter()
    shared: set[tuple[str, str]] = set()
    for model in models:
        names.update(model.names)
        expected_tombstoned |= model.tombstoned
        relations.update(model.relations)
        shared |= model.shared
    if active != names:
        wrong = sorted(set(active.items()) ^ set(names.items()))[:5]
        part.fail(f"people differ from the model ({len(active)} vs {len(names)}): {wrong}")
    if tombstoned != expected_tombstoned:
        part.fail(f"{len(tombstoned)} tombstoned, the model says {len(expected_tombstoned)}")
    stored = Counter((row[1], row[4]) for row in dump["assertions"])
    if stored != relations:
        part.fail(f"{sum(stored.values())} assertions, the model says {sum(relations.values())}")
    organizations = {
        (row[1], row[3]["v"]) for row in dump["concepts"]["active"] if "/Organization" in row[0]
    }
    if not organizations <= shared or len(organizations) != len({key for key, _ in shared}):
        part.fail(f"shared concepts {sorted(organizations)[:8]} are not last writes")
    if dump["contents"]["assertion"] != len(dump["assertions"]):
        part.fail("contents.assertion does not count the assertions")
    part.figures["final"] = {
        "people": len(active),
        "tombstoned": len(tombstoned),
        "assertions": len(dump["assertions"]),
    }


def run_threads(
    workers: list[Any], target: Callable[[Any], None], part: Part, progress: Callable[[], int]
) -> None:
    """Runs ``target(worker)`` on a thread per worker. Every wait is bounded:
    if no operation finishes for STALL_TIMEOUT, that is a deadlock."""
    errors: list[BaseException] = []

    def guarded(worker: Any) -> None:
        try:
            target(worker)
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=guarded, args=(w,), daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    last, last_change = progress(), time.monotonic()
    shown = last_change
    while alive := [thread for thread in threads if thread.is_alive()]:
        alive[0].join(timeout=1.0)
        now = progress()
        if time.monotonic() - shown > PROGRESS_EVERY:
            shown = time.monotonic()
            print(f"stress: {part.name}: {now:,} operations", file=sys.stderr, flush=True)
        if now != last:
            last, last_change = now, time.monotonic()
        elif time.monotonic() - last_change > STALL_TIMEOUT:
            part.fail(f"deadlock: no operation finished for {STALL_TIMEOUT:.0f} s at {now}")
            abandon(part)
    for err in errors:
        part.fail(f"{type(err).__name__}: {err}")


# Set by main: reports what was measured when a part deadlocks.
_report: Callable[[list[Part]], None] | None = None
_parts: list[Part] = []


def abandon(part: Part) -> None:
    """A deadlock: report it with every thread's stack and leave at once
    (closing the store would wait for the stuck calls)."""
    faulthandler.dump_traceback(all_threads=True)
    if _report is not None:
        _report([*_parts, part])
    os._exit(1)


def thread_stress(threads: int, operations: int, seed: int) -> Part:
    part = Part(
        "threads",
        f"{threads} threads x {operations:,} mixed operations on one in-memory Nexus: "
        "no deadlock, no error, reads see each thread's own writes, contents equal the model",
    )
    with anda.Nexus() as nexus:
        workers = [Worker(nexus, n, seed, part) for n in range(threads)]

        def work(worker: Worker) -> None:
            for i in range(operations):
                worker.step(i)
                worker.done += 1

        started = time.monotonic()
        run_threads(workers, work, part, lambda: sum(w.done for w in workers))
        elapsed = time.monotonic() - started
        if part.ok:
            check_contents(nexus, [w.model for w in workers], part)
    done = sum(w.done for w in workers)
    kinds = sum((w.kinds for w in workers), Counter())
    part.figures |= {
        "operations": done,
        "by_kind": dict(sorted(kinds.items())),
        "seconds": round(elapsed, 1),
        "operations_per_s": round(done / elapsed),
    }
    return part


def async_stress(tasks: int) -> Part:
    part = Part(
        "async",
        f"{tasks:,} concurrent execute_kip_async tasks (write then read back) on one "
        "in-memory Nexus: no deadlock, no error, every write stored",
    )

    async def one(nexus: anda.Nexus, i: int) -> None:
        key = f"a{i}"
        await nexus.execute_kip_async(UPSERT, {"key": key, "name": key})
        found = rows(await nexus.execute_kip_async(FIND_NAME, {"key": key}))
        if found != [key]:
            part.fail(f"task {i} read back {found}")

    async def main(nexus: anda.Nexus) -> None:
        results = await asyncio.wait_for(
            asyncio.gather(*(one(nexus, i) for i in range(tasks)), return_exceptions=True),
            timeout=STALL_TIMEOUT * 4,
        )
        for result in results:
            if isinstance(result, BaseException):
                part.fail(f"{type(result).__name__}: {result}")

    with anda.Nexus() as nexus:
        started = time.monotonic()
        try:
            asyncio.run(main(nexus))
        except TimeoutError:
            part.fail("deadlock: the tasks did not finish")
        elapsed = time.monotonic() - started
        stored = rows(nexus.execute_kip(COUNT))
    if stored != [tasks]:
        part.fail(f"{stored} people stored, {tasks} written")
    part.figures |= {"tasks": tasks, "seconds": round(elapsed, 1), "people": stored}
    return part


def open_close_concurrently(threads: int, cycles: int, seed: int) -> Part:
    """Each thread opens its own directory store, writes and reads, closes,
    over and over; meanwhile other threads use one shared store. Then every
    store is reopened and compared with its model."""
    part = Part(
        "open/close concurrently",
        f"{threads} threads each opening, writing to and closing its own directory store "
        f"{cycles} times, alongside {threads} threads on one shared store: no deadlock, "
        "no error, every store reopens with its model's contents",
    )
    root = Path(tempfile.mkdtemp(prefix="anda-stress-"))
    try:
        with anda.Nexus() as shared:
            openers = [Worker(shared, n, seed, part) for n in range(threads)]
            users = [Worker(shared, threads + n, seed, part) for n in range(threads)]

            def open_write_close(worker: Worker) -> None:
                for cycle in range(cycles):
                    with anda.Nexus(root / f"s{worker.n}") as nexus:
                        worker.nexus = nexus
                        for i in range(4):
                            worker.step(cycle * 4 + i)
                    worker.done += 1

            def use_shared(worker: Worker) -> None:
                for i in range(cycles * 4):
                    worker.step(i)
                    worker.done += 1

            def work(worker: Worker) -> None:
                (open_write_close if worker in openers else use_shared)(worker)

            started = time.monotonic()
            all_workers = openers + users
            run_threads(all_workers, work, part, lambda: sum(w.done for w in all_workers))
            elapsed = time.monotonic() - started
            if part.ok:
                check_contents(shared, [w.model for w in users], part)
        if part.ok:
            for worker in openers:
                with anda.Nexus(root / f"s{worker.n}") as nexus:
                    check_contents(nexus, [worker.model], part)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    part.figures |= {"opens": threads * cycles, "seconds": round(elapsed, 1)}
    part.figures.pop("final", None)
    return part


def close_while_in_use(threads: int) -> Part:
    """Closing a store that other threads are calling: each call succeeds or
    raises NexusClosedError; close waits for running calls; nothing hangs."""
    part = Part(
        "close while in use",
        f"closing a store while {threads} threads call it: every call succeeds or raises "
        "NexusClosedError, and every thread finishes",
    )
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    with anda.Nexus() as nexus:
        workers = [Worker(nexus, n, 0, part) for n in range(threads)]

        def work(worker: Worker) -> None:
            for i in range(100_000):
                try:
                    worker.upsert(i)
                except anda.NexusClosedError:
                    with lock:
                        outcomes["closed"] += 1
                    return
                with lock:
                    outcomes["succeeded"] += 1
                worker.done += 1

        closer = threading.Timer(0.5, nexus.close)
        closer.start()
        run_threads(workers, work, part, lambda: sum(w.done for w in workers))
        closer.join(timeout=STALL_TIMEOUT)
    if outcomes["closed"] != threads:
        part.fail(f"{outcomes['closed']} of {threads} threads saw the store closed")
    part.figures |= dict(outcomes)
    return part


# -- memory, each in a fresh process -------------------------------------------


def _load_cross(nexus: anda.Nexus, people: int, topics: int) -> None:
    nexus.bulk_write(Upsert("Person", f"a{i}") for i in range(people))
    nexus.bulk_write(Upsert("Topic", f"b{i}") for i in range(topics))


def large_result(target_rows: int) -> dict[str, Any]:
    """One response of ``target_rows`` rows, REPEATS times over.

    One query may build at most 100,000 intermediate solutions (the engine's
    MAX_SOLUTIONS), so a 1,000 x 1,000 cross product is refused with a typed
    error; a larger response is a batch of cross products of 1,000 x 99.
    """
    figures: dict[str, Any] = {}
    with anda.Nexus() as nexus:
        _load_cross(nexus, 1000, 100)
        try:
            nexus.execute_kip(CROSS)
            figures["refused_1000x100"] = None
        except anda.KipError as err:
            figures["refused_1000x100"] = f"{type(err).__name__} {err.code}"
    people = 1000
    topics = min(99, -(-target_rows // people))  # at most 100,000 solutions per query
    per_query = people * topics
    queries = -(-target_rows // per_query)
    with anda.Nexus() as nexus:
        _load_cross(nexus, people, topics)
        gc.collect()
        before = memory()
        after: list[int] = []
        for _ in range(REPEATS):
            started = time.monotonic()
            response = nexus.execute_kip([CROSS] * queries, execution="independent")
            seconds = time.monotonic() - started
            got = sum(len(result["result"]) for result in response["results"])
            del response
            gc.collect()
            after.append(memory()["VmRSS"])
        peak = memory()["VmHWM"]
    figures |= {
        "rows": got,
        "queries": queries,
        "largest_single_query": per_query,
        "seconds": round(seconds, 1),
        "rss_before_mib": before["VmRSS"] // 1024,
        "peak_growth_mib": (peak - before["VmRSS"]) // 1024,
        "peak_bytes_per_row": round((peak - before["VmRSS"]) * 1024 / got),
        "rss_after_each_mib": [kib // 1024 for kib in after],
    }
    return figures


def _warm_memory() -> dict[str, int]:
    """Memory once the engine and its runtime are loaded (a store opened
    and closed), so a part measures what it adds."""
    with anda.Nexus() as nexus:
        nexus.execute_kip("DESCRIBE PRIMER")
    gc.collect()
    return memory()


def maximal_batch(operations: int, command_bytes: int) -> dict[str, Any]:
    """REPEATS rounds, each on a new store: a sequence batch of ``operations``
    writes and an independent batch of ``operations`` reads, every command
    ``command_bytes`` long (a literal fills it; the parser takes 256 KiB)."""
    write = (
        'UPSERT CONCEPT ?p {{ MATCH {{ type: "Person", key: "k{i:03d}" }} '
        'SET FIELDS {{ name: "{fill}" }} }}'
    )
    read = 'FIND(?p.name) WHERE {{ ?p {{type: "Person", key: "{fill}"}} }}'
    before = _warm_memory()
    after: list[int] = []
    statuses, seconds = [], []
    for round_ in range(REPEATS):
        with anda.Nexus() as nexus:
            for template, execution in ((write, "sequence"), (read, "independent")):
                filler = command_bytes - len(template.format(i=0, fill=""))
                batch = [
                    template.format(i=i, fill=chr(97 + (i + round_) % 26) * filler)
                    for i in range(operations)
                ]
                started = time.monotonic()
                statuses.append(nexus.execute_kip(batch, execution=execution)["status"])
                seconds.append(round(time.monotonic() - started, 1))
                del batch
            stored = rows(nexus.execute_kip(COUNT))
        gc.collect()
        after.append(memory()["VmRSS"])
    peak = memory()["VmHWM"]
    text = operations * command_bytes
    return {
        "operations": operations,
        "command_bytes": command_bytes,
        "batch_mib": round(text / 2**20, 1),
        "batches_succeeded": f"{statuses.count('succeeded')} of {len(statuses)}",
        "stored": stored,
        "seconds_write_read": seconds[:2],
        "rss_before_mib": before["VmRSS"] // 1024,
        "peak_growth_mib": (peak - before["VmRSS"]) // 1024,
        "peak_growth_per_batch_byte": round((peak - before["VmRSS"]) * 1024 / text, 1),
        "rss_after_each_mib": [kib // 1024 for kib in after],
    }


# The runtime retires a blocking-pool thread after 10 s idle.
IDLE_THREADS_SETTLE = 12.0


def open_close_cycles(cycles: int, check_after: int) -> dict[str, Any]:
    """Opens a directory store, reads, closes, ``cycles`` times; memory,
    threads and open files after ``check_after`` cycles and at the end, each
    after the runtime's idle threads have retired."""
    root = Path(tempfile.mkdtemp(prefix="anda-cycles-"))
    try:
        with anda.Nexus(root) as nexus:
            nexus.execute_kip(UPSERT, {"key": "kept", "name": "kept"})
        marks: dict[int, dict[str, int]] = {}
        busiest = 0
        started = time.monotonic()
        for cycle in range(1, cycles + 1):
            with anda.Nexus(root) as nexus:
                found = rows(nexus.execute_kip(FIND_NAME, {"key": "kept"}))
                busiest = max(busiest, memory()["Threads"])
            if found != ["kept"]:
                raise AssertionError(f"cycle {cycle} read {found}")
            if cycle in (check_after, cycles):
                time.sleep(IDLE_THREADS_SETTLE)
                gc.collect()
                marks[cycle] = memory()
        seconds = time.monotonic() - started - 2 * IDLE_THREADS_SETTLE
    finally:
        shutil.rmtree(root, ignore_errors=True)
    first, last = marks[check_after], marks[cycles]
    return {
        "cycles": cycles,
        "check_after": check_after,
        "seconds_per_cycle": round(seconds / cycles, 3),
        f"rss_after_{check_after}_mib": round(first["VmRSS"] / 1024, 1),
        f"rss_after_{cycles}_mib": round(last["VmRSS"] / 1024, 1),
        "rss_growth": round(last["VmRSS"] / first["VmRSS"] - 1, 3),
        "threads_idle": [first["Threads"], last["Threads"]],
        "threads_busiest": busiest,
        "open_files": [first["fds"], last["fds"]],
    }


MEMORY_PARTS: dict[str, Callable[..., dict[str, Any]]] = {
    "large-result": large_result,
    "maximal-batch": maximal_batch,
    "open-close-cycles": open_close_cycles,
}


# One glibc malloc arena in the memory parts: with the default (8 per core),
# memory freed on one engine thread and reused on another inflates resident
# memory by fragmentation, which would hide or fake a leak.
ONE_ARENA = {"MALLOC_ARENA_MAX": "1"}


def in_fresh_process(name: str, *args: int, one_arena: bool = True) -> dict[str, Any]:
    """Runs a memory part in a new interpreter, so its peak is its own."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    argv = [sys.executable, os.path.abspath(__file__), "--part", name, *map(str, args)]
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=PART_TIMEOUT,
            check=False,
            env={**env, **ONE_ARENA} if one_arena else env,
        )
    except subprocess.TimeoutExpired:  # run() has killed it
        return {"error": f"did not finish in {PART_TIMEOUT:.0f} s"}
    if proc.returncode != 0:
        return {"error": f"exited with {proc.returncode}: {proc.stderr[-2000:]}"}
    return json.loads(proc.stdout)


def large_result_part(small: bool) -> Part:
    target = 50_000 if small else 1_000_000
    figures = in_fresh_process("large-result", target)
    bound = 3072
    part = Part(
        "large result",
        f"a response of {target:,} rows peaks under {bound:,} bytes a row; after {REPEATS} in a "
        "row resident memory is within 10% of after the second; a single query over "
        "100,000 intermediate solutions is refused with a KipResourceError",
        figures=figures,
    )
    if "error" in figures:
        part.fail(figures.pop("error"))
    else:
        if figures["rows"] < target:
            part.fail(f"{figures['rows']} rows, {target} wanted")
        if figures["peak_bytes_per_row"] > bound:
            part.fail(f"{figures['peak_bytes_per_row']} bytes a row at the peak")
        _no_growth(part, figures["rss_after_each_mib"])
        if not str(figures["refused_1000x100"]).startswith("KipResourceError"):
            part.fail(f"the 1,000 x 100 query: {figures['refused_1000x100']}")
        # For the record, not a promise: the same with glibc's default arenas.
        default = in_fresh_process("large-result", target, one_arena=False)
        figures["default_arenas_rss_after_each_mib"] = default.get("rss_after_each_mib")
    return part


def maximal_batch_part(small: bool) -> Part:
    command_bytes = 32 * 1024 if small else 255 * 1024
    figures = in_fresh_process("maximal-batch", 256, command_bytes)
    factor = 12
    part = Part(
        "maximal batch",
        f"{REPEATS} rounds on a new store each: a 256-operation write batch and a "
        f"256-operation read batch of {command_bytes // 1024} KiB commands succeed, the peak "
        f"stays under {factor}x one batch's text, and resident memory after the last round "
        "is within 10% of after the second",
        figures=figures,
    )
    if "error" in figures:
        part.fail(figures.pop("error"))
    else:
        succeeded = f"{2 * REPEATS} of {2 * REPEATS}"
        if figures["batches_succeeded"] != succeeded or figures["stored"] != [256]:
            part.fail(f"{figures['batches_succeeded']} succeeded, {figures['stored']} stored")
        if figures["peak_growth_per_batch_byte"] > factor:
            part.fail(f"peak {figures['peak_growth_per_batch_byte']}x the batch text")
        _no_growth(part, figures["rss_after_each_mib"])
    return part


def open_close_cycles_part(small: bool) -> Part:
    cycles, check_after = (100, 10) if small else (1000, 100)
    figures = in_fresh_process("open-close-cycles", cycles, check_after)
    part = Part(
        "open/close cycles",
        f"{cycles:,} open/read/close cycles of a directory store: resident memory after "
        f"them within 10% of after the first {check_after}, no more idle threads or open files",
        figures=figures,
    )
    if "error" in figures:
        part.fail(figures.pop("error"))
    else:
        if figures["rss_growth"] > 0.10:
            part.fail(f"resident memory grew {figures['rss_growth']:.0%}")
        if figures["threads_idle"][1] > figures["threads_idle"][0]:
            part.fail(f"idle threads went from {figures['threads_idle']}")
        if figures["open_files"][0] != figures["open_files"][1]:
            part.fail(f"open files went from {figures['open_files']}")
    return part


def _no_growth(part: Part, after_each: list[int]) -> None:
    # From the second on: the first fills the allocator's per-thread arenas.
    if after_each[-1] > after_each[1] * 1.10:
        part.fail(f"resident memory grew across repetitions: {after_each} MiB")


# -- the run ------------------------------------------------------------------


def free_threaded() -> dict[str, Any]:
    """Whether a free-threaded CPython is at hand, and whether this one is."""
    found = sorted(
        str(path)
        for root, pattern in (
            (Path.home() / ".pyenv" / "versions", "3.1[3-9]*t"),
            (Path("/usr/local/bin"), "python3.1[3-9]t"),
            (Path("/usr/bin"), "python3.1[3-9]t"),
        )
        if root.is_dir()
        for path in root.glob(pattern)
    )
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    return {"this_interpreter_gil": gil, "free_threaded_interpreters_found": found}


def print_table(parts: list[Part]) -> None:
    width = max(len(part.name) for part in parts)
    for part in parts:
        shown = {k: v for k, v in part.figures.items() if k not in ("by_kind",)}
        print(f"{part.name:<{width}}  {'ok  ' if part.ok else 'FAIL'}  {json.dumps(shown)}")
        for problem in part.problems:
            print(f"{'':<{width}}        {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="CI-size budgets")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="bench-results/stress.json")
    parser.add_argument(
        "--only", action="append", help="run only these parts (threads, async, open-close, memory)"
    )
    parser.add_argument("--part", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:
        name, *numbers = args.part
        print(json.dumps(MEMORY_PARTS[name](*map(int, numbers))))
        return 0

    threads = 8
    operations, tasks, cycles = (300, 100, 3) if args.small else (10_000, 1_000, 25)
    wanted = set(args.only or ("threads", "async", "open-close", "memory"))
    out = Path(args.out)

    def write_figures(parts: list[Part], *, complete: bool) -> bool:
        figures = {
            "budgets": "small" if args.small else "full",
            "parts": [part.to_json() for part in parts],
            "free_threading": free_threaded(),
            "anda": anda.__version__,
            "python": sys.version.split()[0],
            "complete": complete,
            "ok": all(part.ok for part in parts),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(figures, indent=2) + "\n")
        return figures["ok"]

    def report(parts: list[Part]) -> bool:
        print_table(parts)
        return write_figures(parts, complete=True)

    global _report
    _report = report
    runs: list[Callable[[], Part]] = []
    if "threads" in wanted:
        runs.append(lambda: thread_stress(threads, operations, args.seed))
    if "async" in wanted:
        runs.append(lambda: async_stress(tasks))
    if "open-close" in wanted:
        runs.append(lambda: open_close_concurrently(threads, cycles, args.seed))
        runs.append(lambda: close_while_in_use(threads))
    if "memory" in wanted:
        runs += [
            lambda: large_result_part(args.small),
            lambda: maximal_batch_part(args.small),
            lambda: open_close_cycles_part(args.small),
        ]
    for run in runs:
        started = time.monotonic()
        part = run()
        _parts.append(part)
        verdict = "ok" if part.ok else "FAILED"
        took = time.monotonic() - started
        print(f"stress: {part.name}: {verdict} ({took:.0f} s)", file=sys.stderr, flush=True)
        # Figures so far, so a long run stopped early still leaves them.
        write_figures(_parts, complete=False)
    return 0 if report(_parts) else 1


if __name__ == "__main__":
    sys.exit(main())
