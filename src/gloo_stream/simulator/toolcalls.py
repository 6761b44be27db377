"""Tool-call answers: whole calls for non-streamed replies, OpenAI-style deltas for streams.

When does the simulated model call a tool? When ``tool_choice`` forces one; or, offered
tools (``tool_choice`` auto or absent), when the last user message names a tool (its name,
or its words: ``get_weather`` or "get weather") or mentions the weather: one call per tool
named, in parallel. Once the conversation ends with ``tool`` messages, it answers instead,
with a sentence built from their results (``tool_answer``).
"""

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
    """Does the answer call tools: forced by ``tool_choice``, or asked for by the prompt?"""
    choice = body.get("tool_choice")
    if not body.get("tools") or choice == "none":
        return False
    if choice == "required" or isinstance(choice, dict):
        return True
    return not _answered(body) and bool(asked_tools(body))


def asked_tools(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The offered tools the last user message asks for (the first one for "weather")."""
    tools = [t for t in body.get("tools") or () if isinstance(t, dict)]
    prompt = _last_user_text(body).lower()
    named = [t for t in tools if _mentions(prompt, _tool_name(t))]
    if not named and "weather" in prompt and tools:
        weather = [t for t in tools if "weather" in _tool_name(t)]
        named = weather[:1] or tools[:1]
    return named


def tool_answer(body: Mapping[str, Any]) -> str | None:
    """The answer once tools have answered (the conversation ends with ``tool`` messages):
    a sentence using each result; None when the last message is not a tool result."""
    if not _answered(body):
        return None
    messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                names[str(call.get("id"))] = str(call["function"].get("name"))
    replies = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        name = names.get(str(message.get("tool_call_id")), "the tool")
        replies.append(f"{name} said {message.get('content')}")
    return "Thanks for waiting: " + "; and ".join(reversed(replies)) + "."


def _answered(body: Mapping[str, Any]) -> bool:
    messages = list(body.get("messages") or [])
    return bool(messages) and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"


def _last_user_text(body: Mapping[str, Any]) -> str:
    for message in reversed(body.get("messages") or ()):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""


def _tool_name(tool: Mapping[str, Any]) -> str:
    function = tool.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    return name.lower() if isinstance(name, str) else ""


def _mentions(prompt: str, name: str) -> bool:
    return bool(name) and (name in prompt or name.replace("_", " ") in prompt)


def tool_calls_for(body: Mapping[str, Any], fault: Fault | None) -> list[dict[str, Any]]:
    """The complete tool calls of the answer: one per tool asked for (at least one), or
    two when the fault asks for ``parallel``."""
    tools = [t for t in body.get("tools") or () if isinstance(t, dict)]
    asked = asked_tools(body) if fault is None else []
    if asked:
        tools = asked
    count = 2 if fault is not None and fault.parallel else max(len(asked), 1)
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
