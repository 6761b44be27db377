"""What the proxy says once when it starts: the URL to open, where it relays to, and how.

``run_proxy`` prints these lines (stderr, through the proxy's logger) once, in the process
that owns the listening socket, however many workers serve it. Nothing in them is a secret:
URLs lose their ``user:password@`` and query string, and keys are only counted.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit, urlunsplit

from gloo_stream.proxy.observe.telemetry import DEFAULT_SERVICE_NAME, TracingConfig, traces_endpoint
from gloo_stream.proxy.routes.page import page_libraries
from gloo_stream.proxy.settings import ProxySettings

__all__ = ["page_url", "public_url", "startup_lines"]


def public_url(url: str) -> str:
    """``url`` without what may carry credentials: user info, query string and fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return host == ""


def page_url(host: str, port: int) -> str:
    """The chat page's URL for a proxy listening on ``host:port`` (0.0.0.0: this machine's)."""
    if _is_unspecified(host):
        host = "[::1]" if ":" in host else "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def _upstream_auth(settings: ProxySettings, offline: bool) -> str:
    if offline:
        return "the built-in simulator's API key"
    if settings.auth_mode == "api_key":
        return "API key (GLOO_API_KEY)"
    if settings.auth_mode == "client_credentials":
        token = public_url(settings.gloo_token_url)
        return f"OAuth2 client credentials (GLOO_CLIENT_ID), tokens from {token}"
    return "none: completions answer 503 until GLOO_API_KEY or GLOO_CLIENT_ID/SECRET are set"


def _client_auth(settings: ProxySettings) -> str:
    keys = len(settings.api_keys)
    if keys:
        return f"clients must send one of {keys} key{'s' if keys > 1 else ''} (PROXY_API_KEYS)"
    return "clients need no key (PROXY_API_KEYS unset)"


def _workers(settings: ProxySettings, workers: int) -> str:
    if workers <= 1:
        return "1"
    if settings.proxy_redis_url is not None:
        return f"{workers} (limits shared in Redis)"
    return f"{workers} (limits and metrics per process: set PROXY_REDIS_URL to share limits)"


def _traces() -> str:
    config = TracingConfig.from_environ(os.environ)
    if config is None:
        return "off (set OTEL_EXPORTER_OTLP_ENDPOINT to export OpenTelemetry traces)"
    where = [
        f"OTLP/HTTP to {public_url(traces_endpoint(os.environ))}" if name == "otlp" else name
        for name in config.exporters
    ]
    service = os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME
    return f"{' and '.join(where)}, service {service}"


def _budget(settings: ProxySettings) -> str:
    rule = settings.token_budget
    if rule is None:
        return "none (PROXY_TOKEN_BUDGET unset)"
    shared = "shared in Redis" if settings.proxy_redis_url is not None else "per process"
    return f"{rule} tokens per client, {shared}"


def startup_lines(
    settings: ProxySettings, port: int, *, offline: bool, workers: int
) -> tuple[list[str], list[str]]:
    """The start-up lines, and a warning for each page library that cannot be served.

    ``port`` is the one actually bound (``PROXY_PORT=0`` picks a free one).
    """
    libraries, problems = page_libraries(settings)
    mode = "yes: the built-in simulator (no network, no credentials)" if offline else "no"
    host = settings.proxy_host
    where = f"; listening on every interface, {host}" if _is_unspecified(host) else ""
    lines = [
        f"gloo-stream proxy: open {page_url(host, port)} (the chat page{where})",
        f"  upstream  {public_url(settings.gloo_api_url)}",
        f"  auth      {_upstream_auth(settings, offline)}; {_client_auth(settings)}",
        f"  offline   {mode}",
        f"  workers   {_workers(settings, workers)}",
        f"  traces    {_traces()}",
        f"  budget    {_budget(settings)}",
        f"  page      {libraries}",
    ]
    warnings = [
        f"chat page: {problem} Until then answers show as plain text." for problem in problems
    ]
    return lines, warnings
