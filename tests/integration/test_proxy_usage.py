"""Usage you can bill, through a real proxy and simulator: asked for, passed on, counted.

The proxy asks upstream for the usage chunk on every stream, relays it only to callers who
asked, and counts tokens per client and model in metrics and in the log line, from what
arrived (marked estimated) when the caller left early.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from gloo_stream.sse import SSEDecoder
from gloo_stream.testing import ProxyServer, settings_for
from kit import wait_streams_closed, wait_until

MESSAGES = [{"role": "user", "content": "Tell me about streams."}]
TOKENS = expected_answer(MESSAGES)
KEY = "client-key-1"
CONTENT = re.compile(rb'"content":"[^"]')


@pytest.fixture
def proxy(simulator: SimulatorServer) -> Iterator[ProxyServer]:
    settings = settings_for(simulator, proxy_rate_limit="", proxy_api_keys=KEY)
    with ProxyServer(settings) as server:
        yield server


def chunks(body: bytes) -> list[Any]:
    events = SSEDecoder().feed(body)
    return [msgspec.json.decode(e.data) for e in events if e.data != "[DONE]"]


def post(proxy: ProxyServer, path: str, **body: Any) -> httpx.Response:
    body = {"messages": MESSAGES, **body}
    headers = {"authorization": f"Bearer {KEY}"}
    return httpx.post(f"{proxy.url}{path}", json=body, headers=headers, timeout=10)


def log_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        record.proxy  # type: ignore[attr-defined]
        for record in caplog.records
        if getattr(record, "proxy", {}).get("event") == "request"
    ]


def metric(proxy: ProxyServer, name: str, **labels: str) -> float | None:
    assert proxy.app is not None
    registry = proxy.app.proxy.metrics.registry
    return registry.get_sample_value(name, labels)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/stream"])
def test_usage_is_asked_for_but_not_passed_on_unasked(
    proxy: ProxyServer, simulator: SimulatorServer, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.INFO, logger="gloo_stream.proxy")
    response = post(proxy, path, model="auto", stream=True)
    assert response.status_code == 200
    got = chunks(response.content)
    assert all(chunk["choices"] for chunk in got), "a usage-only chunk reached the caller"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in got) == "".join(TOKENS)
    assert simulator.stats()["last_request"]["stream_options"] == {"include_usage": True}
    wait_until(lambda: log_lines(caplog), "the request's log line")  # written after the end
    (line,) = log_lines(caplog)
    prompt = line["usage"]["input_tokens"]
    assert line["usage"] == {
        "input_tokens": prompt,
        "output_tokens": len(TOKENS),
        "estimated": False,
    }
    assert prompt > 0
    assert line["model"] == got[0]["model"]
    labels = {"model": got[0]["model"], "estimated": "false"}
    client = line["client"]
    assert client.startswith("key:")
    assert metric(proxy, "gloo_proxy_tokens_total", client=client, type="output", **labels) == len(
        TOKENS
    )
    assert metric(proxy, "gloo_proxy_tokens_total", client=client, type="input", **labels) == prompt


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/stream"])
def test_callers_who_ask_get_the_usage_chunk_last(proxy: ProxyServer, path: str) -> None:
    response = post(proxy, path, stream=True, stream_options={"include_usage": True})
    got = chunks(response.content)
    assert got[-1]["choices"] == []
    usage = got[-1]["usage"]
    assert usage["completion_tokens"] == len(TOKENS)
    assert usage["total_tokens"] == usage["prompt_tokens"] + len(TOKENS)
    assert all(chunk["choices"] for chunk in got[:-1])
    if path.startswith("/v1"):
        assert response.content.endswith(b"data: [DONE]\n\n")


def test_a_whole_v1_answer_carries_usage(proxy: ProxyServer) -> None:
    body = post(proxy, "/v1/chat/completions", model="auto").json()
    assert body["object"] == "chat.completion"
    assert body["usage"]["completion_tokens"] == len(TOKENS)


def test_the_upstream_need_not_be_asked(simulator: SimulatorServer) -> None:
    settings = settings_for(simulator, proxy_rate_limit="", proxy_upstream_usage=False)
    with ProxyServer(settings) as proxy:
        response = httpx.post(f"{proxy.url}/api/stream", json={"messages": MESSAGES}, timeout=10)
        assert response.status_code == 200
        assert "stream_options" not in simulator.stats()["last_request"]
        # Gloo's own way: usage on the finish chunk, relayed as it came.
        assert chunks(response.content)[-1]["usage"]["completion_tokens"] == len(TOKENS)


@pytest.fixture(scope="module")
def paced() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(tokens_per_second=50, first_token_delay=0, answer_tokens=200)
    with SimulatorServer(config) as sim:
        yield sim


def test_a_caller_who_leaves_early_is_billed_what_arrived(
    paced: SimulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gloo_stream.proxy")
    settings = settings_for(paced, proxy_rate_limit="")
    with ProxyServer(settings) as proxy:
        body = msgspec.json.encode({"messages": MESSAGES, "model": "auto", "stream": True})
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            f"\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
            sock.sendall(head + body)
            received = b""
            while len(CONTENT.findall(received)) < 6:  # a few tokens, then leave
                received += sock.recv(65536)
        wait_until(lambda: log_lines(caplog), "the request's log line")
        wait_streams_closed(paced)
        (line,) = log_lines(caplog)
        assert line["status"] == 200 and line["outcome"] == "disconnect"
        usage = line["usage"]
        assert usage["estimated"] is True
        assert 6 <= usage["output_tokens"] < 200
        assert usage["input_tokens"] > 0
        client = line["client"]
        assert client.startswith("ip:")
        estimated = {"client": "anonymous", "model": line["model"], "estimated": "true"}
        output = metric(proxy, "gloo_proxy_tokens_total", type="output", **estimated)
        assert output == usage["output_tokens"]
        # The conventions' histogram takes only counts the upstream gave: none here.
        assert metric(proxy, "gen_ai_client_token_usage_count", **_genai(line["model"])) is None


def _genai(model: str) -> dict[str, str]:
    return {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "gloo",
        "gen_ai_request_model": "auto",
        "gen_ai_response_model": model,
        "gen_ai_token_type": "output",
    }


def test_budgets_refuse_before_anything_goes_upstream(simulator: SimulatorServer) -> None:
    settings = settings_for(
        simulator,
        proxy_rate_limit="",
        proxy_api_keys=KEY,
        proxy_token_budget="30/hour",
        proxy_budget_reserve_tokens=0,  # reserve the prompt's estimate only
        proxy_metrics_allow_client_keys=True,
    )
    with ProxyServer(settings) as proxy:
        first = post(proxy, "/api/stream", stream_options={"include_usage": True})
        assert first.status_code == 200
        # What is left once the prompt's estimate (22 characters: 6 tokens) was reserved.
        assert first.headers["x-token-budget-remaining"] == "24"
        assert chunks(first.content)[-1]["usage"]["total_tokens"] > 30
        # Debited once the answer has ended, just after its last byte went out.
        remaining = proxy.app.proxy.metrics.usage.budget_remaining if proxy.app else None
        assert remaining is not None
        wait_until(lambda: remaining.labels(metric_clients(proxy))._value.get() == 0, "the debit")
        before = simulator.stats()["requests"]
        refused = post(proxy, "/api/stream")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "token_budget_exhausted"
        assert refused.headers["x-token-budget-remaining"] == "0"
        wait = int(refused.headers["retry-after"])
        window_left = 3600 - time.time() % 3600
        assert abs(wait - window_left) <= 2
        assert simulator.stats()["requests"] == before, "a refused request went upstream"
        client = metric_clients(proxy)
        assert metric(proxy, "gloo_proxy_token_budget_remaining", client=client) == 0
        assert metric(proxy, "gloo_proxy_limited_total", limit="token_budget") == 1
        metrics = httpx.get(f"{proxy.url}/metrics", headers={"authorization": f"Bearer {KEY}"})
        assert "gen_ai_client_operation_duration_bucket" in metrics.text


def metric_clients(proxy: ProxyServer) -> str:
    assert proxy.app is not None
    gauge = proxy.app.proxy.metrics.usage.budget_remaining
    (labels,) = gauge._metrics  # type: ignore[attr-defined]
    return str(labels[0])
