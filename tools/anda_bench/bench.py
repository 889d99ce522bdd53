"""The binding's cost against native Rust, measured side by side (``nox -s bench``).

1. Generates a seeded workload (no downloaded data): ~10,000 concepts of four
   types with ~50,000 propositions, all loaded through KIP, and a query mix.
2. Loads it natively (``anda-bench-native``: the same ``EmbeddedNexus::execute``
   the binding calls) and through ``anda.Nexus``, each in a fresh process, one
   after the other; then the two time each query in turns, three rounds, so a
   drift of the machine during the run slows both sides alike.
3. Prints a table (median, p95 and binding / native per query) and writes it,
   with the other measurements, to ``bench-results/bench.json``.

Also measured: the binding's own cost per call (paired with the engine's time
for the same call), async over sync, one vs two threads on reads, the import
time of ``anda``, the extension's size, peak memory while loading, and the two
ways of bringing results into Python.
Targets are reported, never asserted.
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
from typing import Any

# The benchmark's parts live beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_binding import python_side
from _bench_growth import GROWTH_SIZES, QUICK_GROWTH_SIZES, growth_chart, growth_side
from _bench_workload import SEED, TRIVIAL, workload

# -- the two sides ------------------------------------------------------------------


class _Side:
    """One side of the comparison, a process that loads the workload and
    then times the queries it is asked for, one JSON line per answer."""

    def __init__(self, argv: list[str]) -> None:
        self._name = argv[0]
        self._process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.loaded = self._answer()

    def _answer(self) -> Any:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self._name} ended (exit {self._process.wait()})")
        return json.loads(line)

    def time(self, name: str, count: int) -> list[int]:
        assert self._process.stdin is not None
        self._process.stdin.write(f"{name} {count}\n")
        self._process.stdin.flush()
        samples: list[int] = self._answer()
        return samples

    def finish(self) -> Any:
        """Closes stdin and returns the side's last answer."""
        assert self._process.stdin is not None
        self._process.stdin.close()
        last = self._answer()
        if self._process.wait() != 0:
            raise RuntimeError(f"{self._name} failed")
        return last


#: Query by query, the two sides take turns this many times (who goes first
#: alternates), so a machine that drifts during the run slows both alike.
ROUNDS = 3


def _compare(
    native: _Side, binding: _Side, data: dict[str, Any]
) -> dict[str, dict[str, list[int]]]:
    samples: dict[str, dict[str, list[int]]] = {"native": {}, "binding": {}}
    per_round = -(-data["iterations"] // ROUNDS)
    for lap in range(ROUNDS):
        for query in data["queries"]:
            name = query["name"]
            turns = [("native", native), ("binding", binding)]
            for side, process in turns if lap % 2 == 0 else reversed(turns):
                samples[side].setdefault(name, []).extend(process.time(name, per_round))
    return samples


# -- the driver ---------------------------------------------------------------------


def _stats(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_us": statistics.median(ordered) / 1000, "p95_us": p95 / 1000}


def _import_time(runs: int = 10) -> float:
    code = "import time; t = time.perf_counter(); import anda; print(time.perf_counter() - t)"
    best = min(
        float(subprocess.check_output([sys.executable, "-c", code], text=True)) for _ in range(runs)
    )
    return best * 1000


def _extension_size() -> int:
    import anda._anda

    return Path(anda._anda.__file__ or "").stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--native", help="path of the anda-bench-native binary")
    parser.add_argument("--out", default="bench-results/bench.json")
    parser.add_argument("--scale", type=float, default=1.0, help="workload size factor")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--wheel", help="a built wheel whose size to report")
    parser.add_argument("--profile", default="release", help="the cargo profile built")
    parser.add_argument(
        "--quick", action="store_true", help="growth curve up to 10k concepts, not 50k"
    )
    parser.add_argument("--chart", default="docs/growth.png", help="where to draw the curve")
    parser.add_argument("--python-side", help=argparse.SUPPRESS)
    parser.add_argument("--growth-side", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.python_side:
        python_side(Path(args.python_side))
        return 0
    if args.growth_side:
        sizes = [int(size) for size in args.growth_side.split(",")]
        print(json.dumps(growth_side(sizes)))
        return 0
    if not args.native:
        parser.error("--native is required")

    data = workload(args.scale, args.iterations)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "workload.json"
        path.write_text(json.dumps(data))
        print(
            f"workload: {data['concepts']} concepts, {data['propositions']} propositions",
            flush=True,
        )
        # One side loads at a time, so the load times do not share the CPUs.
        native_side = _Side([args.native, str(path)])
        print(f"native: loaded in {native_side.loaded['load_seconds']:.1f}s", flush=True)
        binding_side = _Side([sys.executable, __file__, "--python-side", str(path)])
        print(f"binding: loaded in {binding_side.loaded['load_seconds']:.1f}s", flush=True)
        samples = _compare(native_side, binding_side, data)
        native_handoff = native_side.time(f"handoff {TRIVIAL}", args.iterations * 4)
        native = {**native_side.loaded, **native_side.finish(), "samples_ns": samples["native"]}
        binding = {
            **binding_side.loaded,
            **binding_side.finish(),
            "samples_ns": samples["binding"],
        }
    sizes = QUICK_GROWTH_SIZES if args.quick else GROWTH_SIZES
    growth = json.loads(
        subprocess.check_output(
            [sys.executable, __file__, "--growth-side", ",".join(map(str, sizes))], text=True
        )
    )
    growth_chart(growth, Path(args.chart), args.profile)

    rows = []
    for query in data["queries"]:
        name = query["name"]
        n, b = _stats(native["samples_ns"][name]), _stats(binding["samples_ns"][name])
        rows.append(
            {
                "query": name,
                "native": n,
                "binding": b,
                "ratio_median": b["median_us"] / n["median_us"],
                "ratio_p95": b["p95_us"] / n["p95_us"],
            }
        )
    by_size = {p["concepts"]: p for p in growth["points"]}
    growth["bulk_vs_single_at_10k"] = (
        by_size[10_000]["bulk_ops_per_s"] / by_size[10_000]["single_ops_per_s"]
        if 10_000 in by_size
        else None
    )
    growth["bulk_50k_over_1k"] = (
        by_size[50_000]["bulk_ops_per_s"] / by_size[1_000]["bulk_ops_per_s"]
        if 50_000 in by_size and 1_000 in by_size
        else None
    )
    report = {
        "profile": args.profile,
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": sys.platform,
        },
        "workload": {
            "seed": SEED,
            "concepts": data["concepts"],
            "propositions": data["propositions"],
            "iterations": args.iterations,
        },
        "queries": rows,
        "trivial_call_overhead_us": binding["binding_overhead"][f"{TRIVIAL}_median_us"],
        "binding_overhead": binding["binding_overhead"],
        "async": {
            **binding["async"],
            "native_handoff_overhead_us": statistics.median(native_handoff) / 1000,
        },
        "threads": binding["threads"],
        "conversion": binding["conversion"],
        "import_time_ms": _import_time(),
        "extension_bytes": _extension_size(),
        "wheel_bytes": Path(args.wheel).stat().st_size if args.wheel else None,
        "load_seconds": {"native": native["load_seconds"], "binding": binding["load_seconds"]},
        "peak_rss_mib": {
            "native": (native["peak_rss_kib"] or 0) / 1024,
            "binding": (binding["peak_rss_kib"] or 0) / 1024,
        },
        "growth": growth,
        "chart": args.chart,
        "targets": {
            "bulk_vs_single_at_10k_min": 20,
            "bulk_50k_over_1k_min": 0.5,
            "trivial_total_us_max": 50,
            "point_lookup_us_max": 100,
            "ratio_median_max": 1.10,
            "trivial_overhead_us_max": 10,
            "async_overhead_us_max": 30,
            "two_thread_speedup_min": 1.7,
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(_table(report))
    print(f"\nwritten to {out}")
    return 0


def _table(report: dict[str, Any]) -> str:
    header = ("query", "native median µs", "native p95 µs", "binding median µs", "binding p95 µs")
    lines = [
        "| " + " | ".join((*header, "ratio (median)")) + " |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["queries"]:
        n, b = row["native"], row["binding"]
        lines.append(
            f"| {row['query']} | {n['median_us']:.1f} | {n['p95_us']:.1f} | "
            f"{b['median_us']:.1f} | {b['p95_us']:.1f} | {row['ratio_median']:.3f} |"
        )
    a, t = report["async"], report["threads"]
    load, rss = report["load_seconds"], report["peak_rss_mib"]
    sizes = f"extension: {report['extension_bytes'] / 2**20:.1f} MiB"
    if report["wheel_bytes"]:
        sizes += f"; wheel: {report['wheel_bytes'] / 2**20:.1f} MiB"
    lines += [
        "",
        "binding's own cost per call (wall time less the engine's, paired): "
        + ", ".join(
            f"{name.removesuffix('_median_us')} {us:.1f} µs"
            for name, us in report["binding_overhead"].items()
        ),
        f"async overhead over sync: {a['overhead_us']:.1f} µs "
        f"(sync {a['sync_median_us']:.1f} µs, async {a['async_median_us']:.1f} µs); "
        f"a Python thread hand-off here: {a['thread_handoff_overhead_us']:.1f} µs; "
        f"the engine's own hand-off, natively: {a['native_handoff_overhead_us']:.1f} µs",
        f"reads, 1 thread: {t['one_thread_per_s']:.0f}/s; "
        f"2 threads: {t['two_threads_per_s']:.0f}/s "
        f"(speed-up {t['speedup']:.2f} on {t['cpus']} CPUs)",
        f"import anda: {report['import_time_ms']:.1f} ms; {sizes}",
        f"load: native {load['native']:.1f} s, binding {load['binding']:.1f} s; "
        f"peak RSS: native {rss['native']:.0f} MiB, binding {rss['binding']:.0f} MiB",
        "",
        "conversion (median µs): objects built in Rust vs JSON text + json.loads",
    ]
    for name, c in report["conversion"].items():
        direct, via_json = c["objects_in_rust_median_us"], c["json_then_loads_median_us"]
        lines.append(f"  {name}: {direct:.1f} vs {via_json:.1f}")
    growth = report["growth"]
    lines += [
        "",
        f"growth ({report['profile']} build; writes per second):",
        "| concepts | single-write median ms | one command per write /s | batch /s | bulk /s |",
        "|---:|---:|---:|---:|---:|",
    ]
    for p in growth["points"]:
        lines.append(
            f"| {p['concepts']:,} | {p['single_write_median_ms']:.2f} | "
            f"{p['single_ops_per_s']:.0f} | {p['batch_ops_per_s']:.0f} | "
            f"{p['bulk_ops_per_s']:.0f} |"
        )
    if growth["bulk_vs_single_at_10k"] is not None:
        lines.append(f"bulk / one command per write at 10k: {growth['bulk_vs_single_at_10k']:.1f}x")
    if growth["bulk_50k_over_1k"] is not None:
        lines.append(f"bulk throughput at 50k / at 1k: {growth['bulk_50k_over_1k']:.2f}")
    lines.append(f"chart: {report['chart']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
