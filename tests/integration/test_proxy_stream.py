"""The proxy's happy paths over real sockets: /api/stream, /v1 (OpenAI SDK), health, page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import openai
import pytest

from gloo_stream.simulator import SimulatorServer, expected_answer
from gloo_stream.sse import ServerSentEvent, SSEDecoder
from gloo_stream.testing import ProxyServer, settings_for
from gloo_stream.wire import decode_chunk

MESSAGES = [{"role": "user", "content": "How do streams work?"}]


@pytest.fixture(scope="module")
def proxy(simulator_session: SimulatorServer) -> Iterator[ProxyServer]:
    # A cut answer ends with an error event here (continuing it: test_continuation.py).
    settings = settings_for(simulator_session, proxy_rate_limit="", gloo_max_continuations=0)
    with ProxyServer(settings) as server:
        yield server


def sse_events(body: bytes) -> list[ServerSentEvent]:
    return SSEDecoder().feed(body)


def stream_text(events: list[ServerSentEvent]) -> str:
    return "".join(decode_chunk(e.data).content for e in events if e.data != "[DONE]")


def test_api_stream_relays_the_exact_answer_with_sse_headers(
    proxy: ProxyServer, simulator: SimulatorServer
) -> None:
    response = httpx.post(f"{proxy.url}/api/stream", json={"messages": MESSAGES}, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["x-request-id"]
    events = sse_events(response.content)
    assert stream_text(events) == "".join(expected_answer(MESSAGES))
    assert decode_chunk(events[-1].data).finish_reason == "stop"
    assert all(e.event == "message" for e in events)
    sent = simulator.stats()["last_request"]
    assert sent["stream"] is True
    assert sent["auto_routing"] is True
    assert sent["messages"] == MESSAGES


def test_api_stream_forces_stream_and_keeps_the_callers_routing(
    proxy: ProxyServer, simulator: SimulatorServer
) -> None:
    body = {"messages": MESSAGES, "stream": False, "model_family": "anthropic", "max_tokens": 5}
    response = httpx.post(f"{proxy.url}/api/stream", json=body, timeout=10)
    assert response.status_code == 200
    sent = simulator.stats()["last_request"]
    assert sent["stream"] is True
    assert sent["model_family"] == "anthropic"
    assert "auto_routing" not in sent
    assert stream_text(sse_events(response.content)) == "".join(
        expected_answer(MESSAGES, max_tokens=5)
    )


def test_events_are_relayed_whole_as_they_arrive(
    proxy: ProxyServer, simulator: SimulatorServer
) -> None:
    simulator.push_fault({"kind": "multiline"})
    with httpx.stream("POST", f"{proxy.url}/api/stream", json={"messages": MESSAGES}) as response:
        decoder = SSEDecoder()
        events = [e for raw in response.iter_raw() for e in decoder.feed(raw)]
    # Every event is a whole chunk (a multi-line one too): each decodes on its own.
    assert stream_text(events) == "".join(expected_answer(MESSAGES))
    assert any("\n" in e.data for e in events)


def test_done_sentinel_upstream_is_not_doubled(
    proxy: ProxyServer, simulator: SimulatorServer
) -> None:
    simulator.push_fault({"kind": "done"})
    body = {"model": "auto", "messages": MESSAGES, "stream": True}
    response = httpx.post(f"{proxy.url}/v1/chat/completions", json=body, timeout=10)
    events = sse_events(response.content)
    assert [e.data for e in events].count("[DONE]") == 1
    assert events[-1].data == "[DONE]"


def test_openai_sdk_streams_the_exact_text(proxy: ProxyServer, simulator: SimulatorServer) -> None:
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="not-a-gloo-key", max_retries=0)
    stream = client.chat.completions.create(model="auto", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert "".join(pieces) == "".join(expected_answer(MESSAGES))
    assert simulator.stats()["last_request"]["auto_routing"] is True
    # The SDK's own key never went upstream: the proxy's credentials did.
    assert "not-a-gloo-key" not in str(simulator.stats()["last_headers"])


def test_openai_sdk_non_streaming(proxy: ProxyServer, simulator: SimulatorServer) -> None:
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="x", max_retries=0)
    completion = client.chat.completions.create(
        model="gloo-anthropic-claude-sonnet-4.5",
        messages=MESSAGES,  # type: ignore[arg-type]
        max_completion_tokens=7,
    )
    assert completion.choices[0].message.content == "".join(expected_answer(MESSAGES, max_tokens=7))
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    sent = simulator.stats()["last_request"]
    assert sent["model"] == "gloo-anthropic-claude-sonnet-4.5"
    assert sent["max_tokens"] == 7


def test_openai_sdk_async_streaming_with_tool_calls(
    proxy: ProxyServer, simulator: SimulatorServer
) -> None:
    import asyncio

    async def run() -> list[str]:
        client = openai.AsyncOpenAI(base_url=f"{proxy.url}/v1", api_key="x", max_retries=0)
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
        stream = await client.chat.completions.create(
            model="auto",
            messages=MESSAGES,  # type: ignore[arg-type]
            tools=tools,  # type: ignore[list-item]
            stream=True,
        )
        names = []
        async for chunk in stream:
            for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                if call.function and call.function.name:
                    names.append(call.function.name)
        await client.close()
        return names

    simulator.push_fault({"kind": "tool_calls"})
    assert asyncio.run(run()) == ["get_weather"]


def test_openai_sdk_sees_errors_in_openai_shape(proxy: ProxyServer) -> None:
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="auto", messages=[])
    body = caught.value.body
    assert isinstance(body, dict)
    assert set(body) >= {"message", "type", "param", "code"}
    assert body["param"] == "messages"


def test_v1_models_lists_auto(proxy: ProxyServer) -> None:
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="x", max_retries=0)
    assert "auto" in [m.id for m in client.models.list()]


def test_health_reports_service_and_upstream(proxy: ProxyServer) -> None:
    response = httpx.get(f"{proxy.url}/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["service"] == "completions-streaming-proxy"
    assert body["upstream"]["configured"] is True
    assert body["limits"] == {"shared": False, "store_up": None, "fail": None}
    assert body["ready"] is True


def test_health_without_credentials_is_not_ready_and_completions_say_why(
    simulator: SimulatorServer,
) -> None:
    settings = settings_for(simulator, gloo_api_key=None)
    with ProxyServer(settings) as server:
        health = httpx.get(f"{server.url}/health")
        assert health.status_code == 503
        assert health.json()["upstream"]["configured"] is False
        response = httpx.post(f"{server.url}/api/stream", json={"messages": MESSAGES})
        assert response.status_code == 503
        assert "GLOO_API_KEY" in response.json()["error"]["message"]


def test_metrics_count_requests_chunks_and_latency(
    proxy: ProxyServer, simulator: SimulatorServer
) -> None:
    httpx.post(f"{proxy.url}/api/stream", json={"messages": MESSAGES}, timeout=10)
    text = httpx.get(f"{proxy.url}/metrics").text
    assert 'gloo_proxy_requests_total{route="/api/stream",status="200"}' in text
    assert "gloo_proxy_chunks_relayed_total" in text
    assert "gloo_proxy_time_to_first_token_seconds_count" in text
    assert "gloo_proxy_stream_duration_seconds_count" in text
    assert "gloo_proxy_active_streams 0.0" in text
    for name in ("bytes_relayed", "client_disconnects", "upstream_retries"):
        assert f"gloo_proxy_{name}_total" in text


def test_many_apps_in_one_process_keep_their_own_metrics(simulator: SimulatorServer) -> None:
    from gloo_stream.proxy import create_app

    first, second = create_app(settings_for(simulator)), create_app(settings_for(simulator))
    first.proxy.metrics.chunks.inc(5)
    assert b"gloo_proxy_chunks_relayed_total 5.0" in first.proxy.metrics.render()
    assert b"gloo_proxy_chunks_relayed_total 0.0" in second.proxy.metrics.render()


def test_page_and_vendor_files(simulator: SimulatorServer, tmp_path: Path) -> None:
    modules = tmp_path / "node_modules"
    (modules / "marked").mkdir(parents=True)
    (modules / "marked" / "marked.min.js").write_text("/* marked */")
    settings = settings_for(simulator, proxy_node_modules=str(modules))
    with ProxyServer(settings) as server:
        marked = httpx.get(f"{server.url}/vendor/marked.js")
        assert marked.status_code == 200
        assert marked.text == "/* marked */"
        assert "javascript" in marked.headers["content-type"]
        purify = httpx.get(f"{server.url}/vendor/purify.js")
        assert purify.status_code == 404
        assert "npm" in purify.json()["error"]["message"]
        page = httpx.get(f"{server.url}/")
        index = Path(__file__).parents[2] / "src/gloo_stream/proxy/static/index.html"
        assert page.status_code == (200 if index.is_file() else 404)
        missing = httpx.get(f"{server.url}/static/definitely-not-here.js")
        assert missing.status_code == 404


def test_missing_node_modules_is_a_clear_404(simulator: SimulatorServer, tmp_path: Path) -> None:
    settings = settings_for(simulator, proxy_node_modules=str(tmp_path / "nowhere"))
    with ProxyServer(settings) as server:
        response = httpx.get(f"{server.url}/vendor/marked.js")
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert "npm ci" in message
    assert "PROXY_NODE_MODULES" in message


def test_the_libraries_are_served_from_the_package_by_default(simulator: SimulatorServer) -> None:
    from gloo_stream.proxy.routes.vendor import LIBRARIES, SHIPPED_DIR

    with ProxyServer(settings_for(simulator)) as server:
        for library in LIBRARIES:
            response = httpx.get(f"{server.url}/vendor/{library.served_as}")
            assert response.status_code == 200
            assert "javascript" in response.headers["content-type"]
            shipped = SHIPPED_DIR / library.package / library.builds[0]
            assert response.content == shipped.read_bytes()


def test_libraries_missing_from_the_package_get_a_404_for_a_pip_user(
    simulator: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gloo_stream.proxy.routes import page as static

    monkeypatch.setattr(static, "SHIPPED_DIR", tmp_path)
    summary, problems = static.page_libraries(settings_for(simulator))
    assert summary == "none: markdown is off"
    assert len(problems) == 2
    with ProxyServer(settings_for(simulator)) as server:
        response = httpx.get(f"{server.url}/vendor/purify.js")
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert "DOMPurify is missing from this gloo-stream installation" in message
    assert "reinstall gloo-stream" in message
    assert "project root" not in message  # a pip user has no checkout


def test_error_event_is_valid_json(proxy: ProxyServer, simulator: SimulatorServer) -> None:
    simulator.push_fault({"kind": "truncate", "after": 2})
    response = httpx.post(f"{proxy.url}/api/stream", json={"messages": MESSAGES}, timeout=10)
    last = sse_events(response.content)[-1]
    assert last.event == "error"
    error = msgspec.json.decode(last.data)["error"]
    assert set(error) >= {"message", "type", "code"}
