"""The library's client spans (one per upstream attempt) with the SDK's in-memory exporter.

Both twins, against the simulator on loopback: the spans' names and GenAI attributes, one
span per retry, ``traceparent`` on the wire, an answer the caller stopped reading, and no
header at all without a tracer provider.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gloo_stream import AsyncGlooClient, GlooClient, GlooSettings, RetryPolicy
from gloo_stream.simulator import SimulatorServer, expected_answer

FAST = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_max=0.05)
MESSAGES = [{"role": "user", "content": "Explain streaming in one paragraph."}]
MODEL = "gloo-anthropic-claude-sonnet-4.5"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


def kwargs(sim: SimulatorServer, **extra: Any) -> dict[str, Any]:
    settings = GlooSettings(_env_file=None)  # type: ignore[call-arg]
    return {
        "api_url": sim.api_url,
        "api_key": "sim-key",
        "retry_policy": FAST,
        "settings": settings,
        **extra,
    }


def complete(twin: str, sim: SimulatorServer, **extra: Any) -> Any:
    if twin == "sync":
        with GlooClient(**kwargs(sim, **extra)) as client:
            return client.complete(MESSAGES, model=MODEL)

    async def run() -> Any:
        async with AsyncGlooClient(**kwargs(sim, **extra)) as client:
            return await client.complete(MESSAGES, model=MODEL)

    return asyncio.run(run())


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_one_client_span_per_attempt_with_genai_attributes(
    twin: str, simulator: SimulatorServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    simulator.push_fault({"kind": "status", "status": 503})
    result = complete(twin, simulator, tracer_provider=provider)
    assert result.text == "".join(expected_answer(MESSAGES))
    failed, answered = exporter.get_finished_spans()
    for span in (failed, answered):
        assert span.name == f"chat {MODEL}"
        assert span.kind is SpanKind.CLIENT
        assert attributes(span)["gen_ai.operation.name"] == "chat"
        assert attributes(span)["gen_ai.provider.name"] == "gloo"
        assert attributes(span)["gen_ai.request.model"] == MODEL
        assert attributes(span)["server.address"] == "127.0.0.1"
    assert attributes(failed)["gloo.attempt"] == 1
    assert attributes(failed)["http.response.status_code"] == 503
    assert attributes(failed)["error.type"] == "ServerError"
    assert failed.status.status_code is StatusCode.ERROR
    got = attributes(answered)
    assert got["gloo.attempt"] == 2
    assert got["http.response.status_code"] == 200
    assert got["gen_ai.response.model"] == result.model
    assert got["gen_ai.response.finish_reasons"] == ("stop",)
    assert result.usage is not None
    assert got["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert got["gen_ai.usage.output_tokens"] == result.usage.completion_tokens
    assert 0 <= got["gen_ai.response.time_to_first_chunk"] < 5
    assert answered.status.status_code is StatusCode.UNSET
    # The answered attempt's own context went upstream as W3C traceparent.
    sent = simulator.stats()["last_headers"]["traceparent"]
    ctx = answered.context
    version, trace_id, span_id, flags = sent.split("-")
    assert (version, trace_id, span_id) == ("00", f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")
    assert int(flags, 16) & 1  # sampled


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_no_tracer_provider_means_no_traceparent(twin: str, simulator: SimulatorServer) -> None:
    complete(twin, simulator)
    assert "traceparent" not in simulator.stats()["last_headers"]


def test_a_stream_closed_early_ends_its_span_as_interrupted(
    simulator: SimulatorServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with (
        GlooClient(**kwargs(simulator, tracer_provider=provider)) as client,
        client.stream(MESSAGES) as stream,
    ):
        for chunk in stream:
            if chunk.content:
                break
        partial = stream.partial_result()
    assert partial is not None and partial.interrupted and partial.text
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat auto"
    assert attributes(span)["gloo.interrupted"] is True
    assert "gen_ai.response.finish_reasons" not in attributes(span)


def test_a_mid_stream_failure_is_an_error_span(
    simulator: SimulatorServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    simulator.push_fault({"kind": "error", "after": 2})
    with (
        GlooClient(**kwargs(simulator, tracer_provider=provider)) as client,
        pytest.raises(Exception, match="failed mid-answer"),
        client.stream(MESSAGES, max_continuations=0) as stream,  # the failure, not continued
    ):
        for _ in stream:
            pass
    (span,) = exporter.get_finished_spans()
    assert attributes(span)["error.type"] == "UpstreamStreamError"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description is not None and "PROVIDER" in span.status.description
