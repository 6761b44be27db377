"""The ``gloo-stream`` command: ``chat``, ``demo``, ``auth``, ``proxy`` and ``simulate``.

A thin face: options are parsed and checked here with the core's own validation, then the
client streams and a view from ``render`` draws. Errors become one or two lines and an exit
status (``cli_errors``), never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console

from gloo_stream import cli_servers
from gloo_stream.chat_session import ChatSession, run_turn
from gloo_stream.cli_errors import EXIT_STATUS_HELP, ExitStatus, explain, explain_settings
from gloo_stream.client import GlooClient
from gloo_stream.config import GlooSettings
from gloo_stream.errors import GlooError, InvalidRequestError
from gloo_stream.render import (
    AnswerView,
    JsonLinesView,
    PlainView,
    message_console,
)
from gloo_stream.render_live import LiveMarkdownView
from gloo_stream.request import build_chat_request

__all__ = ["app", "main"]

OFFLINE_TOKENS_PER_SECOND = 60.0
DEMO_TOKENS_PER_SECOND = 100.0  # visibly streams, yet the whole demo takes a couple of seconds

app = typer.Typer(
    name="gloo-stream",
    help="Stream Gloo AI chat completions in real time.\n\n"
    "Credentials come from GLOO_API_KEY, or GLOO_CLIENT_ID and GLOO_CLIENT_SECRET "
    "(environment or a .env file in the current directory). Without them, add --offline "
    "to use the built-in simulator.",
    epilog="Examples:  gloo-stream demo  ·  gloo-stream chat 'What is grace?'  ·  "
    "gloo-stream chat  (interactive)  ·  gloo-stream auth\n\n" + EXIT_STATUS_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)

_FIELD_OPTIONS = {
    "messages": "PROMPT",
    "model": "--model",
    "model_family": "--model-family",
    "tradition": "--tradition",
    "temperature": "--temperature",
    "max_tokens": "--max-tokens",
}


def _fail(status: ExitStatus, lines: list[str]) -> typer.Exit:
    """Print an explanation to stderr; the caller raises the returned Exit."""
    err = message_console()
    err.print(f"[bold red]✗[/] {lines[0]}", highlight=False, markup=True)
    for line in lines[1:]:
        err.print(f"  {line}", highlight=False, markup=False)
    return typer.Exit(int(status))


def _positive(value: float | None) -> float | None:
    """Option callback: a duration must be more than zero (exit status 2 otherwise)."""
    if value is not None and not value > 0:
        raise typer.BadParameter(f"must be more than 0 seconds, got {value}")
    return value


def _usage_error(error: InvalidRequestError, command: str = "chat") -> typer.Exit:
    """The core's validation error, naming the option; the caller raises it (exit status 2)."""
    option = _FIELD_OPTIONS.get(error.field or "", "")
    where = f"{option}: " if option else ""
    return _fail(ExitStatus.USAGE, [where + error.message, f"See gloo-stream {command} --help."])


def load_settings(**overrides: Any) -> GlooSettings:
    """Settings from the environment and ``.env``, options winning; exit 2 when invalid."""
    try:
        return GlooSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        raise _fail(ExitStatus.USAGE, explain_settings(error).lines) from None


@contextmanager
def open_client(
    settings: GlooSettings,
    *,
    offline: bool,
    timeout: float | None,
    tokens_per_second: float = OFFLINE_TOKENS_PER_SECOND,
) -> Iterator[tuple[GlooClient, str]]:
    """A client for the configured API, or for an in-process simulator when ``offline``.

    Yields the client and its auth mode (used to word authentication errors).
    """
    timeouts: dict[str, Any] = {
        "timeout": timeout,
        "read_timeout": timeout,
        "first_byte_timeout": timeout,
    }
    if not offline:
        try:
            client = GlooClient(settings=settings, **timeouts)
        except GlooError as error:
            explanation = explain(error, auth_mode=settings.auth_mode)
            raise _fail(explanation.status, explanation.lines) from None
        with client:
            yield client, settings.auth_mode
        return
    # Imported here: the simulator pulls in the ASGI stack, which online runs never need.
    from gloo_stream.simulator import SimulatorConfig, SimulatorServer

    config = SimulatorConfig(tokens_per_second=tokens_per_second)
    with (
        SimulatorServer(config=config, host="127.0.0.1", port=0) as sim,
        GlooClient(
            settings=settings, api_url=sim.api_url, api_key=config.api_keys[0], **timeouts
        ) as client,
    ):
        yield client, "api_key"


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


def _read_prompt(words: list[str] | None) -> str | None:
    """The prompt from the arguments, else from piped stdin; None means interactive."""
    if words:
        return " ".join(words)
    if sys.stdin.isatty():
        return None
    return sys.stdin.read().strip()


_CHAT_HELP = """Stream an answer to PROMPT, or start an interactive chat when no PROMPT is given.

On a terminal the answer is rendered as live markdown; piped or redirected, it is written as
plain text as it arrives. A summary (tokens, finish reason, first-token time, speed) goes to
stderr. Piped stdin is read as the prompt.

[bold]Examples[/]

  gloo-stream chat "What does grace mean?"

  gloo-stream chat --model-family anthropic --temperature 0.3 "Summarise Psalm 23"

  echo "Explain SSE in one paragraph" | gloo-stream chat --no-markdown

  gloo-stream chat --json "hi" | jq -r 'select(.type=="result").text'

  gloo-stream chat --offline        (interactive, against the built-in simulator)

Without --model or --model-family, GLOO_MODEL (or GLOO_MODEL_FAMILY) picks the model when set,
else Gloo auto-routes; servers such as vLLM or Ollama need one of them.

In the interactive chat: /reset, /system TEXT, /model NAME, /family NAME, /help, /exit;
Ctrl-C stops the answer being written (what arrived is kept, marked as cut), Ctrl-D leaves.
"""


@app.command(help=_CHAT_HELP, epilog=EXIT_STATUS_HELP)
def chat(
    prompt: Annotated[
        list[str] | None, typer.Argument(help="The prompt (words are joined).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="An exact model, e.g. gloo-openai-gpt-5-mini (default: GLOO_MODEL, else auto).",
        ),
    ] = None,
    model_family: Annotated[
        str | None,
        typer.Option("--model-family", "-f", help="openai, anthropic, google or 'open source'."),
    ] = None,
    tradition: Annotated[
        str | None,
        typer.Option(help="evangelical, catholic, mainline or not_faith_specific."),
    ] = None,
    system: Annotated[str | None, typer.Option("--system", "-s", help="A system prompt.")] = None,
    temperature: Annotated[
        float | None, typer.Option("--temperature", "-t", help="0 to 2.")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(help="At least 1.")] = None,
    api_url: Annotated[
        str | None, typer.Option(help="Completions URL (default: GLOO_API_URL).")
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Start the simulator in-process and use it.")
    ] = False,
    no_markdown: Annotated[
        bool, typer.Option("--no-markdown", help="Plain text even on a terminal.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            callback=_positive,
            help="Seconds to wait to connect, for the first byte, and between tokens.",
        ),
    ] = None,
    json_lines: Annotated[
        bool, typer.Option("--json", help="One JSON object per line: deltas, then the result.")
    ] = False,
) -> None:
    """Stream an answer, or chat interactively."""
    params: dict[str, Any] = {
        "model": model,
        "model_family": model_family,
        "tradition": tradition,
        "temperature": temperature,
        "max_tokens": max_tokens,
    }
    text = _read_prompt(prompt)
    try:  # the core's rules, before anything is sent; interactive prompts are checked later
        build_chat_request("check" if text is None else text, **params)
    except InvalidRequestError as error:
        raise _usage_error(error) from None
    settings = load_settings(gloo_api_url=api_url)
    with open_client(settings, offline=offline, timeout=timeout) as (client, auth_mode):
        make_view = view_factory(
            json_lines=json_lines,
            markdown=not no_markdown,
            max_attempts=client.retry_policy.max_retries + 1,
        )
        if text is None:
            status = _interactive(client, make_view, params, system, auth_mode)
        else:
            messages = [{"role": "system", "content": system}] if system else []
            messages.append({"role": "user", "content": text})
            status = run_turn(client, messages, params, make_view(), auth_mode=auth_mode).status
    raise typer.Exit(int(status))


def _interactive(
    client: GlooClient,
    make_view: Callable[[], AnswerView],
    params: dict[str, Any],
    system: str | None,
    auth_mode: str,
) -> ExitStatus:
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


_DEMO_HELP = """Run the tutorial's main.py: one answer accumulated, then one typed out live.

Uses the Gloo API when credentials are configured; otherwise starts the built-in simulator
and says so on the first line (this is what `make run` does on a fresh clone). Against a
server that requires a model (vLLM, Ollama...), give --model or set GLOO_MODEL.

[bold]Examples[/]

  gloo-stream demo

  gloo-stream demo --offline      (the simulator even when credentials are set)

  gloo-stream demo --model llama3.1     (GLOO_API_URL and GLOO_API_KEY set for Ollama)
"""


@app.command(help=_DEMO_HELP, epilog=EXIT_STATUS_HELP)
def demo(
    offline: Annotated[
        bool, typer.Option("--offline", help="Use the built-in simulator even with credentials.")
    ] = False,
    api_url: Annotated[
        str | None, typer.Option(help="Completions URL (default: GLOO_API_URL).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="An exact model (default: GLOO_MODEL, else auto)."),
    ] = None,
) -> None:
    """The tutorial's demo."""
    from gloo_stream.demo import demo_banner, run_demo

    params: dict[str, Any] = {"model": model} if model is not None else {}
    try:
        build_chat_request("check", **params)
    except InvalidRequestError as error:
        raise _usage_error(error, "demo") from None
    settings = load_settings(gloo_api_url=api_url)
    use_simulator = offline or settings.auth_mode == "none"
    if not offline:
        print(demo_banner(settings, use_simulator=use_simulator, model=model) + "\n", flush=True)
    with open_client(
        settings, offline=use_simulator, timeout=None, tokens_per_second=DEMO_TOKENS_PER_SECOND
    ) as (client, auth_mode):
        status = run_demo(client, sys.stdout, message_console(), auth_mode=auth_mode, params=params)
    raise typer.Exit(int(status))


_AUTH_HELP = """Check the credentials step by step, the tutorial's step one.

Credentials found (which mode) · access token obtained (expiry) · cached token reused ·
completions endpoint answers 200 with text/event-stream. Each step prints ✓, or ✗ with the
reason and the fix. Secrets are never printed. Exit status 0 only when every step passes.

[bold]Examples[/]

  gloo-stream auth

  GLOO_API_URL=http://127.0.0.1:8765/ai/v2/chat/completions gloo-stream auth

  gloo-stream auth --offline      (against the built-in simulator's client credentials)
"""


@app.command(help=_AUTH_HELP, epilog=EXIT_STATUS_HELP)
def auth(
    api_url: Annotated[
        str | None, typer.Option(help="Completions URL (default: GLOO_API_URL).")
    ] = None,
    token_url: Annotated[
        str | None, typer.Option(help="OAuth2 token URL (default: GLOO_TOKEN_URL).")
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Check against the built-in simulator.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(callback=_positive, help="Seconds to wait for each answer.")
    ] = 15.0,
) -> None:
    """Check credentials."""
    from gloo_stream.auth_check import run_auth_check

    out = message_console(stderr=False)
    if not offline:
        settings = load_settings(gloo_api_url=api_url, gloo_token_url=token_url)
        raise typer.Exit(int(run_auth_check(settings, out, timeout=timeout)))
    from gloo_stream.simulator import SimulatorConfig, SimulatorServer

    config = SimulatorConfig()
    with SimulatorServer(config=config) as sim:
        settings = GlooSettings(
            gloo_api_key=None,
            gloo_client_id=config.client_id,
            gloo_client_secret=SecretStr(config.client_secret),
            gloo_api_url=sim.api_url,
            gloo_token_url=sim.token_url,
        )
        status = run_auth_check(settings, out, timeout=timeout)
    raise typer.Exit(int(status))


app.command(help=cli_servers.PROXY_HELP)(cli_servers.proxy)
app.command(help=cli_servers.SIMULATE_HELP)(cli_servers.simulate)


def main() -> None:
    """Console-script entry point: a bug is reported in two lines, not a traceback."""
    try:
        app(prog_name="gloo-stream")
    except Exception as error:
        if os.environ.get("GLOO_STREAM_DEBUG"):
            raise
        raise SystemExit(
            _fail(
                ExitStatus.FAILURE,
                [
                    f"Unexpected error: {type(error).__name__}: {error}",
                    "This is a bug; run with GLOO_STREAM_DEBUG=1 to see the traceback.",
                ],
            ).exit_code
        ) from None


if __name__ == "__main__":
    main()
