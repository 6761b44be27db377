"""The streaming proxy: Gloo credentials stay server-side; browsers and OpenAI clients stream.

``create_app(settings)`` builds the ASGI app; ``run_proxy(settings)`` serves it with uvicorn,
behind the front door's limits on headers, slow requests and connections (``front_door``);
``gloo_stream.testing.ProxyServer`` runs it in a background thread for tests.
"""

from gloo_stream.proxy.app import create_app
from gloo_stream.proxy.server import run_proxy

__all__ = ["create_app", "run_proxy"]
