"""``/v1``: OpenAI's chat-completions dialect over Gloo, so OpenAI clients can use the proxy.

Streaming answers are Gloo's chunks relayed as they are (they already are OpenAI chunks,
with a few extra fields clients ignore) followed by ``data: [DONE]``. A non-streamed request
is streamed upstream all the same and folded into one ``chat.completion`` object.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import msgspec

from gloo_stream.accumulate import StreamResult
from gloo_stream.errors import InvalidRequestError
from gloo_stream.proxy import failures
from gloo_stream.proxy.failures import RequestRefused
from gloo_stream.proxy.routes.body_admission import STREAM_FIELDS, upstream_body
from gloo_stream.proxy.settings import ProxySettings
from gloo_stream.request import check_param

__all__ = [
    "AUTO_MODELS",
    "DEFAULT_MODEL",
    "OPENAI_FIELDS",
    "completion_body",
    "models_body",
    "translate_request",
]

# What OpenAI clients send that the proxy understands; Gloo's own routing fields are
# accepted too (``extra_body`` in the OpenAI SDK).
OPENAI_FIELDS = STREAM_FIELDS | {"max_completion_tokens", "stream_options", "n", "user"}
# Model names that ask Gloo to choose (the SDK requires some model name), and the one that
# asks for the proxy's own default (GLOO_MODEL or GLOO_MODEL_FAMILY when set, else auto).
AUTO_MODELS = frozenset({"auto", "gloo-auto"})
DEFAULT_MODEL = "default"
_encoder = msgspec.json.Encoder()


def translate_request(
    data: Mapping[str, Any], settings: ProxySettings
) -> tuple[dict[str, Any], bool]:
    """The upstream body for an OpenAI-style request, and whether the caller wants a stream."""
    wants_stream = _check_openai_fields(data)
    body = {k: v for k, v in data.items() if k in STREAM_FIELDS}
    if "max_completion_tokens" in data:
        body["max_tokens"] = _max_completion_tokens(data)
    _route(body)
    body.pop("stream", None)
    try:
        return upstream_body(body, settings), wants_stream
    except RequestRefused as exc:
        if exc.failure.param == "max_tokens" and "max_completion_tokens" in data:
            # The cap refused the value the caller sent under its OpenAI name: say that name.
            failure = failures.renamed_param(exc.failure, "max_tokens", "max_completion_tokens")
            raise RequestRefused(failure) from None
        raise


def _check_openai_fields(data: Mapping[str, Any]) -> bool:
    """Refuse what only OpenAI's dialect has and the proxy cannot honour; whether to stream."""
    unknown = sorted(set(data) - OPENAI_FIELDS)
    if unknown:
        raise RequestRefused(failures.unsupported_fields(unknown, OPENAI_FIELDS))
    wants_stream = data.get("stream", False)
    if not isinstance(wants_stream, bool):
        raise RequestRefused(failures.wrong_type("stream", "true or false"))
    n = data.get("n")
    n = 1 if n is None else n  # null means not given, as the README says
    if n != 1 or isinstance(n, bool):
        raise RequestRefused(failures.only_one_choice())
    options = data.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise RequestRefused(failures.wrong_type("stream_options", "an object"))
    user = data.get("user")
    if user is not None and not isinstance(user, str):
        raise RequestRefused(failures.wrong_type("user", "a string"))
    return wants_stream


def _max_completion_tokens(data: Mapping[str, Any]) -> Any:
    """OpenAI's newer name for ``max_tokens``, checked under that name."""
    if "max_tokens" in data:
        raise RequestRefused(failures.max_tokens_twice())
    value = data["max_completion_tokens"]
    try:
        if value is not None:  # null means not given, as for every other field
            check_param("max_tokens", value, label="max_completion_tokens")
    except InvalidRequestError as exc:
        raise RequestRefused(failures.invalid_request(exc)) from None
    return value


def _route(body: dict[str, Any]) -> None:
    """OpenAI clients must name a model: ``default`` and ``auto`` name a routing instead."""
    model = body.get("model")
    name = model.strip().lower() if isinstance(model, str) else None
    if name == DEFAULT_MODEL:
        del body["model"]  # naming no routing: upstream_body fills in the proxy's default
    elif name in AUTO_MODELS:
        del body["model"]
        if "model_family" not in body:
            body.setdefault("auto_routing", True)


def completion_body(result: StreamResult, *, created: int | None = None) -> bytes:
    """One ``chat.completion`` object for a whole answer."""
    message: dict[str, Any] = {"role": "assistant", "content": result.text}
    if result.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id or f"call_{call.index}",
                "type": call.type,
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in result.tool_calls
        ]
        if not result.text:
            message["content"] = None
    completion: dict[str, Any] = {
        "id": result.id or "chatcmpl-gloo",
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": result.model or "gloo",
        "choices": [
            {"index": 0, "message": message, "finish_reason": result.finish_reason or "stop"}
        ],
        "usage": msgspec.to_builtins(result.usage) if result.usage is not None else None,
    }
    if result.citations or result.sources_returned is not None:
        # A grounded answer's sources, as in the streamed form: every item's own fields.
        completion["citations"] = [citation.raw for citation in result.citations]
        completion["sources_returned"] = result.sources_returned
    return _encoder.encode(completion)


def models_body(settings: ProxySettings) -> bytes:
    """``GET /v1/models``: the models a caller may name (``auto`` lets Gloo choose).

    ``GLOO_MODEL``, when set, comes first after ``auto``: it is what ``default`` means.
    """
    default = [settings.gloo_model] if settings.gloo_model else []
    names = ["auto", *default, *sorted(settings.allowed_models - set(default))]
    return _encoder.encode(
        {
            "object": "list",
            "data": [{"id": n, "object": "model", "created": 0, "owned_by": "gloo"} for n in names],
        }
    )
