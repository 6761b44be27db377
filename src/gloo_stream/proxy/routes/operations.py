"""The operational routes: ``GET /health`` for load balancers, ``GET /metrics`` for Prometheus,
``GET /v1/models`` for OpenAI clients. Carved out of ``app``: they share nothing with the
completions hot path but the state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gloo_stream.proxy.failures import RequestRefused
from gloo_stream.proxy.observe.metrics import CONTENT_TYPE_LATEST
from gloo_stream.proxy.routes.openai_dialect import models_body
from gloo_stream.proxy.state import ProxyState

__all__ = ["SERVICE_NAME", "operational_routes"]

SERVICE_NAME = "completions-streaming-proxy"
_Endpoint = Callable[[Request], Awaitable[Response]]


def operational_routes(state: ProxyState) -> list[Route]:
    """``/health``, ``/metrics`` and ``/v1/models`` over one proxy's state."""
    return [
        Route("/health", _health(state), methods=["GET", "HEAD"]),
        Route("/metrics", _metrics(state), methods=["GET"]),
        Route("/v1/models", _models(state), methods=["GET"]),
    ]


def _health(state: ProxyState) -> _Endpoint:
    async def health(request: Request) -> Response:
        """Readiness for load balancers; the diagnostics only for whom may read /metrics."""
        client = state.client
        draining = state.streams.draining
        shared = state.shared
        store_up = shared.link.up if shared is not None else None
        # Fail-closed limits with their store down refuse every answer: not ready, so a
        # load balancer sends callers to a replica that can serve them.
        limits_ok = store_up is not False or state.settings.proxy_redis_fail == "open"
        ready = client is not None and not draining and limits_ok
        body: dict[str, Any] = {
            "status": "draining" if draining else "ok",
            "service": SERVICE_NAME,
            "ready": ready,
        }
        if await _may_read_metrics(state, request):
            body["upstream"] = {
                "configured": client is not None,
                "auth": state.settings.auth_mode,
                "last_error": state.last_upstream_error,
            }
            body["limits"] = {
                "shared": shared is not None,
                "store_up": store_up,
                "fail": state.settings.proxy_redis_fail if shared is not None else None,
            }
            body["active_streams"] = len(state.streams)
        return JSONResponse(body, status_code=200 if ready else 503)

    return health


async def _may_read_metrics(state: ProxyState, request: Request) -> bool:
    # A probe without a key is never refused nor counted as a failure: it gets the short form.
    if state.auth.metrics_open_to(request.scope):
        return True
    if "authorization" not in request.headers:
        return False
    try:
        await state.auth.admit_metrics(request.scope)
    except RequestRefused:
        return False
    return True


def _metrics(state: ProxyState) -> _Endpoint:
    async def metrics(request: Request) -> Response:
        """Prometheus text format; needs a key when client keys or a metrics key are set."""
        try:
            await state.auth.admit_metrics(request.scope)
        except RequestRefused as refused:
            return refused.failure.response()
        # Rendered on the event loop in short slices: relayed streams go on meanwhile.
        body = await state.metrics.scrape()
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics


def _models(state: ProxyState) -> _Endpoint:
    async def models(request: Request) -> Response:
        """The models OpenAI clients may name (a client key needed when keys are set)."""
        try:
            await state.auth.admit(request.scope)
        except RequestRefused as refused:
            return refused.failure.response()
        return Response(models_body(state.settings), media_type="application/json")

    return models
