"""How the command reports a failure: one or two lines a person can act on, and an exit status.

The messages themselves come from the core's exceptions (they carry the tutorial's wording);
this module only adds the fix to try and picks the exit status, so scripts can tell a usage
mistake from bad credentials, a rate limit, or an upstream failure.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pydantic import ValidationError

from gloo_stream.errors import (
    MISSING_MODEL_HINT,
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContentFilterError,
    GlooError,
    InvalidRequestError,
    MissingCredentialsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StreamError,
)

__all__ = ["EXIT_STATUS_HELP", "ExitStatus", "Explanation", "explain", "explain_settings"]


class ExitStatus(enum.IntEnum):
    """The command's exit statuses (listed in ``--help``)."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    AUTH = 3
    RATE_LIMIT = 4
    UPSTREAM = 5
    INTERRUPTED = 130


EXIT_STATUS_HELP = (
    "Exit status: 0 ok · 1 unexpected failure · 2 usage (bad option, value or setting; "
    "nothing was sent) · 3 authentication or permission · 4 rate limited · "
    "5 upstream or stream failure (a partial answer is kept) · 130 interrupted (Ctrl-C)"
)


@dataclass(frozen=True, slots=True)
class Explanation:
    """What to print (first line: what happened; second: what to do) and how to exit."""

    status: ExitStatus
    lines: list[str]


def explain(error: GlooError, *, auth_mode: str = "none") -> Explanation:
    """The explanation of any error the core raises."""
    message = error.message
    if isinstance(error, MissingCredentialsError):
        return Explanation(
            ExitStatus.AUTH,
            [message, "Or add --offline to try the built-in simulator without credentials."],
        )
    if isinstance(error, InvalidRequestError | ConfigurationError):
        return Explanation(ExitStatus.USAGE, [message])
    if isinstance(error, AuthenticationError):
        return Explanation(ExitStatus.AUTH, [message, _auth_fix(auth_mode, message)])
    if isinstance(error, PermissionDeniedError):
        return Explanation(
            ExitStatus.AUTH,
            [message, "These credentials may not use this endpoint or model; check the plan."],
        )
    if isinstance(error, RateLimitError):
        return Explanation(ExitStatus.RATE_LIMIT, [message, _wait_hint(error.retry_after)])
    if isinstance(error, ContentFilterError):
        return Explanation(ExitStatus.UPSTREAM, [message, "Rephrase the prompt and try again."])
    if isinstance(error, StreamError):
        attempts = error.partial.attempts
        tried = f"Gave up after {attempts} attempts" if attempts > 1 else "Not retried"
        return Explanation(
            ExitStatus.UPSTREAM,
            [message, f"{tried}; try again in a moment (GLOO_MAX_RETRIES sets the retries)."],
        )
    if isinstance(error, NotFoundError):
        return Explanation(
            ExitStatus.UPSTREAM, [message, "Check GLOO_API_URL (or --api-url) and --model."]
        )
    if isinstance(error, BadRequestError) and error.missing_model:
        # The library's hint names model=; on the command line the fix is an option.
        return Explanation(
            ExitStatus.UPSTREAM,
            [
                message.removesuffix(f" ({MISSING_MODEL_HINT})"),
                "This server requires a model: add --model NAME, or set GLOO_MODEL=NAME "
                "(environment or .env).",
            ],
        )
    if isinstance(error, BadRequestError):
        return Explanation(
            ExitStatus.UPSTREAM, [message, "The server refused the request's fields."]
        )
    if isinstance(error, APIConnectionError):
        return Explanation(ExitStatus.UPSTREAM, [message])
    return Explanation(ExitStatus.UPSTREAM, [message, "Try again in a moment."])


def explain_settings(error: ValidationError) -> Explanation:
    """A setting from the environment or ``.env`` (or an option) has a bad value."""
    lines = []
    for problem in error.errors():
        name = ".".join(str(part) for part in problem["loc"]).upper()
        # The message only: the input could be a secret.
        msg = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{name}: {msg}" if name else msg)
    return Explanation(ExitStatus.USAGE, ["Invalid setting: " + "; ".join(lines)])


def _auth_fix(auth_mode: str, message: str) -> str:
    if "GLOO_CLIENT" in message:
        return "Copy both values again from the API Credentials page of Gloo AI Studio."
    if auth_mode == "api_key":
        return "Check GLOO_API_KEY (it may be revoked or mistyped); `gloo-stream auth` tests it."
    if auth_mode == "client_credentials":
        return "Check GLOO_CLIENT_ID and GLOO_CLIENT_SECRET; `gloo-stream auth` tests them."
    return "Set GLOO_API_KEY, or GLOO_CLIENT_ID and GLOO_CLIENT_SECRET."


def _wait_hint(retry_after: float | None) -> str:
    if retry_after is not None:
        return f"The server asks to wait {retry_after:.0f} s; try again after that."
    return "Wait a minute and try again; the limit is per key and depends on the plan."
