"""When and how long to wait before trying a request again (sans-IO)."""

from __future__ import annotations

from dataclasses import dataclass

from gloo_stream.errors import (
    APIConnectionError,
    APIStatusError,
    ContentFilterError,
    GlooError,
    RateLimitError,
    ServerError,
    StreamError,
)

__all__ = ["RetryPolicy", "RetryState"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Which failures are retried, how often, and how long to wait between tries.

    Retried: 408, 409, 429, 5xx, connection failures, timeouts, and a stream that failed
    mid-answer (drop, stall, truncation, malformed chunk, ``finish_reason: "error"``).
    Never: 400, 401, 403, 404, 422, or ``content_filter``. The wait is what the server
    asked for (``Retry-After`` and friends) when it asked, else exponential backoff with
    jitter. A requested wait longer than ``max_wait`` is not slept: the error is raised.
    """

    max_retries: int = 2
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_wait: float = 60.0
    deadline: float | None = 300.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.max_wait < 0:
            raise ValueError("backoff and wait limits must not be negative")

    def is_retryable(self, error: BaseException) -> bool:
        """True when trying again could succeed."""
        if isinstance(error, ContentFilterError):
            return False
        if isinstance(error, StreamError | APIConnectionError | RateLimitError | ServerError):
            return True
        if isinstance(error, APIStatusError):
            return error.status_code in (408, 409) or error.status_code >= 500
        return False

    def delay(self, error: BaseException, retry_number: int, jitter: float) -> float:
        """Seconds to wait before retry number ``retry_number`` (1-based); jitter in [0, 1)."""
        requested = error.retry_after if isinstance(error, RateLimitError | ServerError) else None
        if requested is not None:
            return requested
        backoff = min(self.backoff_max, self.backoff_base * 2.0 ** (retry_number - 1))
        # "Equal jitter": never less than half the backoff, so retries stay spread out.
        return backoff * (0.5 + 0.5 * jitter)

    def start(self, now: float) -> RetryState:
        """Begin counting attempts for one call."""
        return RetryState(self, started_at=now)


class RetryState:
    """The attempts of one call: ``after_failure`` says how long to wait, or re-raises."""

    __slots__ = ("attempts", "policy", "started_at")

    def __init__(self, policy: RetryPolicy, *, started_at: float) -> None:
        self.policy = policy
        self.started_at = started_at
        self.attempts = 1

    def after_failure(self, error: GlooError, *, now: float, jitter: float) -> float:
        """Seconds to wait before the next attempt; raises ``error`` when none is allowed."""
        policy = self.policy
        if not policy.is_retryable(error) or self.attempts > policy.max_retries:
            raise error
        wait = policy.delay(error, self.attempts, jitter)
        if wait > policy.max_wait:
            raise error
        if policy.deadline is not None and now + wait - self.started_at > policy.deadline:
            raise error
        self.attempts += 1
        return wait
