"""This process's limits: requests per client per window, concurrent streams, a global cap.

The request-rate counters sit behind ``RateLimitStore`` so another backend (Redis, for
several workers or hosts: ``limits.shared``) can replace the in-memory one without touching
the app. ``StreamSlots`` counts streams in this process; a ``SharedQuota`` (Redis leases)
can be added for the per-client cap across replicas, while the global upstream cap stays
per process (it protects this process's own resources).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from gloo_stream.proxy.failures import CAPACITY_EXCEEDED, ProxyFailure, too_many_streams

__all__ = [
    "FailureCounter",
    "LimitsRateLimitStore",
    "RateDecision",
    "RateLimitStore",
    "SharedQuota",
    "StreamSlots",
    "rate_limit_store",
]


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether one more request is allowed now, and if not, how long until it would be."""

    allowed: bool
    retry_after: float = 0.0


class RateLimitStore(Protocol):
    """Counts requests per client; ``hit`` records one and says whether it is allowed."""

    async def hit(self, client: str) -> RateDecision:
        """Record one request by ``client``."""
        ...


class FailureCounter(Protocol):
    """Counts failures per caller; ``peek`` says whether the caller may try at all."""

    async def peek(self, client: str) -> RateDecision:
        """Whether ``client`` is under its limit now, without counting anything."""
        ...

    async def hit(self, client: str) -> RateDecision:
        """Count one failure by ``client``; refused when it was one too many."""
        ...


class LimitsRateLimitStore:
    """A moving-window limit over any ``limits`` async storage (memory by default)."""

    def __init__(self, rules: list[RateLimitItem], storage: Storage | None = None) -> None:
        self._rules = rules
        self._limiter = MovingWindowRateLimiter(storage or MemoryStorage())

    async def hit(self, client: str) -> RateDecision:
        """Record one request; refused when any rule's window is full."""
        for rule in self._rules:
            if not await self._limiter.hit(rule, client):
                return await self._refused(rule, client)
        return RateDecision(True)

    async def peek(self, client: str) -> RateDecision:
        """Whether one more would be allowed now; records nothing."""
        for rule in self._rules:
            if not await self._limiter.test(rule, client):
                return await self._refused(rule, client)
        return RateDecision(True)

    async def _refused(self, rule: RateLimitItem, client: str) -> RateDecision:
        stats = await self._limiter.get_window_stats(rule, client)
        return RateDecision(False, max(1.0, stats.reset_time - time.time()))


class _Unlimited:
    async def hit(self, client: str) -> RateDecision:
        return RateDecision(True)

    async def peek(self, client: str) -> RateDecision:
        return RateDecision(True)


def rate_limit_store(
    rule: str, storage_uri: str = "memory://"
) -> LimitsRateLimitStore | _Unlimited:
    """The store for a ``limits`` rule such as ``"60/minute"`` ("" means no limit).

    It is both a ``RateLimitStore`` and a ``FailureCounter``.
    """
    if not rule:
        return _Unlimited()
    uri = storage_uri if storage_uri.startswith("async+") else f"async+{storage_uri}"
    storage = storage_from_string(uri)
    if not isinstance(storage, Storage):
        raise ValueError(f"PROXY_RATE_LIMIT_STORAGE {storage_uri!r} has no asyncio backend")
    return LimitsRateLimitStore(parse_many(rule), storage)


class SharedQuota(Protocol):
    """A per-client stream cap kept outside this process (across workers and replicas)."""

    async def acquire(self, client: str) -> ProxyFailure | None:
        """Take one of ``client``'s slots, or say why not."""
        ...

    def release(self, client: str) -> None:
        """Give back one of ``client``'s slots."""
        ...


class StreamSlots:
    """Concurrent answers in flight: per client, and upstream requests in all.

    ``acquire`` either takes a slot for the caller or raises nothing and returns the
    failure to answer with (429 for the caller's own cap, 503 for the global one).
    With a ``shared`` quota, ``admit`` also takes a slot there and ``release`` gives it back.
    """

    def __init__(self, per_client: int, total: int, shared: SharedQuota | None = None) -> None:
        self._per_client = per_client
        self._total = total
        self._by_client: dict[str, int] = {}
        self.shared = shared
        self.open = 0

    async def admit(self, client: str) -> ProxyFailure | None:
        """``acquire`` here, then in the shared quota if there is one."""
        refusal = self.acquire(client)
        if refusal is not None or self.shared is None:
            return refusal
        refusal = await self.shared.acquire(client)
        if refusal is not None:
            self._give_back(client)
        return refusal

    def acquire(self, client: str) -> ProxyFailure | None:
        """Take a slot for ``client`` in this process, or say why not."""
        held = self._by_client.get(client, 0)
        if self._per_client and held >= self._per_client:
            return too_many_streams(self._per_client)
        if self._total and self.open >= self._total:
            return CAPACITY_EXCEEDED
        self._by_client[client] = held + 1
        self.open += 1
        return None

    def release(self, client: str) -> None:
        """Give back the slot taken by ``client`` (and its shared one)."""
        self._give_back(client)
        if self.shared is not None:
            self.shared.release(client)

    def _give_back(self, client: str) -> None:
        held = self._by_client.get(client, 0) - 1
        if held > 0:
            self._by_client[client] = held
        else:
            self._by_client.pop(client, None)
        self.open -= 1
