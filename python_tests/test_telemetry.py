"""anda.telemetry with the real OpenTelemetry SDK: spans and metrics of memory
calls (Nexus and Client, sync and async), the server's request spans, one
trace from a Client through the server to the store, and no value recorded
unless asked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import anda
import anda.telemetry
from conftest import UPSERT_PERSON, run_python
from support.memories import served

FIND_PEOPLE = 'FIND(?p.name) WHERE { ?p {type: "Person"} }'
SECRET = "Grace-Hopper-7f3a"


@dataclass
class Recorded:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def memory_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans() if "gen_ai.operation.name" in (s.attributes or {})]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found


def _record(capture_values: bool | None = None) -> Iterator[Recorded]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    anda.telemetry.instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        capture_values=capture_values,
    )
    try:
        yield Recorded(exporter, reader)
    finally:
        anda.telemetry.uninstrument()
        meter_provider.shutdown()


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    yield from _record()


@pytest.fixture
def recorded_with_values() -> Iterator[Recorded]:
    yield from _record(capture_values=True)


def _attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _values_in(spans: list[ReadableSpan]) -> str:
    """Every attribute and event of ``spans``, as text."""
    return json.dumps(
        [
            [_attributes(s), [dict(e.attributes or {}) for e in s.events], s.status.description]
            for s in spans
        ],
        default=str,
    )


def test_a_span_per_call_named_by_its_memory_operation(recorded: Recorded) -> None:
    with anda.Nexus() as memory:
        memory.execute_kip(UPSERT_PERSON, {"key": "grace", "name": SECRET})
        memory.execute_kip(FIND_PEOPLE)
        memory.execute_kip(
            [(UPSERT_PERSON, {"key": "ada", "name": "Ada"}), FIND_PEOPLE], execution="independent"
        )
        memory.call_tool("execute_kip_readonly", {"command": "DESCRIBE PRIMER"})
        memory.execute_request({"kip": "2.0", "operations": [{"command": "LIST TYPES"}]})
    upsert, find, batch, tool, request = recorded.memory_spans()
    assert [s.name for s in (upsert, find, batch, tool, request)] == [
        "upsert_memory",
        "search_memory",
        "upsert_memory",
        "search_memory",
        "search_memory",
    ]
    for span in (upsert, find, batch, tool, request):
        attributes = _attributes(span)
        assert span.kind is SpanKind.INTERNAL
        assert span.status.status_code is StatusCode.UNSET
        assert attributes["gen_ai.operation.name"] == span.name
        assert attributes["gen_ai.memory.store.id"] == "kip:space:default"
        assert attributes["anda.kip.status"] == "succeeded"
        assert attributes["anda.memory.type"] == "Nexus"
        assert "error.type" not in attributes
    assert _attributes(upsert)["anda.kip.command"] == "UPSERT"
    assert _attributes(upsert)["gen_ai.memory.record.count"] == 1
    assert _attributes(find)["anda.kip.command"] == "FIND"
    assert _attributes(find)["gen_ai.memory.record.count"] == 1  # the rows it returned
    assert _attributes(batch)["anda.kip.command"] == "MIXED"
    assert _attributes(batch)["anda.kip.commands"] == ("UPSERT", "FIND")
    assert _attributes(tool)["anda.call"] == "call_tool"
    assert _attributes(tool)["anda.kip.command"] == "DESCRIBE"
    assert _attributes(request)["anda.call"] == "execute_request"
    assert _attributes(request)["anda.kip.command"] == "LIST"
    # No value by default: not the name written, not a command's text.
    assert SECRET not in _values_in(recorded.spans())
    assert "Person" not in _values_in(recorded.spans())


def test_refusals_and_exceptions_are_errors(recorded: Recorded) -> None:
    with anda.Nexus() as memory:
        with pytest.raises(anda.KipSyntaxError):
            memory.execute_kip("FIND(?x WHERE")
        assert memory.call_tool("execute_kip", {"command": "FIND(?x WHERE"}).is_error
        with pytest.raises(TypeError):
            memory.execute_kip(FIND_PEOPLE, {"x": object()})
    refused, tool, raised = recorded.memory_spans()
    for span in (refused, tool):
        attributes = _attributes(span)
        assert span.status.status_code is StatusCode.ERROR
        assert attributes["error.type"] == "InvalidSyntax"
        assert attributes["anda.kip.error.code"] == "InvalidSyntax"
        assert attributes["anda.kip.status"] == "failed"
    assert raised.status.status_code is StatusCode.ERROR
    assert _attributes(raised)["error.type"] == "TypeError"
    assert _attributes(raised)["anda.kip.status"] == "error"
    assert [e.name for e in raised.events] == ["exception"]


def test_space_is_the_callers_own_under_per_caller_tenancy(recorded: Recorded) -> None:
    with anda.Nexus(tenancy="per_caller") as memory:
        memory.execute_kip(UPSERT_PERSON, {"key": "a", "name": "A"}, caller="alice")
        memory.execute_kip(UPSERT_PERSON, {"key": "b", "name": "B"}, caller="bob")
    alice, bob = (_attributes(s)["gen_ai.memory.store.id"] for s in recorded.memory_spans())
    assert alice.startswith("kip:space:caller:")
    assert bob.startswith("kip:space:caller:")
    assert alice != bob
    assert "alice" not in alice


def test_values_only_when_asked(recorded_with_values: Recorded) -> None:
    with anda.Nexus() as memory:
        memory.execute_kip(UPSERT_PERSON, {"key": "grace", "name": SECRET})
        memory.execute_kip(FIND_PEOPLE)
    upsert, find = recorded_with_values.memory_spans()
    assert _attributes(upsert)["anda.kip.command.text"] == (UPSERT_PERSON,)
    assert SECRET in _attributes(upsert)["anda.kip.request"]
    assert _attributes(find)["gen_ai.memory.query.text"] == FIND_PEOPLE
    assert "gen_ai.memory.query.text" not in _attributes(upsert)


def test_the_environment_variable_opts_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(anda.telemetry.CAPTURE_ENV, "true")
    for recorded in _record():
        with anda.Nexus() as memory:
            memory.execute_kip(FIND_PEOPLE)
        [span] = recorded.memory_spans()
        assert _attributes(span)["gen_ai.memory.query.text"] == FIND_PEOPLE


def test_async_calls_and_bulk_writes(recorded: Recorded) -> None:
    async def main() -> None:
        with anda.Nexus() as memory:
            await memory.execute_kip_async(UPSERT_PERSON, {"key": "a", "name": "A"})
            await memory.call_tool_async("execute_kip_readonly", {"command": FIND_PEOPLE})
            await memory.execute_request_async(
                {"kip": "2.0", "operations": [{"command": FIND_PEOPLE}]}
            )
            memory.bulk_write({"upsert": {"type": "Person", "key": f"p{i}"}} for i in range(5))

    asyncio.run(main())
    upsert, tool, request, bulk = recorded.memory_spans()
    assert (upsert.name, tool.name, request.name) == ("upsert_memory",) + ("search_memory",) * 2
    assert _attributes(bulk)["anda.call"] == "bulk_write"
    # One MUTATE transaction: how many records it holds is not counted.
    assert _attributes(bulk)["anda.kip.command"] == "MUTATE"
    assert "gen_ai.memory.record.count" not in _attributes(bulk)
    assert bulk.name == "upsert_memory"


def test_metrics_count_calls_errors_and_time(recorded: Recorded) -> None:
    with anda.Nexus() as memory:
        for _ in range(3):
            memory.execute_kip(FIND_PEOPLE)
        with pytest.raises(anda.KipSyntaxError):
            memory.execute_kip("FIND(?x WHERE")
    calls = {
        (p.attributes["anda.kip.command"], p.attributes.get("error.type")): p.value
        for p in recorded.points("anda.memory.calls")
    }
    assert calls == {("FIND", None): 3, ("FIND", "InvalidSyntax"): 1}
    [errors] = recorded.points("anda.memory.errors")
    assert (errors.value, errors.attributes["error.type"]) == (1, "InvalidSyntax")
    durations = recorded.points("anda.memory.duration")
    assert sum(p.count for p in durations) == 4
    assert all(0 < p.sum < 10 for p in durations)
    assert durations[0].explicit_bounds[0] == 0.0001


def test_one_trace_from_a_client_through_the_server_to_the_store(recorded: Recorded) -> None:
    with anda.Nexus() as nexus, served(nexus) as url, anda.Client(url) as client:
        client.execute_kip(UPSERT_PERSON, {"key": "grace", "name": SECRET})
        with pytest.raises(anda.KipSyntaxError):
            client.execute_kip("FIND(?x WHERE")
    spans = recorded.spans()
    client_spans = [s for s in spans if s.kind is SpanKind.CLIENT]
    server_spans = [s for s in spans if s.kind is SpanKind.SERVER]
    store_spans = [s for s in spans if s.kind is SpanKind.INTERNAL]
    assert [s.name for s in client_spans] == ["upsert_memory", "search_memory"]
    assert [s.name for s in server_spans] == ["POST /kip", "POST /kip"]
    assert [s.name for s in store_spans] == ["upsert_memory", "search_memory"]
    for client_span, server_span, store_span in zip(
        client_spans, server_spans, store_spans, strict=True
    ):
        assert server_span.parent is not None
        assert server_span.parent.span_id == client_span.context.span_id
        assert store_span.parent is not None
        assert store_span.parent.span_id == server_span.context.span_id
        assert client_span.context.trace_id == store_span.context.trace_id
    assert _attributes(client_spans[0])["anda.memory.type"] == "Client"
    assert _attributes(client_spans[0])["server.address"] == "127.0.0.1"
    assert _attributes(server_spans[0])["http.route"] == "/kip"
    assert _attributes(server_spans[0])["http.response.status_code"] == 200
    assert _attributes(server_spans[1])["http.response.status_code"] == 400
    assert client_spans[1].status.status_code is StatusCode.ERROR
    assert _attributes(client_spans[1])["error.type"] == "InvalidSyntax"
    assert SECRET not in _values_in(spans)
    requests = recorded.points("http.server.request.duration")
    assert sum(p.count for p in requests) == 2


def test_off_again_after_uninstrument(recorded: Recorded) -> None:
    anda.telemetry.uninstrument()
    assert not anda.telemetry.is_instrumented()
    with anda.Nexus() as memory:
        memory.execute_kip(FIND_PEOPLE)
    assert recorded.spans() == []


def test_nothing_is_imported_until_instrumented(tmp_path: Path) -> None:
    code = (
        "import sys, anda, anda.telemetry\n"
        "with anda.Nexus() as m:\n"
        "    m.execute_kip('DESCRIBE PRIMER')\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'imported'\n"
        "assert not anda.telemetry.is_instrumented()\n"
        "print('ok')"
    )
    proc = run_python(code)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_without_opentelemetry_instrument_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "import anda.telemetry\n"
        "try:\n"
        "    anda.telemetry.instrument()\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    proc = run_python(code)
    assert "pip install 'anda[otel]'" in proc.stdout, proc.stderr
