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

__all__ = [
    "AnswerContinued",
    "AnswerEvent",
    "CitationsReceived",
    "ReasoningDelta",
    "TextDelta",
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
    """The answer was cut and continued here (issue 24): the ``n``-th seam (1-based), why
    (``reason``), which upstream serves what follows, and the characters before it."""

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


AnswerEvent = TextDelta | ReasoningDelta | CitationsReceived | AnswerContinued


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
    """The events one chunk carries, in reading order (a seam, sources, reasoning, text)."""
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
