"""Live markdown on a terminal: rich's ``Live`` region, kept short enough never to repeat lines.

Finished markdown blocks are printed above the live region for good once the answer nears
the screen's height; only the block being written is redrawn. Echo is turned off while the
region is live, so a typed key or an echoed ``^C`` cannot shift the cursor behind rich's back.
While the answer is being written, and when it was cut (stopped, failed, token limit), the
open block's unterminated inline markup is closed (``close_open_inline``) so no raw ``**`` or
backtick flashes up; an answer that ended normally is drawn exactly as it was sent.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.markdown import Markdown
from rich.segment import Segment
from rich.spinner import Spinner
from rich.text import Text

from gloo_stream.accumulate import StreamResult
from gloo_stream.cli.failures import print_failure
from gloo_stream.cli.partial_markdown import close_open_inline
from gloo_stream.cli.render import (
    TextSoFar,
    print_partial_summary,
    print_sources,
    retry_notice,
    seam_mark,
    stopped_line,
    summary_line,
)
from gloo_stream.cli.tool_calls import CallsShown
from gloo_stream.errors import GlooError
from gloo_stream.events import AnswerContinued, AnswerEvent, ReasoningDelta

__all__ = ["LiveMarkdownView", "TrimmedMarkdown", "estimated_height", "split_settled"]

_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def split_settled(text: str) -> tuple[str, str]:
    """Split markdown into the finished blocks and the block still being written.

    A block is finished when a blank line follows it outside a code fence; the rest may
    still change meaning (a table, a fence, a list) as tokens arrive.
    """
    in_fence = False
    cut = 0
    offset = 0
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and not line.strip() and i < len(lines) - 1 and offset > 0:
            cut = offset
        offset += len(line) + 1
    settled = text[:cut].rstrip("\n")
    return (settled, text[cut:].lstrip("\n")) if settled else ("", text)


def estimated_height(text: str, width: int) -> int:
    """Roughly how many terminal rows ``text`` takes (markdown adds a little)."""
    width = max(width, 20)
    return sum(1 + len(line) // width for line in text.split("\n"))


class TrimmedMarkdown:
    """Markdown without blank lines at its top and bottom.

    Rich pads some blocks (a list starts with a blank line), which is right inside one
    document but doubles the gap where the settled blocks printed above meet the live ones.
    """

    def __init__(self, text: str) -> None:
        self.markdown = Markdown(text)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self.markdown, options, pad=False)
        while lines and _is_blank(lines[0]):
            lines.pop(0)
        while lines and _is_blank(lines[-1]):
            lines.pop()
        for line in lines:
            yield from line
            yield Segment.line()


def _is_blank(line: list[Segment]) -> bool:
    # A code block's padding is spaces on a background colour: that line is not blank.
    return all(
        not seg.text.strip() and (seg.style is None or not seg.style.bgcolor) for seg in line
    )


class LiveMarkdownView(TextSoFar):
    """Live markdown on a TTY: a spinner until the first token, then the answer as it grows.

    Rich's ``Live`` redraws its region in place, throttled to ``refresh_per_second``; the
    final frame stays (``transient=False``). A region taller than the screen cannot be
    redrawn in place (the cursor cannot move above the top row) and would repeat lines, so
    once the answer nears the screen's height its finished blocks are printed above the
    region for good and only the block being written stays live.
    """

    def __init__(
        self,
        console: Console,
        err: Console,
        *,
        max_attempts: int,
        refresh_per_second: float = 12.0,
        summary: bool = True,
    ) -> None:
        super().__init__()
        self._console = console
        self._err = err
        self._max_attempts = max_attempts
        self._refresh = refresh_per_second
        self._summary = summary
        self._live: Live | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self._calls = CallsShown()  # tool calls of this answer, drawn above its text
        self._parts = []
        self._tail = ""  # the part still in the live region
        self._settled_any = False
        self._stale: str | None = None  # a failed attempt's text, shown until the retry speaks
        self._notice: str | None = None
        self._cache: tuple[str, RenderableType] | None = None
        self._closing = False  # the last frame must not freeze a spinner on screen
        self._complete = False  # ended normally: the last frame shows the text as sent
        self._thinking = ""  # a reasoning model's thoughts: shown dimmed, never the answer
        self._thoughts = 0
        self._seams: list[str] = []  # a continued answer's marks: dim below, then on stderr

    def start(self) -> None:
        """Show the spinner."""
        self._reset_state()
        self._go_live()

    def _go_live(self) -> None:
        self._closing = False
        self._live = Live(
            console=self._console,
            get_renderable=self._renderable,
            refresh_per_second=self._refresh,
            transient=False,
            vertical_overflow="ellipsis",
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._restore_terminal = _quiet_terminal(self._console)
        self._live.start()

    def _renderable(self) -> RenderableType:
        # Called by Live's refresh thread; rendering the same text twice reuses the parse.
        tail, stale, notice = self._tail, self._stale, self._notice
        calls = self._calls.text()
        key = (
            f"{stale}\x00{notice}\x00{tail}\x00{self._closing}\x00{self._complete}"
            f"\x00{self._thoughts}\x00{calls}\x00{len(self._seams)}"
        )
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        items: list[RenderableType] = []
        if self._thoughts:
            items.append(self._thinking_renderable())
        if calls:
            items.append(Text(calls, style="cyan"))
        if stale is not None:
            items.append(TrimmedMarkdown(close_open_inline(stale)))
        if notice is not None:
            items.append(Text(f"⚠ {notice}", style="yellow"))
        if tail:
            items.append(TrimmedMarkdown(tail if self._complete else close_open_inline(tail)))
        elif not self._parts and not self._closing and not self._thoughts and not calls:
            waiting = "retrying…" if notice else "waiting for the first token…"
            items.append(Spinner("dots", text=Text(waiting, style="dim")))
        if self._seams and not self._closing:
            # Below the markdown, never inside it; the last frame drops it (stderr has it).
            items.append(Text(self._seams[-1], style="dim"))
        renderable: RenderableType = Group(*items)
        self._cache = (key, renderable)
        return renderable

    def _thinking_renderable(self) -> RenderableType:
        # While the model thinks: a spinner, the count, the last of its thoughts dimmed.
        # Once the answer starts (or ends): one dim line saying how long it thought.
        count = f"thinking… {self._thoughts} tokens"
        if self._parts or self._closing:
            return Text(f"💭 thought for {self._thoughts} tokens", style="dim")
        width = max(self._console.size.width - 4, 20)
        last = " ".join(self._thinking.split())[-3 * width :]
        return Group(
            Spinner("dots", text=Text(count, style="dim")),
            Text(last, style="dim italic"),
        )

    def on_token(self, text: str) -> None:
        """Add the piece; the refresh thread draws it at the next frame."""
        self._parts.append(text)
        self._stale = None
        self._tail += text
        if "\n" in text:
            self._settle_if_tall()

    def _settle_if_tall(self) -> None:
        live = self._live
        if live is None:
            return
        size = self._console.size
        if estimated_height(self._tail, size.width) < max(4, size.height - 6):
            return
        settled, rest = split_settled(self._tail)
        if not settled:
            return
        # Under Live's own lock, so no frame shows the settled text twice or not at all.
        with live._lock:
            self._tail = rest
            if self._notice is not None:
                self._console.print(Text(f"⚠ {self._notice}", style="yellow"))
                self._notice = None
            self._console.print(TrimmedMarkdown(settled))
            self._console.print()  # the one blank line between blocks
            self._settled_any = True

    def on_retry(self, error: Exception, delay: float) -> None:
        """Keep the partial with a notice below it; the new answer will take its place."""
        notice = retry_notice(error, delay, self._max_attempts)
        if self._settled_any:
            # Part of the partial is printed for good: end this region, start afresh below.
            self._stop()
            self._err.print(f"⚠ {notice}", style="yellow")
            self.start()
            return
        self._stale = self._tail
        self._tail = ""
        self._parts = []
        self._notice = notice

    def finish(self, result: StreamResult) -> None:
        """Draw the last frame in full, then the summary on stderr."""
        # Cut by the token limit, the text can end mid-markup like a stopped one.
        self._complete = result.finish_reason != "length"
        self._stop()
        print_sources(self._console, result)  # a terminal: below the answer, as links
        if self._summary:
            self._err.print(summary_line(result), style="dim", highlight=False)

    def fail(self, error: GlooError, lines: list[str]) -> None:
        """Leave the partial on screen and explain below it."""
        self._stale_into_tail()
        self._stop()
        print_failure(self._err, lines)
        print_partial_summary(self._err, error, summary=self._summary)

    def interrupt(self) -> None:
        """Leave the partial on screen, marked as stopped."""
        self._stale_into_tail()
        self._stop()
        self._err.print(stopped_line(self.text), style="yellow")

    def on_event(self, event: AnswerEvent) -> None:
        """Reasoning is drawn dimmed above the answer, never into it; a seam's dim mark
        below it; a tool call's arguments grow in the live region, then show pretty-printed."""
        if isinstance(event, ReasoningDelta):
            self._thinking += event.text
            self._thoughts += 1
        elif isinstance(event, AnswerContinued):
            self._seams.append(seam_mark(event))
        else:
            self._calls.add(event)

    def pause(self) -> None:
        """End the live region (what it shows stays printed) before a question is asked."""
        self._stop()
        self._calls.clear()
        self._tail = ""  # printed with the region; the answer goes on below the question

    def resume(self) -> None:
        """A new live region below the question."""
        self._go_live()

    def _stale_into_tail(self) -> None:
        # A failure while a retry waits: what stays on screen is the text that arrived.
        if self._stale is not None and not self._tail:
            self._tail, self._stale = self._stale, None
        self._notice = None

    def _stop(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            self._closing = True
            try:
                live.stop()
            finally:
                self._restore_terminal()
        for mark in self._seams:  # the answer's seams, for good, below it on stderr
            self._err.print(mark, style="dim", highlight=False)
        self._seams = []


def _quiet_terminal(console: Console) -> Callable[[], None]:
    """Stop the terminal echoing keys into the live region; returns the function that undoes it.

    An echoed ``^C`` (or any typed key) moves the cursor behind rich's back, and the next
    redraw then repeats lines. Ctrl-C still raises: only echo is turned off, not signals.
    """
    try:
        import termios
    except ImportError:  # not POSIX: nothing to quieten
        return lambda: None
    try:
        fd = console.file.fileno()
        saved = termios.tcgetattr(fd)
        quiet = list(saved)
        quiet[3] &= ~(termios.ECHO | termios.ECHOCTL)
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
    except (OSError, ValueError, AttributeError, termios.error):
        return lambda: None  # not a terminal after all (or a file-like without a descriptor)

    def restore() -> None:
        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(fd, termios.TCSANOW, saved)

    return restore
