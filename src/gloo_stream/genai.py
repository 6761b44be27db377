"""OpenTelemetry's GenAI semantic conventions for one chat completion, as plain data.

Sans-IO and free of OpenTelemetry itself: these functions turn a request body and a
``StreamResult`` into the attribute names and values the conventions define (``gen_ai.*``),
so the library's client spans, the proxy's server spans and its metrics say the same thing
in the same words. Prompts and answers are only ever turned into attributes by the two
``*_messages`` functions, which callers use only when content recording is on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from gloo_stream.accumulate import StreamResult

__all__ = [
    "OPERATION",
    "PROVIDER",
    "input_messages",
    "output_messages",
    "request_attributes",
    "requested_model",
    "result_attributes",
    "span_name",
]

OPERATION = "chat"
PROVIDER = "gloo"
"""``gen_ai.provider.name``: the API spoken, whichever server answers it."""
AUTO_MODEL = "auto"
"""``gen_ai.request.model`` when the call lets Gloo choose (as ``/v1/models`` lists it)."""

_encoder = msgspec.json.Encoder()


def requested_model(body: Mapping[str, Any]) -> str:
    """The model a request names, or ``"auto"`` when Gloo routes it (auto or by family)."""
    model = body.get("model")
    return model if isinstance(model, str) and model else AUTO_MODEL


def span_name(body: Mapping[str, Any]) -> str:
    """``"chat {model}"``, the conventions' span name for an inference call."""
    return f"{OPERATION} {requested_model(body)}"


def request_attributes(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the conventions record about a request before it is sent."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": OPERATION,
        "gen_ai.provider.name": PROVIDER,
        "gen_ai.request.model": requested_model(body),
    }
    for name in ("max_tokens", "temperature"):
        value = body.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[f"gen_ai.request.{name}"] = value
    family = body.get("model_family")
    if isinstance(family, str):
        attributes["gloo.request.model_family"] = family
    if body.get("stream") is not None:
        attributes["gen_ai.request.stream"] = bool(body.get("stream"))
    return attributes


def result_attributes(result: StreamResult, *, since: float = 0.0) -> dict[str, Any]:
    """What the conventions record about an answer (whole or partial).

    Usage appears only as the upstream reported it (never estimated: that is the proxy's
    ``gloo.usage.*``). ``since`` is how many seconds after the result's own start the span
    began (a retry's attempt), so time to first chunk is measured from the span's start.
    """
    attributes: dict[str, Any] = {}
    if result.model:
        attributes["gen_ai.response.model"] = result.model
    if result.id:
        attributes["gen_ai.response.id"] = result.id
    if result.finish_reason:
        attributes["gen_ai.response.finish_reasons"] = (result.finish_reason,)
    usage = result.usage
    if usage is not None:
        if usage.prompt_tokens is not None:
            attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
        if usage.completion_tokens is not None:
            attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
    if result.ttft_ms is not None:
        first_chunk = max(0.0, result.ttft_ms / 1000 - since)
        attributes["gen_ai.response.time_to_first_chunk"] = round(first_chunk, 6)
    if result.provider:
        attributes["gloo.response.provider"] = result.provider
    return attributes


def input_messages(messages: Sequence[Mapping[str, Any]]) -> str:
    """``gen_ai.input.messages``: the prompt as the conventions' JSON (content recording only)."""
    shaped = []
    for message in messages:
        content = message.get("content")
        parts: list[dict[str, Any]] = []
        if isinstance(content, str):
            parts.append({"type": "text", "content": content})
        elif isinstance(content, Sequence):
            parts.extend(
                {"type": "text", "content": part["text"]}
                for part in content
                if isinstance(part, Mapping) and isinstance(part.get("text"), str)
            )
        shaped.append({"role": message.get("role"), "parts": parts})
    return _encoder.encode(shaped).decode()


def output_messages(result: StreamResult) -> str:
    """``gen_ai.output.messages``: the answer as the conventions' JSON (content recording only)."""
    parts: list[dict[str, Any]] = []
    if result.text:
        parts.append({"type": "text", "content": result.text})
    parts.extend(
        {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments}
        for call in result.tool_calls
    )
    message = {"role": "assistant", "parts": parts, "finish_reason": result.finish_reason or ""}
    return _encoder.encode([message]).decode()
