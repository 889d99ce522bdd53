"""python -m anda."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import UPSERT_PERSON


def _cli(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anda", *args],
        input=stdin,
        env=None if env is None else {**os.environ, **env},
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


SUBCOMMANDS = ("run", "load", "check", "export", "import", "copy", "mcp", "serve", "logs", "view")


def test_help_names_every_subcommand() -> None:
    for args in (["--help"], ["run", "--help"]):
        proc = _cli(*args)
        assert proc.returncode == 0, proc.stderr
        listed = {line.split()[0] for line in proc.stdout.splitlines() if line.startswith("  ")}
        assert set(SUBCOMMANDS) <= listed, proc.stdout
        assert "--db" in proc.stdout  # and the options of running one command
    for name in SUBCOMMANDS:
        proc = _cli(name, "--help")
        assert proc.returncode == 0, (name, proc.stderr)
        assert proc.stdout.startswith(f"usage: python -m anda {'' if name == 'run' else name}")


def test_a_server_url_is_refused_before_anything_is_opened(tmp_path: Path) -> None:
    """The subcommands that need the store itself refuse a server's URL at
    once (nothing listens at it: reaching it would fail differently)."""
    capsule = tmp_path / "capsule.json"
    capsule.write_text("{}", encoding="utf-8")
    url = "http://127.0.0.1:9"
    for args in (["check"], ["import", str(capsule)], ["serve"]):
        for proc in (
            _cli(*args, "--db", url),
            _cli(*args, env={"ANDA_DB": url}),
        ):
            assert proc.returncode == 2, (args, proc.stderr)
            assert f"{url} is a server" in proc.stderr, (args, proc.stderr)
            assert proc.stdout == ""


def test_a_server_url_is_served_wherever_the_memory_is_enough(tmp_path: Path) -> None:
    from test_server import serving  # needs anda[server]

    with serving(tmp_path, in_memory=True) as served:
        params = json.dumps({"key": "remote", "name": "Remote"})
        wrote = _cli("--db", served.url, "--params", params, UPSERT_PERSON)
        assert wrote.returncode == 0, wrote.stderr
        rows = "\n".join(
            json.dumps({"upsert": {"type": "Person", "key": f"r{i}"}}) for i in range(3)
        )
        loaded = _cli("load", "--db", served.url, stdin=rows)
        assert loaded.returncode == 0, loaded.stderr
        assert json.loads(loaded.stdout) == {"operations": 3, "transactions": 1}
        exported = _cli("export", "--db", served.url, '?roots {type: "Person"}')
        assert exported.returncode == 0, exported.stderr
        records = json.loads(exported.stdout)["payload"]["records"]
        assert len([r for r in records if r["kind"] == "concept"]) == 4
        listened = _cli("mcp", env={"ANDA_DB": served.url}, stdin="")
        assert listened.returncode == 0, listened.stderr
        assert f"serving the memory at {served.url}" in listened.stderr
