"""The library's exceptions as the caller is told them: what the upstream did, made safe.

Exception text and credentials never reach the caller, and an upstream body only as the
upstream's own reason for a 4xx, through ``gloo_stream.redaction`` (bounded, controls
removed, every secret the proxy holds redacted).
"""

from __future__ import annotations

import re
from typing import Any

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
from gloo_stream.proxy.failures.refusals import (
    UPSTREAM_NOT_CONFIGURED,
    internal_error,
    invalid_request,
)
from gloo_stream.proxy.failures.shape import ProxyFailure
from gloo_stream.redaction import NO_SECRETS, Redactor, upstream_reason

__all__ = ["failure_from_exception", "stream_failure"]

# A name or code from upstream is shown only when it looks like one.
_UPSTREAM_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def failure_from_exception(exc: BaseException, redactor: Redactor = NO_SECRETS) -> ProxyFailure:
    """Map an error raised before the stream began to what the caller is told.

    ``redactor`` holds every secret the proxy has: an upstream's reason is shown only
    through it.
    """
    if isinstance(exc, InvalidRequestError):
        return invalid_request(exc)
    if isinstance(exc, MissingCredentialsError):
        return UPSTREAM_NOT_CONFIGURED
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
