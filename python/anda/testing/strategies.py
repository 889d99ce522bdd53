"""Hypothesis strategies for KIP commands and parameters, in the dialect of the
engine anda pins (KIP 2.0, anda_engine 0.17, the Cognitive Memory profile and
the general domain package that every anda store activates).

Commands are generated as small structured values (:class:`Upsert`,
:class:`Relate`, :class:`Find`, ...) and rendered to KIP text, so a failing
example shrinks to a short, readable command. Every value type can render
itself two ways: with ``:placeholders`` plus a parameters mapping, or with
the values written inline as literals.

>>> from hypothesis import given, settings
>>> import anda
>>> from anda.testing import strategies as kst
>>> @settings(max_examples=5, deadline=None)
... @given(kst.upserts())
... def test_upserts_succeed(upsert):
...     with anda.Nexus() as nexus:
...         command, parameters = upsert.render()
...         assert nexus.execute_kip(command, parameters)["status"] == "succeeded"
>>> test_upserts_succeed()

Where the engine's rules come from (so the strategies can be checked against
it): concept types and predicates from the profile packages
(``anda_cognitive_nexus/profiles/*.json``); value rules from
``anda_kip::json`` (finite binary64, integral values within ±(2**53 - 1));
nesting limits from ``anda_kip::parser`` (64 brackets) and AndaDB's stored
value depth (64); the 256-operation batch limit from ``anda_kip::parser``.
"""

from __future__ import annotations

import abc
import json
import math
from dataclasses import dataclass, field
from typing import Any

try:
    from hypothesis import strategies as st
except ImportError as err:  # pragma: no cover - exercised without hypothesis
    raise ImportError(
        "anda.testing.strategies needs Hypothesis: pip install 'anda[testing]' "
        "(or pip install hypothesis)"
    ) from err

from anda import MAX_SAFE_INTEGER

__all__ = [
    "BARE_CONCEPT_TYPES",
    "LITERAL_PREDICATES",
    "MAX_STORED_DEPTH",
    "RELATION_PREDICATES",
    "RESERVED_ATTRIBUTE_NAMES",
    "Concept",
    "Find",
    "Relate",
    "Statement",
    "Tombstone",
    "Upsert",
    "adversarial_parameters",
    "adversarial_text",
    "attribute_maps",
    "attribute_names",
    "concept_types",
    "concepts",
    "finds",
    "json_values",
    "keys",
    "kip_literal",
    "kip_string",
    "kml_writes",
    "kql_reads",
    "meta_commands",
    "names",
    "parameter_maps",
    "relates",
    "upserts",
    "valid_commands",
]

#: Concept types that can be created with only a type, key and name (the
#: other profile types declare required attributes).
BARE_CONCEPT_TYPES = ("Person", "Place", "Organization", "Topic")

#: Concept-to-concept predicates: name -> (subject type, object type).
RELATION_PREDICATES: dict[str, tuple[str, str]] = {
    "works_for": ("Person", "Organization"),
    "member_of": ("Person", "Organization"),
    "knows": ("Person", "Person"),
    "lives_in": ("Person", "Place"),
    "located_in": ("Place", "Place"),
    "interested_in": ("Person", "Topic"),
}

#: Predicates whose object is a string literal: name -> subject type.
LITERAL_PREDICATES: dict[str, str] = {"timezone": "Person", "speaks": "Person"}

#: Top-level attribute names the engine reserves.
RESERVED_ATTRIBUTE_NAMES = frozenset(
    {"_system", "governance", "space_id", "space_seq", "merged_into"}
)

#: How deep an attribute value may nest and still be stored (AndaDB keeps
#: values up to 64 levels; the envelope takes a few).
MAX_STORED_DEPTH = 50

# ---------------------------------------------------------------------------
# Scalars and values
# ---------------------------------------------------------------------------

# Any Unicode scalar value; lone surrogates ("Cs") have no UTF-8 form.
_TEXT_ALPHABET = st.characters(exclude_categories=["Cs"])


def kip_string(value: str) -> str:
    """A KIP string literal (KIP strings are JSON strings)."""
    return json.dumps(value, ensure_ascii=False)


def kip_literal(value: Any) -> str:
    """A JSON-compatible value written as a KIP literal."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def keys() -> st.SearchStrategy[str]:
    """Concept keys: non-empty strings (``""`` means "no key" to the engine)."""
    return st.text(_TEXT_ALPHABET, min_size=1, max_size=40)


def names() -> st.SearchStrategy[str]:
    """Display names: any non-empty text, quotes and escapes included."""
    return st.text(_TEXT_ALPHABET, min_size=1, max_size=60)


def attribute_names() -> st.SearchStrategy[str]:
    """Attribute names: identifiers, and quoted names with dots, spaces, unicode."""
    identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
    quoted = st.text(_TEXT_ALPHABET, min_size=1, max_size=20)
    return st.one_of(identifiers, quoted).filter(lambda n: n not in RESERVED_ATTRIBUTE_NAMES)


def _safe_floats() -> st.SearchStrategy[float]:
    # Integral floats come back as ints of equal value; beyond 2**53 they are
    # refused, as the engine reads them as integers.
    return st.floats(allow_nan=False, allow_infinity=False).filter(
        lambda x: not (x == math.floor(x) and abs(x) > MAX_SAFE_INTEGER)
    )


def json_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
        st.sampled_from([0, -1, 1, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 2**31, -(2**63) // 2**11]),
        _safe_floats(),
        st.sampled_from([0.1, -0.0, 5e-324, 1.5e-300, 2.0**52 - 0.5]),
        st.text(_TEXT_ALPHABET, max_size=40),
        st.sampled_from(["", "\x00", '"', "\\", "\n\t", "\u2028", "\U0001f600", ":name", "?x"]),
    )


def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """JSON values the engine stores and returns unchanged (up to key order)."""
    return st.recursive(
        json_scalars(),
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.dictionaries(st.text(_TEXT_ALPHABET, max_size=10), children, max_size=5),
        ),
        max_leaves=max_leaves,
    )


def attribute_maps() -> st.SearchStrategy[dict[str, Any]]:
    """Attribute maps for open concept types."""
    return st.dictionaries(attribute_names(), json_values(), min_size=1, max_size=4)


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Concept:
    """A concept, named the way the engine identifies it: type + key."""

    type: str
    key: str


class Statement(abc.ABC):
    """A KIP statement that renders with parameters or with literals."""

    @abc.abstractmethod
    def render(self) -> tuple[str, dict[str, Any]]:
        """The command with ``:placeholders``, and the parameters they take."""

    @abc.abstractmethod
    def render_literal(self) -> str:
        """The same command with every value written inline."""


@dataclass(frozen=True)
class Upsert(Statement):
    """``UPSERT CONCEPT`` by type and key, setting a name and attributes."""

    concept: Concept
    name: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def _body(self, value: Any) -> str:
        clauses = [f"MATCH {{ type: {kip_string(self.concept.type)}, key: {value('key')} }}"]
        if self.name is not None:
            clauses.append(f"SET FIELDS {{ name: {value('name')} }}")
        if self.attributes:
            items = ", ".join(
                f"{kip_string(name)}: {value(f'a{i}')}" for i, name in enumerate(self.attributes)
            )
            clauses.append(f"SET ATTRIBUTES {{ {items} }}")
        return "UPSERT CONCEPT ?c { " + " ".join(clauses) + " }"

    def _values(self) -> dict[str, Any]:
        values: dict[str, Any] = {"key": self.concept.key}
        if self.name is not None:
            values["name"] = self.name
        for i, attribute in enumerate(self.attributes.values()):
            values[f"a{i}"] = attribute
        return values

    def render(self) -> tuple[str, dict[str, Any]]:
        return self._body(lambda name: f":{name}"), self._values()

    def render_literal(self) -> str:
        values = self._values()
        return self._body(lambda name: kip_literal(values[name]))


@dataclass(frozen=True)
class Relate(Statement):
    """``ASSERT`` of a relation between two concepts (or a concept and a string).

    The endpoints are ids, so :meth:`render` needs them: ``ids`` maps each
    :class:`Concept` to its engine id (read it with ``FIND(?c.id)``).
    """

    subject: Concept
    predicate: str
    object: Concept | str
    ids: dict[Concept, str] = field(default_factory=dict, compare=False, hash=False)

    def _parts(self) -> tuple[str, Any]:
        obj = self.object
        return self.ids[self.subject], self.ids[obj] if isinstance(obj, Concept) else obj

    def render(self) -> tuple[str, dict[str, Any]]:
        subject, obj = self._parts()
        command = 'ASSERT (:s, :p, :o) { by: :s, mode: "stated" }'
        return command, {"s": subject, "p": self.predicate, "o": obj}

    def render_literal(self) -> str:
        subject, obj = self._parts()
        target = (
            f"{{id: {kip_string(obj)}}}" if isinstance(self.object, Concept) else kip_literal(obj)
        )
        return (
            f"ASSERT ({{id: {kip_string(subject)}}}, {kip_string(self.predicate)}, {target}) "
            f'{{ by: {{id: {kip_string(subject)}}}, mode: "stated" }}'
        )


@dataclass(frozen=True)
class Tombstone(Statement):
    """``TRANSITION ... TO "tombstoned"`` of one concept, selected by type and key."""

    concept: Concept

    def render(self) -> tuple[str, dict[str, Any]]:
        return (
            'TRANSITION ?c TO "tombstoned" WHERE { ?c {type: :type, key: :key} } LIMIT 1',
            {"type": self.concept.type, "key": self.concept.key},
        )

    def render_literal(self) -> str:
        return (
            f'TRANSITION ?c TO "tombstoned" WHERE {{ ?c {{type: {kip_string(self.concept.type)}, '
            f"key: {kip_string(self.concept.key)}}} }} LIMIT 1"
        )


_ORDERS = ("?c.key ASC", "?c.key DESC", "?c.name ASC", "?c.name DESC, ?c.key ASC")


@dataclass(frozen=True)
class Find(Statement):
    """A ``FIND`` over concepts of one type, with optional joins and modifiers.

    ``shape`` chooses the pattern family: ``"plain"`` (a type pattern),
    ``"filter"`` (FILTER on the name), ``"optional"`` / ``"not"`` (a relation
    inside OPTIONAL / NOT), ``"union"`` (two types), ``"join"`` (a relation
    joining two concept patterns on a shared variable), ``"count"`` (an
    aggregate grouped by type).
    """

    type: str
    shape: str = "plain"
    text: str = ""
    predicate: str = "knows"
    other_type: str = "Topic"
    order: str | None = None
    limit: int | None = None

    def _body(self, value: Any) -> str:
        t = value("type", self.type)
        projection = "?c.key, ?c.name"
        if self.shape == "count":
            projection = "?c.schema_ref, COUNT(?c)"
            where = f"?c {{type: {t}}}"
        elif self.shape == "filter":
            condition = f"FILTER(CONTAINS(?c.name, {value('text', self.text)}) || IS_NULL(?c.name))"
            where = f"?c {{type: {t}}} {condition}"
        elif self.shape == "optional":
            pred = value("pred", self.predicate)
            where = f"?c {{type: {t}}} OPTIONAL {{ (?c, {pred}, ?o) }}"
            projection = "?c.key, ?c.name, ?o.key"
        elif self.shape == "not":
            pred = value("pred", self.predicate)
            where = f"?c {{type: {t}}} NOT {{ (?c, {pred}, ?o) }}"
        elif self.shape == "union":
            other = value("other", self.other_type)
            where = f"?c {{type: {t}}} UNION {{ ?c {{type: {other}}} }}"
        elif self.shape == "join":
            pred = value("pred", self.predicate)
            where = (
                f"?c {{type: {t}}} ?o {{type: {value('other', self.other_type)}}} (?c, {pred}, ?o)"
            )
            projection = "?c.key, ?o.key"
        else:
            where = f"?c {{type: {t}}}"
        command = f"FIND({projection}) WHERE {{ {where} }}"
        if self.order is not None:
            command += f" ORDER BY {self.order}"
        if self.limit is not None:
            command += f" LIMIT {value('limit', self.limit)}"
        return command

    def render(self) -> tuple[str, dict[str, Any]]:
        parameters: dict[str, Any] = {}

        def placeholder(name: str, value: Any) -> str:
            parameters[name] = value
            return f":{name}"

        return self._body(placeholder), parameters

    def render_literal(self) -> str:
        return self._body(lambda _name, value: kip_literal(value))


def concept_types() -> st.SearchStrategy[str]:
    """Types a concept can be created with from a bare type, key and name."""
    return st.sampled_from(BARE_CONCEPT_TYPES)


def concepts(types: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Concept]:
    return st.builds(Concept, types if types is not None else concept_types(), keys())


def upserts(concept: st.SearchStrategy[Concept] | None = None) -> st.SearchStrategy[Upsert]:
    """``UPSERT CONCEPT`` statements with names and attribute maps."""
    return st.builds(
        Upsert,
        concept if concept is not None else concepts(),
        st.none() | names(),
        st.just({}) | attribute_maps(),
    )


def relates(subjects: list[Concept], objects: list[Concept]) -> st.SearchStrategy[Relate]:
    """``ASSERT`` statements between concepts from the given pools whose types
    the predicate admits, or a literal-object predicate on a Person."""
    options: list[st.SearchStrategy[Relate]] = []
    for predicate, (subject_type, object_type) in RELATION_PREDICATES.items():
        subject_pool = [c for c in subjects if c.type == subject_type]
        object_pool = [c for c in objects if c.type == object_type]
        if subject_pool and object_pool:
            options.append(
                st.builds(
                    Relate,
                    st.sampled_from(subject_pool),
                    st.just(predicate),
                    st.sampled_from(object_pool),
                )
            )
    for predicate, subject_type in LITERAL_PREDICATES.items():
        subject_pool = [c for c in subjects if c.type == subject_type]
        if subject_pool:
            options.append(
                st.builds(Relate, st.sampled_from(subject_pool), st.just(predicate), names())
            )
    if not options:
        return st.nothing()
    return st.one_of(options)


def finds() -> st.SearchStrategy[Find]:
    """``FIND`` queries: patterns, FILTER, OPTIONAL, NOT, UNION, joins,
    aggregates, ORDER BY and LIMIT."""
    relation = st.sampled_from(sorted(RELATION_PREDICATES.items()))

    def build(
        shape: str, t: str, rel: tuple[str, tuple[str, str]], text: str, order: Any, limit: Any
    ) -> Find:
        predicate, (subject_type, object_type) = rel
        if shape in ("optional", "not", "join"):
            t = subject_type
        if shape == "count":
            order = None
        return Find(
            t, shape, text, predicate, object_type if shape == "join" else "Topic", order, limit
        )

    return st.builds(
        build,
        st.sampled_from(("plain", "filter", "optional", "not", "union", "join", "count")),
        concept_types(),
        relation,
        st.text(_TEXT_ALPHABET, max_size=5),
        st.none() | st.sampled_from(_ORDERS),
        st.none() | st.integers(0, 50),
    )


def meta_commands() -> st.SearchStrategy[tuple[str, dict[str, Any] | None]]:
    """META commands (with their parameters) that succeed on any anda store."""
    fixed = st.sampled_from(
        [
            "DESCRIBE PRIMER",
            'DESCRIBE PRIMER MODE "full"',
            "DESCRIBE PROTOCOL",
            "DESCRIBE CAPABILITIES",
            "DESCRIBE SCHEMA ENVIRONMENT",
            "LIST TYPES",
            "LIST PREDICATES",
            "LIST FACETS",
            "LIST SCHEMA PACKAGES",
        ]
    ).map(lambda command: (command, None))
    described = st.one_of(
        concept_types().map(lambda t: ("DESCRIBE TYPE :t", {"t": t})),
        st.sampled_from(sorted({**RELATION_PREDICATES, **LITERAL_PREDICATES})).map(
            lambda p: ("DESCRIBE PREDICATE :p", {"p": p})
        ),
        st.builds(
            lambda term, limit: ("SEARCH CONCEPT :term LIMIT :n", {"term": term, "n": limit}),
            names(),
            st.integers(1, 20),
        ),
        finds().map(lambda f: ("VALIDATE KQL :cmd", {"cmd": f.render_literal()})),
    )
    return st.one_of(fixed, described)


def kml_writes() -> st.SearchStrategy[Statement]:
    """Writes that stand alone (relations need ids: see :func:`relates`)."""
    return st.one_of(upserts(), concepts().map(Tombstone))


def kql_reads() -> st.SearchStrategy[Find]:
    return finds()


def valid_commands() -> st.SearchStrategy[tuple[str, dict[str, Any] | None]]:
    """Rendered commands that succeed on any store: writes, reads and META."""
    statements = st.one_of(kml_writes(), kql_reads()).map(lambda s: s.render())
    return st.one_of(statements, meta_commands())


def parameter_maps() -> st.SearchStrategy[dict[str, Any]]:
    """Parameter mappings: binding names to JSON values."""
    return st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True), json_values(), max_size=5
    )


# ---------------------------------------------------------------------------
# Adversarial input: where parsers crash
# ---------------------------------------------------------------------------


def adversarial_text() -> st.SearchStrategy[str]:
    """Text aimed at the parser: deep nesting, comments holding quotes, very
    long tokens and strings, control characters, truncated commands."""
    brackets = st.builds(
        lambda opener, depth: opener * depth, st.sampled_from("([{"), st.integers(1, 5000)
    )
    balanced = st.builds(
        lambda depth: "FIND(?x) WHERE { ?x {type: " + "[" * depth + "1" + "]" * depth + "} }",
        st.integers(1, 200),
    )
    comments = st.builds(
        lambda body: f'// {body}\nFIND(?x) WHERE {{ ?x {{type: "Person"}} }} // "',
        st.text(_TEXT_ALPHABET, max_size=50),
    )
    long_token = st.builds(lambda n: "FIND(?" + "x" * n + ")", st.integers(1, 100_000))
    long_string = st.builds(
        lambda n: 'FIND(?x) WHERE { ?x {type: "' + "a" * n + '"} }', st.integers(1, 300_000)
    )
    controls = st.text(st.characters(max_codepoint=0x1F) | st.sampled_from("\x7f\u2028\ufeff"))
    truncated = st.builds(
        lambda text, cut: text[:cut],
        finds().map(lambda f: f.render_literal()),
        st.integers(0, 200),
    )
    negations = st.builds(
        lambda n: 'FIND(?x) WHERE { ?x {type: "Person"} FILTER(' + "!" * n + "true) }",
        st.integers(1, 500),
    )
    return st.one_of(
        st.text(_TEXT_ALPHABET, max_size=200),
        brackets,
        balanced,
        comments,
        long_token,
        long_string,
        controls,
        truncated,
        negations,
    )


def adversarial_parameters() -> st.SearchStrategy[Any]:
    """Parameters anda must refuse with TypeError/ValueError, or pass on: lone
    surrogates, NaN, huge integers, non-str keys, non-JSON objects, deep
    nesting, next to ordinary values."""
    bad_leaf = st.one_of(
        st.just(float("nan")),
        st.just(math.inf),
        st.integers(MAX_SAFE_INTEGER + 1, 2**200),
        st.integers(-(2**200), -MAX_SAFE_INTEGER - 1),
        st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),
        st.builds(set),
        st.binary(max_size=3),
        st.builds(object),
        st.integers(200, 2000).map(lambda depth: _nested(depth)),
    )
    leaf = json_scalars() | bad_leaf
    values = st.recursive(
        leaf,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=3)
        ),
        max_leaves=8,
    )
    return st.dictionaries(st.text(max_size=8) | st.integers(), values, max_size=4) | values


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value
