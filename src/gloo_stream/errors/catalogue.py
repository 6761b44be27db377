"""The exception hierarchy, each class its own catalogue entry.

Before the stream, errors are ``APIError``s named for what happened (``RateLimitError``...).
During the stream they are ``StreamError``s, and every one carries ``partial``: the
``StreamResult`` received so far, flagged ``interrupted``, so no answer is lost.

Each class also carries, as class attributes, what every face reads about it: its stable
``error_code``, the command's ``exit_status`` and one-line ``advice``, and the proxy's
``http_status`` / ``proxy_code`` / ``proxy_type``. The CLI, the proxy and the protocol look
them up here instead of keeping tables of their own.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from gloo_stream.accumulate import StreamResult

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ContentFilterError",
    "ExitStatus",
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
]


class ExitStatus(enum.IntEnum):
    """The ``gloo-stream`` command's exit statuses (listed in its ``--help``)."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    AUTH = 3
    RATE_LIMIT = 4
    UPSTREAM = 5
    INTERRUPTED = 130


class GlooError(Exception):
    """Base of every error gloo-stream raises.

    The class attributes are this error's catalogue entry (subclasses override them):
    ``error_code`` a stable machine-readable name (for a ``StreamError``, what the partial
    result's ``error`` records); ``exit_status`` the command's; ``advice`` the command's
    one line on what to do ("" when the message says it all; ``advise`` adds what only the
    instance knows); ``http_status``, ``proxy_code`` and ``proxy_type`` what the proxy answers.
    """

    error_code: ClassVar[str] = "gloo_error"
    exit_status: ClassVar[ExitStatus] = ExitStatus.UPSTREAM
    advice: ClassVar[str] = "Try again in a moment."
    http_status: ClassVar[int] = 500
    proxy_code: ClassVar[str] = "internal_error"
    proxy_type: ClassVar[str] = "server_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def advise(self, *, auth_mode: str = "none") -> str:
        """The one line saying what to do about this error ("" when there is none).

        ``auth_mode`` is the settings' (``api_key``, ``client_credentials`` or ``none``).
        """
        return self.advice


class ConfigurationError(GlooError):
    """A setting is missing or invalid; the message names the variable to fix."""

    error_code = "configuration"
    exit_status = ExitStatus.USAGE
    advice = ""


class InvalidRequestError(GlooError, ValueError):
    """A request parameter is invalid; caught before anything is sent."""

    error_code = "invalid_request"
    exit_status = ExitStatus.USAGE
    advice = ""
    http_status = 400
    proxy_code = "invalid_request"
    proxy_type = "invalid_request_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class MissingCredentialsError(ConfigurationError):
    """No credentials were configured."""

    error_code = "missing_credentials"
    exit_status = ExitStatus.AUTH
    advice = "Or add --offline to try the built-in simulator without credentials."
    http_status = 503
    proxy_code = "upstream_not_configured"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "No Gloo credentials found: set GLOO_API_KEY, or GLOO_CLIENT_ID and "
            "GLOO_CLIENT_SECRET (in the environment or a .env file)."
        )


class APIError(GlooError):
    """The request failed before any of the answer arrived."""

    error_code = "api_error"


class APIConnectionError(APIError):
    """The server could not be reached, or dropped the connection before answering."""

    error_code = "unreachable"
    advice = ""
    http_status = 502
    proxy_code = "upstream_unreachable"
    proxy_type = "upstream_error"


class APITimeoutError(APIConnectionError):
    """Connecting, or waiting for the response to start, took longer than allowed."""

    error_code = "api_timeout"
    http_status = 504
    proxy_code = "upstream_timeout"


class APIStatusError(APIError):
    """The server answered with an error status before streaming."""

    # The proxy's answer to a status it has no class for; 5xx ones it calls upstream_error.
    error_code = "status_error"
    http_status = 502
    proxy_code = "upstream_refused"
    proxy_type = "upstream_error"

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
    ``gloo_stream.errors.MISSING_MODEL_HINT``.
    """

    error_code = "bad_request"
    advice = "The server refused the request's fields."
    http_status = 400
    proxy_code = "upstream_bad_request"
    proxy_type = "invalid_request_error"

    def __init__(
        self, message: str, *, detail: Any = None, missing_model: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.detail = detail
        self.missing_model = missing_model

    def advise(self, *, auth_mode: str = "none") -> str:
        """The refused fields, or (the library's hint names ``model=``) the command's option."""
        if self.missing_model:
            return (
                "This server requires a model: add --model NAME, or set GLOO_MODEL=NAME "
                "(environment or .env)."
            )
        return self.advice


class AuthenticationError(APIStatusError):
    """401: credentials missing, invalid or expired."""

    error_code = "authentication_failed"
    exit_status = ExitStatus.AUTH
    advice = "Set GLOO_API_KEY, or GLOO_CLIENT_ID and GLOO_CLIENT_SECRET."
    # Never the upstream's reason: it is about the proxy's own credentials.
    proxy_code = "upstream_auth_failed"

    def advise(self, *, auth_mode: str = "none") -> str:
        """Which credentials to check, for the way this client authenticates."""
        if "GLOO_CLIENT" in self.message:
            return "Copy both values again from the API Credentials page of Gloo AI Studio."
        if auth_mode == "api_key":
            return (
                "Check GLOO_API_KEY (it may be revoked or mistyped); `gloo-stream auth` tests it."
            )
        if auth_mode == "client_credentials":
            return "Check GLOO_CLIENT_ID and GLOO_CLIENT_SECRET; `gloo-stream auth` tests them."
        return self.advice


class PermissionDeniedError(APIStatusError):
    """403: the credentials are valid but may not do this."""

    error_code = "permission_denied"
    exit_status = ExitStatus.AUTH
    advice = "These credentials may not use this endpoint or model; check the plan."
    proxy_code = "upstream_auth_failed"


class NotFoundError(APIStatusError):
    """404: wrong URL or unknown model."""

    error_code = "not_found"
    advice = "Check GLOO_API_URL (or --api-url) and --model."
    http_status = 404
    proxy_code = "upstream_not_found"
    proxy_type = "invalid_request_error"


class RateLimitError(APIStatusError):
    """429: too many requests; ``retry_after`` is the wait the server asked for, in seconds."""

    error_code = "rate_limited"
    exit_status = ExitStatus.RATE_LIMIT
    advice = "Wait a minute and try again; the limit is per key and depends on the plan."
    http_status = 429
    proxy_code = "upstream_rate_limited"
    proxy_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def advise(self, *, auth_mode: str = "none") -> str:
        """The wait the server asked for, when it named one."""
        if self.retry_after is not None:
            return f"The server asks to wait {self.retry_after:.0f} s; try again after that."
        return self.advice


class ServerError(APIStatusError):
    """408, 409 or 5xx: a transient server-side failure."""

    # A 408 the proxy answers as 504 upstream_timeout (the provider timed out).
    error_code = "server_error"
    proxy_code = "upstream_error"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class StreamError(GlooError):
    """The stream began but failed; ``partial`` is what arrived before it did."""

    error_code = "interrupted"
    advice = "Try again in a moment (GLOO_MAX_RETRIES sets the retries)."
    http_status = 502
    proxy_code = "upstream_error"
    proxy_type = "upstream_error"

    def __init__(self, message: str, *, partial: StreamResult) -> None:
        super().__init__(message)
        self.partial = partial

    def advise(self, *, auth_mode: str = "none") -> str:
        """Whether it was retried, and how to retry it."""
        attempts = self.partial.attempts
        tried = f"Gave up after {attempts} attempts" if attempts > 1 else "Not retried"
        return f"{tried}; {self.advice[:1].lower()}{self.advice[1:]}"


class StreamDisconnectedError(StreamError):
    """The connection dropped mid-stream."""

    error_code = "disconnected"
    proxy_code = "upstream_disconnected"


class StreamTimeoutError(StreamError):
    """The stream went silent for longer than the read (idle) timeout."""

    error_code = "timeout"
    proxy_code = "upstream_timeout"


class TruncatedStreamError(StreamError):
    """The stream ended cleanly but without a finish_reason or ``[DONE]``."""

    error_code = "truncated"
    proxy_code = "upstream_truncated"


class MalformedChunkError(StreamError):
    """An event's data was not a valid chat-completion chunk."""

    error_code = "malformed_chunk"
    proxy_code = "upstream_malformed"


class UpstreamStreamError(StreamError):
    """The server reported ``finish_reason: "error"`` mid-stream (e.g. PROVIDER_TIMEOUT)."""

    # The partial records the upstream's error name; this when it names none. ``code``
    # and ``name`` (instance attributes) are the upstream's own, as in its error object.
    error_code = "error"

    def __init__(
        self, message: str, *, partial: StreamResult, error: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message, partial=partial)
        self.error: dict[str, Any] = dict(error or {})
        self.code = self.error.get("code")
        self.name = self.error.get("name")


class ContentFilterError(StreamError):
    """The answer was stopped by a content filter; terminal, never retried."""

    error_code = "content_filter"
    advice = "Rephrase the prompt and try again."
    http_status = 400
    proxy_code = "content_filter"
    proxy_type = "content_filter"

    def advise(self, *, auth_mode: str = "none") -> str:
        """Retrying the same prompt would be stopped again."""
        return self.advice
