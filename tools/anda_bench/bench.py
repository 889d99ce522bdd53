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
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SEED = 20261126
COUNTS = {"Person": 6000, "Organization": 1500, "Place": 1500, "Topic": 1000}
RELATIONS = {  # predicate: (subject type, object type, how many)
    "knows": ("Person", "Person", 30_000),
    "works_for": ("Person", "Organization", 6_000),
    "lives_in": ("Person", "Place", 6_000),
    "interested_in": ("Person", "Topic", 8_000),
}
TRIVIAL = "trivial"

UPSERT = (
    "UPSERT CONCEPT ?c { MATCH { type: :type, key: :key } "
    "SET FIELDS { name: :name } SET ATTRIBUTES { rank: :rank, score: :score } }"
)


def _key(type_: str, i: int) -> str:
    return f"{type_.lower()}-{i:05d}"


def workload(scale: float, iterations: int) -> dict[str, Any]:
    from anda.bulk import DEFAULT_CHUNK_SIZE, Relate, Upsert, _render_chunk

    rng = random.Random(SEED)
    counts = {t: max(2, int(n * scale)) for t, n in COUNTS.items()}
    operations: list[Any] = []
    for type_, count in counts.items():
        for i in range(count):
            operations.append(
                Upsert(
                    type_,
                    _key(type_, i),
                    name=f"{type_} {i:05d}",
                    attributes={"rank": rng.randrange(1000), "score": round(rng.random(), 6)},
                )
            )
    for predicate, (subject, obj, count) in RELATIONS.items():
        pairs: set[tuple[int, int]] = set()
        while len(pairs) < int(count * scale):
            s, o = rng.randrange(counts[subject]), rng.randrange(counts[obj])
            if subject != obj or s != o:
                pairs.add((s, o))
        operations += [
            Relate((subject, _key(subject, s)), predicate, (obj, _key(obj, o)))
            for s, o in sorted(pairs)
        ]
    # Both sides load through the bulk path: the same transactions, rendered
    # once here (the Python side renders its own with the same code).
    chunks = [
        operations[i : i + DEFAULT_CHUNK_SIZE]
        for i in range(0, len(operations), DEFAULT_CHUNK_SIZE)
    ]
    load = [[list(write) for write in _render_chunk(chunk)[0]] for chunk in chunks]
    structured = [
        {"upsert": {"type": op.type, "key": op.key, "name": op.name, "attributes": op.attributes}}
        if isinstance(op, Upsert)
        else {"relate": {"subject": op.subject, "predicate": op.predicate, "object": op.object}}
        for op in operations
    ]

    people = counts["Person"]

    def person(i: int) -> str:
        return _key("Person", i)

    some = [rng.randrange(people) for _ in range(64)]
    queries = [
        {
            "name": TRIVIAL,
            "command": 'DESCRIBE ERROR "VersionConflict"',
            "parameter_sets": [{}],
        },
        {
            "name": "point_lookup",
            "command": 'FIND(?p.key, ?p.attributes) WHERE { ?p {type: "Person", name: :name} }',
            "parameter_sets": [{"name": f"Person {i:05d}"} for i in some],
        },
        {
            "name": "one_hop",
            "command": 'FIND(?f.name) WHERE { ?p {type: "Person", key: :key} (?p, "knows", ?f) }',
            "parameter_sets": [{"key": person(i)} for i in some],
        },
        {
            "name": "two_hop",
            "command": (
                'FIND(?ff.name) WHERE { ?p {type: "Person", key: :key} '
                '(?p, "knows", ?f) (?f, "knows", ?ff) }'
            ),
            "parameter_sets": [{"key": person(i)} for i in some],
        },
        {
            "name": "filter_order_limit",
            "command": (
                'FIND(?p.name, ?p.attributes.rank) WHERE { ?p {type: "Person"} '
                "FILTER(?p.attributes.rank > :min && ?p.attributes.score < :score) } "
                "ORDER BY ?p.attributes.rank DESC, ?p.name ASC LIMIT 20"
            ),
            "parameter_sets": [{"min": 500 + i, "score": 0.5} for i in range(16)],
        },
        {
            "name": "aggregate",
            "command": (
                'FIND(?o.name, COUNT(?p)) WHERE { ?o {type: "Organization"} '
                '(?p, "works_for", ?o) } ORDER BY COUNT(?p) DESC LIMIT 10'
            ),
            "parameter_sets": [{}],
        },
        {"name": "meta_describe", "command": "DESCRIBE PRIMER", "parameter_sets": [{}]},
        {
            "name": "kml_upsert_batch",
            "command": [
                f'UPSERT CONCEPT ?c {{ MATCH {{ type: "Topic", key: "bench-{j}" }} '
                f"SET ATTRIBUTES {{ round: :round }} }}"
                for j in range(10)
            ],
            "execution": "sequence",
            "parameter_sets": [{"round": i} for i in range(iterations + 10)],
        },
        {
            "name": "large_result",
            "command": "FIND(?c.key, ?c.name) WHERE { ?c CONCEPT {} }",
            "parameter_sets": [{}],
        },
    ]
    return {
        "seed": SEED,
        "concepts": sum(counts.values()),
        "propositions": sum(int(n * scale) for *_, n in RELATIONS.values()),
        "load": load,
        "operations": structured,
        "queries": queries,
        "iterations": iterations,
        "warmup": 3,
    }


# -- the Python side (runs in its own process) --------------------------------


def _peak_rss_kib() -> int | None:
    try:
        import resource
    except ImportError:
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _call_args(query: dict[str, Any], parameters: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    command = query["command"]
    if isinstance(command, list):
        return command, {"execution": query.get("execution", "sequence")}
    return command, {}


def python_side(path: Path) -> None:
    """The binding's half, driven like the native binary (see `_Side`): the
    load as one JSON line, a line of samples per ``NAME COUNT`` on stdin, and
    at the end of stdin the measurements only the binding has."""
    import anda
    from anda.bulk import DEFAULT_CHUNK_SIZE

    data = json.loads(path.read_text())
    nexus = anda.Nexus()
    started = time.perf_counter()
    # The chunks the native side commits, not growing ones: like for like.
    nexus.bulk_write(data["operations"], chunk_size=DEFAULT_CHUNK_SIZE)
    load_seconds = time.perf_counter() - started
    print(json.dumps({"load_seconds": load_seconds, "peak_rss_kib": _peak_rss_kib()}), flush=True)

    warmup = data["warmup"]
    for line in sys.stdin:
        name, count = line.split()
        query = _query(data, name)
        sets = query["parameter_sets"]
        times = []
        for i in range(warmup + int(count)):
            parameters = sets[i % len(sets)]
            command, options = _call_args(query, parameters)
            t = time.perf_counter_ns()
            nexus.execute_kip(command, parameters, **options)
            elapsed = time.perf_counter_ns() - t
            if i >= warmup:
                times.append(elapsed)
        print(json.dumps(times), flush=True)

    iterations = data["iterations"]
    extra = {
        "binding_overhead": _binding_overhead(nexus, data, iterations * 4),
        "async": _async_overhead(nexus, data, iterations * 4),
        "threads": _thread_scaling(nexus, data),
        "conversion": _conversion(nexus, data, iterations),
    }
    nexus.close()
    print(json.dumps(extra), flush=True)


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


def _query(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(q for q in data["queries"] if q["name"] == name)


def _binding_overhead(nexus: Any, data: dict[str, Any], n: int) -> dict[str, float]:
    """Binding minus native, call by call: each call's wall time in Python
    less the time the engine took for that same call (paired, so the
    engine's run-to-run noise cancels)."""
    native = nexus._native
    from anda import _anda

    # Built with the `bench` feature (noxfile.py), as is _execute_json.
    timed = _anda._execute_timed
    report = {}
    for name in (TRIVIAL, "point_lookup"):
        query = _query(data, name)
        sets = query["parameter_sets"]
        differences = []
        for i in range(n):
            t = time.perf_counter_ns()
            _, engine_ns = timed(native, query["command"], sets[i % len(sets)], False, None, None)
            differences.append(time.perf_counter_ns() - t - engine_ns)
        report[f"{name}_median_us"] = statistics.median(differences) / 1000
    return report


def _async_overhead(nexus: Any, data: dict[str, Any], n: int) -> dict[str, float]:
    """``await execute_kip_async`` against ``execute_kip``, alternating call
    by call so both see the same machine.

    Alongside, the cheapest hand-off plain Python offers: the same sync call
    handed to a waiting Python thread and its result passed back with
    ``call_soon_threadsafe``. (The native side measures the same hand-off
    without Python: see ``handoff_differences`` in ``src/main.rs``.)
    """
    import asyncio
    import queue
    import threading

    command = _query(data, TRIVIAL)["command"]
    sync_times, async_times, differences, handoff_differences = [], [], [], []
    requests: queue.SimpleQueue[asyncio.Future[None] | None] = queue.SimpleQueue()

    def serve(loop: asyncio.AbstractEventLoop) -> None:
        while (future := requests.get()) is not None:
            nexus.execute_kip(command)
            loop.call_soon_threadsafe(future.set_result, None)

    async def measure() -> None:
        loop = asyncio.get_running_loop()
        server = threading.Thread(target=serve, args=(loop,))
        server.start()
        for _ in range(n):
            t = time.perf_counter_ns()
            nexus.execute_kip(command)
            sync_ns = time.perf_counter_ns() - t
            t = time.perf_counter_ns()
            await nexus.execute_kip_async(command)
            async_ns = time.perf_counter_ns() - t
            t = time.perf_counter_ns()
            handed = loop.create_future()
            requests.put(handed)
            await handed
            handoff_ns = time.perf_counter_ns() - t
            sync_times.append(sync_ns)
            async_times.append(async_ns)
            differences.append(async_ns - sync_ns)
            handoff_differences.append(handoff_ns - sync_ns)
        requests.put(None)
        server.join()

    asyncio.run(measure())
    return {
        "sync_median_us": statistics.median(sync_times) / 1000,
        "async_median_us": statistics.median(async_times) / 1000,
        "overhead_us": statistics.median(differences) / 1000,
        "thread_handoff_overhead_us": statistics.median(handoff_differences) / 1000,
    }


def _thread_scaling(nexus: Any, data: dict[str, Any]) -> dict[str, float]:
    import threading

    query = _query(data, "one_hop")
    per_thread = 200

    def work() -> None:
        for i in range(per_thread):
            nexus.execute_kip(
                query["command"], query["parameter_sets"][i % len(query["parameter_sets"])]
            )

    rates = {}
    for threads in (1, 2):
        workers = [threading.Thread(target=work) for _ in range(threads)]
        t = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        rates[threads] = threads * per_thread / (time.perf_counter() - t)
    return {
        "one_thread_per_s": rates[1],
        "two_threads_per_s": rates[2],
        "speedup": rates[2] / rates[1],
        "cpus": os.cpu_count() or 1,
    }


def _conversion(nexus: Any, data: dict[str, Any], iterations: int) -> dict[str, Any]:
    """Python objects built in Rust vs JSON text from Rust parsed by json.loads."""
    native = nexus._native
    from anda import _anda

    as_json = _anda._execute_json
    report = {}
    for name in (TRIVIAL, "point_lookup", "large_result"):
        query = _query(data, name)
        parameters = query["parameter_sets"][0]
        direct, via_json = [], []
        for _ in range(iterations):
            t = time.perf_counter_ns()
            native.execute(query["command"], parameters, False, None, None)
            direct.append(time.perf_counter_ns() - t)
            t = time.perf_counter_ns()
            json.loads(as_json(native, query["command"], parameters, False, None, None))
            via_json.append(time.perf_counter_ns() - t)
        report[name] = {
            "objects_in_rust_median_us": statistics.median(direct) / 1000,
            "json_then_loads_median_us": statistics.median(via_json) / 1000,
        }
    return report


# -- the growth curve (its own process) ---------------------------------------------

GROWTH_SIZES = (1_000, 10_000, 50_000)
QUICK_GROWTH_SIZES = (1_000, 10_000)
# Writes measured at each size, per way of writing.
# A bulk write's chunks grow from 200 operations; 4,000 take it to full size.
SINGLE_WRITES, BATCH_WRITES, BULK_WRITES = 20, 100, 4_000


def growth_side(sizes: list[int]) -> dict[str, Any]:
    """Write cost as the store grows: one command per write, the engine's
    batch (one commit per operation), and the bulk path, at each size."""
    import anda
    from anda.bulk import Upsert

    def people(start: int, stop: int, prefix: str) -> list[Upsert]:
        return [
            Upsert("Person", f"{prefix}{i:06d}", name=f"{prefix} {i}") for i in range(start, stop)
        ]

    nexus = anda.Nexus()
    loaded, points = 0, []
    for size in sizes:
        nexus.bulk_write(people(loaded, size, "g"))
        loaded = size
        tag = f"s{size}-"
        singles = []
        for i in range(SINGLE_WRITES):
            t = time.perf_counter_ns()
            nexus.execute_kip(UPSERT_PERSON, {"key": f"{tag}one-{i}", "name": str(i)})
            singles.append(time.perf_counter_ns() - t)
        batch = [
            (UPSERT_PERSON, {"key": f"{tag}batch-{i}", "name": str(i)}) for i in range(BATCH_WRITES)
        ]
        t = time.perf_counter()
        nexus.execute_kip(batch, execution="sequence")
        batch_seconds = time.perf_counter() - t
        t = time.perf_counter()
        nexus.bulk_write(people(0, BULK_WRITES, f"{tag}bulk-"))
        bulk_seconds = time.perf_counter() - t
        single_seconds = sum(singles) / 1e9
        points.append(
            {
                "concepts": size,
                "single_write_median_ms": statistics.median(singles) / 1e6,
                "single_ops_per_s": SINGLE_WRITES / single_seconds,
                "batch_ops_per_s": BATCH_WRITES / batch_seconds,
                "bulk_ops_per_s": BULK_WRITES / bulk_seconds,
            }
        )
        print(f"growth: {points[-1]}", file=sys.stderr, flush=True)
    nexus.close()
    return {"points": points}


UPSERT_PERSON = (
    'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }'
)


def _growth_chart(growth: dict[str, Any], path: Path, profile: str) -> None:
    """Draws the growth curve (throughput by store size, log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = growth["points"]
    sizes = [p["concepts"] for p in points]
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    for key, label in (
        ("bulk_ops_per_s", "bulk_write (one MUTATE per chunk)"),
        ("batch_ops_per_s", "execute_kip batch (one commit per write)"),
        ("single_ops_per_s", "execute_kip, one command per write"),
    ):
        axes.plot(sizes, [p[key] for p in points], marker="o", label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("concepts already in the store")
    axes.set_ylabel("writes per second")
    axes.set_title(f"anda write throughput as memory grows ({profile} build, in memory)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Fixed metadata, so an unchanged curve redraws to the same bytes.
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)


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
    _growth_chart(growth, Path(args.chart), args.profile)

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
