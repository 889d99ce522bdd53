"""Crash cycles: a writer is SIGKILLed at random moments; every write it had
acknowledged must survive, and nothing half-applied may be visible.

One store serves every cycle, so state accumulates as an agent's memory does.
Each cycle a writer process opens the store and writes at random: single
upserts, sequence and independent batches, MUTATE transactions, relations by
ASSERT, bulk_write chunks and tombstones. Before each call it logs the call's
effects; after the call returns, it logs an acknowledgement. The parent kills
it after a random delay (now and then while it is still opening the store),
then a fresh process reopens the store read-only, dumps it twice
(anda.testing.dump_store) and verifies it (Nexus.verify), and the dump is
compared with a model built from the logs. Every acknowledged write must be
there with its last acknowledged value; the one call in flight may show as
any outcome the engine allows (a prefix of a sequence batch, any part of an
independent batch, whole chunks of a bulk write, a MUTATE all or nothing);
nothing else may appear.

    python tools/reliability/crash.py --cycles 100 --seed 1

Prints one summary line, writes the figures as JSON (``--out``) and exits 1 on
any lost or phantom write, failed reopen, torn transaction, writer error or
inconsistent dump.

The model and its judgement are in _crash_model.py, the writer's workload in
_crash_writer.py; this file runs the cycles and the writer and checker processes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The model and the writer live beside this file (run as a script, or loaded by the tests).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _crash_model import Call as Call  # the tests use it through this module
from _crash_model import Model, judge, model_from_dump, read_log, torn_transactions
from _crash_writer import Writer

# -- the store ----------------------------------------------------------------


def open_store(target: str, *, readonly: bool = False) -> Any:
    """Opens the store under test. The one place that knows what kind it is
    (a bucket-backed store will be chosen here by the form of ``target``)."""
    import anda

    return anda.Nexus(target, readonly=readonly)


# -- the writer and checker processes -------------------------------------------


def writer_main(args: argparse.Namespace) -> None:
    state = json.loads(Path(args.state).read_text())
    fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def log(record: dict[str, Any]) -> None:
        # One write(2) per line: the parent reads every line written before the kill.
        os.write(fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())

    nexus = open_store(args.store)
    log({"ready": True})
    writer = Writer(nexus, random.Random(f"{args.seed}/{args.cycle}"), args.cycle, state, log)
    try:
        writer.run()
    except Exception as err:
        log({"error": f"{type(err).__name__}: {err}"})
        raise


def checker_main(args: argparse.Namespace) -> None:
    from anda.testing import dump_store

    # A killed writer leaves its journal; a writable open replays it (a
    # read-only one refuses it), as docs/durability.md tells users to do.
    open_store(args.store).close()
    nexus = open_store(args.store, readonly=True)
    try:
        first, second = dump_store(nexus), dump_store(nexus)
        verified = nexus.verify()  # every record the store's metadata lists reads back
        report = {
            "dump": first,
            "stable": first == second,
            "verify": [str(problem) for problem in verified.problems],
        }
    finally:
        nexus.close()
    print(json.dumps(report))


# -- the parent ---------------------------------------------------------------

READY_TIMEOUT = 300.0  # opening a store, on a loaded machine
CHECK_TIMEOUT = 600.0
REAP_TIMEOUT = 60.0


@dataclass
class Figures:
    cycles: int = 0
    acknowledged_writes: int = 0
    acknowledged_by_kind: Counter[str] = field(default_factory=Counter)
    acknowledged_steps: int = 0
    lost: int = 0
    phantom: int = 0
    failed_reopens: int = 0
    torn_transactions: int = 0
    writer_errors: int = 0
    inconsistent_dumps: int = 0
    killed_while_opening: int = 0
    in_flight: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(
            (
                self.lost,
                self.phantom,
                self.failed_reopens,
                self.torn_transactions,
                self.writer_errors,
                self.inconsistent_dumps,
            )
        )

    def problem(self, text: str) -> None:
        print(f"crash: {text}", file=sys.stderr, flush=True)
        self.problems.append(text)


def _script(mode: str, *args: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), mode, *args]


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=REAP_TIMEOUT)


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def run_writer(
    store: str, logs: Path, cycle: int, seed: int, rng: random.Random, model: Model, args: Any
) -> Path:
    """Starts a writer and kills it at a random moment. Returns its log."""
    log, err, state = (logs / f"cycle-{cycle:04d}.{ext}" for ext in ("jsonl", "err", "json"))
    ephemeral = [
        key
        for (type_, key), (status, _, _) in model.concepts.items()
        if type_ == "Person" and key.startswith("e") and status == "active"
    ]
    state.write_text(json.dumps(sorted(ephemeral)))
    while_opening = rng.random() < args.open_kills
    delay = rng.uniform(0.0, 0.5) if while_opening else rng.uniform(args.min_delay, args.max_delay)
    argv = _script("writer", store, "--log", str(log), "--state", str(state))
    argv += ["--seed", str(seed), "--cycle", str(cycle)]
    with err.open("wb") as stderr:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
    try:
        if not while_opening:
            deadline = time.monotonic() + READY_TIMEOUT
            while not (log.exists() and b'"ready"' in log.read_bytes()):
                if process.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    raise WriterFailed(f"did not open the store in {READY_TIMEOUT:.0f} s", err)
                time.sleep(0.02)
        time.sleep(delay)
        exited = process.poll()
    finally:
        _kill(process)
    if exited is not None:
        # A writer only stops when killed: it failed (to open, or to write).
        raise WriterFailed(f"exited by itself with {exited}", err)
    return log


class WriterFailed(Exception):
    def __init__(self, what: str, err: Path) -> None:
        super().__init__(f"the writer {what}:\n{_tail(err)}")


def reopen_and_dump(store: str) -> dict[str, Any]:
    """Reopens the store in a new process; raises RuntimeError if it cannot."""
    try:
        proc = subprocess.run(
            _script("check", store),
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as err:  # run() has killed it
        raise RuntimeError(f"reopening took over {CHECK_TIMEOUT:.0f} s") from err
    if proc.returncode != 0:
        raise RuntimeError(f"reopening failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def run(args: argparse.Namespace) -> Figures:
    figures = Figures()
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="anda-crash-"))
    store, logs = work / "store", work / "logs"
    if store.exists() and any(store.iterdir()):
        raise SystemExit(f"{store} already holds a store; give a new --dir")
    logs.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    model, last_seq = Model(), 0
    started = time.monotonic()
    for cycle in range(1, args.cycles + 1):
        figures.cycles = cycle
        try:
            log = run_writer(str(store), logs, cycle, args.seed, rng, model, args)
        except WriterFailed as err:
            if read_log(logs / f"cycle-{cycle:04d}.jsonl")[0]:
                figures.writer_errors += 1
            else:
                figures.failed_reopens += 1
            figures.problem(f"cycle {cycle}: {err}")
            break
        ready, calls = read_log(log)
        figures.killed_while_opening += not ready
        for call in calls:
            if call.done:
                figures.acknowledged_by_kind[call.kind] += 1
                figures.acknowledged_steps += call.done
        try:
            report = reopen_and_dump(str(store))
        except RuntimeError as err:
            figures.failed_reopens += 1
            figures.problem(f"cycle {cycle}: {err}")
            break
        observed, problems = model_from_dump(report["dump"])
        if not report["stable"]:
            problems.append("two dumps in a row differ")
        problems += [f"verify: {problem}" for problem in report["verify"]]
        seq = report["dump"]["space_seq"]
        if seq < last_seq:
            problems.append(f"the commit sequence went back from {last_seq} to {seq}")
        last_seq = seq
        if problems:
            figures.inconsistent_dumps += 1
            figures.problem(f"cycle {cycle}: inconsistent dump: {problems[:5]}")
        verdict = judge(model, calls, observed)
        if verdict.matched is None:
            figures.lost += len(verdict.lost)
            figures.phantom += len(verdict.phantom)
            figures.torn_transactions += torn_transactions(verdict)
            shown = (verdict.lost + verdict.phantom + verdict.torn)[:10]
            figures.problem(f"cycle {cycle}: the store differs from every allowed outcome:")
            for line in shown:
                figures.problem(f"  {line}")
        elif verdict.in_flight != "none":
            figures.in_flight[verdict.in_flight] += 1
        # Carry on from what the store holds, so one loss is counted once.
        model = verdict.model
        if args.verbose:
            acked = sum(1 for call in calls if call.done)
            print(
                f"cycle {cycle}: {acked} acknowledged, in flight: {verdict.matched}, "
                f"{len(model.concepts)} concepts",
                flush=True,
            )
    figures.acknowledged_writes = sum(figures.acknowledged_by_kind.values())
    elapsed = time.monotonic() - started
    summary = summarize(figures, model, elapsed, args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    if figures.failed:
        print(f"crash: store and logs kept in {work}", file=sys.stderr)
    elif not args.dir:
        shutil.rmtree(work, ignore_errors=True)
    return figures


def summarize(figures: Figures, model: Model, elapsed: float, args: Any) -> dict[str, Any]:
    import anda

    by_kind = ", ".join(f"{n:,} {kind}" for kind, n in sorted(figures.acknowledged_by_kind.items()))
    print(
        f"crash: {figures.cycles} cycles, {figures.acknowledged_writes:,} acknowledged writes "
        f"({by_kind}), {figures.lost} lost, {figures.failed_reopens} failed reopens, "
        f"{figures.torn_transactions} torn transactions, {figures.phantom} phantom, "
        f"{figures.writer_errors} writer errors, {figures.inconsistent_dumps} inconsistent dumps",
        flush=True,
    )
    return {
        "cycles": figures.cycles,
        "seed": args.seed,
        "acknowledged_writes": figures.acknowledged_writes,
        "acknowledged_by_kind": dict(sorted(figures.acknowledged_by_kind.items())),
        "acknowledged_steps": figures.acknowledged_steps,
        "lost": figures.lost,
        "phantom": figures.phantom,
        "failed_reopens": figures.failed_reopens,
        "torn_transactions": figures.torn_transactions,
        "writer_errors": figures.writer_errors,
        "inconsistent_dumps": figures.inconsistent_dumps,
        "killed_while_opening": figures.killed_while_opening,
        "killed_mid_call": dict(figures.in_flight),
        "final_store": {
            "concepts": len(model.concepts),
            "tombstoned": sum(1 for c in model.concepts.values() if c[0] == "tombstoned"),
            "assertions": sum(model.assertions.values()),
        },
        "delay_s": [args.min_delay, args.max_delay],
        "elapsed_s": round(elapsed, 1),
        "anda": anda.__version__,
        "python": sys.version.split()[0],
        "problems": figures.problems[:50],
        "ok": not figures.failed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode")
    writer = sub.add_parser("writer", help=argparse.SUPPRESS)
    writer.add_argument("store")
    writer.add_argument("--log", required=True)
    writer.add_argument("--state", required=True)
    writer.add_argument("--seed", type=int, required=True)
    writer.add_argument("--cycle", type=int, required=True)
    check = sub.add_parser("check", help=argparse.SUPPRESS)
    check.add_argument("store")
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", help="work directory (store/, logs/), kept; default: a temp one")
    parser.add_argument("--out", default="bench-results/crash.json")
    parser.add_argument("--min-delay", type=float, default=0.05, help="seconds after ready")
    parser.add_argument("--max-delay", type=float, default=5.0, help="seconds after ready")
    parser.add_argument(
        "--open-kills", type=float, default=0.1, help="share of kills while the store opens"
    )
    parser.add_argument("--verbose", action="store_true", help="a line per cycle")
    args = parser.parse_args(argv)
    if args.mode == "writer":
        writer_main(args)
        return 0
    if args.mode == "check":
        checker_main(args)
        return 0
    return 1 if run(args).failed else 0


if __name__ == "__main__":
    sys.exit(main())
