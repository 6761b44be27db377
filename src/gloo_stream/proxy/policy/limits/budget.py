"""Token budgets (``PROXY_TOKEN_BUDGET``, e.g. ``200000/day``): per client key, else address.

A budget is checked before anything goes upstream and debited with each answer's usage
once it is known (the upstream's count, or the estimate for an answer cut short). An answer
may overrun what was left; the next request is then refused with 429 and ``Retry-After``
until the window ends. Windows are aligned to the Unix epoch (a ``day`` is a UTC day), so
every replica agrees on where one ends.

Counts live in this process, or in Redis when ``PROXY_REDIS_URL`` is set, shared by every
worker and replica: one key per client and window (``INCRBY`` then ``EXPIRE``, in one Lua
script that reads Redis' clock, so replicas' clocks may disagree). Redis unavailable:
``PROXY_REDIS_FAIL=open`` counts in this process meanwhile, ``closed`` refuses with 503.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from gloo_stream.proxy import failures
from gloo_stream.proxy.failures import LIMITS_UNAVAILABLE, ProxyFailure, RequestRefused
from gloo_stream.proxy.observe.usage_metrics import UsageMetrics
from gloo_stream.proxy.policy.limits.redis_link import RedisLink, RedisUnavailable
from gloo_stream.usage import TokenBudgetRule

if TYPE_CHECKING:
    from gloo_stream.proxy.policy.limits.shared import SharedLimits
    from gloo_stream.proxy.settings import ProxySettings

__all__ = [
    "BudgetDecision",
    "BudgetStore",
    "MemoryBudgetStore",
    "RedisBudgetStore",
    "TokenBudgets",
    "token_budgets",
]

# KEYS[1] the client's key prefix; ARGV: period seconds, tokens to add (0: only read).
# Returns {tokens used in the window, milliseconds until the window ends}.
_COUNT = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period_ms = tonumber(ARGV[1]) * 1000
local window = math.floor(now_ms / period_ms)
local key = KEYS[1] .. ':' .. window
local used
if tonumber(ARGV[2]) > 0 then
  used = redis.call('INCRBY', key, ARGV[2])
  redis.call('PEXPIRE', key, period_ms + 60000)
else
  used = tonumber(redis.call('GET', key) or '0')
end
return {used, (window + 1) * period_ms - now_ms}
"""


@dataclass(frozen=True, slots=True)
class BudgetDecision:
    """Whether a client may start an answer, what it has left, and when its window ends."""

    allowed: bool
    remaining: int
    resets_in: float


class BudgetStore(Protocol):
    """Tokens used per client in the current window of a rule."""

    async def count(self, client: str, rule: TokenBudgetRule, add: int) -> tuple[int, float]:
        """Add ``add`` tokens (0: none) to ``client``'s window; its total and seconds left."""
        ...


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
        used += add
        if add or client in self._used:
            self._used[client] = (window, used)
        return used, left

    def _prune(self, window: int) -> None:
        # A new window began for someone: forget every client's finished windows.
        for client in [c for c, (w, _) in self._used.items() if w != window]:
            del self._used[client]


class RedisBudgetStore:
    """Counts in Redis for every worker and replica; by the fail policy when it is down."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._script = link.client.register_script(_COUNT)
        self._local = MemoryBudgetStore()

    def key(self, client: str) -> str:
        """The Redis key prefix of ``client``'s windows."""
        return f"{self._link.prefix}tokens:{client}"

    async def count(self, client: str, rule: TokenBudgetRule, add: int) -> tuple[int, float]:
        """Add ``add`` tokens in Redis; while it is down, here (open) or refuse (closed)."""
        args = [rule.period_seconds, add]
        try:
            used, left_ms = await self._link.call(
                "tokens", lambda: self._script(keys=[self.key(client)], args=args)
            )
        except RedisUnavailable:
            if self._link.fail_open or add:  # a debit is never refused: the answer is sent
                return await self._local.count(client, rule, add)
            raise RequestRefused(LIMITS_UNAVAILABLE) from None
        return int(used), int(left_ms) / 1000


class TokenBudgets:
    """One rule for every client, counted in ``store``; ``on_remaining`` sees each new level."""

    def __init__(
        self,
        rule: TokenBudgetRule,
        store: BudgetStore,
        on_remaining: Callable[[str, int], None] | None = None,
    ) -> None:
        self.rule = rule
        self._store = store
        self._on_remaining = on_remaining

    async def admit(self, client: str) -> BudgetDecision:
        """Whether ``client`` has tokens left to start an answer with (counts nothing)."""
        used, left = await self._store.count(client, self.rule, 0)
        return self._decision(client, used, left)

    async def debit(self, client: str, tokens: int) -> BudgetDecision:
        """Take an answer's ``tokens`` from ``client``'s budget."""
        used, left = await self._store.count(client, self.rule, max(0, tokens))
        return self._decision(client, used, left)

    async def check(self, client: str) -> tuple[ProxyFailure | None, tuple[bytes, bytes]]:
        """Admission: the refusal (None: admitted) and the ``X-Token-Budget-Remaining`` header."""
        decision = await self.admit(client)
        remaining = (b"x-token-budget-remaining", str(decision.remaining).encode())
        return (None if decision.allowed else self.refusal(decision)), remaining

    def refusal(self, decision: BudgetDecision) -> ProxyFailure:
        """The 429 to answer a refused ``decision`` with."""
        return failures.token_budget_exhausted(str(self.rule), max(1.0, decision.resets_in))

    def _decision(self, client: str, used: int, left: float) -> BudgetDecision:
        remaining = max(0, self.rule.tokens - used)
        if self._on_remaining is not None:
            self._on_remaining(client, remaining)
        return BudgetDecision(remaining > 0, remaining, left)


def token_budgets(
    settings: ProxySettings, metrics: UsageMetrics, shared: SharedLimits | None
) -> TokenBudgets | None:
    """The budgets ``PROXY_TOKEN_BUDGET`` asks for: in Redis when limits are shared there."""
    rule = settings.token_budget
    if rule is None:
        return None
    store: BudgetStore = (
        RedisBudgetStore(shared.link) if shared is not None else MemoryBudgetStore()
    )
    return TokenBudgets(rule, store, on_remaining=metrics.set_remaining)
