"""gloo-stream's proxy as the relay benchmark runs it: one worker, as ``gloo-stream proxy`` does.

Settings come from the environment (``relays.proxy_env``). ``asyncio`` as the argument
runs it on the stdlib event loop and h11 instead of uvloop and httptools, for comparison.

Run: ``python -m benchmarks.proxy_relay auto|asyncio``
"""

from __future__ import annotations

import sys
from typing import Any

from gloo_stream.config import ProxySettings
from gloo_stream.proxy.app import create_app
from gloo_stream.proxy.server import DrainingServer, tune_gc, uvicorn_config
from gloo_stream.serving import bind_tcp


def main() -> None:
    """Bind, build the app, tune the collector and serve, in run_proxy's order."""
    settings = ProxySettings()
    overrides: dict[str, Any] = (
        {"loop": "asyncio", "http": "h11"} if sys.argv[1:] == ["asyncio"] else {}
    )
    sock = bind_tcp(settings.proxy_host, settings.proxy_port)
    app = create_app(settings)
    tune_gc()
    DrainingServer(uvicorn_config(app, settings, **overrides)).run(sockets=[sock])


if __name__ == "__main__":
    main()
