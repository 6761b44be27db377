"""Terminal rendering of one streamed answer: plain text, JSON lines (live markdown: render_live).

Every view has the same small surface (``start``, ``on_token``, ``on_retry``, ``finish``,
``fail``, ``interrupt``), so the command drives them all the same way and the output adapts
to where it goes, as rich does: a TTY gets live markdown, a pipe gets plain text flushed per
token, ``--json`` gets one object per line. Summaries and notices go to stderr so stdout
holds nothing but the answer.
"""

from __future__ import annotations

import json
from typing import IO, Any, Protocol

from rich.console import Console
from rich.style import Style
from rich.text import Text

from gloo_stream.accumulate import StreamResult
from gloo_stream.cli.failures import print_failure
from gloo_stream.cli.tool_calls import complete_call_lines, result_line
from gloo_stream.errors import GlooError, StreamError
from gloo_stream.events import (
    AnswerContinued,
    AnswerEvent,
    CallComplete,
    CallDelta,
    CitationsReceived,
    ReasoningDelta,
    ToolRan,
)
from gloo_stream.grounding import Citation

__all__ = [
    "AnswerView",
    "JsonLinesView",
    "PlainView",
    "TextSoFar",
    "outcome_words",
    "print_partial_summary",
    "print_sources",
    "retry_notice",
    "seam_mark",
    "sources_text",
    "stopped_line",
    "summary_line",
]


class AnswerView(Protocol):
    """What the command calls while one answer streams."""

    @property
    def text(self) -> str:
        """The text of the current attempt so far."""
        ...

    def start(self) -> None:
        """A request is about to be sent."""

    def on_token(self, text: str) -> None:
        """A piece of the answer arrived."""

    def on_retry(self, error: Exception, delay: float) -> None:
        """A request failed (before or during its stream); it is retried after ``delay`` s."""

    def finish(self, result: StreamResult) -> None:
        """The answer ended normally."""

    def fail(self, error: GlooError, lines: list[str]) -> None:
        """The answer failed for good; ``lines`` explain it (the partial stays shown)."""

    def interrupt(self) -> None:
        """The user pressed Ctrl-C; the partial stays shown."""

    def on_event(self, event: AnswerEvent) -> None:
        """Something beyond the text arrived: reasoning, a grounded answer's sources, a tool
        call streaming, complete or run (the text itself arrives through ``on_token``)."""

    def pause(self) -> None:
        """Stop drawing for a moment: the terminal is about to ask the user something."""

    def resume(self) -> None:
        """Draw again after ``pause``."""


# -- pure helpers -------------------------------------------------------------------------


def stopped_line(text: str) -> str:
    """What Ctrl-C left: a partial answer is kept; before the first token, nothing was."""
    if text:
        return "⏹ Stopped (Ctrl-C); the partial answer is kept · cancelled"
    return "⏹ Stopped (Ctrl-C) before the first token: nothing arrived. · cancelled"


def seam_mark(event: AnswerContinued) -> str:
    """The small mark where a cut answer was continued (stderr, dim; never in the answer)."""
    where = "" if event.upstream in ("", "primary") else f" on the {event.upstream}"
    return f"↻ continued ({event.reason}){where}"


def outcome_words(result: StreamResult) -> str:
    """How the answer ended, in the one word the library, the proxy and the page use
    (``StreamResult.outcome``), with its seams counted when it was continued."""
    seams = result.continuations
    if seams:
        return f"{result.outcome} ({seams} seam{'s' if seams > 1 else ''})"
    return result.outcome


def summary_line(result: StreamResult) -> str:
    """One line about an answer: its outcome, tokens, finish reason, first-token time,
    speed, model."""
    parts = [
        outcome_words(result),
        f"{result.token_count} tokens",
        f"finish_reason={result.finish_reason}",
    ]
    if result.ttft_ms is not None:
        parts.append(f"first token {result.ttft_ms:.0f} ms")
    if (tps := result.tokens_per_second) is not None:
        parts.append(f"{tps:.1f} tokens/s")
    parts.append(f"{result.duration_ms / 1000:.2f} s")
    if result.attempts > 1:
        parts.append(f"{result.attempts} attempts")
    if result.reasoning_token_count:
        parts.append(f"thought {result.reasoning_token_count} tokens")
    if result.model:
        routing = result.routing.get("routing_mechanism")
        parts.append(f"{result.model} ({routing})" if routing else result.model)
    return " · ".join(parts)


def retry_notice(error: Exception, delay: float, max_attempts: int) -> str:
    """What the user reads when a failed request is about to be tried again."""
    reason = str(error).split(";")[0]
    if not isinstance(error, StreamError):
        # Failed before streaming (a 429, a 503, no connection): nothing to take back.
        return f"{reason}; retrying in {delay:.1f} s"
    attempt = error.partial.attempts + 1
    return (
        f"{reason}; retrying in {delay:.1f} s (attempt {attempt} of {max_attempts}), "
        "the answer restarts"
    )


def _link(url: str | None) -> str | None:
    """Only http(s) URLs become hyperlinks (never ``javascript:`` and the like)."""
    return url if url is not None and url.lower().startswith(("http://", "https://")) else None


def sources_text(citations: list[Citation]) -> Text:
    """A grounded answer's sources, numbered: title (a hyperlink where the terminal has
    them, OSC 8 via rich), URL, publisher. Built as ``Text``, so nothing in a title is read
    as markup."""
    text = Text("Sources:", style="bold")
    for number, citation in enumerate(citations, 1):
        title = citation.title or citation.url or "(untitled)"
        text.append(f"\n  [{number}] ")
        link = _link(citation.url)
        text.append(title, style=Style(link=link, underline=True) if link else None)
        if citation.url and citation.url != title:
            text.append(f" <{citation.url}>", style="dim")
        if citation.publisher:
            text.append(f" · {citation.publisher}", style="dim")
    return text


def print_sources(console: Console, result: StreamResult) -> None:
    """Print the result's sources below the answer (nothing when it has none)."""
    if result.citations:
        console.print()  # a blank line between the answer and its sources
        console.print(sources_text(result.citations), highlight=False, soft_wrap=True)


def print_partial_summary(console: Console, error: GlooError, *, summary: bool = True) -> None:
    """After a failure that kept a partial answer: its summary line (outcome ``cut`` or
    ``filtered``, seams, tokens), dim. Nothing for a failure before any answer."""
    if summary and isinstance(error, StreamError):
        console.print(summary_line(error.partial), style="dim", highlight=False)


# -- views --------------------------------------------------------------------------------


class TextSoFar:
    """The answer text of the current attempt."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    @property
    def text(self) -> str:
        """The text of the current attempt so far."""
        return "".join(self._parts)


class PlainView(TextSoFar):
    """Plain text written and flushed per token: for pipes, files and ``--no-markdown``."""

    def __init__(self, out: IO[str], err: Console, *, max_attempts: int, summary: bool = True):
        super().__init__()
        self._out = out
        self._err = err
        self._max_attempts = max_attempts
        self._summary = summary
        self._calls_started: set[int] = set()

    def start(self) -> None:
        """Nothing to show until the first token."""
        self._parts = []

    def on_token(self, text: str) -> None:
        """Write the piece now: a reader at the other end of a pipe sees it arrive."""
        self._parts.append(text)
        self._out.write(text)
        self._out.flush()

    def on_retry(self, error: Exception, delay: float) -> None:
        """End the partial's line and say that the answer restarts below it."""
        self._end_line()
        self._err.print(f"⚠ {retry_notice(error, delay, self._max_attempts)}", style="yellow")
        self._parts = []

    def finish(self, result: StreamResult) -> None:
        """End the line; the sources and the summary go to stderr (stdout is the answer)."""
        self._end_line()
        print_sources(self._err, result)
        if self._summary:
            self._err.print(summary_line(result), style="dim", highlight=False)

    def fail(self, error: GlooError, lines: list[str]) -> None:
        """Keep the partial, explain on stderr (then the partial's summary: its outcome)."""
        self._end_line()
        print_failure(self._err, lines)
        print_partial_summary(self._err, error, summary=self._summary)

    def interrupt(self) -> None:
        """Keep the partial, say it was cut."""
        self._end_line()
        self._err.print(stopped_line(self.text), style="yellow")

    def on_event(self, event: AnswerEvent) -> None:
        """Tool activity on stderr (stdout keeps only the answer): arguments as they grow,
        then the whole call pretty-printed, then the result. Reasoning is never written
        into the answer (the summary counts it); the sources follow the answer. A seam gets
        its dim mark on stderr, so the answer on stdout stays one text."""
        err = self._err
        if isinstance(event, AnswerContinued):
            err.print(seam_mark(event), style="dim", highlight=False)
        elif isinstance(event, CallDelta):
            if event.index not in self._calls_started:
                self._calls_started.add(event.index)
                err.print(f"⚙ {event.name}(", end="", style="cyan", highlight=False)
            err.print(event.arguments_delta, end="", style="cyan", markup=False, highlight=False)
        elif isinstance(event, CallComplete):
            err.print(")", style="cyan", highlight=False)
            for line in complete_call_lines(event.call):
                err.print(line, style="cyan", markup=False, highlight=False)
        elif isinstance(event, ToolRan):
            self._calls_started.clear()
            err.print(result_line(event), style="green", markup=False, highlight=False)

    def pause(self) -> None:
        """Nothing is live in a pipe."""

    def resume(self) -> None:
        """Nothing is live in a pipe."""

    def _end_line(self) -> None:
        if self._parts and not self.text.endswith("\n"):
            self._out.write("\n")
        self._out.flush()


class JsonLinesView(TextSoFar):
    """One JSON object per line: each delta, retries, then the result or the error."""

    def __init__(self, out: IO[str], *, max_attempts: int) -> None:
        super().__init__()
        self._out = out
        self._max_attempts = max_attempts

    def _emit(self, obj: dict[str, Any]) -> None:
        self._out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._out.flush()

    def start(self) -> None:
        """Nothing is written until the first delta."""
        self._parts = []

    def on_token(self, text: str) -> None:
        """``{"type": "delta", "content": ...}``."""
        self._parts.append(text)
        self._emit({"type": "delta", "content": text})

    def on_retry(self, error: Exception, delay: float) -> None:
        """``{"type": "retry", ...}``: deltas after it start the answer over."""
        attempt = error.partial.attempts + 1 if isinstance(error, StreamError) else None
        self._emit(
            {
                "type": "retry",
                "error": type(error).__name__,
                "message": str(error),
                "delay": delay,
                "attempt": attempt,
                "max_attempts": self._max_attempts,
            }
        )
        self._parts = []

    def finish(self, result: StreamResult) -> None:
        """``{"type": "result", ...StreamResult.to_dict()}``."""
        self._emit({"type": "result", **result.to_dict()})

    def fail(self, error: GlooError, lines: list[str]) -> None:
        """``{"type": "error", ...}`` with the partial answer when there is one."""
        obj: dict[str, Any] = {"type": "error", "error": type(error).__name__, "message": lines[0]}
        if len(lines) > 1:
            obj["hint"] = lines[1]
        if isinstance(error, StreamError):
            obj["partial"] = error.partial.to_dict()
        self._emit(obj)

    def interrupt(self) -> None:
        """``{"type": "interrupted", "text": ...}``."""
        self._emit({"type": "interrupted", "text": self.text})

    def on_event(self, event: AnswerEvent) -> None:
        """``{"type": "tool_call", ...}`` per argument delta and once whole (``complete``,
        ``valid``), ``{"type": "tool_result", ...}`` once a function ran;
        ``{"type": "reasoning", "content": ...}``; ``{"type": "citations", ...}``;
        ``{"type": "continued", "n", "reason", "upstream", "offset"}`` at a seam."""
        if isinstance(event, CallDelta | CallComplete | ToolRan):
            self._emit(event.to_dict())
        elif isinstance(event, AnswerContinued):
            self._emit({"type": "continued", **event.to_dict()})
        elif isinstance(event, ReasoningDelta):
            self._emit({"type": "reasoning", "content": event.text})
        elif isinstance(event, CitationsReceived):
            self._emit(
                {
                    "type": "citations",
                    "citations": [citation.to_dict() for citation in event.citations],
                    "sources_returned": event.sources_returned,
                }
            )

    def pause(self) -> None:
        """Nothing is live in JSON lines."""

    def resume(self) -> None:
        """Nothing is live in JSON lines."""
