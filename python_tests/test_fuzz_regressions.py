"""The fuzzer's inputs, replayed: every reproducer in tools/fuzz/crashes/ and a
sample of the seed corpus, through the harness's own one-input function
(tools/fuzz/fuzz_target.py, which needs no atheris)."""

from __future__ import annotations

import hashlib
import importlib.util
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

FUZZ = Path(__file__).resolve().parent.parent / "tools" / "fuzz"
# What libFuzzer (and the harness's watchdog) name the inputs they keep.
REPRODUCER_PREFIXES = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-", "finding-")
# The harness's per-input time bound (fuzz_execute.py --timeout).
SAMPLE = 120


def _load_target() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_target", FUZZ / "fuzz_target.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_target"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


fuzz_target = _load_target()


def _reproducers() -> list[Path]:
    crashes = FUZZ / "crashes"
    if not crashes.is_dir():
        return []
    return sorted(p for p in crashes.iterdir() if p.name.startswith(REPRODUCER_PREFIXES))


def _corpus_sample() -> list[Path]:
    # The same sample on every run, spread over every seed source.
    files = sorted((FUZZ / "corpus").iterdir())
    return sorted(random.Random(0).sample(files, min(SAMPLE, len(files))))


@pytest.fixture(scope="module")
def target() -> Iterator[Any]:
    runner = fuzz_target.Target()
    yield runner
    runner.close()


def test_every_reproducer_now_runs_to_an_allowed_outcome(target: Any) -> None:
    # A fixed finding runs to an allowed outcome; an unfixed one raises. A hang
    # is caught by the suite's timeout, not by a wall-clock assertion here.
    for path in _reproducers():
        target.run(path.read_bytes())


@pytest.mark.parametrize("path", _corpus_sample(), ids=lambda p: p.name)
def test_seed(target: Any, path: Path) -> None:
    target.run(path.read_bytes())


def test_corpus_is_small_and_decodes() -> None:
    files = sorted((FUZZ / "corpus").iterdir())
    assert len(files) >= 100
    assert sum(p.stat().st_size for p in files) < 2 * 1024 * 1024
    modes = {fuzz_target.decode(p.read_bytes()).mode for p in files}
    assert modes == set(fuzz_target.MODES)  # every mode has seeds


def test_any_bytes_decode() -> None:
    rng = random.Random(0)
    for size in (0, 1, 2, 3, 17, 300):
        for _ in range(50):
            data = rng.randbytes(size)
            assert fuzz_target.decode(data).mode in fuzz_target.MODES


def test_seed_encoding_round_trips() -> None:
    call = fuzz_target.decode(fuzz_target.encode(1, 'FIND(?x) WHERE { ?x {type: :t} }\x00{"t": 1}'))
    assert (call.mode, call.command, call.parameters) == (
        "params",
        "FIND(?x) WHERE { ?x {type: :t} }",
        {"t": 1},
    )


def test_disallowed_errors_are_findings(target: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A TypeError anda did not raise on purpose is a bug, not an input check.
    def broken(*_args: object, **_kwargs: object) -> None:
        raise TypeError("'NoneType' object is not subscriptable")

    monkeypatch.setattr(fuzz_target.anda.Nexus, "execute_kip", broken)
    with pytest.raises(fuzz_target.Finding, match="not raised by an input check"):
        target.run(fuzz_target.encode(0, "DESCRIBE PRIMER"))


def test_reproducer_names_are_content_hashes() -> None:
    # libFuzzer names a reproducer after the SHA-1 of its bytes.
    for path in _reproducers():
        assert path.name.split("-")[-1] == hashlib.sha1(path.read_bytes()).hexdigest()
