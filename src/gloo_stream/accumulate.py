"""Fold chunks into a ``StreamResult``: text, timing, usage, tool calls, completeness.

Sans-IO: the caller hands in every timestamp (``time.perf_counter()`` seconds), so the same
accumulator serves threads, asyncio and tests with a fake clock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import msgspec

from gloo_stream.grounding import Citation, parse_citations
from gloo_stream.wire import ChatCompletionChunk, Usage, reasoning_text

__all__ = ["StreamAccumulator", "StreamResult", "ToolCall", "ToolResult"]

_ROUTING_FIELDS = ("routing_mechanism", "routing_tier", "routing_confidence", "model_family")
_META_FIELDS = ("id", "model", "provider", *_ROUTING_FIELDS)
_META_COUNT = len(_META_FIELDS)


@dataclass(slots=True)
class ToolCall:
    """One tool call assembled from its deltas."""

    index: int
    id: str | None = None
    type: str = "function"
    name: str = ""
    arguments: str = ""

    def parsed_arguments(self) -> Any:
        """The arguments decoded from JSON (raises ``msgspec.DecodeError`` if incomplete)."""
        return msgspec.json.decode(self.arguments) if self.arguments else {}

    @property
    def arguments_error(self) -> str | None:
        """Why the arguments are not whole JSON (cut, malformed), or None when they are."""
        try:
            self.parsed_arguments()
        except msgspec.DecodeError as exc:
            return f"arguments are not valid JSON ({exc}): {self.arguments[:80]!r}"
        return None


# -- tool use and structured output (issue 26) --------------------------------------------


@dataclass(slots=True)
class ToolResult:
    """One tool call the library ran: its arguments, and what it returned or raised."""

    id: str
    name: str
    arguments: dict[str, Any]
    result: Any = None
    error: str | None = None
    """The exception (``TypeName: words``) or the refusal, when the call did not return."""
    content: str = ""
    """What the model was told: the result as text or JSON, or ``Error: ...``."""


class OutputParseError(ValueError):
    """A structured answer that is not valid JSON, or does not match the model asked for."""


@dataclass(slots=True)
class StreamResult:
    """Everything known about one answer once its stream has ended (or failed)."""

    text: str = ""
    finish_reason: str | None = None
    token_count: int = 0
    duration_ms: float = 0.0
    ttft_ms: float | None = None
    usage: Usage | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    attempts: int = 1
    interrupted: bool = False
    resumes: int = 0
    """Times a dropped stream was resumed from a gloo-stream proxy (nothing generated twice)."""
    upstream: str = "primary"
    """Which upstream served the answer: ``primary``, or ``fallback`` (``GLOO_FALLBACK_*``)."""
    model: str | None = None
    provider: str | None = None
    id: str | None = None
    routing: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # -- beyond text (issue 25): a grounded answer's sources, a reasoning model's thinking --
    citations: list[Citation] = field(default_factory=list)
    """The sources a grounded answer used (its first event), in the order sent."""
    sources_returned: bool | None = None
    """Whether retrieval grounded the answer (Gloo's ``sources_returned``); None: not said."""
    reasoning: str = ""
    """The model's reasoning (``delta.reasoning_content`` / ``delta.reasoning``), never in
    ``text``."""
    reasoning_token_count: int = 0
    """Chunks that carried reasoning."""
    reasoning_ttft_ms: float | None = None
    """Time to the first reasoning chunk (``ttft_ms`` is the first *answer* token)."""

    # -- continuation of a cut answer (issue 24): one block -----------------------------
    continuations: int = 0
    """Times the answer was cut and continued (``GLOO_MAX_CONTINUATIONS`` bounds it)."""
    seams: list[Any] = field(default_factory=list)
    """Where it was continued: ``continuation.Seam`` (n, offset, reason, upstream) each."""

    @property
    def outcome(self) -> str:
        """One word for how the answer ended, the same in every face: ``complete``,
        ``continued`` (complete after seams), ``cut`` (partial kept), ``filtered``,
        ``cancelled`` or ``length``."""
        if self.error == "cancelled":
            return "cancelled"
        if self.finish_reason == "content_filter" or self.error == "content_filter":
            return "filtered"
        if self.interrupted:
            return "cut"
        if self.finish_reason == "length":
            return "length"
        return "continued" if self.continuations else "complete"

    # -- end of the continuation block ---------------------------------------------------

    # -- tool use and structured output (issue 26) --
    tool_results: list[ToolResult] = field(default_factory=list)
    """Every tool call the library ran, over all rounds (Python function tools only)."""
    parsed_value: Any = None
    parse_error: str | None = None

    @property
    def parsed(self) -> Any:
        """The answer decoded per ``response_format`` (a pydantic model's instance when one
        was given); raises ``OutputParseError`` saying why when it could not be."""
        if self.parse_error is not None:
            raise OutputParseError(self.parse_error)
        return self.parsed_value

    @property
    def complete(self) -> bool:
        """True when the server ended the answer (finish_reason or ``[DONE]``), kept whole."""
        return not self.interrupted

    @property
    def tokens_per_second(self) -> float | None:
        """Content chunks per second of generation, from the first token to the end."""
        if self.ttft_ms is None or self.token_count < 2:
            return None
        generating = (self.duration_ms - self.ttft_ms) / 1000
        return (self.token_count - 1) / generating if generating > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (the tutorial's four keys and everything else)."""
        # Tool results and the parsed value hold the caller's objects: not deep-copied.
        data = asdict(replace(self, tool_results=[], parsed_value=None))
        data["usage"] = msgspec.to_builtins(self.usage) if self.usage is not None else None
        data["citations"] = [citation.to_dict() for citation in self.citations]
        data["complete"] = self.complete
        data["tokens_per_second"] = self.tokens_per_second
        data["seams"] = [seam.to_dict() for seam in self.seams]
        data["outcome"] = self.outcome
        data["tool_results"] = [
            {
                "id": r.id,
                "name": r.name,
                "arguments": r.arguments,
                "error": r.error,
                "content": r.content,
            }
            for r in self.tool_results
        ]
        value = self.parsed_value
        data["parsed_value"] = value.model_dump() if hasattr(value, "model_dump") else value
        return data


class StreamAccumulator:
    """Collects one attempt's chunks; ``finished`` turns true at the answer's end."""

    __slots__ = (
        "_citations",
        "_error",
        "_first_reasoning_at",
        "_first_token_at",
        "_meta",
        "_parts",
        "_reasoning_count",
        "_reasoning_parts",
        "_sources_returned",
        "_started_at",
        "_tool_calls",
        "attempts",
        "finish_reason",
        "finished",
        "keep_text",
        "resumes",
        "token_count",
        "upstream",
        "usage",
    )

    def __init__(
        self,
        *,
        started_at: float,
        attempts: int = 1,
        upstream: str = "primary",
        keep_text: bool = True,
    ) -> None:
        self._started_at = started_at
        self.keep_text = keep_text  # False: tokens are counted, their text not kept (a relay)
        self._first_token_at: float | None = None
        self._parts: list[str] = []
        self._tool_calls: dict[int, ToolCall] = {}
        self._meta: dict[str, Any] = {}
        self._error: dict[str, Any] | None = None
        self.attempts = attempts
        self.upstream = upstream
        self.resumes = 0
        self.token_count = 0
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.finished = False
        self._citations: list[Any] | None = None
        self._sources_returned: bool | None = None
        self._reasoning_parts: list[str] = []
        self._reasoning_count = 0
        self._first_reasoning_at: float | None = None

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._parts)

    @property
    def error_object(self) -> dict[str, Any] | None:
        """The error object a ``finish_reason: "error"`` chunk carried, if any."""
        return self._error

    def add(self, chunk: ChatCompletionChunk, now: float) -> str:
        """Fold one chunk in and return the text it added ("" when none)."""
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.error is not None:
            self._error = chunk.error
        if len(self._meta) < _META_COUNT:
            self._take_metadata(chunk)
        choices = chunk.choices_
        if not choices:
            self._take_grounding(chunk)  # a bare citations event has no choices
            return ""
        choice = choices[0]
        delta = choice.delta_
        text = ""
        if delta is not None:
            text = delta.content or ""
            if text:
                if self._first_token_at is None:
                    self._first_token_at = now
                if self.keep_text:
                    self._parts.append(text)
                self.token_count += 1
            elif chunk.citations is not None or chunk.sources is not None:
                # Sources come on a chunk without answer text (the citations event): a
                # content chunk, the hot path, does not pay for this check.
                self._take_grounding(chunk)
            if chunk.sources_returned is not None and self._sources_returned is None:
                self._take_grounding(chunk)
            if delta.reasoning_content is not None or delta.reasoning is not None:
                # Not only on text-less chunks: vLLM sends the last thinking and the first
                # answer text in one delta.
                self._add_reasoning(reasoning_text(delta), now)
            if delta.tool_calls:
                self._add_tool_calls(delta.tool_calls, now)
        if choice.finish_reason is not None and not self.finished:
            self.finish_reason = choice.finish_reason
            self.finished = True
        return text

    def add_done(self) -> None:
        """The ``[DONE]`` sentinel: the answer is over even without a finish_reason."""
        self.finished = True

    def result(
        self, now: float, *, interrupted: bool = False, error: str | None = None
    ) -> StreamResult:
        """The result as of ``now``; ``interrupted`` flags a partial answer."""
        first = self._first_token_at
        return StreamResult(
            text=self.text,
            finish_reason=self.finish_reason,
            token_count=self.token_count,
            duration_ms=(now - self._started_at) * 1000,
            ttft_ms=(first - self._started_at) * 1000 if first is not None else None,
            usage=self.usage,
            tool_calls=[self._tool_calls[i] for i in sorted(self._tool_calls)],
            attempts=self.attempts,
            resumes=self.resumes,
            upstream=self.upstream,
            interrupted=interrupted,
            model=self._meta.get("model"),
            provider=self._meta.get("provider"),
            id=self._meta.get("id"),
            routing={k: v for k, v in self._meta.items() if k in _ROUTING_FIELDS},
            error=error,
            citations=parse_citations(self._citations or ()),
            sources_returned=self._sources_returned,
            reasoning="".join(self._reasoning_parts),
            reasoning_token_count=self._reasoning_count,
            reasoning_ttft_ms=(
                (self._first_reasoning_at - self._started_at) * 1000
                if self._first_reasoning_at is not None
                else None
            ),
        )

    def _take_grounding(self, chunk: ChatCompletionChunk) -> None:
        # The first citations seen win: a resumed answer does not get event 1 again, and a
        # continued one keeps the sources of its first part.
        items = chunk.citation_items
        if items is not None and self._citations is None:
            self._citations = items
        returned = chunk.sources_returned
        if isinstance(returned, bool) and self._sources_returned is None:
            self._sources_returned = returned

    def _add_reasoning(self, text: str, now: float) -> None:
        if not text:
            return
        if self._first_reasoning_at is None:
            self._first_reasoning_at = now
        if self.keep_text:
            self._reasoning_parts.append(text)
        self._reasoning_count += 1

    def _take_metadata(self, chunk: ChatCompletionChunk) -> None:
        # Metadata may arrive on any chunk (routing often on the first, ttft on the last);
        # the first value seen for each field wins.
        for name in _META_FIELDS:
            if name not in self._meta:
                value = getattr(chunk, name)
                if value is not None:
                    self._meta[name] = value

    def _add_tool_calls(self, deltas: list[Any], now: float) -> None:
        if self._first_token_at is None:
            self._first_token_at = now
        for delta in deltas:
            call = self._tool_calls.get(delta.index)
            if call is None:
                call = self._tool_calls[delta.index] = ToolCall(index=delta.index)
            if delta.id and not call.id:
                call.id = delta.id
            if delta.type:
                call.type = delta.type
            function = delta.function_
            if function is not None:
                if function.name and not call.name:
                    call.name = function.name
                if function.arguments:
                    call.arguments += function.arguments
