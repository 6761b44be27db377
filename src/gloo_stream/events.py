"""An answer as typed events: its text, a reasoning model's thinking, a grounded answer's sources.

``stream.events`` (both twins) and ``complete(on_event=...)`` hand these out as chunks arrive,
so one loop can show the reasoning apart from the answer without a second pass over the
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
"""

from __future__ import annotations

from dataclasses import dataclass

from gloo_stream.grounding import Citation, parse_citations
from gloo_stream.wire import ChatCompletionChunk

__all__ = ["AnswerEvent", "CitationsReceived", "ReasoningDelta", "TextDelta", "events_of"]


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


AnswerEvent = TextDelta | ReasoningDelta | CitationsReceived


def events_of(chunk: ChatCompletionChunk) -> list[AnswerEvent]:
    """The events one chunk carries, in reading order (sources, reasoning, text)."""
    events: list[AnswerEvent] = []
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
