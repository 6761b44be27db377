"""Structured answers: with ``response_format``, the simulated model answers in JSON.

``json_object``: a small object about the prompt. ``json_schema``: an object with every
property of the schema (required ones included), each given a value of its type. The text is
streamed in small fragments (``json_fragments``) that split keys and strings, as models do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = ["json_answer", "json_fragments"]

_FRAGMENT = 4  # characters per token: keys and strings are split across chunks
_MAX_DEPTH = 4


def json_answer(body: Mapping[str, Any], prompt: str) -> str | None:
    """The JSON text to answer with, or None when the request asks for no JSON."""
    response_format = body.get("response_format")
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        words = prompt.split()[:6]
        value: Any = {"answer": " ".join(words) or "café", "confidence": 0.9, "tags": ["sim"]}
    elif kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        defs = schema.get("$defs", {}) if isinstance(schema, dict) else {}
        value = _value_for(schema if isinstance(schema, dict) else {}, "answer", defs, 0)
    else:
        return None
    return msgspec.json.encode(value).decode()


def json_fragments(text: str) -> list[str]:
    """``text`` in ``_FRAGMENT``-character pieces (their concatenation is ``text``)."""
    return [text[i : i + _FRAGMENT] for i in range(0, len(text), _FRAGMENT)]


def _value_for(schema: Mapping[str, Any], key: str, defs: Mapping[str, Any], depth: int) -> Any:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = defs.get(ref.removeprefix("#/$defs/"))
        schema = target if isinstance(target, dict) else {}
    for combined in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combined)
        if isinstance(options, list) and options:
            usable = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
            schema = usable[0] if usable else options[0]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties")
        if depth >= _MAX_DEPTH or not isinstance(properties, dict):
            return {}
        return {
            name: _value_for(spec if isinstance(spec, dict) else {}, name, defs, depth + 1)
            for name, spec in properties.items()
        }
    if kind == "array":
        items = schema.get("items")
        item = _value_for(items if isinstance(items, dict) else {}, key, defs, depth + 1)
        return [item, item] if depth < _MAX_DEPTH else []
    if kind == "integer":
        return 3
    if kind == "number":
        return 21.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return f"{key.replace('_', ' ')} from the simulator, café"
