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
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# -- the store ----------------------------------------------------------------


def open_store(target: str, *, readonly: bool = False) -> Any:
    """Opens the store under test. The one place that knows what kind it is
    (a bucket-backed store will be chosen here by the form of ``target``)."""
    import anda

    return anda.Nexus(target, readonly=readonly)


# -- effects and the model ----------------------------------------------------

# An effect is a JSON list, logged by the writer before its call:
#   ["upsert", type, key, name or null, {attributes}]  create if missing, then set
#   ["tombstone", type, key]                           transition to "tombstoned"
#   ["assert", s_type, s_key, predicate, o_type, o_key]  one more assertion
# A step is a list of effects the engine commits at once; a call is a list of steps.
Effect = list[Any]
Step = list[Effect]
ConceptKey = tuple[str, str]
Concept = tuple[str, str | None, dict[str, Any]]  # state, name, attributes
Triple = tuple[str, str, str, str, str]


@dataclass
class Model:
    """What the store should hold: concepts in any state, and assertions."""

    concepts: dict[ConceptKey, Concept] = field(default_factory=dict)
    assertions: Counter[Triple] = field(default_factory=Counter)

    def copy(self) -> Model:
        # Concept tuples are replaced, never changed in place, so a shallow copy will do.
        return Model(dict(self.concepts), Counter(self.assertions))

    def apply(self, effect: Effect) -> None:
        kind = effect[0]
        if kind == "upsert":
            _, type_, key, name, attributes = effect
            state, old_name, old_attributes = self.concepts.get((type_, key), ("active", None, {}))
            self.concepts[(type_, key)] = (
                state,
                old_name if name is None else name,
                {**old_attributes, **attributes},
            )
        elif kind == "tombstone":
            concept = self.concepts.get((effect[1], effect[2]))
            if concept is not None:
                self.concepts[(effect[1], effect[2])] = ("tombstoned", *concept[1:])
        elif kind == "assert":
            self.assertions[tuple(effect[1:])] += 1
        else:
            raise ValueError(f"unknown effect {effect!r}")

    def applied(self, steps: list[Step]) -> Model:
        model = self.copy()
        for step in steps:
            for effect in step:
                model.apply(effect)
        return model

    def to_json(self) -> dict[str, Any]:
        return {
            "concepts": [[*key, *value] for key, value in sorted(self.concepts.items())],
            "assertions": [[*triple, n] for triple, n in sorted(self.assertions.items())],
        }


def _short(ref: str) -> str:
    # "kip://profiles/cognitive-memory@2.0.0/Person" -> "Person"
    return ref.rsplit("/", 1)[-1]


def model_from_dump(dump: dict[str, Any]) -> tuple[Model, list[str]]:
    """The model a dump shows, and every way the dump disagrees with itself."""
    problems: list[str] = []
    model = Model()
    for state, rows in dump["concepts"].items():
        for schema_ref, key, name, attributes in rows:
            concept_key = (_short(schema_ref), key)
            if concept_key in model.concepts:
                problems.append(f"concept {concept_key} listed twice")
            model.concepts[concept_key] = (state, name, attributes or {})
    for row in dump["assertions"]:
        s_ref, s_key, predicate, o_ref, o_key, _obj, stance, mode, _confidence, status = row
        if (stance, mode, status) != ("support", "stated", "active"):
            problems.append(f"assertion {row} is not a stated, active support")
        model.assertions[(_short(s_ref), s_key, _short(predicate), _short(o_ref), o_key)] += 1
    propositions = {
        (_short(r[0]), r[1], _short(r[2]), _short(r[3]), r[4]) for r in dump["propositions"]
    }
    if len(propositions) != len(dump["propositions"]):
        problems.append("a proposition is listed twice")
    if propositions != set(model.assertions):
        problems.append(
            f"propositions {sorted(propositions ^ set(model.assertions))[:5]} "
            "do not match the assertions"
        )
    for endpoint in {(t[0], t[1]) for t in propositions} | {(t[3], t[4]) for t in propositions}:
        if endpoint not in model.concepts:
            problems.append(f"a proposition names {endpoint}, which is not stored")
    contents = dump["contents"]
    # "concept" counts the concepts that are not tombstoned (the other states never occur here).
    counted = {
        "concept": sum(
            len(rows) for state, rows in dump["concepts"].items() if state != "tombstoned"
        ),
        "proposition": len(dump["propositions"]),
        "assertion": len(dump["assertions"]),
    }
    for name, count in counted.items():
        if contents.get(name) != count:
            problems.append(f"contents.{name} is {contents.get(name)}, the rows number {count}")
    return model, problems


@dataclass
class Call:
    """One write call as the writer logged it."""

    id: str
    kind: str
    steps: list[Step]
    # What a call cut short may have left: "prefix", the first steps in
    # whole chunks of ``chunk`` steps (the last chunk may be shorter), or
    # "subset", any of its steps.
    outcome: str = "prefix"
    chunk: int = 1
    done: int = 0  # steps acknowledged

    def possible_lengths(self) -> list[int]:
        total = len(self.steps)
        lengths = {self.done, total}
        lengths.update(range(self.done, total, self.chunk))
        return sorted(lengths)

    def possible_outcomes(self) -> Iterator[tuple[str, list[Step]]]:
        """Every set of unacknowledged steps the store may show, with a label."""
        rest = list(range(self.done, len(self.steps)))
        if self.outcome == "subset":
            for n in range(len(rest) + 1):
                for chosen in itertools.combinations(rest, n):
                    yield (
                        f"steps {list(chosen)} of {len(self.steps)}",
                        [self.steps[i] for i in chosen],
                    )
        else:
            for length in self.possible_lengths():
                yield f"{length} of {len(self.steps)} steps", self.steps[self.done : length]


def read_log(path: Path) -> tuple[bool, list[Call]]:
    """Whether the writer got the store open, and its calls in order."""
    ready, calls = False, []
    by_id: dict[str, Call] = {}
    lines = path.read_bytes().split(b"\n") if path.exists() else []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the empty tail (a kill cannot cut a small O_APPEND write in two)
        if "ready" in record:
            ready = True
        elif "begin" in record:
            call = Call(
                record["begin"],
                record["kind"],
                record["steps"],
                record.get("outcome", "prefix"),
                record.get("chunk", 1),
            )
            by_id[call.id] = call
            calls.append(call)
        elif "ack" in record:
            by_id[record["ack"]].done = record["done"]
    return ready, calls


@dataclass
class Verdict:
    matched: str | None  # the outcome of the call in flight that the store shows
    model: Model  # what the store holds now (the model to carry on from)
    in_flight: str = "none"  # of the call in flight: "none", "applied", "partly", "not applied"
    lost: list[str] = field(default_factory=list)
    phantom: list[str] = field(default_factory=list)
    torn: list[str] = field(default_factory=list)


def judge(before: Model, calls: list[Call], observed: Model) -> Verdict:
    """Compares what the store shows with every outcome the logged calls allow."""
    base = before.copy()
    for call in calls:
        for step in call.steps[: call.done]:
            for effect in step:
                base.apply(effect)
    in_flight = [call for call in calls if call.done < len(call.steps)]
    if len(in_flight) > 1:
        raise AssertionError(f"the writer left {len(in_flight)} calls unfinished")
    candidates: list[tuple[str, list[Step]]] = [("nothing in flight", [])]
    if in_flight:
        candidates = list(in_flight[0].possible_outcomes())
    for label, steps in candidates:
        if base.applied(steps) == observed:
            verdict = Verdict(label, observed)
            if in_flight:
                rest = len(in_flight[0].steps) - in_flight[0].done
                shown = len(steps)
                verdict.in_flight = (
                    "not applied" if not shown else "applied" if shown == rest else "partly"
                )
            return verdict
    # Nothing the engine may do explains the store: name what differs.
    verdict = Verdict(None, observed)
    expected = base.applied(candidates[0][1])
    torn = {key: call.id for call in calls for key in _torn_keys(call, observed)}
    for key in sorted(set(expected.concepts) | set(observed.concepts)):
        want, got = expected.concepts.get(key), observed.concepts.get(key)
        if want == got:
            continue
        where = f"{key}: expected {want}, found {got}"
        if key in torn:
            verdict.torn.append(f"transaction {torn[key]}: {where}")
        elif want is None:
            verdict.phantom.append(where)
        else:
            verdict.lost.append(where)
    for triple in sorted(set(expected.assertions) | set(observed.assertions)):
        want_n, got_n = expected.assertions[triple], observed.assertions[triple]
        if want_n > got_n:
            verdict.lost.append(f"assertion {triple}: expected {want_n}, found {got_n}")
        elif got_n > want_n:
            verdict.phantom.append(f"assertion {triple}: expected {want_n}, found {got_n}")
    return verdict


def _torn_keys(call: Call, observed: Model) -> list[ConceptKey]:
    """The people a MUTATE call creates, if the store shows some of its
    effects and not others; else nothing."""
    if call.kind != "mutate":
        return []
    tx = call.id
    present = []
    people = []
    for effect in call.steps[0]:
        if effect[0] == "upsert" and effect[4].get("tx") == tx:
            people.append((effect[1], effect[2]))
            concept = observed.concepts.get((effect[1], effect[2]))
            present.append(concept is not None and concept[2].get("tx") == tx)
        elif effect[0] == "assert" and effect[2].startswith("tx"):
            # Only this transaction relates its own new people to each other.
            present.append(observed.assertions[tuple(effect[1:])] > 0)
    return people if any(present) and not all(present) else []


def torn_transactions(verdict: Verdict) -> int:
    return len({entry.split(":", 1)[0] for entry in verdict.torn})


# -- the writer ---------------------------------------------------------------

PEOPLE = [f"p{i:02d}" for i in range(60)]
ORGANIZATIONS = [f"o{i:02d}" for i in range(12)]
UPSERT = (
    "UPSERT CONCEPT ?c { MATCH { type: :type, key: :key } "
    "SET FIELDS { name: :name } SET ATTRIBUTES { v: :v } }"
)
UPSERT_NAMELESS = "UPSERT CONCEPT ?c { MATCH { type: :type, key: :key } SET ATTRIBUTES { v: :v } }"
TOMBSTONE = 'TRANSITION ?c TO "tombstoned" WHERE { ?c {type: :type, key: :key} } LIMIT 1'
FIND_ID = "FIND(?c.id) WHERE { ?c {type: :type, key: :key} }"
ASSERT = 'ASSERT (:s, :p, :o) { by: :s, mode: "stated" }'
# Weights of the kinds of write.
KINDS = {
    "single": 30,
    "batch": 12,
    "independent": 6,
    "mutate": 20,
    "assert": 12,
    "bulk": 10,
    "tombstone": 10,
}


class Writer:
    """Random writes, each logged before the call and acknowledged after it."""

    def __init__(
        self, nexus: Any, rng: random.Random, cycle: int, ephemeral: list[str], log: Any
    ) -> None:
        self.nexus, self.rng, self.cycle, self.log = nexus, rng, cycle, log
        self.ephemeral = ephemeral  # active Person keys that may be tombstoned
        self.calls = 0

    def run(self) -> None:
        actions = {
            "single": self.single,
            "batch": self.batch,
            "independent": self.independent,
            "mutate": self.mutate,
            "assert": self.relation,
            "bulk": self.bulk,
            "tombstone": self.tombstone,
        }
        while True:
            self.calls += 1
            actions[self.rng.choices(list(KINDS), weights=list(KINDS.values()))[0]]()

    def value(self, j: int = 0) -> int:
        # Unique across the whole run, so a value names the write that set it.
        return self.cycle * 1_000_000 + self.calls * 100 + j

    def call(
        self,
        kind: str,
        steps: list[Step],
        write: Callable[[], None],
        *,
        outcome: str = "prefix",
        chunk: int = 1,
    ) -> None:
        call_id = f"{self.cycle}.{self.calls}"
        self.log(
            {"begin": call_id, "kind": kind, "steps": steps, "outcome": outcome, "chunk": chunk}
        )
        write()
        self.log({"ack": call_id, "done": len(steps)})

    # One upsert: a rendered command and its effect.
    def upsert(self, j: int = 0) -> tuple[tuple[str, dict[str, Any]], Effect, str | None]:
        v = self.value(j)
        roll = self.rng.random()
        if roll < 0.25:
            key, type_, name = f"e{v}", "Person", f"name-{v}"
        elif roll < 0.4:
            key, type_ = self.rng.choice(ORGANIZATIONS), "Organization"
            name = f"name-{v}" if self.rng.random() < 0.5 else None
        else:
            key, type_, name = self.rng.choice(PEOPLE), "Person", f"name-{v}"
        params: dict[str, Any] = {"type": type_, "key": key, "v": v}
        if name is not None:
            params["name"] = name
        command = UPSERT if name is not None else UPSERT_NAMELESS
        new = key if key.startswith("e") else None
        return (command, params), ["upsert", type_, key, name, {"v": v}], new

    def tombstone_of(self, key: str) -> tuple[tuple[str, dict[str, Any]], Effect]:
        self.ephemeral.remove(key)
        return (TOMBSTONE, {"type": "Person", "key": key}), ["tombstone", "Person", key]

    def single(self) -> None:
        write, effect, new = self.upsert()
        self.call("single", [[effect]], lambda: self.nexus.execute_kip(*write))
        if new:
            self.ephemeral.append(new)

    def batch(self, execution: str = "sequence") -> None:
        writes, steps, created = [], [], []
        for j in range(self.rng.randint(2, 6)):
            if self.ephemeral and self.rng.random() < 0.2:
                write, effect = self.tombstone_of(self.rng.choice(self.ephemeral))
            else:
                write, effect, new = self.upsert(j)
                created += [new] if new else []
            writes.append(write)
            steps.append([effect])
        kind = "batch" if execution == "sequence" else "independent"
        outcome = "prefix" if execution == "sequence" else "subset"
        self.call(
            kind,
            steps,
            lambda: self.nexus.execute_kip(writes, execution=execution),
            outcome=outcome,
        )
        self.ephemeral += created

    def independent(self) -> None:
        self.batch("independent")

    def mutate(self) -> None:
        """Several new people, relations among them and to older concepts,
        and updates of two older concepts: one transaction."""
        tx = f"{self.cycle}.{self.calls}"
        size = self.rng.randint(2, 5)
        org, person = self.rng.choice(ORGANIZATIONS), self.rng.choice(PEOPLE)
        params: dict[str, Any] = {"tx": tx, "org": org, "vo": self.value(90)}
        params |= {"person": person, "np": f"name-{self.value(91)}", "vp": self.value(91)}
        clauses = []
        effects: Step = []
        for j in range(size):
            key, v = f"tx{self.cycle}-{self.calls}-{j}", self.value(j)
            params |= {f"k{j}": key, f"n{j}": f"name-{v}", f"v{j}": v}
            clauses.append(
                f'UPSERT CONCEPT ?t{j} {{ MATCH {{ type: "Person", key: :k{j} }} '
                f"SET FIELDS {{ name: :n{j} }} SET ATTRIBUTES {{ tx: :tx, v: :v{j} }} }}"
            )
            effects.append(["upsert", "Person", key, f"name-{v}", {"tx": tx, "v": v}])
        clauses.append(
            'UPSERT CONCEPT ?o { MATCH { type: "Organization", key: :org } '
            "SET ATTRIBUTES { v: :vo } }"
        )
        effects.append(["upsert", "Organization", org, None, {"v": params["vo"]}])
        clauses.append(
            'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :person } '
            "SET FIELDS { name: :np } SET ATTRIBUTES { v: :vp } }"
        )
        effects.append(["upsert", "Person", person, params["np"], {"v": params["vp"]}])
        relations = [(f"t{j}", "knows", f"t{j + 1}") for j in range(size - 1)]
        relations += [("t0", "works_for", "o"), ("p", "knows", "t0")]
        handles = {"o": ("Organization", org), "p": ("Person", person)}
        handles |= {f"t{j}": ("Person", params[f"k{j}"]) for j in range(size)}
        for subject, predicate, obj in relations:
            clauses.append(
                f'ASSERT (?{subject}, "{predicate}", ?{obj}) {{ by: ?{subject}, mode: "stated" }}'
            )
            effects.append(["assert", *handles[subject], predicate, *handles[obj]])
        command = "MUTATE {\n" + "\n".join(clauses) + "\n}"
        self.call("mutate", [effects], lambda: self.nexus.execute_kip(command, params))

    def find_id(self, type_: str, key: str) -> str | None:
        found = self.nexus.execute_kip(FIND_ID, {"type": type_, "key": key})
        rows = found["results"][0]["result"]
        return rows[0] if rows else None

    def relation(self) -> None:
        subject = self.rng.choice(PEOPLE)
        if self.rng.random() < 0.5:
            predicate, obj = "knows", ("Person", self.rng.choice(PEOPLE))
        else:
            predicate, obj = "works_for", ("Organization", self.rng.choice(ORGANIZATIONS))
        s_id, o_id = self.find_id("Person", subject), self.find_id(*obj)
        if s_id is None or o_id is None:
            self.single()  # an endpoint is not there yet: write something else
            return
        params = {"s": s_id, "p": predicate, "o": o_id}
        effect = ["assert", "Person", subject, predicate, *obj]
        self.call("assert", [[effect]], lambda: self.nexus.execute_kip(ASSERT, params))

    def bulk(self) -> None:
        from anda.bulk import Relate, Upsert

        operations: list[Any] = []
        steps: list[Step] = []
        created = []
        for j in range(self.rng.randint(6, 40)):
            if self.rng.random() < 0.3:
                subject = ("Person", self.rng.choice(PEOPLE))
                if self.rng.random() < 0.5:
                    predicate, obj = "knows", ("Person", self.rng.choice(PEOPLE))
                else:
                    predicate, obj = "works_for", ("Organization", self.rng.choice(ORGANIZATIONS))
                operations.append(Relate(subject, predicate, obj))
                steps.append(
                    [
                        ["upsert", *subject, None, {}],
                        ["upsert", *obj, None, {}],
                        ["assert", *subject, predicate, *obj],
                    ]
                )
            else:
                (_, params), effect, new = self.upsert(j)
                operations.append(
                    Upsert(params["type"], params["key"], params.get("name"), {"v": params["v"]})
                )
                steps.append([effect])
                created += [new] if new else []
        chunk = self.rng.randint(3, 12)
        call_id = f"{self.cycle}.{self.calls}"

        def write() -> None:
            # Each chunk is a transaction: acknowledge each as it commits.
            self.nexus.bulk_write(
                operations,
                chunk_size=chunk,
                progress=lambda done: self.log({"ack": call_id, "done": done}),
            )

        self.call("bulk", steps, write, chunk=chunk)
        self.ephemeral += created

    def tombstone(self) -> None:
        if not self.ephemeral:
            self.single()
            return
        write, effect = self.tombstone_of(self.rng.choice(self.ephemeral))
        self.call("tombstone", [[effect]], lambda: self.nexus.execute_kip(*write))


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
