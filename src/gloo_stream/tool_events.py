"""The events of a streamed answer with tools (sans-IO): text, calls as they grow, results.

``ToolLoopStream.events()`` (both twins) yields them; ``CallTracker`` turns one round's
chunks into them, naming each call's deltas by the call's id and name (which only its first
delta carries).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gloo_stream.accumulate import StreamResult, ToolCall, ToolResult
from gloo_stream.wire import ChatCompletionChunk

__all__ = [
    "CallComplete",
    "CallDelta",
    "CallTracker",
    "StreamEvent",
    "TextDelta",
    "ToolRan",
]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer's text."""

    text: str


@dataclass(frozen=True, slots=True)
class CallDelta:
    """A piece of a tool call as it streams: ``arguments_delta`` extends its arguments."""

    index: int
    id: str | None
    name: str
    arguments_delta: str

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "tool_call", "index", "id", "name", "arguments_delta"}``."""
        return {"type": "tool_call", **_fields(self)}


@dataclass(frozen=True, slots=True)
class CallComplete:
    """A tool call whose answer has ended: its whole arguments (``call.arguments_error``
    says when they are not valid JSON; such a call is never run)."""

    call: ToolCall

    def to_dict(self) -> dict[str, Any]:
        """The whole call, with ``valid`` and ``error`` saying whether it can be run."""
        call = self.call
        return {
            "type": "tool_call",
            "index": call.index,
            "id": call.id,
            "name": call.name,
            "arguments": call.arguments,
            "complete": True,
            "valid": call.arguments_error is None,
            "error": call.arguments_error,
        }


@dataclass(frozen=True, slots=True)
class ToolRan:
    """A Python function tool ran: what it returned or raised."""

    result: ToolResult

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "tool_result", ...}`` (the value as the model was told it)."""
        r = self.result
        return {
            "type": "tool_result",
            "id": r.id,
            "name": r.name,
            "arguments": r.arguments,
            "content": r.content,
            "error": r.error,
        }


StreamEvent = TextDelta | CallDelta | CallComplete | ToolRan


def _fields(event: CallDelta) -> dict[str, Any]:
    return {
        "index": event.index,
        "id": event.id,
        "name": event.name,
        "arguments_delta": event.arguments_delta,
    }


class CallTracker:
    """One round's chunks to events: the text, and each call's deltas under its name."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, tuple[str | None, str]] = {}

    def events(self, chunk: ChatCompletionChunk) -> list[StreamEvent]:
        """The events one chunk makes (none for a chunk with neither text nor calls)."""
        found: list[StreamEvent] = []
        if text := chunk.content:
            found.append(TextDelta(text))
        choices = chunk.choices
        deltas = choices[0].delta.tool_calls if choices else None
        for delta in deltas or ():
            known_id, known_name = self._calls.get(delta.index, (None, ""))
            call_id = known_id or delta.id
            name = known_name or delta.function.name or ""
            self._calls[delta.index] = (call_id, name)
            found.append(CallDelta(delta.index, call_id, name, delta.function.arguments or ""))
        return found

    @staticmethod
    def completed(result: StreamResult) -> list[StreamEvent]:
        """One ``CallComplete`` per call of the ended answer."""
        return [CallComplete(call) for call in result.tool_calls]
