"""What the stress parts (stress.py) share: the budgets, the KIP they run, the
process's memory figures, and Part, one part's promise and its outcome."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

STALL_TIMEOUT = 600.0  # seconds without one finished operation: a deadlock
PROGRESS_EVERY = 60.0  # seconds between progress lines of a long part
PART_TIMEOUT = 3 * 3600.0  # one memory part in its own process
# Repetitions of a memory part: resident memory after the last must be
# within 10% of after the second.
REPEATS = 5

UPSERT = 'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }'
FIND_NAME = 'FIND(?p.name) WHERE { ?p {type: "Person", key: :key} }'
RELATE = (
    'MUTATE { UPSERT CONCEPT ?a { MATCH { type: "Person", key: :a } } '
    'UPSERT CONCEPT ?b { MATCH { type: "Person", key: :b } } '
    'ASSERT (?a, "knows", ?b) { by: ?a, mode: "stated" } }'
)
TOMBSTONE = 'TRANSITION ?c TO "tombstoned" WHERE { ?c {type: "Person", key: :key} } LIMIT 1'
SHARED = 'UPSERT CONCEPT ?o { MATCH { type: "Organization", key: :key } SET ATTRIBUTES { v: :v } }'
COUNT = 'FIND(COUNT(?p)) WHERE { ?p {type: "Person"} }'
CROSS = 'FIND(?a.key, ?b.key) WHERE { ?a {type: "Person"} ?b {type: "Topic"} }'


def memory() -> dict[str, int]:
    """This process's resident memory, its peak (KiB), threads and open files."""
    figures = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "Threads"):
                figures[name] = int(value.split()[0])
    figures["fds"] = len(os.listdir("/proc/self/fd"))
    return figures


@dataclass
class Part:
    """One part's promise, whether it held and what was measured."""

    name: str
    promise: str
    ok: bool = True
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.ok = False
        if len(self.problems) < 20:
            self.problems.append(problem)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "promise": self.promise,
            "ok": self.ok,
            **self.figures,
            "problems": self.problems,
        }


def rows(response: dict[str, Any], index: int = 0) -> Any:
    return response["results"][index]["result"]
