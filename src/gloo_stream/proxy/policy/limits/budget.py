"""Token budgets (``PROXY_TOKEN_BUDGET``, e.g. ``200000/day``): per client key, else address.

Before a request goes upstream its estimated cost (the prompt's estimate plus its
``max_tokens``, else ``PROXY_BUDGET_RESERVE_TOKENS``) is reserved, atomically: a request
that does not fit is refused with 429 and ``Retry-After`` until the window ends, so
concurrent requests cannot all spend the same tokens. When the answer ends the reservation
is settled to its real usage (the upstream's count, or the estimate for an answer cut
short); a request the upstream refused gives it back. Concurrent answers may overrun by
at most their completions beyond what they reserved. Windows are aligned to the Unix
epoch (a ``day`` is a UTC day), so every replica agrees on where one ends.

Counts live in this process (``memory.MemoryBudgetStore``), or in Redis
(``redis_limits.RedisBudgetStore``) when ``PROXY_REDIS_URL`` is set, shared by every
worker and replica: one key per client and window (``INCRBY`` then ``EXPIRE``, in one Lua
script that reads Redis' clock, so replicas' clocks may disagree). Redis unavailable:
``PROXY_REDIS_FAIL=open`` counts in this process meanwhile, ``closed`` refuses with 503.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gloo_stream.proxy import failures
from gloo_stream.proxy.failures import ProxyFailure, RequestRefused
from gloo_stream.proxy.policy.limits.interfaces import BudgetDecision, BudgetStore
from gloo_stream.usage import TokenBudgetRule

__all__ = ["Reservation", "TokenBudgets"]


@dataclass(slots=True)
class Reservation:
    """Tokens taken from a client's budget for one request until its usage is known."""

    client: str
    tokens: int


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

    async def reserve(self, client: str, tokens: int) -> tuple[Reservation, tuple[bytes, bytes]]:
        """Take ``tokens`` from ``client``'s budget before its request goes upstream, and the
        ``X-Token-Budget-Remaining`` header; raises ``RequestRefused`` (429) when they do not
        fit in what is left."""
        tokens = max(0, tokens)
        added, used, left = await self._store.reserve(client, self.rule, tokens)
        decision = self._decision(client, used, left)
        remaining = (b"x-token-budget-remaining", str(decision.remaining).encode())
        if not added:
            refused = BudgetDecision(False, decision.remaining, left)
            raise RequestRefused(self.refusal(refused), headers=(remaining,), limit="token_budget")
        return Reservation(client, tokens), remaining

    async def settle(self, reservation: Reservation, tokens: int) -> BudgetDecision:
        """Turn ``reservation`` into the ``tokens`` really used (more or fewer)."""
        return await self.debit_signed(reservation.client, tokens - reservation.tokens)

    async def debit_signed(self, client: str, tokens: int) -> BudgetDecision:
        """Add ``tokens`` (a refund when negative) to ``client``'s window."""
        used, left = await self._store.count(client, self.rule, tokens)
        return self._decision(client, used, left)

    async def check(self, client: str) -> tuple[bytes, bytes]:
        """Admission: the ``X-Token-Budget-Remaining`` header for an admitted ``client``;
        raises ``RequestRefused`` (429, with that header) when its budget is spent."""
        decision = await self.admit(client)
        remaining = (b"x-token-budget-remaining", str(decision.remaining).encode())
        if not decision.allowed:
            raise RequestRefused(self.refusal(decision), headers=(remaining,), limit="token_budget")
        return remaining

    def refusal(self, decision: BudgetDecision) -> ProxyFailure:
        """The 429 to answer a refused ``decision`` with."""
        return failures.token_budget_exhausted(str(self.rule), max(1.0, decision.resets_in))

    def _decision(self, client: str, used: int, left: float) -> BudgetDecision:
        remaining = max(0, self.rule.tokens - used)
        if self._on_remaining is not None:
            self._on_remaining(client, remaining)
        return BudgetDecision(remaining > 0, remaining, left)
