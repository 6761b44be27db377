"""Abuse refused: bad input (4xx, never 5xx, never upstream), CORS, client keys, limits, secrets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from pydantic import SecretStr

from gloo_stream.simulator import SimulatorConfig, SimulatorServer
from gloo_stream.testing import ProxyServer, settings_for
from kit import wait_until

MESSAGES = [{"role": "user", "content": "hello"}]
ORIGIN = "http://localhost:3000"
PROXY_KEY = "proxy-key-7f3a9c"


@pytest.fixture(scope="module")
def proxy(simulator_session: SimulatorServer) -> Iterator[ProxyServer]:
    settings = settings_for(
        simulator_session,
        proxy_rate_limit="",
        proxy_max_body_bytes=4096,
        proxy_max_tokens=100,
        proxy_allowed_models="gloo-openai-gpt-5-mini",
        proxy_allowed_families="openai,anthropic",
        proxy_cors_origin=f"{ORIGIN}, https://chat.example.org/",
    )
    with ProxyServer(settings) as server:
        yield server


def big(n: int) -> str:
    return "x" * n


JSON = {"content-type": "application/json"}
BAD_INPUTS: list[tuple[str, dict[str, str], bytes | None, Any]] = [
    ("no content type", {}, b'{"messages": []}', None),
    ("form content type", {"content-type": "application/x-www-form-urlencoded"}, b"a=b", None),
    ("text content type", {"content-type": "text/plain"}, b'{"messages":[]}', None),
    ("invalid json", JSON, b'{"messages": [', None),
    ("empty body", JSON, b"", None),
    ("not utf-8", JSON, b'{"messages": "\xff\xfe"}', None),
    ("json list", JSON, None, [MESSAGES]),
    ("json string", JSON, None, "hello"),
    ("json number", JSON, None, 42),
    ("json null", JSON, None, None),
    ("huge body", JSON, None, {"messages": [{"role": "user", "content": big(10_000)}]}),
    ("missing messages", JSON, None, {"model": "gloo-openai-gpt-5-mini"}),
    ("empty messages", JSON, None, {"messages": []}),
    ("messages a string", JSON, None, {"messages": "hello"}),
    ("messages an object", JSON, None, {"messages": {"role": "user"}}),
    ("message not an object", JSON, None, {"messages": ["hello"]}),
    ("bad role", JSON, None, {"messages": [{"role": "wizard", "content": "hi"}]}),
    ("missing role", JSON, None, {"messages": [{"content": "hi"}]}),
    ("missing content", JSON, None, {"messages": [{"role": "user"}]}),
    ("content a number", JSON, None, {"messages": [{"role": "user", "content": 5}]}),
    ("unknown field", JSON, None, {"messages": MESSAGES, "evil": True}),
    ("temperature a string", JSON, None, {"messages": MESSAGES, "temperature": "hot"}),
    ("temperature too high", JSON, None, {"messages": MESSAGES, "temperature": 9}),
    ("max_tokens negative", JSON, None, {"messages": MESSAGES, "max_tokens": -1}),
    ("max_tokens a string", JSON, None, {"messages": MESSAGES, "max_tokens": "5"}),
    ("max_tokens over the cap", JSON, None, {"messages": MESSAGES, "max_tokens": 101}),
    ("max_tokens a bool", JSON, None, {"messages": MESSAGES, "max_tokens": True}),
    ("auto_routing a string", JSON, None, {"messages": MESSAGES, "auto_routing": "yes"}),
    ("model a number", JSON, None, {"messages": MESSAGES, "model": 5}),
    ("model not allowed", JSON, None, {"messages": MESSAGES, "model": "gloo-google-gemini"}),
    ("family unknown", JSON, None, {"messages": MESSAGES, "model_family": "klingon"}),
    ("family not allowed", JSON, None, {"messages": MESSAGES, "model_family": "google"}),
    ("tradition unknown", JSON, None, {"messages": MESSAGES, "tradition": "pastafarian"}),
    ("tools an object", JSON, None, {"messages": MESSAGES, "tools": {}}),
    ("tool_choice unknown", JSON, None, {"messages": MESSAGES, "tool_choice": "sometimes"}),
    ("stream a string", JSON, None, {"messages": MESSAGES, "stream": "yes"}),
    ("deeply nested", JSON, b'{"messages": ' + b"[" * 3000 + b"]" * 3000 + b"}", None),
]


def send_raw(url: str, headers: dict[str, str], raw: bytes | None, data: Any) -> httpx.Response:
    if raw is None:
        return httpx.post(url, headers=headers, json=data, timeout=10)
    return httpx.post(url, headers=headers, content=raw, timeout=10)


@pytest.mark.parametrize("path", ["/api/stream", "/v1/chat/completions"])
@pytest.mark.parametrize(
    ("name", "headers", "raw", "data"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_is_a_4xx_and_never_reaches_upstream(
    proxy: ProxyServer,
    simulator: SimulatorServer,
    path: str,
    name: str,
    headers: dict[str, str],
    raw: bytes | None,
    data: Any,
) -> None:
    if path.startswith("/v1") and isinstance(data, dict) and "messages" in data:
        data = {"model": "auto", **data}
    response = send_raw(f"{proxy.url}{path}", headers, raw, data)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["message"]
    assert simulator.stats()["requests"] == 0
    if name == "unknown field":
        assert "evil" in error["message"]
        assert error["param"] == "evil"
    if name == "huge body":
        assert response.status_code == 413


def test_huge_body_without_content_length_is_refused(
    proxy: ProxyServer, simulator: SimulatorServer
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}]}'

    response = httpx.post(f"{proxy.url}/api/stream", headers=JSON, content=chunks(), timeout=10)
    assert response.status_code == 413
    assert simulator.stats()["requests"] == 0


def test_wrong_method_is_405(proxy: ProxyServer) -> None:
    assert httpx.get(f"{proxy.url}/api/stream").status_code == 405
    assert httpx.put(f"{proxy.url}/v1/chat/completions", json={}).status_code == 405


def test_v1_specific_refusals(proxy: ProxyServer, simulator: SimulatorServer) -> None:
    url = f"{proxy.url}/v1/chat/completions"
    for body in (
        {"model": "auto", "messages": MESSAGES, "n": 2},
        {"model": "auto", "messages": MESSAGES, "top_p": 0.5},
        {"model": "auto", "messages": MESSAGES, "max_tokens": 5, "max_completion_tokens": 5},
        {"model": "auto", "messages": MESSAGES, "stream_options": "yes"},
    ):
        response = httpx.post(url, json=body)
        assert response.status_code == 400, body
    assert simulator.stats()["requests"] == 0


# -- CORS ------------------------------------------------------------------------------------


def test_cors_allows_exactly_the_configured_origins(
    proxy: ProxyServer, simulator: SimulatorServer
) -> None:
    for origin in (ORIGIN, "https://chat.example.org"):
        response = httpx.post(
            f"{proxy.url}/api/stream", json={"messages": MESSAGES}, headers={"origin": origin}
        )
        assert response.headers["access-control-allow-origin"] == origin
        assert "Origin" in response.headers["vary"]
    for origin in ("http://evil.example", "http://localhost:3000.evil.example", "null"):
        response = httpx.get(f"{proxy.url}/health", headers={"origin": origin})
        assert "access-control-allow-origin" not in response.headers
        assert "Origin" in response.headers["vary"]


def test_cors_preflight(proxy: ProxyServer) -> None:
    request_headers = {
        "origin": ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    allowed = httpx.options(f"{proxy.url}/api/stream", headers=request_headers)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    refused = httpx.options(
        f"{proxy.url}/api/stream", headers={**request_headers, "origin": "http://evil.example"}
    )
    assert refused.status_code == 204
    assert not any(h.startswith("access-control-allow") for h in refused.headers)
    for response in (allowed, refused):
        assert "*" not in response.headers.get("access-control-allow-origin", "")


# -- client keys -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed(simulator_session: SimulatorServer) -> Iterator[ProxyServer]:
    settings = settings_for(
        simulator_session,
        proxy_api_keys=f"{PROXY_KEY}, second-key-0000",
        proxy_rate_limit="3/minute",
        proxy_max_streams_per_client=1,
    )
    with ProxyServer(settings) as server:
        yield server


def test_client_keys_are_required_when_configured(
    keyed: ProxyServer, simulator: SimulatorServer
) -> None:
    url = f"{keyed.url}/api/stream"
    body = {"messages": MESSAGES}
    missing = httpx.post(url, json=body)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_api_key"
    wrong = httpx.post(url, json=body, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert simulator.stats()["requests"] == 0
    assert httpx.get(f"{keyed.url}/health").status_code == 200
    client = openai.OpenAI(base_url=f"{keyed.url}/v1", api_key="second-key-0000", max_retries=0)
    completion = client.chat.completions.create(model="auto", messages=MESSAGES)  # type: ignore[arg-type]
    assert completion.choices[0].message.content


def test_rate_limit_is_per_client_with_retry_after(
    keyed: ProxyServer, simulator: SimulatorServer
) -> None:
    url = f"{keyed.url}/api/stream"
    body = {"messages": MESSAGES}
    headers = {"authorization": f"Bearer {PROXY_KEY}"}
    statuses = [httpx.post(url, json=body, headers=headers).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = httpx.post(url, json=body, headers=headers)
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert simulator.stats()["requests"] == 3


def test_concurrent_streams_per_client_and_global_cap() -> None:
    config = SimulatorConfig(tokens_per_second=20, first_token_delay=0, answer_tokens=40)
    with SimulatorServer(config) as sim:
        settings = settings_for(
            sim,
            proxy_api_keys="key-a,key-b,key-c",
            proxy_rate_limit="",
            proxy_max_streams_per_client=1,
            proxy_max_upstream_streams=2,
        )
        with ProxyServer(settings) as server:
            statuses = asyncio.run(_overlapping(server.url))
    assert statuses["a-first"] == 200
    assert statuses["a-second"] == (429, "too_many_streams", "1")
    assert statuses["b"] == 200
    assert statuses["c"] == (503, "capacity_exceeded", "1")


async def _overlapping(url: str) -> dict[str, Any]:
    body = {"messages": MESSAGES}
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:

        async def hold(name: str, key: str, started: asyncio.Event) -> None:
            headers = {"authorization": f"Bearer {key}"}
            async with http.stream("POST", "/api/stream", json=body, headers=headers) as response:
                results[name] = response.status_code
                started.set()
                await response.aread()

        async def refused(key: str) -> tuple[int, str, str]:
            response = await http.post(
                "/api/stream", json=body, headers={"authorization": f"Bearer {key}"}
            )
            return (
                response.status_code,
                response.json()["error"]["code"],
                response.headers["retry-after"],
            )

        a, b = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(hold("a-first", "key-a", a))
        await a.wait()
        results["a-second"] = await refused("key-a")
        second = asyncio.create_task(hold("b", "key-b", b))
        await b.wait()
        results["c"] = await refused("key-c")
        await asyncio.gather(first, second)
    return results


# -- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["oauth", "api_key"])
def test_secrets_never_appear_in_responses_or_logs(
    caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    """Both upstream auth modes, client keys, every kind of outcome: no secret anywhere."""
    caplog.set_level(logging.DEBUG)
    config = SimulatorConfig(
        tokens_per_second=0, first_token_delay=0, client_secret="sim-secret-41c7"
    )
    seen: list[str] = []
    with SimulatorServer(config) as sim:
        settings = settings_for(
            sim,
            gloo_api_key=None,
            gloo_client_id="sim-client",
            gloo_client_secret="sim-secret-41c7",
            proxy_api_keys=PROXY_KEY,
            proxy_rate_limit="",
            gloo_max_retries=0,
        )
        if mode == "api_key":
            settings = settings.model_copy(update={"gloo_api_key": SecretStr("sim-key")})
        with ProxyServer(settings) as server, httpx.Client(base_url=server.url, timeout=10) as http:
            auth = {"authorization": f"Bearer {PROXY_KEY}"}
            for fault in (
                None,
                {"kind": "status", "status": 401},
                {"kind": "status", "status": 500},
                {"kind": "disconnect", "after": 2},
                {"kind": "error", "after": 1},
            ):
                if fault:
                    sim.push_fault(fault)
                for path in ("/api/stream", "/v1/chat/completions"):
                    body = {"model": "auto"} if path.startswith("/v1") else {}
                    response = http.post(path, json={**body, "messages": MESSAGES}, headers=auth)
                    seen.append(_all_of(response))
            for headers, raw, data in [(h, r, d) for _, h, r, d in BAD_INPUTS[:12]]:
                seen.append(
                    _all_of(send_raw(f"{server.url}/api/stream", {**headers, **auth}, raw, data))
                )
            seen.append(_all_of(http.post("/api/stream", json={"messages": MESSAGES})))
            seen.append(
                _all_of(
                    http.post(
                        "/api/stream",
                        json={"messages": MESSAGES},
                        headers={"authorization": "Bearer sim-secret-41c7"},
                    )
                )
            )
            for path in ("/health", "/metrics", "/v1/models"):
                seen.append(_all_of(http.get(path)))
        tokens = list(sim.state._tokens)
        assert bool(tokens) == (mode == "oauth")
    logs = [record.getMessage() for record in caplog.records]
    logs += [str(getattr(record, "proxy", "")) for record in caplog.records]
    assert any('"event":"request"' in line for line in logs)
    secrets = ["sim-secret-41c7", "sim-key", PROXY_KEY, *tokens]
    for text in seen[:-4] + seen[-3:] + logs:
        for secret in secrets:
            assert secret not in text
    # The one request that sent the secret as its own key gets nothing of it back either.
    assert "sim-secret-41c7" not in seen[-4]


def _all_of(response: httpx.Response) -> str:
    return response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())


def test_log_line_has_no_content_by_default(
    proxy: ProxyServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gloo_stream.proxy")
    secret_prompt = "my-private-question-8812"
    response = httpx.post(
        f"{proxy.url}/api/stream", json={"messages": [{"role": "user", "content": secret_prompt}]}
    )
    request_id = response.headers["x-request-id"]

    def mine() -> list[logging.LogRecord]:
        return [r for r in caplog.records if request_id in r.getMessage()]

    # The line is written just after the last byte went out: give the server a moment.
    wait_until(mine, "the request's log line", timeout=2)
    assert len(mine()) == 1
    assert all(secret_prompt not in r.getMessage() for r in caplog.records)
    fields = mine()[0].proxy  # type: ignore[attr-defined]
    assert {"request_id", "status", "ttft_ms", "duration_ms", "tokens"} <= set(fields)
    assert fields["tokens"] > 0
    assert fields["status"] == 200
