"""Checks a request passes before anything goes upstream: body, fields, caps (keys: client_auth).

The field rules themselves (roles, ranges, routing) live in ``gloo_stream.request``; this
module adds only what is the proxy's own policy: which fields a caller may send at all, the
body size limit, and the operator's caps on ``max_tokens``, models and model families.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from gloo_stream.config import ProxySettings
from gloo_stream.errors import InvalidRequestError
from gloo_stream.proxy.failures import ProxyFailure
from gloo_stream.request import build_chat_request, check_param, with_defaults

__all__ = [
    "STREAM_FIELDS",
    "RequestRefused",
    "header",
    "read_json_body",
    "upstream_body",
]

# The fields of Gloo's completions API a caller may set through /api/stream.
STREAM_FIELDS = frozenset(
    {
        "messages",
        "auto_routing",
        "model",
        "model_family",
        "tradition",
        "stream",
        "temperature",
        "max_tokens",
        "tools",
        "tool_choice",
    }
)

Scope = Mapping[str, Any]


class RequestRefused(Exception):  # noqa: N818 - names the outcome, as httpx does
    """The request is refused before anything is sent upstream."""

    def __init__(self, failure: ProxyFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def refuse(status: int, message: str, code: str, param: str | None = None) -> RequestRefused:
    """A refusal of the caller's request (a 4xx)."""
    kind = "invalid_request_error" if status in (400, 413, 415) else "authentication_error"
    return RequestRefused(ProxyFailure(status, message, kind, code, param))


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (``name`` in lower case)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def read_json_body(scope: Scope, receive: Any, limit: int) -> dict[str, Any]:
    """The request body as a JSON object; refuses wrong types, bad JSON and oversize bodies."""
    content_type = (header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
    if content_type != b"application/json":
        raise refuse(415, "Send the request as JSON (Content-Type: application/json).", "bad_type")
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ConnectionAbortedError("the client went away while sending its request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    try:
        data = msgspec.json.decode(b"".join(parts))
    except (msgspec.DecodeError, ValueError, RecursionError):
        # ValueError: msgspec lets invalid UTF-8 through as UnicodeDecodeError.
        raise refuse(400, "The body is not valid UTF-8 JSON.", "invalid_json") from None
    if not isinstance(data, dict):
        raise refuse(400, "The body must be a JSON object with a messages list.", "not_an_object")
    return data


def _too_large(limit: int) -> RequestRefused:
    return refuse(413, f"The body is larger than this proxy accepts ({limit} bytes).", "too_large")


def upstream_body(
    data: Mapping[str, Any], settings: ProxySettings, allowed: frozenset[str] = STREAM_FIELDS
) -> dict[str, Any]:
    """The validated body to send upstream (``stream: true`` forced, caps applied).

    Every field's type and value are checked by ``gloo_stream.request`` first, so the
    proxy's own caps and allow-lists only ever see values of the right type.
    """
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise refuse(
            400,
            f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}.",
            "unknown_field",
            unknown[0],
        )
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise refuse(
            400,
            "messages must be a non-empty list of {role, content} objects.",
            "invalid_messages",
            "messages",
        )
    params = {k: v for k, v in data.items() if k not in ("messages", "stream")}
    # Defaults first, so the operator's allow-lists judge GLOO_MODEL like a caller's model.
    params = with_defaults(params, settings.request_defaults)
    try:
        check_param("stream", data.get("stream", True))
        body = build_chat_request(messages, stream=True, **params)
    except InvalidRequestError as exc:
        raise refuse(400, exc.message, "invalid_request", exc.field) from None
    _apply_caps(body, settings)
    return body


def _apply_caps(body: dict[str, Any], settings: ProxySettings) -> None:
    cap = settings.proxy_max_tokens
    max_tokens = body.get("max_tokens")
    if cap is not None:
        if max_tokens is None:
            body["max_tokens"] = cap
        elif max_tokens > cap:
            raise refuse(
                400, f"max_tokens is capped at {cap} by this proxy.", "max_tokens_cap", "max_tokens"
            )
    model, models = body.get("model"), settings.allowed_models
    if model is not None and models and model not in models:
        raise refuse(
            400,
            f"Model {model[:100]!r} is not allowed here; allowed: {', '.join(sorted(models))}.",
            "model_not_allowed",
            "model",
        )
    family, families = body.get("model_family"), settings.allowed_families
    if family is not None and families and family not in families:
        raise refuse(
            400,
            f"Model family {family[:100]!r} is not allowed here; "
            f"allowed: {', '.join(sorted(families))}.",
            "model_family_not_allowed",
            "model_family",
        )
