"""Which allocator anda should link: the native benchmark's query mix under
the system allocator, mimalloc and jemalloc.

    nox -s allocators                       # builds what it needs, then runs this
    python tools/anda_bench/allocators.py --native PATH [--scale 0.2] [--rounds 2]

``PATH`` is ``anda-bench-native`` built with the system allocator (cargo
feature ``anda_embedded/system-allocator``); mimalloc and jemalloc are put in
with ``LD_PRELOAD`` (Debian's ``libmimalloc2.0`` and ``libjemalloc2``), so one
binary runs under all three. Rounds alternate the allocators, so a busy
machine slows each alike. Prints one table of medians and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench  # the same workload as nox -s bench

PRELOADS = {
    "mimalloc": "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
    "jemalloc": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--native", required=True, help="a system-allocator anda-bench-native")
    parser.add_argument("--scale", type=float, default=0.2)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="bench-results/allocators.json")
    args = parser.parse_args()
    allocators: dict[str, str | None] = {"system": None}
    allocators |= {name: lib for name, lib in PRELOADS.items() if Path(lib).exists()}
    data = bench.workload(args.scale, args.iterations)
    samples: dict[str, dict[str, list[int]]] = {name: {} for name in allocators}
    load: dict[str, list[float]] = {name: [] for name in allocators}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "workload.json"
        path.write_text(json.dumps(data))
        for _ in range(args.rounds):
            for name, lib in allocators.items():
                env = dict(os.environ, **({"LD_PRELOAD": lib} if lib else {}))
                out = json.loads(
                    subprocess.check_output([args.native, str(path)], env=env, text=True)
                )
                load[name].append(out["load_seconds"])
                for query, times in out["samples_ns"].items():
                    samples[name].setdefault(query, []).extend(times)
    medians = {
        name: {query: statistics.median(times) / 1000 for query, times in by_query.items()}
        for name, by_query in samples.items()
    }
    print(f"{'median, µs':22}" + "".join(f"{name:>12}" for name in allocators))
    for query in medians["system"]:
        print(f"{query:22}" + "".join(f"{medians[name][query]:>12,.0f}" for name in allocators))
    print(f"{'load, s':22}" + "".join(f"{min(load[name]):>12.1f}" for name in allocators))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {"scale": args.scale, "rounds": args.rounds, "median_us": medians, "load_s": load},
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
