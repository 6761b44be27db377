"""``create_app``: the proxy as a Starlette app built from its settings.

The two completions routes are dispatched before Starlette's router and middleware: they
are the hot path (every token of every stream goes through their ``send``), and each layer
of ASGI middleware would wrap that ``send`` once more. Everything else is ordinary
Starlette, with CORS added by a pure ASGI middleware (never ``BaseHTTPMiddleware``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gloo_stream.client import AsyncGlooClient
from gloo_stream.config import ProxySettings
from gloo_stream.proxy.cors import CorsMiddleware
from gloo_stream.proxy.endpoint import CompletionsEndpoint
from gloo_stream.proxy.metrics import CONTENT_TYPE_LATEST
from gloo_stream.proxy.openai_compat import models_body
from gloo_stream.proxy.state import ProxyState
from gloo_stream.proxy.static import static_routes

__all__ = ["SERVICE_NAME", "ProxyApp", "create_app"]

SERVICE_NAME = "completions-streaming-proxy"


class ProxyApp(Starlette):
    """A Starlette app whose completions routes skip the router and middleware stack."""

    proxy: ProxyState
    _fast: dict[str, CompletionsEndpoint]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Preflights and completions first; everything else through Starlette."""
        if scope["type"] == "http":
            if scope["method"] == "OPTIONS":
                await self.proxy.cors.preflight(scope, send)
                return
            endpoint = self._fast.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: ProxySettings | None = None, *, client: AsyncGlooClient | None = None
) -> ProxyApp:
    """Build a proxy app. ``client`` (not closed by the app) replaces the one it would make.

    Its state (settings, upstream client, limits, metrics, open streams) is
    ``app.state.proxy``; many apps can live in one process.
    """
    settings = settings if settings is not None else ProxySettings()
    state = ProxyState.build(settings, client)
    api = CompletionsEndpoint(state, openai=False)
    openai = CompletionsEndpoint(state, openai=True)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await state.aclose()

    routes = [
        Route("/health", _health(state), methods=["GET", "HEAD"]),
        Route("/metrics", _metrics(state), methods=["GET"]),
        Route("/v1/models", _models(state), methods=["GET"]),
        *static_routes(settings),
    ]
    app = ProxyApp(
        routes=routes,
        middleware=[Middleware(CorsMiddleware, policy=state.cors)],
        lifespan=lifespan,
    )
    app.proxy = state
    app.state.proxy = state
    app._fast = {"/api/stream": api, "/v1/chat/completions": openai}
    return app


def _health(state: ProxyState) -> Any:
    async def health(request: Request) -> Response:
        """Liveness plus upstream readiness; 503 while draining or unconfigured."""
        client = state.client
        draining = state.streams.draining
        shared = state.shared
        store_up = shared.link.up if shared is not None else None
        # Fail-closed limits with their store down refuse every answer: not ready, so a
        # load balancer sends callers to a replica that can serve them.
        limits_ok = store_up is not False or state.settings.proxy_redis_fail == "open"
        ready = client is not None and not draining and limits_ok
        body = {
            "status": "draining" if draining else "ok",
            "service": SERVICE_NAME,
            "upstream": {
                "configured": client is not None,
                "auth": state.settings.auth_mode,
                "last_error": state.last_upstream_error,
            },
            "limits": {
                "shared": shared is not None,
                "store_up": store_up,
                "fail": state.settings.proxy_redis_fail if shared is not None else None,
            },
            "ready": ready,
            "active_streams": len(state.streams),
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    return health


def _metrics(state: ProxyState) -> Any:
    async def metrics(request: Request) -> Response:
        """Prometheus text format."""
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return metrics


def _models(state: ProxyState) -> Any:
    async def models(request: Request) -> Response:
        """The models OpenAI clients may name."""
        return Response(models_body(state.settings), media_type="application/json")

    return models
