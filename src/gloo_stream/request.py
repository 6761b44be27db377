"""Build and validate a chat-completions request body (sans-IO; the client and proxy share it).

Every field with a declared type is checked here, once, for the library and the proxy: a
value of the wrong type (a list where a string belongs, a string where a number does) is
an ``InvalidRequestError`` naming the field, never a ``TypeError`` from deeper down.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from gloo_stream.errors import InvalidRequestError
from gloo_stream.grounding import DEFAULT_PUBLISHER, is_grounded

__all__ = [
    "MODEL_FAMILIES",
    "ROLES",
    "TOOL_CHOICES",
    "TRADITIONS",
    "build_chat_request",
    "check_param",
    "names_routing",
    "normalize_messages",
    "with_defaults",
    "with_grounding",
]

ROLES = frozenset({"system", "user", "assistant", "tool"})
MODEL_FAMILIES = frozenset({"openai", "anthropic", "google", "open source"})
TRADITIONS = frozenset({"evangelical", "catholic", "mainline", "not_faith_specific"})
TOOL_CHOICES = frozenset({"none", "auto", "required"})
ROUTING_FIELDS = ("auto_routing", "model", "model_family")
_SHOWN = 60  # characters of a refused value quoted back in the message


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _choice(value: Any, choices: frozenset[str]) -> bool:
    # isinstance first: a list or dict is unhashable, and `in` a frozenset would raise.
    return isinstance(value, str) and value in choices


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
        problem = _message_problem(message)
        if problem is not None:
            raise InvalidRequestError(f"messages[{i}]{problem}", field="messages")
        messages.append(dict(cast("Mapping[str, Any]", message)))
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


def with_grounding(
    params: Mapping[str, Any],
    *,
    grounded: bool | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``params`` with the grounded fields settled: ``rag_publisher`` set when grounded.

    ``grounded=False`` drops every grounded field (also a ``GLOO_RAG_PUBLISHER`` default);
    ``True`` asks for the default publisher (``GlooGrounded``) unless one is named; None
    (not said) is grounded when ``rag_publisher``, ``sources_limit`` or
    ``include_citations: true`` is given, else when
    ``defaults`` (``GLOO_RAG_PUBLISHER``, ``GLOO_SOURCES_LIMIT``) say so.
    """
    if grounded is not None and not isinstance(grounded, bool):
        raise InvalidRequestError(
            f"grounded must be true or false, got {_shown(grounded)}", field="grounded"
        )
    merged = dict(params)
    if grounded is False:
        for name in ("rag_publisher", "sources_limit", "include_citations"):
            merged.pop(name, None)
        return merged
    defaults = {k: v for k, v in (defaults or {}).items() if v is not None}
    own = is_grounded(merged)
    if not (grounded or own or defaults):
        return merged
    for name, value in defaults.items():
        if merged.get(name) is None:
            merged[name] = value
    if merged.get("rag_publisher") is None:
        merged["rag_publisher"] = DEFAULT_PUBLISHER
    return merged


def _message_problem(message: Any) -> str | None:
    """What is wrong with one message (said after ``messages[i]``), or None."""
    if not isinstance(message, Mapping):
        return " must be an object with role and content"
    role = message.get("role")
    if not _choice(role, ROLES):
        return f".role must be one of {', '.join(sorted(ROLES))}, got {_shown(role)}"
    content = message.get("content")
    if content is None:
        if role != "assistant":
            return ".content is missing"
    elif isinstance(content, list):
        for j, part in enumerate(content):
            problem = _part_problem(part)
            if problem is not None:
                return f".content[{j}]{problem}"
    elif not isinstance(content, str):
        return f".content must be a string or a list of content parts, got {_shown(content)}"
    for name in ("name", "tool_call_id"):
        value = message.get(name)
        if value is not None and not isinstance(value, str):
            return f".{name} must be a string, got {_shown(value)}"
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            return f".tool_calls must be a list, got {_shown(calls)}"
        for j, call in enumerate(calls):
            problem = _call_problem(call)
            if problem is not None:
                return f".tool_calls[{j}]{problem}"
    return None


def _part_problem(part: Any) -> str | None:
    if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
        return " must be an object with a type"
    if part["type"] == "text" and not isinstance(part.get("text"), str):
        return f".text must be a string, got {_shown(part.get('text'))}"
    return None


def _call_problem(call: Any) -> str | None:
    if not isinstance(call, Mapping):
        return " must be an object with type and function"
    function = call.get("function")
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        return ".function must be an object with a name"
    arguments = function.get("arguments")
    if arguments is not None and not isinstance(arguments, str):
        return f".function.arguments must be a JSON string, got {_shown(arguments)}"
    for name in ("id", "type"):
        value = call.get(name)
        if value is not None and not isinstance(value, str):
            return f".{name} must be a string, got {_shown(value)}"
    return None


def _tool_problem(tool: Any) -> str | None:
    if not isinstance(tool, Mapping) or tool.get("type") != "function":
        return ' must be an object with "type": "function"'
    function = tool.get("function")
    if not isinstance(function, Mapping):
        return ".function must be an object with a name"
    name = function.get("name")
    if not isinstance(name, str) or not name:
        return f".function.name must be a non-empty string, got {_shown(name)}"
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        return f".function.description must be a string, got {_shown(description)}"
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, Mapping):
        return f".function.parameters must be a JSON Schema object, got {_shown(parameters)}"
    return None


def _number_between(value: Any, low: float, high: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and low <= value <= high


# Each rule: (label, value) -> what is wrong, or None. The label is the name the caller used.
Rule = Callable[[str, Any], str | None]


def _bool_rule(label: str, value: Any) -> str | None:
    return (
        None if isinstance(value, bool) else f"{label} must be true or false, got {_shown(value)}"
    )


def _model_rule(label: str, value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return None
    return f"{label} must be a model name such as gloo-openai-gpt-5-mini, got {_shown(value)}"


def _choice_rule(choices: frozenset[str]) -> Rule:
    def rule(label: str, value: Any) -> str | None:
        if _choice(value, choices):
            return None
        return f"{label} must be one of {', '.join(sorted(choices))}, got {_shown(value)}"

    return rule


def _temperature_rule(label: str, value: Any) -> str | None:
    if _number_between(value, 0, 2):
        return None
    return f"{label} must be a number from 0 to 2, got {_shown(value)}"


def _max_tokens_rule(label: str, value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return None
    return f"{label} must be a whole number of at least 1, got {_shown(value)}"


def _tools_rule(label: str, value: Any) -> str | None:
    if not isinstance(value, list):
        return f"{label} must be a list of OpenAI function tools, got {_shown(value)}"
    for i, tool in enumerate(value):
        problem = _tool_problem(tool)
        if problem is not None:
            return f"{label}[{i}]{problem}"
    return None


def _tool_choice_rule(label: str, value: Any) -> str | None:
    if _choice(value, TOOL_CHOICES):
        return None
    if isinstance(value, Mapping):
        function = value.get("function")
        if (
            value.get("type") == "function"
            and isinstance(function, Mapping)
            and isinstance(function.get("name"), str)
        ):
            return None
    return (
        f'{label} must be none, auto, required or {{"type": "function", "function": '
        f'{{"name": ...}}}}, got {_shown(value)}'
    )


def _stream_options_rule(label: str, value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return f'{label} must be an object such as {{"include_usage": true}}, got {_shown(value)}'
    usage = value.get("include_usage")
    if usage is not None and not isinstance(usage, bool):
        return f"{label}.include_usage must be true or false, got {_shown(usage)}"
    return None


def _publisher_rule(label: str, value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return None
    return f"{label} must be a publisher name such as GlooGrounded, got {_shown(value)}"


def _sources_limit_rule(label: str, value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 10:
        return None
    return f"{label} must be a whole number from 1 to 10 (sources per answer), got {_shown(value)}"


_RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})


def _response_format_rule(label: str, value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if not _choice(kind, _RESPONSE_FORMATS):
        return (
            f'{label} must be {{"type": "json_object"}} or {{"type": "json_schema", '
            f'"json_schema": {{"name": ..., "schema": {{...}}}}}}, got {_shown(value)}'
        )
    if kind != "json_schema":
        return None
    spec = value.get("json_schema")
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        return f"{label}.json_schema must be an object with a name, got {_shown(spec)}"
    schema = spec.get("schema")
    if schema is not None and not isinstance(schema, Mapping):
        return f"{label}.json_schema.schema must be a JSON Schema object, got {_shown(schema)}"
    return None


RULES: dict[str, Rule] = {
    "auto_routing": _bool_rule,
    "stream": _bool_rule,
    "model": _model_rule,
    "model_family": _choice_rule(MODEL_FAMILIES),
    "tradition": _choice_rule(TRADITIONS),
    "temperature": _temperature_rule,
    "max_tokens": _max_tokens_rule,
    "tools": _tools_rule,
    "tool_choice": _tool_choice_rule,
    "stream_options": _stream_options_rule,
    # Gloo's grounded completions (gloo_stream.grounding).
    "rag_publisher": _publisher_rule,
    "sources_limit": _sources_limit_rule,
    "include_citations": _bool_rule,
    "parallel_tool_calls": _bool_rule,
    "response_format": _response_format_rule,
}
"""The declared fields besides ``messages``, and the rule each value must meet."""


def check_param(name: str, value: Any, *, label: str | None = None) -> None:
    """Raise ``InvalidRequestError`` naming ``label`` (default ``name``) if ``value`` is wrong.

    Fields without a rule (extensions the caller knows about) are not checked.
    """
    rule = RULES.get(name)
    problem = rule(label or name, value) if rule is not None else None
    if problem is not None:
        raise InvalidRequestError(problem, field=label or name)


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
    check_param("stream", stream)
    for name, value in params.items():
        if value is not None:
            check_param(name, value)
            body[name] = value
    if not names_routing(body):
        body["auto_routing"] = True
    body["stream"] = stream
    return body
