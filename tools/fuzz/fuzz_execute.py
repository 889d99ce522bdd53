"""Coverage-guided fuzzing of anda's execute_kip, call_tool and bulk_write with atheris.

    python tools/fuzz/fuzz_execute.py --runs 1000000      # or: nox -s fuzz -- 1000000
    python tools/fuzz/fuzz_execute.py --seconds 120
    python tools/fuzz/fuzz_execute.py --regenerate-seeds  # rewrites tools/fuzz/corpus/
    python tools/fuzz/fuzz_execute.py --replay tools/fuzz/crashes/crash-...

The run happens in a child process (atheris/libFuzzer own it and exit it
directly), which this process watches: it echoes libFuzzer's log, reads its
counters, and writes bench-results/fuzz.json. A finding is an exception anda
must not raise (see fuzz_target.Target.run), an engine panic, a crash or abort,
an input over the time bound, or running out of memory; libFuzzer (or the
watchdog) writes its input to tools/fuzz/crashes/. Exit status 1 if any.

Coverage is what atheris reports: bytecode edges (``cov``) and features
(``ft``) of anda's Python layer and of the decoder in fuzz_target.py, plus one
edge per outcome-feedback bucket (see _outcome_feedback). The Rust engine is
not instrumented: its parser and executor are reached through the seeds, a
dictionary of KIP tokens, mutation, and the engine's outcomes fed back.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any

from fuzz_seeds import kip_dictionary, regenerate_seeds

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CORPUS = HERE / "corpus"
CRASHES = HERE / "crashes"
RESULTS = ROOT / "bench-results" / "fuzz.json"
# What libFuzzer names its reproducers; other files in crashes/ are not inputs.
REPRODUCER_PREFIXES = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-", "finding-")
MAX_LEN = 16 * 1024
FEEDBACK_BUCKETS = 4096
SEED_MAX_LEN = MAX_LEN


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("budget", nargs="?", type=int, help="executions (same as --runs)")
    parser.add_argument("--runs", type=int, help="executions to run (default 1000000)")
    parser.add_argument("--seconds", type=int, help="stop after this long instead (or as well)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="seed corpus directory")
    parser.add_argument(
        "--work-dir", type=Path, help="where new inputs are kept (default: a temporary dir)"
    )
    parser.add_argument("--timeout", type=int, default=10, help="per-input time bound, s")
    parser.add_argument("--rss-limit-mb", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0, help="libFuzzer seed (0: random)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--no-feedback",
        dest="feedback",
        action="store_false",
        help="no coverage edges for the engine's outcomes (Python coverage only)",
    )
    parser.add_argument("--regenerate-seeds", action="store_true")
    parser.add_argument(
        "--replay", type=Path, nargs="+", metavar="FILE", help="run inputs once (no atheris)"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.budget is not None:
        args.runs = args.budget
    if args.runs is None and args.seconds is None:
        args.runs = 1_000_000
    if args.regenerate_seeds:
        return regenerate_seeds(args.corpus, SEED_MAX_LEN)
    if args.replay:
        return replay(args.replay)
    if args.worker:
        return worker(args)
    return supervise(args)


def replay(paths: list[Path]) -> int:
    """Runs each input once, printing its call and outcome; a finding raises."""
    sys.path.insert(0, str(HERE))
    import fuzz_target

    target = fuzz_target.Target()
    for path in paths:
        data = path.read_bytes()
        print(f"{path}: {fuzz_target.decode(data)!r:.300}")
        print(f"  -> {target.run(data)}")
    return 0


# ---------------------------------------------------------------------------
# The child: atheris around one long-lived Target
# ---------------------------------------------------------------------------


def worker(args: argparse.Namespace) -> int:
    import atheris

    # Instrument only anda's Python layer and the decoder (not the stdlib).
    with atheris.instrument_imports(include=["anda", "fuzz_target"]):
        import fuzz_target

        import anda

    target = fuzz_target.Target()
    watchdog = _Watchdog(args.timeout)
    stats: dict[str, Any] = {"runs": 0, "last_dump": 0.0, "seed_buckets": 0}
    # libFuzzer first runs the empty input and every file of both directories.
    initial_runs = 1 + sum(
        len(list(d.iterdir())) for d in (args.corpus, args.work_dir / "corpus") if d.is_dir()
    )
    feedback = _outcome_feedback(atheris) if args.feedback else None
    buckets: set[int] = set()
    signatures: set[str] = set()

    def dump() -> None:
        if args.stats is not None:
            args.stats.write_text(
                json.dumps(
                    {
                        "runs": target.runs,
                        "outcomes": dict(target.outcomes),
                        "seconds_by_mode": {k: round(v, 2) for k, v in target.seconds.items()},
                        "feedback_buckets": len(buckets),
                        "feedback_buckets_after_seeds": stats["seed_buckets"],
                        "signatures_seen": len(signatures),
                    }
                )
            )
        stats["last_dump"] = time.monotonic()

    def test_one_input(data: bytes) -> None:
        watchdog.start(data)
        try:
            target.run(data)
        finally:
            watchdog.stop()
        if feedback is not None:
            bucket = zlib.crc32(target.signature.encode("utf-8", "replace")) % FEEDBACK_BUCKETS
            buckets.add(bucket)
            feedback[bucket]()
        if len(signatures) < 100_000:
            signatures.add(target.signature)
        stats["runs"] += 1
        if stats["runs"] == initial_runs:  # libFuzzer's INITED: every seed run once
            stats["seed_buckets"] = len(buckets)
        # libFuzzer ends the process with exit(): no atexit, so dump as we go.
        if (args.runs and stats["runs"] >= args.runs) or time.monotonic() - stats[
            "last_dump"
        ] > 1.0:
            dump()

    work = args.work_dir
    dictionary = work / "kip.dict"
    dictionary.write_text(kip_dictionary(anda.tools.KIP_SYNTAX))
    flags = [
        f"-timeout={2 * args.timeout}",  # the watchdog's backstop
        f"-report_slow_units={args.timeout + 1}",
        f"-rss_limit_mb={args.rss_limit_mb}",
        f"-max_len={MAX_LEN}",
        f"-dict={dictionary}",
        f"-artifact_prefix={CRASHES}{os.sep}",
        f"-seed={args.seed}",
        "-print_final_stats=1",
    ]
    if args.runs:
        flags.append(f"-runs={args.runs}")
    if args.seconds:
        flags.append(f"-max_total_time={args.seconds}")
    # New inputs go to the first directory; the committed seeds stay as they are.
    atheris.Setup([sys.argv[0], *flags, str(work / "corpus"), str(args.corpus)], test_one_input)
    atheris.Fuzz()
    return 0  # not reached: libFuzzer exits the process


def _outcome_feedback(atheris: Any) -> list[Any]:
    """One instrumented function per bucket: calling one is one coverage edge.

    libFuzzer sees no Rust code, so without this a mutation that takes the
    parser one token further, or past it into the schema checks, looks like
    nothing new. The harness calls the function of the bucket its outcome's
    signature (mode, error code, message shape) hashes to, so new engine
    behaviour counts as new coverage (at most FEEDBACK_BUCKETS edges).
    """
    source = "\n".join(f"def f{i}():\n    return {i}" for i in range(FEEDBACK_BUCKETS))
    namespace: dict[str, Any] = {}
    exec(compile(source, "<outcome-feedback>", "exec"), namespace)
    return [atheris.instrument_func(namespace[f"f{i}"]) for i in range(FEEDBACK_BUCKETS)]


class _Watchdog:
    """The per-input time bound: an input still running after ``seconds`` is
    written to crashes/ and the process ends (the engine releases the GIL
    while it works, so this thread gets to run)."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        self._data: bytes | None = None
        self._started = 0.0
        threading.Thread(target=self._watch, daemon=True, name="fuzz-watchdog").start()

    def start(self, data: bytes) -> None:
        self._started = time.monotonic()
        self._data = data

    def stop(self) -> None:
        self._data = None

    def _watch(self) -> None:
        while True:
            time.sleep(0.25)
            data, started = self._data, self._started
            if data is not None and time.monotonic() - started > self.seconds:
                path = CRASHES / f"timeout-{hashlib.sha1(data).hexdigest()}"
                CRASHES.mkdir(exist_ok=True)
                path.write_bytes(data)
                sys.stderr.write(f"\n==fuzz== input ran over {self.seconds} s; written to {path}\n")
                sys.stderr.flush()
                os._exit(70)  # libFuzzer's timeout status


# ---------------------------------------------------------------------------
# The parent: runs the child, reads its log, writes the results
# ---------------------------------------------------------------------------

_STATUS = re.compile(
    r"^#(\d+)\s+(\w+)\s+(?:cov: (\d+) ft: (\d+) )?corp: (\d+)/(\S+)"
    r".*?exec/s: (\d+) rss: (\d+)Mb"
)
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)")


def _reproducers() -> set[str]:
    if not CRASHES.is_dir():
        return set()
    return {p.name for p in CRASHES.iterdir() if p.name.startswith(REPRODUCER_PREFIXES)}


def supervise(args: argparse.Namespace) -> int:
    try:
        import atheris  # noqa: F401 - only to fail early, with a clear message
    except ImportError:
        print("fuzzing needs atheris: pip install -r requirements/fuzz.txt", file=sys.stderr)
        return 2
    CRASHES.mkdir(exist_ok=True)
    before = _reproducers()
    with tempfile.TemporaryDirectory(prefix="anda-fuzz-") as scratch:
        work = args.work_dir or Path(scratch)
        (work / "corpus").mkdir(parents=True, exist_ok=True)
        stats_path = Path(scratch) / "outcomes.json"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            f"--corpus={args.corpus}",
            f"--work-dir={work}",
            f"--timeout={args.timeout}",
            f"--rss-limit-mb={args.rss_limit_mb}",
            f"--seed={args.seed}",
            f"--stats={stats_path}",
        ]
        if not args.feedback:
            command.append("--no-feedback")
        if args.runs:
            command.append(f"--runs={args.runs}")
        if args.seconds:
            command.append(f"--seconds={args.seconds}")
        started = time.monotonic()
        log = _run_and_read(command)
        elapsed = time.monotonic() - started
        outcomes = json.loads(stats_path.read_text()) if stats_path.exists() else {}
        new_inputs = len(list((work / "corpus").iterdir()))
    findings = sorted(_reproducers() - before)
    if log["returncode"] != 0 and not findings:
        findings.append(f"(worker exit status {log['returncode']} without a reproducer)")
    report = _report(args, log, elapsed, outcomes, findings, new_inputs)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(report, indent=2) + "\n")
    _print_summary(report, args.results)
    return 1 if findings else 0


def _run_and_read(command: list[str]) -> dict[str, Any]:
    """Runs the worker, echoing its log, and keeps the counters it reports."""
    log: dict[str, Any] = {"status": None, "inited": None, "stats": {}}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env=env,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stderr.write(line)
            if match := _STATUS.match(line):
                status = {
                    "executions": int(match[1]),
                    "event": match[2],
                    "cov": int(match[3]) if match[3] else None,
                    "ft": int(match[4]) if match[4] else None,
                    "corpus_units": int(match[5]),
                    "corpus_size": match[6],
                    "exec_per_sec": int(match[7]),
                    "rss_mb": int(match[8]),
                }
                log["status"] = status
                if status["event"] == "INITED":
                    log["inited"] = status
            elif match := _STAT.match(line):
                log["stats"][match[1]] = int(match[2])
            elif match := re.match(r"^INFO: Seed: (\d+)", line):
                log["seed"] = int(match[1])
        log["returncode"] = proc.wait()
    return log


def _report(
    args: argparse.Namespace,
    log: dict[str, Any],
    elapsed: float,
    outcomes: dict[str, Any],
    findings: list[str],
    new_inputs: int,
) -> dict[str, Any]:
    import importlib.metadata

    import anda

    status = log["status"] or {}
    cov = status.get("cov")
    buckets = outcomes.get("feedback_buckets", 0)
    seeds_cov = (log["inited"] or {}).get("cov")
    seeds_buckets = outcomes.get("feedback_buckets_after_seeds", 0)
    executions = log["stats"].get("number_of_executed_units", status.get("executions", 0))
    return {
        "executions": executions,
        "seconds": round(elapsed, 1),
        "exec_per_sec": round(executions / elapsed, 1) if elapsed else None,
        "coverage": {
            "note": "atheris counters. cov = Python bytecode edges of anda's Python layer and "
            "the harness decoder + one edge per outcome-feedback bucket hit (engine outcome "
            "signatures: mode, error code, message shape); ft = libFuzzer features over those. "
            "The Rust engine itself is not instrumented.",
            "cov": cov,
            "ft": status.get("ft"),
            "feedback_buckets": buckets,
            "python_cov": cov - buckets if cov is not None else None,
            "cov_after_seeds": seeds_cov,
            "ft_after_seeds": (log["inited"] or {}).get("ft"),
            "feedback_buckets_after_seeds": seeds_buckets,
            "python_cov_after_seeds": (
                seeds_cov - seeds_buckets if seeds_cov is not None else None
            ),
            "outcome_signatures_seen": outcomes.get("signatures_seen"),
            "corpus_units": status.get("corpus_units"),
            "corpus_size": status.get("corpus_size"),
            "new_inputs_kept": new_inputs,
        },
        "findings": findings,
        "libfuzzer": log["stats"],
        "outcomes": outcomes.get("outcomes", {}),
        "outcomes_runs": outcomes.get("runs"),
        "seconds_by_mode": outcomes.get("seconds_by_mode", {}),
        "config": {
            "runs": args.runs,
            "seconds": args.seconds,
            "timeout_s": args.timeout,
            "rss_limit_mb": args.rss_limit_mb,
            "seed": log.get("seed", args.seed),
            "corpus": str(args.corpus),
            "seed_files": len(list(args.corpus.iterdir())),
            "max_len": MAX_LEN,
        },
        "versions": {
            "anda": anda.__version__,
            "anda_engine": anda.ENGINE_VERSION,
            "atheris": importlib.metadata.version("atheris"),
            "python": platform.python_version(),
        },
        "worker_exit_status": log["returncode"],
    }


def _print_summary(report: dict[str, Any], path: Path) -> None:
    cov = report["coverage"]
    print(
        f"fuzz: {report['executions']:,} executions in {report['seconds']} s "
        f"({report['exec_per_sec']} exec/s); findings: {len(report['findings'])}"
    )
    print(
        f"fuzz: coverage cov {cov['cov']} ft {cov['ft']} = Python edges {cov['python_cov']} "
        f"+ outcome buckets {cov['feedback_buckets']} "
        f"(after the seeds: cov {cov['cov_after_seeds']}, Python edges "
        f"{cov['python_cov_after_seeds']}, buckets {cov['feedback_buckets_after_seeds']})"
    )
    for finding in report["findings"]:
        print(f"  finding: {CRASHES / finding}")
    print(f"fuzz: results in {path}")


if __name__ == "__main__":
    sys.exit(main())
