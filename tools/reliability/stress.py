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
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anda

# The parts live beside this file (run as a script, or loaded by the tests).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stress_threads
from _stress_common import FIND_NAME as FIND_NAME  # the tests use these through this module
from _stress_common import UPSERT as UPSERT
from _stress_common import Part
from _stress_memory import (
    MEMORY_PARTS,
    large_result_part,
    maximal_batch_part,
    open_close_cycles_part,
)
from _stress_threads import (
    async_stress,
    close_while_in_use,
    open_close_concurrently,
    thread_stress,
)

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

    _stress_threads.report_on_deadlock = report
    finished = _stress_threads.finished_parts
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
        finished.append(part)
        verdict = "ok" if part.ok else "FAILED"
        took = time.monotonic() - started
        print(f"stress: {part.name}: {verdict} ({took:.0f} s)", file=sys.stderr, flush=True)
        # Figures so far, so a long run stopped early still leaves them.
        write_figures(finished, complete=False)
    return 0 if report(finished) else 1


if __name__ == "__main__":
    sys.exit(main())
