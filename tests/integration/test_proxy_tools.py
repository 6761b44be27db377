"""Tools and response_format pass through both proxy routes (the proxy runs no tools)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from gloo_stream.simulator import SimulatorServer
from gloo_stream.sse import SSEDecoder
from gloo_stream.testing import ProxyServer, settings_for
from gloo_stream.wire import decode_chunk

MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "Verse",
        "schema": {
            "type": "object",
            "properties": {"book": {"type": "string"}, "chapter": {"type": "integer"}},
            "required": ["book", "chapter"],
        },
    },
}


@pytest.fixture(scope="module")
def proxy(simulator_session: SimulatorServer) -> Iterator[ProxyServer]:
    with ProxyServer(settings_for(simulator_session, proxy_rate_limit="")) as server:
        yield server


def chunks(body: bytes) -> list[Any]:
    return [decode_chunk(e.data) for e in SSEDecoder().feed(body) if e.data != "[DONE]"]


@pytest.mark.parametrize("route", ["/api/stream", "/v1/chat/completions"])
def test_tools_pass_through_and_calls_stream_back(
    proxy: ProxyServer, simulator: SimulatorServer, route: str
) -> None:
    body = {
        "messages": MESSAGES,
        "tools": TOOLS,
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "stream": True,
    }
    if route.startswith("/v1"):
        body["model"] = "auto"
    response = httpx.post(f"{proxy.url}{route}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    sent = simulator.stats()["last_request"]
    assert sent["tools"] == TOOLS
    assert sent["tool_choice"] == "auto"
    assert sent["parallel_tool_calls"] is True
    got = chunks(response.content)
    arguments = "".join(
        call.function.arguments or ""
        for c in got
        if c.choices
        for call in c.choices[0].delta.tool_calls or ()
    )
    assert json.loads(arguments) == {"city": "Paris"}
    assert got[-1].finish_reason == "tool_calls"


@pytest.mark.parametrize("route", ["/api/stream", "/v1/chat/completions"])
@pytest.mark.parametrize("response_format", [{"type": "json_object"}, SCHEMA])
def test_response_format_passes_and_the_answer_is_json(
    proxy: ProxyServer, simulator: SimulatorServer, route: str, response_format: dict[str, Any]
) -> None:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": "A verse"}],
        "response_format": response_format,
        "stream": True,
    }
    if route.startswith("/v1"):
        body["model"] = "auto"
    response = httpx.post(f"{proxy.url}{route}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    assert simulator.stats()["last_request"]["response_format"] == response_format
    pieces = [c.content for c in chunks(response.content) if c.content]
    assert len(pieces) > 5  # JSON in small fragments
    answer = json.loads("".join(pieces))
    if response_format is SCHEMA:
        assert set(answer) == {"book", "chapter"}
        assert isinstance(answer["chapter"], int)


@pytest.mark.parametrize("route", ["/api/stream", "/v1/chat/completions"])
def test_a_malformed_response_format_is_refused_naming_it(proxy: ProxyServer, route: str) -> None:
    body = {"messages": MESSAGES, "model": "auto", "response_format": {"type": "xml"}}
    response = httpx.post(f"{proxy.url}{route}", json=body, timeout=10)
    assert response.status_code == 400
    assert "response_format" in response.text


def test_openai_sdk_parses_structured_output_through_the_proxy(proxy: ProxyServer) -> None:
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="x", max_retries=0)
    completion = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "A verse"}],
        response_format=SCHEMA,  # type: ignore[arg-type]
    )
    content = completion.choices[0].message.content
    assert content is not None
    assert set(json.loads(content)) == {"book", "chapter"}
    client.close()
