"""Build and validate a chat-completions request body (sans-IO; the client and proxy share it)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from gloo_stream.errors import InvalidRequestError

__all__ = [
    "MODEL_FAMILIES",
    "ROLES",
    "TOOL_CHOICES",
    "TRADITIONS",
    "build_chat_request",
    "names_routing",
    "normalize_messages",
    "with_defaults",
]

ROLES = frozenset({"system", "user", "assistant", "tool"})
MODEL_FAMILIES = frozenset({"openai", "anthropic", "google", "open source"})
TRADITIONS = frozenset({"evangelical", "catholic", "mainline", "not_faith_specific"})
TOOL_CHOICES = frozenset({"none", "auto", "required"})
ROUTING_FIELDS = ("auto_routing", "model", "model_family")


def normalize_messages(
    prompt_or_messages: str | Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """A prompt string becomes one user message; a message list is checked and copied."""
    if isinstance(prompt_or_messages, str):
        if not prompt_or_messages.strip():
            raise InvalidRequestError(
                "the prompt is empty: give some text to send", field="messages"
            )
        return [{"role": "user", "content": prompt_or_messages}]
    if not isinstance(prompt_or_messages, Sequence) or not prompt_or_messages:
        raise InvalidRequestError(
            "messages must be a non-empty list of {role, content} objects", field="messages"
        )
    messages: list[dict[str, Any]] = []
    for i, message in enumerate(prompt_or_messages):
        if not isinstance(message, Mapping):
            raise InvalidRequestError(
                f"messages[{i}] must be an object with role and content", field="messages"
            )
        role = message.get("role")
        if role not in ROLES:
            raise InvalidRequestError(
                f"messages[{i}].role must be one of {', '.join(sorted(ROLES))}, got {role!r}",
                field="messages",
            )
        content = message.get("content")
        if not (content is None or isinstance(content, str | list)):
            raise InvalidRequestError(f"messages[{i}].content must be a string", field="messages")
        if content is None and role != "assistant":
            raise InvalidRequestError(f"messages[{i}].content is missing", field="messages")
        messages.append(dict(message))
    return messages


def names_routing(params: Mapping[str, Any]) -> bool:
    """True when a call chooses its model: ``auto_routing: true``, a ``model`` or a family."""
    return any(params.get(name) for name in ROUTING_FIELDS)


def with_defaults(params: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the configured defaults filled in where the call gave none.

    A default ``model`` or ``model_family`` (``GLOO_MODEL``, ``GLOO_MODEL_FAMILY``) applies
    only to a call that names no routing, so a caller's own routing always wins. A default
    ``tradition`` (``GLOO_TRADITION``) is not routing: it applies to any call without one.
    """
    merged = {name: value for name, value in params.items() if value is not None}
    routed = names_routing(merged)
    for name, value in defaults.items():
        if value is None or name in merged or (routed and name in ROUTING_FIELDS):
            continue
        merged[name] = value
    return merged


def build_chat_request(
    prompt_or_messages: str | Sequence[Mapping[str, Any]],
    *,
    stream: bool = True,
    defaults: Mapping[str, Any] | None = None,
    **params: Any,
) -> dict[str, Any]:
    """The JSON body for one completion: validated, ``None`` values dropped, routing defaulted.

    ``defaults`` (``GlooSettings.request_defaults``) fill in what the call leaves out, per
    ``with_defaults``. When there is still no routing (``auto_routing``, ``model`` or
    ``model_family``), Gloo is asked to pick the model (``auto_routing: true``).
    """
    if defaults:
        params = with_defaults(params, defaults)
    body: dict[str, Any] = {"messages": normalize_messages(prompt_or_messages)}
    for name, value in params.items():
        if value is not None:
            _check_param(name, value)
            body[name] = value
    if not names_routing(body):
        body["auto_routing"] = True
    body["stream"] = stream
    return body


def _check_param(name: str, value: Any) -> None:
    if name == "auto_routing" and not isinstance(value, bool):
        raise InvalidRequestError("auto_routing must be true or false", field=name)
    if name == "model" and (not isinstance(value, str) or not value.strip()):
        raise InvalidRequestError(
            "model must be a model name such as gloo-openai-gpt-5-mini", field=name
        )
    if name == "model_family" and value not in MODEL_FAMILIES:
        raise InvalidRequestError(
            f"model_family must be one of {', '.join(sorted(MODEL_FAMILIES))}, got {value!r}",
            field=name,
        )
    if name == "tradition" and value not in TRADITIONS:
        raise InvalidRequestError(
            f"tradition must be one of {', '.join(sorted(TRADITIONS))}, got {value!r}", field=name
        )
    if name == "temperature" and not _number_between(value, 0, 2):
        raise InvalidRequestError(
            f"temperature must be a number from 0 to 2, got {value!r}", field=name
        )
    if name == "max_tokens" and (
        isinstance(value, bool) or not isinstance(value, int) or value < 1
    ):
        raise InvalidRequestError(
            f"max_tokens must be a whole number of at least 1, got {value!r}", field=name
        )
    if name == "tools" and not isinstance(value, list):
        raise InvalidRequestError("tools must be a list of OpenAI function tools", field=name)
    if name == "tool_choice" and not (value in TOOL_CHOICES or isinstance(value, Mapping)):
        raise InvalidRequestError(
            f"tool_choice must be none, auto, required or a function object, got {value!r}",
            field=name,
        )


def _number_between(value: Any, low: float, high: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and low <= value <= high
