"""The three kinds of store side by side: in memory, a directory, and a bucket
(moto's S3 server on loopback, started here as a subprocess).

For each: the time to open a new store and to reopen it, one write (median of
single UPSERTs), a point lookup by key (median), and load throughput through
``bulk_write``. Prints a table and writes JSON. Targets are reported, never
asserted. A loopback S3 server measures anda's own cost per request round
trip; a real bucket adds the network's.

    python tools/anda_bench/store_bench.py --json bench-results/stores.json
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anda

UPSERT = 'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }'
FIND = 'FIND(?p.name) WHERE { ?p {type: "Person", key: :key} }'


@contextmanager
def s3_server() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
                break
            except OSError:
                time.sleep(0.2)
        urllib.request.urlopen(urllib.request.Request(f"{url}/anda-bench", method="PUT")).close()
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _median_ms(call: Callable[[int], Any], n: int) -> float:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1000, 3)


def measure(
    opener: Callable[[], anda.Nexus], reopenable: bool, n: int, load: int
) -> dict[str, Any]:
    started = time.perf_counter()
    nexus = opener()
    figures: dict[str, Any] = {"open_new_ms": round((time.perf_counter() - started) * 1000, 1)}
    with nexus:
        figures["write_ms"] = _median_ms(
            lambda i: nexus.execute_kip(UPSERT, {"key": f"w{i}", "name": f"W{i}"}), n
        )
        figures["lookup_ms"] = _median_ms(lambda i: nexus.execute_kip(FIND, {"key": f"w{i}"}), n)
        operations = [anda.bulk.Upsert("Person", f"l{i}", f"L{i}") for i in range(load)]
        started = time.perf_counter()
        nexus.bulk_write(operations)
        figures["load_per_s"] = round(load / (time.perf_counter() - started))
    if reopenable:
        started = time.perf_counter()
        with opener():
            figures["reopen_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=50, help="single writes and lookups timed")
    parser.add_argument("--load", type=int, default=2000, help="operations in the bulk load")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    results["memory"] = measure(anda.Nexus, False, args.writes, args.load)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store"
        results["directory"] = measure(lambda: anda.Nexus(path), True, args.writes, args.load)
    with s3_server() as endpoint:
        options = {
            "aws_endpoint": endpoint,
            "aws_allow_http": True,
            "aws_region": "us-east-1",
            "aws_access_key_id": "bench",
            "aws_secret_access_key": "bench",
        }
        url = f"s3://anda-bench/{uuid.uuid4().hex[:8]}"
        results["bucket (moto, loopback)"] = measure(
            lambda: anda.Nexus(url, storage_options=options), True, args.writes, args.load
        )
    columns = ("open_new_ms", "reopen_ms", "write_ms", "lookup_ms", "load_per_s")
    print(f"{'store':26}" + "".join(f"{c:>13}" for c in columns))
    for store, figures in results.items():
        print(f"{store:26}" + "".join(f"{figures.get(c, '-')!s:>13}" for c in columns))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
