"""What the proxy tells a caller when something fails: status, error body, SSE error event.

Every failure becomes a ``ProxyFailure`` with a curated message: exception text and
credentials never reach the caller, and an upstream body only as the upstream's own reason
for a 4xx, through ``gloo_stream.redaction`` (bounded, controls removed, every secret the
proxy holds redacted). Bodies use OpenAI's error shape,
``{"error": {"message", "type", "param", "code"}}``, on every route, and are built by a JSON
encoder, never by string formatting.
"""

from __future__ import annotations

import math
import re
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
from gloo_stream.redaction import NO_SECRETS, Redactor, upstream_reason
from gloo_stream.sse import encode_event

__all__ = ["NOSNIFF", "ProxyFailure", "failure_from_exception", "stream_failure"]

_encoder = msgspec.json.Encoder()
NOSNIFF = (b"x-content-type-options", b"nosniff")
# A name or code from upstream is shown only when it looks like one.
_UPSTREAM_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


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
    allow: str | None = None
    """For a 405: the methods the route does allow (the ``Allow`` header)."""

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
        """Response headers: JSON content type, ``Retry-After`` when a wait is known,
        ``WWW-Authenticate`` on a 401 (RFC 6750) and ``Allow`` on a 405."""
        headers = [(b"content-type", b"application/json")]
        if self.retry_after is not None:
            seconds = max(1, math.ceil(self.retry_after))
            headers.append((b"retry-after", str(seconds).encode()))
        if self.status == 401:
            challenge = b'Bearer realm="gloo-stream"'
            if self.code == "invalid_api_key":
                challenge += b', error="invalid_token"'
            headers.append((b"www-authenticate", challenge))
        if self.allow is not None:
            headers.append((b"allow", self.allow.encode()))
        return headers

    def event(self) -> bytes:
        """The one final SSE event sent when the stream has already begun."""
        return encode_event(self.body().decode(), event="error")


def invalid_request(exc: InvalidRequestError) -> ProxyFailure:
    """The caller's request broke a rule: 400 naming the field."""
    return ProxyFailure(400, exc.message, "invalid_request_error", "invalid_request", exc.field)


def failure_from_exception(exc: BaseException, redactor: Redactor = NO_SECRETS) -> ProxyFailure:
    """Map an error raised before the stream began to what the caller is told.

    ``redactor`` holds every secret the proxy has: an upstream's reason is shown only
    through it.
    """
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
        return _status_failure(exc, redactor)
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
        return stream_failure(exc, redactor)
    return internal_error()


def internal_error() -> ProxyFailure:
    """An unexpected bug: a generic message (the details go to the server log only)."""
    return ProxyFailure(500, "The proxy failed unexpectedly.", "server_error", "internal_error")


def _status_failure(exc: APIStatusError, redactor: Redactor) -> ProxyFailure:
    status = exc.status_code
    if isinstance(exc, RateLimitError):
        return ProxyFailure(
            429,
            "The upstream API is rate limiting this proxy; wait and try again.",
            "rate_limit_error",
            "upstream_rate_limited",
            retry_after=exc.retry_after if exc.retry_after is not None else 1.0,
        )
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        # Never the upstream's reason here: it is about the proxy's own credentials.
        return ProxyFailure(
            502,
            f"The upstream API refused the proxy's own credentials ({status}); "
            "the operator must check GLOO_API_KEY or GLOO_CLIENT_ID/GLOO_CLIENT_SECRET.",
            "upstream_error",
            "upstream_auth_failed",
        )
    if isinstance(exc, ServerError) and status == 408:
        return ProxyFailure(
            504, "The model provider timed out; try again.", "upstream_error", "upstream_timeout"
        )
    if isinstance(exc, ServerError) or not 400 <= status < 500:
        return ProxyFailure(
            502,
            f"The upstream API failed ({status}); try again shortly.",
            "upstream_error",
            "upstream_error",
            retry_after=exc.retry_after if isinstance(exc, ServerError) else None,
        )
    return _refused_upstream(exc, redactor)


def _refused_upstream(exc: APIStatusError, redactor: Redactor) -> ProxyFailure:
    """A 4xx the upstream gave the request itself: its own reason, made safe, is shown."""
    status = exc.status_code
    reason = upstream_reason(exc.body, redactor)
    because = f": {reason}" if reason else "."
    extra = {"upstream_status": status}
    if isinstance(exc, BadRequestError):
        return ProxyFailure(
            400,
            f"The upstream API rejected the request as invalid ({status}){because}",
            "invalid_request_error",
            "upstream_bad_request",
            _upstream_param(exc.detail, redactor),
            extra=extra,
        )
    if isinstance(exc, NotFoundError):
        return ProxyFailure(
            404,
            f"The upstream API answered 404 (the model may not exist){because}",
            "invalid_request_error",
            "upstream_not_found",
            extra=extra,
        )
    return ProxyFailure(
        502,
        f"The upstream API refused the request ({status}){because}",
        "upstream_error",
        "upstream_refused",
        extra=extra,
    )


def stream_failure(exc: StreamError, redactor: Redactor = NO_SECRETS) -> ProxyFailure:
    """Map a failure after the stream began (sent as the final SSE error event)."""
    if isinstance(exc, UpstreamStreamError):
        name = _upstream_name(exc.name, redactor) or "upstream_error"
        code = exc.code if isinstance(exc.code, int) else _upstream_name(exc.code, redactor)
        return ProxyFailure(
            502,
            f"The model failed mid-answer ({name}); the answer is incomplete.",
            "upstream_error",
            name,
            extra={"upstream_code": code} if code is not None else {},
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


def _upstream_param(detail: Any, redactor: Redactor) -> str | None:
    """The body field a FastAPI-style ``detail`` blames first (``loc: ["body", field, ...]``)."""
    first = detail[0] if isinstance(detail, list) and detail else None
    loc = first.get("loc") if isinstance(first, dict) else None
    if isinstance(loc, list) and len(loc) >= 2 and loc[0] == "body":
        return _upstream_name(loc[1], redactor)
    return None


def _upstream_name(value: Any, redactor: Redactor) -> str | None:
    """An upstream error name or code, if it is one (a short token, no secret), else None."""
    if isinstance(value, str) and _UPSTREAM_NAME.fullmatch(value):
        return value if redactor.text(value) == value else None
    return None


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
