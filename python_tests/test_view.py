"""The inspector (anda.view) without a browser: what its cards say against
what KIP answers, the past through AS OF and HISTORY, that it cannot write,
its routes behind ``anda serve``'s keys and tenancy, ``python -m anda view``,
and the files the package must ship for it. The page in a real browser is
test_view_browser.py."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import anda
import anda.view
from anda.server import create_app
from anda.view import _reads
from anda.view._web import create_view_app
from support.seeded import seed


@pytest.fixture
def memory() -> Any:
    with anda.Nexus() as nexus:
        yield nexus


@pytest.fixture
def ids(memory: anda.Nexus) -> dict[str, Any]:
    return seed(memory)


def rows(memory: Any, command: str, **parameters: Any) -> list[Any]:
    result: list[Any] = memory.execute_kip(command, parameters)["results"][0]["result"]
    return result


def basic(key: str, user: str = "me") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# -- the cards against KIP ------------------------------------------------------------


def test_a_card_says_what_kip_answers(memory: anda.Nexus, ids: dict[str, Any]) -> None:
    card = anda.view.card(memory, ids["ada"]).data
    (element,) = rows(memory, "FIND(?c) WHERE { ?c {id: :id} }", id=ids["ada"])
    assert (card["name"], card["key"], card["type_ref"]) == (
        element["name"],
        element["key"],
        element["schema_ref"],
    )
    said = rows(memory, "FIND(?p.id, ?o) WHERE { ?c {id: :id} ?p (?c, ?pred, ?o) }", id=ids["ada"])
    heard = rows(
        memory, "FIND(?p.id, ?s.id) WHERE { ?c {id: :id} ?p (?s, ?pred, ?c) }", id=ids["ada"]
    )
    shown = {p["id"]: p for p in card["propositions"]}
    assert {p for p, _ in said} | {p for p, _ in heard} == set(shown)
    beliefs = dict(
        rows(
            memory,
            "FIND(?p.id, ?b.status) WHERE { ?c {id: :id} ?p (?c, ?pred, ?o) ?b BELIEF (?p) }",
            id=ids["ada"],
        )
    )
    assert {p: shown[p]["belief"] for p in beliefs} == beliefs
    # The move: London no longer holds (temporal succession), Paris does; the wrong timezone
    # is superseded by its correction.
    by_object = {
        (p["predicate"], p["object"].get("id", p["object"].get("literal"))): p
        for p in card["propositions"]
    }
    assert by_object[("lives_in", ids["paris"])]["belief"] == "accepted"
    assert by_object[("lives_in", ids["london"])]["belief"] != "accepted"
    (wrong,) = by_object[("timezone", "+02:00")]["assertions"]
    (right,) = by_object[("timezone", "+01:00")]["assertions"]
    assert wrong["lifecycle"] == {"status": "superseded", "superseded_by": [right["id"]]}
    assert right["lifecycle"]["supersedes"] == [wrong["id"]]
    # Charles said Ada works for the Society; the card names him.
    (claim,) = by_object[("works_for", ids["aes"])]["assertions"]
    assert (claim["by"], claim["confidence"]) == (ids["charles"], 0.8)
    assert card["names"][ids["charles"]]["name"] == "Charles Babbage"


def test_a_card_as_of_a_past_seq(memory: anda.Nexus, ids: dict[str, Any]) -> None:
    then = anda.view.card(memory, ids["ada"], as_of=1).data
    assert (then["name"], then["as_of"], then["seq"]) == ("Ada", 1, 1)
    assert (
        then["name"]
        == rows(memory, "FIND(?c.name) WHERE { ?c {id: :id} } AS OF SEQ 1", id=ids["ada"])[0]
    )
    lives = {
        p["object"]["id"]: p["belief"] for p in then["propositions"] if p["predicate"] == "lives_in"
    }
    assert lives == {ids["london"]: "accepted"}  # Paris was not yet there
    (timezone,) = [p for p in then["propositions"] if p["predicate"] == "timezone"]
    assert timezone["object"] == {"literal": "+02:00"}
    assert timezone["assertions"][0]["lifecycle"]["status"] == "active"
    with pytest.raises(LookupError):
        anda.view.card(memory, ids["paris"], as_of=1)


def test_the_history_is_the_elements_history(memory: anda.Nexus, ids: dict[str, Any]) -> None:
    card = anda.view.card(memory, ids["ada"])
    assert card.history is not None
    timeline = {line["seq"]: line for line in card.history}
    assert sorted(timeline) == [1, 2, 3, 4]
    engine = rows(memory, "HISTORY ELEMENT :id", id=ids["ada"])
    assert [e["space_seq"] for e in engine] == [1, 4]
    assert [line["name"] for line in card.history if line["name"]] == ["Ada", "Ada Lovelace"]
    (superseded,) = [c for c in timeline[3]["changes"] if c["op"] == "lifecycle"]
    assert (superseded["id"], superseded["state"]) == (
        ids["old_timezone"],
        {"from": "active", "to": "superseded"},
    )
    page = card._repr_html_()
    assert "seq 3" in page
    assert 'data-as-of="1"' in page
    assert "superseded" in page


def test_search_and_find(memory: anda.Nexus, ids: dict[str, Any]) -> None:
    hits = anda.view.search(memory, "Babbage").data["hits"]
    assert [hit["id"] for hit in hits] == [ids["charles"]]
    places = anda.view.search(memory, type="Place").data["hits"]
    assert sorted(hit["id"] for hit in places) == sorted(
        rows(memory, 'FIND(?c.id) WHERE { ?c {type: "Place"} }')
    )


def test_notebook_views(memory: anda.Nexus, ids: dict[str, Any]) -> None:
    shown = memory._repr_html_()
    assert shown is not None
    assert "Default MemorySpace" in shown
    assert "seq 4" in shown
    assert "<script" not in shown
    response = memory.execute_kip('FIND(?c) WHERE { ?c {type: "Person"} }')
    assert f'data-concept="{ids["ada"]}"' in anda.view.show(response)._repr_html_()
    assert "<svg" in anda.view.card(memory, type="Person", key="charles")._repr_html_()
    memory.close()
    assert memory._repr_html_() is None


def test_notebook_view_of_a_refused_read() -> None:
    with anda.Nexus(tenancy="per_caller") as memory:
        shown = memory._repr_html_()
    assert shown is not None
    assert "NotAuthorized" in shown


def test_values_are_escaped(memory: anda.Nexus) -> None:
    memory.execute_kip(
        'UPSERT CONCEPT ?p { MATCH { type: "Person", key: "x" } SET FIELDS { name: :name } }',
        {"name": '<img src=x onerror="alert(1)">'},
    )
    page = anda.view.card(memory, type="Person", key="x")._repr_html_()
    assert "<img" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


# -- read-only by construction -------------------------------------------------------


def test_the_inspectors_reads_refuse_a_write(memory: anda.Nexus, ids: dict[str, Any]) -> None:
    """Every read goes through anda.view's reader, on the read-only path:
    a write handed to it is refused whole, and nothing changes."""

    def sneaky() -> _reads.Read[Any]:
        yield _reads.read_request(
            ("DESCRIBE PRIMER", {}),
            ('UPSERT CONCEPT ?p { MATCH { type: "Person", key: "mallory" } }', {}),
        )

    with pytest.raises(anda.KipError) as refused:
        _reads.run(sneaky(), anda.view._reader(memory, None))
    assert refused.value.code == "ReadonlyViolation"
    assert rows(memory, 'FIND(?c.id) WHERE { ?c {key: "mallory"} }') == []


def test_the_page_has_no_way_to_write(memory: anda.Nexus, ids: dict[str, Any]) -> None:
    head = memory.execute_kip("DESCRIBE SNAPSHOT")["results"][0]["result"]["space_seq"]
    app = create_view_app(memory)
    with TestClient(app, base_url="http://127.0.0.1") as http:
        injection = '"} } UPSERT CONCEPT ?x { MATCH { type: "Person", key: "mallory" } }'
        assert http.get("/view/api/search", params={"q": injection}).status_code == 200
        # Bound as data: a search for that text, a card of no such id (refused, not run).
        assert http.get("/view/api/card", params={"id": injection}).status_code in (200, 400)
        for path in ("/view/api/search", "/view/api/card", "/view/api/primer", "/view/"):
            assert http.post(path, content=b"{}").status_code == 405
        assert http.get("/view/api/card", params={"id": "C-1", "as_of": "-1"}).status_code == 400
        assert http.get("/view/static/../__init__.py").status_code == 404
    after = memory.execute_kip("DESCRIBE SNAPSHOT")["results"][0]["result"]["space_seq"]
    assert after == head


def test_the_page_is_for_this_machine_only(memory: anda.Nexus) -> None:
    with TestClient(create_view_app(memory), base_url="http://127.0.0.1") as http:
        assert http.get("/view/").status_code == 200
        assert http.get("/view/", headers={"Host": "example.org"}).status_code == 403
        foreign = {"Origin": "https://example.org"}
        assert http.get("/view/api/primer", headers=foreign).status_code == 403
        assert http.get("/view/api/primer", headers={"Origin": "http://127.0.0.1:9"}).is_success


# -- behind anda serve ---------------------------------------------------------------


def test_served_at_view_behind_the_keys(memory: anda.Nexus, ids: dict[str, Any]) -> None:
    app = create_app(memory, api_keys={"s3cret": None}, close_memory=False)
    with TestClient(app) as http:
        refused = http.get("/view/")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Basic")
        assert http.get("/view/api/card", params={"id": ids["ada"]}).status_code == 401
        assert http.get("/view/", headers=basic("wrong")).status_code == 401
        assert http.get("/view/", headers=basic("s3cret")).status_code == 200
        bearer = {"Authorization": "Bearer s3cret"}
        card = http.get("/view/api/card", params={"id": ids["ada"]}, headers=bearer)
        assert card.status_code == 200
        assert "Ada Lovelace" in card.text
        # A Basic password is the inspector's alone: /kip still wants a bearer key.
        kip = http.post(
            "/kip", json={"method": "execute_kip", "params": {}}, headers=basic("s3cret")
        )
        assert kip.status_code == 401
        assert http.get("/").status_code == 200  # GET / answers as before, without a key
        listed = http.post(
            "/kip",
            json={"method": "list_logs", "params": {"limit": 100}},
            headers=bearer,
        ).json()["results"][0]["result"]
    # The audit log keeps the page's requests too: what was read, and by whom.
    cards = [entry for entry in listed if entry["path"] == "/view/api/card"]
    assert [(e["http_status"], e["method"]) for e in cards] == [
        (401, None),
        (200, "execute_kip_readonly"),
    ]


def test_the_page_under_per_caller_tenancy(tmp_path: Path) -> None:
    with anda.Nexus(tenancy="per_caller") as memory:
        seed(memory, caller="alice")
        memory.execute_kip(
            'UPSERT CONCEPT ?p { MATCH { type: "Person", key: "bob" } SET FIELDS { name: "Bob" } }',
            caller="bob",
        )
        app = create_app(memory, api_keys={"k-alice": "alice", "k-bob": "bob"}, close_memory=False)
        with TestClient(app) as http:
            alice = http.get("/view/api/search", params={"q": "Ada"}, headers=basic("k-alice"))
            bob = http.get("/view/api/search", params={"q": "Ada"}, headers=basic("k-bob"))
            bobs = http.get("/view/api/search", params={"type": "Person"}, headers=basic("k-bob"))
            primer = http.get("/view/api/primer", headers=basic("k-bob"))
    assert "Ada Lovelace" in alice.text
    assert "data-concept" not in bob.text
    assert "no hits" in bob.text
    assert "Bob" in bobs.text
    assert "Charles" not in bobs.text
    assert re.search(r"<th>concept</th><td>1</td>", primer.text)


# -- python -m anda view -------------------------------------------------------------


def test_the_view_subcommand(tmp_path: Path) -> None:
    store = tmp_path / "memory"
    with anda.Nexus(str(store)) as nexus:
        seed(nexus)
    process = subprocess.Popen(
        [sys.executable, "-m", "anda", "view", "--db", str(store), "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ANDA_DB": ""},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/view/", url), url
        import httpx

        page = httpx.get(url)
        card = httpx.get(url + "api/card", params={"id": "C-1"})
        assert page.status_code == 200
        assert 'src="static/view.js"' in page.text
        assert "Ada Lovelace" in card.text
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate()
    assert process.returncode == 0, errors
    assert "read-only" in errors


def test_the_view_subcommand_stays_on_this_machine() -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "anda", "view", "--host", "0.0.0.0", "--no-browser"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert "this machine only" in refused.stderr


# -- what the package ships ----------------------------------------------------------


def test_the_package_ships_the_page() -> None:
    """The page's files are package data (a wheel that left them out fails
    here, as the wheel's tests run this suite), and none loads anything
    from elsewhere: no URL but this page's own."""
    static = resources.files("anda.view") / "static"
    for name in ("index.html", "view.js", "view.css"):
        text = (static / name).read_text(encoding="utf-8")
        assert text.strip(), name
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), name
        assert "@import" not in text
        assert "@font-face" not in text
