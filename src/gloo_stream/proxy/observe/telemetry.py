"""The proxy's traces: opt-in through OpenTelemetry's standard ``OTEL_*`` environment.

Nothing here runs, and OpenTelemetry is not even imported, unless the environment asks for
traces: ``OTEL_TRACES_EXPORTER`` set to ``otlp`` or ``console``, or an OTLP endpoint set
(``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), and
``OTEL_SDK_DISABLED`` not true. The exporter speaks OTLP over HTTP with protobuf
(``http/protobuf``, port 4318); ``grpc`` and ``http/json`` are refused at start with a
clear message rather than silently exporting nothing. Everything else (headers, timeout,
compression, sampler, batch sizes, resource attributes) is read by the SDK from its own
variables.

Each app gets its own tracer provider, never the global one: many apps can live in one
process (tests), and each exports where its environment said. The upstream client is
handed the same provider, so its per-attempt client spans are children of the request's
server span.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gloo_stream import genai
from gloo_stream.accumulate import StreamResult
from gloo_stream.errors import ConfigurationError
from gloo_stream.redaction import NO_SECRETS, Redactor
from gloo_stream.usage import BilledUsage

__all__ = [
    "ProxyTracing",
    "RequestSpan",
    "TracingConfig",
    "TracingConfigError",
    "traces_endpoint",
]

DEFAULT_SERVICE_NAME = "gloo-stream-proxy"
_EXPORTERS = frozenset({"otlp", "console"})
_PROPAGATED = (b"traceparent", b"tracestate", b"baggage")


class TracingConfigError(ConfigurationError):
    """The ``OTEL_*`` environment asks for something the proxy cannot do."""


def traces_endpoint(environ: Mapping[str, str]) -> str:
    """Where OTLP traces go, as the exporter reads the environment."""
    specific = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if specific:
        return specific
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or "http://localhost:4318"
    return base.rstrip("/") + "/v1/traces"


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


@dataclass(frozen=True, slots=True)
class TracingConfig:
    """Which span exporters the environment asks for (``otlp``, ``console``)."""

    exporters: tuple[str, ...]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> TracingConfig | None:
        """The config the environment asks for, or None when traces are off."""
        if _true(environ.get("OTEL_SDK_DISABLED")):
            return None
        named = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
        if named:
            exporters = tuple(dict.fromkeys(e.strip() for e in named.split(",") if e.strip()))
            if "none" in exporters:
                return None
            unknown = [e for e in exporters if e not in _EXPORTERS]
            if unknown:
                raise TracingConfigError(
                    f"OTEL_TRACES_EXPORTER={named!r}: the proxy exports traces with 'otlp' "
                    "(OTLP over HTTP) or 'console', or 'none'; unsupported: " + ", ".join(unknown)
                )
        elif environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        ):
            exporters = ("otlp",)
        else:
            return None
        if "otlp" in exporters:
            _check_protocol(environ)
        return cls(exporters)


def _check_protocol(environ: Mapping[str, str]) -> None:
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = environ.get(name, "").strip().lower()
        if protocol:
            if protocol != "http/protobuf":
                raise TracingConfigError(
                    f"{name}={protocol!r} is not supported: the proxy exports OTLP over HTTP "
                    "with protobuf. Set it to 'http/protobuf' and point the endpoint at the "
                    "collector's HTTP port (4318 by default)."
                )
            return  # the traces-specific setting wins over the general one


class ProxyTracing:
    """One app's tracer provider and tracer; ``record_content`` adds prompts and answers."""

    def __init__(self, provider: Any, *, record_content: bool = False) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("gloo_stream.proxy", "0.1.0")
        self.record_content = record_content
        self.redactor: Callable[[], Redactor] = lambda: NO_SECRETS
        """Every secret the proxy holds now (the app sets it): no attribute or status
        carries one, whatever the upstream echoed into the answer."""

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], *, record_content: bool = False
    ) -> ProxyTracing | None:
        """Tracing as the environment configures it, or None when it asks for none."""
        config = TracingConfig.from_environ(environ)
        if config is None:
            return None
        try:
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            raise TracingConfigError(
                "OTEL_* asks for traces but OpenTelemetry is not installed: "
                "pip install 'gloo-stream[otel]'"
            ) from None
        provider = TracerProvider(resource=_resource(environ))
        for name in config.exporters:
            provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
        return cls(provider, record_content=record_content)

    def request_span(self, scope: Mapping[str, Any], route: str, request_id: str) -> RequestSpan:
        """Start the server span of one request (continuing the caller's ``traceparent``)."""
        return RequestSpan(self, scope, route, request_id)

    def shutdown(self) -> None:
        """Export what is still queued and stop the exporter (at the app's end)."""
        with contextlib.suppress(Exception):  # an unreachable collector must not block exit
            self.provider.shutdown()


def _resource(environ: Mapping[str, str]) -> Any:
    from opentelemetry.sdk.resources import Resource

    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES itself; the
    # proxy's own name applies only where they name no service.
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": DEFAULT_SERVICE_NAME}))
    return resource


def _exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise TracingConfigError(
            "OTEL_* asks for OTLP traces but the exporter is not installed: "
            "pip install 'gloo-stream[otel]'"
        ) from None
    return OTLPSpanExporter()  # endpoint, headers, timeout: from OTEL_EXPORTER_OTLP_*


class RequestSpan:
    """The ``SERVER`` span of one proxied request, current while the request is handled."""

    __slots__ = ("_span", "_token", "_tracing")

    def __init__(
        self, tracing: ProxyTracing, scope: Mapping[str, Any], route: str, request_id: str
    ) -> None:
        from opentelemetry import propagate, trace

        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _PROPAGATED
        }
        parent = propagate.extract(carrier)
        method = str(scope.get("method", "POST"))
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "http.route": route,
            "url.path": str(scope.get("path", route)),
            "gen_ai.operation.name": genai.OPERATION,
            "gen_ai.provider.name": genai.PROVIDER,
            "gloo.request_id": request_id,
        }
        self._tracing = tracing
        self._span = tracing.tracer.start_span(
            f"{method} {route}", context=parent, kind=trace.SpanKind.SERVER, attributes=attributes
        )
        self._token: Any = None

    def activate(self) -> None:
        """Make this span the current one (the upstream client's spans become its children)."""
        from opentelemetry import context, trace

        self._token = context.attach(trace.set_span_in_context(self._span))

    def admitted(self, body: Mapping[str, Any], client: str) -> None:
        """The request passed the checks: record what it asks for and who asks."""
        attributes = genai.request_attributes(body)
        attributes["gloo.client"] = client
        if self._tracing.record_content:
            messages = body.get("messages")
            if isinstance(messages, list):
                attributes["gen_ai.input.messages"] = genai.input_messages(messages)
        self._span.set_attributes(self._safe(attributes))

    def continued(self, seam: Mapping[str, Any]) -> None:
        """A span event for one seam of a continued answer (n, reason, upstream, offset)."""
        self._span.add_event(
            "gloo.continuation", {f"gloo.continuation.{k}": v for k, v in seam.items()}
        )

    def set_attribute(self, name: str, value: Any) -> None:
        """Add one attribute (the budget left, say)."""
        self._span.set_attributes(self._safe({name: value}))

    def _safe(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        return self._tracing.redactor().attributes(attributes)

    def end(
        self,
        *,
        status: int,
        outcome: str,
        error_code: str | None,
        result: StreamResult | None,
        usage: BilledUsage | None,
    ) -> None:
        """Finish the span with what the request came to, and stop it being current."""
        from opentelemetry import context
        from opentelemetry.trace import Status, StatusCode

        span = self._span
        attributes: dict[str, Any] = {"gloo.outcome": outcome}
        if status:  # 0: the request failed before any answer was decided
            attributes["http.response.status_code"] = status
        if result is not None:
            attributes.update(genai.result_attributes(result))
            if self._tracing.record_content:
                attributes["gen_ai.output.messages"] = genai.output_messages(result)
        if usage is not None:
            attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
            attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
            attributes["gloo.usage.estimated"] = usage.estimated
        if error_code is not None:
            attributes["error.type"] = error_code
        span.set_attributes(self._safe(attributes))
        if status >= 500 or outcome == "error":
            description = self._tracing.redactor().text(error_code or str(status))
            span.set_status(Status(StatusCode.ERROR, description))
        span.end()
        if self._token is not None:
            with contextlib.suppress(Exception):  # detached in another context: harmless
                context.detach(self._token)
            self._token = None
