"""anda.integrations.langgraph: AndaStore against the real LangGraph and LangMem.

Where LangGraph's semantics are defined by its own reference store
(``InMemoryStore``), the same operations run on both and must agree. LangMem's
memory tools run on the store unchanged, and the example runs a LangGraph
agent with them against the local provider stand-in.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    PutOp,
    SearchItem,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore

import anda
from anda.integrations.langgraph import ITEM_TYPE, AndaStore
from conftest import run_python
from example_runner import run_example
from provider_standin import Answer, StandIn, ToolCall, call_id, tool_results

NAMESPACES = [
    ("docs",),
    ("docs", "reports"),
    ("docs", "reports", "2025"),
    ("docs", "drafts"),
    ("users", "alice", "prefs"),
    ("users", "bob", "prefs"),
    ("cache", "v1"),
]
VALUES = [
    {"text": "quarterly revenue report", "status": "active", "score": 4.5, "tags": ["a", "b"]},
    {"text": "draft of the launch plan", "status": "draft", "score": 2, "meta": {"lang": "en"}},
    {"text": "notes about dark mode", "status": "active", "meta": {"lang": "fr"}, "score": 7},
    {"text": "jazz and coffee", "score": 9.75, "owner": None},
]


# langmem 0.0.30 declares Python 3.10 but imports typing.NotRequired (3.11+), so
# the test requirements install it from 3.11 on only.
needs_langmem = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="langmem 0.0.30 does not import on Python 3.10"
)


@pytest.fixture
def store() -> Iterator[AndaStore]:
    with anda.Nexus() as nexus:
        yield AndaStore(nexus)


def fill(store: BaseStore) -> None:
    for n, namespace in enumerate(NAMESPACES):
        for k, value in enumerate(VALUES):
            store.put(namespace, f"k{k}", {**value, "n": n})


def keys(items: list[Any]) -> set[tuple[tuple[str, ...], str]]:
    return {(item.namespace, item.key) for item in items}


def test_put_get_and_what_an_item_holds(store: AndaStore) -> None:
    assert isinstance(store, BaseStore)
    before = datetime.now(timezone.utc)
    store.put(("docs", "reports"), "q1", {"text": "revenue", "nested": {"a": [1, 2.5, None]}})
    item = store.get(("docs", "reports"), "q1")
    assert isinstance(item, Item)
    assert (item.namespace, item.key) == (("docs", "reports"), "q1")
    assert item.value == {"text": "revenue", "nested": {"a": [1, 2.5, None]}}
    assert item.created_at.tzinfo is not None
    assert before.replace(microsecond=0) <= item.created_at <= item.updated_at
    store.put(("docs", "reports"), "q1", {"text": "revised"})
    again = store.get(("docs", "reports"), "q1")
    assert again.value == {"text": "revised"}  # the whole value is replaced
    assert again.created_at == item.created_at
    assert again.updated_at > item.updated_at
    assert store.get(("docs", "reports"), "q2") is None
    assert store.get(("docs",), "q1") is None  # a namespace is exact, not a prefix


def test_namespaces_are_validated_as_langgraph_validates_them(store: AndaStore) -> None:
    for bad in [(), ("langgraph", "x")]:
        with pytest.raises(InvalidNamespaceError):
            store.put(bad, "k", {"v": 1})
    for bad_label in [("a.b",), ("",), ("a", 1), ("nul\x00",)]:
        with pytest.raises(InvalidNamespaceError):
            store.put(bad_label, "k", {"v": 1})  # type: ignore[arg-type]
        with pytest.raises(InvalidNamespaceError):
            store.get(bad_label, "k")  # type: ignore[arg-type]
        with pytest.raises(InvalidNamespaceError):
            store.search(bad_label)  # type: ignore[arg-type]
    with pytest.raises(InvalidNamespaceError):
        store.batch([GetOp(("a.b",), "k")])


def test_ttl_is_reported_unsupported(store: AndaStore) -> None:
    assert store.supports_ttl is False
    with pytest.raises(NotImplementedError, match="TTL"):
        store.put(("docs",), "k", {"v": 1}, ttl=5)
    with pytest.raises(NotImplementedError, match="TTL"):
        store.batch([PutOp(("docs",), "k", {"v": 1}, ttl=5.0)])
    store.put(("docs",), "k", {"v": 1}, ttl=None)
    assert store.get(("docs",), "k").value == {"v": 1}


FILTERS: list[dict[str, Any] | None] = [
    None,
    {"status": "active"},
    {"status": "draft", "n": 1},
    {"score": {"$gt": 4}},
    {"score": {"$gte": 2, "$lt": 9}},
    {"score": {"$lte": 2}},
    {"status": {"$ne": "active"}},
    {"status": {"$eq": "draft"}},
    {"meta": {"lang": "fr"}},
    {"tags": ["a", "b"]},
    {"owner": None},
    {"owner": {"$ne": None}},
    {"missing": "x"},
]


@pytest.mark.parametrize("conditions", FILTERS, ids=[json.dumps(f) for f in FILTERS])
@pytest.mark.parametrize("prefix", [(), ("docs",), ("docs", "reports"), ("users", "alice")])
def test_search_filters_agree_with_langgraphs_own_store(
    store: AndaStore, prefix: tuple[str, ...], conditions: dict[str, Any] | None
) -> None:
    reference = InMemoryStore()
    fill(reference)
    fill(store)
    expected = reference.search(prefix, filter=conditions, limit=1000)
    found = store.search(prefix, filter=conditions, limit=1000)
    assert keys(found) == keys(expected)
    assert all(isinstance(item, SearchItem) and item.score is None for item in found)
    # Without a query, the most recently updated first; pages slice that order.
    page = store.search(prefix, filter=conditions, limit=3, offset=2)
    assert [(i.namespace, i.key) for i in page] == [(i.namespace, i.key) for i in found[2:5]]


def test_a_comparison_on_a_missing_field_matches_nothing(store: AndaStore) -> None:
    # As in LangGraph's PostgreSQL store (its in-memory store raises TypeError here).
    store.put(("docs",), "with", {"score": 5})
    store.put(("docs",), "without", {"text": "no score"})
    assert [i.key for i in store.search(("docs",), filter={"score": {"$gt": 1}})] == ["with"]
    assert [i.key for i in store.search(("docs",), filter={"score": {"$lte": 9}})] == ["with"]


def test_search_by_query_is_the_engines_keyword_search(store: AndaStore) -> None:
    fill(store)
    found = store.search(("docs",), query="revenue report")
    assert found, "a keyword match was missed"
    assert {item.value["text"] for item in found} == {"quarterly revenue report"}
    assert {item.namespace[0] for item in found} == {"docs"}
    scores = [item.score for item in found]
    assert all(isinstance(score, float) and score > 0 for score in scores)
    assert scores == sorted(scores, reverse=True)
    narrowed = store.search(("docs",), query="revenue report", filter={"n": 1})
    assert keys(narrowed) == {(("docs", "reports"), "k0")}
    assert len(store.search((), query="revenue report", limit=2, offset=1)) == 2
    assert store.search(("docs",), query="nothing-like-this-anywhere") == []


LISTINGS = [
    {},
    {"prefix": ("docs",)},
    {"prefix": ("docs", "reports")},
    {"suffix": ("prefs",)},
    {"prefix": ("users", "*", "prefs")},
    {"prefix": ("*", "reports")},
    {"max_depth": 1},
    {"prefix": ("docs",), "max_depth": 2},
    {"limit": 2, "offset": 1},
    {"prefix": ("nothing",)},
]


@pytest.mark.parametrize("listing", LISTINGS, ids=[repr(listing) for listing in LISTINGS])
def test_list_namespaces_agrees_with_langgraphs_own_store(
    store: AndaStore, listing: dict[str, Any]
) -> None:
    reference = InMemoryStore()
    fill(reference)
    fill(store)
    assert store.list_namespaces(**listing) == reference.list_namespaces(**listing)


def test_a_delete_is_verified_gone_from_get_search_and_listing(store: AndaStore) -> None:
    fill(store)
    store.delete(("docs", "drafts"), "k1")
    assert store.get(("docs", "drafts"), "k1") is None
    assert (("docs", "drafts"), "k1") not in keys(store.search((), limit=1000))
    assert (("docs", "drafts"), "k1") not in keys(store.search((), query="launch plan"))
    assert store.get(("docs",), "k1") is not None  # only that item went
    # The item is purged: no concept of it is left for KIP to find either.
    rows = store.memory.execute_kip(
        f'FIND(?i.key) WHERE {{ ?i {{type: "{ITEM_TYPE}"}} '
        'FILTER(STARTS_WITH(?i.key, "[\\"docs\\",\\"drafts\\",")) }'
    )["results"][0]["result"]
    assert '["docs","drafts","k1"]' not in rows
    assert '["docs","drafts","k0"]' in rows
    for k in range(len(VALUES)):
        store.delete(("cache", "v1"), f"k{k}")
    assert ("cache", "v1") not in store.list_namespaces()
    store.delete(("docs",), "never-there")  # a delete of nothing is no error
    store.put(("docs", "drafts"), "k1", {"text": "back again"})
    assert store.get(("docs", "drafts"), "k1").value == {"text": "back again"}


def test_a_batch_reads_first_then_writes_in_one_transaction(store: AndaStore) -> None:
    store.put(("docs",), "a", {"v": 1})
    results = store.batch(
        [
            PutOp(("docs",), "a", {"v": 2}),
            GetOp(("docs",), "a"),
            PutOp(("docs",), "b", {"v": 1}),
            PutOp(("docs",), "b", {"v": 3}),  # the last write to an item wins
            SearchOp(("docs",)),
            ListNamespacesOp(),
            PutOp(("docs",), "c", {"v": 1}),
            PutOp(("docs",), "c", None),
        ]
    )
    # Reads see the store as it was before the batch's writes, as InMemoryStore's do.
    assert results[0] is None
    assert results[2] is None
    assert results[1].value == {"v": 1}
    assert [item.key for item in results[4]] == ["a"]
    assert results[5] == [("docs",)]
    assert store.get(("docs",), "a").value == {"v": 2}
    assert store.get(("docs",), "b").value == {"v": 3}
    assert store.get(("docs",), "c") is None
    # A batch whose write the engine refuses writes nothing at all.
    too_big = anda.MAX_SAFE_INTEGER + 1
    with pytest.raises((ValueError, anda.KipError)):
        store.batch([PutOp(("docs",), "d", {"v": 1}), PutOp(("docs",), "e", {"v": too_big})])
    assert store.get(("docs",), "d") is None


def test_abatch_uses_only_the_memorys_async_calls() -> None:
    class AsyncOnly:
        def __init__(self, memory: anda.Nexus) -> None:
            self.memory = memory
            self.calls = 0

        def execute_kip(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a blocking call on the event loop")

        async def execute_kip_async(self, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return await self.memory.execute_kip_async(*args, **kwargs)

    async def main(store: AndaStore) -> Any:
        await store.aput(("docs",), "a", {"text": "async jazz"})
        found = await store.asearch(("docs",), query="jazz")
        await store.adelete(("docs",), "a")
        return found, await store.aget(("docs",), "a"), await store.alist_namespaces()

    with anda.Nexus() as nexus:
        memory = AsyncOnly(nexus)
        found, gone, namespaces = asyncio.run(main(AndaStore(memory)))  # type: ignore[arg-type]
    assert [item.value for item in found] == [{"text": "async jazz"}]
    assert gone is None
    assert namespaces == []
    assert memory.calls >= 5


def test_each_user_lives_in_their_own_memory() -> None:
    with anda.Nexus(tenancy="per_caller") as users:
        store = AndaStore(users, caller_label=1)
        store.put(("memories", "alice"), "m1", {"text": "Alice lives in Lisbon"})
        store.put(("memories", "bob"), "m1", {"text": "Bob lives in Oslo"})
        assert store.get(("memories", "alice"), "m1").value["text"] == "Alice lives in Lisbon"
        assert store.search(("memories", "bob"), query="Lisbon") == []
        assert [i.value["text"] for i in store.search(("memories", "bob"))] == ["Bob lives in Oslo"]
        assert store.list_namespaces(prefix=("memories", "alice")) == [("memories", "alice")]
        # The engine enforces it: alice's memory is not readable as bob, nor shared.
        find = f'FIND(?i.attributes.value) WHERE {{ ?i {{type: "{ITEM_TYPE}"}} }}'
        rows = users.execute_kip(find, caller="alice")["results"][0]["result"]
        assert rows == [{"text": "Alice lives in Lisbon"}]
        # No operation may span users.
        for call in (
            lambda: store.search(("memories",)),
            lambda: store.list_namespaces(),
            lambda: store.get(("memories",), "m1"),
        ):
            with pytest.raises(ValueError, match="names no user"):
                call()
        # One fixed caller for every operation.
        mine = AndaStore(users, caller="carol")
        mine.put(("notes",), "n", {"text": "carol's"})
        assert store.search(("memories", "carol")) == []
        assert [i.key for i in mine.search(())] == ["n"]
    with pytest.raises(ValueError, match="not both"):
        AndaStore(anda.Nexus(), caller="a", caller_label=1)


def test_the_store_works_over_a_client(tmp_path: Path) -> None:
    from test_server import serving  # here: the server's own imports are not every test's

    with serving(tmp_path, in_memory=True) as served, anda.Client(served.url) as client:
        store = AndaStore(client)
        store.put(("docs",), "a", {"text": "remote jazz"})
        assert [i.key for i in store.search(("docs",), query="jazz")] == ["a"]
        store.delete(("docs",), "a")
        assert asyncio.run(store.aget(("docs",), "a")) is None


@needs_langmem
def test_langmem_tools_run_on_the_store() -> None:
    from langmem import create_manage_memory_tool, create_search_memory_tool

    with anda.Nexus(tenancy="per_caller") as users:
        store = AndaStore(users, caller_label=1)
        namespace = ("memories", "{langgraph_user_id}")
        manage = create_manage_memory_tool(namespace=namespace, store=store)
        search = create_search_memory_tool(namespace=namespace, store=store)
        alice = {"configurable": {"langgraph_user_id": "alice"}}
        bob = {"configurable": {"langgraph_user_id": "bob"}}
        created = manage.invoke({"content": "Alice prefers dark mode"}, alice)
        memory_id = created.rsplit(" ", 1)[1]
        found = json.loads(search.invoke({"query": "dark mode"}, alice))
        assert [(m["key"], m["value"]) for m in found] == [
            (memory_id, {"content": "Alice prefers dark mode"})
        ]
        assert json.loads(search.invoke({"query": "dark mode"}, bob)) == []
        manage.invoke(
            {"content": "Alice prefers light mode", "action": "update", "id": memory_id}, alice
        )
        found = json.loads(search.invoke({"query": "light mode"}, alice))
        assert [m["value"]["content"] for m in found] == ["Alice prefers light mode"]

        async def delete() -> Any:
            await manage.ainvoke({"action": "delete", "id": memory_id}, alice)
            return await search.ainvoke({"query": "mode"}, alice)

        assert json.loads(asyncio.run(delete())) == []
        assert store.get(("memories", "alice"), memory_id) is None


def test_without_langgraph_the_import_names_the_extra() -> None:
    proc = run_python(
        "import sys\n"
        "sys.modules['langgraph'] = None  # as if not installed\n"
        "try:\n"
        "    import anda.integrations.langgraph\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert "langgraph is not installed: pip install 'anda[langgraph]'" in proc.stdout


# -- the example: a LangGraph agent with LangMem's tools, against the stand-in ------------


@needs_langmem
@pytest.mark.timeout(180)
def test_the_langgraph_agent_example(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
    try:
        import langgraph_agent
    finally:
        sys.path.pop(0)
    with anda.Nexus() as scratch:
        sent = [convert_to_openai_tool(t) for t in langgraph_agent.agent_tools(scratch, "alice")]
    assert [t["function"]["name"] for t in sent] == [
        "manage_memory",
        "search_memory",
        "execute_kip_readonly",
    ]
    assert sent[2:] == anda.tools.openai(readonly=True)
    request = "Remember that I prefer dark mode."
    recall = f'FIND(?i.attributes.value.content) WHERE {{ ?i {{type: "{ITEM_TYPE}"}} }}'
    script = [
        ToolCall("", name="manage_memory", raw={"content": "prefers dark mode"}, check=False),
        ToolCall("", name="search_memory", raw={"query": "dark mode"}, check=False),
        ToolCall(recall, name="execute_kip_readonly"),
        Answer("Noted."),
    ]
    db = tmp_path / "memory"
    with StandIn(script, request=request, model="standin-model", tools={"chat": sent}) as api:
        proc = run_example("langgraph_agent.py", api, "--db", str(db), "--user", "alice", request)
    assert api.failures == [], proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Noted."
    results = tool_results("chat", api.exchanges[3].body)
    assert results[call_id("chat", 0)][0].startswith("created memory ")
    [found] = json.loads(results[call_id("chat", 1)][0])
    assert (found["namespace"], found["value"]) == (
        ["memories", "alice"],
        {"content": "prefers dark mode"},
    )
    kip = json.loads(results[call_id("chat", 2)][0])
    assert kip["results"][0]["result"] == ["prefers dark mode"]
    with anda.Nexus(db, tenancy="per_caller") as users:
        store = AndaStore(users, caller_label=1)
        assert [i.value for i in store.search(("memories", "alice"))] == [
            {"content": "prefers dark mode"}
        ]
        assert store.search(("memories", "bob")) == []
