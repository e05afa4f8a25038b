"""OpenTelemetry traces of runs: off unless an OTLP endpoint is configured, and then a flow run
is one trace, from the request (or the dispatch) that made it to its task runs.

On when `BATON_OTEL_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set and the `otel` extra
(`pip install 'baton[otel]'`) is installed; the other standard `OTEL_*` variables (sampling,
batch delays, headers, resource attributes) apply as the SDK reads them. Off, every function
here returns at its first line: no import of opentelemetry, no span, no header.

The context travels as a W3C `traceparent`: HTTP headers into the API, the `flow_runs` row
(the run's creator's span), AMQP headers on the dispatch, and `TRACEPARENT` in the environment
of the run's process. And back: the worker's claim and the run's state reports carry their
span (HTTP or AMQP headers, the relay's frame header), and the tracker's span of each
transition and task-run state batch is its child.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from . import _log_format

ENDPOINT_ENVS = ("BATON_OTEL_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
TRACEPARENT = "traceparent"
TRACEPARENT_ENV = "TRACEPARENT"  # the environment of a run's process

log = logging.getLogger(__name__)

_tracer: Any = None  # the process's tracer once `setup` turned traces on
_provider: Any = None


def endpoint() -> str | None:
    for name in ENDPOINT_ENVS:
        value = os.environ.get(name, "").strip()
        if value:
            return value.rstrip("/")
    return None


def enabled() -> bool:
    return _tracer is not None


def setup(service: str) -> bool:
    """Turn traces on for this process if an endpoint is configured; True if they are on."""
    global _tracer, _provider
    if _tracer is not None:
        return True
    where = endpoint()
    if where is None:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("an OTLP endpoint is set but OpenTelemetry is not installed: pip install 'baton[otel]'")
        return False
    resource = Resource.create({"service.name": f"baton-{service}"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{where}/v1/traces")))
    trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = trace.get_tracer("baton")
    _log_format.trace_ids = _current_ids
    atexit.register(shutdown)
    return True


def shutdown(timeout_seconds: float = 5.0) -> None:
    """Export what is buffered (a run's process calls this before it exits)."""
    if _provider is not None:
        with contextlib.suppress(Exception):
            _provider.force_flush(int(timeout_seconds * 1000))


def _current_ids() -> tuple[str, str] | None:
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def _parent(traceparent: str | None) -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    if not traceparent:
        return None
    return TraceContextTextMapPropagator().extract({TRACEPARENT: traceparent})


def extract(headers: Mapping[str, Any] | None) -> str | None:
    """The `traceparent` of HTTP or AMQP headers, if there is one (and traces are on)."""
    if _tracer is None or not headers:
        return None
    value = headers.get(TRACEPARENT)
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value if isinstance(value, str) else None


def current() -> str | None:
    """The current span's `traceparent`, or None (traces off, or no span)."""
    if _tracer is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get(TRACEPARENT)


@contextlib.contextmanager
def span(
    name: str,
    *,
    parent: str | None = None,
    kind: str = "INTERNAL",
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Any]:
    """A span (the current one inside the block), child of `parent` (a traceparent) if given,
    else of the current span. Yields None when traces are off."""
    if _tracer is None:
        yield None
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode

    with _tracer.start_as_current_span(
        name,
        context=_parent(parent),
        kind=SpanKind[kind],
        attributes={k: str(v) for k, v in (attributes or {}).items() if v is not None},
        record_exception=False,
        set_status_on_exception=False,
    ) as opened:
        try:
            yield opened
        except BaseException as exc:
            opened.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise


def start(
    name: str,
    *,
    parent: str | None = None,
    kind: str = "INTERNAL",
    attributes: Mapping[str, Any] | None = None,
) -> Any:
    """A span that is not made current (it outlives a block: a worker's run); None when off.
    End it with `end`."""
    if _tracer is None:
        return None
    from opentelemetry.trace import SpanKind

    return _tracer.start_span(
        name,
        context=_parent(parent),
        kind=SpanKind[kind],
        attributes={k: str(v) for k, v in (attributes or {}).items() if v is not None},
    )


def traceparent_of(opened: Any) -> str | None:
    """The traceparent that makes a child of `opened` (a span from `start` or `span`)."""
    if opened is None:
        return None
    context = opened.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def end(opened: Any, error: str | None = None) -> None:
    if opened is None:
        return
    if error is not None:
        from opentelemetry.trace import Status, StatusCode

        opened.set_status(Status(StatusCode.ERROR, error))
    opened.end()
