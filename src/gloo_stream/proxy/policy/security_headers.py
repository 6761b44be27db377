"""Security headers on every response Starlette serves: the page, its files, JSON answers.

The page keeps a client key in localStorage, so it must not be framed by another site
(clickjacking) and nothing it serves may be sniffed into another type. Its Content Security
Policy is the one the page declares in its ``<meta>`` tag (the one copy, which also holds
when the page is served by something else) plus ``frame-ancestors 'none'``, which a meta
tag cannot carry. The completions routes add ``nosniff`` themselves (they skip middleware).
"""

from __future__ import annotations

import re
from pathlib import Path

from gloo_stream.proxy.asgi import NOSNIFF, ASGIApp, Message, Receive, Scope, Send

__all__ = ["FALLBACK_CSP", "SecurityHeadersMiddleware", "page_csp"]

FALLBACK_CSP = "default-src 'none'"
"""The policy when the page (and so its own policy) is not installed."""
_META_CSP = re.compile(
    r"""<meta\s+http-equiv=["']Content-Security-Policy["']\s+content=(["'])(.+?)\1""",
    re.IGNORECASE | re.DOTALL,
)


def page_csp(index: Path) -> str:
    """The page's own policy, read from its ``<meta>`` tag, with ``frame-ancestors 'none'``."""
    try:
        found = _META_CSP.search(index.read_text(encoding="utf-8"))
    except OSError:
        found = None
    policy = " ".join(found.group(2).split()).rstrip("; ") if found else FALLBACK_CSP
    return f"{policy}; frame-ancestors 'none'"


class SecurityHeadersMiddleware:
    """Pure ASGI middleware: adds the headers a response does not already set."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self._headers = [
            NOSNIFF,
            (b"content-security-policy", csp.encode("latin-1")),
            (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers that predate it
            (b"referrer-policy", b"no-referrer"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                headers = list(message.get("headers", ()))
                present = {bytes(name).lower() for name, _ in headers}
                headers.extend(h for h in self._headers if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
