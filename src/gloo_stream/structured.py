"""Structured output (sans-IO): ``response_format``, a JSON answer as it grows, and at its end.

``response_format=`` takes OpenAI's dicts (``{"type": "json_object"}``, ``{"type":
"json_schema", "json_schema": {...}}``) or a pydantic model class, whose JSON schema is then
sent and which the final answer is checked against. ``PartialJson`` reads the growing text
with jiter's partial mode (what the OpenAI SDK itself depends on): each time the text grows
it hands back the most complete object the text so far makes, trailing strings included.
Re-parsing the whole text each time costs O(text) per token, which jiter does in Rust at
memory speed (``benchmarks/partial_json.py`` measures it beside the alternatives).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jiter
import pydantic

from gloo_stream.accumulate import StreamResult
from gloo_stream.errors import InvalidRequestError

__all__ = [
    "PartialJson",
    "ResponseFormat",
    "json_text",
    "with_parsed",
]

_NOTHING = object()


class ResponseFormat:
    """One call's ``response_format``: what is sent, and the model the answer must match."""

    def __init__(self, value: Any) -> None:
        self.model: type[pydantic.BaseModel] | None = None
        if isinstance(value, type) and issubclass(value, pydantic.BaseModel):
            self.model = value
            schema = value.model_json_schema()
            self.body: dict[str, Any] = {
                "type": "json_schema",
                "json_schema": {"name": value.__name__, "schema": schema},
            }
        elif isinstance(value, Mapping):
            self.body = dict(value)
        else:
            raise InvalidRequestError(
                'response_format must be {"type": "json_object"}, {"type": "json_schema", '
                f'"json_schema": {{...}}}} or a pydantic model class, got {value!r:.60}',
                field="response_format",
            )

    def parse(self, text: str) -> tuple[Any, str | None]:
        """The final answer decoded (and checked against the model): (value, None) or
        (None, why it could not be)."""
        source = json_text(text)
        try:
            value = json.loads(source)
        except json.JSONDecodeError as exc:
            cut = " (the answer looks cut off)" if _valid_beginning(source) else ""
            return None, f"the answer is not valid JSON: {exc.msg} at character {exc.pos}{cut}"
        if self.model is None:
            return value, None
        try:
            return self.model.model_validate(value), None
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
                for e in exc.errors()[:3]
            )
            return None, f"the answer does not match {self.model.__name__}: {problems}"


def _valid_beginning(source: str) -> bool:
    """Is ``source`` the start of some JSON value (so it was cut, rather than malformed)?"""
    try:
        jiter.from_json(source.encode(), partial_mode="trailing-strings")
    except ValueError:
        return False
    return True


def with_parsed(result: StreamResult, response_format: ResponseFormat) -> StreamResult:
    """``result`` with ``parsed_value`` or ``parse_error`` set from its text."""
    result.parsed_value, result.parse_error = response_format.parse(result.text)
    return result


def json_text(text: str) -> str:
    """The JSON in an answer: surrounding whitespace and a Markdown code fence dropped.

    Some models fence a JSON answer (```` ```json ````) even when asked for JSON alone.
    """
    stripped = text.strip()
    if stripped.startswith("```"):
        first_line_end = stripped.find("\n")
        stripped = stripped[first_line_end + 1 :] if first_line_end >= 0 else ""
        if stripped.rstrip().endswith("```"):
            stripped = stripped.rstrip()[:-3]
    return stripped.strip()


class PartialJson:
    """Feed it the answer's text pieces; ``feed`` returns the object so far when it changed.

    A half-written string is kept as far as it goes (``trailing-strings``), a number as far
    as its digits go (``12`` on the way to ``123``); a half-written key or literal is left
    out until it is whole. Before anything parses (no text yet, or only a fence), nothing
    is returned.
    """

    __slots__ = ("_last", "_parts")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._last: Any = _NOTHING

    def feed(self, piece: str) -> tuple[bool, Any]:
        """Add ``piece``: (True, the newer object) when it changed, else (False, None)."""
        self._parts.append(piece)
        source = json_text("".join(self._parts)) if self._parts else ""
        if not source:
            return False, None
        try:
            value = jiter.from_json(source.encode(), partial_mode="trailing-strings")
        except ValueError:
            return False, None  # not JSON (yet, or at all): the final parse says which
        if self._last is not _NOTHING and value == self._last:
            return False, None
        self._last = value
        return True, value
