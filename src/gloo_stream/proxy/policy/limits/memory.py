"""This process's limits: requests per client per window, concurrent streams, a global cap,
token budgets.

The request-rate counters sit behind ``RateLimitStore`` (``interfaces``) so another backend
(Redis, for several workers or hosts: ``redis_limits``) can replace the in-memory one
without touching the app. ``StreamSlots`` counts streams in this process; a
``SharedQuota`` (Redis leases) can be added for the per-client cap across replicas, while
the global upstream cap stays per process (it protects this process's own resources).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from gloo_stream.proxy.failures import CAPACITY_EXCEEDED, RequestRefused, too_many_streams
from gloo_stream.proxy.policy.limits.interfaces import RateDecision, SharedQuota
from gloo_stream.usage import TokenBudgetRule

__all__ = ["LimitsRateLimitStore", "MemoryBudgetStore", "StreamSlots", "Unlimited"]


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

    async def attempt(self, client: str, failed: bool) -> RateDecision:
        """A failure is a ``hit`` (the library tests and records in one step); a success
        only a ``peek``."""
        return await (self.hit(client) if failed else self.peek(client))

    async def _refused(self, rule: RateLimitItem, client: str) -> RateDecision:
        stats = await self._limiter.get_window_stats(rule, client)
        return RateDecision(False, max(1.0, stats.reset_time - time.time()))


class Unlimited:
    """No limit at all (an empty rule): every request and every failure is allowed."""

    async def hit(self, client: str) -> RateDecision:
        """Allowed, always."""
        return RateDecision(True)

    async def peek(self, client: str) -> RateDecision:
        """Allowed, always."""
        return RateDecision(True)

    async def attempt(self, client: str, failed: bool) -> RateDecision:
        """Allowed, always; nothing counted."""
        return RateDecision(True)


class StreamSlots:
    """Concurrent answers in flight: per client, and upstream requests in all.

    ``acquire`` either takes a slot for the caller or raises ``RequestRefused`` (429 for
    the caller's own cap, 503 for the global one; ``limit`` is the failure's code). With a
    ``shared`` quota, ``admit`` also takes a slot there and ``release`` gives it back.
    """

    def __init__(self, per_client: int, total: int, shared: SharedQuota | None = None) -> None:
        self._per_client = per_client
        self._total = total
        self._by_client: dict[str, int] = {}
        self.shared = shared
        self.open = 0

    async def admit(self, client: str) -> None:
        """``acquire`` here, then in the shared quota if there is one."""
        self.acquire(client)
        if self.shared is None:
            return
        try:
            await self.shared.acquire(client)
        except RequestRefused as exc:
            self._give_back(client)
            code = exc.failure.code
            raise RequestRefused(exc.failure, limit=code) from None

    def acquire(self, client: str) -> None:
        """Take a slot for ``client`` in this process; raises ``RequestRefused`` if full."""
        held = self._by_client.get(client, 0)
        if self._per_client and held >= self._per_client:
            refusal = too_many_streams(self._per_client)
            raise RequestRefused(refusal, limit=refusal.code)
        if self._total and self.open >= self._total:
            raise RequestRefused(CAPACITY_EXCEEDED, limit=CAPACITY_EXCEEDED.code)
        self._by_client[client] = held + 1
        self.open += 1

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


class MemoryBudgetStore:
    """Counts in this process (one worker); ``clock`` is Unix seconds, for tests."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._used: dict[str, tuple[int, int]] = {}  # client -> (window, tokens)

    async def count(self, client: str, rule: TokenBudgetRule, add: int) -> tuple[int, float]:
        """Add ``add`` tokens to ``client``'s current window; its total and seconds left."""
        window, left = rule.window(self._clock())
        seen, used = self._used.get(client, (window, 0))
        if seen != window:
            used = 0
            self._prune(window)
        used = max(0, used + add)
        if add or client in self._used:
            self._used[client] = (window, used)
        return used, left

    async def reserve(
        self, client: str, rule: TokenBudgetRule, tokens: int
    ) -> tuple[bool, int, float]:
        """Add ``tokens`` if they fit in ``client``'s window (no await between the check and
        the add: one event loop, so concurrent requests cannot both take the last tokens)."""
        window, left = rule.window(self._clock())
        seen, used = self._used.get(client, (window, 0))
        if seen != window:
            used = 0
            self._prune(window)
        if used + tokens > rule.tokens:
            return False, used, left
        self._used[client] = (window, used + tokens)
        return True, used + tokens, left

    def _prune(self, window: int) -> None:
        # A new window began for someone: forget every client's finished windows.
        for client in [c for c, (w, _) in self._used.items() if w != window]:
            del self._used[client]
