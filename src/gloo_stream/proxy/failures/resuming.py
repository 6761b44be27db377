"""The failures of resumable answers (``PROXY_RESUME_WINDOW``): coming back, stopping, losing.

Unknown, expired, stopped and someone else's streams all get the one 404, word for word:
an id reveals nothing to anyone but its owner.
"""

from __future__ import annotations

from gloo_stream.proxy.failures.shape import ProxyFailure

__all__ = [
    "RESUME_ELSEWHERE",
    "RESUME_GAP",
    "RESUME_UNAVAILABLE",
    "STREAM_ABANDONED",
    "STREAM_CANCELLED",
    "STREAM_LOST",
    "STREAM_NOT_FOUND",
    "bad_last_event_id",
]

STREAM_NOT_FOUND = ProxyFailure(
    404,
    "No resumable answer has this id for this client: it never existed, its "
    "PROXY_RESUME_WINDOW passed, or it was stopped. Ask again.",
    "invalid_request_error",
    "stream_not_found",
)
"""404: ``GET`` or ``DELETE /api/stream/{id}`` for a stream the caller may not see."""


def bad_last_event_id() -> ProxyFailure:
    """400: ``Last-Event-ID`` is not the number of an event."""
    message = "Last-Event-ID must be the id of the last event received (a whole number)."
    return ProxyFailure(400, message, "invalid_request_error", "invalid_last_event_id")


RESUME_GAP = ProxyFailure(
    410,
    "The events after that Last-Event-ID are no longer kept (the answer outgrew "
    "PROXY_RESUME_BUFFER_BYTES); ask again.",
    "invalid_request_error",
    "resume_gap",
)
"""410, or the final event: the buffer dropped events the caller has not had."""

STREAM_LOST = ProxyFailure(
    502,
    "The proxy replica generating this answer went away; the answer is incomplete.",
    "upstream_error",
    "stream_lost",
)
"""The final event of a resumed stream whose producer died or whose buffer failed."""

RESUME_UNAVAILABLE = ProxyFailure(
    503,
    "The proxy cannot reach the store of resumable answers right now; try again shortly.",
    "server_error",
    "resume_unavailable",
    retry_after=1.0,
)
"""503, or the final event: Redis (``PROXY_REDIS_URL``) did not answer a resume."""

RESUME_ELSEWHERE = ProxyFailure(
    503,
    "This proxy replica is shutting down; resume the answer (GET /api/stream/{id} with "
    "Last-Event-ID) and another replica will carry on.",
    "server_error",
    "resume_elsewhere",
    retry_after=1.0,
)
"""The final event of a resumed stream when the replica relaying it (not generating it) drains."""

STREAM_CANCELLED = ProxyFailure(
    499,
    "The answer was stopped (DELETE /api/stream/{id}); what arrived is kept.",
    "invalid_request_error",
    "stream_cancelled",
)
"""The final event of an answer its caller stopped."""

STREAM_ABANDONED = ProxyFailure(
    499,
    "Nobody came back for the answer within PROXY_RESUME_WINDOW; it was stopped.",
    "invalid_request_error",
    "stream_abandoned",
)
"""The final event kept for an answer whose caller never came back (no one reads it)."""
