"""An answer as typed events: its text, a reasoning model's thinking, a grounded answer's
sources, and tool calls as they stream, complete and run.

``stream.events`` (every stream: ``ChatStream``, ``ToolLoopStream`` and their async twins) and
``complete(on_event=...)`` hand these out as chunks arrive, so one loop can show the reasoning
apart from the answer and a tool call while its arguments grow, without a second pass over the
stream (``text_stream`` and ``events`` read the same chunks; use one of them per stream)::

    with client.stream("Why is the sky blue?") as stream:
        for event in stream.events:
            match event:
                case ReasoningDelta(text):
                    show_dimmed(text)
                case TextDelta(text):
                    show(text)
                case CitationsReceived(citations):
                    remember(citations)
                case AnswerContinued(n, reason):
                    mark_seam(n, reason)
                case CallDelta() | CallComplete() | ToolRan():
                    show_tool(event)

Sans-IO: ``events_of`` reads one chunk, ``CallTracker`` one round of a tool loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gloo_stream.accumulate import StreamResult, ToolCall, ToolResult
from gloo_stream.grounding import Citation, parse_citations
from gloo_stream.wire import ChatCompletionChunk

__all__ = [
    "AnswerContinued",
    "AnswerEvent",
    "CallComplete",
    "CallDelta",
    "CallTracker",
    "CitationsReceived",
    "ReasoningDelta",
    "TextDelta",
    "ToolRan",
    "events_of",
]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer's text (what ``text_stream`` yields)."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning (``delta.reasoning_content`` / ``delta.reasoning``)."""

    text: str


@dataclass(frozen=True, slots=True)
class CitationsReceived:
    """A grounded answer's sources (its first event); ``sources_returned`` as Gloo said it."""

    citations: tuple[Citation, ...]
    sources_returned: bool | None = None


@dataclass(frozen=True, slots=True)
class AnswerContinued:
    """The answer was cut and continued here: the ``n``-th seam (1-based), why (``reason``),
    which upstream serves what follows, and the characters of answer text before it."""

    n: int
    reason: str
    upstream: str
    offset: int

    def to_dict(self) -> dict[str, object]:
        """The seam as ``--json`` shows it."""
        return {
            "n": self.n,
            "reason": self.reason,
            "upstream": self.upstream,
            "offset": self.offset,
        }


@dataclass(frozen=True, slots=True)
class CallDelta:
    """A piece of a tool call as it streams: ``arguments_delta`` extends its arguments."""

    index: int
    id: str | None
    name: str
    arguments_delta: str

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "tool_call", "index", "id", "name", "arguments_delta"}``."""
        return {
            "type": "tool_call",
            "index": self.index,
            "id": self.id,
            "name": self.name,
            "arguments_delta": self.arguments_delta,
        }


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


AnswerEvent = (
    TextDelta
    | ReasoningDelta
    | CitationsReceived
    | AnswerContinued
    | CallDelta
    | CallComplete
    | ToolRan
)


def _continued(mark: object) -> AnswerContinued | None:
    """The seam a chunk's ``gloo_continuation`` marks (None when it marks none)."""
    if not isinstance(mark, dict):
        return None
    n, offset = mark.get("n"), mark.get("offset")
    return AnswerContinued(
        n=n if isinstance(n, int) else 0,
        reason=str(mark.get("reason", "")),
        upstream=str(mark.get("upstream", "")),
        offset=offset if isinstance(offset, int) else 0,
    )


def events_of(chunk: ChatCompletionChunk) -> list[AnswerEvent]:
    """The events one chunk carries, in reading order (a seam, sources, reasoning, text).

    Tool calls are not among them: a call's deltas are named by its first delta only, so
    ``CallTracker`` keeps that across a round's chunks.
    """
    events: list[AnswerEvent] = []
    if chunk.gloo_continuation is not None and (seam := _continued(chunk.gloo_continuation)):
        events.append(seam)
    items = chunk.citation_items
    if items is not None:
        returned = chunk.sources_returned
        events.append(
            CitationsReceived(
                tuple(parse_citations(items)), returned if isinstance(returned, bool) else None
            )
        )
    if reasoning := chunk.reasoning:
        events.append(ReasoningDelta(reasoning))
    if text := chunk.content:
        events.append(TextDelta(text))
    return events


class CallTracker:
    """One round's chunks to events: ``events_of``, then each call's deltas under its name."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, tuple[str | None, str]] = {}

    def events(self, chunk: ChatCompletionChunk) -> list[AnswerEvent]:
        """The events one chunk makes (none for a chunk with nothing to show)."""
        found = events_of(chunk)
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
    def completed(result: StreamResult) -> list[AnswerEvent]:
        """One ``CallComplete`` per call of the ended answer."""
        return [CallComplete(call) for call in result.tool_calls]
