"""The benchmark's growth curve (bench.py), run in its own process: the cost of
a write as the store grows, per way of writing, and its chart."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

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


def growth_chart(growth: dict[str, Any], path: Path, profile: str) -> None:
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
