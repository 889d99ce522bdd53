"""Shrunk counterexamples found by the property suite, kept as plain tests."""

from __future__ import annotations

import anda
from anda.testing import strategies as kst


def test_count_query_renders_its_limit(nexus: anda.Nexus) -> None:
    # test_generated_reads_return_rows: Find("Person", "count", limit=0) was
    # rendered without its LIMIT, so a grouped count returned one row.
    nexus.execute_kip(*kst.Upsert(kst.Concept("Person", "a")).render())
    find = kst.Find("Person", "count", limit=0)
    command, parameters = find.render()
    assert "LIMIT :limit" in command
    assert "LIMIT 0" in find.render_literal()
    assert nexus.execute_kip(command, parameters)["results"][0]["result"] == []
