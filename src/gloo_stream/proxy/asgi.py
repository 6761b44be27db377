"""The ASGI vocabulary every part of the proxy shares: the types, a header, a whole response.

The types are Starlette's own (``starlette.types``), so the pure-ASGI routes, the middleware
and Starlette's app all speak one definition of a scope, a message, ``receive`` and ``send``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "NOSNIFF",
    "ASGIApp",
    "Headers",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "header",
    "respond",
]

Headers = list[tuple[bytes, bytes]]
"""Response headers as ASGI sends them: (lower-case name, value) byte pairs, in order."""

NOSNIFF = (b"x-content-type-options", b"nosniff")
"""On every answer: nothing the proxy sends may be sniffed into another content type."""


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (``name`` in lower case)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def respond(send: Send, status: int, body: bytes, headers: Headers) -> None:
    """Send a whole response: the status and ``headers`` (plus its length), then ``body``."""
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
