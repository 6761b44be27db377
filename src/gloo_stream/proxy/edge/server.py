"""Serving the proxy with uvicorn: ``run_proxy`` (blocking) and a server that drains.

Shutdown (SIGINT/SIGTERM) first stops accepting connections, lets open streams finish for
up to ``PROXY_SHUTDOWN_GRACE`` seconds, then ends the rest with a final error event, and
only then lets uvicorn close connections.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import os
import socket
import sys
from typing import Any

import uvicorn
from pydantic import SecretStr

from gloo_stream.proxy.app import ProxyApp, create_app
from gloo_stream.proxy.edge.front_door import FrontDoorProtocol
from gloo_stream.proxy.edge.front_door_limits import (
    FrontDoorConfig,
    FrontDoorLimits,
    raise_open_files_limit,
)
from gloo_stream.proxy.edge.startup import startup_lines
from gloo_stream.proxy.observe.accesslog import logger
from gloo_stream.proxy.settings import ProxySettings
from gloo_stream.proxy.state import ProxyState
from gloo_stream.serving import bind_tcp

__all__ = [
    "DrainingServer",
    "ShutdownCancelledFilter",
    "app_from_env",
    "run_proxy",
    "tune_gc",
    "uvicorn_config",
    "warn_if_exposed",
]


def _find_state(app: Any) -> ProxyState | None:
    # uvicorn may wrap the app (proxy headers, message logger): unwrap until ours.
    for _ in range(10):
        state = getattr(app, "proxy", None)
        if isinstance(state, ProxyState):
            return state
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class DrainingServer(uvicorn.Server):
    """uvicorn whose shutdown lets open streams finish, up to the grace period."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting, drain the streams, then shut down as uvicorn does."""
        for server in getattr(self, "servers", []):
            server.close()
        # A request still arriving is not a stream to drain: it is refused now, not after it.
        for connection in list(self.server_state.connections):
            if isinstance(connection, FrontDoorProtocol):
                connection.refuse_unfinished()
        state = _find_state(getattr(self.config, "loaded_app", None))
        if state is not None and not self.force_exit:
            grace = state.settings.proxy_shutdown_grace
            state.streams.start_shutdown(grace)
            await state.streams.wait_empty(grace + 2.0)
        await super().shutdown(sockets=sockets)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_exposed(settings: ProxySettings) -> bool:
    """Warn loudly when the proxy listens beyond loopback with no client keys; True if so."""
    if is_loopback(settings.proxy_host) or settings.api_keys:
        return False
    banner = "!" * 78
    message = (
        f"WARNING: the proxy listens on {settings.proxy_host} with NO client authentication: "
        "anyone who can reach it spends your Gloo quota. Set PROXY_API_KEYS (comma-separated) "
        "or bind to 127.0.0.1."
    )
    print(f"{banner}\n{message}\n{banner}", file=sys.stderr, flush=True)
    logger.warning(message)
    return True


def uvicorn_config(app: Any, settings: ProxySettings, **overrides: Any) -> uvicorn.Config:
    """uvicorn settings suited to thousands of long streams, behind the front door's limits.

    Raises this process's open-files limit as far as allowed (workers inherit it), and fits
    the connection cap to it. ``FrontDoorProtocol`` enforces the limits uvicorn lacks; the
    keep-alive timeout, and h11's header bound if ``http="h11"`` is asked for, are uvicorn's.
    """
    limits = FrontDoorLimits.from_settings(settings, open_files=raise_open_files_limit())
    options: dict[str, Any] = {
        "host": settings.proxy_host,
        "port": settings.proxy_port,
        "lifespan": "on",
        "http": FrontDoorProtocol,
        "ws": "none",
        "access_log": False,  # the proxy writes its own line per request
        "backlog": 4096,
        "timeout_keep_alive": settings.proxy_keep_alive_timeout,
        "h11_max_incomplete_event_size": settings.proxy_max_header_bytes,
        "timeout_graceful_shutdown": settings.proxy_shutdown_grace + 5,
        **overrides,
    }
    return FrontDoorConfig(app, front_door=limits, **options)


def tune_gc() -> None:
    """Keep the garbage collector's pauses short and rare in a process relaying streams.

    What: collect once and freeze what start-up loaded (no collection walks it again), keep
    the young generation small, and let full collections wait for far more live objects.
    Why: every open stream holds a few hundred objects and every relayed chunk allocates
    more, so CPython's default thresholds run full collections that walk every stream and
    delay every chunk behind them. Waiting longer for a full collection is safe because a
    finished stream leaves no reference cycle (tests/integration/test_proxy_frees_streams.py).
    The figures that chose these thresholds are in docs/PERFORMANCE.md.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(2_000, 10, 1_000)


class ShutdownCancelledFilter(logging.Filter):
    """Drops uvicorn's "Exception in ASGI application" for a stream its shutdown cancelled.

    With ``--workers``, uvicorn cancels the streams still open when its graceful-shutdown
    timeout ends; each one has by then sent its caller the ``server_shutdown`` event, so a
    CancelledError traceback per stream says nothing wrong happened, loudly.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False (drop) for that cancellation; every other record passes."""
        error = record.exc_info[1] if record.exc_info else None
        return not (
            isinstance(error, asyncio.CancelledError)
            and str(record.msg).startswith("Exception in ASGI application")
        )


def app_from_env() -> ProxyApp:
    """The app built from the environment (what each worker process runs)."""
    _log_to_stderr()
    logging.getLogger("uvicorn.error").addFilter(ShutdownCancelledFilter())
    app = create_app(ProxySettings())
    tune_gc()
    return app


def run_proxy(settings: ProxySettings, *, offline: bool = False, workers: int = 1) -> None:
    """Serve the proxy on ``proxy_host:proxy_port`` until interrupted.

    ``offline`` says (in the start-up lines) that ``settings`` point at the built-in
    simulator, which the caller started (the command line does, for ``--offline``).
    ``workers > 1`` runs several processes on one socket
    (limits and metrics are then per process).
    """
    _log_to_stderr()
    warn_if_exposed(settings)
    if settings.auth_mode == "none":
        logger.warning(
            "no Gloo credentials: completions will answer 503 until GLOO_API_KEY, or "
            "GLOO_CLIENT_ID and GLOO_CLIENT_SECRET, are set (or use --offline)"
        )
    # Our own socket, for one worker as for several: uvicorn's leaves accepted connections
    # without TCP_NODELAY on the asyncio loop (a ~40 ms stall per kept-alive write).
    sock = bind_tcp(settings.proxy_host, settings.proxy_port)
    _announce(settings, sock, offline=offline, workers=workers)
    if workers <= 1:
        app = create_app(settings)
        tune_gc()
        DrainingServer(uvicorn_config(app, settings)).run(sockets=[sock])
        return
    _run_workers(settings, workers, sock)


def _announce(settings: ProxySettings, sock: socket.socket, *, offline: bool, workers: int) -> None:
    """Say once, before any worker starts, where the proxy is and how it is set up."""
    # Listening now, so the URL printed answers at once: connections wait in the kernel's
    # queue until uvicorn accepts them (it listens again, with its own backlog).
    sock.listen()
    lines, warnings = startup_lines(
        settings, sock.getsockname()[1], offline=offline, workers=workers
    )
    for line in lines:
        logger.info(line)
    for warning in warnings:
        logger.warning(warning)


def _run_workers(settings: ProxySettings, workers: int, sock: socket.socket) -> None:
    from uvicorn.supervisors import Multiprocess

    # Workers are fresh processes: they read their settings from the environment.
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is not None:
            os.environ[name.upper()] = str(value)
    # uvicorn's own workers cannot use DrainingServer: there the grace period is uvicorn's
    # graceful-shutdown timeout, after which each stream still ends with an error event.
    config = uvicorn_config(
        "gloo_stream.proxy.edge.server:app_from_env",
        settings,
        factory=True,
        workers=workers,
        timeout_graceful_shutdown=settings.proxy_shutdown_grace,
    )
    Multiprocess(config, sockets=[sock]).run()


def _log_to_stderr() -> None:
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
