"""Every reliability harness, one after another, and one table of their figures.

    python tools/reliability/report.py           # small budgets (minutes)
    python tools/reliability/report.py --full    # each harness's full budget (hours)

Runs crash cycles (crash.py), power cuts (powercut.py; again with four
threads writing), injected storage
faults (faults.py), damaged stores (corrupt.py), fuzzing (tools/fuzz, needs
atheris) and stress
(stress.py), each in its own process writing JSON under bench-results/, then
prints each harness's summary line and a table. Exits 1 if any harness broke
its promise (or could not run), and writes bench-results/reliability.json.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results"

# name: (script, small budget, full budget, where it writes its figures)
HARNESSES: dict[str, tuple[str, list[str], list[str], list[str]]] = {
    "crash": (
        "tools/reliability/crash.py",
        ["--cycles", "10"],
        ["--cycles", "100"],
        ["--out", str(RESULTS / "crash.json")],
    ),
    "powercut": (
        "tools/reliability/powercut.py",
        ["--states", "40"],
        ["--states", "2000", "--calls", "80"],
        ["--out", str(RESULTS / "powercut.json")],
    ),
    "powercut-threads": (
        "tools/reliability/powercut.py",
        ["--states", "40", "--threads", "4"],
        ["--states", "1000", "--calls", "80", "--threads", "4"],
        ["--out", str(RESULTS / "powercut-threads.json")],
    ),
    "faults": (
        "tools/reliability/faults.py",
        ["--schedules", "25"],
        ["--schedules", "300"],
        ["--out", str(RESULTS / "faults.json")],
    ),
    "corrupt": (
        "tools/reliability/corrupt.py",
        ["--files", "4"],
        [],
        ["--out", str(RESULTS / "corrupt.json")],
    ),
    "fuzz": (
        "tools/fuzz/fuzz_execute.py",
        ["--runs", "20000"],
        ["--runs", "1000000"],
        ["--results", str(RESULTS / "fuzz.json")],
    ),
    "stress": (
        "tools/reliability/stress.py",
        ["--small"],
        [],
        ["--out", str(RESULTS / "stress.json")],
    ),
}


def summary(script: str, stdout: str) -> str:
    """The harness's own summary line (``powercut: ...`` from powercut.py);
    stress prints one row per part instead, summed up as each part's verdict."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    name = Path(script).stem
    if name == "stress":
        parts = (re.match(r"(.+?)\s{2,}(ok|FAIL)\b", line) for line in lines)
        return ", ".join(f"{part[1]} {part[2]}" for part in parts if part)
    return next((line for line in lines if line.startswith(f"{name}:")), "(no summary)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="each harness's full budget")
    parser.add_argument("--only", nargs="+", choices=sorted(HARNESSES), help="run only these")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    rows: list[dict[str, Any]] = []
    for name, (script, small, full, output) in HARNESSES.items():
        if args.only and name not in args.only:
            continue
        command = [sys.executable, str(ROOT / script), *(full if args.full else small), *output]
        started = time.monotonic()
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
        held = proc.returncode == 0
        rows.append(
            {
                "harness": name,
                "held": held,
                "seconds": round(seconds),
                "summary": summary(script, proc.stdout),
            }
        )
        print(
            f"[{'held' if held else 'BROKEN'}] {name} ({seconds:.0f} s): {rows[-1]['summary']}",
            flush=True,
        )
        if not held:
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
    width = max(len(row["harness"]) for row in rows)
    print()
    print(f"{'harness'.ljust(width)}  result  time   figures")
    for row in rows:
        verdict = "held" if row["held"] else "BROKEN"
        print(f"{row['harness'].ljust(width)}  {verdict:6}  {row['seconds']:4d}s  {row['summary']}")
    (RESULTS / "reliability.json").write_text(
        json.dumps({"budget": "full" if args.full else "small", "harnesses": rows}, indent=2)
    )
    return 0 if all(row["held"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
