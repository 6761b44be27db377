"""The proxy's traces: a SERVER span per request, a CLIENT span per upstream attempt.

Checked two ways: exported over OTLP/HTTP to a real receiver on loopback (decoded with
``opentelemetry-proto``), from a ProxyServer and from a ``gloo-stream proxy`` process,
configured only by ``OTEL_*``; and with the SDK's in-memory exporter, for what depends on
settings (content recording) and on the caller (leaving early). And when no ``OTEL_*`` is
set, OpenTelemetry is not even imported.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gloo_stream.proxy.observe.telemetry import ProxyTracing
from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from gloo_stream.testing import ProxyServer, settings_for
from kit import environment_without_settings, free_port, wait_streams_closed, wait_until
from otlp_receiver import OtlpReceiver, ReceivedSpan

MESSAGES = [{"role": "user", "content": "A secret prompt about streams."}]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def otel_env(otlp: OtlpReceiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
        "OTEL_SERVICE_NAME": "gloo-proxy-under-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",  # ms: export at once, not after the SDK's 5 s
    }


def by_kind(spans: list[ReceivedSpan], kind: str) -> list[ReceivedSpan]:
    return sorted((s for s in spans if s.kind == kind), key=lambda s: s.start_ns)


def ask(url: str) -> httpx.Response:
    body = {"model": "auto", "stream": True, "messages": MESSAGES}
    headers = {"traceparent": TRACEPARENT}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=10)


def check_trace(spans: list[ReceivedSpan], simulator: SimulatorServer, attempts: int) -> None:
    (server,) = by_kind(spans, "SERVER")
    clients = by_kind(spans, "CLIENT")
    assert len(clients) == attempts
    assert server.name == "POST /v1/chat/completions"
    assert server.trace_id == TRACE_ID and server.parent_span_id == CALLER_SPAN
    assert server.resource["service.name"] == "gloo-proxy-under-test"
    got = server.attributes
    tokens = len(expected_answer(MESSAGES))
    assert got["http.response.status_code"] == 200
    assert got["gen_ai.operation.name"] == "chat"
    assert got["gen_ai.provider.name"] == "gloo"
    assert got["gen_ai.request.model"] == "auto"
    assert got["gen_ai.response.model"] == simulator.config.model
    assert got["gen_ai.response.finish_reasons"] == ("stop",)
    assert got["gen_ai.usage.output_tokens"] == tokens
    assert got["gen_ai.usage.input_tokens"] > 0
    assert got["gloo.usage.estimated"] is False
    assert got["gloo.outcome"] == "complete"
    assert got["gen_ai.response.time_to_first_chunk"] >= 0
    assert not any("secret prompt" in str(value) for value in got.values())
    for number, client in enumerate(clients, start=1):
        assert client.name == "chat auto"
        assert client.trace_id == TRACE_ID
        assert client.parent_span_id == server.span_id
        assert client.attributes["gloo.attempt"] == number
        assert client.attributes["server.address"] == "127.0.0.1"
    last = clients[-1]
    assert last.attributes["http.response.status_code"] == 200
    assert last.attributes["gen_ai.usage.output_tokens"] == tokens
    assert simulator.stats()["last_headers"]["traceparent"].startswith(
        f"00-{TRACE_ID}-{last.span_id}-"
    )


def test_spans_exported_over_otlp_http_from_a_proxy_server(
    simulator: SimulatorServer, otlp: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in otel_env(otlp).items():
        monkeypatch.setenv(name, value)
    simulator.push_fault({"kind": "status", "status": 503})  # one retry: two client spans
    with ProxyServer(settings_for(simulator, proxy_rate_limit="")) as proxy:
        response = ask(proxy.url)
        assert response.status_code == 200
        spans = otlp.wait_for_spans(3)
    check_trace(spans, simulator, attempts=2)
    failed = by_kind(spans, "CLIENT")[0]
    assert failed.attributes["http.response.status_code"] == 503
    assert failed.attributes["error.type"] == "ServerError"
    assert failed.status == "ERROR"
    assert set(otlp.content_types) == {"application/x-protobuf"}


def test_spans_exported_over_otlp_http_from_a_proxy_process(
    simulator: SimulatorServer, otlp: OtlpReceiver, tmp_path: Path
) -> None:
    port = free_port()
    env = environment_without_settings() | otel_env(otlp)
    env |= {
        "GLOO_API_URL": simulator.api_url,
        "GLOO_API_KEY": simulator.config.api_keys[0],
        "PROXY_PORT": str(port),
        "PROXY_RATE_LIMIT": "off",
    }
    argv = [sys.executable, "-c", "from gloo_stream.cli import main; main()", "proxy"]
    log = (tmp_path / "proxy.log").open("wb")
    proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{url}/health"), "the proxy process", timeout=20)
        assert ask(url).status_code == 200
        spans = otlp.wait_for_spans(2)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    check_trace(spans, simulator, attempts=1)
    text = (tmp_path / "proxy.log").read_text()
    assert f"traces    OTLP/HTTP to {otlp.endpoint}/v1/traces" in text


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_no_otel_environment_imports_no_opentelemetry(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys, httpx
        from gloo_stream.testing import ProxyServer
        with ProxyServer(offline=True) as proxy:
            body = {"messages": [{"role": "user", "content": "hi"}]}
            assert httpx.post(proxy.url + "/api/stream", json=body).status_code == 200
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    env = environment_without_settings()
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == "[]"


def in_memory() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def attributes(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


@pytest.mark.parametrize("log_content", [False, True])
def test_prompts_and_answers_are_recorded_only_with_proxy_log_content(
    simulator: SimulatorServer, log_content: bool
) -> None:
    provider, exporter = in_memory()
    tracing = ProxyTracing(provider, record_content=log_content)
    settings = settings_for(simulator, proxy_rate_limit="", proxy_log_content=log_content)
    with ProxyServer(settings, tracing=tracing) as proxy:
        assert ask(proxy.url).status_code == 200
        wait_until(lambda: len(exporter.get_finished_spans()) == 2, "both spans")
    spans = exporter.get_finished_spans()
    recorded = " ".join(str(value) for span in spans for value in attributes(span).values())
    assert ("secret prompt" in recorded) is log_content
    server = next(span for span in spans if span.name.startswith("POST"))
    if not log_content:
        assert "gen_ai.input.messages" not in attributes(server)
        assert "gen_ai.output.messages" not in attributes(server)
        return
    prompt = msgspec.json.decode(attributes(server)["gen_ai.input.messages"])
    assert prompt == [
        {"role": "user", "parts": [{"type": "text", "content": MESSAGES[0]["content"]}]}
    ]
    (output,) = msgspec.json.decode(attributes(server)["gen_ai.output.messages"])
    assert output["parts"] == [{"type": "text", "content": "".join(expected_answer(MESSAGES))}]
    assert output["finish_reason"] == "stop"


@pytest.fixture(scope="module")
def paced() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(tokens_per_second=50, first_token_delay=0, answer_tokens=200)
    with SimulatorServer(config) as sim:
        yield sim


def test_a_caller_who_leaves_ends_both_spans_as_interrupted(paced: SimulatorServer) -> None:
    provider, exporter = in_memory()
    with ProxyServer(
        settings_for(paced, proxy_rate_limit=""), tracing=ProxyTracing(provider)
    ) as proxy:
        body = msgspec.json.encode({"messages": MESSAGES, "stream": True, "model": "auto"})
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
            sock.sendall(head + body)
            received = b""
            while received.count(b"data: ") < 5:
                received += sock.recv(65536)
        wait_until(lambda: len(exporter.get_finished_spans()) == 2, "both spans")
        wait_streams_closed(paced)
    client, server = sorted(exporter.get_finished_spans(), key=lambda s: s.kind.value)[::-1]
    assert attributes(client)["gloo.interrupted"] is True
    assert attributes(server)["gloo.outcome"] == "disconnect"
    assert attributes(server)["http.response.status_code"] == 200
    assert attributes(server)["gloo.usage.estimated"] is True
    assert 0 < attributes(server)["gen_ai.usage.output_tokens"] < 200


def test_a_refused_request_is_one_server_span(simulator: SimulatorServer) -> None:
    provider, exporter = in_memory()
    settings = settings_for(simulator, proxy_rate_limit="", proxy_api_keys="k1")
    with ProxyServer(settings, tracing=ProxyTracing(provider)) as proxy:
        assert ask(proxy.url).status_code == 401
        wait_until(lambda: len(exporter.get_finished_spans()) == 1, "the server span")
    (server,) = exporter.get_finished_spans()
    assert attributes(server)["http.response.status_code"] == 401
    assert attributes(server)["error.type"] == "missing_api_key"
    assert "gloo.client" not in attributes(server)


def test_os_environ_is_untouched() -> None:
    assert not [name for name in os.environ if name.startswith("OTEL_")]
