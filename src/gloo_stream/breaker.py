"""``CircuitBreaker``: skip an upstream that keeps failing, and probe it again later (sans-IO).

Closed (the upstream is used), open (it is skipped until ``cooldown`` seconds have passed),
half-open (one probe request is let through: its success closes the breaker, its failure
opens it again for another ``cooldown``). Every method takes the time it is called at, so
the breaker serves threads, asyncio and tests with a fake clock alike; a caller that shares
one breaker between threads holds a lock around each call.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Opens after ``threshold`` failures in a row; lets one probe through after ``cooldown``.

    A probe that never reports back (its request was cancelled) does not wedge the breaker:
    after another ``cooldown`` a new probe is allowed.
    """

    __slots__ = ("_failures", "_opened_at", "_probe_at", "_state", "cooldown", "threshold")

    def __init__(self, *, threshold: int = 5, cooldown: float = 30.0) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1 failure")
        if cooldown <= 0:
            raise ValueError("cooldown must be more than 0 seconds")
        self.threshold = threshold
        self.cooldown = cooldown
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probe_at: float | None = None

    @property
    def state(self) -> BreakerState:
        """``closed``, ``open`` or ``half_open``, as of the last call."""
        return self._state

    @property
    def failures(self) -> int:
        """Failures in a row counted so far (reset by a success)."""
        return self._failures

    def allow(self, now: float) -> bool:
        """May a request go to the upstream now? (Counts the half-open probe as sent.)"""
        if self._state == "closed":
            return True
        if self._state == "open":
            if now - self._opened_at < self.cooldown:
                return False
            self._state = "half_open"
            self._probe_at = now
            return True
        probe = self._probe_at
        if probe is None or now - probe >= self.cooldown:
            self._probe_at = now  # the last probe never reported: send another
            return True
        return False

    def record_success(self, now: float) -> None:
        """The upstream answered: close the breaker and forget past failures."""
        self._state = "closed"
        self._failures = 0
        self._probe_at = None

    def record_failure(self, now: float) -> None:
        """The upstream failed: open the breaker at the threshold, or when a probe failed."""
        self._failures += 1
        if self._state == "half_open" or self._failures >= self.threshold:
            self._state = "open"
            self._opened_at = now
            self._probe_at = None

    def retry_in(self, now: float) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        if self._state != "open":
            return 0.0
        return max(0.0, self.cooldown - (now - self._opened_at))
