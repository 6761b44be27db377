"""Tool-call answers: whole calls for non-streamed replies, OpenAI-style deltas for streams."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec

from gloo_stream.simulator.faults import Fault

DEFAULT_FUNCTION = "get_weather"
_FRAGMENT = 6  # characters of arguments per delta: small enough to split keys and strings
_CITIES = ("Paris", "Zürich")


def wants_tools(body: Mapping[str, Any]) -> bool:
    """Does the request force a tool call (``tool_choice`` required or naming a function)?"""
    choice = body.get("tool_choice")
    return bool(body.get("tools")) and (choice == "required" or isinstance(choice, dict))


def tool_calls_for(body: Mapping[str, Any], fault: Fault | None) -> list[dict[str, Any]]:
    """The complete tool calls of the answer: one, or two when the fault asks for ``parallel``."""
    tools = [t for t in body.get("tools") or () if isinstance(t, dict)]
    count = 2 if fault is not None and fault.parallel else 1
    calls = []
    for index in range(count):
        tool = tools[min(index, len(tools) - 1)] if tools else {}
        function = tool.get("function")
        if not isinstance(function, dict):
            function = {}
        name = _name(body, fault, function)
        arguments = _arguments(fault, function, name, index)
        call_id = (
            "call_"
            + hashlib.blake2b(f"{name}{index}{arguments}".encode(), digest_size=8).hexdigest()
        )
        calls.append(
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        )
    return calls


def tool_call_deltas(calls: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The ``delta.tool_calls`` lists to stream, one per chunk, parallel calls interleaved."""
    per_call: list[list[dict[str, Any]]] = []
    for index, call in enumerate(calls):
        function = call["function"]
        opening = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": function["name"], "arguments": ""},
        }
        text = function["arguments"]
        pieces = [text[i : i + _FRAGMENT] for i in range(0, len(text), _FRAGMENT)]
        per_call.append(
            [opening, *({"index": index, "function": {"arguments": p}} for p in pieces)]
        )
    deltas: list[list[dict[str, Any]]] = []
    for step in range(max(len(c) for c in per_call)):
        deltas.extend([c[step]] for c in per_call if step < len(c))
    return deltas


def _name(body: Mapping[str, Any], fault: Fault | None, function: Mapping[str, Any]) -> str:
    if fault is not None and fault.function:
        return fault.function
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        named = choice["function"].get("name")
        if isinstance(named, str):
            return named
    name = function.get("name")
    return name if isinstance(name, str) and name else DEFAULT_FUNCTION


def _arguments(fault: Fault | None, function: Mapping[str, Any], name: str, index: int) -> str:
    if fault is not None and fault.arguments is not None:
        given = fault.arguments
        return given if isinstance(given, str) else msgspec.json.encode(given).decode()
    parameters = function.get("parameters")
    properties = parameters.get("properties") if isinstance(parameters, dict) else None
    if not isinstance(properties, dict) or not properties:
        values: dict[str, Any] = {"city": _CITIES[index % 2], "unit": "celsius"}
    else:
        values = {key: _value(key, spec, index) for key, spec in properties.items()}
    return msgspec.json.encode(values).decode()


def _value(key: str, spec: Any, index: int) -> Any:
    spec = spec if isinstance(spec, dict) else {}
    if isinstance(spec.get("enum"), list) and spec["enum"]:
        return spec["enum"][0]
    kind = spec.get("type")
    if kind == "integer":
        return 3 + index
    if kind == "number":
        return 21.5 + index
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return _CITIES[index % 2] if any(w in key for w in ("city", "location", "place")) else "café"
