"""``FrontDoorProtocol``: uvicorn's httptools protocol with limits on what a client may hold.

uvicorn with httptools bounds none of these, so each gap is closed here:

- Header size and count: httptools has no limit (it grows an unfinished header field in
  memory), so the bytes read while a request's head is unfinished are counted after each
  read, and the fields as the parser hands them over; past either limit: 431.
- Deadlines: uvicorn has only its keep-alive timeout, armed once an answer is sent. One loop
  timer per connection runs from connecting (or from a kept-alive connection's first new
  byte) until the head is complete, then until the body is: then 408 (a connection that sent
  nothing is closed without a word).
- Open connections: uvicorn's ``limit_concurrency`` counts running tasks too (every stream),
  reads the request first and spares nothing. Here connections are counted as they arrive:
  past the cap, ``GET /health`` is still answered and anything else gets 503; past a small
  reserve beyond it, the connection is closed at once, before descriptors run out.
- Transfer codings: httptools takes ``gzip, chunked`` for chunked; any coding but
  ``chunked`` gets 501 (RFC 9112 section 6.1), before the app sees the request.
- Shutdown: uvicorn waits for a request still arriving until its graceful-shutdown timeout,
  then answers 500. Here it gets 503 at once (``refuse_unfinished``).

Refusals are written straight to the transport in the proxy's error shape, then the
connection is half-closed and what the client still sends is dropped for a moment, so it
reads the answer rather than a reset. The cost per request is a count per header field and
at most one timer; answers (every relayed chunk) never pass through this class.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from asyncio import TimerHandle
from collections.abc import Callable
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from gloo_stream.proxy import failures
from gloo_stream.proxy.asgi import NOSNIFF, ASGIApp, Receive, Scope, Send
from gloo_stream.proxy.edge.front_door_limits import FrontDoorConfig, FrontDoorLimits
from gloo_stream.proxy.failures import (
    BAD_HTTP,
    SHUTDOWN_UNREAD,
    TOO_MANY_CONNECTIONS,
    UNKNOWN_TRANSFER_CODING,
    ProxyFailure,
)

__all__ = ["FrontDoorProtocol"]

logger = logging.getLogger("gloo_stream.proxy")

# A refused connection's further input is read and dropped for this long, or this much, so
# the client gets to read the answer; then the connection is closed.
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 4 * 1024 * 1024
_RESERVE_HEAD_SECONDS = 2.0  # for the head of a connection past the cap
_CLOSE = ((b"connection", b"close"), NOSNIFF)


class _Refused(Exception):  # noqa: N818 - an event, not an error: parsing stops with an answer
    def __init__(self, failure: ProxyFailure) -> None:
        self.failure = failure


class FrontDoorProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header limits, request deadlines and a connection cap."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = config.front_door if isinstance(config, FrontDoorConfig) else FrontDoorLimits()
        self.limits = limits
        self._max_header_bytes = limits.max_header_bytes
        self._max_headers = limits.max_headers
        self._deadline: TimerHandle | None = None
        self._head_begun = False  # a request's first byte is in, its head is not complete
        self._head_bytes = 0  # bytes read while that head was unfinished
        self._header_count = 0
        self._field_bytes = 0
        self._body_open = False  # the head is complete, the body is not
        self._over_cap = False
        self._discarding = False  # refused: what the client still sends is dropped
        self._dropped = 0
        self._lost_listener: Callable[[], None] | None = None

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection against the cap; start the clock for its first request's head."""
        super().connection_made(transport)
        open_now, cap = len(self.connections), self.limits.max_connections
        if open_now > cap:
            _note("cap", f"{open_now} connections open, the cap is {cap}: refusing new ones")
            if open_now > cap + self.limits.health_reserve:
                self._discarding = True
                transport.close()  # no answer can be afforded: descriptors are what is kept
                return
            self._over_cap = True
            self.app = _HealthOnly(self.app)
            # A health check asks at once; a short deadline keeps idlers off the reserve.
            self._arm(min(self.limits.header_timeout, _RESERVE_HEAD_SECONDS), self._head_timed_out)
            return
        self._arm(self.limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection's timer with the connection; tell a stream watching it."""
        self._cancel_deadline()
        super().connection_lost(exc)
        listener, self._lost_listener = self._lost_listener, None
        if listener is not None:
            listener()

    def watch_disconnect(self, listener: Callable[[], None] | None) -> bool:
        """Have ``listener`` called once if the caller's connection is lost (None: stop).

        The callback twin of waiting on ASGI ``receive`` for ``http.disconnect``, without a
        task per stream (``StreamControl.watch_caller``). False, and nothing registered,
        when the connection is already lost or closing.
        """
        if listener is not None:
            cycle = self.cycle
            if cycle is None or cycle.disconnected or self.transport.is_closing():
                return False
        self._lost_listener = listener
        return True

    def data_received(self, data: bytes) -> None:
        """Parse what arrived, then hold the request to its limits."""
        if self._discarding:
            self._dropped += len(data)
            if self._dropped > _LINGER_BYTES:
                self.transport.close()
            return
        if self.timeout_keep_alive_task is not None:
            # An idle kept-alive connection speaks again: its next head now has a deadline.
            self._unset_keepalive_if_required()
            if self._deadline is None:
                self._arm(self.limits.header_timeout, self._head_timed_out)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            self._refuse_unparsed(exc)
            return
        if self._head_begun:
            # Counted per read: the parser keeps an unfinished field to itself until it ends.
            # (A read that also held the end of the previous request counts whole.)
            self._head_bytes += len(data)
            if self._head_bytes > self._max_header_bytes:
                self._refuse(self._too_large())
        elif self._body_open and self._deadline is None:
            self._arm(self.limits.body_timeout, self._body_timed_out)

    def shutdown(self) -> None:
        """At server shutdown: 503 to a request still arriving, otherwise as uvicorn does."""
        if self._discarding:
            self.transport.close()
        elif not self.refuse_unfinished():
            super().shutdown()

    def refuse_unfinished(self) -> bool:
        """Answer 503 to a request whose head or body is still arriving; True if there was one."""
        if self._discarding:
            return False
        cycle = self.cycle
        waiting_body = self._body_open and not cycle.response_started and not self.pipeline
        waiting_head = self._head_begun and (cycle is None or cycle.response_complete)
        if waiting_body or waiting_head:
            self._refuse(SHUTDOWN_UNREAD)
            return True
        return False

    # Parser callbacks

    def on_message_begin(self) -> None:
        """A new request: its head is counted from zero."""
        super().on_message_begin()
        self._head_begun = True
        self._head_bytes = self._header_count = self._field_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        """One more field (trailers too), refused past the count or the size."""
        self._header_count += 1
        self._field_bytes += len(name) + len(value) + 4  # as sent: "name: value\r\n"
        if self._header_count > self._max_headers or self._field_bytes > self._max_header_bytes:
            raise _Refused(self._too_large())
        if name.lower() == b"transfer-encoding" and not _only_chunked(value):
            # httptools reads "gzip, chunked" as chunked and hands the app a body still
            # gzipped; RFC 9112 section 6.1: a coding not understood gets 501.
            raise _Refused(UNKNOWN_TRANSFER_CODING)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is whole: its deadline ends, the body's begins with the next read."""
        self._head_begun = False
        self._cancel_deadline()
        # The head as sent: "METHOD url HTTP/1.1\r\n", the fields, the blank line.
        line = len(self.parser.get_method()) + len(self.url) + 12
        if line + self._field_bytes + 2 > self._max_header_bytes:
            raise _Refused(self._too_large())
        super().on_headers_complete()
        self._body_open = True
        if self._over_cap:
            self.cycle.keep_alive = False

    def on_message_complete(self) -> None:
        """The body is whole: its deadline ends."""
        self._body_open = False
        self._cancel_deadline()
        super().on_message_complete()
        idle = self.cycle.response_complete and self.timeout_keep_alive_task is None
        if idle and not self.transport.is_closing():
            # Answered before the body was in (a refusal): only now is the connection idle.
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    # Deadlines and refusals

    def _arm(self, seconds: float, expire: Callable[[], None]) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_later(seconds, expire)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_timed_out(self) -> None:
        self._deadline = None
        if not self._head_begun:
            self._discarding = True
            self.transport.close()  # nothing of a request arrived: nothing to answer
            return
        self._refuse(failures.request_timeout("headers", self.limits.header_timeout))

    def _body_timed_out(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if self.pipeline:  # reading waits for earlier answers: the client is not late
            self._arm(self.limits.body_timeout, self._body_timed_out)
        elif cycle.response_complete:  # answered without the body; the rest is not awaited
            self._discarding = True
            self.transport.close()
        elif cycle.response_started:
            cycle.keep_alive = False
        else:
            self._refuse(failures.request_timeout("body", self.limits.body_timeout))

    def _too_large(self) -> ProxyFailure:
        return failures.headers_too_large(self._max_header_bytes, self._max_headers)

    def _refuse_unparsed(self, exc: httptools.HttpParserError) -> None:
        cause = exc.__context__
        self._refuse(cause.failure if isinstance(cause, _Refused) else BAD_HTTP)

    def _refuse(self, failure: ProxyFailure) -> None:
        """Answer ``failure`` and end the connection (at once if another answer is under way)."""
        cycle, body_open = self.cycle, self._body_open
        if self.transport.is_closing():
            return
        self._discarding = True
        self._head_begun = self._body_open = False
        self._cancel_deadline()
        self._unset_keepalive_if_required()
        _note(failure.code, f"{failure.status} {failure.code} to {_peer(self.client)}")
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started or self.pipeline or not body_open:
                self.transport.close()  # an earlier request's answer is on the wire
                return
            cycle.disconnected = True  # the app reading this body hears the client left
            cycle.message_event.set()
        self.transport.write(self._answer(failure))
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._deadline = self.loop.call_later(_LINGER_SECONDS, self.transport.close)

    def _answer(self, failure: ProxyFailure) -> bytes:
        body = failure.body()
        headers = [*self.server_state.default_headers, *failure.headers(), *_CLOSE]
        parts = [STATUS_LINE[failure.status]]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        parts += (b"content-length: ", str(len(body)).encode(), b"\r\n\r\n", body)
        return b"".join(parts)


class _HealthOnly:
    """The app for a connection past the cap: ``GET /health`` as usual, anything else 503."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/health" and scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        await TOO_MANY_CONNECTIONS.send_response(send, *_CLOSE)


_last_note: dict[str, float] = {}


def _only_chunked(value: bytes) -> bool:
    """True when a ``Transfer-Encoding`` field names ``chunked`` and nothing else."""
    return all(part.strip().lower() == b"chunked" for part in value.split(b","))


def _note(kind: str, message: str) -> None:
    # A flood of refusals is one line per kind every 10 s, not one per connection.
    now = time.monotonic()
    if now - _last_note.get(kind, -math.inf) >= 10.0:
        _last_note[kind] = now
        logger.warning("front door: %s (similar refusals in the next 10 s are not logged)", message)


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "a client"
