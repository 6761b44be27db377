"""Every upstream fault kind, surfacing as documented.

Before the stream: real statuses with an OpenAI-shaped JSON body (429 keeps Retry-After,
upstream auth failure is a 502 about the proxy's own credentials). After the stream began:
one final ``event: error`` whose data is ``{"error": {"message", "type", "code"}}``, and
retries only ever before the first byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import openai
import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from gloo_stream.sse import ServerSentEvent, SSEDecoder
from gloo_stream.testing import ProxyServer, settings_for
from gloo_stream.wire import decode_chunk

MESSAGES = [{"role": "user", "content": "Tell me about faults"}]
BODY = {"messages": MESSAGES}


@pytest.fixture(scope="module")
def proxy(simulator_session: SimulatorServer) -> Iterator[ProxyServer]:
    settings = settings_for(
        simulator_session,
        proxy_rate_limit="",
        gloo_max_retries=1,
        gloo_max_retry_wait=0.5,
        gloo_max_continuations=0,  # today's end of a cut answer (continuation: its own tests)
        gloo_read_timeout=1.0,
        gloo_first_byte_timeout=1.0,
    )
    with ProxyServer(settings) as server:
        yield server


def post(proxy: ProxyServer, path: str = "/api/stream", body: Any = None) -> httpx.Response:
    return httpx.post(f"{proxy.url}{path}", json=body or BODY, timeout=20)


def events(response: httpx.Response) -> list[ServerSentEvent]:
    return SSEDecoder().feed(response.content)


def error_of(event: ServerSentEvent) -> dict[str, Any]:
    assert event.event == "error"
    error: dict[str, Any] = msgspec.json.decode(event.data)["error"]
    assert isinstance(error["message"], str)
    assert isinstance(error["type"], str)
    return error


def content_chunks(evs: list[ServerSentEvent]) -> list[str]:
    return [
        decode_chunk(e.data).content
        for e in evs
        if e.event == "message" and e.data != "[DONE]" and decode_chunk(e.data).content
    ]


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (
            {"kind": "status", "status": 429, "retry_after": "7", "times": 2},
            429,
            "upstream_rate_limited",
        ),
        ({"kind": "status", "status": 401, "times": 2}, 502, "upstream_auth_failed"),
        ({"kind": "status", "status": 403, "times": 2}, 502, "upstream_auth_failed"),
        ({"kind": "status", "status": 422, "times": 2}, 400, "upstream_bad_request"),
        ({"kind": "status", "status": 404, "times": 2}, 404, "upstream_not_found"),
        ({"kind": "status", "status": 500, "times": 2}, 502, "upstream_error"),
        ({"kind": "status", "status": 502, "times": 2}, 502, "upstream_error"),
        ({"kind": "status", "status": 408, "times": 2}, 504, "upstream_timeout"),
        ({"kind": "slow_headers", "delay": 3, "times": 2}, 504, "upstream_timeout"),
    ],
)
@pytest.mark.parametrize("path", ["/api/stream", "/v1/chat/completions"])
def test_failures_before_the_stream_get_real_statuses(
    proxy: ProxyServer,
    simulator: SimulatorServer,
    fault: dict[str, Any],
    status: int,
    code: str,
    path: str,
) -> None:
    simulator.push_fault(fault)
    body = {**BODY, "stream": True} if path.startswith("/v1") else BODY
    response = post(proxy, path, body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error) >= {"message", "type", "param", "code"}
    if status == 429:
        # A wait longer than the retry budget allows is handed to the caller, not slept.
        assert response.headers["retry-after"] == "7"
        assert simulator.stats()["requests"] == 1
    if code == "upstream_auth_failed":
        assert "credentials" in error["message"]
        assert "sim-key" not in response.text


def test_a_transient_failure_before_the_stream_is_retried(
    proxy: ProxyServer, simulator: SimulatorServer
) -> None:
    before = retries(proxy)
    simulator.push_fault({"kind": "status", "status": 503})
    response = post(proxy)
    assert response.status_code == 200
    assert content_chunks(events(response))
    assert simulator.stats()["requests"] == 2
    assert retries(proxy) == before + 1


def retries(proxy: ProxyServer) -> float:
    for line in httpx.get(f"{proxy.url}/metrics").text.splitlines():
        if line.startswith("gloo_proxy_upstream_retries_total "):
            return float(line.split()[1])
    raise AssertionError("no retries metric")


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"kind": "disconnect", "after": 3}, "upstream_disconnected"),
        ({"kind": "truncate", "after": 3}, "upstream_truncated"),
        ({"kind": "malformed", "after": 3, "end": True}, "upstream_malformed"),
        (
            {"kind": "error", "after": 3, "code": 2001, "name": "PROVIDER_TIMEOUT"},
            "PROVIDER_TIMEOUT",
        ),
        ({"kind": "stall", "after": 3, "duration": 5}, "upstream_timeout"),
    ],
)
def test_failures_mid_stream_end_with_one_error_event_and_no_retry(
    proxy: ProxyServer, simulator: SimulatorServer, fault: dict[str, Any], code: str
) -> None:
    simulator.push_fault(fault)
    response = post(proxy)
    assert response.status_code == 200
    evs = events(response)
    assert error_of(evs[-1])["code"] == code
    assert [e.event for e in evs].count("error") == 1
    # Exactly the chunks sent before the fault were relayed, each a valid chunk.
    assert content_chunks(evs[:-1]) == expected_answer(MESSAGES)[:3]
    assert simulator.stats()["requests"] == 1  # never re-sent once bytes were relayed
    if code == "PROVIDER_TIMEOUT":
        assert error_of(evs[-1])["upstream_code"] == 2001


def test_content_filter_is_relayed_as_the_finish_reason(
    proxy: ProxyServer, simulator: SimulatorServer
) -> None:
    simulator.push_fault({"kind": "content_filter", "after": 3})
    evs = events(post(proxy))
    assert decode_chunk(evs[-1].data).finish_reason == "content_filter"
    assert all(e.event == "message" for e in evs)
    assert simulator.stats()["requests"] == 1


@pytest.mark.parametrize("kind", ["tool_calls", "done", "multiline", "crlf", "slow_first_token"])
def test_benign_variations_relay_cleanly(
    proxy: ProxyServer, simulator: SimulatorServer, kind: str
) -> None:
    simulator.push_fault({"kind": kind, "delay": 0.2})
    evs = events(post(proxy))
    assert all(e.event == "message" for e in evs)
    last = decode_chunk(evs[-1].data)
    assert last.finish_reason == ("tool_calls" if kind == "tool_calls" else "stop")
    if kind != "tool_calls":
        assert "".join(content_chunks(evs)) == "".join(expected_answer(MESSAGES))


def test_openai_sdk_raises_on_a_mid_stream_failure(
    proxy: ProxyServer, simulator: SimulatorServer
) -> None:
    simulator.push_fault({"kind": "error", "after": 2, "name": "PROVIDER_TIMEOUT"})
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="x", max_retries=0)
    stream = client.chat.completions.create(model="auto", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    seen: list[str] = []
    with pytest.raises(openai.APIError, match="PROVIDER_TIMEOUT"):
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(seen) == "".join(expected_answer(MESSAGES)[:2])


def test_non_streaming_v1_mid_stream_failure_is_a_502(
    proxy: ProxyServer, simulator: SimulatorServer
) -> None:
    # Cut three times: the first cut and both continuations (GLOO_MAX_CONTINUATIONS=2).
    simulator.push_fault({"kind": "disconnect", "after": 2, "times": 3})
    response = post(proxy, "/v1/chat/completions", {"model": "auto", "messages": MESSAGES})
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_disconnected"


def test_heartbeats_keep_a_silent_stream_alive() -> None:
    config = SimulatorConfig(tokens_per_second=0, first_token_delay=0)
    with SimulatorServer(config) as sim:
        settings = settings_for(sim, proxy_heartbeat_interval=0.1, gloo_read_timeout=5)
        with ProxyServer(settings) as server:
            sim.push_fault({"kind": "stall", "after": 2, "duration": 0.6})
            response = httpx.post(f"{server.url}/api/stream", json=BODY, timeout=10)
    raw = response.content
    assert raw.count(b": keep-alive\n") >= 3
    evs = SSEDecoder().feed(raw)
    assert "".join(content_chunks(evs)) == "".join(expected_answer(MESSAGES))


def test_oauth_mode_shares_one_token_across_requests() -> None:
    with SimulatorServer(SimulatorConfig(tokens_per_second=0, first_token_delay=0)) as sim:
        settings = settings_for(
            sim, gloo_api_key=None, gloo_client_id="sim-client", gloo_client_secret="sim-secret"
        )
        with ProxyServer(settings) as server, httpx.Client(timeout=10) as http:
            for _ in range(5):
                assert http.post(f"{server.url}/api/stream", json=BODY).status_code == 200
        assert sim.stats()["token_requests"] == 1


def test_oauth_with_wrong_secret_is_a_502_naming_the_settings() -> None:
    with SimulatorServer(SimulatorConfig(tokens_per_second=0, first_token_delay=0)) as sim:
        settings = settings_for(
            sim, gloo_api_key=None, gloo_client_id="sim-client", gloo_client_secret="wrong-one"
        )
        with ProxyServer(settings) as server:
            response = httpx.post(f"{server.url}/api/stream", json=BODY, timeout=10)
    assert response.status_code == 502
    assert "GLOO_CLIENT_ID" in response.json()["error"]["message"]
    assert "wrong-one" not in response.text
