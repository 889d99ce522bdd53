"""The stress parts on memory (stress.py): a large result, maximal batches and
repeated open/close, each run in a fresh process so its peak is its own."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _stress_common import (
    COUNT,
    CROSS,
    FIND_NAME,
    PART_TIMEOUT,
    REPEATS,
    UPSERT,
    Part,
    memory,
    rows,
)

import anda
from anda.bulk import Upsert

# The script that runs one memory part when given --part.
STRESS = Path(__file__).resolve().with_name("stress.py")


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


def maximal_batch(operations: int, command_bytes: int) -> dict[str, Any]:
    """REPEATS rounds, each on a new store: a sequence batch of ``operations``
    writes and an independent batch of ``operations`` reads, every command
    ``command_bytes`` long (a literal fills it; the parser takes 256 KiB).

    The peak is measured from after one round of the same batches with
    commands of a few bytes: what running such a batch costs at all (the
    store, the runtime's threads and their arenas, some 50 MiB) is not what
    its text costs, and at a small budget it would decide the ratio."""
    write = (
        'UPSERT CONCEPT ?p {{ MATCH {{ type: "Person", key: "k{i:03d}" }} '
        'SET FIELDS {{ name: "{fill}" }} }}'
    )
    read = 'FIND(?p.name) WHERE {{ ?p {{type: "Person", key: "{fill}"}} }}'
    statuses: list[str] = []
    seconds: list[float] = []

    def one_round(round_: int, size: int) -> list[Any]:
        with anda.Nexus() as nexus:
            for template, execution in ((write, "sequence"), (read, "independent")):
                filler = max(1, size - len(template.format(i=0, fill="")))
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
        return stored

    one_round(0, 0)
    statuses.clear()
    seconds.clear()
    with open("/proc/self/clear_refs", "w") as peak_reset:
        peak_reset.write("5")  # the peak (VmHWM) restarts from here
    before = memory()
    after: list[int] = []
    for round_ in range(REPEATS):
        stored = one_round(round_, command_bytes)
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
    argv = [sys.executable, str(STRESS), "--part", name, *map(str, args)]
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
        f"beyond a round of the same batches with commands of a few bytes stays under "
        f"{factor}x one batch's text, and resident memory after the last round "
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
