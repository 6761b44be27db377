"""``gloo-stream demo``: the tutorial's ``main.py`` experience, over the real client.

Part one accumulates a whole answer and reports it the way the tutorial's
``stream_completion`` result does; part two prints the tokens as they arrive (the typing
effect) and ends with the tutorial's ``[N tokens, finish_reason=X]`` line; part three is one
tool round (the tutorial's "Next Steps: Tool Use"): the call's arguments as they stream,
the built-in ``get_weather`` run, and the answer going on with its result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import IO, Annotated, Any
from urllib.parse import urlsplit

from rich.console import Console

from gloo_stream.cli.failures import ExitStatus, explain, print_failure
from gloo_stream.cli.render import retry_notice
from gloo_stream.cli.tool_calls import complete_call_lines, result_line
from gloo_stream.client import GlooClient
from gloo_stream.config import GlooSettings
from gloo_stream.errors import GlooError
from gloo_stream.events import AnswerEvent, CallComplete, CallDelta, TextDelta, ToolRan

__all__ = [
    "ACCUMULATE_PROMPT",
    "STREAM_PROMPT",
    "TOOL_PROMPT",
    "demo_banner",
    "get_weather",
    "run_demo",
]

ACCUMULATE_PROMPT = "What is the significance of the resurrection? Answer briefly."
STREAM_PROMPT = "Write a short, encouraging note about perseverance."
TOOL_PROMPT = "What is the weather in Paris right now? Use get_weather."

_OnRetry = Callable[[Exception, float], None]


def demo_banner(settings: GlooSettings, *, use_simulator: bool, model: str | None) -> str:
    """The first line: which server the demo talks to and, when not auto, which model."""
    if use_simulator:
        return (
            "No Gloo credentials found (GLOO_API_KEY, or GLOO_CLIENT_ID and GLOO_CLIENT_SECRET): "
            "running against the built-in offline simulator."
        )
    routing = ""
    if model is not None:
        routing = f", model {model}"
    elif settings.gloo_model:
        routing = f", model {settings.gloo_model} (GLOO_MODEL)"
    elif settings.gloo_model_family:
        routing = f", model family {settings.gloo_model_family} (GLOO_MODEL_FAMILY)"
    host = urlsplit(settings.gloo_api_url).hostname or settings.gloo_api_url
    # Only Gloo's own hosts are "the Gloo API"; LLMock, vLLM or Ollama are named by host.
    if host == "gloo.com" or host.endswith(".gloo.com"):
        return f"Using the Gloo API at {settings.gloo_api_url}{routing}."
    return f"Using the server at {host} (GLOO_API_URL={settings.gloo_api_url}){routing}."


def run_demo(
    client: GlooClient,
    out: IO[str],
    err: Console,
    *,
    auth_mode: str,
    params: Mapping[str, Any] | None = None,
) -> ExitStatus:
    """Run both parts; an API error ends the demo with its explanation and exit status.

    ``params`` go with both requests (``model`` from ``--model``, say).
    """
    params = dict(params or {})
    max_attempts = client.retry_policy.max_retries + 1

    def on_retry(error: Exception, delay: float) -> None:
        out.write("\n")
        out.flush()
        err.print(f"⚠ {retry_notice(error, delay, max_attempts)}", style="yellow")

    try:
        _accumulate(client, out, on_retry, params)
        _typing_effect(client, out, on_retry, params)
        _tool_round(client, out, on_retry, params)
    except GlooError as error:
        out.flush()
        explanation = explain(error, auth_mode=auth_mode)
        print_failure(err, explanation.lines)
        return explanation.status
    except KeyboardInterrupt:
        out.write("\n")
        return ExitStatus.INTERRUPTED
    return ExitStatus.OK


def _accumulate(
    client: GlooClient, out: IO[str], on_retry: _OnRetry, params: dict[str, Any]
) -> None:
    out.write("── 1. Accumulate a whole answer (stream_completion) ──\n")
    out.write(f"Prompt: {ACCUMULATE_PROMPT}\n")
    out.flush()
    result = client.complete(ACCUMULATE_PROMPT, on_retry=on_retry, **params)
    out.write(f"Received {result.token_count} tokens in {result.duration_ms:.0f} ms\n")
    if result.ttft_ms is not None:
        out.write(f"First token after {result.ttft_ms:.0f} ms\n")
    out.write(f"Finish reason: {result.finish_reason}\n\n")
    out.write(result.text.rstrip("\n") + "\n\n")
    out.flush()


def _typing_effect(
    client: GlooClient, out: IO[str], on_retry: _OnRetry, params: dict[str, Any]
) -> None:
    out.write("── 2. Render tokens as they arrive (render_stream_to_terminal) ──\n")
    out.write(f"Prompt: {STREAM_PROMPT}\n")
    out.write("Response: ")
    out.flush()

    def on_token(text: str) -> None:
        out.write(text)
        out.flush()  # each token reaches the terminal now, not when a buffer fills

    result = client.complete(STREAM_PROMPT, on_token=on_token, on_retry=on_retry, **params)
    out.write(f"\n\n[{result.token_count} tokens, finish_reason={result.finish_reason}]\n")
    out.flush()


def get_weather(city: Annotated[str, "The city, e.g. Paris"]) -> str:
    """The current weather in a city (the demo's own: made up, the same every time)."""
    celsius = 12 + sum(map(ord, city)) % 15
    return f"{celsius} °C and clear in {city}"


def _tool_round(
    client: GlooClient, out: IO[str], on_retry: _OnRetry, params: dict[str, Any]
) -> None:
    out.write("\n── 3. Tool use: a call streams, the function runs, the answer goes on ──\n")
    out.write(f"Prompt: {TOOL_PROMPT}\n")
    out.flush()
    started: set[int] = set()

    def on_event(event: AnswerEvent) -> None:
        if isinstance(event, CallDelta):
            if event.index not in started:
                started.add(event.index)
                out.write(f"⚙ {event.name}(")
            out.write(event.arguments_delta)
        elif isinstance(event, CallComplete):
            out.write(")\n" + "\n".join(complete_call_lines(event.call)) + "\n")
        elif isinstance(event, ToolRan):
            out.write(result_line(event) + "\nResponse: ")
        elif isinstance(event, TextDelta):
            out.write(event.text)
        out.flush()

    result = client.complete(
        TOOL_PROMPT, tools=[get_weather], on_event=on_event, on_retry=on_retry, **params
    )
    out.write(
        f"\n\n[{len(result.tool_results)} tool call(s) run, {result.token_count} tokens, "
        f"finish_reason={result.finish_reason}]\n"
    )
    out.flush()
