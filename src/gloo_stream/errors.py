"""One exception hierarchy, and the sans-IO mapping from HTTP answers to it.

Before the stream, errors are ``APIError``s named for what happened (``RateLimitError``...).
During the stream they are ``StreamError``s, and every one carries ``partial``: the
``StreamResult`` received so far, flagged ``interrupted``, so no answer is lost.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from gloo_stream.redaction import NO_SECRETS, Redactor, strip_controls

if TYPE_CHECKING:
    from gloo_stream.accumulate import StreamResult

__all__ = [
    "MISSING_MODEL_HINT",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ContentFilterError",
    "GlooError",
    "InvalidRequestError",
    "MalformedChunkError",
    "MissingCredentialsError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "StreamDisconnectedError",
    "StreamError",
    "StreamTimeoutError",
    "TruncatedStreamError",
    "UpstreamStreamError",
    "error_from_response",
    "names_missing_model",
    "parse_retry_after",
]

BODY_EXCERPT = 200
MISSING_MODEL_HINT = "this server requires a model: pass model=NAME or set GLOO_MODEL"
# How servers other than FastAPI ones say it: Ollama "model is required", OpenAI "you must
# provide a model parameter". `\bmodel\b` does not match inside model_family.
_MISSING_MODEL_TEXT = re.compile(
    r"\bmodel\b[^.\n]{0,40}?\b(?:required|missing|must be (?:set|given|provided|specified))\b"
    r"|\b(?:missing|provide|specify)\b[^.\n]{0,20}?\bmodel\b",
    re.IGNORECASE,
)


class GlooError(Exception):
    """Base of every error gloo-stream raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(GlooError):
    """A setting is missing or invalid; the message names the variable to fix."""


class InvalidRequestError(GlooError, ValueError):
    """A request parameter is invalid; caught before anything is sent."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class MissingCredentialsError(ConfigurationError):
    """No credentials were configured."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "No Gloo credentials found: set GLOO_API_KEY, or GLOO_CLIENT_ID and "
            "GLOO_CLIENT_SECRET (in the environment or a .env file)."
        )


class APIError(GlooError):
    """The request failed before any of the answer arrived."""


class APIConnectionError(APIError):
    """The server could not be reached, or dropped the connection before answering."""


class APITimeoutError(APIConnectionError):
    """Connecting, or waiting for the response to start, took longer than allowed."""


class APIStatusError(APIError):
    """The server answered with an error status before streaming."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.headers: dict[str, str] = dict(headers or {})


class BadRequestError(APIStatusError):
    """400/422: the request was invalid; ``detail`` holds the server's explanation.

    ``detail`` is the body's ``detail`` (or the whole body) as decoded JSON, with every
    secret the client sent redacted, as in ``body`` and the message.

    ``missing_model`` is True when the server says the request lacks a ``model`` (servers
    such as vLLM or Ollama require one where Gloo auto-routes); the message then ends with
    ``MISSING_MODEL_HINT``.
    """

    def __init__(
        self, message: str, *, detail: Any = None, missing_model: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.detail = detail
        self.missing_model = missing_model


class AuthenticationError(APIStatusError):
    """401: credentials missing, invalid or expired."""


class PermissionDeniedError(APIStatusError):
    """403: the credentials are valid but may not do this."""


class NotFoundError(APIStatusError):
    """404: wrong URL or unknown model."""


class RateLimitError(APIStatusError):
    """429: too many requests; ``retry_after`` is the wait the server asked for, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """408, 409 or 5xx: a transient server-side failure."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class StreamError(GlooError):
    """The stream began but failed; ``partial`` is what arrived before it did."""

    def __init__(self, message: str, *, partial: StreamResult) -> None:
        super().__init__(message)
        self.partial = partial


class StreamDisconnectedError(StreamError):
    """The connection dropped mid-stream."""


class StreamTimeoutError(StreamError):
    """The stream went silent for longer than the read (idle) timeout."""


class TruncatedStreamError(StreamError):
    """The stream ended cleanly but without a finish_reason or ``[DONE]``."""


class MalformedChunkError(StreamError):
    """An event's data was not a valid chat-completion chunk."""


class UpstreamStreamError(StreamError):
    """The server reported ``finish_reason: "error"`` mid-stream (e.g. PROVIDER_TIMEOUT)."""

    def __init__(
        self, message: str, *, partial: StreamResult, error: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message, partial=partial)
        self.error: dict[str, Any] = dict(error or {})
        self.code = self.error.get("code")
        self.name = self.error.get("name")


class ContentFilterError(StreamError):
    """The answer was stopped by a content filter; terminal, never retried."""


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, ``Retry-After`` or ``X-RateLimit-Reset``.

    ``now`` is the current Unix time, used for HTTP dates and epoch reset stamps.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    ms = _number(lower.get("retry-after-ms"))
    if ms is not None:
        return max(0.0, ms / 1000)
    value = lower.get("retry-after")
    if value is not None:
        seconds = _number(value)
        if seconds is not None:
            return max(0.0, seconds)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None and when.tzinfo is not None:
            return max(0.0, when.timestamp() - now)
    reset = _number(lower.get("x-ratelimit-reset"))
    if reset is not None:
        # Servers send either a delay in seconds or an epoch stamp (seconds or milliseconds).
        if reset > 1e12:
            return max(0.0, reset / 1000 - now)
        if reset > 1e9:
            return max(0.0, reset - now)
        return max(0.0, reset)
    return None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None


def error_from_response(
    status_code: int,
    body: bytes | str,
    headers: Mapping[str, str],
    *,
    now: float,
    redactor: Redactor = NO_SECRETS,
) -> APIStatusError:
    """Map an error answer received before the stream to the matching exception.

    ``redactor`` holds the secrets the request carried (key, token, client secret): a
    server that echoes them back in its body finds them redacted in the message, ``body``
    and ``detail``. The message quotes the body's first 200 characters, controls removed.
    """
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = redactor.text(raw)
    excerpt = redactor.text(strip_controls(text))[:BODY_EXCERPT]
    common: dict[str, Any] = {"status_code": status_code, "body": text, "headers": headers}
    if status_code == 401:
        return AuthenticationError(
            "Authentication failed (401): Invalid or expired token", **common
        )
    if status_code == 403:
        return PermissionDeniedError(
            "Authorization failed (403): Insufficient permissions", **common
        )
    if status_code == 429:
        return RateLimitError(
            "Rate limit exceeded (429): Too many requests",
            retry_after=parse_retry_after(headers, now),
            **common,
        )
    message = f"API error ({status_code}): {excerpt}"
    if status_code in (400, 422):
        detail = redactor.value(_detail(text))
        missing = names_missing_model(detail, text)
        if missing:
            message = f"{message} ({MISSING_MODEL_HINT})"
        return BadRequestError(message, detail=detail, missing_model=missing, **common)
    if status_code == 404:
        return NotFoundError(message, **common)
    if status_code in (408, 409) or status_code >= 500:
        return ServerError(message, retry_after=parse_retry_after(headers, now), **common)
    return APIStatusError(message, **common)


def names_missing_model(detail: Any, text: str) -> bool:
    """True when a validation answer says the request has no ``model``.

    FastAPI-style ``detail`` lists are read exactly (``type: missing`` at ``loc`` ending in
    ``model``); any other body is searched for a sentence saying a model is required.
    """
    if isinstance(detail, list) and detail and all(isinstance(e, Mapping) for e in detail):
        return any(
            entry.get("type") == "missing"
            and isinstance(loc := entry.get("loc"), list)
            and bool(loc)
            and loc[-1] == "model"
            for entry in detail
        )
    return _MISSING_MODEL_TEXT.search(text[:2000]) is not None


def _detail(text: str) -> Any:
    try:
        parsed = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text
    if isinstance(parsed, dict):
        return parsed.get("detail", parsed)
    return parsed
