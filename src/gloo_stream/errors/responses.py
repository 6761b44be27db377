"""The sans-IO mapping from an HTTP error answer (status, body, headers) to its exception."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from gloo_stream.errors.catalogue import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from gloo_stream.redaction import NO_SECRETS, Redactor, strip_controls

__all__ = [
    "BODY_EXCERPT",
    "MISSING_MODEL_HINT",
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
