"""The binding's side of the benchmark (bench.py), run in its own process: it
loads the workload through ``anda.Nexus``, times the queries it is asked for,
and then measures what only the binding has: its own cost per call, async over
sync, one vs two threads on reads, and the two ways of bringing results into
Python."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _bench_workload import TRIVIAL


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
