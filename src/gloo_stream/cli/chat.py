"""One answer streamed through a view (``run_turn``), and the interactive multi-turn session.

The client decides everything about the request (validation, retries, what counts as cut);
this module only picks the view, keeps the conversation and tells the view what happened.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.text import Text

from gloo_stream.accumulate import ToolCall
from gloo_stream.cli.failures import ExitStatus, explain, message_console
from gloo_stream.cli.render import AnswerView, JsonLinesView, PlainView
from gloo_stream.cli.render_live import LiveMarkdownView
from gloo_stream.cli.tool_calls import one_line_arguments
from gloo_stream.client import GlooClient
from gloo_stream.errors import BadRequestError, GlooError, InvalidRequestError, StreamError
from gloo_stream.request import build_chat_request, names_routing, with_defaults
from gloo_stream.tools import Approve

__all__ = [
    "ChatSession",
    "Turn",
    "asking_through",
    "run_interactive",
    "run_turn",
    "terminal_approval",
    "view_factory",
]

PROMPT = "› "  # noqa: RUF001  (a prompt glyph, not a typo)
HELP = """\
Commands:
  /reset          forget the conversation (the system prompt stays)
  /system TEXT    set the system prompt (/system alone clears it)
  /model NAME     use this exact model (/model auto: let Gloo choose;
                  /model default: back to GLOO_MODEL, auto when unset)
  /family NAME    use a model family: openai, anthropic, google, open source
  /help           this list
  /exit           leave (Ctrl-D works too)
Ctrl-C stops the answer being written and keeps what arrived, marked as cut."""


def view_factory(
    *, json_lines: bool, markdown: bool, max_attempts: int
) -> Callable[[], AnswerView]:
    """Picks the view for where stdout goes: JSON lines, live markdown (TTY) or plain text."""
    out = Console()
    err = message_console()

    def make() -> AnswerView:
        if json_lines:
            return JsonLinesView(sys.stdout, max_attempts=max_attempts)
        if markdown and out.is_terminal:
            return LiveMarkdownView(out, err, max_attempts=max_attempts)
        return PlainView(sys.stdout, err, max_attempts=max_attempts)

    return make


@dataclass(slots=True)
class Turn:
    """How one answer ended: its text (partial when cut) and the exit status it implies."""

    status: ExitStatus
    text: str = ""
    cut: str | None = None  # why the answer is partial, None when it is whole


def run_turn(
    client: GlooClient,
    messages: list[dict[str, Any]],
    params: dict[str, Any],
    view: AnswerView,
    *,
    auth_mode: str = "none",
    in_chat: str | None = None,
) -> Turn:
    """Stream one answer into ``view``; never raises for API errors or Ctrl-C.

    ``in_chat`` is the interactive chat's own advice for a server that requires a model.
    """
    view.start()
    if params.get("approve_tool") is not None:  # --tools: the view asks through itself
        params = {**params, "approve_tool": asking_through(view, params["approve_tool"])}
    try:
        result = client.complete(
            messages,
            on_token=view.on_token,
            on_retry=view.on_retry,
            on_event=view.on_event,
            **params,
        )
    except KeyboardInterrupt:
        # complete() closed the response on its way out, so the server sees the disconnect.
        view.interrupt()
        return Turn(ExitStatus.INTERRUPTED, view.text, cut="stopped by the user")
    except GlooError as error:
        explanation = explain(error, auth_mode=auth_mode)
        lines = explanation.lines
        if in_chat is not None and isinstance(error, BadRequestError) and error.missing_model:
            lines = [lines[0], in_chat]  # the fix at the chat's prompt, not a command option
        view.fail(error, lines)
        if isinstance(error, StreamError):
            return Turn(explanation.status, error.partial.text, cut=error.partial.error)
        return Turn(explanation.status)
    view.finish(result)
    return Turn(ExitStatus.OK, result.text)


def asking_through(view: AnswerView, ask: Approve) -> Approve:
    """``ask`` with the view paused around it, so the question is not drawn over."""

    def approve(call: ToolCall) -> bool:
        view.pause()
        try:
            return ask(call)
        finally:
            view.resume()

    return approve


def terminal_approval(console: Console) -> Approve:
    """Asks on the terminal before each tool call runs: ``y`` runs it, anything else not."""

    def approve(call: ToolCall) -> bool:
        arguments = one_line_arguments(call)
        question = f"Run {call.name}({arguments})? [y/N] "
        try:
            answer = console.input(Text(question, style="bold"))
        except EOFError:
            return False
        return answer.strip().lower() in ("y", "yes")

    return approve


@dataclass
class ChatSession:
    """The conversation and its settings; ``handle`` takes one line the user typed."""

    client: GlooClient
    make_view: Callable[[], AnswerView]
    console: Console
    params: dict[str, Any] = field(default_factory=dict)
    system: str | None = None
    auth_mode: str = "none"
    history: list[dict[str, Any]] = field(default_factory=list)

    def messages(self) -> list[dict[str, Any]]:
        """What is sent: the system prompt, then the turns so far."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.history

    def ask(self, prompt: str) -> Turn:
        """Send one user message and keep the answer (a cut one is kept and marked)."""
        self.history.append({"role": "user", "content": prompt})
        turn = run_turn(
            self.client,
            self.messages(),
            self.params,
            self.make_view(),
            auth_mode=self.auth_mode,
            in_chat=self._model_advice(),
        )
        if turn.cut is None and turn.status is ExitStatus.OK:
            self.history.append({"role": "assistant", "content": turn.text})
        elif turn.text:
            # The model should know its last answer was cut short, not that it chose to stop.
            marked = f"{turn.text}\n\n[answer cut off: {turn.cut}]"
            self.history.append({"role": "assistant", "content": marked})
        else:
            self.history.pop()  # no answer at all: forget the question too
        return turn

    def handle(self, line: str) -> bool:
        """Act on one input line; False when the user asked to leave."""
        line = line.strip()
        if not line:
            return True
        if not line.startswith("/"):
            self.ask(line)
            return True
        name, _, arg = line.partition(" ")
        return self._command(name.lower(), arg.strip())

    def _command(self, name: str, arg: str) -> bool:
        if name in ("/exit", "/quit"):
            return False
        if name == "/help":
            self.console.print(HELP, highlight=False)
        elif name == "/reset":
            self.history.clear()
            self._say("Conversation cleared.")
        elif name == "/system":
            self.system = arg or None
            self._say(f"System prompt set: {arg}" if arg else "System prompt cleared.")
        elif name == "/model":
            self._route("model", arg)
        elif name == "/family":
            self._route("model_family", arg)
        else:
            self._say(f"Unknown command {name}; /help lists the commands.", style="yellow")
        return True

    def _route(self, key: str, value: str) -> None:
        if not value:
            self._say(f"Routing: {self.routing()}")
            return
        if value == "default":  # as on the proxy: the settings' default (GLOO_MODEL...)
            routing: dict[str, Any] = {}
        elif value == "auto":  # said explicitly, so it also overrides GLOO_MODEL
            routing = {"auto_routing": True}
        else:
            routing = {key: value}
        try:
            build_chat_request("check", **routing)  # the core's rules, before any request
        except InvalidRequestError as error:
            self._say(error.message, style="red")
            return
        for name in ("model", "model_family", "auto_routing"):
            self.params.pop(name, None)
        self.params.update(routing)
        self._say(f"Routing: {self.routing()}")

    def _model_advice(self) -> str:
        """What to type when the server requires a model, given what is set now."""
        default = self.client.request_defaults.get("model")
        if default and self.params.get("auto_routing"):
            return f"This server requires a model: type /model NAME, or /model default ({default})."
        return (
            "This server requires a model: type /model NAME "
            "(GLOO_MODEL=NAME sets one for every run)."
        )

    def routing(self) -> str:
        """How the model is chosen, in words (naming the setting a default came from)."""
        own = names_routing(self.params)
        params = self.params if own else with_defaults(self.params, self.client.request_defaults)
        source = "" if own else " (GLOO_MODEL)"
        if params.get("model"):
            return f"model {params['model']}{source}"
        if params.get("model_family"):
            return f"model family {params['model_family']}{source and ' (GLOO_MODEL_FAMILY)'}"
        return "auto (Gloo picks the model)"

    def _say(self, text: str, style: str = "dim") -> None:
        self.console.print(text, style=style, highlight=False)

    def loop(self, read_line: Callable[[str], str]) -> ExitStatus:
        """Read lines until /exit or Ctrl-D; Ctrl-C at the prompt just clears the line."""
        while True:
            try:
                line = read_line(PROMPT)
                # handle() is inside the try too: a Ctrl-C just as an answer ends (after the
                # stream, before the next prompt) must not end the session.
                if not self.handle(line):
                    return ExitStatus.OK
            except EOFError:
                self.console.print()
                return ExitStatus.OK
            except KeyboardInterrupt:
                self.console.print()


def run_interactive(
    client: GlooClient,
    make_view: Callable[[], AnswerView],
    params: dict[str, Any],
    system: str | None,
    auth_mode: str,
) -> ExitStatus:
    """The interactive chat on the terminal: a greeting naming the routing, then the loop."""
    with contextlib.suppress(ImportError):  # Windows has no readline; input() still works
        import readline  # noqa: F401  (importing it gives input() line editing and history)
    console = message_console()
    session = ChatSession(
        client=client,
        make_view=make_view,
        console=console,
        params={k: v for k, v in params.items() if v is not None},
        system=system,
        auth_mode=auth_mode,
    )
    console.print(
        f"gloo-stream chat · routing: {session.routing()} · /help for commands · "
        "Ctrl-C stops an answer · Ctrl-D leaves",
        style="dim",
        highlight=False,
    )
    return session.loop(input)
