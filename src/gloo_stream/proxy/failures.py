"""What the proxy tells a caller when something fails: status, error body, SSE error event.

Every failure becomes a ``ProxyFailure`` with a fixed, curated message: upstream bodies,
exception text and credentials never reach the caller. Bodies use OpenAI's error shape,
``{"error": {"message", "type", "param", "code"}}``, on every route, and are built by a JSON
encoder, never by string formatting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import msgspec

from gloo_stream.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    InvalidRequestError,
    MalformedChunkError,
    MissingCredentialsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamDisconnectedError,
    StreamError,
    StreamTimeoutError,
    TruncatedStreamError,
    UpstreamStreamError,
)
from gloo_stream.sse import encode_event

__all__ = ["ProxyFailure", "failure_from_exception", "stream_failure"]

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class ProxyFailure:
    """One failure as the caller sees it, before the stream (status) or during it (event)."""

    status: int
    message: str
    type: str
    code: str
    param: str | None = None
    retry_after: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> bytes:
        """The JSON error body (OpenAI's shape)."""
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        error.update(self.extra)
        return _encoder.encode({"error": error})

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Response headers: JSON content type, and ``Retry-After`` when a wait is known."""
        headers = [(b"content-type", b"application/json")]
        if self.retry_after is not None:
            seconds = max(1, math.ceil(self.retry_after))
            headers.append((b"retry-after", str(seconds).encode()))
        return headers

    def event(self) -> bytes:
        """The one final SSE event sent when the stream has already begun."""
        return encode_event(self.body().decode(), event="error")


def invalid_request(exc: InvalidRequestError) -> ProxyFailure:
    """The caller's request broke a rule: 400 naming the field."""
    return ProxyFailure(400, exc.message, "invalid_request_error", "invalid_request", exc.field)


def failure_from_exception(exc: BaseException) -> ProxyFailure:
    """Map an error raised before the stream began to what the caller is told."""
    if isinstance(exc, InvalidRequestError):
        return invalid_request(exc)
    if isinstance(exc, MissingCredentialsError):
        return ProxyFailure(
            503,
            "The proxy has no upstream credentials configured; the operator must set "
            "GLOO_API_KEY, or GLOO_CLIENT_ID and GLOO_CLIENT_SECRET.",
            "server_error",
            "upstream_not_configured",
        )
    if isinstance(exc, APIStatusError):
        return _status_failure(exc)
    if isinstance(exc, APITimeoutError):
        return ProxyFailure(
            504,
            "The upstream did not answer in time; try again shortly.",
            "upstream_error",
            "upstream_timeout",
        )
    if isinstance(exc, APIConnectionError):
        return ProxyFailure(
            502,
            "The proxy could not reach the upstream API; try again shortly.",
            "upstream_error",
            "upstream_unreachable",
        )
    if isinstance(exc, StreamError):
        return stream_failure(exc)
    return internal_error()


def internal_error() -> ProxyFailure:
    """An unexpected bug: a generic message (the details go to the server log only)."""
    return ProxyFailure(500, "The proxy failed unexpectedly.", "server_error", "internal_error")


def _status_failure(exc: APIStatusError) -> ProxyFailure:
    if isinstance(exc, RateLimitError):
        return ProxyFailure(
            429,
            "The upstream API is rate limiting this proxy; wait and try again.",
            "rate_limit_error",
            "upstream_rate_limited",
            retry_after=exc.retry_after if exc.retry_after is not None else 1.0,
        )
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        return ProxyFailure(
            502,
            f"The upstream API refused the proxy's own credentials ({exc.status_code}); "
            "the operator must check GLOO_API_KEY or GLOO_CLIENT_ID/GLOO_CLIENT_SECRET.",
            "upstream_error",
            "upstream_auth_failed",
        )
    if isinstance(exc, BadRequestError):
        return ProxyFailure(
            400,
            f"The upstream API rejected the request as invalid ({exc.status_code}).",
            "invalid_request_error",
            "upstream_bad_request",
            extra={"detail": exc.detail},
        )
    if isinstance(exc, NotFoundError):
        return ProxyFailure(
            404,
            "The upstream API answered 404: the model may not exist.",
            "invalid_request_error",
            "upstream_not_found",
        )
    if isinstance(exc, ServerError) and exc.status_code == 408:
        return ProxyFailure(
            504, "The model provider timed out; try again.", "upstream_error", "upstream_timeout"
        )
    retry_after = exc.retry_after if isinstance(exc, ServerError) else None
    return ProxyFailure(
        502,
        f"The upstream API failed ({exc.status_code}); try again shortly.",
        "upstream_error",
        "upstream_error",
        retry_after=retry_after,
    )


def stream_failure(exc: StreamError) -> ProxyFailure:
    """Map a failure after the stream began (sent as the final SSE error event)."""
    if isinstance(exc, UpstreamStreamError):
        name = exc.name if isinstance(exc.name, str) and exc.name else "upstream_error"
        return ProxyFailure(
            502,
            f"The model failed mid-answer ({name}); the answer is incomplete.",
            "upstream_error",
            name,
            extra={"upstream_code": exc.code} if isinstance(exc.code, int | str) else {},
        )
    if isinstance(exc, ContentFilterError):
        return ProxyFailure(
            400,
            "The answer was stopped by the content filter.",
            "content_filter",
            "content_filter",
        )
    for kind, code, what in _STREAM_FAILURES:
        if isinstance(exc, kind):
            return ProxyFailure(502, f"{what}; the answer is incomplete.", "upstream_error", code)
    return ProxyFailure(
        502,
        "The upstream stream failed; the answer is incomplete.",
        "upstream_error",
        "upstream_error",
    )


_STREAM_FAILURES: tuple[tuple[type[StreamError], str, str], ...] = (
    (StreamDisconnectedError, "upstream_disconnected", "The upstream connection dropped"),
    (StreamTimeoutError, "upstream_timeout", "The upstream went silent for too long"),
    (TruncatedStreamError, "upstream_truncated", "The upstream stream ended early"),
    (MalformedChunkError, "upstream_malformed", "The upstream sent a malformed chunk"),
)

SHUTDOWN = ProxyFailure(
    503,
    "The proxy is shutting down; the answer is incomplete. Try again.",
    "server_error",
    "server_shutdown",
    retry_after=1.0,
)
