"""Running the simulator: SimulatorServer (background thread, for tests) and run() (blocking)."""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import uvicorn
from pydantic import SecretStr

from gloo_stream.serving import ThreadedServer, bind_tcp
from gloo_stream.simulator.app import create_app
from gloo_stream.simulator.config import SimulatorConfig
from gloo_stream.simulator.faults import Fault
from gloo_stream.simulator.state import SimulatorState
from gloo_stream.simulator.streaming import SimulatedDisconnect

_log = logging.getLogger("gloo_stream.simulator")


class _HideSimulatedDisconnects(logging.Filter):
    """Drop uvicorn's traceback for a disconnect fault: it is the simulator doing its job."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], SimulatedDisconnect))


def _quiet_disconnect_faults() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideSimulatedDisconnects) for f in logger.filters):
        logger.addFilter(_HideSimulatedDisconnects())


class _Server(uvicorn.Server):
    """A uvicorn server whose shutdown never waits for open streams: it aborts them."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in getattr(self, "servers", []):
            server.close()  # stop accepting before aborting, so nothing new slips in
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                # The stream sees the same disconnect as when a client goes away, so its
                # finally block runs and streams_open stays exact.
                transport.abort()
        await super().shutdown(sockets=sockets)


def _uvicorn_config(app: Any, host: str, port: int, **overrides: Any) -> uvicorn.Config:
    settings: dict[str, Any] = {
        "log_level": "warning",
        "lifespan": "off",
        "ws": "none",
        "access_log": False,
        "backlog": 4096,  # benchmarks open thousands of streams at once
        "timeout_graceful_shutdown": 2,
        **overrides,
    }
    return uvicorn.Config(app, host=host, port=port, **settings)


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class SimulatorServer:
    """The simulator on a real socket, served from a background thread with its own loop.

    ``with SimulatorServer(SimulatorConfig(tokens_per_second=0)) as sim: ... sim.api_url``.
    Port 0 (the default) picks a free port; ``url`` reports it once started.
    """

    def __init__(
        self, config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or SimulatorConfig()
        self.host = host
        self.port = port
        self.app = create_app(self.config)
        self.state: SimulatorState = self.app.state.simulator
        self._runner: ThreadedServer | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> SimulatorServer:
        """Bind, serve in a thread and return once the server accepts connections."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        sock = bind_tcp(self.host, self.port)
        self.port = sock.getsockname()[1]
        server = _Server(_uvicorn_config(self.app, self.host, self.port, log_config=None))
        _quiet_disconnect_faults()
        self._runner = ThreadedServer(server, sock, name=f"gloo-sim-{self.port}")
        try:
            self._runner.start(timeout)
        except RuntimeError:
            self._runner = None
            raise RuntimeError(f"the simulator did not start on {self.url}") from None
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving; open streams are aborted, never waited for."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop(timeout)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        return _url(self.host, self.port)

    @property
    def api_url(self) -> str:
        """The completions endpoint."""
        return f"{self.url}/ai/v2/chat/completions"

    @property
    def token_url(self) -> str:
        """The OAuth2 token endpoint."""
        return f"{self.url}/oauth2/token"

    @property
    def openai_base_url(self) -> str:
        """Base URL for OpenAI-compatible SDKs (they append ``/chat/completions``)."""
        return f"{self.url}/ai/v2"

    def upstream_settings(self) -> dict[str, Any]:
        """Settings that point a client or proxy at this simulator with its API key.

        ``settings.model_copy(update=sim.upstream_settings())`` for a settings object, or
        ``**sim.upstream_settings()`` to build one.
        """
        return {
            "gloo_api_url": self.api_url,
            "gloo_token_url": self.token_url,
            "gloo_api_key": SecretStr(self.config.api_keys[0]),
            "gloo_client_id": None,
            "gloo_client_secret": None,
        }

    # -- control (thread-safe) --------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The counters, as ``GET /_sim/stats`` returns them."""
        return self.state.stats()

    def reset(self) -> None:
        """Zero the counters and drop queued faults."""
        self.state.reset()

    def push_fault(self, fault: Fault | dict[str, Any]) -> None:
        """Queue one fault for the next completions request(s)."""
        self.state.push_faults([fault])

    def push_faults(self, faults: Iterable[Fault | dict[str, Any]]) -> None:
        """Queue several faults, applied in order, one per completions request."""
        self.state.push_faults(faults)

    def wait_until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 2.0) -> bool:
        """Poll ``stats()`` until ``predicate`` holds; False if it still does not after timeout."""
        deadline = time.monotonic() + timeout
        while not predicate(self.stats()):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


def run(host: str = "127.0.0.1", port: int = 8765, config: SimulatorConfig | None = None) -> None:
    """Serve the simulator in the foreground until interrupted (``gloo-stream simulate``)."""
    config = config or SimulatorConfig()
    app = create_app(config)
    sock = bind_tcp(host, port)
    url = _url(host, sock.getsockname()[1])
    server = _Server(_uvicorn_config(app, host, sock.getsockname()[1]))
    _quiet_disconnect_faults()
    if not _log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        _log.addHandler(handler)
        _log.setLevel(logging.INFO)
    keys = ", ".join(config.api_keys) or "(none)"
    _log.info(
        "Gloo simulator on %s (API %s/ai/v2/chat/completions, token %s/oauth2/token); "
        "dummy credentials: API keys %s, client %s / %s%s",
        url,
        url,
        url,
        keys,
        config.client_id,
        config.client_secret,
        "" if config.require_auth else " (auth not required)",
    )
    if config.require_model:
        _log.info("Requests must name a model (--require-model): others get a 422.")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
