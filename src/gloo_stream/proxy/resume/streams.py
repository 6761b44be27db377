"""``ResumableStreams``: the answers this process generates that callers may come back to.

An answer started with ``PROXY_RESUME_WINDOW`` on is relayed through a ``ResumableAnswer``:
the ASGI ``send`` of its request, which numbers each event (``id: N``), keeps it in the
buffer and sends it on while the caller is there. When the caller leaves, the upstream
goes on and the events only go to the buffer; a reader holds the stream while it reads.
Once a tick finds nobody has held a stream for the window, its upstream is cancelled.
A ``DELETE`` (on this replica or, through the buffer, on another) cancels it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from gloo_stream.proxy.resume.buffer import (
    STREAM_ID,
    EventBuffer,
    StreamInfo,
    new_stream_id,
)
from gloo_stream.proxy.resume.metrics import ResumeMetrics

__all__ = ["Cancel", "ResumableAnswer", "ResumableStreams"]

logger = logging.getLogger("gloo_stream.proxy")
Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]
Cancel = Callable[[str], None]
"""Stops an answer's upstream; called with the reason (``cancel`` or ``abandoned``)."""


class ResumableAnswer:
    """One resumable answer's ``send``: numbers, buffers, and relays while the caller stays."""

    __slots__ = (
        "_buffer",
        "_cancel",
        "_send",
        "_streams",
        "attended",
        "began",
        "ended",
        "number",
        "stream_id",
    )

    def __init__(
        self, streams: ResumableStreams, stream_id: str, send: Send, cancel: Cancel
    ) -> None:
        self._streams = streams
        self._buffer = streams.buffer
        self._send = send
        self._cancel = cancel
        self.stream_id = stream_id
        self.number = 0
        self.attended = True
        self.began = False
        self.ended = False

    async def __call__(self, message: Message) -> None:
        """Send one ASGI message: body events get their ``id:`` and are kept first."""
        if message["type"] == "http.response.start":
            self.began = True
        elif message["type"] == "http.response.body" and not self.ended:
            more = message.get("more_body", False)
            body = message.get("body", b"")
            if body and not _only_comment(body):  # a comment (heartbeat) is not an event
                message = {"type": "http.response.body", "body": self._keep(body, more)}
                message["more_body"] = more
            elif not more:
                self._end(None, b"")
        if self.attended:
            await self._send(message)

    def _keep(self, body: bytes, more: bool) -> bytes:
        # Usually one event per message; a message with several is numbered event by event.
        events = [body] if body.find(b"\n\n") == len(body) - 2 else _split_events(body)
        out = []
        last = len(events) - 1
        for i, event in enumerate(events):
            if _only_comment(event):
                out.append(event)
                continue
            self.number += 1
            frame = b"id: %d\n%s" % (self.number, event)
            out.append(frame)
            if more or i < last:
                self._buffer.append(self.stream_id, self.number, frame)
            else:
                self._end(self.number, frame)
        if not more and self.ended is False:
            self._end(None, b"")
        return out[0] if len(out) == 1 else b"".join(out)

    def _end(self, number: int | None, frame: bytes) -> None:
        self.ended = True
        self._buffer.finish(self.stream_id, number, frame)

    def watch(self, receive: Receive) -> Receive:
        """``receive`` for the stream's disconnect watch: the caller's leaving is noted here
        and never reported, so the upstream goes on (until ``cancel``)."""

        async def until_left() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.caller_left()
                await asyncio.Future()  # never returns: the watch is cancelled at the end
            return message

        return until_left

    def caller_left(self) -> None:
        """The caller went away: stop sending, keep generating; its window starts now.

        Before the answer began the caller never learnt its id, so nobody can come back:
        the upstream is stopped as it would be without resuming.
        """
        if not self.attended:
            return
        self.attended = False
        if self.began:
            self._streams.hold_soon(self.stream_id)
        else:
            self._cancel("disconnect")

    def cancel(self, reason: str) -> None:
        """Stop the upstream (``DELETE``, or nobody came back within the window)."""
        self._cancel(reason)

    def close(self) -> None:
        """The request is over: end the buffered stream if the relay did not."""
        if not self.ended:
            self._end(None, b"")
        self._streams.forget(self)


class ResumableStreams:
    """This process's resumable answers over one buffer, and the tick that expires them."""

    def __init__(
        self,
        buffer: EventBuffer,
        *,
        window: float,
        metrics: ResumeMetrics | None = None,
        tick: float | None = None,
    ) -> None:
        self.buffer = buffer
        self.window = window
        self.metrics = metrics
        self.tick = tick if tick is not None else min(1.0, max(0.05, window / 4))
        self._local: dict[str, ResumableAnswer] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        buffer.on_cancel(self._cancelled_elsewhere)

    def __len__(self) -> int:
        return len(self._local)

    async def keep(
        self, owner: str, route: str, send: Send, cancel: Cancel
    ) -> ResumableAnswer | None:
        """Keep a new answer for reconnecting: a ``ResumableAnswer``, or None when the
        buffer cannot take it (then the answer is relayed as without resuming)."""
        stream_id = new_stream_id()
        if not await self.buffer.create(stream_id, owner, route):
            return None
        answer = ResumableAnswer(self, stream_id, send, cancel)
        self._local[stream_id] = answer
        if self.metrics is not None:
            self.metrics.live.set(len(self._local))
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())
        return answer

    def forget(self, answer: ResumableAnswer) -> None:
        """The answer's request has ended."""
        if self._local.get(answer.stream_id) is answer:
            del self._local[answer.stream_id]
            if self.metrics is not None:
                self.metrics.live.set(len(self._local))

    def hold_soon(self, stream_id: str) -> None:
        """``buffer.hold`` from synchronous code (the caller's disconnect)."""
        task = asyncio.get_running_loop().create_task(self.buffer.hold(stream_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def find(self, stream_id: str, owner: str) -> StreamInfo | None:
        """The stream if ``owner`` may see it; None for a malformed, unknown, expired,
        cancelled or someone else's id, alike."""
        if not STREAM_ID.fullmatch(stream_id):
            return None
        return await self.buffer.find(stream_id, owner)

    async def stop(self, stream_id: str, owner: str) -> bool:
        """``DELETE``: cancel the stream's upstream wherever it runs; False if not found."""
        if await self.find(stream_id, owner) is None:
            return False
        await self.buffer.cancel(stream_id)
        answer = self._local.get(stream_id)
        if answer is not None:
            answer.cancel("cancel")
        if self.metrics is not None:
            self.metrics.cancelled.inc()
        return True

    def _cancelled_elsewhere(self, stream_id: str) -> None:
        answer = self._local.get(stream_id)
        if answer is not None:
            answer.cancel("cancel")

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            try:
                await self.run_tick()
            except Exception:  # one bad tick must not end expiry for good
                logger.exception("resume expiry tick failed")

    async def run_tick(self) -> None:
        """Keep this process's answers alive in the buffer; cancel the abandoned ones."""
        ids = list(self._local)
        await self.buffer.keep_alive(ids)
        away = [i for i in ids if not self._local[i].attended]
        if not away:
            return
        for stream_id in await self.buffer.cancelled(away):
            self._cancelled_elsewhere(stream_id)
        for stream_id in await self.buffer.unattended(away):
            answer = self._local.get(stream_id)
            if answer is None or answer.attended or answer.ended:
                continue
            await self.buffer.cancel(stream_id)  # expired: 404 from now on
            answer.cancel("abandoned")
            if self.metrics is not None:
                self.metrics.expired.inc()

    async def aclose(self) -> None:
        """Stop the tick and close the buffer."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for task in list(self._pending):
            with contextlib.suppress(Exception):
                await task
        await self.buffer.aclose()


def _only_comment(event: bytes) -> bool:
    """A comment (a heartbeat), not an event; an event may open with a comment line (the
    seam of a continued answer: ``: continued ...`` then its ``data:``)."""
    return event[:1] == b":" and b"\ndata" not in event


def _split_events(body: bytes) -> list[bytes]:
    """``body`` cut after each blank line, each piece one whole event or comment."""
    parts = body.split(b"\n\n")
    events = [part + b"\n\n" for part in parts[:-1] if part]
    if parts[-1]:
        events.append(parts[-1])  # no blank line at the end: kept as it came
    return events
