"""Every reliability harness, one after another, and one table of their figures.

    python tools/reliability/report.py           # small budgets (minutes)
    python tools/reliability/report.py --full    # each harness's full budget (hours)

Runs crash cycles (crash.py), injected storage faults (faults.py), damaged
stores (corrupt.py), fuzzing (tools/fuzz, needs atheris) and stress
(stress.py), each in its own process writing JSON under bench-results/, then
prints each harness's summary line and a table. Exits 1 if any harness broke
its promise (or could not run), and writes bench-results/reliability.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results"

# name: (script, small budget, full budget)
HARNESSES: dict[str, tuple[str, list[str], list[str]]] = {
    "crash cycles": ("tools/reliability/crash.py", ["--cycles", "10"], ["--cycles", "100"]),
    "storage faults": (
        "tools/reliability/faults.py",
        ["--schedules", "25"],
        ["--schedules", "300"],
    ),
    "damaged stores": ("tools/reliability/corrupt.py", ["--files", "4"], []),
    "fuzzing": ("tools/fuzz/fuzz_execute.py", ["--runs", "20000"], ["--runs", "1000000"]),
    "stress": ("tools/reliability/stress.py", ["--small"], []),
}
OUTPUTS = {
    "crash cycles": ["--out", str(RESULTS / "crash.json")],
    "storage faults": ["--out", str(RESULTS / "faults.json")],
    "damaged stores": ["--out", str(RESULTS / "corrupt.json")],
    "fuzzing": ["--results", str(RESULTS / "fuzz.json")],
    "stress": ["--out", str(RESULTS / "stress.json")],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="each harness's full budget")
    parser.add_argument("--only", nargs="+", choices=sorted(HARNESSES), help="run only these")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    rows = []
    for name, (script, small, full) in HARNESSES.items():
        if args.only and name not in args.only:
            continue
        command = [sys.executable, str(ROOT / script), *(full if args.full else small)]
        command += OUTPUTS[name]
        started = time.monotonic()
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        # Each harness prints its summary as the first line naming it, else last.
        prefix = name.split()[0][:5]
        summary = next((line for line in lines if line.lower().startswith(prefix)), "")
        if not summary:
            tail = lines or proc.stderr.strip().splitlines() or [""]
            summary = tail[-1]
        held = proc.returncode == 0
        rows.append({"harness": name, "held": held, "seconds": round(seconds), "summary": summary})
        print(f"[{'held' if held else 'BROKEN'}] {name} ({seconds:.0f} s): {summary}", flush=True)
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
