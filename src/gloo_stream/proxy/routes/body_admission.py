"""What a request's body must pass before anything goes upstream: type, size, fields, caps.

The field rules themselves (roles, ranges, routing) live in ``gloo_stream.request``; this
module adds only what is the proxy's own policy: which fields a caller may send at all, the
body size limit, and the operator's caps on ``max_tokens``, models, model families and the
publishers grounded answers retrieve from (``PROXY_ALLOWED_PUBLISHERS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from gloo_stream.errors import InvalidRequestError
from gloo_stream.proxy import failures
from gloo_stream.proxy.asgi import Receive, Scope, header
from gloo_stream.proxy.failures import RequestRefused
from gloo_stream.proxy.settings import ProxySettings
from gloo_stream.request import build_chat_request, check_param, with_defaults, with_grounding

__all__ = ["STREAM_FIELDS", "read_json_body", "upstream_body"]

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
        "parallel_tool_calls",
        "response_format",
        "stream_options",
        # Gloo's grounded completions: such a body goes to the grounded upstream URL.
        "rag_publisher",
        "sources_limit",
        "include_citations",
    }
)


async def read_json_body(scope: Scope, receive: Receive, limit: int) -> dict[str, Any]:
    """The request body as a JSON object; refuses wrong types, bad JSON and oversize bodies."""
    content_type = (header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
    if content_type != b"application/json":
        raise RequestRefused(failures.bad_content_type())
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestRefused(failures.body_too_large(limit))
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ConnectionAbortedError("the client went away while sending its request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestRefused(failures.body_too_large(limit))
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    try:
        data = msgspec.json.decode(b"".join(parts))
    except (msgspec.DecodeError, ValueError, RecursionError):
        # ValueError: msgspec lets invalid UTF-8 through as UnicodeDecodeError.
        raise RequestRefused(failures.invalid_json()) from None
    if not isinstance(data, dict):
        raise RequestRefused(failures.not_an_object())
    return data


def upstream_body(data: Mapping[str, Any], settings: ProxySettings) -> dict[str, Any]:
    """The validated body to send upstream (``stream: true`` forced, caps applied).

    Every field's type and value are checked by ``gloo_stream.request`` first, so the
    proxy's own caps and allow-lists only ever see values of the right type.
    """
    unknown = sorted(set(data) - STREAM_FIELDS)
    if unknown:
        raise RequestRefused(failures.unknown_fields(unknown, STREAM_FIELDS))
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestRefused(failures.invalid_messages())
    params = {k: v for k, v in data.items() if k not in ("messages", "stream")}
    # Defaults first, so the operator's allow-lists judge GLOO_MODEL like a caller's model.
    params = with_defaults(params, settings.request_defaults)
    try:
        params = with_grounding(params, defaults=settings.grounding_defaults)
        check_param("stream", data.get("stream", True))
        body = build_chat_request(messages, stream=True, **params)
    except InvalidRequestError as exc:
        raise RequestRefused(failures.invalid_request(exc)) from None
    _apply_caps(body, settings)
    return body


def _apply_caps(body: dict[str, Any], settings: ProxySettings) -> None:
    cap = settings.proxy_max_tokens
    max_tokens = body.get("max_tokens")
    if cap is not None:
        if max_tokens is None:
            body["max_tokens"] = cap
        elif max_tokens > cap:
            raise RequestRefused(failures.max_tokens_capped(cap))
    model, models = body.get("model"), settings.allowed_models
    if model is not None and models and model not in models:
        raise RequestRefused(failures.model_not_allowed(model, models))
    family, families = body.get("model_family"), settings.allowed_families
    if family is not None and families and family not in families:
        raise RequestRefused(failures.family_not_allowed(family, families))
    publisher, publishers = body.get("rag_publisher"), settings.allowed_publishers
    if publisher is not None and publishers and publisher not in publishers:
        raise RequestRefused(failures.publisher_not_allowed(publisher, publishers))
