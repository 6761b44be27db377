"""``/metrics`` rendered in slices on the event loop, through a real proxy and simulator:
still behind its key, still Prometheus' text format, the same series ``generate_latest`` has."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from gloo_stream.simulator import SimulatorServer
from gloo_stream.testing import ProxyServer, settings_for

METRICS_KEY = "operator-metrics-key"
MODELS = [f"scrape-model-{i:02d}" for i in range(24)]  # more children than one slice holds
Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def proxy(simulator: SimulatorServer) -> Iterator[ProxyServer]:
    settings = settings_for(
        simulator,
        proxy_rate_limit="",
        proxy_metrics_key=METRICS_KEY,
        proxy_allowed_models=",".join(MODELS),
    )
    with ProxyServer(settings) as server:
        yield server


def series(text: str) -> Series:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape_at_once(url: str, times: int) -> list[httpx.Response]:
    headers = {"authorization": f"Bearer {METRICS_KEY}"}
    async with httpx.AsyncClient(timeout=20) as http:
        return await asyncio.gather(*(http.get(url, headers=headers) for _ in range(times)))


def test_metrics_serve_every_series_generate_latest_has(proxy: ProxyServer) -> None:
    with httpx.Client(timeout=20) as http:
        for model in MODELS:
            body = {"messages": [{"role": "user", "content": "hi"}], "model": model}
            assert http.post(f"{proxy.url}/api/stream", json=body).status_code == 200
        assert http.get(f"{proxy.url}/metrics").status_code == 401  # the key still guards it
    url = f"{proxy.url}/metrics"
    asyncio.run(scrape_at_once(url, 1))  # the /metrics route's own counter exists from now on
    responses = asyncio.run(scrape_at_once(url, 4))
    assert proxy.app is not None
    expected = series(proxy.app.proxy.metrics.render().decode())
    for response in responses:
        assert response.status_code == 200
        assert response.headers["content-type"] == CONTENT_TYPE_LATEST
        served = series(response.text)
        assert served.keys() == expected.keys()
        # Only the scrapes' own request counter moved since: every other value is the same.
        moved = {k for k in expected if served[k] != expected[k]}
        assert {name for name, _ in moved} <= {"gloo_proxy_requests_total"}
    models = {dict(labels).get("gen_ai_request_model") for _, labels in expected}
    assert set(MODELS) <= models
    durations = [
        k for k in expected if k[0] == "gen_ai_client_operation_duration_count" and expected[k]
    ]
    assert len(durations) == len(MODELS)
