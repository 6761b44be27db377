"""Token budgets in a real redis-server: one count for every replica, and Redis down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from gloo_stream.proxy.failures import RequestRefused
from gloo_stream.proxy.policy.limits.budget import TokenBudgets
from gloo_stream.proxy.policy.limits.redis_limits import RedisBudgetStore
from gloo_stream.proxy.policy.limits.redis_link import RedisLink
from gloo_stream.usage import TokenBudgetRule
from kit import free_port, needs_redis, running_redis

pytestmark = needs_redis
RULE = TokenBudgetRule(1000, 86_400, "day")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


def link(url: str, prefix: str, *, fail_open: bool = True) -> RedisLink:
    registry = CollectorRegistry()
    return RedisLink(url, timeout=0.5, fail_open=fail_open, registry=registry, prefix=prefix)


async def test_two_replicas_spend_one_budget(redis_url: str) -> None:
    a, b = link(redis_url, "t1:"), link(redis_url, "t1:")
    try:
        replica_a = TokenBudgets(RULE, RedisBudgetStore(a))
        replica_b = TokenBudgets(RULE, RedisBudgetStore(b))
        assert (await replica_a.admit("key:k")).remaining == 1000
        await replica_a.debit("key:k", 600)
        assert (await replica_b.admit("key:k")).remaining == 400
        spent = await replica_b.debit("key:k", 500)
        assert (spent.allowed, spent.remaining) == (False, 0)
        refused = await replica_a.admit("key:k")
        assert not refused.allowed
        assert 0 < refused.resets_in <= 86_400
        assert (await replica_a.admit("key:other")).remaining == 1000
        # One key per client and window, and it expires after its window.
        keys = await a.client.keys("t1:tokens:key:k:*")
        assert len(keys) == 1
        assert 86_400 < await a.client.ttl(keys[0]) <= 86_400 + 60
    finally:
        await a.aclose()
        await b.aclose()


async def test_redis_down_fails_open_to_local_counts_or_closed_with_503() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    open_link, closed_link = link(dead, "t2:"), link(dead, "t2:", fail_open=False)
    try:
        fail_open = TokenBudgets(RULE, RedisBudgetStore(open_link))
        await fail_open.debit("key:k", 999)
        assert (await fail_open.admit("key:k")).remaining == 1
        fail_closed = TokenBudgets(RULE, RedisBudgetStore(closed_link))
        with pytest.raises(RequestRefused) as refused:
            await fail_closed.admit("key:k")
        assert refused.value.failure.status == 503
        # A debit is never refused: the answer it pays for was already sent.
        assert (await fail_closed.debit("key:k", 10)).remaining == 990
    finally:
        await open_link.aclose()
        await closed_link.aclose()
