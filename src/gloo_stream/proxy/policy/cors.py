"""CORS by exact origin match: allowed origins get their own origin back, never ``*``.

Every response carries ``Vary: Origin`` (its headers depend on the caller's origin, so a
shared cache must not hand one origin's answer to another); other origins get no CORS
headers at all, so the browser blocks them.
"""

from __future__ import annotations

from collections.abc import Iterable

from gloo_stream.proxy.asgi import ASGIApp, Headers, Message, Receive, Scope, Send, header

__all__ = ["CorsMiddleware", "CorsPolicy"]

_VARY = (b"vary", b"Origin")
# X-Stream-Id: a page on another origin resumes (Last-Event-ID) or stops (DELETE) its answer.
_EXPOSE = (b"access-control-expose-headers", b"Retry-After, X-Request-ID, X-Stream-Id")
_PREFLIGHT = (
    (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
    (b"access-control-allow-headers", b"Authorization, Content-Type, X-Request-ID, Last-Event-ID"),
    (b"access-control-max-age", b"600"),
)


class CorsPolicy:
    """Which origins may call the proxy from a browser, and the headers that says."""

    def __init__(self, origins: Iterable[str]) -> None:
        self._origins = frozenset(o.encode("latin-1") for o in origins if o != "*")

    def headers(self, scope: Scope) -> Headers:
        """Headers for an ordinary response."""
        origin = header(scope, b"origin")
        if origin is not None and origin in self._origins:
            return [_VARY, (b"access-control-allow-origin", origin), _EXPOSE]
        return [_VARY]

    def preflight_headers(self, scope: Scope) -> Headers:
        """Headers for an ``OPTIONS`` preflight (answered 204)."""
        headers = self.headers(scope)
        if len(headers) > 1:
            headers.extend(_PREFLIGHT)
        headers.append((b"allow", b"GET, POST, DELETE, OPTIONS"))
        return headers

    async def preflight(self, scope: Scope, send: Send) -> None:
        """Answer an ``OPTIONS`` request: 204, CORS headers for allowed origins only."""
        await send(
            {"type": "http.response.start", "status": 204, "headers": self.preflight_headers(scope)}
        )
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class CorsMiddleware:
    """Pure ASGI middleware adding CORS headers to the routes that do not add their own."""

    def __init__(self, app: ASGIApp, policy: CorsPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the policy's headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.policy.headers(scope)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)
