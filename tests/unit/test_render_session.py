"""Unit tests for one turn and the interactive session, with a scripted stand-in client."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rich.console import Console

from gloo_stream.accumulate import StreamResult
from gloo_stream.cli.chat import ChatSession, run_turn
from gloo_stream.cli.failures import ExitStatus
from gloo_stream.cli.render import AnswerView, PlainView
from gloo_stream.errors import AuthenticationError, StreamDisconnectedError
from gloo_stream.retry import RetryPolicy

Script = Callable[[Callable[[str], None], Callable[[Exception, float], None]], StreamResult]


class ScriptedClient:
    """Plays one scripted answer per ``complete`` call and records what it was sent."""

    def __init__(self, *scripts: Script, request_defaults: dict[str, Any] | None = None) -> None:
        self._scripts: Iterator[Script] = iter(scripts)
        self.calls: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []
        self.retry_policy = RetryPolicy()
        self.request_defaults = request_defaults or {}

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        on_token: Callable[[str], None],
        on_retry: Callable[[Exception, float], None],
        on_event: Callable[[Any], None] | None = None,
        **params: Any,
    ) -> StreamResult:
        self.calls.append(([dict(m) for m in messages], params))
        return next(self._scripts)(on_token, on_retry)


def answers(*tokens: str) -> Script:
    def play(on_token: Callable[[str], None], on_retry: object) -> StreamResult:
        for token in tokens:
            on_token(token)
        return StreamResult(text="".join(tokens), finish_reason="stop", token_count=len(tokens))

    return play


def interrupted_after(*tokens: str) -> Script:
    def play(on_token: Callable[[str], None], on_retry: object) -> StreamResult:
        for token in tokens:
            on_token(token)
        raise KeyboardInterrupt

    return play


def fails(error: Exception) -> Script:
    def play(on_token: object, on_retry: object) -> StreamResult:
        raise error

    return play


def session(client: ScriptedClient) -> tuple[ChatSession, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    err_console = Console(file=err, width=200)

    def make_view() -> AnswerView:
        return PlainView(out, err_console, max_attempts=3)

    chat = ChatSession(client=client, make_view=make_view, console=err_console)  # type: ignore[arg-type]
    return chat, out, err


def test_run_turn_returns_the_answer() -> None:
    client = ScriptedClient(answers("Hi", "!"))
    view = PlainView(io.StringIO(), Console(file=io.StringIO()), max_attempts=1)
    turn = run_turn(client, [{"role": "user", "content": "x"}], {}, view)  # type: ignore[arg-type]
    assert (turn.status, turn.text, turn.cut) == (ExitStatus.OK, "Hi!", None)


def test_run_turn_ctrl_c_is_status_130_with_the_partial() -> None:
    client = ScriptedClient(interrupted_after("Par", "tial"))
    view = PlainView(io.StringIO(), Console(file=io.StringIO()), max_attempts=1)
    turn = run_turn(client, [], {}, view)  # type: ignore[arg-type]
    assert (turn.status, turn.text, turn.cut) == (
        ExitStatus.INTERRUPTED,
        "Partial",
        "stopped by the user",
    )


def test_history_grows_turn_by_turn_with_the_system_prompt_first() -> None:
    client = ScriptedClient(answers("One"), answers("Two"))
    chat, _, _ = session(client)
    chat.handle("/system Be brief.")
    chat.handle("first")
    chat.handle("second")
    assert client.calls[1][0] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "One"},
        {"role": "user", "content": "second"},
    ]


def test_a_cut_answer_stays_in_history_marked() -> None:
    error = StreamDisconnectedError(
        "dropped", partial=StreamResult(text="Half", interrupted=True, error="disconnected")
    )
    client = ScriptedClient(interrupted_after("Part"), fails(error), answers("ok"))
    chat, _, _ = session(client)
    chat.handle("one")
    chat.handle("two")
    chat.handle("three")
    sent = client.calls[2][0]
    assert sent[1]["content"] == "Part\n\n[answer cut off: stopped by the user]"
    assert sent[3]["content"] == "Half\n\n[answer cut off: disconnected]"


def test_a_question_with_no_answer_is_forgotten() -> None:
    client = ScriptedClient(fails(AuthenticationError("401", status_code=401)), answers("ok"))
    chat, _, err = session(client)
    chat.handle("lost")
    chat.handle("kept")
    assert client.calls[1][0] == [{"role": "user", "content": "kept"}]
    assert "401" in err.getvalue()


def test_model_and_family_commands_use_the_cores_validation() -> None:
    client = ScriptedClient(answers("a"))
    chat, _, err = session(client)
    chat.handle("/family klingon")
    assert "model_family must be one of" in err.getvalue()
    chat.handle("/family anthropic")
    chat.handle("/model gloo-openai-gpt-5-mini")  # replaces the family: one routing at a time
    chat.handle("hi")
    assert client.calls[0][1] == {"model": "gloo-openai-gpt-5-mini"}
    chat.handle("/model auto")
    assert chat.params == {"auto_routing": True}
    assert chat.routing() == "auto (Gloo picks the model)"


def test_routing_names_the_default_model_until_a_command_overrides_it() -> None:
    client = ScriptedClient(answers("a"), request_defaults={"model": "llama3"})
    chat, _, _ = session(client)
    assert chat.routing() == "model llama3 (GLOO_MODEL)"
    chat.handle("/family anthropic")
    assert chat.routing() == "model family anthropic"
    chat.handle("/model auto")  # said explicitly, so it beats GLOO_MODEL
    assert chat.routing() == "auto (Gloo picks the model)"
    chat.handle("hi")
    assert client.calls[0][1] == {"auto_routing": True}


def test_reset_help_unknown_and_exit() -> None:
    client = ScriptedClient(answers("a"))
    chat, _, err = session(client)
    chat.handle("hello")
    assert chat.handle("/reset") is True
    assert chat.history == []
    chat.handle("/help")
    chat.handle("/nope")
    assert "/system TEXT" in err.getvalue()
    assert "Unknown command /nope" in err.getvalue()
    assert chat.handle("/exit") is False


def test_loop_survives_ctrl_c_at_the_prompt_and_leaves_on_ctrl_d() -> None:
    client = ScriptedClient(answers("a"))
    chat, _, _ = session(client)
    inputs: Iterator[str | type[BaseException]] = iter([KeyboardInterrupt, "hi", EOFError])

    def read_line(prompt: str) -> str:
        item = next(inputs)
        if isinstance(item, type):
            raise item
        return item

    assert chat.loop(read_line) is ExitStatus.OK
    assert len(client.calls) == 1


@pytest.mark.parametrize("line", ["", "   "])
def test_blank_lines_send_nothing(line: str) -> None:
    client = ScriptedClient()
    chat, _, _ = session(client)
    assert chat.handle(line) is True
    assert client.calls == []
