"""Relaying an answer inside the event loop's callbacks: no task wake-up per upstream read.

``relay_chunks`` (``relay.py``) is a task that wakes for every upstream read, runs the
answer's flow a step, and awaits an ASGI ``send``. Here the upstream connection's
``data_received`` drives the same flow (``AsyncChatStream.flow``) itself: the read is
decoded (the ``CompletionProtocol`` decides where the answer ends and what is a failure),
framed exactly as ``relay_chunks`` frames it (the same ``frame_batch``: each event, the
``StreamScrubber``, a seam's comment), and written with one ``write`` to the caller's
transport, framed as uvicorn frames a chunked body. The relaying task awaits once for the
end, and wakes only when the flow asks for other I/O (a new request: a continued answer, a
retry's wait) or the caller's socket is full (it waits for it to drain with the upstream's
reading paused).

The end goes through ``StreamControl.send_last`` as before, so uvicorn completes the
response itself. Used when the caller is on uvicorn's httptools protocol with a chunked
response (``direct_writer``) and the body comes from ``StreamingTransport``; anything else
(a resumable answer's ``send``, another server, a compressed body httpx decodes) goes
through ``relay_chunks``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gloo_stream.client import AsyncChatStream
from gloo_stream.client._async import direct_body
from gloo_stream.client._base import clock
from gloo_stream.client._steps import Flow, ReadSome, next_step
from gloo_stream.errors import ContentFilterError, StreamError
from gloo_stream.protocol import CompletionProtocol
from gloo_stream.proxy.asgi import Send
from gloo_stream.proxy.failures import stream_failure
from gloo_stream.proxy.relay import (
    DONE_EVENT,
    RelayStats,
    StreamControl,
    frame_batch,
    relay_chunks,
)
from gloo_stream.redaction import NO_SECRETS, Redactor, StreamScrubber
from gloo_stream.wire import ChatCompletionChunk

__all__ = ["direct_writer", "relay_answer"]

_DRAIN = object()  # the task's cue: the caller's socket is full, wait for it to drain


def direct_writer(send: Send) -> Any:
    """uvicorn's request cycle behind ``send`` when its body can be written straight to the
    transport (httptools protocol, chunked response started, not HEAD); else None."""
    cycle = getattr(send, "__self__", None)
    if (
        cycle is None
        or type(cycle).__name__ != "RequestResponseCycle"
        or getattr(cycle, "chunked_encoding", None) is not True
        or not getattr(cycle, "response_started", False)
        or getattr(cycle, "scope", {}).get("method") == "HEAD"
    ):
        return None
    return cycle


async def relay_answer(
    stream: AsyncChatStream,
    control: StreamControl,
    stats: RelayStats,
    send: Send | None,
    *,
    done_event: bool,
    redactor: Redactor = NO_SECRETS,
    usage_chunk: bool = True,
) -> None:
    """Relay the opened stream to the caller, in the callbacks when it can be (see module)."""
    cycle = direct_writer(send) if send is not None else None
    if cycle is None:
        await relay_chunks(
            stream,
            control,
            stats,
            done_event=done_event,
            redactor=redactor,
            usage_chunk=usage_chunk,
        )
        return
    relay = CallbackRelay(stream, control, cycle, redactor, usage_chunk)
    try:
        await relay.run()
    except ContentFilterError as exc:
        _take_result(stats, exc)  # the finish chunk saying so was relayed: a normal end
    except StreamError as exc:
        _take_result(stats, exc)
        stats.failure = stream_failure(exc, redactor)
    finally:
        relay.detach()
        stats.chunks += relay.chunks
        stats.bytes += relay.bytes
        if stats.result_tokens is None and (so_far := stream.partial_result()) is not None:
            stats.result_tokens, stats.ttft_ms = so_far.token_count, so_far.ttft_ms
    if stats.failure is None and stream.result is not None:
        stats.result_tokens = stream.result.token_count
        stats.ttft_ms = stream.result.ttft_ms
    tail = stats.failure.event() if stats.failure is not None else DONE_EVENT if done_event else b""
    if relay.scrub is not None:
        tail = b"".join([*relay.scrub.flush(), tail])
    stats.bytes += len(tail)
    await control.send_last(tail)


def _take_result(stats: RelayStats, exc: StreamError) -> None:
    partial = exc.partial
    if partial is not None:
        stats.result_tokens, stats.ttft_ms = partial.token_count, partial.ttft_ms


class CallbackRelay:
    """One answer's flow, run by the upstream connection's callbacks (see the module)."""

    __slots__ = (
        "_body",
        "_cycle",
        "_flow",
        "_lane",
        "_loop",
        "_response",
        "_waiter",
        "bytes",
        "chunks",
        "control",
        "scrub",
        "stream",
        "usage_chunk",
    )

    def __init__(
        self,
        stream: AsyncChatStream,
        control: StreamControl,
        cycle: Any,
        redactor: Redactor,
        usage_chunk: bool,
    ) -> None:
        self.stream = stream
        self.control = control
        self.usage_chunk = usage_chunk
        self.scrub = StreamScrubber(redactor) if redactor else None  # secrets echoed back
        self.chunks = self.bytes = 0
        self._cycle = cycle
        self._loop = asyncio.get_running_loop()
        self._flow: Flow[None] | None = None
        self._body: Any = None
        self._response: Any = None  # whose body ``_body`` is
        self._lane: CompletionProtocol | None = None  # set while ``_pump`` runs the reads
        self._waiter: asyncio.Future[object] | None = None

    async def run(self) -> None:
        """Drive the flow to its end; raises what the flow ends with (a ``StreamError``)."""
        stream = self.stream
        self._flow = flow = stream.flow()
        try:
            outcome: object = None
            while True:
                step = await self._next(outcome)
                if step is None:
                    return
                if step is _DRAIN:
                    await self._drain()
                    outcome = _DRAIN
                else:
                    outcome = await stream.do_step(step)  # type: ignore[arg-type]
        except BaseException:
            await stream.aclose()
            raise
        finally:
            self._waiter = None
            flow.close()

    async def _next(self, outcome: object) -> object:
        """Run the flow on from ``outcome`` in the callbacks until it ends or needs the task."""
        waiter = self._waiter = self._loop.create_future()
        if outcome is _DRAIN:  # the caller's socket drained: read on where it stopped
            if self._lane is not None:
                self._pump()
            else:
                self._advance(None)  # the flow waits on after the batch it handed on
        else:
            self._advance(outcome)
        try:
            return await waiter  # the end, a failure, or I/O that needs the task
        finally:
            # The future holds a failure whose traceback holds this frame: no cycle.
            del waiter
            self._waiter = None

    def detach(self) -> None:
        """Stop the callbacks (the stream ended, failed or was cancelled)."""
        body, self._body, self._response = self._body, None, None
        if body is not None:
            body.listen(None)

    def _advance(self, outcome: object) -> None:
        """Run the flow from ``outcome`` until it waits for the body, needs the task, or ends."""
        flow = self._flow
        assert flow is not None
        self._lane = None  # the flow moves on from its read loop, if it was in one
        try:
            step = next_step(flow, outcome)
            while step is not None:
                if isinstance(step, list):
                    if step:
                        self._write(step)
                        if self._cycle.flow.write_paused:
                            self._hand_over(_DRAIN)
                            return
                    step = next_step(flow, None)
                elif isinstance(step, ReadSome):
                    body = self._body
                    if step.response is not self._response:  # a new response (a seam)
                        body = direct_body(step.response)
                        if body is None:
                            self._hand_over(step)  # a body only httpx reads: the task does
                            return
                        self.detach()
                        self._body, self._response = body, step.response
                    if step.protocol is not None:  # the flow's plain read loop: run here
                        self._lane = step.protocol
                        self._pump()
                        return
                    try:
                        data = body.read_ready()
                    except Exception as exc:  # httpx.TransportError: the flow judges it
                        step = next_step(flow, exc)
                        continue
                    if data == b"":
                        body.listen(self._on_data)  # also restarts the idle timeout
                        return
                    step = next_step(flow, data)
                else:
                    self._hand_over(step)
                    return
            self._hand_over(None)
        except BaseException as exc:
            self.detach()
            if not self._fail(exc):  # pragma: no cover - a callback has nowhere else to raise
                raise

    def _fail(self, exc: BaseException) -> bool:
        """Hand the flow's failure to the task (a method of its own, so that the failure's
        traceback, which holds ``_advance``'s frame, holds no reference to the future)."""
        waiter = self._waiter
        if waiter is None or waiter.done():
            return False
        waiter.set_exception(exc)
        return True

    def _pump(self) -> None:
        """The flow's read loop (``ReadSome.protocol``) run here, the flow left waiting at
        its read: each piece fed to the protocol, its chunks written; the flow is resumed
        only with the body's end (None, also once the protocol stopped) or its failure."""
        body, lane = self._body, self._lane
        assert body is not None and lane is not None
        try:
            while True:
                if lane.stopped:
                    self._advance(None)  # the flow's loop ends here as at the body's end
                    return
                try:
                    data = body.read_ready()
                except Exception as exc:  # httpx.TransportError: the flow judges it
                    self._advance(exc)
                    return
                if data is None:
                    self._advance(None)
                    return
                if not data:
                    body.listen(self._on_data)  # also restarts the idle timeout
                    return
                if chunks := lane.feed(data, clock()):
                    self._write(chunks)
                    if self._cycle.flow.write_paused:
                        self._hand_over(_DRAIN)
                        return
        except BaseException as exc:
            self.detach()
            if not self._fail(exc):  # pragma: no cover - a callback has nowhere else to raise
                raise

    def _on_data(self) -> None:
        """The upstream connection's callback: more of the body, its end, or its failure."""
        body = self._body
        if body is None:
            return
        if self._lane is not None:
            self._pump()
            return
        try:
            data = body.read_ready()
        except Exception as exc:  # httpx.TransportError
            self._advance(exc)
            return
        if data != b"":
            self._advance(data)

    def _write(self, batch: list[ChatCompletionChunk]) -> None:
        """The batch's events, framed as ``relay_chunks`` frames them, in one write."""
        count, data = frame_batch(batch, self.usage_chunk, self.scrub)
        if not count:
            return
        self.chunks += count
        self.bytes += len(data)
        cycle = self._cycle
        if cycle.disconnected:
            return  # the watcher cancels the stream: nothing is written to a closed socket
        cycle.transport.write(b"%x\r\n%b\r\n" % (len(data), data))
        control = self.control
        control.last_send = self._loop.time()

    async def _drain(self) -> None:
        """Wait for the caller's socket to take what was written, the upstream's reading
        paused meanwhile; no heartbeat queues behind it."""
        control, body = self.control, self._body
        if body is not None:
            body.pause(True)
        control.sending = True
        try:
            await self._cycle.flow.drain()
        finally:
            control.sending = False
            if body is not None:
                body.pause(False)

    def _hand_over(self, step: object) -> None:
        """Wake the task with ``step`` (I/O, the drain, or None for the end); the callbacks
        stop until it runs the flow again."""
        body = self._body
        if body is not None:
            body.listen(None)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(step)
