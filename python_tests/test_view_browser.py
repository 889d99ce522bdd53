"""The inspector in a real browser: headless Chromium from the OS packages
(Debian's ``chromium``), driven by Playwright's Python package, against
``anda serve``'s application on uvicorn over a seeded store.

Chromium is required, not optional: without it these tests fail and say how
to install it (``apt-get install chromium``; ``.ci/run`` does). Set
``ANDA_CHROMIUM`` to use another executable. The screenshots the docs show
are taken here; ``ANDA_UPDATE_SCREENSHOTS=1`` writes them into ``docs/``
(otherwise into the test's temporary directory).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

import anda
from anda.server import create_app
from support.seeded import on_uvicorn, seed

DOCS = Path(__file__).resolve().parent.parent / "docs"
KEY = "inspector-key"
#: Milliseconds Playwright waits for what a step should show (a slow machine's margin).
PATIENCE = 30_000


def chromium() -> str:
    wanted = os.environ.get("ANDA_CHROMIUM")
    found = wanted or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not os.access(found, os.X_OK):
        pytest.fail(
            "the inspector's browser tests need Chromium from the OS packages: "
            "apt-get install -y chromium (or set ANDA_CHROMIUM to a Chromium executable)",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[anda.Nexus, dict[str, Any], str]]:
    with anda.Nexus() as memory:
        ids = seed(memory)
        app = create_app(memory, api_keys={KEY: None}, close_memory=False)
        with on_uvicorn(app) as url:
            yield memory, ids, url


def page_for(browser: Browser, key: str | None) -> Page:
    credentials = None if key is None else {"username": "me", "password": key}
    context = browser.new_context(
        http_credentials=credentials, viewport={"width": 1280, "height": 860}
    )
    context.set_default_timeout(PATIENCE)
    expect.set_options(timeout=PATIENCE)
    return context.new_page()


def screenshot(page: Page, name: str, tmp_path: Path) -> Path:
    where = DOCS if os.environ.get("ANDA_UPDATE_SCREENSHOTS") == "1" else tmp_path
    path = where / name
    page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 10_000  # a page was drawn, not a blank
    return path


def kip(memory: anda.Nexus, command: str, **parameters: Any) -> list[Any]:
    result: list[Any] = memory.execute_kip(command, parameters)["results"][0]["result"]
    return result


def test_search_and_two_hops(browser: Browser, seeded: Any, tmp_path: Path) -> None:
    memory, ids, url = seeded
    page = page_for(browser, KEY)
    page.goto(f"{url}/view/")
    expect(page.locator("#primer .counts")).to_contain_text("concept")
    primer = memory.execute_kip("DESCRIBE PRIMER")["results"][0]["result"]
    expect(page.locator("#primer")).to_contain_text(f"concept{primer['contents']['concept']}")

    page.fill("#term", "Ada")
    page.click("#search button")
    hit = page.locator(f'#hits a[data-concept="{ids["ada"]}"]')
    expect(hit).to_have_text(kip(memory, "FIND(?c.name) WHERE { ?c {id: :id} }", id=ids["ada"])[0])
    hit.click()

    card = page.locator("#card article.card")
    expect(card).to_have_attribute("data-id", ids["ada"])
    shown = sorted(
        page.locator("#card li.proposition").evaluate_all(
            "items => items.map(item => item.dataset.proposition)"
        )
    )
    said = kip(memory, "FIND(?p.id) WHERE { ?c {id: :id} ?p (?c, ?pred, ?o) }", id=ids["ada"])
    heard = kip(memory, "FIND(?p.id) WHERE { ?c {id: :id} ?p (?s, ?pred, ?c) }", id=ids["ada"])
    assert shown == sorted({*said, *heard})
    beliefs = dict(
        kip(
            memory,
            "FIND(?p.id, ?b.status) WHERE { ?c {id: :id} ?p (?c, ?pred, ?o) ?b BELIEF (?p) }",
            id=ids["ada"],
        )
    )
    for proposition, status in beliefs.items():
        badge = page.locator(f'li.proposition[data-proposition="{proposition}"] .belief')
        expect(badge).to_have_text(status)
    expect(page.locator("svg.graph g.node")).to_have_count(1 + len(shown))
    screenshot(page, "inspector.png", tmp_path)

    # Hop 1: Charles, through the graph.
    page.locator(f'svg.graph g.node[data-concept="{ids["charles"]}"] circle').click()
    expect(card).to_have_attribute("data-id", ids["charles"])
    expect(page.locator("#card h2.name")).to_have_text("Charles Babbage")
    # Hop 2: London, through the proposition list.
    page.locator(f'#card li.proposition a[data-concept="{ids["london"]}"]').first.click()
    expect(card).to_have_attribute("data-id", ids["london"])
    into_london = kip(
        memory, "FIND(?p.id) WHERE { ?c {id: :id} ?p (?s, ?pred, ?c) }", id=ids["london"]
    )
    expect(page.locator("#card li.proposition")).to_have_count(len(into_london))
    assert page.url.endswith(f"#{ids['london']}")


def test_the_history_view_shows_the_past(browser: Browser, seeded: Any, tmp_path: Path) -> None:
    memory, ids, url = seeded
    page = page_for(browser, KEY)
    page.goto(f"{url}/view/#{ids['ada']}")
    history = page.locator("#card ol.history")
    expect(history.locator("li.commit")).to_have_count(4)
    expect(history).to_contain_text("active → superseded")
    expect(history).to_contain_text('name "Ada Lovelace"')
    page.locator('#card ol.history a.seq[data-as-of="1"]').click()
    expect(page.locator("#card .as-of")).to_contain_text("seq 1")
    then = kip(memory, "FIND(?c.name) WHERE { ?c {id: :id} } AS OF SEQ 1", id=ids["ada"])[0]
    expect(page.locator("#card h2.name")).to_have_text(then)
    timezone = page.locator('#card li.proposition:has(.predicate:text-is("timezone"))')
    expect(timezone).to_have_count(1)  # the correction came later
    expect(timezone.locator("li.assertion")).to_have_class("assertion active")
    screenshot(page, "inspector-history.png", tmp_path)


def test_changes_arrive_live(browser: Browser, seeded: Any) -> None:
    memory, _, url = seeded
    page = page_for(browser, KEY)
    page.goto(f"{url}/view/")
    expect(page.locator("#live")).to_have_text("live")
    written = memory.execute_kip(
        'UPSERT CONCEPT ?t { MATCH { type: "Topic", key: "engines" } '
        'SET FIELDS { name: "Engines" } }'
    )
    seq = written["results"][0]["receipt"]["space_seq"]
    line = page.locator(f'#changes li.change[data-seq="{seq}"]')
    expect(line).to_contain_text("create concept")
    line.locator("a[data-concept]").click()
    expect(page.locator("#card h2.name")).to_have_text("Engines")


def test_without_the_key_the_page_gets_401(browser: Browser, seeded: Any) -> None:
    _, _, url = seeded
    # Chromium either shows the 401 or, having no password to ask anyone for,
    # gives up on the navigation (ERR_INVALID_AUTH_CREDENTIALS). The
    # server's answer, asked from the same browser context, is 401 with a
    # Basic challenge, and says nothing of the memory.
    for key in (None, "not-the-key"):
        page = page_for(browser, key)
        try:
            shown = page.goto(f"{url}/view/")
        except PlaywrightError as err:
            assert "ERR_INVALID_AUTH_CREDENTIALS" in str(err)
        else:
            assert shown is not None
            assert shown.status == 401
            assert "Ada" not in page.content()
        for path in ("/view/", "/view/api/primer", "/view/api/card?id=C-1", "/view/api/changes"):
            answer = page.request.get(f"{url}{path}")
            assert answer.status == 401, path
            assert answer.headers["www-authenticate"].startswith("Basic")
            assert "Ada" not in answer.text()


def test_each_caller_sees_only_its_memory(browser: Browser, tmp_path: Path) -> None:
    with anda.Nexus(tenancy="per_caller") as memory:
        seed(memory, caller="alice")
        memory.execute_kip(
            'UPSERT CONCEPT ?p { MATCH { type: "Person", key: "bob" } SET FIELDS { name: "Bob" } }',
            caller="bob",
        )
        keys = {"key-alice": "alice", "key-bob": "bob"}
        app = create_app(memory, api_keys=keys, close_memory=False)
        with on_uvicorn(app) as url:
            alice, bob = page_for(browser, "key-alice"), page_for(browser, "key-bob")
            for page in (alice, bob):
                page.goto(f"{url}/view/")
                page.locator('#primer a[data-type="Person"]').click()
            expect(alice.locator("#hits li.hit")).to_have_count(2)
            expect(alice.locator("#hits")).to_contain_text("Ada Lovelace")
            expect(bob.locator("#hits li.hit")).to_have_count(1)
            expect(bob.locator("#hits")).to_contain_text("Bob")
            bob.fill("#term", "Ada")
            bob.click("#search button")
            expect(bob.locator("#hits")).to_contain_text("no hits")
            expect(bob.locator("#primer .counts")).to_contain_text("concept1")
