"""Request validation answering like FastAPI/pydantic v2 (what Gloo runs): 422 ``detail``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Detail = dict[str, Any]
Loc = tuple[str | int, ...]

ROLES = ("system", "user", "assistant", "tool")
FAMILIES = ("openai", "anthropic", "google", "open source")
TRADITIONS = ("evangelical", "catholic", "mainline", "not_faith_specific")
TOOL_CHOICES = ("none", "auto", "required")


def error(kind: str, loc: Loc, msg: str, value: Any, ctx: dict[str, Any] | None = None) -> Detail:
    """One FastAPI-style detail entry."""
    entry: Detail = {"type": kind, "loc": ["body", *loc], "msg": msg, "input": value}
    if ctx is not None:
        entry["ctx"] = ctx
    return entry


def json_invalid(position: int, reason: str) -> list[Detail]:
    """The detail FastAPI gives for a body that is not JSON at all."""
    entry = error("json_invalid", (position,), "JSON decode error", {}, {"error": reason})
    return [entry]


def validate_request(
    body: Any, *, grounded: bool = False, require_model: bool = False
) -> list[Detail]:
    """Every problem with a completions body; an empty list means it is acceptable.

    Unknown fields are accepted, as FastAPI models do by default. ``require_model``: a body
    without ``model`` is refused, as servers that serve named models (vLLM...) do.
    """
    if not isinstance(body, dict):
        msg = "Input should be a valid dictionary or object to extract fields from"
        return [{"type": "model_attributes_type", "loc": ["body"], "msg": msg, "input": body}]
    # Grounded: messages may be omitted (Gloo then says "Hello world!"); empty is refused.
    errors = [] if grounded and "messages" not in body else _messages(body)
    if require_model and body.get("model") is None:
        errors.append(error("missing", ("model",), "Field required", None))
    for name, check in _FIELDS.items():
        if body.get(name) is not None:
            errors.extend(check(body[name], (name,)))
    if grounded:
        for name, check in _GROUNDED_FIELDS.items():
            if body.get(name) is not None:
                errors.extend(check(body[name], (name,)))
    return errors


def _messages(body: Mapping[str, Any]) -> list[Detail]:
    if "messages" not in body:
        return [error("missing", ("messages",), "Field required", None)]
    messages = body["messages"]
    if not isinstance(messages, list):
        return [error("list_type", ("messages",), "Input should be a valid list", messages)]
    if not messages:
        ctx = {"field_type": "List", "min_length": 1, "actual_length": 0}
        msg = "List should have at least 1 item after validation, not 0"
        return [error("too_short", ("messages",), msg, messages, ctx)]
    errors: list[Detail] = []
    for index, message in enumerate(messages):
        errors.extend(_message(message, ("messages", index)))
    return errors


def _message(message: Any, loc: Loc) -> list[Detail]:
    if not isinstance(message, dict):
        msg = "Input should be a valid dictionary or object to extract fields from"
        return [error("model_attributes_type", loc, msg, message)]
    errors: list[Detail] = []
    if "role" not in message:
        errors.append(error("missing", (*loc, "role"), "Field required", None))
    else:
        errors.extend(_literal(ROLES)(message["role"], (*loc, "role")))
    content = message.get("content")
    # An assistant turn that only called tools carries no text, as in OpenAI's format.
    calls_tools = message.get("role") == "assistant" and bool(message.get("tool_calls"))
    if content is None and not calls_tools:
        if "content" not in message:
            errors.append(error("missing", (*loc, "content"), "Field required", None))
        else:
            errors.append(error("string_type", (*loc, "content"), _STRING, content))
    elif content is not None and not isinstance(content, str):
        errors.append(error("string_type", (*loc, "content"), _STRING, content))
    return errors


_STRING = "Input should be a valid string"


def _literal(options: tuple[str, ...]) -> Callable[[Any, Loc], list[Detail]]:
    quoted = [f"'{option}'" for option in options]
    expected = ", ".join(quoted[:-1]) + f" or {quoted[-1]}"

    def check(value: Any, loc: Loc) -> list[Detail]:
        if isinstance(value, str) and value in options:
            return []
        return [
            error(
                "literal_error", loc, f"Input should be {expected}", value, {"expected": expected}
            )
        ]

    return check


def _number(low: float, high: float | None) -> Callable[[Any, Loc], list[Detail]]:
    def check(value: Any, loc: Loc) -> list[Detail]:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [error("float_type", loc, "Input should be a valid number", value)]
        return _bounds(value, loc, low, high)

    return check


def _integer(low: int, high: int | None) -> Callable[[Any, Loc], list[Detail]]:
    def check(value: Any, loc: Loc) -> list[Detail]:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, float):
            msg = "Input should be a valid integer, got a number with a fractional part"
            return [error("int_from_float", loc, msg, value)]
        if isinstance(value, bool) or not isinstance(value, int):
            return [error("int_type", loc, "Input should be a valid integer", value)]
        return _bounds(value, loc, low, high)

    return check


def _bounds(value: float, loc: Loc, low: float, high: float | None) -> list[Detail]:
    if value < low:
        msg = f"Input should be greater than or equal to {low}"
        return [error("greater_than_equal", loc, msg, value, {"ge": low})]
    if high is not None and value > high:
        msg = f"Input should be less than or equal to {high}"
        return [error("less_than_equal", loc, msg, value, {"le": high})]
    return []


def _boolean(value: Any, loc: Loc) -> list[Detail]:
    if isinstance(value, bool):
        return []
    return [error("bool_type", loc, "Input should be a valid boolean", value)]


def _string(value: Any, loc: Loc) -> list[Detail]:
    return [] if isinstance(value, str) else [error("string_type", loc, _STRING, value)]


def _tool_choice(value: Any, loc: Loc) -> list[Detail]:
    if isinstance(value, dict) or (isinstance(value, str) and value in TOOL_CHOICES):
        return []
    expected = "'none', 'auto', 'required' or an object"
    return [
        error("literal_error", loc, f"Input should be {expected}", value, {"expected": expected})
    ]


def _tools(value: Any, loc: Loc) -> list[Detail]:
    if not isinstance(value, list):
        return [error("list_type", loc, "Input should be a valid list", value)]
    msg = "Input should be a valid dictionary or object to extract fields from"
    return [
        error("model_attributes_type", (*loc, index), msg, tool)
        for index, tool in enumerate(value)
        if not isinstance(tool, dict)
    ]


def _stream_options(value: Any, loc: Loc) -> list[Detail]:
    if isinstance(value, dict):
        return []
    msg = "Input should be a valid dictionary or object to extract fields from"
    return [error("model_attributes_type", loc, msg, value)]


_FIELDS: dict[str, Callable[[Any, Loc], list[Detail]]] = {
    "stream": _boolean,
    "auto_routing": _boolean,
    "model": _string,
    "model_family": _literal(FAMILIES),
    "tradition": _literal(TRADITIONS),
    "temperature": _number(0, 2),
    "max_tokens": _integer(1, None),
    "tools": _tools,
    "tool_choice": _tool_choice,
    "stream_options": _stream_options,
    "response_format": _stream_options,  # an object, as pydantic checks it
}
_GROUNDED_FIELDS: dict[str, Callable[[Any, Loc], list[Detail]]] = {
    "rag_publisher": _string,
    "sources_limit": _integer(1, 10),
    "parallel_tool_calls": _boolean,
    "include_citations": _boolean,
}
