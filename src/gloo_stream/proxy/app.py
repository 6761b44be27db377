"""``create_app``: the proxy as a Starlette app built from its settings.

The two completions routes are dispatched before Starlette's router and middleware: they
are the hot path (every token of every stream goes through their ``send``), and each layer
of ASGI middleware would wrap that ``send`` once more. Everything else is ordinary
Starlette, with security headers and CORS added by pure ASGI middleware (never
``BaseHTTPMiddleware``). Only paths that exist answer: no trailing-slash redirects, and
``OPTIONS`` elsewhere is a 404.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from gloo_stream.client import AsyncGlooClient
from gloo_stream.proxy import failures
from gloo_stream.proxy.asgi import NOSNIFF, Receive, Scope, Send
from gloo_stream.proxy.failures import NOT_FOUND
from gloo_stream.proxy.observe.telemetry import ProxyTracing
from gloo_stream.proxy.policy.cors import CorsMiddleware
from gloo_stream.proxy.policy.security_headers import SecurityHeadersMiddleware, page_csp
from gloo_stream.proxy.routes.completions import CompletionsEndpoint
from gloo_stream.proxy.routes.operations import operational_routes
from gloo_stream.proxy.routes.page import STATIC_DIR, page_routes
from gloo_stream.proxy.routes.reconnect import ReconnectEndpoint
from gloo_stream.proxy.settings import ProxySettings
from gloo_stream.proxy.state import ProxyState

__all__ = ["ProxyApp", "create_app"]


class ProxyApp(Starlette):
    """A Starlette app whose completions routes skip the router and middleware stack."""

    proxy: ProxyState
    _fast: dict[str, CompletionsEndpoint]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Preflights and completions first; everything else through Starlette."""
        if scope["type"] == "http":
            if scope["method"] == "OPTIONS":
                if self._exists(scope):
                    await self.proxy.cors.preflight(scope, send)
                else:
                    await NOT_FOUND.send_response(send, NOSNIFF)
                return
            endpoint = self._fast.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _exists(self, scope: Scope) -> bool:
        """True when some route serves this path (by any method)."""
        if scope["path"] in self._fast:
            return True
        return any(route.matches(scope)[0] is not Match.NONE for route in self.router.routes)


def create_app(
    settings: ProxySettings | None = None,
    *,
    client: AsyncGlooClient | None = None,
    tracing: ProxyTracing | None = None,
) -> ProxyApp:
    """Build a proxy app. ``client`` (not closed by the app) replaces the one it would make.

    Its state (settings, upstream client, limits, metrics, open streams) is ``app.proxy``;
    many apps can live in one process. ``tracing`` replaces what the ``OTEL_*`` environment
    would set up (traces are off unless it asks).
    """
    settings = settings if settings is not None else ProxySettings()
    state = ProxyState.build(settings, client, tracing)
    api = CompletionsEndpoint(state, openai=False)
    openai = CompletionsEndpoint(state, openai=True)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await state.aclose()

    routes = [*operational_routes(state), *page_routes(settings)]
    if state.resume is not None:  # PROXY_RESUME_WINDOW: come back to an answer, or stop it
        resume = ReconnectEndpoint(state, state.resume)
        routes.append(Route("/api/stream/{stream_id}", resume, methods=["GET", "DELETE"]))
    app = ProxyApp(
        routes=routes,
        middleware=[
            Middleware(SecurityHeadersMiddleware, csp=page_csp(STATIC_DIR / "index.html")),
            Middleware(CorsMiddleware, policy=state.cors),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    # "/health/" would be redirected to "/health" at an absolute URL built from the Host
    # header: a redirect any caller can aim at another site. Unknown paths are 404s.
    app.router.redirect_slashes = False
    app.proxy = state
    app._fast = {"/api/stream": api, "/v1/chat/completions": openai}
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 in the proxy's JSON error shape (``Allow`` kept)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return NOT_FOUND.response()
    allow = (exc.headers or {}).get("Allow")
    return failures.http_error(exc.status_code, exc.detail, allow).response()
