"""The proxy's fallback upstream: a faulting simulator as the primary, another as the fallback.

Which upstream served shows in the answer, the request's log line and the metrics; the
primary's breaker in ``gloo_proxy_primary_breaker_state``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from gloo_stream.testing import ProxyServer, settings_for
from kit import sse_text, wait_until

MESSAGES = [{"role": "user", "content": "What happens when the primary fails?"}]
PRIMARY_TEXT = "".join(expected_answer(MESSAGES))
FALLBACK_TEXT = "".join(expected_answer(MESSAGES, seed=3))


@pytest.fixture(scope="module")
def fallback_sim() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(
        tokens_per_second=0,
        first_token_delay=0,
        seed=3,
        api_keys=("fb-key",),
        require_model=True,
    )
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture
def fallback(fallback_sim: SimulatorServer) -> SimulatorServer:
    fallback_sim.reset()
    return fallback_sim


@pytest.fixture
def proxy(simulator: SimulatorServer, fallback: SimulatorServer) -> Iterator[ProxyServer]:
    settings = settings_for(
        simulator,
        gloo_max_retries=1,
        gloo_fallback_api_url=fallback.api_url,
        gloo_fallback_api_key="fb-key",
        gloo_fallback_model="small-model",
        gloo_breaker_failures=3,
        gloo_breaker_seconds=60,
        proxy_metrics_allow_loopback=True,
    )
    with ProxyServer(settings) as server:
        yield server


def ask(proxy: ProxyServer, route: str = "/api/stream", **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"messages": MESSAGES, **extra}
    return httpx.post(f"{proxy.url}{route}", json=body, timeout=15)


def metric(proxy: ProxyServer, line_start: str) -> float:
    for line in httpx.get(f"{proxy.url}/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.split()[-1])
    return 0.0


def test_a_failing_primary_is_answered_by_the_fallback_and_the_log_says_so(
    proxy: ProxyServer,
    simulator: SimulatorServer,
    fallback: SimulatorServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gloo_stream.proxy")
    simulator.push_fault({"kind": "status", "status": 503, "times": 2})
    response = ask(proxy, model_family="anthropic", tradition="catholic")
    assert response.status_code == 200
    assert sse_text(response.content) == FALLBACK_TEXT
    sent = fallback.stats()["last_request"]
    assert sent["model"] == "small-model"
    assert not {"model_family", "tradition", "auto_routing"} & set(sent)
    request_id = response.headers["x-request-id"]

    def line() -> list[logging.LogRecord]:
        return [r for r in caplog.records if request_id in r.getMessage()]

    wait_until(line, "the request's log line", timeout=2)
    fields = line()[0].proxy  # type: ignore[attr-defined]
    assert (fields["upstream"], fields["attempts"]) == ("fallback", 3)
    assert "fb-key" not in caplog.text
    assert metric(proxy, 'gloo_proxy_upstream_answers_total{upstream="fallback"}') == 1


def test_the_openai_route_falls_back_too(proxy: ProxyServer, simulator: SimulatorServer) -> None:
    simulator.push_fault({"kind": "status", "status": 500, "times": 2})
    response = ask(proxy, "/v1/chat/completions", model="auto", stream=False)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == FALLBACK_TEXT


def test_a_4xx_from_the_primary_reaches_the_caller(
    proxy: ProxyServer, simulator: SimulatorServer, fallback: SimulatorServer
) -> None:
    simulator.push_fault({"kind": "status", "status": 400, "body": {"detail": "bad tool"}})
    response = ask(proxy)
    assert response.status_code == 400
    assert fallback.stats()["requests"] == 0


def test_the_breaker_opens_and_the_metrics_show_it(
    proxy: ProxyServer, simulator: SimulatorServer, fallback: SimulatorServer
) -> None:
    assert metric(proxy, "gloo_proxy_primary_breaker_state") == 0
    simulator.push_fault({"kind": "status", "status": 502, "times": 4})
    for _ in range(2):  # two failures each: the third in a row opens the breaker
        assert sse_text(ask(proxy).content) == FALLBACK_TEXT
    assert metric(proxy, "gloo_proxy_primary_breaker_state") == 2
    asked = simulator.stats()["requests"]
    started = time.monotonic()
    skipped = ask(proxy)
    print(f"\nbreaker open: fallback answer in {(time.monotonic() - started) * 1000:.0f} ms")
    assert sse_text(skipped.content) == FALLBACK_TEXT
    assert simulator.stats()["requests"] == asked, "the primary is skipped while open"
    assert metric(proxy, 'gloo_proxy_upstream_answers_total{upstream="primary"}') == 0


def test_without_a_fallback_the_primarys_failure_is_told_as_before(
    simulator: SimulatorServer,
) -> None:
    with ProxyServer(settings_for(simulator, gloo_max_retries=0)) as server:
        simulator.push_fault({"kind": "status", "status": 503})
        response = ask(server)
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_error"
