"""python -m anda."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import UPSERT_PERSON


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anda", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_describe_primer_prints_json() -> None:
    proc = _cli("DESCRIBE PRIMER")
    assert proc.returncode == 0, proc.stderr
    response = json.loads(proc.stdout)
    assert response["status"] == "succeeded"


def test_command_from_stdin_and_file(tmp_path: Path) -> None:
    proc = _cli(stdin="DESCRIBE PRIMER")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "succeeded"
    command_file = tmp_path / "command.kip"
    command_file.write_text("DESCRIBE PROTOCOL", encoding="utf-8")
    proc = _cli("--file", str(command_file), "--compact")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 1


def test_db_params_and_dry_run(tmp_path: Path) -> None:
    db = str(tmp_path / "cli-store")
    params = json.dumps({"key": "cli", "name": "From CLI"})
    find = 'FIND(?p.name) WHERE { ?p {type: "Person", key: "cli"} }'
    assert _cli("--db", db, "--params", params, "--dry-run", UPSERT_PERSON).returncode == 0
    assert json.loads(_cli("--db", db, find).stdout)["results"][0]["result"] == []
    assert _cli("--db", db, "--params", params, UPSERT_PERSON).returncode == 0
    found = json.loads(_cli("--db", db, find).stdout)["results"][0]["result"]
    assert found == ["From CLI"]


def test_failure_exits_non_zero_with_the_error_on_stderr() -> None:
    proc = _cli("FIND(?x WHERE")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "error:" in proc.stderr
    assert "InvalidSyntax" in proc.stderr


def test_usage_errors() -> None:
    assert _cli("--params", "{not json", "DESCRIBE PRIMER").returncode == 2
    assert _cli("--params", "[1]", "DESCRIBE PRIMER").returncode == 2
    assert _cli("--file", "/nonexistent/file.kip").returncode == 2
    version = _cli("--version")
    assert version.returncode == 0
    assert "anda_engine" in version.stdout


def test_load_writes_a_jsonl_file_and_reports(tmp_path: Path) -> None:
    lines = [
        json.dumps({"upsert": {"type": "Person", "key": f"p{i}", "name": str(i)}})
        for i in range(40)
    ]
    lines.insert(10, "")  # blank lines are skipped
    lines.append(json.dumps({"command": UPSERT_PERSON, "parameters": {"key": "c", "name": "C"}}))
    source = tmp_path / "people.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = tmp_path / "store"
    proc = _cli("load", "--db", str(store), "--chunk-size", "16", str(source))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"operations": 41, "transactions": 3}
    found = _cli("--db", str(store), "--compact", 'FIND(COUNT(?p)) WHERE { ?p {type: "Person"} }')
    assert json.loads(found.stdout)["results"][0]["result"] == [41]


def test_load_stops_at_a_bad_line_and_says_where_to_resume(tmp_path: Path) -> None:
    good = json.dumps({"upsert": {"type": "Person", "key": "a"}})
    bad = json.dumps({"upsert": {"type": "NoSuchType", "key": "b"}})
    store = tmp_path / "store"
    stdin = "\n".join([good, good.replace('"a"', '"b"'), bad, good.replace('"a"', '"d"')])
    proc = _cli("load", "--db", str(store), "--chunk-size", "2", stdin=stdin)
    assert proc.returncode == 1
    assert "committed 2 operations; resume from line 3" in proc.stderr
    assert "SchemaSymbolNotFound" in proc.stderr
    proc = _cli("load", "--db", str(store), stdin="{not json")
    assert proc.returncode == 1
    assert "line 1 is not JSON" in proc.stderr


def test_a_reader_that_stops_early_ends_it_quietly() -> None:
    """As `python -m anda 'DESCRIBE PRIMER' | head -c 600`: no traceback when
    the pipe closes. The read end is closed before the command writes, so
    the write always meets a closed pipe."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "anda", "DESCRIBE PRIMER"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()
    stderr = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=300) == 141
    assert stderr == ""
