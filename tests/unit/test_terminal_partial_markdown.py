"""close_open_inline (the terminal's rule for markdown cut off mid-construct) and the live view
that uses it: no raw ``**``, backtick or ``[`` while an answer streams or after it was cut."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from rich.markdown import Markdown

from gloo_stream.accumulate import StreamResult
from gloo_stream.cli.partial_markdown import close_open_inline
from gloo_stream.cli.render_live import LiveMarkdownView
from gloo_stream.simulator import expected_answer

# One table for both implementations: the page's partial-markdown.js passes it too.
CASES = json.loads((Path(__file__).parents[1] / "partial_markdown_cases.json").read_text())
RAW_MARKERS = ("*", "`", "[", "]")


@pytest.mark.parametrize(("text", "shown"), CASES["cases"])
def test_open_inline_markup_is_closed_or_hidden(text: str, shown: str) -> None:
    assert close_open_inline(text) == shown


def plain(markdown: str) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system=None).print(Markdown(markdown))
    return buffer.getvalue()


@pytest.mark.parametrize("prompt", ["hi", "How do tokens stream?", "Explain SSE", "café"])
def test_no_prefix_of_an_answer_shows_raw_markers(prompt: str) -> None:
    # The simulator's answers carry bold, italics, code, a fence and a link, streamed a token
    # at a time: every prefix is a frame a user could see.
    tokens = expected_answer([{"role": "user", "content": prompt}])
    text = ""
    for token in tokens:
        text += token
        rendered = plain(close_open_inline(text))
        assert not [m for m in RAW_MARKERS if m in rendered], (text, rendered)
    assert close_open_inline(text) == text  # the whole answer is left as it was sent


def test_text_inside_an_open_code_fence_is_left_alone() -> None:
    text = "Intro\n\n```python\nprint('**not bold')  # `tick"
    assert close_open_inline(text) == text


def result(text: str, finish_reason: str = "stop") -> StreamResult:
    return StreamResult(text=text, finish_reason=finish_reason, token_count=3, duration_ms=10.0)


def live_view() -> tuple[LiveMarkdownView, io.StringIO]:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=60, height=20, color_system=None)
    err = Console(file=io.StringIO(), width=200)
    return LiveMarkdownView(console, err, max_attempts=1, refresh_per_second=1), buffer


def frame(view: LiveMarkdownView) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=60, color_system=None).print(view._renderable())
    return buffer.getvalue()


def test_live_frames_never_flash_raw_markers() -> None:
    view, _ = live_view()
    view.start()
    try:
        for token, shown in [
            ("Key idea: **", "Key idea:"),
            ("tokens", "Key idea: tokens"),
            (" arrive** and `stream", "Key idea: tokens arrive and stream"),
            ("_tokens` — see [the do", "tokens — see the do"),
        ]:
            view.on_token(token)
            got = frame(view)
            assert shown in got
            assert not [m for m in RAW_MARKERS if m in got], got
    finally:
        view.interrupt()


def test_a_stopped_answer_keeps_its_cut_markers_closed() -> None:
    view, screen = live_view()
    view.start()
    view.on_token("The answer is **almost")
    view.interrupt()
    assert "The answer is almost" in screen.getvalue()
    assert "**" not in screen.getvalue()


def test_an_answer_cut_by_the_token_limit_is_closed_too() -> None:
    view, screen = live_view()
    view.start()
    view.on_token("Call `stream_tok")
    view.finish(result("Call `stream_tok", finish_reason="length"))
    assert "Call stream_tok" in screen.getvalue()
    assert "`" not in screen.getvalue()


def test_a_finished_answer_is_drawn_as_sent() -> None:
    # A literal, unmatched marker in a complete answer is the model's text: never "fixed".
    view, screen = live_view()
    view.start()
    view.on_token("Use a*b, not **")
    view.finish(result("Use a*b, not **"))
    assert "Use a*b, not **" in screen.getvalue()
