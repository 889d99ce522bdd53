"""The inspector: see what a memory holds, read-only.

``python -m anda view --db ./memory`` opens it as a local web page, and
``python -m anda serve`` offers the same page at ``/view`` behind its keys.
In a notebook the same cards and graph show inline: :func:`card` (a concept,
now or as it was at a past ``space_seq``), :func:`search`, :func:`show` (a
response, as :meth:`anda.Nexus.execute_kip` returns it), and a memory
itself (``nexus`` as the last line of a cell: its primer and recent changes).

Everything here reads through the memory's read-only path
(``execute_request(..., readonly=True)``, ``execute_kip_readonly`` on the
wire), with a fixed set of KQL and META queries whose inputs are bound
parameters: nothing the inspector offers can write.

>>> import anda, anda.view
>>> with anda.Nexus() as nexus:
...     _ = nexus.execute_kip('''MUTATE {
...         UPSERT CONCEPT ?ada { MATCH { type: "Person", key: "ada" } SET FIELDS { name: "Ada" } }
...         UPSERT CONCEPT ?london {
...             MATCH { type: "Place", key: "london" } SET FIELDS { name: "London" }
...         }
...         ASSERT (?ada, "lives_in", ?london) { by: ?ada, mode: "stated" }
...     }''')
...     ada = anda.view.card(nexus, type="Person", key="ada")
>>> ada
<anda.view.Card C-1 Person 'Ada': 1 proposition>
>>> [(p["predicate"], p["belief"]) for p in ada.data["propositions"]]
[('lives_in', 'accepted')]
>>> "<svg" in ada._repr_html_()
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from anda.view import _html, _reads

__all__ = ["Card", "Hits", "Overview", "Shown", "card", "overview", "search", "show"]


def _reader(memory: Any, caller: str | None) -> Any:
    def execute(request: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = memory.execute_request(request, readonly=True, caller=caller)
        return response

    return execute


class Card:
    """A concept's card: :attr:`data` (what was read) and :attr:`history`
    (its timeline); shown as HTML in a notebook."""

    def __init__(self, data: dict[str, Any], history: list[dict[str, Any]] | None) -> None:
        self.data = data
        """The concept's card as the inspector reads it: its type, key, fields,
        attributes and propositions with their assertions."""
        self.history = history
        """Its commits, oldest first (``HISTORY``), or ``None`` when not read."""

    def _repr_html_(self) -> str:
        return _html.inline(_html.card_html(self.data, self.history))

    def __repr__(self) -> str:
        count = len(self.data["propositions"])
        when = "" if self.data["as_of"] is None else f" as of seq {self.data['as_of']}"
        return (
            f"<anda.view.Card {self.data['id']} {self.data['type']} {self.data['name']!r}{when}: "
            f"{count} proposition{'' if count == 1 else 's'}>"
        )


class Hits:
    """Concepts a search found (:attr:`data`); shown as a list in a notebook."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        """The search as the inspector reads it: the query and its ``hits``."""

    def _repr_html_(self) -> str:
        return _html.inline(_html.search_html(self.data))

    def __repr__(self) -> str:
        return f"<anda.view.Hits {[hit['id'] for hit in self.data['hits']]}>"


class Overview:
    """A memory at a glance: its primer and its most recent changes."""

    def __init__(self, primer: dict[str, Any], changes: list[dict[str, Any]]) -> None:
        self.primer = primer
        """The memory's primer (``DESCRIBE PRIMER``)."""
        self.changes = changes
        """The latest Change Envelopes (``CHANGES``), oldest first."""

    def _repr_html_(self) -> str:
        recent = "<h3>Recent changes</h3>" + _html.changes_html(self.changes)
        return _html.inline(_html.primer_html(self.primer) + recent)

    def __repr__(self) -> str:
        return f"<anda.view.Overview seq {self.primer.get('space', {}).get('seq')}>"


class Shown:
    """A KIP response, shown in a notebook: each operation's status and
    result, concepts as links and every other value as JSON."""

    def __init__(self, response: Mapping[str, Any]) -> None:
        self.response = response
        """The KIP response shown."""

    def _repr_html_(self) -> str:
        return _html.inline(_html.response_html(self.response))

    def __repr__(self) -> str:
        return f"<anda.view.Shown {self.response.get('status')}>"


def card(
    memory: Any,
    concept: str | None = None,
    *,
    type: str | None = None,
    key: str | None = None,
    as_of: int | None = None,
    history: bool = True,
    caller: str | None = None,
) -> Card:
    """The card of one concept, by ``concept`` (its id) or by ``type`` and
    ``key``: its fields, attributes, propositions (with their assertions and
    the memory's belief status) and neighbourhood; with ``history`` also
    the timeline of it and its assertions (``HISTORY ELEMENT``).

    Args:
        memory: any :class:`anda.Memory` (a Nexus or a Client).
        as_of: a past ``space_seq``: the card as the memory held it right
            after that commit (``AS OF SEQ``).
        caller: whose memory, under per-caller tenancy.

    Raises:
        LookupError: no such concept (at ``as_of``).
        anda.KipError: the engine refused a read.
    """
    execute = _reader(memory, caller)
    if concept is None:
        if type is None or key is None:
            raise TypeError("card() needs a concept id, or both type= and key=")
        concept = _reads.run(_reads.resolve(type, key), execute)
        if concept is None:
            raise LookupError(f"no concept of type {type!r} with key {key!r}")
    data = _reads.run(_reads.card(concept, as_of), execute)
    if data is None:
        where = "" if as_of is None else f" at seq {as_of}"
        raise LookupError(f"no concept {concept!r}{where}")
    timeline = _reads.run(_reads.history(data), execute) if history else None
    return Card(data, timeline)


def search(
    memory: Any, term: str = "", *, type: str | None = None, caller: str | None = None
) -> Hits:
    """Concepts matching ``term`` (``SEARCH CONCEPT``), or with no term the
    concepts of ``type`` (``FIND``)."""
    return Hits(_reads.run(_reads.search(term, type), _reader(memory, caller)))


def overview(memory: Any, *, caller: str | None = None, recent: int = 10) -> Overview:
    """The primer (``DESCRIBE PRIMER``) and the ``recent`` latest changes (``CHANGES``)."""
    execute = _reader(memory, caller)
    primer = _reads.run(_reads.primer(), execute)
    head = int(primer.get("space", {}).get("seq") or 0)
    recent_changes = _reads.run(_reads.changes(max(0, head - recent), recent), execute)
    return Overview(primer, recent_changes)


def show(response: Mapping[str, Any]) -> Shown:
    """``response`` (a plain dict, as ``execute_kip`` returns it) with an
    HTML view for notebooks: ``anda.view.show(nexus.execute_kip(...))``."""
    return Shown(response)
