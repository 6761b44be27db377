"""``GET`` and ``DELETE /api/stream/{id}``: come back to a resumable answer, or stop it.

``GET`` with ``Last-Event-ID: N`` (none: from the start) sends every kept event after N,
then each new one as the replica generating the answer (this one or another, through
Redis) adds it, to the end: framed exactly as the route that started it framed it. An N
beyond the stream's last event gets 409 ``last_event_id_ahead`` at once. At shutdown a
reader is told ``resume_elsewhere`` when the buffer is shared (Redis), else
``server_shutdown``. While
it reads, the caller holds the stream (its upstream is not expired); a ``DELETE`` cancels
the upstream wherever it runs. Only the client that started a stream (its key, else its
address) may do either: anyone else gets the same 404 as for an id that never existed.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import AsyncIterator

from gloo_stream.proxy import failures
from gloo_stream.proxy.asgi import NOSNIFF, Receive, Scope, Send, header
from gloo_stream.proxy.failures import ProxyFailure, RequestRefused
from gloo_stream.proxy.observe.accesslog import RequestRecord, logger
from gloo_stream.proxy.policy.limits import admit_request
from gloo_stream.proxy.relay import RelayStats, StreamControl, end_with
from gloo_stream.proxy.resume import (
    BufferUnavailable,
    ResumableStreams,
    ResumeGap,
    StreamGone,
    StreamInfo,
    StreamLost,
)
from gloo_stream.proxy.state import ProxyState

__all__ = ["ReconnectEndpoint"]

_clock = time.perf_counter
# How far behind the relay a shared buffer's writes may run: RedisBuffer's write deadline.
_WRITE_LAG = 1.0
_EVENT_ID = re.compile(rb"\s*(\d{1,18})\s*")
_SSE_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


class ReconnectEndpoint:
    """The ASGI app behind ``/api/stream/{stream_id}`` (``PROXY_RESUME_WINDOW`` > 0)."""

    def __init__(self, state: ProxyState, streams: ResumableStreams) -> None:
        self.state = state
        self.streams = streams
        # A reader says it is still there this often (and the window is never missed).
        self.hold_every = min(state.settings.proxy_heartbeat_interval, streams.window / 3)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ``GET`` or ``DELETE``; never raises into the server."""
        method = scope["method"]
        record = RequestRecord(
            request_id=secrets.token_hex(8), route="/api/stream/{id}", method=method
        )
        stats = RelayStats()
        started = _clock()
        try:
            await self._admit(scope, record)
            if method == "DELETE":
                await self._delete(scope, send, record)
            else:
                await self._get(scope, receive, send, record, stats)
        except RequestRefused as exc:
            if exc.limit is not None:
                self.state.metrics.limited.labels(exc.limit).inc()
            await self._fail(send, record, exc.failure)
        except BufferUnavailable:
            if not record.status:
                await self._fail(send, record, failures.RESUME_UNAVAILABLE)
        except Exception:
            logger.exception("request %s failed unexpectedly", record.request_id)
            if not record.status:  # nothing sent yet: a status can still be given
                await self._fail(send, record, failures.internal_error())
        finally:
            record.duration_ms = (_clock() - started) * 1000
            record.chunks, record.bytes = stats.chunks, stats.bytes
            if stats.failure is not None:
                record.error_code = stats.failure.code
            self.state.metrics.requests.labels(record.route, str(record.status)).inc()
            record.emit()

    async def _admit(self, scope: Scope, record: RequestRecord) -> None:
        """Client key, request rate, draining: each raises ``RequestRefused``."""
        state = self.state
        client_id = record.client = await state.auth.admit(scope)
        await admit_request(state.rate, client_id)
        if state.streams.draining and scope["method"] == "GET":
            raise RequestRefused(failures.SHUTDOWN)  # a replica not draining can carry it

    async def _delete(self, scope: Scope, send: Send, record: RequestRecord) -> None:
        stream_id = scope["path_params"]["stream_id"]
        if not await self.streams.stop(stream_id, record.client):
            await self._fail(send, record, failures.STREAM_NOT_FOUND)
            return
        record.status = 204
        await send({"type": "http.response.start", "status": 204, "headers": [NOSNIFF]})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _get(
        self, scope: Scope, receive: Receive, send: Send, record: RequestRecord, stats: RelayStats
    ) -> None:
        stream_id = scope["path_params"]["stream_id"]
        raw = header(scope, b"last-event-id")
        matched = _EVENT_ID.fullmatch(raw) if raw is not None else None
        if raw is not None and raw.strip() and matched is None:
            await self._fail(send, record, failures.bad_last_event_id())
            return
        after = int(matched.group(1)) if matched is not None else 0
        info = await self._locate(stream_id, after, record.client)
        if not isinstance(info, StreamInfo):
            self._count("not_found" if info is failures.STREAM_NOT_FOUND else "ahead")
            await self._fail(send, record, info)
            return
        control = StreamControl(self.state.settings.proxy_heartbeat_interval)
        self.state.streams.add(control)
        control.watch_caller(receive, send)
        try:
            await self._relay(stream_id, after, info, control, send, record, stats)
        except asyncio.CancelledError:
            stop = control.stopped()
            if stop.reason == "shutdown" and control.headers_sent:
                # Only a shared buffer lets another replica carry the reader on.
                shared = self.streams.buffer.shared
                goodbye = failures.RESUME_ELSEWHERE if shared else failures.SHUTDOWN
                await end_with(control, goodbye, stats)
            if stop.foreign:
                raise
            record.outcome = stop.reason
        finally:
            control.finish()
            self.state.streams.discard(control)
            await self.streams.buffer.hold(stream_id)  # the window starts from this departure

    async def _locate(self, stream_id: str, after: int, client: str) -> StreamInfo | ProxyFailure:
        """The stream to follow from event ``after``, or why not: 404, or 409 when ``after``
        is an event it never sent (following would be silence until its end).

        In memory an event is kept before it is sent, so an id past the last is never one the
        caller received. A shared buffer is written a batch behind the replica relaying the
        answer: a caller who moved replicas may be ahead of it by up to one write.
        """
        info = await self.streams.find(stream_id, client)
        deadline = time.monotonic() + _WRITE_LAG
        while info is not None and after > info.last:
            live_and_shared = self.streams.buffer.shared and not info.finished
            if not live_and_shared or time.monotonic() >= deadline:
                return failures.RESUME_AHEAD
            await asyncio.sleep(_WRITE_LAG / 20)
            info = await self.streams.find(stream_id, client)
        return info if info is not None else failures.STREAM_NOT_FOUND

    async def _relay(
        self,
        stream_id: str,
        after: int,
        info: StreamInfo,
        control: StreamControl,
        send: Send,
        record: RequestRecord,
        stats: RelayStats,
    ) -> None:
        """Replay, then follow to the end; a failure after the start ends with its event."""
        await self.streams.buffer.hold(stream_id)
        events = self.streams.buffer.follow(stream_id, after, idle=self.hold_every)
        # The first piece is read before the 200, so a gap or a lost stream is a status.
        try:
            first: tuple[int, bytes] | None = await anext(events)
        except StopAsyncIteration:  # (not anext()'s default: CPython 3.11 fails it here)
            first = None
        except Exception as exc:  # a gap, a lost stream, or the store failing
            await self._reconnect_failed(send, record, stats, exc)
            return
        self._count("resumed")
        await control.start_response([*_SSE_HEADERS, (b"x-stream-id", stream_id.encode()), NOSNIFF])
        record.status = 200
        failure = None
        try:
            await self._follow(stream_id, events, first, control, stats, (after, info.last))
        except ResumeGap:
            failure = failures.RESUME_GAP
        except (StreamGone, StreamLost):
            failure = failures.STREAM_LOST
        except Exception as exc:  # the store failed under a reader: it may come back
            logger.warning("resume of %s failed: %s", record.request_id, type(exc).__name__)
            failure = failures.RESUME_UNAVAILABLE
        if failure is not None:
            await end_with(control, failure, stats)
        else:
            await control.send_last(b"")

    async def _follow(
        self,
        stream_id: str,
        events: AsyncIterator[tuple[int, bytes]],
        piece: tuple[int, bytes] | None,
        control: StreamControl,
        stats: RelayStats,
        span: tuple[int, int],
    ) -> None:
        """Send each piece as it comes, holding the stream while it reads.

        ``span``: the event the caller had, and the last one buffered when it came back.
        """
        held = time.monotonic()
        after, buffered = span
        last = after
        try:
            while piece is not None:
                number, data = piece
                if data:
                    await control.send_body(data)
                    stats.bytes += len(data)
                    last = number
                if time.monotonic() - held >= self.hold_every:
                    await self.streams.buffer.hold(stream_id)
                    held = time.monotonic()
                try:
                    piece = await anext(events)
                except StopAsyncIteration:
                    piece = None
        finally:
            self._count_events(after, last, buffered, stats)

    async def _reconnect_failed(
        self, send: Send, record: RequestRecord, stats: RelayStats, exc: Exception
    ) -> None:
        """Nothing was sent yet: the failure as a status (410 gap, 502 lost, 503 store)."""
        if isinstance(exc, ResumeGap):
            outcome, failure = "gap", failures.RESUME_GAP
        elif isinstance(exc, StreamGone | StreamLost):
            outcome, failure = "lost", failures.STREAM_LOST
        else:
            logger.warning("resume of %s failed: %s", record.request_id, type(exc).__name__)
            outcome, failure = "unavailable", failures.RESUME_UNAVAILABLE
        self._count(outcome)
        stats.failure = failure
        await self._fail(send, record, failure)

    def _count(self, outcome: str) -> None:
        if self.streams.metrics is not None:
            self.streams.metrics.resumes.labels(outcome).inc()

    def _count_events(self, after: int, last: int, buffered: int, stats: RelayStats) -> None:
        """Events sent: those already buffered when the caller came back were replayed."""
        delivered = max(0, last - after)
        replayed = max(0, min(last, buffered) - after)
        stats.chunks = delivered
        metrics = self.streams.metrics
        if metrics is not None:
            metrics.replayed.inc(replayed)
            metrics.followed.inc(delivered - replayed)

    async def _fail(self, send: Send, record: RequestRecord, failure: ProxyFailure) -> None:
        record.status = failure.status
        await failure.send_response(send, NOSNIFF)
