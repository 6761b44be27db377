"""One token budget, two proxy replicas, a real redis-server: spent on one, refused on both.

Each replica is a whole proxy (its own app, Redis connection pool and in-process state) on
its own loopback port, as two hosts behind a load balancer would be.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from gloo_stream.simulator import SimulatorServer
from gloo_stream.testing import ProxyServer, settings_for
from kit import needs_redis, running_redis, wait_until

pytestmark = needs_redis
MESSAGES = [{"role": "user", "content": "Tell me about streams."}]
COST = 6 + 40  # the prompt's estimate (22 characters), and max_tokens
KEYS = ("key-a", "key-b")


@pytest.fixture
def replicas(simulator: SimulatorServer, tmp_path: Path) -> Iterator[list[ProxyServer]]:
    with running_redis(tmp_path) as redis_url:
        settings = settings_for(
            simulator,
            proxy_rate_limit="",
            proxy_api_keys=",".join(KEYS),
            proxy_redis_url=SecretStr(redis_url),
            proxy_redis_fail="closed",
            proxy_token_budget="100/day",
        )
        with ProxyServer(settings) as one, ProxyServer(settings) as two:
            yield [one, two]


def ask(proxy: ProxyServer, key: str, **extra: Any) -> httpx.Response:
    """One request reserving ``COST`` tokens."""
    body = {"messages": MESSAGES, "max_tokens": 40, **extra}
    headers = {"authorization": f"Bearer {key}"}
    return httpx.post(f"{proxy.url}/api/stream", json=body, headers=headers, timeout=10)


def remaining(proxy: ProxyServer, key: str) -> int:
    """The budget one replica says ``key`` has left (a refused answer says 0 too)."""
    return int(ask_headers(proxy, key)["x-token-budget-remaining"])


def ask_headers(proxy: ProxyServer, key: str) -> httpx.Headers:
    # An invalid body is refused after the budget check: it reads the budget, spends nothing.
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    response = httpx.post(f"{proxy.url}/api/stream", content=b"[]", headers=headers, timeout=10)
    assert response.status_code in (400, 429), response.text
    return response.headers


def test_a_budget_spent_through_one_replica_is_spent_on_both(
    replicas: list[ProxyServer], simulator: SimulatorServer
) -> None:
    one, two = replicas
    first = ask(one, "key-a", stream_options={"include_usage": True})
    assert first.status_code == 200
    # Left once the request's cost was reserved: its prompt's estimate plus max_tokens.
    assert first.headers["x-token-budget-remaining"] == str(100 - COST)
    # Debited once the answer ended; the other replica sees it through Redis.
    wait_until(lambda: remaining(two, "key-a") < 100, "the debit to reach the other replica")
    left = remaining(two, "key-a")
    assert left == remaining(one, "key-a")
    assert remaining(two, "key-b") == 100  # per client key
    while left >= COST:  # spend the rest, alternating replicas
        assert ask(two if left % 2 else one, "key-a").status_code == 200
        wait_until(lambda prev=left: remaining(one, "key-a") < prev, "the next debit")
        left = remaining(one, "key-a")
    before = simulator.stats()["requests"]
    for replica in replicas:
        refused = ask(replica, "key-a")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "token_budget_exhausted"
        assert 0 < int(refused.headers["retry-after"]) <= 86_400
    assert simulator.stats()["requests"] == before, "a refused request went upstream"
    assert ask(two, "key-b").status_code == 200
