"""Schema Packages, Capsules (export, verify, import) and whole-store copies."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import anda
from anda.testing import dump_store
from anda.testing import strategies as kst

ROOT = Path(__file__).resolve().parents[1]
SUPPORT = ROOT / "examples" / "schema" / "support-1.0.0.json"
TICKET = 'UPSERT CONCEPT ?t { MATCH { type: "Ticket", key: :key } SET FIELDS { name: :name } }'
PERSON = 'UPSERT CONCEPT ?p { MATCH { type: "Person", key: :key } SET FIELDS { name: :name } }'


def _rows(response: dict[str, Any]) -> Any:
    return response["results"][0]["result"]


def _support() -> dict[str, Any]:
    package: dict[str, Any] = json.loads(SUPPORT.read_text())
    return package


def _version(package: dict[str, Any], version: str) -> dict[str, Any]:
    changed = copy.deepcopy(package)
    package_id = changed["manifest"]["package_id"]
    changed["manifest"]["version"] = version
    changed["manifest"]["package_ref"] = f"{package_id}@{version}"
    for section in changed["definitions"].values():
        for name, definition in section.items():
            definition["ref"] = f"{package_id}@{version}/{name}"
    return changed


def _environment(nexus: anda.Nexus) -> Any:
    return _rows(nexus.execute_kip("DESCRIBE SCHEMA ENVIRONMENT"))


def _packages(nexus: anda.Nexus) -> Any:
    return _rows(nexus.execute_kip("LIST SCHEMA PACKAGES"))


def _type_names(nexus: anda.Nexus) -> set[str]:
    return {row["local_name"] for row in _rows(nexus.execute_kip("LIST TYPES"))}


# -- Schema Packages ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["path", "str path", "dict", "json text"])
def test_a_package_given_at_open_is_usable_and_survives_a_reopen(tmp_path: Path, form: str) -> None:
    package: Any = {
        "path": SUPPORT,
        "str path": str(SUPPORT),
        "dict": _support(),
        "json text": SUPPORT.read_text(),
    }[form]
    with anda.Nexus(tmp_path, schema_packages=[package]) as nexus:
        nexus.execute_kip(TICKET, {"key": "T-1", "name": "Login fails"})
        nexus.execute_kip(PERSON, {"key": "ada", "name": "Ada"})
        assert {"Ticket", "Product"} <= _type_names(nexus)
        environment = _environment(nexus)
    # Same packages again: nothing changes, not even the environment version.
    with anda.Nexus(tmp_path, schema_packages=[package]) as nexus:
        assert _environment(nexus) == environment
        assert _rows(nexus.execute_kip('FIND(?t.name) WHERE { ?t {type: "Ticket"} }')) == [
            "Login fails"
        ]
    # Left out of a later open, the package stays in force.
    with anda.Nexus(tmp_path) as nexus:
        assert _environment(nexus) == environment
        assert "Ticket" in _type_names(nexus)


def test_relations_of_an_installed_package_work() -> None:
    with anda.Nexus(schema_packages=[SUPPORT]) as nexus:
        result = nexus.bulk_write(
            [
                anda.bulk.Upsert("Ticket", "T-1", "Login fails"),
                anda.bulk.Upsert("Person", "ada", "Ada"),
                anda.bulk.Relate(("Ticket", "T-1"), "reported_by", ("Person", "ada")),
            ]
        )
        assert result.operations == 3
        rows = _rows(
            nexus.execute_kip(
                'FIND(?p.name) WHERE { ?t {type: "Ticket", key: "T-1"} (?t, "reported_by", ?p) }'
            )
        )
    assert rows == ["Ada"]


def test_install_on_an_open_store_then_reopen(tmp_path: Path) -> None:
    with anda.Nexus(tmp_path) as nexus:
        assert "Ticket" not in _type_names(nexus)
        with pytest.raises(anda.KipError):
            nexus.execute_kip(TICKET, {"key": "T-1", "name": "x"})
        result = nexus.install_schema_package(SUPPORT)
        assert result["installed"] == ["kip://example.com/support@1.0.0"]
        assert result["active"]["kip://example.com/support"] == "1.0.0"
        nexus.execute_kip(TICKET, {"key": "T-1", "name": "x"})
        again = nexus.install_schema_package(SUPPORT)
        assert again["schema_environment_version"] == result["schema_environment_version"]
    with anda.Nexus(tmp_path, readonly=True) as nexus:
        assert "Ticket" in _type_names(nexus)


def test_installed_but_not_activated() -> None:
    with anda.Nexus() as nexus:
        result = nexus.install_schema_package(SUPPORT, activate=False)
        assert "kip://example.com/support" not in result["active"]
        assert "Ticket" not in _type_names(nexus)
        assert "kip://example.com/support" not in json.dumps(_packages(nexus))
        activated = nexus.install_schema_package(SUPPORT)
        assert activated["installed"] == result["installed"]
        assert "Ticket" in _type_names(nexus)
        assert "kip://example.com/support@1.0.0" in json.dumps(_packages(nexus))


def _refused_packages() -> list[tuple[str, Any, type[anda.KipError], str]]:
    clash = _version(_support(), "1.1.0")
    clash["definitions"]["concept_types"]["Person"] = clash["definitions"]["concept_types"].pop(
        "Product"
    )
    clash["definitions"]["concept_types"]["Person"]["ref"] = (
        "kip://example.com/support@1.1.0/Person"
    )
    for predicate in clash["definitions"]["predicates"].values():
        for side in ("subject", "object"):
            predicate[side]["concept_types"] = [
                ref.replace("/Product", "/Person") for ref in predicate[side]["concept_types"]
            ]
    no_ref = _support()
    del no_ref["manifest"]["package_id"], no_ref["manifest"]["package_ref"]
    return [
        ("a name another package defines", clash, anda.KipSchemaError, "SchemaSymbolConflict"),
        ("not JSON", "{ this is not json", anda.KipError, ""),
        ("not a package", {"hello": "world"}, anda.KipError, ""),
        ("no identity", no_ref, anda.KipError, ""),
    ]


@pytest.mark.parametrize(
    ("why", "package", "error", "code"),
    _refused_packages(),
    ids=[case[0] for case in _refused_packages()],
)
def test_a_refused_package_changes_nothing(
    tmp_path: Path, why: str, package: Any, error: type[anda.KipError], code: str
) -> None:
    with anda.Nexus(tmp_path) as nexus:
        nexus.execute_kip(PERSON, {"key": "ada", "name": "Ada"})
        before = (dump_store(nexus), _environment(nexus), _packages(nexus))
        with pytest.raises(error) as refused:
            nexus.install_schema_package(package)
        assert code in str(refused.value)
        assert (dump_store(nexus), _environment(nexus), _packages(nexus)) == before
    with pytest.raises(error):
        anda.Nexus(tmp_path, schema_packages=[package])
    with anda.Nexus(tmp_path) as nexus:
        assert (dump_store(nexus), _environment(nexus), _packages(nexus)) == before


def test_new_content_under_an_installed_version_is_refused() -> None:
    changed = _support()
    changed["definitions"]["concept_types"]["Ticket"]["description"] = "Something else."
    with anda.Nexus(schema_packages=[SUPPORT]) as nexus:
        with pytest.raises(anda.KipArtifactError, match="DigestMismatch"):
            nexus.install_schema_package(changed)
        # A new version is an upgrade.
        upgraded = nexus.install_schema_package(_version(changed, "1.0.1"))
    assert upgraded["active"]["kip://example.com/support"] == "1.0.1"


def test_schema_package_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="list of packages"):
        anda.Nexus(schema_packages=str(SUPPORT))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        anda.Nexus(schema_packages=[42])  # type: ignore[list-item]
    with pytest.raises(FileNotFoundError):
        anda.Nexus(schema_packages=[tmp_path / "missing.json"])
    with anda.Nexus(tmp_path) as nexus:
        nexus.execute_kip("DESCRIBE PRIMER")
    with pytest.raises(ValueError, match="writable"):
        anda.Nexus(tmp_path, readonly=True, schema_packages=[SUPPORT])
    with (
        anda.Nexus(tmp_path, readonly=True) as nexus,
        pytest.raises(anda.KipProtocolError, match="read-only"),
    ):
        nexus.install_schema_package(SUPPORT)


# -- Capsules ----------------------------------------------------------------------------------


def _people(nexus: anda.Nexus, *keys: str) -> None:
    for key in keys:
        nexus.execute_kip(PERSON, {"key": key, "name": key.title()})


def test_export_verify_import() -> None:
    with anda.Nexus() as source, anda.Nexus() as target:
        _people(source, "ada", "bob")
        source.bulk_write([anda.bulk.Relate(("Person", "ada"), "knows", ("Person", "bob"))])
        capsule = source.export_capsule()
        assert source.verify_capsule(capsule)["valid"] is True
        preview = target.import_capsule(capsule, dry_run=True)
        assert preview["imported"] is False
        assert dump_store(target)["contents"] == dump_store(anda.Nexus())["contents"]
        report = target.import_capsule(json.dumps(capsule))
        assert report["imported"] is True
        assert report["counts"]["concept"] == 2
        names = _rows(
            target.execute_kip(
                'FIND(?a.name, ?b.name) WHERE { ?a {type: "Person"} (?a, "knows", ?b) }'
            )
        )
        assert names == [["Ada", "Bob"]]
        # Importing the same capsule again resolves to what the first import made.
        once = dump_store(target)
        target.import_capsule(capsule)
        again = dump_store(target)
        assert again["concepts"] == once["concepts"]
        assert again["propositions"] == once["propositions"]


def test_export_a_selection() -> None:
    with anda.Nexus() as nexus:
        _people(nexus, "ada", "bob")
        nexus.execute_kip(
            'UPSERT CONCEPT ?t { MATCH { type: "Topic", key: "kip" } SET FIELDS { name: "KIP" } }'
        )
        people = nexus.export_capsule('?roots {type: "Person"}')
        one = nexus.export_capsule(
            'EXPORT CAPSULE ?roots WHERE { ?roots {type: "Person", key: :key} }', {"key": "ada"}
        )
    assert sorted(record["name"] for record in people["payload"]["records"]) == ["Ada", "Bob"]
    assert [record["name"] for record in one["payload"]["records"]] == ["Ada"]
    with anda.Nexus() as nexus, pytest.raises(ValueError, match="roots"):
        nexus.export_capsule('?p {type: "Person"}')


def _tampered(capsule: dict[str, Any]) -> list[dict[str, Any]]:
    renamed = copy.deepcopy(capsule)
    renamed["payload"]["records"][0]["name"] = "Mallory"
    dropped = copy.deepcopy(capsule)
    dropped["payload"]["records"].pop()
    forged = copy.deepcopy(capsule)
    forged["integrity"]["content_digest"] = "sha256:" + "0" * 64
    return [renamed, dropped, forged]


def test_a_tampered_capsule_is_refused_and_changes_nothing() -> None:
    with anda.Nexus() as source, anda.Nexus() as target:
        _people(source, "ada", "bob")
        capsule = source.export_capsule()
        before = dump_store(target)
        for tampered in _tampered(capsule):
            with pytest.raises(anda.KipArtifactError, match="DigestMismatch"):
                source.verify_capsule(tampered)
            with pytest.raises(anda.KipArtifactError, match="DigestMismatch"):
                target.import_capsule(tampered)
            with pytest.raises(anda.KipArtifactError):
                target.import_capsule(tampered, dry_run=True)
        assert dump_store(target) == before


def test_a_capsule_needing_a_missing_package_is_refused() -> None:
    with anda.Nexus(schema_packages=[SUPPORT]) as source, anda.Nexus() as target:
        source.execute_kip(TICKET, {"key": "T-1", "name": "Login fails"})
        capsule = source.export_capsule()
        before = dump_store(target)
        with pytest.raises(anda.KipSchemaError, match="SchemaPackageUnavailable"):
            target.import_capsule(capsule)
        assert dump_store(target) == before
        target.install_schema_package(SUPPORT)
        assert target.import_capsule(capsule)["counts"] == {"concept": 1}


def test_capsule_argument_errors() -> None:
    with anda.Nexus() as nexus:
        with pytest.raises(TypeError):
            nexus.import_capsule(42)  # type: ignore[arg-type]
        with pytest.raises(anda.KipError):
            nexus.import_capsule("not a capsule")
        with pytest.raises(anda.KipError):
            nexus.import_capsule({"format": "KIP-Cognitive-Capsule"})


def test_a_read_only_store_previews_but_never_imports(tmp_path: Path) -> None:
    with anda.Nexus() as source:
        _people(source, "ada")
        capsule = source.export_capsule()
    with anda.Nexus(tmp_path) as nexus:
        before = dump_store(nexus)
    with anda.Nexus(tmp_path, readonly=True) as nexus:
        assert nexus.import_capsule(capsule, dry_run=True)["imported"] is False
        with pytest.raises(anda.KipProtocolError, match="read-only"):
            nexus.import_capsule(capsule)
        assert dump_store(nexus) == before


@pytest.mark.parametrize(
    ("what", "write"),
    [
        ("install a schema package", lambda nexus, capsule: nexus.install_schema_package(SUPPORT)),
        ("import a capsule", lambda nexus, capsule: nexus.import_capsule(capsule)),
    ],
)
def test_a_read_only_refusal_is_exactly_the_error_it_always_was(
    tmp_path: Path, what: str, write: Any
) -> None:
    # The store refuses these writes natively; what a user catches is unchanged:
    # anda's own ReadonlyViolation, its message naming the write, and no hint.
    with anda.Nexus() as source:
        _people(source, "ada")
        capsule = source.export_capsule()
    with anda.Nexus(tmp_path):
        pass
    message = f"this Nexus is read-only: cannot {what}"
    nexus = anda.Nexus(tmp_path, readonly=True)
    for _ in ("open", "closed"):
        with pytest.raises(anda.KipProtocolError) as refused:
            write(nexus, capsule)
        err = refused.value
        assert (err.code, err.category, err.message, err.hint, err.retry, err.details) == (
            "ReadonlyViolation",
            "protocol",
            message,
            None,
            None,
            None,
        )
        assert str(err) == f"ReadonlyViolation: {message}"
        assert err.response == {
            "status": "failed",
            "error": {"code": "ReadonlyViolation", "category": "protocol", "message": message},
        }
        nexus.close()


def _without_keys(dump: dict[str, Any]) -> dict[str, Any]:
    """A dump with what a Capsule does not carry left out: keys (Space-local
    by the engine's design), the commit sequence and the element counts."""
    return {
        "concepts": sorted(
            json.dumps([row[0], *row[2:]], sort_keys=True) for row in dump["concepts"]["active"]
        ),
        "propositions": sorted(
            json.dumps([row[0], row[2], row[3], *row[5:]], sort_keys=True)
            for row in dump["propositions"]
        ),
        "assertions": sorted(
            json.dumps([row[0], row[2], row[3], *row[5:]], sort_keys=True)
            for row in dump["assertions"]
        ),
    }


@settings(max_examples=max(5, settings.default.max_examples // 5))
@given(upserts=st.lists(kst.upserts(), min_size=1, max_size=6), data=st.data())
def test_whole_store_round_trip(upserts: list[kst.Upsert], data: st.DataObject) -> None:
    with anda.Nexus() as source, anda.Nexus() as target:
        for upsert in upserts:
            source.execute_kip(*upsert.render())
        concepts = list({upsert.concept: None for upsert in upserts})
        # one_of with none(): some sets of concepts admit no relation at all.
        drawn = data.draw(
            st.lists(st.one_of(kst.relates(concepts, concepts), st.none()), max_size=3)
        )
        relations = [
            anda.bulk.Relate(
                (r.subject.type, r.subject.key), r.predicate, (r.object.type, r.object.key)
            )
            for r in drawn
            if r is not None and isinstance(r.object, kst.Concept)
        ]
        if relations:
            source.bulk_write(relations)
        target.import_capsule(source.export_capsule())
        assert _without_keys(dump_store(target)) == _without_keys(dump_store(source))


# -- copies --------------------------------------------------------------------------------------


def _store(path: Path) -> dict[str, Any]:
    with anda.Nexus(path, schema_packages=[SUPPORT]) as nexus:
        _people(nexus, "ada", "bob")
        nexus.bulk_write([anda.bulk.Relate(("Person", "ada"), "knows", ("Person", "bob"))])
        nexus.execute_kip(TICKET, {"key": "T-1", "name": "Login fails"})
        return dump_store(nexus)


def test_copy_store_is_exact(tmp_path: Path) -> None:
    expected = _store(tmp_path / "a")
    seen: list[tuple[int, int]] = []
    result = anda.copy_store(tmp_path / "a", tmp_path / "b", progress=lambda *p: seen.append(p))
    assert result.files > 0
    assert seen
    assert seen[-1] == (result.bytes, result.bytes)
    with anda.Nexus(tmp_path / "b") as copied:
        assert dump_store(copied) == expected
        assert "Ticket" in _type_names(copied)
    # The source is untouched and still opens.
    with anda.Nexus(tmp_path / "a", readonly=True) as source:
        assert dump_store(source) == expected


def test_copy_store_refusals(tmp_path: Path) -> None:
    _store(tmp_path / "a")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(anda.StoreError, match="holds no anda store"):
            anda.copy_store(tmp_path / "a", tmp_path / "full", overwrite=overwrite)
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"
    with pytest.raises(anda.StoreError, match="no store"):
        anda.copy_store(tmp_path / "missing", tmp_path / "c")
    with pytest.raises(ValueError, match="same store"):
        anda.copy_store(tmp_path / "a", tmp_path / "a")
    with pytest.raises(ValueError, match="server"):
        anda.copy_store("http://127.0.0.1:1", tmp_path / "c")
    with anda.Nexus(tmp_path / "a"), pytest.raises(anda.StoreLockedError):
        anda.copy_store(tmp_path / "a", tmp_path / "c")
    # Replacing an existing store takes overwrite=True.
    with anda.Nexus(tmp_path / "old") as old:
        _people(old, "zed")
    with pytest.raises(anda.StoreError, match="already holds a store"):
        anda.copy_store(tmp_path / "a", tmp_path / "old")
    anda.copy_store(tmp_path / "a", tmp_path / "old", overwrite=True)
    with anda.Nexus(tmp_path / "old", readonly=True) as replaced:
        keys = _rows(replaced.execute_kip('FIND(?p.key) WHERE { ?p {type: "Person"} }'))
    assert sorted(keys) == ["ada", "bob"]


def _anda(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anda", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_command_line_export_import_copy(tmp_path: Path) -> None:
    expected = _store(tmp_path / "src")
    exported = _anda("export", "--db", "src", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    (tmp_path / "memory.capsule.json").write_text(exported.stdout)
    package = ["--schema-package", str(SUPPORT)]
    imported = _anda("import", "--db", "dst", *package, "memory.capsule.json", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["counts"]["concept"] == 3
    with anda.Nexus(tmp_path / "dst", readonly=True) as nexus:
        assert _without_keys(dump_store(nexus)) == _without_keys(expected)
    tampered = json.loads(exported.stdout)
    concept = next(r for r in tampered["payload"]["records"] if r["kind"] == "concept")
    concept["name"] = "Mallory"
    refused = _anda("import", "--db", "dst", "-", cwd=tmp_path, stdin=json.dumps(tampered))
    assert refused.returncode == 1
    assert "DigestMismatch" in refused.stderr
    copied = _anda("copy", "src", "copy", cwd=tmp_path)
    assert copied.returncode == 0, copied.stderr
    assert "reads back equal" in copied.stdout
    again = _anda("copy", "src", "copy", cwd=tmp_path)
    assert again.returncode == 1
    assert "already holds a store" in again.stderr
    ticket = _anda(
        "--db", "copy", "--compact", 'FIND(?t.name) WHERE { ?t {type: "Ticket"} }', cwd=tmp_path
    )
    assert json.loads(ticket.stdout)["results"][0]["result"] == ["Login fails"]
