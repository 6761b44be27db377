"""``gloo-stream proxy`` and ``gloo-stream simulate``: start the servers those issues define.

Both import their server lazily, so ``gloo-stream chat`` starts fast; ``cli.app`` registers
them.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import os
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from gloo_stream.cli.failures import ExitStatus, explain_settings, fail

__all__ = ["PROXY_HELP", "SIMULATE_HELP", "proxy", "simulate"]


PROXY_HELP = """Serve the streaming proxy and browser chat page; credentials stay server-side.

[bold]Examples[/]

  gloo-stream proxy              (http://127.0.0.1:3001)

  gloo-stream proxy --offline    (upstream: the built-in simulator)

  gloo-stream proxy --port 8080 --workers auto --cors-origin https://a.example

Settings come from PROXY_* and GLOO_* variables (environment or .env): see .env.example.
"""


def worker_count(text: str) -> int | None:
    """``--workers``: a number from 1, or ``auto`` for one per CPU core; None if neither."""
    if text.strip().lower() == "auto":
        return max(
            1,
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1,
        )
    try:
        count = int(text)
    except ValueError:
        return None
    return count if count >= 1 else None


def _workers_or_fail(workers: str) -> int:
    """``--workers`` as a count, or a usage error that says what was wrong."""
    count = worker_count(workers)
    if count is None:
        raise fail(
            ExitStatus.USAGE,
            [
                f"--workers must be a whole number from 1 or auto, not {workers!r}",
                "See gloo-stream proxy --help.",
            ],
        )
    return count


def proxy(
    host: Annotated[str | None, typer.Option(help="Interface (default: PROXY_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (default: PROXY_PORT, 3001).")
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Relay to the built-in simulator.")
    ] = False,
    workers: Annotated[
        str, typer.Option(help="Worker processes: a number, or auto (one per CPU core).")
    ] = "1",
    cors_origin: Annotated[
        str | None,
        typer.Option(help="Allowed browser origins, comma-separated (default: PROXY_CORS_ORIGIN)."),
    ] = None,
) -> None:
    """Serve the proxy."""
    from gloo_stream.proxy.settings import ProxySettings

    count = _workers_or_fail(workers)
    overrides: dict[str, Any] = {
        "proxy_host": host,
        "proxy_port": port,
        "proxy_cors_origin": cors_origin,
    }
    try:
        settings = ProxySettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        lines = explain_settings(error, ProxySettings).lines
        raise fail(ExitStatus.USAGE, [lines[0], "See gloo-stream proxy --help."]) from None
    # Imported when used: the proxy's stack is heavy, and chat never needs it.
    from gloo_stream.proxy import run_proxy
    from gloo_stream.proxy.observe.telemetry import TracingConfig, TracingConfigError

    try:  # the OTEL_* environment is checked before anything binds, starts or is announced
        _check_tracing(TracingConfig.from_environ(os.environ))
    except TracingConfigError as error:
        raise fail(ExitStatus.USAGE, [str(error), "See the README's Observability."]) from None

    try:
        with contextlib.ExitStack() as stack:
            if offline:
                from gloo_stream.simulator import SimulatorServer

                sim = stack.enter_context(SimulatorServer())
                # Its uvicorn logs through the same "uvicorn.error" logger as the proxy's:
                # quieted once the proxy has said its shutdown lines, not to say them twice.
                stack.callback(logging.getLogger("uvicorn.error").setLevel, logging.WARNING)
                settings = settings.model_copy(update=sim.upstream_settings())
            run_proxy(settings, offline=offline, workers=count)
    except OSError as error:
        raise _cannot_listen(
            error, settings.proxy_host, settings.proxy_port, "PROXY_PORT"
        ) from None


def _check_tracing(config: Any) -> None:
    """Traces asked for need OpenTelemetry importable: say so now, not after the banner."""
    from gloo_stream.proxy.observe.telemetry import TracingConfigError

    if config is None:
        return
    modules = ["opentelemetry.sdk.trace"]
    if "otlp" in config.exporters:
        modules.append("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise TracingConfigError(
                f"OTEL_* asks for traces but OpenTelemetry is not installed ({module} cannot "
                "be imported): pip install 'gloo-stream[otel]', or unset "
                "OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_TRACES_EXPORTER"
            ) from None


# Binding failures that the chosen address explains: a usage problem, fixed by another port.
_ADDRESS_PROBLEMS = {
    errno.EADDRINUSE: "is already in use (another server on it?)",
    errno.EACCES: "needs privileges (ports below 1024 usually do)",
    errno.EADDRNOTAVAIL: "is not an address of this machine",
}


def _cannot_listen(error: OSError, host: str, port: int, variable: str = "") -> typer.Exit:
    """Exit 2 when the address is the problem (in use, privileged, not ours); else exit 1."""
    problem = _ADDRESS_PROBLEMS.get(error.errno or 0)
    if problem is None:
        return fail(ExitStatus.FAILURE, [f"Cannot listen on {host}:{port}: {error.strerror}"])
    return fail(
        ExitStatus.USAGE,
        [
            f"Cannot listen on {host}:{port}: the port {problem}",
            f"Pick another with --port{' or ' + variable if variable else ''}.",
        ],
    )


SIMULATE_HELP = """Serve the offline Gloo API simulator: completions, OAuth2 token, scripted faults.

Dummy credentials: GLOO_API_KEY=sim-key, or GLOO_CLIENT_ID=sim-client with
GLOO_CLIENT_SECRET=sim-secret.

[bold]Examples[/]

  gloo-stream simulate

  gloo-stream simulate --port 9000 --tokens-per-second 20

  gloo-stream simulate --require-model    (refuses calls without a model)

  export GLOO_API_URL=http://127.0.0.1:8765/ai/v2/chat/completions
  GLOO_API_KEY=sim-key gloo-stream chat hi
"""


def simulate(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port.")] = 8765,
    tokens_per_second: Annotated[
        float, typer.Option(min=0, help="Pacing per stream; 0 sends tokens back to back.")
    ] = 50.0,
    first_token_delay: Annotated[
        float, typer.Option(min=0, help="Seconds before the first token.")
    ] = 0.05,
    seed: Annotated[int, typer.Option(help="Changes every answer (each stays fixed).")] = 0,
    token_lifetime: Annotated[
        float, typer.Option(min=0, help="Seconds an OAuth access token stays valid.")
    ] = 3600.0,
    send_done: Annotated[
        bool, typer.Option("--send-done", help="End streams with data: [DONE] too.")
    ] = False,
    require_model: Annotated[
        bool,
        typer.Option(
            "--require-model",
            help="Refuse requests without a model (422), as vLLM, Ollama or LLMock do.",
        ),
    ] = False,
) -> None:
    """Serve the simulator."""
    from gloo_stream.simulator import SimulatorConfig, run

    config = SimulatorConfig(
        tokens_per_second=tokens_per_second,
        first_token_delay=first_token_delay,
        seed=seed,
        token_lifetime=token_lifetime,
        send_done=send_done,
        require_model=require_model,
    )
    try:
        run(host=host, port=port, config=config)
    except OSError as error:
        raise _cannot_listen(error, host, port) from None
