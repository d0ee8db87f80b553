"""Optional OpenTelemetry tracing: on only when OTEL_EXPORTER_OTLP_ENDPOINT is set.

Spans: GraphQL operations and resolvers (emitted by the planned path, graph/tracing.py, with
argument values and string literals left out: they carry passwords and prompts), SQL
(SQLAlchemy), Redis and outgoing HTTP (httpx: provider calls and downloads), exported over
OTLP/HTTP.

The packages are an optional extra (`pip install genhub[otel]`); without them, or without
the endpoint, every function here does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import TYPE_CHECKING, Any

from infrastructure.settings import Settings

if TYPE_CHECKING:  # (SQLAlchemy is imported by whoever calls these; the CLI's admin commands skip it)
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("genhub.tracing")
_STRING_LITERAL = re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*"""|"(?:[^"\\\n]|\\.)*"')
_state: dict[str, Any] = {"provider": None, "engines": set()}


def enabled(settings: Settings) -> bool:
    return bool(settings.otel_exporter_otlp_endpoint)


def traces_url(endpoint: str) -> str:
    """OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL; traces go to /v1/traces."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def setup_tracing(settings: Settings, *, engine: AsyncEngine | None = None, exporter: Any = None) -> bool:
    """Install the tracer provider (once per process) and the instrumentations; True when tracing is on.

    `exporter` replaces the OTLP exporter (tests pass an in-memory one).
    """
    if not enabled(settings):
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-sdk is not installed: tracing is off")
        return False
    if _state["provider"] is None:
        provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name}))
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError:
                log.warning("opentelemetry-exporter-otlp-proto-http is not installed: tracing is off")
                return False
            otlp = OTLPSpanExporter(endpoint=traces_url(settings.otel_exporter_otlp_endpoint))
            provider.add_span_processor(BatchSpanProcessor(otlp))
        trace.set_tracer_provider(provider)
        _state["provider"] = provider
        _instrument_clients()
    if engine is not None:
        _instrument_engine(engine)
    return True


def _instrument_clients() -> None:
    """Redis and httpx are instrumented globally (every client, also those made later)."""
    with contextlib.suppress(ImportError):
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        if not RedisInstrumentor().is_instrumented_by_opentelemetry:
            RedisInstrumentor().instrument()
    with contextlib.suppress(ImportError):
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        if not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry:
            HTTPXClientInstrumentor().instrument()


def _instrument_engine(engine: AsyncEngine) -> None:
    try:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    except ImportError:
        return
    if id(engine.sync_engine) in _state["engines"]:
        return
    instrumentor = SQLAlchemyInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        # The instrumentor is a singleton that attaches to the engine given on its first
        # call only; a process has one engine (API, worker) so this is the rare second one.
        log.info("SQLAlchemy tracing is already attached to another engine of this process")
        return
    # Its declared range stops below SQLAlchemy 2.1, which it handles fine (the engine events are unchanged).
    instrumentor.instrument(engine=engine.sync_engine, skip_dep_check=True)
    _state["engines"].add(id(engine.sync_engine))


def redact_literals(query: str) -> str:
    """The operation text with every string literal replaced: inline passwords stay out of traces."""
    return _STRING_LITERAL.sub('"***"', query)
