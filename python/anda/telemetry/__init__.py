"""OpenTelemetry for anda (``pip install 'anda[otel]'``): a span and metrics
for every memory call, and a span for every request ``anda serve`` answers.

Off until :func:`instrument` is called: nothing of OpenTelemetry is imported
before, and a call costs one attribute look-up more than without this
module. Once on, every call of a memory's public face (``execute_kip``,
``call_tool``, ``execute_request``, their async twins, each transaction of
``bulk_write``), whichever door made it (Python, the LLM tools, a framework
adapter, MCP, the HTTP server), is one span, following the GenAI semantic
conventions for memory operations:

- name and ``gen_ai.operation.name``: ``search_memory`` (``FIND``,
  ``SEARCH``, ``DESCRIBE``, ``LIST``, ...), ``create_memory`` (``CREATE``,
  ``DEFINE``), ``upsert_memory`` (``UPSERT``, ``ENSURE``, ``MUTATE``, or a
  batch of several kinds of write), ``update_memory`` (``UPDATE``,
  ``TRANSITION``, ``SET``, ``MERGE``), ``delete_memory`` (``PURGE``);
- ``gen_ai.memory.store.id``: the KIP MemorySpace the call ran in (the
  caller's own under per-caller tenancy), also ``anda.kip.space_id``;
- ``gen_ai.memory.record.count``: rows a search returned, or the writes a
  call attempted;
- ``anda.kip.command`` (the command's keyword, or ``MIXED``),
  ``anda.kip.commands`` (each operation's), ``anda.call``,
  ``anda.memory.type`` (``Nexus``, ``Client``), ``anda.kip.status`` (the
  response's ``status``, or ``error`` when the call raised);
- on failure: status ERROR, ``error.type`` and ``anda.kip.error.code`` (the
  engine's error code, e.g. ``InvalidSyntax``; the exception's class name
  when the call raised, recorded as an exception event).

A :class:`anda.Client`'s spans are of kind CLIENT with ``server.address``
and ``server.port``, and carry the trace to the server (``traceparent``), so
a remote call and the server's work on it are one trace. The metrics:
``anda.memory.calls`` and ``anda.memory.errors`` (counters) and
``anda.memory.duration`` (a histogram, in seconds), by operation, command
and memory type (and ``error.type``); the server adds
``http.server.request.duration``.

Never a value: commands, parameters and results stay out of telemetry unless
``capture_values=True`` (or ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``),
which adds ``anda.kip.command.text``, ``anda.kip.request`` and, for searches,
``gen_ai.memory.query.text``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from anda import _observer

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["AndaInstrumentor", "instrument", "is_instrumented", "uninstrument"]

#: The variable the GenAI conventions name for opting in to content capture.
CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    capture_values: bool | None = None,
) -> None:
    """Turns telemetry on for every memory in this process (again: with new
    providers or options).

    Args:
        tracer_provider: where spans go; the global one by default.
        meter_provider: where metrics go; the global one by default.
        capture_values: record commands, parameters and request envelopes
            on spans. ``None`` (the default) reads
            ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``; off
            unless it is ``true``. They may hold personal data.

    Raises:
        ImportError: OpenTelemetry is not installed (``pip install 'anda[otel]'``).

    >>> import anda, anda.telemetry
    >>> from opentelemetry.sdk.trace import TracerProvider
    >>> from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    >>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    >>> spans = InMemorySpanExporter()
    >>> provider = TracerProvider()
    >>> provider.add_span_processor(SimpleSpanProcessor(spans))
    >>> anda.telemetry.instrument(tracer_provider=provider)
    >>> with anda.Nexus() as memory:
    ...     _ = memory.execute_kip('FIND(?p) WHERE { ?p {type: "Person"} }')
    >>> anda.telemetry.uninstrument()
    >>> [(s.name, s.attributes["anda.kip.command"]) for s in spans.get_finished_spans()]
    [('search_memory', 'FIND')]
    """
    from anda.integrations import require

    require("opentelemetry.trace", "otel", distribution="opentelemetry-api")
    from anda.telemetry._otel import Telemetry

    if capture_values is None:
        capture_values = os.environ.get(CAPTURE_ENV, "").strip().lower() == "true"
    elif not isinstance(capture_values, bool):
        raise TypeError(f"capture_values must be bool or None, not {type(capture_values).__name__}")
    _observer.current = Telemetry(tracer_provider, meter_provider, capture_values)


def uninstrument() -> None:
    """Turns telemetry off: calls are no longer observed. Idempotent."""
    _observer.current = None


def is_instrumented() -> bool:
    """Whether :func:`instrument` is in force."""
    return _observer.current is not None


class AndaInstrumentor:
    """The same switch in the shape of OpenTelemetry's instrumentors, for code
    that instruments its libraries that way.

    >>> from anda.telemetry import AndaInstrumentor
    >>> AndaInstrumentor().instrument()
    >>> AndaInstrumentor().is_instrumented_by_opentelemetry
    True
    >>> AndaInstrumentor().uninstrument()
    """

    def instrument(self, **kwargs: Any) -> None:
        """:func:`instrument`, with its keyword arguments."""
        instrument(**kwargs)

    def uninstrument(self, **kwargs: Any) -> None:
        """:func:`uninstrument`."""
        uninstrument()

    @property
    def is_instrumented_by_opentelemetry(self) -> bool:
        """Whether telemetry is on."""
        return is_instrumented()
