"""Tracing: which OTEL_* environments turn it on, and the spans it makes (in-memory SDK)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gloo_stream.accumulate import StreamResult
from gloo_stream.client.spans import AttemptSpan, configured_tracer
from gloo_stream.errors import RateLimitError, StreamDisconnectedError
from gloo_stream.proxy.observe.telemetry import ProxyTracing, TracingConfig, TracingConfigError
from gloo_stream.usage import BilledUsage
from gloo_stream.wire import Usage
from otlp_receiver import OtlpReceiver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
BODY = {"messages": [{"role": "user", "content": "secret prompt"}], "model": "m1", "stream": True}


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_SERVICE_NAME": "proxy"},  # naming the service alone asks for no export
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
    ],
)
def test_tracing_is_off_unless_asked_for(environ: dict[str, str]) -> None:
    assert TracingConfig.from_environ(environ) is None
    assert ProxyTracing.from_environ(environ) is None


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "console"}, ("console",)),
        ({"OTEL_TRACES_EXPORTER": "otlp, console"}, ("otlp", "console")),
        (
            {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            ("otlp",),
        ),
    ],
)
def test_tracing_on(environ: dict[str, str], exporters: tuple[str, ...]) -> None:
    config = TracingConfig.from_environ(environ)
    assert config is not None and config.exporters == exporters


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            r"'grpc' is not supported.*'http/protobuf'.*4318",
        ),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "http/json"),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, r"unsupported: zipkin"),
    ],
)
def test_unsupported_settings_are_refused_clearly(environ: dict[str, str], message: str) -> None:
    with pytest.raises(TracingConfigError, match=message):
        TracingConfig.from_environ(environ)


def in_memory(record_content: bool = False) -> tuple[ProxyTracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return ProxyTracing(provider, record_content=record_content), exporter


def scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"method": "POST", "path": "/v1/chat/completions", "headers": list(headers)}


def test_a_request_span_continues_the_callers_trace_and_parents_the_attempts() -> None:
    tracing, exporter = in_memory()
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01".encode()
    span = tracing.request_span(
        scope((b"traceparent", traceparent)), "/v1/chat/completions", "rq-1"
    )
    span.activate()
    span.admitted(BODY, "key:abc")
    attempt = AttemptSpan(
        configured_tracer(tracing.provider), BODY, "http://up.example:8080/v1", attempt=1
    )
    sent = attempt.headers["traceparent"]
    result = StreamResult(text="hi", finish_reason="stop", usage=Usage(3, 1, 4), model="m1-x")
    attempt.opened(200)
    attempt.finished(result)
    span.end(
        status=200, outcome="ok", error_code=None, result=result, usage=BilledUsage(3, 1, False)
    )
    client, server = exporter.get_finished_spans()
    assert server.name == "POST /v1/chat/completions"
    assert server.kind is SpanKind.SERVER
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == PARENT_ID
    assert client.name == "chat m1"
    assert client.kind is SpanKind.CLIENT
    assert client.parent is not None and client.parent.span_id == server.context.span_id
    assert sent == f"00-{TRACE_ID}-{client.context.span_id:016x}-01"  # propagated upstream
    assert dict(client.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "gloo",
        "gen_ai.request.model": "m1",
        "gen_ai.request.stream": True,
        "server.address": "up.example",
        "server.port": 8080,
        "gloo.attempt": 1,
        "http.response.status_code": 200,
        "gen_ai.response.model": "m1-x",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 3,
        "gen_ai.usage.output_tokens": 1,
    }
    attributes = dict(server.attributes or {})
    assert attributes["gloo.client"] == "key:abc"
    assert attributes["gloo.request_id"] == "rq-1"
    assert attributes["gen_ai.usage.output_tokens"] == 1
    assert attributes["gloo.usage.estimated"] is False
    assert not any("secret prompt" in str(v) for v in attributes.values())
    assert server.status.status_code is StatusCode.UNSET


def test_content_is_recorded_only_when_asked() -> None:
    tracing, exporter = in_memory(record_content=True)
    span = tracing.request_span(scope(), "/api/stream", "rq-2")
    span.admitted(BODY, "ip:127.0.0.1")
    span.end(
        status=200,
        outcome="ok",
        error_code=None,
        result=StreamResult(text="the answer"),
        usage=None,
    )
    (server,) = exporter.get_finished_spans()
    attributes = dict(server.attributes or {})
    assert "secret prompt" in str(attributes["gen_ai.input.messages"])
    assert "the answer" in str(attributes["gen_ai.output.messages"])


def test_failed_attempts_and_failed_requests_are_errors() -> None:
    tracing, exporter = in_memory()
    tracer = configured_tracer(tracing.provider)
    first = AttemptSpan(tracer, BODY, "https://api.example/v2", attempt=1)
    first.failed(RateLimitError("slow down", status_code=429, body="", retry_after=1.0))
    second = AttemptSpan(tracer, BODY, "https://api.example/v2", attempt=2)
    partial = StreamResult(text="par", token_count=1, interrupted=True)
    second.finished(None, StreamDisconnectedError("dropped", partial=partial))
    second.finished(None)  # ending twice is harmless
    span = tracing.request_span(scope(), "/api/stream", "rq-3")
    span.end(status=502, outcome="error", error_code="upstream_error", result=None, usage=None)
    one, two, server = exporter.get_finished_spans()
    assert one.attributes is not None and one.attributes["http.response.status_code"] == 429
    assert one.attributes["error.type"] == "RateLimitError"
    assert one.attributes["server.port"] == 443
    assert one.status.status_code is StatusCode.ERROR
    assert two.attributes is not None and two.attributes["gloo.interrupted"] is True
    assert two.attributes["error.type"] == "StreamDisconnectedError"
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes is not None and server.attributes["error.type"] == "upstream_error"


def test_no_tracer_without_a_configured_provider() -> None:
    # The tests never set a global provider: the library must then make no spans.
    assert configured_tracer() is None


def test_spans_reach_a_real_otlp_http_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    with OtlpReceiver() as otlp:
        environ = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_SERVICE_NAME": "proxy-under-test",
        }
        monkeypatch.setenv("OTEL_SERVICE_NAME", "proxy-under-test")  # read by the SDK itself
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint)
        tracing = ProxyTracing.from_environ(environ)
        assert tracing is not None
        span = tracing.request_span(scope(), "/api/stream", "rq-4")
        span.end(status=200, outcome="ok", error_code=None, result=None, usage=None)
        tracing.shutdown()
        (received,) = otlp.wait_for_spans(1)
    assert received.name == "POST /api/stream"
    assert received.kind == "SERVER"
    assert received.resource["service.name"] == "proxy-under-test"
    assert received.attributes["gloo.request_id"] == "rq-4"
    assert otlp.content_types == ["application/x-protobuf"]


def test_the_service_is_named_for_the_proxy_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    tracing = ProxyTracing.from_environ({"OTEL_TRACES_EXPORTER": "console"})
    assert tracing is not None
    assert tracing.provider.resource.attributes["service.name"] == "gloo-stream-proxy"
    tracing.shutdown()
