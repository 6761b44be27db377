"""``StreamingTransport``: a lean httpx transport for long streamed responses over HTTP/1.1.

httpx's default transport (httpcore over anyio) spends ~130 µs of CPU on every body chunk it
reads: a stream wrapper, a lock, an h11 event and a task wake-up per read. A proxy that
relays thousands of token streams reads little else, so this transport does the same work
as an ``asyncio.Protocol``: ``data_received`` hands the bytes to httptools' C parser
(chunked encoding included), and the body is an ``httpx.AsyncByteStream`` that yields each
payload as it arrives, pausing the socket when the reader falls behind. httpx's API stays
the interface and every rule stays in the core: the client sees an ordinary
``httpx.Response``.

Bounded against a hostile server: it asks for no compression (``Accept-Encoding:
identity``); a gzip or deflate body sent anyway is expanded a piece at a time and at most
``max_decoded_bytes`` in all, any other coding is refused. A ``text/event-stream`` body may
not go on for more than ``max_event_bytes`` without a blank line (an event's end), so one
huge line or an event that never ends cannot grow the reader's buffers; any other body may
not exceed ``max_event_bytes`` at all. Past a bound the response fails with
``httpx.RemoteProtocolError`` and its connection is closed.

What it keeps from httpx: connect, read (first byte, then idle) timeouts, read afresh from
the request's ``timeout`` extension at every wait, so a change made after the head arrived
(``AsyncGlooClient`` swaps first-byte for idle) applies; the exceptions (``ConnectError``,
``ConnectTimeout``, ``ReadTimeout``, ``ReadError``, ``RemoteProtocolError``); keep-alive
reuse per origin; TLS for https. What it leaves out: HTTP/2, proxies from the environment,
request bodies other than in-memory ones; a cancelled or unfinished response closes its
connection rather than draining it.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httptools
import httpx

__all__ = ["MAX_DECODED_BYTES", "MAX_EVENT_BYTES", "StreamingTransport"]

HIGH_WATER = 256 * 1024  # bytes buffered before the socket is paused
MAX_EVENT_BYTES = 1024 * 1024
"""The default bound on one SSE event (bytes between blank lines), or on a whole other body."""
MAX_DECODED_BYTES = 64 * 1024 * 1024
"""The default bound on what a compressed body may expand to."""
_DECODE_STEP = 256 * 1024  # most bytes one decompression step may produce
_CODINGS = {"gzip": 31, "x-gzip": 31, "deflate": 15}  # zlib's wbits for each coding
# The response extension that holds the body, for readers that skip httpx's layers.
BODY_EXTENSION = "gloo_stream.body"
Origin = tuple[str, str, int]


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: parses responses as bytes arrive, buffers the body."""

    __slots__ = (
        "_delimited",
        "_head",
        "_headers",
        "_listener",
        "_parser",
        "_paused",
        "_timer",
        "_timer_at",
        "_wait_limit",
        "_waiter",
        "_waiting_since",
        "body",
        "buffered",
        "complete",
        "error",
        "got_data",
        "keep_alive",
        "origin",
        "status",
        "transport",
    )

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self._parser: Any = None
        self._waiter: asyncio.Future[None] | None = None
        # A reader that takes the body inside the callbacks (``_ResponseBody.listen``).
        self._listener: Callable[[], None] | None = None
        # One idle timer per connection, re-armed only when it fires (see wait()).
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._wait_limit: float | None = None
        self._waiting_since = 0.0
        self._head = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._delimited = False
        self._paused = False
        self.status = 0
        self.body: list[bytes] = []
        self.buffered = 0
        self.complete = False
        self.got_data = False
        self.keep_alive = False
        self.error: httpx.TransportError | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_data = True
        if self._parser is None:
            self._fail(httpx.RemoteProtocolError("unexpected data while idle"))
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed response: {exc}"))
            return
        if self.buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost decides what EOF meant

    def connection_lost(self, exc: Exception | None) -> None:
        if self._parser is not None and not self.complete and self.error is None:
            if exc is not None:
                self.error = httpx.ReadError(str(exc) or type(exc).__name__)
            elif self._head and not self._delimited:
                self.complete = True  # a body delimited by the connection's close
            else:
                self.error = httpx.RemoteProtocolError(
                    "Server disconnected without sending a complete response"
                )
        elif self.error is None and not self.complete:
            self.error = httpx.ReadError("connection closed")
        self.transport = None
        self._wake()

    # -- httptools callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length" or lower == b"transfer-encoding":
            self._delimited = True

    def on_headers_complete(self) -> None:
        self._head = True
        self.status = self._parser.get_status_code()
        if self.status in (204, 304) or 100 <= self.status < 200:
            self._delimited = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = bool(self._parser.should_keep_alive())

    # -- used by the transport -------------------------------------------------------------

    def begin(self, request_bytes: bytes) -> None:
        """Send one request and get ready to parse its response."""
        assert self.transport is not None
        self._parser = httptools.HttpResponseParser(self)
        self._head = self._delimited = self.complete = self.got_data = self.keep_alive = False
        self._headers = []
        self.body, self.buffered, self.status = [], 0, 0
        self.transport.write(request_bytes)

    @property
    def reusable(self) -> bool:
        """Idle, open and allowed to carry another request."""
        return (
            self.complete
            and self.error is None
            and self.transport is not None
            and not self.transport.is_closing()
            and not self.body
            and self.keep_alive
        )

    def take(self) -> bytes:
        """Everything buffered of the body so far (resumes a paused socket)."""
        body = self.body
        data = body[0] if len(body) == 1 else b"".join(body)
        self.body, self.buffered = [], 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    async def wait(self, limit: float | None) -> None:
        """Until more arrives (or the connection ends); ``httpx.ReadTimeout`` past ``limit``.

        A stream waits once per token, so a timer per wait (made, then cancelled a moment
        later) would be most of the waiting's cost. Instead one timer per connection
        stays armed: when it fires it expires the wait if it has lasted ``limit``, and
        otherwise re-arms for when it would have, so timers are made about once per
        ``limit`` seconds however fast tokens come.
        """
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        if limit is not None:
            now = loop.time()
            self._wait_limit, self._waiting_since = limit, now
            if self._timer is None or self._timer_at > now + limit:
                self._arm(loop, now + limit)
        try:
            await waiter
        finally:
            self._waiter = None

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = loop.call_at(at, self._check_idle)

    def _check_idle(self) -> None:
        self._timer = None
        waiter, limit, listener = self._waiter, self._wait_limit, self._listener
        idle = waiter is not None and not waiter.done()
        if not (idle or listener is not None) or limit is None:
            return  # not waiting now: the next wait arms a timer again
        loop = asyncio.get_running_loop()
        deadline = self._waiting_since + limit
        if loop.time() < deadline:
            self._arm(loop, deadline)
        elif waiter is not None and idle:
            waiter.set_exception(httpx.ReadTimeout("timed out waiting for the upstream"))
        elif listener is not None:
            # The listener reads the error as the body's next outcome; the connection is
            # not reused after it.
            self.error = httpx.ReadTimeout("timed out waiting for the upstream")
            self._listener = None
            listener()

    def listen(self, listener: Callable[[], None] | None, limit: float | None) -> None:
        """Call ``listener`` when more arrives or the connection ends (None: stop calling).

        The callback twin of ``wait``: the same idle timer applies, ``limit`` counted from
        now, and a wait that lasts ``limit`` makes ``error`` a ``httpx.ReadTimeout``.
        """
        self._listener = listener
        if listener is not None and limit is not None:
            loop = asyncio.get_running_loop()
            now = loop.time()
            self._wait_limit, self._waiting_since = limit, now
            if self._timer is None or self._timer_at > now + limit:
                self._arm(loop, now + limit)

    def take_ready(self) -> bytes | None:
        """The body bytes buffered now (b"" when none yet), None at its end; raises its error."""
        if self.body:
            return self.take()
        if self.error is not None:
            raise _fresh(self.error)
        if self.complete:
            return None
        return b""

    async def read_some(self, limit: float | None) -> bytes | None:
        """The body bytes that arrived since the last call (waiting for some), None at its end."""
        while True:
            if self.body:
                return self.take()
            if self.error is not None:
                raise _fresh(self.error)
            if self.complete:
                return None
            await self.wait(limit)

    def forget_head(self) -> None:
        """Let go of the head's headers once they were handed on (a long stream keeps its
        connection for minutes: its headers need not be kept twice)."""
        self._headers = []

    def head(self) -> tuple[int, list[tuple[bytes, bytes]]] | None:
        """The status and headers, once they have arrived."""
        return (self.status, self._headers) if self._head else None

    def close(self) -> None:
        """Drop the connection now."""
        self._listener = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        self._parser = None

    def _fail(self, error: httpx.TransportError) -> None:
        self.error = error
        self.close()

    def _wake(self) -> None:
        if self._listener is not None:
            self._listener()
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _BodyBounds:
    """What one body may hold: its decoder (a compressed body), and how far it may run.

    ``check`` costs one ``endswith`` for a read ending with its event (a token stream's
    usual read), and three ``rfind`` otherwise.
    """

    __slots__ = ("_decoded", "_inflate", "_max_decoded", "_max_event", "_run", "_sse", "_tail")

    def __init__(self, coding: str, sse: bool, max_event: int, max_decoded: int) -> None:
        wbits = _CODINGS.get(coding)
        self._inflate = zlib.decompressobj(wbits) if wbits is not None else None
        self._tail = b""  # compressed input not yet expanded (held back by the step bound)
        self._sse = sse
        self._max_event = max_event
        self._max_decoded = max_decoded
        self._decoded = 0
        self._run = 0  # bytes since the last blank line (sse), else of the whole body

    @property
    def pending(self) -> bool:
        """True while compressed input waits to be expanded."""
        return bool(self._tail)

    def decode(self, data: bytes) -> bytes:
        """The next piece of the body (at most ``_DECODE_STEP`` expanded from ``data``)."""
        inflate = self._inflate
        if inflate is None:
            return data
        try:
            out = inflate.decompress(self._tail + data, _DECODE_STEP)
        except zlib.error as exc:
            raise httpx.RemoteProtocolError(f"undecodable compressed body: {exc}") from None
        self._tail = inflate.unconsumed_tail
        self._decoded += len(out)
        if self._decoded > self._max_decoded:
            raise httpx.RemoteProtocolError(
                f"the compressed body expanded past {self._max_decoded} bytes"
            )
        return out

    def check(self, data: bytes) -> None:
        """Raise ``httpx.RemoteProtocolError`` once the body runs past its bound."""
        if self._sse:
            if data[-2:] == b"\n\n":
                self._run = 0
                return
            # A blank line is two line ends in a row: LF LF, CR CR, or LF CR (in CRLF CRLF).
            end = max(data.rfind(b"\n\n"), data.rfind(b"\r\r"), data.rfind(b"\n\r"))
            self._run = len(data) - end - 2 if end >= 0 else self._run + len(data)
        else:
            self._run += len(data)
        if self._run > self._max_event:
            what = "an event" if self._sse else "the body"
            raise httpx.RemoteProtocolError(
                f"{what} from the server ran past {self._max_event} bytes"
            )


class _ResponseBody(httpx.AsyncByteStream):
    """The body as it arrives; gives the connection back to the pool when read to its end."""

    __slots__ = ("_bounds", "_conn", "_pool", "_timeouts")

    def __init__(
        self,
        conn: _Connection,
        pool: StreamingTransport,
        timeouts: dict[str, Any],
        bounds: _BodyBounds,
    ) -> None:
        self._conn: _Connection | None = conn
        self._pool = pool
        self._timeouts = timeouts
        self._bounds = bounds

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (data := await self.read_some()) is not None:
            yield data

    async def read_some(self) -> bytes | None:
        """The next bytes of the body as they arrive, None at its end.

        What ``AsyncChatStream`` reads when the response came from this transport: one
        await per read instead of httpx's three generator layers.
        """
        conn = self._conn
        if conn is None:
            return None
        bounds = self._bounds
        while True:
            data = b"" if bounds.pending else await conn.read_some(self._timeouts.get("read"))
            if data is None:
                return None
            if data := self._within_bounds(conn, data):
                return data

    def read_ready(self) -> bytes | None:
        """The body bytes that arrived and were not read yet (b"" for none), None at its end.

        ``read_some`` without the wait, for a reader inside the event loop's callbacks
        (``listen`` says when to call again); the same bounds and errors.
        """
        conn = self._conn
        if conn is None:
            return None
        bounds = self._bounds
        while True:
            data = b"" if bounds.pending else conn.take_ready()
            if data is None:
                return None
            data = self._within_bounds(conn, data)
            if data or not bounds.pending:
                return data

    def _within_bounds(self, conn: _Connection, data: bytes) -> bytes:
        """``data`` decompressed and checked against the bounds (event size, expanded bytes);
        past one, the connection is closed (never reused) and the error raised."""
        bounds = self._bounds
        try:
            data = bounds.decode(data)
            if data:
                bounds.check(data)
        except httpx.RemoteProtocolError:
            conn.error = httpx.RemoteProtocolError("response abandoned past a bound")
            conn.close()  # the rest is not read: the connection is not reused
            raise
        return data

    def listen(self, listener: Callable[[], None] | None) -> None:
        """Have ``listener`` called when more of the body arrives, or it ends or fails, under
        the read timeout; None: no more calls."""
        if self._conn is not None:
            self._conn.listen(listener, self._timeouts.get("read") if listener else None)

    def pause(self, paused: bool) -> None:
        """Stop (True) or restart reading the socket: the reader's own reader fell behind."""
        transport = self._conn.transport if self._conn is not None else None
        if transport is not None and not transport.is_closing():
            if paused:
                transport.pause_reading()
            else:
                transport.resume_reading()

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool._release(conn)


class StreamingTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio protocols, made for many long streamed responses."""

    def __init__(
        self,
        *,
        keepalive_per_origin: int = 64,
        ssl_context: ssl.SSLContext | None = None,
        max_event_bytes: int = MAX_EVENT_BYTES,
        max_decoded_bytes: int = MAX_DECODED_BYTES,
    ) -> None:
        self._max_event = max_event_bytes
        self._max_decoded = max_decoded_bytes
        self._keepalive = keepalive_per_origin
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open: set[_Connection] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request; return as soon as the response head has arrived."""
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        origin = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        timeouts: dict[str, Any] = request.extensions.get("timeout") or {}
        payload = _serialize(request, await request.aread())
        while True:
            conn, reused = self._take_idle(origin), True
            if conn is None:
                conn, reused = await self._connect(origin, timeouts.get("connect")), False
            try:
                conn.begin(payload)
                status, headers = await self._head(conn, timeouts)
            except httpx.TransportError:
                conn.close()
                self._open.discard(conn)
                stale = isinstance(conn.error, httpx.ReadError | httpx.RemoteProtocolError)
                if reused and stale and not conn.got_data:
                    continue  # the server closed the idle connection first: try a fresh one
                raise
            except BaseException:
                conn.close()
                self._open.discard(conn)
                raise
            try:
                bounds, headers = self._bounds(headers)
            except httpx.RemoteProtocolError:
                conn.close()
                self._open.discard(conn)
                raise
            conn.forget_head()  # the response keeps its own copy for as long as it lives
            body = _ResponseBody(conn, self, timeouts, bounds)
            return httpx.Response(
                status,
                headers=headers,
                stream=body,
                extensions={"http_version": b"HTTP/1.1", BODY_EXTENSION: body},
            )

    def _bounds(
        self, headers: list[tuple[bytes, bytes]]
    ) -> tuple[_BodyBounds, list[tuple[bytes, bytes]]]:
        """The body's bounds, and the headers httpx is given: a coding decoded here is
        dropped from them, so nothing decodes it again."""
        coding, sse = "", False
        for name, value in headers:
            lower = name.lower()
            if lower == b"content-encoding":
                coding = value.decode("latin-1").strip().lower()
            elif lower == b"content-type":
                sse = value.lower().startswith(b"text/event-stream")
        if coding in ("", "identity"):
            return _BodyBounds("", sse, self._max_event, self._max_decoded), headers
        if coding not in _CODINGS:
            raise httpx.RemoteProtocolError(f"unsupported content-encoding {coding!r}")
        kept = [
            (name, value)
            for name, value in headers
            if name.lower() not in (b"content-encoding", b"content-length")
        ]
        return _BodyBounds(coding, sse, self._max_event, self._max_decoded), kept

    async def aclose(self) -> None:
        """Close every connection."""
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()

    async def _head(
        self, conn: _Connection, timeouts: dict[str, Any]
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        while True:
            head = conn.head()
            if head is not None:
                return head
            if conn.error is not None:
                raise _fresh(conn.error)
            await conn.wait(timeouts.get("read"))

    async def _connect(self, origin: Origin, limit: float | None) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            context = self._ssl
        try:
            async with asyncio.timeout(limit):
                _, conn = await loop.create_connection(
                    lambda: _Connection(origin),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from None
        self._open.add(conn)
        return conn

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.transport is not None and not conn.transport.is_closing():
                return conn
            self._open.discard(conn)
        return None

    def _release(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.origin, [])
        if conn.reusable and len(idle) < self._keepalive:
            idle.append(conn)
            return
        conn.close()
        self._open.discard(conn)


def _fresh(error: httpx.TransportError) -> httpx.TransportError:
    """A new copy of a connection's stored error, to raise.

    Raising the stored one would put the raising frames, which hold the connection, in
    its traceback while the connection holds it: a cycle keeping the whole stream (its
    response, the task reading it) alive until a full collection.
    """
    return type(error)(str(error))


def _serialize(request: httpx.Request, body: bytes) -> bytes:
    url = request.url
    target = url.raw_path or b"/"
    lines = [request.method.encode(), b" ", target, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        if name.lower() != b"accept-encoding":
            lines += [name, b": ", value, b"\r\n"]
    # No compression: a streamed answer gains little from it, and a compressed body is a
    # way for a hostile server to make the reader expand far more than it was sent.
    lines.append(b"accept-encoding: identity\r\n\r\n")
    lines.append(body)
    return b"".join(lines)
