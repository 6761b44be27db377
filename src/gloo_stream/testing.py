"""Typed helpers that tests and users share: the proxy and the simulator on loopback sockets.

    with SimulatorServer() as sim, ProxyServer(settings_for(sim)) as proxy:
        httpx.post(f"{proxy.url}/api/stream", json=...)

``ProxyServer`` serves the proxy as ``gloo-stream proxy`` serves it (``uvicorn_config``),
front-door limits included, from a background thread; ``ProxyServer(offline=True)`` starts its
own simulator. Stopping never hangs: open streams get the drain grace period
(``settings.proxy_shutdown_grace``, 0 by default here), then the server is told to exit at
once. ``SimulatorServer`` is ``gloo_stream.simulator.SimulatorServer``, re-exported here.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from gloo_stream.client import AsyncGlooClient
from gloo_stream.proxy.app import ProxyApp, create_app
from gloo_stream.proxy.edge.server import DrainingServer, uvicorn_config
from gloo_stream.proxy.observe.telemetry import ProxyTracing
from gloo_stream.proxy.settings import ProxySettings
from gloo_stream.serving import ThreadedServer, bind_tcp
from gloo_stream.simulator import SimulatorServer

__all__ = ["ProxyServer", "SimulatorServer", "settings_for"]


def settings_for(simulator: SimulatorServer, **overrides: Any) -> ProxySettings:
    """Proxy settings pointing at a running ``SimulatorServer`` with its API key."""
    values: dict[str, Any] = {
        **simulator.upstream_settings(),
        "proxy_shutdown_grace": 0.0,
        **overrides,
    }
    return ProxySettings(_env_file=None, **values)  # type: ignore[call-arg]


class ProxyServer:
    """The proxy served by uvicorn from a background thread on a free loopback port."""

    def __init__(
        self,
        settings: ProxySettings | None = None,
        *,
        client: AsyncGlooClient | None = None,
        tracing: ProxyTracing | None = None,
        offline: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._simulator: SimulatorServer | None = None
        self._settings = settings
        self._client = client
        self._tracing = tracing
        self._offline = offline
        self.host = host
        self.port = port
        self.app: ProxyApp | None = None
        self._runner: ThreadedServer | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of the running proxy."""
        return f"http://{self.host}:{self.port}"

    @property
    def open_connections(self) -> int:
        """Client connections the server holds open now (0 when not running)."""
        runner = self._runner
        return len(runner.server.server_state.connections) if runner is not None else 0

    @property
    def simulator(self) -> SimulatorServer | None:
        """The simulator started by ``offline=True`` (None otherwise)."""
        return self._simulator

    def start(self, timeout: float = 10.0) -> ProxyServer:
        """Bind, serve and return once connections are accepted."""
        if self._runner is not None:
            raise RuntimeError("the proxy is already running")
        settings = self._settings
        if self._offline:
            self._simulator = SimulatorServer().start()
            settings = settings_for(self._simulator)
        elif settings is None:
            settings = ProxySettings(proxy_shutdown_grace=0.0)
        self.app = create_app(settings, client=self._client, tracing=self._tracing)
        sock = bind_tcp(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn_config(self.app, settings, host=self.host, port=self.port, log_config=None)
        self._runner = ThreadedServer(DrainingServer(config), sock, name=f"gloo-proxy-{self.port}")
        try:
            self._runner.start(timeout)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"the proxy did not start on {self.url}") from None
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (drain, then exit); never blocks longer than about ``timeout``."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop(timeout)
        if self._simulator is not None:
            self._simulator.stop()
            self._simulator = None

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
