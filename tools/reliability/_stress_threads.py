"""The stress parts on one store (stress.py): many threads and asyncio tasks
against a model of what they wrote, stores opened and closed concurrently, and
a store closed while in use. A deadlock ends the run with every thread's stack."""

from __future__ import annotations

import asyncio
import faulthandler
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _stress_common import (
    COUNT,
    FIND_NAME,
    PROGRESS_EVERY,
    RELATE,
    SHARED,
    STALL_TIMEOUT,
    TOMBSTONE,
    UPSERT,
    Part,
    rows,
)

import anda
from anda.testing import dump_store


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


# Set by stress.py's main: reports what was measured when a part deadlocks.
report_on_deadlock: Callable[[list[Part]], None] | None = None
finished_parts: list[Part] = []


def abandon(part: Part) -> None:
    """A deadlock: report it with every thread's stack and leave at once
    (closing the store would wait for the stuck calls)."""
    faulthandler.dump_traceback(all_threads=True)
    if report_on_deadlock is not None:
        report_on_deadlock([*finished_parts, part])
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
    raises MemoryClosedError; close waits for running calls; nothing hangs."""
    part = Part(
        "close while in use",
        f"closing a store while {threads} threads call it: every call succeeds or raises "
        "MemoryClosedError, and every thread finishes",
    )
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    with anda.Nexus() as nexus:
        workers = [Worker(nexus, n, 0, part) for n in range(threads)]

        def work(worker: Worker) -> None:
            for i in range(100_000):
                try:
                    worker.upsert(i)
                except anda.MemoryClosedError:
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
