"""The ``gloo-stream`` typer app: options parsed and checked, then handed on.

Each command is thin: the core's own validation checks the options before anything is
sent, ``connect`` opens the client, and ``chat``, ``demo`` or ``auth_check`` does the work.
Errors become one or two lines and an exit status (``failures``), never a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from gloo_stream.cli import servers
from gloo_stream.cli.chat import run_interactive, run_turn, view_factory
from gloo_stream.cli.connect import DEMO_TOKENS_PER_SECOND, load_settings, open_client
from gloo_stream.cli.failures import (
    EXIT_STATUS_HELP,
    ExitStatus,
    fail,
    help_paragraphs,
    message_console,
)
from gloo_stream.errors import InvalidRequestError
from gloo_stream.request import build_chat_request

__all__ = ["app", "main"]

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
    "rag_publisher": "--publisher",
    "sources_limit": "--sources",
}


def _positive(value: float | None) -> float | None:
    """Option callback: a duration must be more than zero (exit status 2 otherwise)."""
    if value is not None and not value > 0:
        raise typer.BadParameter(f"must be more than 0 seconds, got {value}")
    return value


def _check_request(prompt: str, params: dict[str, Any], command: str) -> None:
    """The core's rules for a request, before anything is sent; exit 2 naming the option."""
    try:
        build_chat_request(prompt, **{k: v for k, v in params.items() if k != "grounded"})
    except InvalidRequestError as error:
        option = _FIELD_OPTIONS.get(error.field or "", "")
        where = f"{option}: " if option else ""
        lines = [where + error.message, f"See gloo-stream {command} --help."]
        raise fail(ExitStatus.USAGE, lines) from None


def _read_prompt(words: list[str] | None) -> str | None:
    """The prompt from the arguments, else from piped stdin; None means interactive."""
    if words:
        return " ".join(words)
    if sys.stdin.isatty():
        return None
    return sys.stdin.read().strip()


_ApiUrl = Annotated[str | None, typer.Option(help="Completions URL (default: GLOO_API_URL).")]
_Prompt = Annotated[list[str] | None, typer.Argument(help="The prompt (words are joined).")]
_ChatModel = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="An exact model, e.g. gloo-openai-gpt-5-mini (default: GLOO_MODEL, else auto).",
    ),
]
_ModelFamily = Annotated[
    str | None,
    typer.Option("--model-family", "-f", help="openai, anthropic, google or 'open source'."),
]
_Tradition = Annotated[
    str | None, typer.Option(help="evangelical, catholic, mainline or not_faith_specific.")
]
_System = Annotated[str | None, typer.Option("--system", "-s", help="A system prompt.")]
_Temperature = Annotated[float | None, typer.Option("--temperature", "-t", help="0 to 2.")]
_MaxTokens = Annotated[int | None, typer.Option(help="At least 1.")]
_ChatOffline = Annotated[
    bool, typer.Option("--offline", help="Start the simulator in-process and use it.")
]
_NoMarkdown = Annotated[bool, typer.Option("--no-markdown", help="Plain text even on a terminal.")]
_ChatTimeout = Annotated[
    float | None,
    typer.Option(
        callback=_positive,
        help="Seconds to wait to connect, for the first byte, and between tokens.",
    ),
]
_Grounded = Annotated[
    bool,
    typer.Option(
        "--grounded",
        help="A grounded answer from a publisher's content (default publisher GlooGrounded); "
        "its sources are listed after it.",
    ),
]
_Publisher = Annotated[
    str | None,
    typer.Option("--publisher", help="Ground the answer in this publisher (implies --grounded)."),
]
_Sources = Annotated[
    int | None,
    typer.Option("--sources", help="At most this many sources, 1-10 (implies --grounded)."),
]
_ToolsPath = Annotated[
    Path | None,
    typer.Option(
        "--tools",
        help="A Python file whose public functions the model may call (asked before each).",
    ),
]
_Yes = Annotated[bool, typer.Option("--yes", "-y", help="Run --tools calls without asking.")]
_JsonLines = Annotated[
    bool, typer.Option("--json", help="One JSON object per line: deltas, then the result.")
]


_CHAT_HELP = """Stream an answer to PROMPT, or start an interactive chat when no PROMPT is given.

On a terminal the answer is rendered as live markdown; piped or redirected, it is written as
plain text as it arrives. A summary (tokens, finish reason, first-token time, speed) goes to
stderr. Piped stdin is read as the prompt.

[bold]Examples[/]

  gloo-stream chat "What does grace mean?"

  gloo-stream chat --model-family anthropic -t 0.3 "Summarise Psalm 23"

  echo "Explain SSE in one paragraph" | gloo-stream chat --no-markdown

  gloo-stream chat --json "hi" | jq -r 'select(.type=="result").text'

  gloo-stream chat --offline     (interactive, against the built-in simulator)

  gloo-stream chat --grounded --sources 3 "What is hope?"   (sources listed after it)

  gloo-stream chat --tools my_tools.py "What's the weather in Paris?"

With --tools PATH, the public functions of that Python file become tools: the model's calls
stream on the terminal (arguments as they grow, then pretty-printed), each call is asked
about before it runs (--yes: run without asking; without a terminal, --yes is required),
its result goes back to the model and the answer goes on. --json adds
{"type": "tool_call", ...} and {"type": "tool_result", ...} lines.

Without --model or --model-family, GLOO_MODEL (or GLOO_MODEL_FAMILY) picks the model when set,
else Gloo auto-routes; servers such as vLLM or Ollama need one of them.

A reasoning model's thinking is shown dimmed on a terminal (never in a pipe's answer;
--json gives it as "reasoning" lines). --grounded sources go below the answer on a terminal,
to stderr when piped, and as one "citations" line with --json.

In the interactive chat: /reset, /system TEXT, /model NAME, /family NAME, /help, /exit;
Ctrl-C stops the answer being written (what arrived is kept, marked as cut), Ctrl-D leaves.
"""


@app.command(help=help_paragraphs(_CHAT_HELP), epilog=EXIT_STATUS_HELP)
def chat(
    prompt: _Prompt = None,
    model: _ChatModel = None,
    model_family: _ModelFamily = None,
    tradition: _Tradition = None,
    system: _System = None,
    temperature: _Temperature = None,
    max_tokens: _MaxTokens = None,
    api_url: _ApiUrl = None,
    offline: _ChatOffline = False,
    no_markdown: _NoMarkdown = False,
    timeout: _ChatTimeout = None,
    json_lines: _JsonLines = False,
    grounded: _Grounded = False,
    publisher: _Publisher = None,
    sources: _Sources = None,
    tools: _ToolsPath = None,
    yes: _Yes = False,
) -> None:
    """Stream an answer, or chat interactively."""
    params: dict[str, Any] = {
        "model": model,
        "model_family": model_family,
        "tradition": tradition,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "rag_publisher": publisher,
        "sources_limit": sources,
    }
    if grounded or publisher is not None or sources is not None:
        params["include_citations"] = True  # the sources are what the options are for
        params["grounded"] = True
    text = _read_prompt(prompt)
    # Interactive prompts are checked as they are typed; the options are checked now.
    _check_request("check" if text is None else text, params, "chat")
    if tools is not None:
        params.update(_tool_params(tools, yes=yes))
    settings = load_settings(gloo_api_url=api_url)
    with open_client(settings, offline=offline, timeout=timeout) as (client, auth_mode):
        make_view = view_factory(
            json_lines=json_lines,
            markdown=not no_markdown,
            max_attempts=client.retry_policy.max_retries + 1,
        )
        if text is None:
            status = run_interactive(client, make_view, params, system, auth_mode)
        else:
            messages = [{"role": "system", "content": system}] if system else []
            messages.append({"role": "user", "content": text})
            status = run_turn(client, messages, params, make_view(), auth_mode=auth_mode).status
    raise typer.Exit(int(status))


def _tool_params(path: Path, *, yes: bool) -> dict[str, Any]:
    """``tools`` (and, without ``--yes``, the question before each call) from ``--tools``."""
    from gloo_stream.cli.chat import terminal_approval
    from gloo_stream.cli.tool_calls import ToolFileError, load_tools
    from gloo_stream.tools import ToolSet

    try:
        functions = load_tools(path)
        ToolSet(functions)  # each function's schema, now rather than at the first question
    except (ToolFileError, InvalidRequestError) as error:
        raise fail(
            ExitStatus.USAGE, [f"--tools: {error}", "See gloo-stream chat --help."]
        ) from None
    if yes:
        return {"tools": functions}
    if not sys.stdin.isatty():
        raise fail(
            ExitStatus.USAGE,
            [
                "--tools: each call is asked about before it runs, and stdin is not a "
                "terminal to ask on",
                "Add --yes to run the calls without asking.",
            ],
        )
    return {"tools": functions, "approve_tool": terminal_approval(message_console())}


_DEMO_HELP = """Run the tutorial's main.py: one answer accumulated, then one typed out live.

Uses the Gloo API when credentials are configured; otherwise starts the built-in simulator
and says so on the first line (this is what `make run` does on a fresh clone). Against a
server that requires a model (vLLM, Ollama...), give --model or set GLOO_MODEL.

[bold]Examples[/]

  gloo-stream demo

  gloo-stream demo --offline    (the simulator, even with credentials set)

  gloo-stream demo --model llama3.1    (GLOO_API_URL, GLOO_API_KEY: Ollama)
"""


@app.command(help=help_paragraphs(_DEMO_HELP), epilog=EXIT_STATUS_HELP)
def demo(
    offline: Annotated[
        bool, typer.Option("--offline", help="Use the built-in simulator even with credentials.")
    ] = False,
    api_url: _ApiUrl = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="An exact model (default: GLOO_MODEL, else auto)."),
    ] = None,
) -> None:
    """The tutorial's demo."""
    from gloo_stream.cli.demo import demo_banner, run_demo

    params: dict[str, Any] = {"model": model} if model is not None else {}
    _check_request("check", params, "demo")
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

  gloo-stream auth --offline    (the built-in simulator's client credentials)
"""


@app.command(help=help_paragraphs(_AUTH_HELP), epilog=EXIT_STATUS_HELP)
def auth(
    api_url: _ApiUrl = None,
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
    from gloo_stream.cli.auth_check import run_auth_check, run_offline_auth_check

    out = message_console(stderr=False)
    if offline:
        raise typer.Exit(int(run_offline_auth_check(out, timeout=timeout)))
    settings = load_settings(gloo_api_url=api_url, gloo_token_url=token_url)
    raise typer.Exit(int(run_auth_check(settings, out, timeout=timeout)))


app.command(help=help_paragraphs(servers.PROXY_HELP), epilog=EXIT_STATUS_HELP)(servers.proxy)
app.command(help=help_paragraphs(servers.SIMULATE_HELP), epilog=EXIT_STATUS_HELP)(servers.simulate)


def main() -> None:
    """Console-script entry point: a bug is reported in two lines, not a traceback."""
    try:
        app(prog_name="gloo-stream")
    except Exception as error:
        if os.environ.get("GLOO_STREAM_DEBUG"):
            raise
        lines = [
            f"Unexpected error: {type(error).__name__}: {error}",
            "This is a bug; run with GLOO_STREAM_DEBUG=1 to see the traceback.",
        ]
        raise SystemExit(fail(ExitStatus.FAILURE, lines).exit_code) from None
