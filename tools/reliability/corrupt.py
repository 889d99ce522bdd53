"""Damaged stores: every file a store holds, damaged one at a time.

``python tools/reliability/corrupt.py [--files N] [--seed S] [--out PATH]``

Builds a small directory store (12 people, their names and relations), then
for each chosen file and each kind of damage (truncate, zero-fill, flip
bytes, delete, replace with a directory) copies the store, damages the copy
and, in a fresh process bounded in time, opens it and reads every person
back. Each outcome is one of:

- ``refused``: a typed ``anda.StoreError`` (or subclass) naming the problem;
- ``engine_error``: the engine refused the read with a typed ``anda.KipError``;
- ``correct``: the answer is exactly what was written;
- ``wrong_reported``: an answer that differs from what was written, and
  :meth:`anda.Nexus.verify` (``python -m anda check``) names the damage;
- ``wrong``: an answer that differs from what was written, and nothing says so;
- ``crash``: the process died or raised something that is not anda's;
- ``hang``: it did not finish within the time bound.

The promise: no ``wrong``, no ``crash``, no ``hang``. (``wrong_reported``
exists because the pinned engine's KQL treats a record it cannot read as
absent; anda refuses what the engine reports, and ``verify`` finds the rest.) Every file under the
concepts' ``data/`` directory is chosen (the measured silent case; or
``--data-files`` of them), and ``--files`` more at random (seeded). Exit status 1 if the promise
broke. Prints one line and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

DAMAGES = ("truncate", "zero", "flip", "delete", "directory")
PEOPLE = [(f"p{i:02d}", f"Person {i}") for i in range(12)]
UPSERT = 'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }'
FIND = 'FIND(?p.key, ?p.name) WHERE { ?p {type: "Person"} } ORDER BY ?p.key ASC'
EXPECTED = [[key, name] for key, name in PEOPLE]
TIME_BOUND = 60.0

# Runs in a fresh interpreter: open, read, report one JSON line.
CHILD = """
import json, sys
import anda
try:
    with anda.Nexus(sys.argv[1]) as nexus:
        rows = nexus.execute_kip(sys.argv[2])["results"][0]["result"]
        problems = [str(problem) for problem in nexus.verify().problems]
    print(json.dumps({"rows": rows, "problems": problems}))
except anda.StoreError as err:
    print(json.dumps({"store_error": type(err).__name__, "message": str(err)}))
except anda.KipError as err:
    print(json.dumps({"kip_error": err.code, "message": str(err)}))
"""


def build(store: Path) -> None:
    import anda

    with anda.Nexus(store) as nexus:
        nexus.execute_kip([(UPSERT, {"key": k, "name": n}) for k, n in PEOPLE])
        nexus.execute_kip(
            'MUTATE { UPSERT CONCEPT ?a { MATCH {type: "Person", key: "p00"} } '
            'UPSERT CONCEPT ?b { MATCH {type: "Person", key: "p01"} } '
            'ASSERT (?a, "knows", ?b) { by: ?a, mode: "stated" } }'
        )


def damage(path: Path, kind: str, rng: random.Random) -> None:
    if kind == "delete":
        path.unlink()
    elif kind == "directory":
        path.unlink()
        path.mkdir()
    else:
        data = bytearray(path.read_bytes())
        if kind == "truncate":
            data = data[: len(data) // 2]
        elif kind == "zero":
            data = bytearray(len(data))
        else:  # flip a few bytes
            for _ in range(max(1, len(data) // 64)):
                if data:
                    data[rng.randrange(len(data))] ^= 0xFF
        path.write_bytes(bytes(data))


def outcome(store: Path) -> tuple[str, str]:
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(store), FIND],
            capture_output=True,
            text=True,
            timeout=TIME_BOUND,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "hang", f"no answer within {TIME_BOUND:.0f}s"
    if proc.returncode != 0 or not proc.stdout.strip():
        return "crash", f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if "store_error" in report:
        return "refused", report["message"][:200]
    if "kip_error" in report:
        return "engine_error", report["message"][:200]
    if report["rows"] == EXPECTED:
        return "correct", ""
    if report["problems"]:
        return "wrong_reported", report["problems"][0][:200]
    return "wrong", f"{len(report['rows'])} rows: {report['rows']!r}"[:300]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20, help="files drawn besides concept data")
    parser.add_argument(
        "--data-files", type=int, default=None, help="concept data files (default: all)"
    )
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--out", default="bench-results/corrupt.json")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        pristine = Path(tmp) / "pristine"
        build(pristine)
        files = sorted(p.relative_to(pristine) for p in pristine.rglob("*") if p.is_file())
        files = [f for f in files if f.name != "anda.lock"]
        data = [f for f in files if "concepts/data" in f.as_posix()]
        others = [f for f in files if f not in data]
        if args.data_files is not None:
            data = rng.sample(data, min(args.data_files, len(data)))
        chosen = data + rng.sample(others, min(args.files, len(others)))
        results: Counter[str] = Counter()
        findings: list[dict[str, Any]] = []
        for relative in chosen:
            for kind in DAMAGES:
                copy = Path(tmp) / "copy"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(pristine, copy)
                damage(copy / relative, kind, rng)
                verdict, detail = outcome(copy)
                results[verdict] += 1
                if verdict in {"wrong", "crash", "hang"}:
                    findings.append(
                        {
                            "file": relative.as_posix(),
                            "damage": kind,
                            "verdict": verdict,
                            "detail": detail,
                        }
                    )
    figures = {
        "files": len(chosen),
        "damaged_copies": sum(results.values()),
        "outcomes": dict(results),
        "findings": findings,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(
        f"corrupt: {figures['damaged_copies']} damaged copies of {len(chosen)} files: "
        + ", ".join(
            f"{results[k]} {k}"
            for k in (
                "refused",
                "engine_error",
                "correct",
                "wrong_reported",
                "wrong",
                "crash",
                "hang",
            )
        )
    )
    for finding in findings:
        print(f"  {finding['verdict']}: {finding['damage']} {finding['file']}: {finding['detail']}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
