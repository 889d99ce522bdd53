"""``python -m anda serve`` under load: client processes against one server.

Starts a server, then N client processes (each an ``anda.Client``) that start
together and send M mixed requests each: writes (``UPSERT`` of a key of their
own) and reads (``FIND`` of a key they wrote). Then it counts the stored
people against the acknowledged writes (lost or duplicated writes): for a
directory store after stopping the server with SIGTERM and reopening the
store, for an in-memory one through the server before stopping it. Prints
one JSON object: latency percentiles, requests per second, errors and the
write check. Targets are reported, never asserted.

A directory store makes every write durable before it is acknowledged
(fsync), which dominates write latency on most disks; ``--store memory``
measures the server itself.

    python tools/anda_bench/server_bench.py --processes 8 --requests 1000 --store memory
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

UPSERT = 'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }'
FIND = 'FIND(?p.name) WHERE { ?p {type: "Person", key: :key} }'
COUNT = 'FIND(COUNT(?p)) WHERE { ?p {type: "Person"} }'
READY_SECONDS = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _worker(url: str, n: int, count: int, write_ratio: float) -> None:
    """One client process: waits for "go" on stdin, prints its latencies as JSON."""
    import anda

    rng = random.Random(n)
    written: list[str] = []
    latencies: list[float] = []
    errors: list[str] = []
    with anda.Client(url) as client:
        print("ready", flush=True)
        sys.stdin.readline()
        for _ in range(count):
            write = not written or rng.random() < write_ratio
            key = f"bench{n}-{len(written)}" if write else rng.choice(written)
            started = time.perf_counter()
            try:
                if write:
                    client.execute_kip(UPSERT, {"key": key, "name": key})
                else:
                    names = client.execute_kip(FIND, {"key": key})["results"][0]["result"]
                    if names != [key]:
                        errors.append(f"read {key}: {names!r}")
            except anda.AndaError as err:
                errors.append(f"{type(err).__name__}: {err}")
            else:
                if write:
                    written.append(key)
            latencies.append((time.perf_counter() - started) * 1000)
    print(json.dumps({"latencies_ms": latencies, "writes": len(written), "errors": errors}))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _wait_ready(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the server exited before it was ready")
        try:
            with urllib.request.urlopen(url + "/", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not become ready")


def _count(memory: Any) -> int:
    count: int = memory.execute_kip(COUNT)["results"][0]["result"][0]
    return count


def run(processes: int, requests: int, write_ratio: float, store: Path | None) -> dict[str, Any]:
    import anda

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    where = [] if store is None else ["--db", str(store)]
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "anda", "serve", *where, "--port", str(port)),
            *("--log-level", "warning", "--max-in-flight", str(max(64, processes * 2))),
        ],
        env={key: value for key, value in os.environ.items() if key != "ANDA_DB"},
    )
    try:
        _wait_ready(server, url)
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    url,
                    str(n),
                    str(requests),
                    str(write_ratio),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(processes)
        ]
        for worker in workers:
            assert worker.stdout is not None
            if worker.stdout.readline().strip() != "ready":
                raise SystemExit("a client process failed to start")
        started = time.perf_counter()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        reports = [json.loads(worker.communicate(timeout=3600)[0]) for worker in workers]
        elapsed = time.perf_counter() - started
        if store is None:
            with anda.Client(url) as client:
                stored = _count(client)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=300)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    if store is not None:
        with anda.Nexus(store) as nexus:
            stored = _count(nexus)
    latencies = [ms for report in reports for ms in report["latencies_ms"]]
    writes = sum(report["writes"] for report in reports)
    errors = [error for report in reports for error in report["errors"]]
    return {
        "store": "memory" if store is None else "directory",
        "processes": processes,
        "requests_per_process": requests,
        "write_ratio": write_ratio,
        "requests": len(latencies),
        "seconds": round(elapsed, 3),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_percentile(latencies, 0.50), 3),
        "p99_ms": round(_percentile(latencies, 0.99), 3),
        "mean_ms": round(statistics.fmean(latencies), 3),
        "errors": len(errors),
        "first_errors": errors[:5],
        "acknowledged_writes": writes,
        "stored_people": stored,
        "lost_or_duplicated_writes": stored - writes,
        "server_exit_status": server.returncode,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, n, count, ratio = sys.argv[2:6]
        _worker(url, int(n), int(count), float(ratio))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1000, help="requests per process")
    parser.add_argument("--write-ratio", type=float, default=0.3)
    parser.add_argument("--store", choices=("directory", "memory"), default="directory")
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="anda-server-bench-") as scratch:
        store = None if args.store == "memory" else Path(scratch) / "store"
        report = run(args.processes, args.requests, args.write_ratio, store)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        os.makedirs(args.json.parent, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
