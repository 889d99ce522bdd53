"""The engine's log records in Python's logging: the ``anda.engine`` loggers,
quiet by default, and the damage detection that reads the same records."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import anda
from conftest import UPSERT_PERSON, run_python

FIND_PEOPLE = 'FIND(?p.name) WHERE { ?p {type: "Person"} }'


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def engine_log() -> Iterator[Kept]:
    """A handler on ``anda.engine``; every ``anda.engine`` level is reset after."""
    kept = Kept()
    logger = logging.getLogger("anda.engine")
    logger.addHandler(kept)
    try:
        yield kept
    finally:
        logger.removeHandler(kept)
        for name in list(logging.Logger.manager.loggerDict):
            if name == "anda.engine" or name.startswith("anda.engine."):
                logging.getLogger(name).setLevel(logging.NOTSET)


def _damaged_store(path: Path) -> None:
    """A store whose first concept's record is gone (AndaDB warns when it meets it)."""
    with anda.Nexus(path) as store:
        store.execute_kip([(UPSERT_PERSON, {"key": f"p{i}", "name": f"P{i}"}) for i in range(6)])
    [victim, *_] = sorted((path / "gen").rglob("concepts/data/*/*"))
    victim.unlink()


def _read_damaged(path: Path) -> None:
    with pytest.raises(anda.CorruptStoreError, match="concepts"), anda.Nexus(path) as store:
        store.execute_kip(FIND_PEOPLE)


def _skipped(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if "no backing object" in r.getMessage()]


def test_a_damaged_record_warning_reaches_logging_and_the_call_is_still_refused(
    store_dir: Path, engine_log: Kept
) -> None:
    _damaged_store(store_dir)
    _read_damaged(store_dir)
    [record, *_] = _skipped(engine_log.records)
    assert record.levelno == logging.WARNING
    assert record.name.startswith("anda.engine.anda_db.")
    assert record.engine_target.startswith("anda_db::")  # type: ignore[attr-defined]
    assert record.engine_fields["collection"] == "concepts"  # type: ignore[attr-defined]
    assert "collection=concepts" in record.getMessage()
    assert record.pathname.endswith(".rs")
    assert record.lineno > 0


def test_the_warning_arrives_before_an_async_call_returns(
    store_dir: Path, engine_log: Kept
) -> None:
    _damaged_store(store_dir)

    async def main() -> None:
        with anda.Nexus(store_dir) as store:
            engine_log.records.clear()
            with pytest.raises(anda.CorruptStoreError):
                await store.execute_kip_async(FIND_PEOPLE)
            assert _skipped(engine_log.records), [r.getMessage() for r in engine_log.records]

    asyncio.run(main())


def test_levels_choose_what_the_engine_sends(engine_log: Kept) -> None:
    # WARNING (the default): the engine's routine INFO records stay in Rust.
    with anda.Nexus() as store:
        store.execute_kip(UPSERT_PERSON, {"key": "ada", "name": "Ada"})
    assert not [r for r in engine_log.records if r.levelno < logging.WARNING]

    # A child logger at INFO asks for INFO records of its module only.
    logging.getLogger("anda.engine.anda_db").setLevel(logging.INFO)
    with anda.Nexus() as store:
        store.execute_kip(UPSERT_PERSON, {"key": "ada", "name": "Ada"})
    infos = [r for r in engine_log.records if r.levelno == logging.INFO]
    assert infos, "no INFO record from AndaDB"
    assert all(r.name.startswith("anda.engine.anda_db") for r in infos)


def test_a_silenced_logger_hears_nothing(store_dir: Path, engine_log: Kept) -> None:
    _damaged_store(store_dir)
    logging.getLogger("anda.engine").setLevel(logging.ERROR)
    _read_damaged(store_dir)  # damage detection does not depend on the level
    assert not _skipped(engine_log.records)


_SCRIPT = """
import logging, sys
from pathlib import Path
{configure}
import anda
path = Path(sys.argv[1])
UPSERT = 'UPSERT CONCEPT ?p {{ MATCH {{ type: "Person", key: :k }} }}'
with anda.Nexus(path) as store:
    store.execute_kip([(UPSERT, {{"k": f"p{{i}}"}}) for i in range(6)])
sorted((path / "gen").rglob("concepts/data/*/*"))[0].unlink()
try:
    with anda.Nexus(path) as store:
        store.execute_kip('FIND(?p) WHERE {{ ?p {{type: "Person"}} }}')
except anda.CorruptStoreError:
    print("refused")
"""


def test_nothing_is_printed_unless_logging_is_configured(tmp_path: Path) -> None:
    quiet = run_python(_SCRIPT.format(configure=""), str(tmp_path / "a"))
    assert quiet.stdout.strip() == "refused", quiet.stderr
    assert quiet.stderr == ""

    configure = "logging.basicConfig(format='%(levelname)s %(name)s %(message)s')"
    configured = run_python(_SCRIPT.format(configure=configure), str(tmp_path / "b"))
    assert configured.stdout.strip() == "refused", configured.stderr
    assert "WARNING anda.engine.anda_db." in configured.stderr
    assert "no backing object" in configured.stderr
