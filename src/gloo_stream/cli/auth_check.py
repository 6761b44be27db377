"""``gloo-stream auth``: the tutorial's step-one check, one ✓ or ✗ line per step.

Steps: credentials found (which mode), access token obtained (and when it expires), cached
token reused, completions endpoint answers 200 with ``text/event-stream``. A failed step
prints the reason and the fix, and the steps after it are skipped. Secrets are never printed.
"""

from __future__ import annotations

import time

import httpx
from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape

from gloo_stream.cli.failures import ExitStatus, explain, print_failure
from gloo_stream.client import GlooClient
from gloo_stream.client.auth import ClientCredentialsAuth, redactor_for
from gloo_stream.config import GlooSettings
from gloo_stream.errors import APIConnectionError, GlooError, error_from_response
from gloo_stream.request import build_chat_request

__all__ = ["run_auth_check", "run_offline_auth_check"]


class _StepFailedError(Exception):
    """A step failed; carries the exit status and the lines to print."""

    def __init__(self, status: ExitStatus, lines: list[str]) -> None:
        super().__init__(lines[0])
        self.status = status
        self.lines = lines


def run_auth_check(
    settings: GlooSettings, out: Console, *, timeout: float | None = None
) -> ExitStatus:
    """Run every step in order; exit status 0 only when all of them pass."""
    mode = settings.auth_mode
    try:
        _check_credentials(settings, out)
        client = GlooClient(settings=settings, timeout=timeout, first_byte_timeout=timeout)
        with client, httpx.Client(timeout=timeout) as http:
            _check_token(client, http, out)
            _check_endpoint(client, http, out)
        url, source = settings.grounded_url_source
        # Not checked (a grounded call costs a retrieval), but said: a derived URL surprises.
        out.print(f"  grounded answers go to {escape(url)} ({escape(source)})", style="dim")
    except _StepFailedError as failure:
        print_failure(out, failure.lines, hint_prefix="fix: ")
        return failure.status
    except GlooError as error:
        explanation = explain(error, auth_mode=mode)
        print_failure(out, explanation.lines, hint_prefix="fix: ")
        return explanation.status
    out.print("[green]All checks passed.[/]")
    return ExitStatus.OK


def run_offline_auth_check(out: Console, *, timeout: float | None = None) -> ExitStatus:
    """Every step against an in-process simulator, with its client credentials."""
    # Imported here: the simulator pulls in the ASGI stack, which online runs never need.
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
        return run_auth_check(settings, out, timeout=timeout)


def _good(out: Console, line: str) -> None:
    out.print(f"[green]✓[/] {escape(line)}", highlight=False)


def _check_credentials(settings: GlooSettings, out: Console) -> None:
    mode = settings.auth_mode
    if mode == "api_key":
        _good(out, "Credentials found: API key (GLOO_API_KEY)")
    elif mode == "client_credentials":
        _good(
            out,
            f"Credentials found: client credentials (GLOO_CLIENT_ID={settings.gloo_client_id}, "
            "GLOO_CLIENT_SECRET set)",
        )
    else:
        raise _StepFailedError(
            ExitStatus.AUTH,
            [
                "No credentials found",
                "Set GLOO_API_KEY, or GLOO_CLIENT_ID and GLOO_CLIENT_SECRET (environment or "
                ".env); add --offline to check against the built-in simulator.",
            ],
        )


def _check_token(client: GlooClient, http: httpx.Client, out: Console) -> None:
    auth = client.auth
    if not isinstance(auth, ClientCredentialsAuth):
        _good(out, "Access token: not needed (the API key is sent as the bearer token)")
        return
    auth.get_token(http)
    minutes = (auth.cache.expires_at - time.monotonic()) / 60
    _good(out, f"Access token obtained from {auth.token_url} (expires in {minutes:.0f} min)")
    before = auth.token_requests
    auth.get_token(http)
    if auth.token_requests != before:
        raise _StepFailedError(
            ExitStatus.FAILURE,
            ["Cached token not reused: a second token request was made", "Report this as a bug."],
        )
    _good(out, "Cached token reused (no second token request)")


def _check_endpoint(client: GlooClient, http: httpx.Client, out: Console) -> None:
    url = client.api_url
    body = build_chat_request(
        "Reply with the word OK.", defaults=client.request_defaults, max_tokens=1
    )
    request = http.build_request("POST", url, json=body, headers={"Accept": "text/event-stream"})
    try:
        response = http.send(request, auth=client.auth, stream=True)
    except httpx.TransportError as exc:
        raise APIConnectionError(
            f"Could not reach {url} ({type(exc).__name__}); check GLOO_API_URL and the network"
        ) from None
    try:
        content_type = response.headers.get("content-type", "")
        if response.status_code != 200:
            response.read()
            raise error_from_response(
                response.status_code,
                response.content,
                response.headers,
                now=time.time(),
                redactor=redactor_for(client.auth, response.request),
            )
    finally:
        response.close()  # one answer's headers are proof enough; do not wait for its tokens
    if not content_type.startswith("text/event-stream"):
        raise _StepFailedError(
            ExitStatus.UPSTREAM,
            [
                f"The completions endpoint answered 200 but with {content_type or 'no type'}, "
                "not text/event-stream",
                "Check that GLOO_API_URL is a chat-completions URL that supports streaming.",
            ],
        )
    _good(out, f"Completions endpoint answered 200 text/event-stream ({url})")
