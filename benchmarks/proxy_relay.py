"""gloo-stream's proxy as the relay benchmark runs it: one worker, as ``gloo-stream proxy`` does.

Settings come from the environment (``relays.proxy_env``). ``asyncio`` as the argument
runs it on the stdlib event loop and h11 instead of uvloop and httptools, for comparison.

Run: ``python -m benchmarks.proxy_relay auto|asyncio [WORKERS]`` (several workers: as
``gloo-stream proxy --workers N`` runs them).
"""

from __future__ import annotations

import sys
from typing import Any

from gloo_stream.proxy.app import create_app
from gloo_stream.proxy.edge.server import DrainingServer, run_proxy, tune_gc, uvicorn_config
from gloo_stream.proxy.settings import ProxySettings
from gloo_stream.serving import bind_tcp


def main() -> None:
    """Bind, build the app, tune the collector and serve, in run_proxy's order."""
    settings = ProxySettings()
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    if workers > 1:
        run_proxy(settings, workers=workers)
        return
    overrides: dict[str, Any] = (
        {"loop": "asyncio", "http": "h11"} if sys.argv[1:2] == ["asyncio"] else {}
    )
    sock = bind_tcp(settings.proxy_host, settings.proxy_port)
    app = create_app(settings)
    tune_gc()
    DrainingServer(uvicorn_config(app, settings, **overrides)).run(sockets=[sock])


if __name__ == "__main__":
    main()
