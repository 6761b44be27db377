"""Unit tests for the terminal views, the markdown block splitter and error explanations."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from gloo_stream.accumulate import StreamResult
from gloo_stream.cli.failures import ExitStatus, explain
from gloo_stream.cli.render import JsonLinesView, PlainView, retry_notice, summary_line
from gloo_stream.cli.render_live import LiveMarkdownView, TrimmedMarkdown, split_settled
from gloo_stream.errors import (
    AuthenticationError,
    ContentFilterError,
    InvalidRequestError,
    MissingCredentialsError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamDisconnectedError,
)


def result(text: str = "Hello world", **kwargs: object) -> StreamResult:
    base: dict[str, object] = {
        "text": text,
        "finish_reason": "stop",
        "token_count": 2,
        "duration_ms": 1500.0,
        "ttft_ms": 500.0,
        "model": "gloo-openai-gpt-5-mini",
        "routing": {"routing_mechanism": "auto_routing"},
    }
    base.update(kwargs)
    return StreamResult(**base)  # type: ignore[arg-type]


def dropped(partial_text: str = "Hel", attempts: int = 1) -> StreamDisconnectedError:
    partial = result(partial_text, interrupted=True, attempts=attempts, error="disconnected")
    return StreamDisconnectedError(
        "The connection dropped mid-stream (RemoteProtocolError); the partial answer is kept",
        partial=partial,
    )


def text_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, soft_wrap=True), buffer


# -- split_settled ------------------------------------------------------------------------


def test_split_settled_keeps_the_block_being_written() -> None:
    assert split_settled("# Title\n\nFirst para.\n\nSecond") == ("# Title\n\nFirst para.", "Second")


def test_split_settled_without_a_finished_block() -> None:
    assert split_settled("One paragraph\nstill going") == ("", "One paragraph\nstill going")
    assert split_settled("") == ("", "")


def test_split_settled_never_cuts_inside_a_code_fence() -> None:
    text = "Intro\n\n```python\na = 1\n\nb = 2\n"
    assert split_settled(text) == ("Intro", "```python\na = 1\n\nb = 2\n")


def test_split_settled_after_a_closed_fence() -> None:
    text = "```\ncode\n\nmore\n```\n\nNext"
    assert split_settled(text) == ("```\ncode\n\nmore\n```", "Next")


def test_split_settled_rejoins_to_the_same_blocks() -> None:
    text = "## T\n\n- a\n- b\n\n```\nx\n```\n\nSee [x](y)."
    settled, rest = split_settled(text)
    assert f"{settled}\n\n{rest}" == text


# -- notices ------------------------------------------------------------------------------


def test_summary_line_has_the_numbers_a_user_wants() -> None:
    line = summary_line(result(token_count=11, attempts=2))
    assert "11 tokens" in line
    assert "finish_reason=stop" in line
    assert "first token 500 ms" in line
    assert "10.0 tokens/s" in line
    assert "1.50 s" in line
    assert "2 attempts" in line
    assert "gloo-openai-gpt-5-mini (auto_routing)" in line


def test_retry_notice_counts_attempts() -> None:
    notice = retry_notice(dropped(attempts=2), 1.25, 3)
    assert notice.startswith("The connection dropped mid-stream (RemoteProtocolError)")
    assert "retrying in 1.2 s (attempt 3 of 3)" in notice
    assert "partial answer is kept" not in notice  # it is about to be replaced


def test_retry_notice_before_the_stream_has_nothing_to_restart() -> None:
    error = RateLimitError("Rate limit exceeded (429): Too many requests", status_code=429)
    assert retry_notice(error, 20, 3) == (
        "Rate limit exceeded (429): Too many requests; retrying in 20.0 s"
    )


# -- views --------------------------------------------------------------------------------


def test_plain_view_writes_each_token_and_ends_the_line() -> None:
    err, err_buffer = text_console()
    out = io.StringIO()
    view = PlainView(out, err, max_attempts=3)
    view.start()
    for token in ("Hello", " world"):
        view.on_token(token)
    assert out.getvalue() == "Hello world"
    view.finish(result())
    assert out.getvalue() == "Hello world\n"
    assert "finish_reason=stop" in err_buffer.getvalue()


def test_plain_view_retry_starts_a_new_line_and_resets_the_text() -> None:
    err, err_buffer = text_console()
    out = io.StringIO()
    view = PlainView(out, err, max_attempts=3)
    view.start()
    view.on_token("Hel")
    view.on_retry(dropped(), 0.5)
    assert view.text == ""
    view.on_token("Hello")
    assert out.getvalue() == "Hel\nHello"
    assert "attempt 2 of 3" in err_buffer.getvalue()


def test_plain_view_interrupt_keeps_the_partial() -> None:
    err, err_buffer = text_console()
    out = io.StringIO()
    view = PlainView(out, err, max_attempts=1)
    view.start()
    view.on_token("Half")
    view.interrupt()
    assert out.getvalue() == "Half\n"
    assert view.text == "Half"
    assert "Stopped" in err_buffer.getvalue()


def test_json_lines_view_emits_deltas_retry_and_result() -> None:
    out = io.StringIO()
    view = JsonLinesView(out, max_attempts=3)
    view.start()
    view.on_token("Hel")
    view.on_retry(dropped(), 0.5)
    view.on_token("Hello")
    view.finish(result("Hello"))
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["type"] for e in events] == ["delta", "retry", "delta", "result"]
    assert events[1]["attempt"] == 2
    assert events[-1]["text"] == "Hello"
    assert events[-1]["complete"] is True


def test_json_lines_view_error_carries_the_partial() -> None:
    out = io.StringIO()
    view = JsonLinesView(out, max_attempts=1)
    view.start()
    error = dropped("Hel")
    view.fail(error, ["what happened", "what to do"])
    event = json.loads(out.getvalue())
    assert event == {
        "type": "error",
        "error": "StreamDisconnectedError",
        "message": "what happened",
        "hint": "what to do",
        "partial": error.partial.to_dict(),
    }


def terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=60, height=10, color_system=None)
    return console, buffer


def test_live_view_leaves_the_final_answer_on_screen() -> None:
    console, buffer = terminal()
    err, err_buffer = text_console()
    view = LiveMarkdownView(console, err, max_attempts=3)
    view.start()
    for token in ("**Bold**", " and", " plain"):
        view.on_token(token)
    view.finish(result("**Bold** and plain"))
    assert "Bold and plain" in buffer.getvalue()  # rendered as markdown, not raw
    assert "finish_reason=stop" in err_buffer.getvalue()


def test_live_view_settles_finished_blocks_of_a_tall_answer() -> None:
    console, buffer = terminal()
    err, _ = text_console()
    view = LiveMarkdownView(console, err, max_attempts=1, refresh_per_second=1)
    view.start()
    paragraphs = [f"Paragraph number {i}." for i in range(8)]
    for paragraph in paragraphs:
        view.on_token(paragraph)
        view.on_token("\n\n")
    assert len(view._tail) < len("\n\n".join(paragraphs))  # most of it was printed for good
    view.finish(result("\n\n".join(paragraphs)))
    screen = buffer.getvalue()
    for paragraph in paragraphs:
        assert paragraph in screen


def test_live_view_retry_replaces_the_partial_with_a_notice() -> None:
    console, _ = terminal()
    err, _ = text_console()
    view = LiveMarkdownView(console, err, max_attempts=3)
    view.start()
    view.on_token("Partial")
    view.on_retry(dropped("Partial"), 0.1)
    assert view.text == ""
    assert view._stale == "Partial"  # still shown while the retry waits
    view.on_token("Fresh")
    assert view._stale is None
    view.finish(result("Fresh"))


def test_trimmed_markdown_drops_only_outer_blank_lines() -> None:
    console = Console(file=io.StringIO(), width=40)
    lines = console.render_lines(TrimmedMarkdown("- a\n- b"), console.options, pad=False)
    texts = ["".join(seg.text for seg in line).rstrip() for line in lines]
    assert texts == [" • a", " • b"]


# -- explanations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidRequestError("temperature must be...", field="temperature"), ExitStatus.USAGE),
        (MissingCredentialsError(), ExitStatus.AUTH),
        (AuthenticationError("Authentication failed (401)", status_code=401), ExitStatus.AUTH),
        (PermissionDeniedError("Authorization failed (403)", status_code=403), ExitStatus.AUTH),
        (RateLimitError("Rate limit exceeded (429)", status_code=429), ExitStatus.RATE_LIMIT),
        (ServerError("API error (502): bad gateway", status_code=502), ExitStatus.UPSTREAM),
        (dropped(), ExitStatus.UPSTREAM),
        (ContentFilterError("filtered", partial=result(interrupted=True)), ExitStatus.UPSTREAM),
    ],
)
def test_every_error_has_a_status_and_at_most_two_lines(
    error: Exception, status: ExitStatus
) -> None:
    explanation = explain(error)  # type: ignore[arg-type]
    assert explanation.status is status
    assert 1 <= len(explanation.lines) <= 2
    assert explanation.lines[0] == str(error)


def test_rate_limit_hint_uses_the_servers_wait() -> None:
    error = RateLimitError("Rate limit exceeded (429)", status_code=429, retry_after=30)
    assert "wait 30 s" in explain(error).lines[1]


def test_auth_hint_names_the_variable_of_the_mode_in_use() -> None:
    error = AuthenticationError("Authentication failed (401)", status_code=401)
    assert "GLOO_API_KEY" in explain(error, auth_mode="api_key").lines[1]
    assert "GLOO_CLIENT_SECRET" in explain(error, auth_mode="client_credentials").lines[1]


def test_stream_failure_says_how_often_it_was_tried() -> None:
    assert "after 3 attempts" in explain(dropped(attempts=3)).lines[1]
