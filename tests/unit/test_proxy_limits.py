"""policy/limits/: stream slots and request-rate stores in this process."""

from __future__ import annotations

import asyncio

import pytest

from gloo_stream.proxy.failures import (
    RequestRefused,
)
from gloo_stream.proxy.policy.limits import StreamSlots, rate_limit_store


def test_stream_slots_per_client_and_total() -> None:
    slots = StreamSlots(per_client=2, total=3)
    slots.acquire("a")
    slots.acquire("a")
    with pytest.raises(RequestRefused) as refused:
        slots.acquire("a")
    assert refused.value.failure.status == 429
    assert refused.value.limit == "too_many_streams"
    slots.acquire("b")
    with pytest.raises(RequestRefused) as full:
        slots.acquire("c")
    assert full.value.failure.status == 503
    slots.release("a")
    slots.acquire("c")
    assert slots.open == 3
    unlimited = StreamSlots(per_client=0, total=0)
    for _ in range(100):
        unlimited.acquire("x")
    assert unlimited.open == 100


def test_rate_limit_store() -> None:
    async def run() -> list[bool]:
        store = rate_limit_store("2/minute")
        decisions = [await store.hit("a") for _ in range(3)] + [await store.hit("b")]
        assert decisions[2].retry_after >= 1
        return [d.allowed for d in decisions]

    assert asyncio.run(run()) == [True, True, False, True]

    async def unlimited() -> bool:
        return all([(await rate_limit_store("").hit("a")).allowed for _ in range(1000)])

    assert asyncio.run(unlimited())
