"""Relaying one upstream answer to one caller, and stopping it when the caller goes away.

Each stream has a ``StreamControl``: it learns of the caller's disconnect from the caller's
connection itself (the proxy's front door, ``FrontDoorProtocol.watch_disconnect``) or else
from a watcher task waiting on the ASGI ``receive`` (uvicorn's ``send`` silently drops
bytes to a closed socket, and while the upstream is still thinking nothing is being sent at
all), and cancels the relaying task at once, which closes the upstream response and
releases its connection. Its timer sends heartbeat comments while the upstream is silent.
``ActiveStreams`` knows every open stream so shutdown can drain them.

Events are relayed as the upstream sent them: the event data (the chunk's JSON text, kept
by ``wire.decode_chunk``) is framed again as ``data: ...`` without decoding and re-encoding
the JSON. The chunk is still decoded once, by the client's ``CompletionProtocol``, which is
what decides where the answer ends and what counts as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from gloo_stream.client import AsyncChatStream
from gloo_stream.errors import ContentFilterError, StreamError
from gloo_stream.grounding import citations_event
from gloo_stream.proxy.asgi import Headers, Receive, Send
from gloo_stream.proxy.failures import ProxyFailure, stream_failure
from gloo_stream.redaction import NO_SECRETS, Redactor, StreamScrubber
from gloo_stream.sse import encode_comment, encode_event
from gloo_stream.wire import ChatCompletionChunk

__all__ = [
    "DONE_EVENT",
    "ActiveStreams",
    "RelayStats",
    "StreamControl",
    "StreamStopped",
    "end_with",
    "frame_batch",
    "relay_chunks",
]

DONE_EVENT = b"data: [DONE]\n\n"
# A comment LINE, not a block: no blank line after it, so it joins the next event's block.
# A lone comment block makes the OpenAI SDK (which keeps the last ``id:``, as the spec says)
# yield an empty event on a resumable stream and fail to parse it as JSON; a comment line
# inside a block is ignored by every reader (EventSource, the SDK, ours).
HEARTBEAT = encode_comment("keep-alive").removesuffix(b"\n")
_WORD = re.compile(r"[^A-Za-z0-9_.-]")


class StreamStopped(Exception):  # noqa: N818 - a signal, not an error
    """The stream was stopped from outside: the caller left, or the server is shutting down."""

    def __init__(self, reason: str, *, foreign: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.foreign = foreign


class StreamControl:
    """One stream's link to the outside: disconnect watch, heartbeats and shutdown.

    On the proxy's own front door the caller's connection says when it is lost
    (``FrontDoorProtocol.watch_disconnect``); behind any other ``send`` one task per stream
    waits on ``receive`` (nothing else can tell that the caller left). A loop timer checks
    for idleness once per heartbeat interval, so an open stream costs one timer (and at
    most one task), not a task per wait. Everything sent on the stream goes
    through ``start_response``, ``send_body`` and ``send_last``, so this class alone keeps the flags
    the heartbeat reads (``headers_sent``, ``sending``, ``last_send``).
    """

    __slots__ = (
        "_beat",
        "_loop",
        "_protocol",
        "_send",
        "_task",
        "_timer",
        "_watcher",
        "done",
        "headers_sent",
        "heartbeat",
        "last_send",
        "reason",
        "sending",
    )

    def __init__(self, heartbeat: float) -> None:
        self.heartbeat = heartbeat
        self.reason: str | None = None
        self.headers_sent = False
        self.sending = False
        self.done = False
        self.last_send = 0.0
        self._task: asyncio.Task[Any] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._beat: asyncio.Task[None] | None = None
        self._send: Send | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._protocol: Any = None  # the caller's connection, when it tells of its loss

    def watch_caller(self, receive: Receive, send: Send) -> None:
        """Begin watching for the caller's disconnect (call after the body was read)."""
        loop = self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._send = send
        protocol = _caller_protocol(send)
        if protocol is not None and protocol.watch_disconnect(self._caller_left):
            self._protocol = protocol  # told by the connection itself: no task per stream
        else:
            self._watcher = loop.create_task(self._watch(receive))
        self._timer = loop.call_later(self.heartbeat, self._tick)

    async def start_response(self, headers: Headers) -> None:
        """Send the stream's 200 and ``headers``; from now on silence is filled by heartbeats."""
        assert self._send is not None and self._loop is not None
        await self._send({"type": "http.response.start", "status": 200, "headers": headers})
        self.headers_sent = True
        self.last_send = self._loop.time()

    async def send_body(self, data: bytes) -> None:
        """Send one piece of the answer (no heartbeat is queued behind a blocked send)."""
        assert self._send is not None and self._loop is not None
        self.sending = True
        await self._send({"type": "http.response.body", "body": data, "more_body": True})
        self.sending = False
        self.last_send = self._loop.time()

    async def send_last(self, data: bytes) -> None:
        """Send the stream's last bytes and end the response; no heartbeat follows."""
        assert self._send is not None
        self.sending = True
        await self._send({"type": "http.response.body", "body": data, "more_body": False})

    def stop(self, reason: str) -> None:
        """Stop the stream from outside (``"disconnect"`` or ``"shutdown"``)."""
        if self.done or self.reason is not None or self._task is None:
            return
        self.reason = reason
        self._task.cancel()

    def finish(self) -> None:
        """The stream is over: stop watching (synchronously, so no late cancel can land).

        The tasks are let go as they are cancelled: a cancelled task keeps its
        ``CancelledError``, whose traceback holds the task's frame and so this object; if
        this object still held the task, every finished stream would be a reference cycle
        that only a full collection frees (measured: about 50 objects per stream).
        """
        self.done = True
        for task in (self._watcher, self._beat):
            if task is not None:
                task.cancel()
        if self._timer is not None:
            self._timer.cancel()
        if self._protocol is not None:
            self._protocol.watch_disconnect(None)  # and no cycle left between the two
        self._watcher = self._beat = self._timer = self._protocol = None

    def _caller_left(self) -> None:
        self.stop("disconnect")

    def stopped(self) -> StreamStopped:
        """Why the stream was cancelled: by us (caller left, drain), else by the server.

        Our own cancellation is withdrawn (``uncancel``) so the task goes on normally; any
        other (uvicorn ending tasks after its graceful-shutdown timeout) counts as a
        shutdown, and the caller must re-raise it once the closing event is sent.
        """
        task = self._task
        if self.reason is None or task is None:
            return StreamStopped("shutdown", foreign=True)
        task.uncancel()
        return StreamStopped(self.reason)

    async def _watch(self, receive: Receive) -> None:
        try:
            while not self.done:
                if (await receive())["type"] == "http.disconnect":
                    self.stop("disconnect")
                    return
                # anything else is a stray body message: keep waiting
        except (OSError, RuntimeError):
            return  # the response ended under us

    def _tick(self) -> None:
        if self.done:
            return
        loop = asyncio.get_running_loop()
        wait = self.heartbeat
        if self.headers_sent:
            idle = loop.time() - self.last_send
            # While a send is blocked on a slow caller, a heartbeat would only queue.
            if self.sending or (self._beat is not None and not self._beat.done()):
                pass
            elif idle >= self.heartbeat:
                self.last_send = loop.time()
                self._beat = loop.create_task(self._heartbeat())
            else:
                wait = self.heartbeat - idle
        self._timer = loop.call_later(wait, self._tick)

    async def _heartbeat(self) -> None:
        assert self._send is not None
        try:
            await self._send({"type": "http.response.body", "body": HEARTBEAT, "more_body": True})
        except (OSError, RuntimeError):
            return  # the response ended under us: nothing left to keep alive


def _caller_protocol(send: Send) -> Any:
    """The caller's connection behind uvicorn's ``send`` when it can report its own loss
    (``FrontDoorProtocol.watch_disconnect``); None for any other ``send``."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    protocol = transport.get_protocol() if transport is not None else None
    return protocol if hasattr(protocol, "watch_disconnect") else None


class ActiveStreams:
    """Every stream in flight, so shutdown can let them finish, then end the rest."""

    def __init__(self) -> None:
        self._streams: set[StreamControl] = set()
        self.draining = False
        self._empty = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._streams)

    def add(self, control: StreamControl) -> None:
        """Track a stream."""
        self._streams.add(control)
        self._empty.clear()

    def discard(self, control: StreamControl) -> None:
        """Stop tracking a stream."""
        self._streams.discard(control)
        if not self._streams:
            self._empty.set()

    def start_shutdown(self, grace: float) -> None:
        """Refuse new streams; after ``grace`` seconds end those still open."""
        if self.draining:
            return
        self.draining = True
        self._timer = asyncio.get_running_loop().call_later(grace, self.stop_all)

    def stop_all(self) -> None:
        """End every open stream now (each sends a final shutdown error event)."""
        for control in list(self._streams):
            control.stop("shutdown")

    async def wait_empty(self, limit: float) -> bool:
        """Wait until no stream is open, at most ``limit`` seconds; False if some still are."""
        if not self._streams:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._empty.wait(), limit)
        return not self._streams


class RelayStats:
    """What one relay sent: events, bytes, and the failure it ended with, if any."""

    __slots__ = ("bytes", "chunks", "failure", "result_tokens", "ttft_ms")

    def __init__(self) -> None:
        self.chunks = 0
        self.bytes = 0
        self.failure: ProxyFailure | None = None
        self.result_tokens: int | None = None
        self.ttft_ms: float | None = None


async def relay_chunks(
    stream: AsyncChatStream,
    control: StreamControl,
    stats: RelayStats,
    *,
    done_event: bool,
    redactor: Redactor = NO_SECRETS,
    usage_chunk: bool = True,
) -> None:
    """Relay the opened stream's events to the caller, then one closing event if needed.

    The events one upstream read completed go on in one write. A chunk that reports an
    upstream error is not relayed: the caller gets one error event of the proxy's own
    (valid JSON, no upstream internals) instead. ``done_event`` adds the ``data: [DONE]``
    sentinel OpenAI clients expect after a complete answer. ``redactor`` holds the secrets
    an upstream's error name must not carry, and that no relayed event may carry either
    (``StreamScrubber``). ``usage_chunk=False`` keeps back the usage-only chunk
    (``choices: []``) from a caller that did not ask for it (the proxy asks upstream for it
    on every request, to bill it).
    """
    chunks = nbytes = 0
    scrub = StreamScrubber(redactor) if redactor else None  # secrets echoed in an answer
    try:
        async for batch in stream.batches():
            count, data = frame_batch(batch, usage_chunk, scrub)
            if not count:
                continue
            await control.send_body(data)
            chunks += count
            nbytes += len(data)
    except ContentFilterError as exc:
        _take_result(stats, exc)  # the finish chunk saying so was relayed: a normal end
    except StreamError as exc:
        _take_result(stats, exc)
        stats.failure = stream_failure(exc, redactor)
    finally:
        stats.chunks += chunks
        stats.bytes += nbytes
        if stats.result_tokens is None and (so_far := stream.partial_result()) is not None:
            # The caller left mid-answer: its log line counts what was relayed, not null.
            stats.result_tokens, stats.ttft_ms = so_far.token_count, so_far.ttft_ms
    if stats.failure is None and stream.result is not None:
        stats.result_tokens = stream.result.token_count
        stats.ttft_ms = stream.result.ttft_ms
    tail = stats.failure.event() if stats.failure is not None else DONE_EVENT if done_event else b""
    if scrub is not None:
        tail = b"".join([*scrub.flush(), tail])
    stats.bytes += len(tail)
    await control.send_last(tail)


def _frame_chunk(chunk: ChatCompletionChunk, usage_chunk: bool) -> bytes:
    """The chunk as the event to relay: the data the upstream sent, framed again; b"" for none.

    An error report is not relayed (finish() raises it, and it is sent as ours); nor is the
    usage-only chunk when the caller did not ask for it. A citations event, in whatever
    variant, goes out in the contract's one form (``grounding.citations_event``).
    """
    raw = chunk.raw
    choices = chunk.choices_
    if not raw or (choices and choices[0].finish_reason == "error"):
        return b""
    if (chunk.citations is not None or chunk.sources is not None) and not chunk.content:
        return _citations_frame(chunk)
    if not choices and not usage_chunk and chunk.usage is not None:
        return b""  # the usage the proxy asked for, not the caller
    if isinstance(raw, bytes):
        if raw.find(b"\n") < 0 and raw.find(b"\r") < 0:
            return b"data: " + raw + b"\n\n"  # the bytes the upstream sent, as it framed them
        return encode_event(raw)
    return b"data: " + raw.encode() + b"\n\n" if "\n" not in raw else encode_event(raw)


def _citations_frame(chunk: ChatCompletionChunk) -> bytes:
    """A grounded answer's sources, whatever variant the upstream sent them in, as the one
    chunk-shaped event the wire contract names: an empty choice (OpenAI clients index
    ``choices[0]``), the items under ``citations`` with every field kept."""
    items = chunk.citation_items or []
    returned = chunk.sources_returned
    return citations_event(
        items,
        returned if isinstance(returned, bool) else None,
        chunk_id=chunk.id,
        created=chunk.created,
        model=chunk.model,
    )


def frame_batch(
    batch: list[ChatCompletionChunk], usage_chunk: bool, scrub: StreamScrubber | None
) -> tuple[int, bytes]:
    """One upstream read's chunks as the bytes to relay in one write, and how many events.

    Each chunk framed as the upstream sent it (``_frame_chunk``), secrets scrubbed (a scrubber
    may hold an event back until the next says whether a secret goes on), and a continued
    answer's seam comment before the first chunk after the seam. Both relays (``relay_chunks``
    and ``callback_relay``) frame with it. (0, b"") when nothing is to be sent.
    """
    if scrub is None:
        frames = [frame for chunk in batch if (frame := _frame_chunk(chunk, usage_chunk))]
    else:
        frames = scrub.relay([(c.content, f) for c in batch if (f := _frame_chunk(c, usage_chunk))])
    if not frames:
        return 0, b""
    if batch[0].gloo_continuation is not None:  # the first chunk after a seam
        frames[0] = _seam_comment(batch[0].gloo_continuation) + frames[0]
    return len(frames), frames[0] if len(frames) == 1 else b"".join(frames)


def _seam_comment(seam: dict[str, Any]) -> bytes:
    """The SSE comment line written right before the first chunk after a continued answer's
    seam (that chunk carries ``gloo_continuation``): ``: continued n=<N> reason=<reason>``.

    A line of that chunk's own event, not an event of its own: a lone comment followed by a
    blank line makes the OpenAI SDK (which keeps the last ``id:``) yield an empty event.
    """
    # The seam is upstream-shaped data: only a word goes into the comment line, so no
    # newline (no forged event) can ride on it.
    n = seam.get("n")
    reason = _WORD.sub("", str(seam.get("reason")))[:40] or "unknown"
    return f": continued n={n if isinstance(n, int) else 0} reason={reason}\n".encode()


def _take_result(stats: RelayStats, exc: StreamError) -> None:
    stats.result_tokens = exc.partial.token_count
    stats.ttft_ms = exc.partial.ttft_ms


async def end_with(control: StreamControl, failure: ProxyFailure, stats: RelayStats) -> None:
    """End a stream that already began with the failure's error event."""
    stats.failure = failure
    event = failure.event()
    stats.bytes += len(event)
    await control.send_last(event)
