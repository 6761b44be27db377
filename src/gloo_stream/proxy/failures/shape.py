"""How a failure is told: a status and OpenAI's error body before the stream, an event during it.

Bodies are built by a JSON encoder, never by string formatting, in OpenAI's error shape,
``{"error": {"message", "type", "param", "code"}}``, on every route.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.responses import Response

from gloo_stream.proxy.asgi import Headers, Send, respond
from gloo_stream.sse import encode_event

__all__ = ["ProxyFailure", "RequestRefused"]

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class ProxyFailure:
    """One failure as the caller sees it, before the stream (status) or during it (event)."""

    status: int
    message: str
    type: str
    code: str
    param: str | None = None
    retry_after: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    allow: str | None = None
    """For a 405: the methods the route does allow (the ``Allow`` header)."""

    def body(self) -> bytes:
        """The JSON error body (OpenAI's shape)."""
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        error.update(self.extra)
        return _encoder.encode({"error": error})

    def headers(self) -> Headers:
        """Response headers: JSON content type, ``Retry-After`` when a wait is known,
        ``WWW-Authenticate`` on a 401 (RFC 6750) and ``Allow`` on a 405."""
        headers = [(b"content-type", b"application/json")]
        if self.retry_after is not None:
            seconds = max(1, math.ceil(self.retry_after))
            headers.append((b"retry-after", str(seconds).encode()))
        if self.status == 401:
            challenge = b'Bearer realm="gloo-stream"'
            if self.code == "invalid_api_key":
                challenge += b', error="invalid_token"'
            headers.append((b"www-authenticate", challenge))
        if self.allow is not None:
            headers.append((b"allow", self.allow.encode()))
        return headers

    def event(self) -> bytes:
        """The one final SSE event sent when the stream has already begun."""
        return encode_event(self.body().decode(), event="error")

    async def send_response(self, send: Send, *extra: tuple[bytes, bytes]) -> None:
        """Send this failure as the whole response, ``extra`` headers after its own."""
        await respond(send, self.status, self.body(), [*self.headers(), *extra])

    def response(self) -> Response:
        """This failure as a Starlette response (for the routes Starlette serves)."""
        headers = {name.decode(): value.decode() for name, value in self.headers()}
        return Response(self.body(), status_code=self.status, headers=headers)


class RequestRefused(Exception):  # noqa: N818 - names the outcome, as httpx does
    """The request is refused before anything is sent upstream.

    The one way every admission check says no (client key, wrong-key limit, request rate,
    token budget, body, stream slots): a check returns what it admits (an identity, a
    header) or raises this. ``headers`` go out with the refusal (the budget left);
    ``limit`` names the limit that refused, for ``gloo_proxy_limited_total``.
    """

    def __init__(
        self,
        failure: ProxyFailure,
        *,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        limit: str | None = None,
    ) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.headers = headers
        self.limit = limit
