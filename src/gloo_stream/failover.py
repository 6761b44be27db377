"""Which upstream a call goes to: the primary with its retries, then the fallback (sans-IO).

The rule, once for the library and the proxy: a call moves to the fallback only when the
primary failed *before the answer began* with a failure that says the primary is unwell
(5xx, 408, 429 whose wait is longer than the retry budget allows, a connection failure,
a connect or first-byte timeout), and only after the primary's own retries are spent. A
4xx that is about the request (400, 401, 403, 404, 422...) is never hidden by a fallback:
the fallback would refuse the same request, or the operator must fix a credential. An
answer that failed mid-stream is never moved either: its first part came from the primary.

A ``CircuitBreaker`` shared by every call of one client counts the primary's failures:
once open, calls go straight to the fallback, and one probe now and then tries the primary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from gloo_stream.breaker import CircuitBreaker
from gloo_stream.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    GlooError,
    RateLimitError,
    ServerError,
)
from gloo_stream.retry import RetryPolicy, RetryState

__all__ = [
    "GLOO_ONLY_FIELDS",
    "Upstream",
    "UpstreamRoute",
    "fallback_body",
    "is_upstream_failure",
]

Upstream = Literal["primary", "fallback"]

# Gloo's own routing and grounding fields: an OpenAI-compatible fallback refuses them or
# reads them wrongly, so they are stripped from the request it gets.
GLOO_ONLY_FIELDS = frozenset(
    {
        "auto_routing",
        "model_family",
        "tradition",
        "rag_publisher",
        "sources_limit",
        "include_citations",
    }
)


def is_upstream_failure(error: BaseException) -> bool:
    """True for a failure before the answer that says the upstream itself is unwell."""
    if isinstance(error, APIConnectionError):  # includes connect and first-byte timeouts
        return True
    if isinstance(error, RateLimitError | ServerError):  # 429, 408, 409, 5xx
        return True
    return isinstance(error, APIStatusError) and error.status_code >= 500


def fallback_body(body: Mapping[str, Any], model: str | None) -> dict[str, Any]:
    """The request as the fallback gets it: Gloo-only fields gone, its own model set.

    Without a fallback model (``GLOO_FALLBACK_MODEL``) the call's own ``model``, if any, is
    kept.
    """
    out = {name: value for name, value in body.items() if name not in GLOO_ONLY_FIELDS}
    if model:
        out["model"] = model
    return out


class UpstreamRoute:
    """One call's attempts: on the primary while it may be tried, then on the fallback.

    ``upstream`` is where the next attempt goes. ``after_failure`` returns how long to wait
    before it (0 when it just moved to the fallback) or raises the error when nothing is
    left to try. ``retry`` is the budget of the upstream in use: the fallback gets a fresh
    one, since its failures say nothing about the primary's.
    """

    __slots__ = ("_breaker", "_earlier", "_has_fallback", "_policy", "retry", "upstream")

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        now: float,
        breaker: CircuitBreaker | None = None,
        fallback: bool = False,
    ) -> None:
        self._policy = policy
        self._breaker = breaker
        self._has_fallback = fallback
        self._earlier = 0
        self.retry: RetryState = policy.start(now)
        self.upstream: Upstream = "primary"
        if fallback and breaker is not None and not breaker.allow(now):
            self.upstream = "fallback"  # the primary is being skipped for a while

    @property
    def attempts(self) -> int:
        """Requests sent so far, on either upstream."""
        return self._earlier + self.retry.attempts

    def succeeded(self, now: float) -> None:
        """The upstream in use started an answer."""
        if self.upstream == "primary" and self._breaker is not None:
            self._breaker.record_success(now)

    def cut_mid_answer(self, now: float) -> None:
        """The upstream in use broke off an answer it had begun (dropped, stalled, failed):
        the primary's breaker counts it, so a primary that keeps dying is skipped."""
        if self.upstream == "primary" and self._breaker is not None:
            self._breaker.record_failure(now)

    def after_failure(self, error: GlooError, *, now: float, jitter: float) -> float:
        """Seconds to wait before the next attempt; raises ``error`` when none is allowed."""
        if self.upstream == "fallback" or not isinstance(error, APIError):
            return self.retry.after_failure(error, now=now, jitter=jitter)
        unwell = is_upstream_failure(error)
        breaker = self._breaker
        if breaker is not None:
            if unwell:
                breaker.record_failure(now)
            else:
                breaker.record_success(now)  # it answered: the request was the problem
        try:
            wait = self.retry.after_failure(error, now=now, jitter=jitter)
        except GlooError:
            if not (unwell and self._has_fallback):
                raise
            return self._move_to_fallback(now)
        if self._has_fallback and breaker is not None and breaker.state == "open":
            # More tries on the primary would be wasted: the retry just granted is not used.
            return self._move_to_fallback(now, unused=1)
        return wait

    def _move_to_fallback(self, now: float, unused: int = 0) -> float:
        self._earlier += self.retry.attempts - unused
        self.retry = self._policy.start(now)
        self.upstream = "fallback"
        return 0.0
