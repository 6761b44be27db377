"""What every limit is, whoever keeps the count: the interfaces and the values they answer with.

The in-memory implementations (``memory``) and the Redis ones (``redis_limits``, over
``redis_link``) sit beside this module; ``build`` picks between them from the settings,
the way ``resume/buffer.py`` holds ``EventBuffer`` for ``resume/memory.py`` and
``resume/redis_streams.py``, with ``resume/build.py`` choosing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gloo_stream.proxy import failures
from gloo_stream.proxy.failures import RequestRefused
from gloo_stream.usage import TokenBudgetRule

__all__ = [
    "BudgetDecision",
    "BudgetStore",
    "FailureCounter",
    "RateDecision",
    "RateLimitStore",
    "SharedQuota",
    "admit_request",
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


async def admit_request(rate: RateLimitStore, client: str) -> None:
    """Count one request by ``client``; raises ``RequestRefused`` (429) past the rate."""
    decision = await rate.hit(client)
    if not decision.allowed:
        raise RequestRefused(failures.rate_limited(decision.retry_after), limit="rate")


class FailureCounter(Protocol):
    """Counts failures per caller, and says whether the caller may try at all."""

    async def attempt(self, client: str, failed: bool) -> RateDecision:
        """Whether ``client`` is under its limit now and, only then, one failure counted when
        ``failed``: check and record in one atomic step, so a burst of simultaneous attempts
        cannot all pass the check before their failures land (refused: nothing counted)."""
        ...


class SharedQuota(Protocol):
    """A per-client stream cap kept outside this process (across workers and replicas)."""

    async def acquire(self, client: str) -> None:
        """Take one of ``client``'s slots; raises ``RequestRefused`` when it cannot."""
        ...

    def release(self, client: str) -> None:
        """Give back one of ``client``'s slots."""
        ...


@dataclass(frozen=True, slots=True)
class BudgetDecision:
    """Whether a client may start an answer, what it has left, and when its window ends."""

    allowed: bool
    remaining: int
    resets_in: float


class BudgetStore(Protocol):
    """Tokens used per client in the current window of a rule."""

    async def count(self, client: str, rule: TokenBudgetRule, add: int) -> tuple[int, float]:
        """Add ``add`` tokens (0: none; less: a refund) to ``client``'s window; its total and
        seconds left."""
        ...

    async def reserve(
        self, client: str, rule: TokenBudgetRule, tokens: int
    ) -> tuple[bool, int, float]:
        """Add ``tokens`` only if the window's total stays within the rule, atomically:
        whether they were added, the total, seconds left."""
        ...
