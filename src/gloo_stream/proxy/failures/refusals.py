"""The proxy's own refusals and states: the request, its keys, the limits, the front door,
resumable answers.

Each is a named constructor (or, for a fixed answer, a named constant): the places that
refuse say which failure, never how it is worded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from gloo_stream.proxy.failures.shape import ProxyFailure

__all__ = [
    "BAD_HTTP",
    "CAPACITY_EXCEEDED",
    "LIMITS_UNAVAILABLE",
    "NOT_FOUND",
    "RESUME_AHEAD",
    "RESUME_ELSEWHERE",
    "RESUME_GAP",
    "RESUME_UNAVAILABLE",
    "SHUTDOWN",
    "SHUTDOWN_UNREAD",
    "STREAM_ABANDONED",
    "STREAM_CANCELLED",
    "STREAM_LOST",
    "STREAM_NOT_FOUND",
    "TOO_MANY_CONNECTIONS",
    "UNKNOWN_TRANSFER_CODING",
    "UPSTREAM_BAD_RESPONSE",
    "USE_POST",
    "bad_content_type",
    "bad_last_event_id",
    "body_too_large",
    "family_not_allowed",
    "headers_too_large",
    "http_error",
    "invalid_api_key",
    "invalid_json",
    "invalid_messages",
    "max_tokens_capped",
    "max_tokens_twice",
    "missing_api_key",
    "model_not_allowed",
    "not_an_object",
    "not_found",
    "only_one_choice",
    "rate_limited",
    "renamed_param",
    "request_timeout",
    "token_budget_exhausted",
    "too_many_auth_failures",
    "too_many_streams",
    "unknown_fields",
    "unsupported_fields",
    "wrong_type",
]


# -- The request itself: its body and fields (400, 413, 415) ---------------------------------


def _invalid(status: int, message: str, code: str, param: str | None = None) -> ProxyFailure:
    return ProxyFailure(status, message, "invalid_request_error", code, param)


def bad_content_type() -> ProxyFailure:
    """415: the body is not sent as JSON."""
    return _invalid(415, "Send the request as JSON (Content-Type: application/json).", "bad_type")


def body_too_large(limit: int) -> ProxyFailure:
    """413: the body is over ``PROXY_MAX_BODY_BYTES``."""
    message = f"The body is larger than this proxy accepts ({limit} bytes)."
    return _invalid(413, message, "too_large")


def invalid_json() -> ProxyFailure:
    """400: the body does not parse."""
    return _invalid(400, "The body is not valid UTF-8 JSON.", "invalid_json")


def not_an_object() -> ProxyFailure:
    """400: the body parses, but not to an object."""
    return _invalid(400, "The body must be a JSON object with a messages list.", "not_an_object")


def unknown_fields(unknown: list[str], allowed: Iterable[str]) -> ProxyFailure:
    """400: ``/api/stream`` got fields it does not take (``unknown`` sorted)."""
    message = f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}."
    return _invalid(400, message, "unknown_field", unknown[0])


def unsupported_fields(unknown: list[str], supported: Iterable[str]) -> ProxyFailure:
    """400: ``/v1`` got fields of OpenAI's API the proxy does not support (``unknown`` sorted)."""
    message = (
        f"Unsupported field(s): {', '.join(unknown)}. Supported: {', '.join(sorted(supported))}."
    )
    return _invalid(400, message, "unknown_field", unknown[0])


def invalid_messages() -> ProxyFailure:
    """400: no messages, or not a list."""
    message = "messages must be a non-empty list of {role, content} objects."
    return _invalid(400, message, "invalid_messages", "messages")


def wrong_type(name: str, expected: str) -> ProxyFailure:
    """400: field ``name`` is not ``expected`` (``"a string"``, ``"true or false"``)."""
    return _invalid(400, f"{name} must be {expected}", "invalid_type", name)


def only_one_choice() -> ProxyFailure:
    """400: OpenAI's ``n`` other than 1."""
    return _invalid(400, "Only n=1 is supported.", "invalid_value", "n")


def max_tokens_twice() -> ProxyFailure:
    """400: both of OpenAI's names for the token cap."""
    message = "Give max_tokens or max_completion_tokens, not both."
    return _invalid(400, message, "invalid_value", "max_completion_tokens")


def max_tokens_capped(cap: int) -> ProxyFailure:
    """400: ``max_tokens`` over ``PROXY_MAX_TOKENS``."""
    message = f"max_tokens is capped at {cap} by this proxy."
    return _invalid(400, message, "max_tokens_cap", "max_tokens")


def model_not_allowed(model: str, allowed: Iterable[str]) -> ProxyFailure:
    """400: a model outside ``PROXY_ALLOWED_MODELS`` (its name cut to 100 characters)."""
    message = f"Model {model[:100]!r} is not allowed here; allowed: {', '.join(sorted(allowed))}."
    return _invalid(400, message, "model_not_allowed", "model")


def family_not_allowed(family: str, allowed: Iterable[str]) -> ProxyFailure:
    """400: a model family outside ``PROXY_ALLOWED_FAMILIES``."""
    message = (
        f"Model family {family[:100]!r} is not allowed here; allowed: {', '.join(sorted(allowed))}."
    )
    return _invalid(400, message, "model_family_not_allowed", "model_family")


def publisher_not_allowed(publisher: str, allowed: Iterable[str]) -> ProxyFailure:
    """400: a grounded answer's ``rag_publisher`` outside ``PROXY_ALLOWED_PUBLISHERS``."""
    message = (
        f"Publisher {publisher[:100]!r} is not allowed here; allowed: {', '.join(sorted(allowed))}."
    )
    return _invalid(400, message, "publisher_not_allowed", "rag_publisher")


def renamed_param(failure: ProxyFailure, old: str, new: str) -> ProxyFailure:
    """``failure`` told under the name the caller used for its field (``new`` for ``old``)."""
    return dataclasses.replace(failure, message=failure.message.replace(old, new), param=new)


# -- Routes and methods (404, 405) ------------------------------------------------------------


def not_found(message: str = "Nothing is served at this path.") -> ProxyFailure:
    """404: nothing at this path (or a file of the page that is not installed)."""
    return ProxyFailure(404, message, "not_found", "not_found")


NOT_FOUND = not_found()

USE_POST = ProxyFailure(
    405, "Use POST.", "invalid_request_error", "method_not_allowed", allow="POST, OPTIONS"
)
"""405 from a completions route."""


def http_error(status: int, detail: str, allow: str | None) -> ProxyFailure:
    """Starlette's own HTTP error (a 405 keeps its ``Allow`` header)."""
    code = "method_not_allowed" if status == 405 else "http_error"
    return ProxyFailure(status, detail, "invalid_request_error", code, allow=allow)


# -- Client keys (401, 429) -------------------------------------------------------------------


def missing_api_key() -> ProxyFailure:
    """401: keys are configured and the request sent none."""
    message = "This proxy needs an API key: send 'Authorization: Bearer <key>'."
    return ProxyFailure(401, message, "authentication_error", "missing_api_key")


def invalid_api_key() -> ProxyFailure:
    """401: the key sent is not one of the proxy's."""
    message = "The API key is not valid for this proxy."
    return ProxyFailure(401, message, "authentication_error", "invalid_api_key")


def too_many_auth_failures(retry_after: float) -> ProxyFailure:
    """429: the caller's address sent too many wrong keys (``PROXY_AUTH_FAILURE_LIMIT``)."""
    message = "Too many wrong API keys from this address; wait before trying again."
    return ProxyFailure(
        429, message, "rate_limit_error", "too_many_auth_failures", retry_after=retry_after
    )


# -- Limits (429, 503) ------------------------------------------------------------------------


def rate_limited(retry_after: float) -> ProxyFailure:
    """429: the client is over ``PROXY_RATE_LIMIT``."""
    message = "Too many requests from this client; wait and try again."
    return ProxyFailure(429, message, "rate_limit_error", "rate_limited", retry_after=retry_after)


def too_many_streams(cap: int) -> ProxyFailure:
    """429: the client already has its cap of concurrent answers."""
    message = (
        f"Too many answers in progress for this client (at most {cap}); wait for one to finish."
    )
    return ProxyFailure(429, message, "rate_limit_error", "too_many_streams", retry_after=1.0)


def token_budget_exhausted(budget: str, retry_after: float) -> ProxyFailure:
    """429: the client's ``PROXY_TOKEN_BUDGET`` (``budget``, e.g. ``200000/day``) is used up."""
    message = (
        f"This client's token budget ({budget} tokens) is used up; it renews when the window "
        "ends (see Retry-After)."
    )
    return ProxyFailure(
        429, message, "rate_limit_error", "token_budget_exhausted", retry_after=retry_after
    )


CAPACITY_EXCEEDED = ProxyFailure(
    503,
    "The proxy is at its capacity for upstream streams; try again shortly.",
    "server_error",
    "capacity_exceeded",
    retry_after=1.0,
)
"""503: ``PROXY_MAX_UPSTREAM_STREAMS`` streams are open in this process."""

LIMITS_UNAVAILABLE = ProxyFailure(
    503,
    "The proxy cannot reach its shared limits store; try again shortly.",
    "server_error",
    "limits_unavailable",
    retry_after=1.0,
)
"""503: Redis is down and ``PROXY_REDIS_FAIL=closed``."""


# -- The front door: before the app sees a request (400, 408, 431, 501, 503) -----------------

BAD_HTTP = _invalid(400, "This is not a valid HTTP/1.1 request.", "bad_http")

UNKNOWN_TRANSFER_CODING = _invalid(
    501,
    "This proxy understands no transfer coding but chunked (RFC 9112 section 6.1); send "
    "the body with Content-Length or Transfer-Encoding: chunked alone.",
    "unsupported_transfer_coding",
)
"""501: ``Transfer-Encoding`` named a coding other than ``chunked`` (``gzip, chunked``)."""


def request_timeout(part: str, seconds: float) -> ProxyFailure:
    """408: the request's ``part`` (``"headers"``, ``"body"``) was not all in within ``seconds``."""
    message = f"The request's {part} did not all arrive within {seconds:g} s."
    return _invalid(408, message, "request_timeout")


def headers_too_large(max_bytes: int, max_headers: int) -> ProxyFailure:
    """431: the head is over ``PROXY_MAX_HEADER_BYTES`` or ``PROXY_MAX_HEADERS``."""
    message = (
        f"The request's headers are larger than this proxy accepts "
        f"({max_bytes} bytes, {max_headers} fields)."
    )
    return _invalid(431, message, "headers_too_large")


SHUTDOWN_UNREAD = ProxyFailure(
    503,
    "The proxy is shutting down and did not read the whole request; send it again.",
    "server_error",
    "server_shutdown",
    retry_after=1.0,
)
"""503: shutdown began while the request was still arriving."""

TOO_MANY_CONNECTIONS = ProxyFailure(
    503,
    "The proxy has as many connections open as it allows; try again shortly.",
    "server_error",
    "too_many_connections",
    retry_after=1.0,
)
"""503: a connection past ``PROXY_MAX_CONNECTIONS`` asked for anything but ``/health``."""


# -- The proxy's own state (503) ------------------------------------------------------------

SHUTDOWN = ProxyFailure(
    503,
    "The proxy is shutting down; the answer is incomplete. Try again.",
    "server_error",
    "server_shutdown",
    retry_after=1.0,
)
"""503, or the final event: the proxy is draining."""


# -- Resumable answers (PROXY_RESUME_WINDOW): coming back, stopping, losing -------------------
# Unknown, expired, stopped and someone else's streams all get the one 404, word for word:
# an id reveals nothing to anyone but its owner.

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


RESUME_AHEAD = ProxyFailure(
    409,
    "Last-Event-ID is beyond the last event of this answer: it was not received from this "
    "stream. Resume with the id of the last event you did receive, or 0 for all of them.",
    "invalid_request_error",
    "last_event_id_ahead",
)
"""409: ``Last-Event-ID`` names an event the stream has not sent (answered at once)."""

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

UPSTREAM_BAD_RESPONSE = ProxyFailure(
    502,
    "The upstream answered with something other than an event stream or JSON; "
    "try again later, or check GLOO_API_URL.",
    "upstream_error",
    "upstream_bad_response",
)
"""A 200 from upstream that is not an answer (``text/html``, say), before any byte went out."""

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
