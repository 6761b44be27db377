"""The library's exceptions as the caller is told them: the class says which answer, made safe.

Each exception class carries its catalogue entry (``gloo_stream.errors``): ``http_status``,
``proxy_type`` and ``proxy_code``. This module adds only the proxy's words for each code and
what only the instance knows: the upstream's status, its ``Retry-After``, and, for a 4xx
the upstream gave the request itself, its own reason. Exception text and credentials never
reach the caller, and an upstream body only as that reason, through ``gloo_stream.redaction``
(bounded, controls removed, every secret the proxy holds redacted).
"""

from __future__ import annotations

import re
from typing import Any

from gloo_stream.errors import (
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    GlooError,
    InvalidRequestError,
    MissingCredentialsError,
    RateLimitError,
    ServerError,
    StreamError,
    UpstreamStreamError,
)
from gloo_stream.proxy.failures.shape import ProxyFailure
from gloo_stream.redaction import NO_SECRETS, Redactor, upstream_reason

__all__ = [
    "UPSTREAM_NOT_CONFIGURED",
    "failure_from_exception",
    "internal_error",
    "invalid_request",
    "stream_failure",
]

# What the caller is told, by the class's proxy_code, when the error came before the stream.
# ``{status}`` is the upstream's status; ``{because}`` its own reason (": ..." or ".").
_BEFORE = {
    "upstream_not_configured": "The proxy has no upstream credentials configured; the operator "
    "must set GLOO_API_KEY, or GLOO_CLIENT_ID and GLOO_CLIENT_SECRET.",
    "upstream_timeout": "The upstream did not answer in time; try again shortly.",
    "upstream_unreachable": "The proxy could not reach the upstream API; try again shortly.",
    "upstream_rate_limited": "The upstream API is rate limiting this proxy; wait and try again.",
    # Never the upstream's reason here: it is about the proxy's own credentials.
    "upstream_auth_failed": "The upstream API refused the proxy's own credentials ({status}); "
    "the operator must check GLOO_API_KEY or GLOO_CLIENT_ID/GLOO_CLIENT_SECRET.",
    "upstream_error": "The upstream API failed ({status}); try again shortly.",
    "upstream_bad_request": "The upstream API rejected the request as invalid ({status}){because}",
    "upstream_not_found": "The upstream API answered 404 (the model may not exist){because}",
    "upstream_refused": "The upstream API refused the request ({status}){because}",
}
# The codes of a 4xx the upstream gave the request itself: its reason, made safe, is shown.
_REFUSED_REQUEST = frozenset({"upstream_bad_request", "upstream_not_found", "upstream_refused"})
# A 408 is answered as a timeout is, in words of its own.
_PROVIDER_TIMEOUT = "The model provider timed out; try again."

# And after the stream began (the final SSE error event), by proxy_code.
_DURING = {
    "upstream_disconnected": "The upstream connection dropped; the answer is incomplete.",
    "upstream_timeout": "The upstream went silent for too long; the answer is incomplete.",
    "upstream_truncated": "The upstream stream ended early; the answer is incomplete.",
    "upstream_malformed": "The upstream sent a malformed chunk; the answer is incomplete.",
    "content_filter": "The answer was stopped by the content filter.",
    "upstream_error": "The upstream stream failed; the answer is incomplete.",
}
# A name or code from upstream is shown only when it looks like one.
_UPSTREAM_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _told(
    kind: type[GlooError],
    message: str,
    *,
    param: str | None = None,
    retry_after: float | None = None,
    extra: dict[str, Any] | None = None,
) -> ProxyFailure:
    """The answer of ``kind``'s catalogue entry, in ``message``'s words."""
    status, error_type, code = kind.http_status, kind.proxy_type, kind.proxy_code
    return ProxyFailure(status, message, error_type, code, param, retry_after, extra or {})


def invalid_request(exc: InvalidRequestError) -> ProxyFailure:
    """400: a field broke one of ``gloo_stream.request``'s rules: its message, naming the field."""
    return _told(type(exc), exc.message, param=exc.field)


def internal_error() -> ProxyFailure:
    """An unexpected bug: the base class's entry (500), in words that say nothing of it.

    The details go to the server log only.
    """
    return _told(GlooError, "The proxy failed unexpectedly.")


UPSTREAM_NOT_CONFIGURED = _told(MissingCredentialsError, _BEFORE["upstream_not_configured"])
"""503: no Gloo credentials (``MissingCredentialsError``)."""


def failure_from_exception(exc: BaseException, redactor: Redactor = NO_SECRETS) -> ProxyFailure:
    """Map an error raised before the stream began to what the caller is told.

    ``redactor`` holds every secret the proxy has: an upstream's reason is shown only
    through it. Anything but the library's own errors is a bug: ``internal_error``.
    """
    if isinstance(exc, StreamError):
        return stream_failure(exc, redactor)
    if isinstance(exc, InvalidRequestError):
        return invalid_request(exc)
    if isinstance(exc, APIStatusError):
        return _status_failure(exc, redactor)
    if not isinstance(exc, GlooError):
        return internal_error()
    message = _BEFORE.get(exc.proxy_code)
    if message is None:  # no words of the proxy's own for it (GlooError, ConfigurationError)
        return internal_error()
    return _told(type(exc), message)


def _status_failure(exc: APIStatusError, redactor: Redactor) -> ProxyFailure:
    status = exc.status_code
    kind: type[GlooError] = type(exc)
    if isinstance(exc, ServerError) and status == 408:
        return _told(APITimeoutError, _PROVIDER_TIMEOUT)
    if kind.proxy_code in _REFUSED_REQUEST and not 400 <= status < 500:
        kind = ServerError  # whatever the class, a status outside 4xx is a server failure
    retry_after = exc.retry_after if isinstance(exc, RateLimitError | ServerError) else None
    if isinstance(exc, RateLimitError) and retry_after is None:
        retry_after = 1.0  # the upstream named no wait: the caller still gets one
    if kind.proxy_code not in _REFUSED_REQUEST:
        return _told(kind, _BEFORE[kind.proxy_code].format(status=status), retry_after=retry_after)
    reason = upstream_reason(exc.body, redactor)
    because = f": {reason}" if reason else "."
    param = _upstream_param(exc.detail, redactor) if isinstance(exc, BadRequestError) else None
    message = _BEFORE[kind.proxy_code].format(status=status, because=because)
    return _told(kind, message, param=param, extra={"upstream_status": status})


def stream_failure(exc: StreamError, redactor: Redactor = NO_SECRETS) -> ProxyFailure:
    """Map a failure after the stream began (sent as the final SSE error event)."""
    if isinstance(exc, UpstreamStreamError):
        # The upstream's own error name is the code, when it has a safe one.
        name = _upstream_name(exc.name, redactor) or exc.proxy_code
        code = exc.code if isinstance(exc.code, int) else _upstream_name(exc.code, redactor)
        return ProxyFailure(
            exc.http_status,
            f"The model failed mid-answer ({name}); the answer is incomplete.",
            exc.proxy_type,
            name,
            extra={"upstream_code": code} if code is not None else {},
        )
    return _told(type(exc), _DURING.get(exc.proxy_code, _DURING["upstream_error"]))


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
