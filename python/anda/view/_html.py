"""The inspector's HTML, written once for the page and for notebooks.

Every function takes what :mod:`anda.view._reads` read and returns an HTML
fragment in which every value from the memory is escaped. Links to a concept
carry ``data-concept`` (and ``data-as-of`` for a past state): the page's
script follows them; in a notebook they are plain text. The graph is SVG
with positions from :mod:`anda.view._layout`: no script draws it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from anda.view._layout import layout

__all__ = [
    "card_html",
    "changes_html",
    "error_html",
    "graph_svg",
    "history_html",
    "inline",
    "primer_html",
    "search_html",
    "stylesheet",
]

_BELIEF_CLASS = {
    "accepted": "accepted",
    "rejected": "rejected",
    "contested": "contested",
    "uncertain": "uncertain",
    "insufficient": "insufficient",
}


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def stylesheet() -> str:
    """The inspector's CSS (the page's ``view.css``), every rule under ``.anda-view``."""
    return (resources.files("anda.view") / "static" / "view.css").read_text(encoding="utf-8")


def inline(fragment: str) -> str:
    """A fragment that stands alone (a notebook cell): the CSS inline, no script."""
    return f'<div class="anda-view"><style>{stylesheet()}</style>{fragment}</div>'


def _label(summary: Mapping[str, Any] | None, fallback: str) -> str:
    if not summary:
        return fallback
    return str(summary.get("name") or summary.get("key") or summary.get("id") or fallback)


def concept_link(concept_id: str, names: Mapping[str, Any], as_of: int | None = None) -> str:
    summary = names.get(concept_id)
    when = "" if as_of is None else f' data-as-of="{int(as_of)}"'
    kind = f' <span class="type">{_e(summary["type"])}</span>' if summary else ""
    return (
        f'<a class="concept" href="#{_e(concept_id)}" data-concept="{_e(concept_id)}"{when}>'
        f"{_e(_label(summary, concept_id))}</a>{kind}"
    )


def _endpoint(end: Mapping[str, Any], names: Mapping[str, Any], as_of: int | None) -> str:
    if "id" in end:
        return concept_link(end["id"], names, as_of)
    return f'<code class="literal">{_e(json.dumps(end.get("literal"), ensure_ascii=False))}</code>'


def _fields(rows: Sequence[tuple[str, Any]]) -> str:
    cells = "".join(
        f"<tr><th>{_e(name)}</th><td>{_value(value)}</td></tr>"
        for name, value in rows
        if value not in (None, {}, [])
    )
    return f'<table class="fields">{cells}</table>'


def _value(value: Any) -> str:
    if isinstance(value, str):
        return _e(value)
    return f"<code>{_e(json.dumps(value, ensure_ascii=False, sort_keys=True))}</code>"


def card_html(card: Mapping[str, Any], history: Sequence[Mapping[str, Any]] | None = None) -> str:
    """A concept's card: who it is, its fields, its neighbourhood as a
    graph, its propositions with their assertions, and its history."""
    as_of = card.get("as_of")
    names = card.get("names", {})
    when = (
        f'<p class="as-of">As of <b>seq {_e(as_of)}</b> (<code>AS OF SEQ {_e(as_of)}</code>) · '
        f'<a href="#{_e(card["id"])}" data-concept="{_e(card["id"])}">back to now</a></p>'
        if as_of is not None
        else f'<p class="as-of now">Now: seq {_e(card.get("seq"))}</p>'
    )
    head = (
        f'<header><span class="type">{_e(card.get("type"))}</span> '
        f'<h2 class="name">{_e(_label(card, card["id"]))}</h2> '
        f'<span class="id">{_e(card["id"])}</span></header>{when}'
    )
    system = card.get("system", {})
    fields = _fields(
        [
            ("id", card["id"]),
            ("type", card.get("type_ref")),
            ("key", card.get("key")),
            ("name", card.get("name")),
            ("state", system.get("state")),
            ("version", system.get("version")),
            ("created", system.get("created_at")),
            ("updated", system.get("updated_at")),
            *sorted((f"attributes.{k}", v) for k, v in card.get("attributes", {}).items()),
            *sorted((f"facets.{k}", v) for k, v in card.get("facets", {}).items()),
        ]
    )
    parts = [head, '<section class="fields">', fields, "</section>"]
    parts += ['<section class="graph">', graph_svg(card), "</section>"]
    parts += ['<section class="propositions"><h3>Propositions</h3>']
    parts.append(_propositions(card.get("propositions", []), names, as_of))
    parts.append("</section>")
    if history is not None:
        parts += ['<section class="history"><h3>History</h3>', history_html(card, history)]
        parts.append("</section>")
    return f'<article class="card" data-id="{_e(card["id"])}">{"".join(parts)}</article>'


def _propositions(
    propositions: Sequence[Mapping[str, Any]], names: Mapping[str, Any], as_of: int | None
) -> str:
    if not propositions:
        return '<p class="empty">No propositions.</p>'
    rows = []
    for proposition in propositions:
        belief = proposition.get("belief") or "—"
        badge = _BELIEF_CLASS.get(str(belief), "none")
        statement = (
            f"{_endpoint(proposition['subject'], names, as_of)} "
            f'<span class="predicate">{_e(proposition["predicate"])}</span> '
            f"{_endpoint(proposition['object'], names, as_of)}"
        )
        claims = "".join(_assertion(a, names, as_of) for a in proposition.get("assertions", []))
        rows.append(
            f'<li class="proposition" data-proposition="{_e(proposition["id"])}">'
            f'<div class="statement">{statement} <span class="belief {badge}" '
            f'title="BELIEF status">{_e(belief)}</span> '
            f'<span class="id">{_e(proposition["id"])}</span></div>'
            f'<ul class="assertions">{claims}</ul></li>'
        )
    return f'<ul class="propositions">{"".join(rows)}</ul>'


def _assertion(assertion: Mapping[str, Any], names: Mapping[str, Any], as_of: int | None) -> str:
    lifecycle = assertion.get("lifecycle") or {}
    status = lifecycle.get("status", "active")
    details = [
        f"by {concept_link(assertion['by'], names, as_of)}"
        if isinstance(assertion.get("by"), str)
        else "by ?",
        _e(assertion.get("stance")),
        _e(assertion.get("mode")),
    ]
    if assertion.get("confidence") is not None:
        details.append(f"confidence {_e(assertion['confidence'])}")
    if assertion.get("asserted_at"):
        details.append(f"said {_e(assertion['asserted_at'])}")
    valid = assertion.get("valid_time") or {}
    if valid:
        span = " to ".join(_e(_instant(valid.get(end))) for end in ("from", "until"))
        details.append(f"valid {span}")
    for relation in ("superseded_by", "supersedes"):
        if lifecycle.get(relation):
            details.append(f"{relation.replace('_', ' ')} {_e(', '.join(lifecycle[relation]))}")
    return (
        f'<li class="assertion {_e(status)}" data-assertion="{_e(assertion.get("id"))}">'
        f'<span class="status">{_e(status)}</span> {" · ".join(details)} '
        f'<span class="id">{_e(assertion.get("id"))}</span></li>'
    )


def _instant(value: Any) -> str:
    if value is None:
        return "…"
    if isinstance(value, dict):  # a time bound {earliest, latest}
        return f"[{value.get('earliest', '…')}, {value.get('latest', '…')}]"
    return str(value)


def graph_svg(card: Mapping[str, Any], *, width: int = 640, height: int = 360) -> str:
    """The neighbourhood of a card as SVG: the concept in the middle, each
    concept or value it is related to around it, each edge its predicate."""
    focus = card["id"]
    names = card.get("names", {})
    nodes = [focus]
    edges: list[tuple[str, str, str]] = []
    literals: dict[str, Any] = {}
    for proposition in card.get("propositions", []):
        ends = []
        for side in ("subject", "object"):
            end = proposition[side]
            if "id" in end:
                ends.append(end["id"])
            else:
                node = f"literal:{proposition['id']}"
                literals[node] = end.get("literal")
                ends.append(node)
        nodes += [end for end in ends if end not in nodes]
        edges.append((ends[0], ends[1], str(proposition["predicate"])))
    spots = layout(nodes, [(a, b) for a, b, _ in edges], focus=focus, width=width, height=height)
    as_of = card.get("as_of")
    when = "" if as_of is None else f' data-as-of="{int(as_of)}"'
    parts = [
        f'<svg class="graph" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="neighbourhood of {_e(focus)}">',
        '<defs><marker id="anda-arrow" viewBox="0 0 10 10" refX="22" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" class="arrow"/></marker></defs>',
    ]
    for a, b, predicate in edges:
        (x1, y1), (x2, y2) = spots[a], spots[b]
        parts.append(
            f'<g class="edge"><line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" '
            f'marker-end="url(#anda-arrow)"/>'
            f'<text x="{(x1 + x2) / 2:.1f}" y="{(y1 + y2) / 2 - 4:.1f}">{_e(predicate)}</text></g>'
        )
    for node in nodes:
        x, y = spots[node]
        if node in literals:
            text = json.dumps(literals[node], ensure_ascii=False)
            parts.append(
                f'<g class="node literal"><rect x="{x - 30}" y="{y - 11}" width="60" height="22" '
                f'rx="4"/><text x="{x}" y="{y + 4}">{_e(text)}</text></g>'
            )
            continue
        summary = names.get(node)
        role = "focus" if node == focus else "neighbour"
        parts.append(
            f'<g class="node {role}" data-concept="{_e(node)}"{when} tabindex="0">'
            f"<title>{_e(node)}</title>"
            f'<circle cx="{x}" cy="{y}" r="{16 if node == focus else 12}"/>'
            f'<text x="{x}" y="{y + 30}">{_e(_label(summary, node))}</text>'
            f'<text class="type" x="{x}" y="{y + 43}">'
            f"{_e(summary.get('type') if summary else '')}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def history_html(card: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> str:
    """The timeline of a card: each commit that touched the concept or one
    of its assertions, what it did, and a link to the card as it was then."""
    if not history:
        return '<p class="empty">No history.</p>'
    labels = {proposition["id"]: proposition for proposition in card.get("propositions", [])}
    names = card.get("names", {})
    rows = []
    for line in reversed(history):
        described = []
        for change in line.get("changes", []):
            described.append(_change(change, card, labels, names, line))
        rows.append(
            f'<li class="commit" data-seq="{_e(line["seq"])}">'
            f'<a class="seq" href="#{_e(card["id"])}" data-concept="{_e(card["id"])}" '
            f'data-as-of="{_e(line["seq"])}" title="the card as of this commit">'
            f"seq {_e(line['seq'])}</a> "
            f'<span class="when">{_e(line.get("committed_at"))}</span>'
            f"<ul>{''.join(described)}</ul></li>"
        )
    return f'<ol class="history">{"".join(rows)}</ol>'


def _change(
    change: Mapping[str, Any],
    card: Mapping[str, Any],
    labels: Mapping[str, Any],
    names: Mapping[str, Any],
    line: Mapping[str, Any],
) -> str:
    op = str(change.get("op"))
    if change.get("id") == card["id"]:
        touched = ", ".join(change.get("touched", []))
        now = f" → name {_e(json.dumps(line.get('name'), ensure_ascii=False))}"
        what = f"{_e(op)} concept" + (f" ({_e(touched)})" if touched else "") + now
        return f'<li class="change concept">{what}</li>'
    proposition = labels.get(str(change.get("proposition")))
    about = ""
    if proposition is not None:
        about = (
            f": {_endpoint(proposition['subject'], names, None)} "
            f'<span class="predicate">{_e(proposition["predicate"])}</span> '
            f"{_endpoint(proposition['object'], names, None)}"
        )
    state = change.get("state")
    moved = f" {_e(state.get('from'))} → {_e(state.get('to'))}" if isinstance(state, dict) else ""
    return (
        f'<li class="change assertion">{_e(op)} assertion '
        f'<span class="id">{_e(change.get("id"))}</span>{moved}{about}</li>'
    )


def search_html(result: Mapping[str, Any]) -> str:
    """Search hits (or a type's concepts), each a link to its card."""
    hits = result.get("hits", [])
    how = (
        f"<code>SEARCH CONCEPT</code> {_e(json.dumps(result.get('term'), ensure_ascii=False))}"
        if result.get("by") == "SEARCH"
        else f"<code>FIND</code> concepts of type {_e(result.get('type') or 'any')}"
    )
    if not hits:
        return f'<p class="hits-head">{how}: no hits (a miss is not an absence).</p>'
    rows = "".join(
        f'<li class="hit">{concept_link(hit["id"], {hit["id"]: hit})} '
        f'<span class="key">{_e(hit.get("key"))}</span> <span class="id">{_e(hit["id"])}</span>'
        + (f' <span class="score">{hit["score"]:.2f}</span>' if hit.get("score") else "")
        + "</li>"
        for hit in hits
    )
    return f'<p class="hits-head">{how}: {len(hits)}</p><ul class="hits">{rows}</ul>'


def primer_html(primer: Mapping[str, Any]) -> str:
    """``DESCRIBE PRIMER``: the Space, what it holds, its schema."""
    space = primer.get("space", {})
    contents = primer.get("contents", {})
    schema = primer.get("schema", {})
    counts = "".join(
        f"<tr><th>{_e(kind)}</th><td>{_e(count)}</td></tr>" for kind, count in contents.items()
    )
    types = ", ".join(
        f'<a href="#" data-type="{_e(_short(t))}">{_e(_short(t))}</a>'
        for t in schema.get("types", [])
    )
    predicates = ", ".join(_e(_short(p)) for p in schema.get("predicates", []))
    return (
        f'<section class="primer"><h3>{_e(space.get("name") or space.get("id"))}</h3>'
        f'<p class="space" data-seq="{_e(space.get("seq"))}">{_e(space.get("id"))} · seq '
        f"{_e(space.get('seq'))}</p>"
        f'<table class="counts">{counts}</table>'
        f'<p class="types"><b>Types</b>: {types}</p>'
        f'<p class="predicates"><b>Predicates</b>: {predicates}</p>'
        f'<p class="packages"><b>Packages</b>: {_e(", ".join(schema.get("packages", [])))}</p>'
        "</section>"
    )


def _short(ref: object) -> str:
    return str(ref).rsplit("/", 1)[-1]


def changes_html(envelopes: Sequence[Mapping[str, Any]]) -> str:
    """Change Envelopes as lines, newest first (the page adds live ones itself)."""
    rows = []
    for envelope in reversed(envelopes):
        ops = ", ".join(
            f"{change.get('op')} {change.get('kind')} {change.get('id')}"
            for change in envelope.get("changes", [])
        )
        rows.append(
            f'<li class="change" data-seq="{_e(envelope.get("space_seq"))}">'
            f'<span class="seq">seq {_e(envelope.get("space_seq"))}</span> '
            f'<span class="when">{_e(envelope.get("committed_at"))}</span> {_e(ops)}</li>'
        )
    return f'<ol class="changes">{"".join(rows)}</ol>'


def error_html(error: BaseException) -> str:
    """A refused read, as the engine (or the server) said it."""
    code = getattr(error, "code", None) or type(error).__name__
    hint = getattr(error, "hint", None)
    return (
        f'<div class="error"><b>{_e(code)}</b>: {_e(error)}'
        + (f'<p class="hint">{_e(hint)}</p>' if hint else "")
        + "</div>"
    )


def response_html(response: Mapping[str, Any]) -> str:
    """A KIP response envelope: each operation's status and result, the
    concepts in it as links, every other value as JSON."""
    rows = []
    for index, result in enumerate(response.get("results") or []):
        status = result.get("status")
        body = result.get("result") if "result" in result else result.get("error")
        rows.append(
            f'<li class="result"><span class="status">#{index} {_e(status)}</span>'
            f"{_result_value(body)}</li>"
        )
    return (
        f'<p class="hits-head">status <b>{_e(response.get("status"))}</b></p>'
        f'<ol class="changes">{"".join(rows)}</ol>'
    )


def _result_value(value: Any) -> str:
    rows = value if isinstance(value, list) else [value]
    if rows and all(_is_concept(row) for row in rows):
        links = "".join(
            f"<li>{concept_link(row['id'], {row['id']: _concept_summary(row)})}</li>"
            for row in rows
        )
        return f'<ul class="hits">{links}</ul>'
    text = json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True)
    return f"<pre><code>{_e(text)}</code></pre>"


def _is_concept(value: Any) -> bool:
    return isinstance(value, dict) and value.get("kind") == "concept" and "id" in value


def _concept_summary(element: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": element["id"],
        "name": element.get("name"),
        "key": element.get("key"),
        "type": _short(element.get("schema_ref")),
    }
