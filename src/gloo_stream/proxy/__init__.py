"""The streaming proxy: Gloo credentials stay server-side; browsers and OpenAI clients stream.

``create_app(settings)`` builds the ASGI app; ``run_proxy(settings)`` serves it with uvicorn,
behind the front door's limits on headers, slow requests and connections (``edge.front_door``);
``gloo_stream.testing.ProxyServer`` runs it in a background thread for tests.

The rooms, top to bottom (``.importlinter`` keeps the order: a room imports only rooms below it):
``edge/`` (the server, the front door, start-up lines), ``app``, ``routes/`` (one module per
route family), ``state``, ``relay``, ``policy/`` (who may ask, how much), ``observe/`` (log line,
metrics, traces), ``resume/``, ``failures/``, ``asgi``, ``settings``. See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gloo_stream.proxy.app import create_app
    from gloo_stream.proxy.edge.server import run_proxy

__all__ = ["create_app", "run_proxy"]


def __getattr__(name: str) -> object:
    # Loaded when asked for: `gloo_stream.proxy.settings` must not pull in Starlette and uvicorn.
    if name == "create_app":
        from gloo_stream.proxy.app import create_app

        return create_app
    if name == "run_proxy":
        from gloo_stream.proxy.edge.server import run_proxy

        return run_proxy
    raise AttributeError(f"module 'gloo_stream.proxy' has no attribute {name!r}")
