"""OpenTelemetry tracing of Django, Celery, psycopg and the provider HTTP client
(requests), off unless the standard OTEL_* variables ask for it.

Any of OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
OTEL_TRACES_EXPORTER or OTEL_SERVICE_NAME switches it on; OTEL_SDK_DISABLED=true or
OTEL_TRACES_EXPORTER=none keeps it off. Exporters: `otlp` (the default; OTLP over
HTTP/protobuf, configured by the usual OTEL_EXPORTER_OTLP_* variables) and `console`.
The web calls `tracing_setup` before Django builds its middleware (config/wsgi.py), each
Celery pool process when it starts (config/celery.py). Trace context rides the Celery
message, so a send's web span and its dispatch task share one trace.
"""

import logging
import os
from collections.abc import Mapping

logger = logging.getLogger(__name__)

SWITCHES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
    "OTEL_SERVICE_NAME",
)
_provider = None


def tracing_wanted(environ: Mapping[str, str] = os.environ) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(environ.get(name, "").strip() for name in SWITCHES)


def tracing_setup(*, service: str, exporter=None) -> bool:
    """Install the tracer provider and instrument the libraries, once per process.
    True when tracing is on. `exporter` replaces the configured one (tests)."""
    global _provider
    if _provider is not None:
        return True
    if exporter is None and not tracing_wanted():
        return False

    from opentelemetry import trace
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME", "").strip() or f"messaging-{service}"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    for configured in _exporters():
        provider.add_span_processor(BatchSpanProcessor(configured))
    trace.set_tracer_provider(provider)

    DjangoInstrumentor().instrument(tracer_provider=provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    PsycopgInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    RequestsInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    logger.info("tracing on: service %s", name)
    return True


def tracing_shutdown() -> None:
    """Flush what is buffered and stop (the provider also does this at exit)."""
    if _provider is not None:
        _provider.shutdown()


def _exporters() -> list:
    names = [n.strip().lower() for n in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    exporters = []
    for name in names:
        if name == "otlp":
            protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
            )
            if protocol != "http/protobuf":
                logger.warning("tracing: OTLP protocol %s is not installed; using http/protobuf", protocol)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        else:
            logger.warning("tracing: unknown OTEL_TRACES_EXPORTER %r ignored", name)
    return exporters
