"""``MemoryBuffer``: resumable answers kept in this process (no ``PROXY_REDIS_URL``).

A caller can resume only on the process that generated its answer; with several workers
or replicas, set ``PROXY_REDIS_URL`` so ``RedisBuffer`` is used instead.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable

from gloo_stream.proxy.resume.buffer import ResumeGap, StreamGone, StreamInfo

__all__ = ["MemoryBuffer"]


class _Stream:
    """One answer's kept events: numbers ``first`` to ``last``, ``size`` bytes in all."""

    __slots__ = (
        "cancelled",
        "ended",
        "ended_at",
        "first",
        "frames",
        "last",
        "owner",
        "route",
        "seen_until",
        "size",
        "wake",
    )

    def __init__(self, owner: str, route: str, now: float) -> None:
        self.owner = owner
        self.route = route
        self.frames: deque[bytes] = deque()
        self.first = 1
        self.last = 0
        self.size = 0
        self.ended = False
        self.ended_at = 0.0
        self.cancelled = False
        self.seen_until = now
        self.wake: asyncio.Future[None] | None = None

    def woken(self) -> None:
        wake, self.wake = self.wake, None
        if wake is not None and not wake.done():
            wake.set_result(None)


class MemoryBuffer:
    """Every resumable answer of this process, each bounded to ``max_bytes`` of events.

    When an answer outgrows ``max_bytes`` its oldest events are dropped: a caller who
    comes back from further behind gets ``ResumeGap``. ``clock`` is for tests.
    """

    shared = False  # this process alone: a reader cut off by its shutdown has nowhere to go

    def __init__(
        self, *, window: float, max_bytes: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window
        self.max_bytes = max_bytes
        self._clock = clock
        self._streams: dict[str, _Stream] = {}

    def __len__(self) -> int:
        return len(self._streams)

    async def create(self, stream_id: str, owner: str, route: str) -> bool:
        """Make room for a new stream (always possible in memory)."""
        self._streams[stream_id] = _Stream(owner, route, self._clock())
        return True

    def append(self, stream_id: str, number: int, frame: bytes) -> None:
        """Keep one event, dropping the oldest ones beyond ``max_bytes``."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.ended:
            return
        stream.frames.append(frame)
        stream.last = number
        stream.size += len(frame)
        frames = stream.frames
        while stream.size > self.max_bytes and len(frames) > 1:
            stream.size -= len(frames.popleft())
            stream.first += 1
        stream.woken()

    def finish(self, stream_id: str, number: int | None, frame: bytes) -> None:
        """The last event, if any; the stream ends and its window starts."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.ended:
            return
        if number is not None and frame:
            self.append(stream_id, number, frame)
        stream.ended = True
        stream.ended_at = self._clock()
        stream.woken()

    async def find(self, stream_id: str, owner: str) -> StreamInfo | None:
        """The stream if ``owner`` started it and it has not expired or been cancelled."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.cancelled or self._expired(stream, self._clock()):
            return None
        if not secrets.compare_digest(stream.owner.encode(), owner.encode()):
            return None
        return StreamInfo(route=stream.route, finished=stream.ended, last=stream.last)

    async def follow(
        self, stream_id: str, after: int, *, idle: float
    ) -> AsyncIterator[tuple[int, bytes]]:
        """Replay what is kept after ``after``, then follow live to the end."""
        stream = self._streams.get(stream_id)
        if stream is None:
            raise StreamGone(stream_id)
        cursor = after
        while True:
            if cursor < stream.last:
                if cursor + 1 < stream.first:
                    raise ResumeGap(stream_id)
                piece = b"".join(itertools.islice(stream.frames, cursor + 1 - stream.first, None))
                cursor = stream.last
                yield cursor, piece
            elif stream.ended:
                return
            else:
                if stream.wake is None:
                    stream.wake = asyncio.get_running_loop().create_future()
                done, _ = await asyncio.wait([stream.wake], timeout=idle)
                if not done:
                    yield cursor, b""

    async def hold(self, stream_id: str) -> None:
        """Keep the stream for the window from now."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.seen_until = self._clock() + self.window

    async def unattended(self, stream_ids: Iterable[str]) -> set[str]:
        """Streams nobody held within the window (or that are gone)."""
        now = self._clock()
        out = set()
        for stream_id in stream_ids:
            stream = self._streams.get(stream_id)
            if stream is None or stream.seen_until <= now:
                out.add(stream_id)
        return out

    async def cancel(self, stream_id: str) -> None:
        """404 from now on; the coordinator stops the local producer itself."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.cancelled = True

    async def cancelled(self, stream_ids: Iterable[str]) -> set[str]:
        """Streams cancelled (or gone)."""
        out = set()
        for stream_id in stream_ids:
            stream = self._streams.get(stream_id)
            if stream is None or stream.cancelled:
                out.add(stream_id)
        return out

    def on_cancel(self, callback: Callable[[str], None]) -> None:
        """Nothing to subscribe to: in one process, every producer is local."""

    async def keep_alive(self, stream_ids: Iterable[str]) -> None:
        """Forget the streams whose window has passed since their end."""
        now = self._clock()
        streams = self._streams
        for stream_id in [i for i, s in streams.items() if self._expired(s, now)]:
            del streams[stream_id]

    async def aclose(self) -> None:
        """Drop everything (this process is ending)."""
        self._streams.clear()

    def _expired(self, stream: _Stream, now: float) -> bool:
        if not stream.ended:
            return False
        return stream.cancelled or now - stream.ended_at >= self.window
