"""``RedisBuffer``: resumable answers in Redis Streams, so a caller can resume on any replica.

Per stream, under ``PROXY_REDIS_PREFIX``:
  ``resume:{id}``         hash: owner, route, state (live, done, cancelled, lost), replica
  ``resume:{id}:ev``      stream: one entry per event, entry id ``0-N`` = the SSE ``id: N``,
                          field ``f`` the framed event, ``e`` on the last entry
  ``resume:{id}:seen``    set by every reader, expiring a window after it was last set
  ``resume:replica:{r}``  refreshed each tick by the replica generating answers
  channel ``resume:cancel`` carries the ids a ``DELETE`` cancelled, to every replica.

Writes never wait on the relay's path: ``append`` queues, and one task sends what is
queued as a single pipeline, then the next batch (one round trip per batch, not per
event). An answer's entries are trimmed by ``MINID`` to its last ``max_bytes`` of events;
while it is generated its keys live ``live_ttl`` seconds (refreshed each tick), and once
it has ended, ``window`` seconds. A write that fails marks the stream lost: its readers
are told, and it is not written to again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from gloo_stream.proxy.resume.buffer import (
    BufferUnavailable,
    ResumeGap,
    StreamGone,
    StreamInfo,
    StreamLost,
)

__all__ = ["RedisBuffer"]

logger = logging.getLogger("gloo_stream.proxy")

# DELETE: mark the stream cancelled only if it still exists (HSET would create a hash
# with no expiry), and tell every replica.
_CANCEL = """
if redis.call('exists', KEYS[1]) == 1 then
  redis.call('hset', KEYS[1], 'state', 'cancelled')
  redis.call('publish', ARGV[1], ARGV[2])
  return 1
end
return 0
"""
# The end, or a failed write: a new state only for a live stream (a cancelled one stays 404),
# and the end's expiry on both keys.
_SETTLE = """
if redis.call('hget', KEYS[1], 'state') == 'live' then
  redis.call('hset', KEYS[1], 'state', ARGV[1])
end
if ARGV[2] ~= '' then
  redis.call('pexpire', KEYS[1], ARGV[2])
  redis.call('pexpire', KEYS[2], ARGV[2])
end
return 1
"""
_BATCH = 512  # events read per XREAD
_DOWN_PAUSE = 1.0


class _Produced:
    """Book-keeping for one stream this process writes: its sizes, for the bytes bound."""

    __slots__ = ("first", "refreshed", "sizes", "total")

    def __init__(self, now: float) -> None:
        self.sizes: deque[int] = deque()
        self.total = 0
        self.first = 1
        self.refreshed = now


class RedisBuffer:
    """Every replica's resumable answers, in one Redis (``PROXY_REDIS_URL``)."""

    shared = True  # a reader cut off by this replica's shutdown resumes on another

    def __init__(
        self,
        client: Any,
        *,
        window: float,
        max_bytes: int,
        prefix: str = "gloo-proxy:",
        timeout: float = 1.0,
        live_ttl: float | None = None,
        replica_ttl: float = 5.0,
    ) -> None:
        self.client = client
        self.window = window
        self.max_bytes = max_bytes
        self.prefix = prefix
        self.timeout = timeout
        self.live_ttl = live_ttl if live_ttl is not None else 60.0 + window
        self.replica_ttl = replica_ttl
        self.replica = secrets.token_hex(8)
        self._channel = f"{prefix}resume:cancel"
        self._produced: dict[str, _Produced] = {}
        self._queue: list[tuple[str, str, Any]] = []
        self._lost: set[str] = set()
        self._writer: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._callbacks: list[Callable[[str], None]] = []
        self._down_until = 0.0

    def _meta(self, stream_id: str) -> str:
        return f"{self.prefix}resume:{stream_id}"

    async def _call(self, make: Callable[[], Any]) -> Any:
        return await asyncio.wait_for(make(), self.timeout)

    # -- writing (the replica that generates the answer) ------------------------------------

    async def create(self, stream_id: str, owner: str, route: str) -> bool:
        """Write the stream's hash; False (not resumable) when Redis does not answer.

        After a failure Redis is not asked again for a second: a store that black-holes
        packets would otherwise add a full timeout to every answer's start.
        """
        if time.monotonic() < self._down_until:
            return False
        self._listen()
        meta = self._meta(stream_id)
        fields = {"owner": owner, "route": route, "state": "live", "replica": self.replica}
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(meta, mapping=fields)
        pipe.pexpire(meta, int(self.live_ttl * 1000))
        try:
            await self._call(pipe.execute)
        except Exception as exc:  # any client error: the answer goes on, not resumable
            logger.warning("resume buffer unavailable, answer not resumable: %s", _short(exc))
            self._down_until = time.monotonic() + _DOWN_PAUSE
            return False
        self._produced[stream_id] = _Produced(time.monotonic())
        return True

    def append(self, stream_id: str, number: int, frame: bytes) -> None:
        """Queue one event; the oldest beyond ``max_bytes`` are trimmed with it."""
        produced = self._produced.get(stream_id)
        if produced is None:
            return  # not created here, lost, or already finished
        produced.sizes.append(len(frame))
        produced.total += len(frame)
        trim = None
        while produced.total > self.max_bytes and len(produced.sizes) > 1:
            produced.total -= produced.sizes.popleft()
            produced.first += 1
            trim = produced.first
        self._enqueue("add", stream_id, (number, frame, trim, False))

    def finish(self, stream_id: str, number: int | None, frame: bytes) -> None:
        """Queue the last event (or an empty end marker) and the window's expiry."""
        produced = self._produced.pop(stream_id, None)
        self._lost.discard(stream_id)
        if produced is None:
            return
        last = number if number is not None else produced.first + len(produced.sizes)
        self._enqueue("add", stream_id, (last, frame, None, True))
        self._enqueue("end", stream_id, None)

    def _enqueue(self, kind: str, stream_id: str, args: Any) -> None:
        self._queue.append((kind, stream_id, args))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                pipe = self.client.pipeline(transaction=False)
                for kind, stream_id, args in batch:
                    self._command(pipe, kind, stream_id, args)
                try:
                    await self._call(pipe.execute)
                except Exception as exc:  # the store failed: these answers cannot be resumed
                    self._mark_lost({stream_id for _, stream_id, _ in batch}, exc)
        finally:
            self._writer = None

    def _command(self, pipe: Any, kind: str, stream_id: str, args: Any) -> None:
        meta = self._meta(stream_id)
        events = meta + ":ev"
        if kind == "add":
            number, frame, trim, last = args
            fields = {"f": frame, "e": b"1"} if last else {"f": frame}
            minid = f"0-{trim}" if trim is not None else None
            pipe.xadd(events, fields, id=f"0-{number}", minid=minid, approximate=False)
            if number == 1 and not last:
                pipe.pexpire(events, int(self.live_ttl * 1000))
        elif kind == "end":
            pipe.eval(_SETTLE, 2, meta, events, "done", int(self.window * 1000))
        else:  # "lost"
            pipe.eval(_SETTLE, 2, meta, events, "lost", "")

    def _mark_lost(self, stream_ids: set[str], exc: Exception) -> None:
        logger.warning(
            "resume buffer write failed, %d answer(s) no longer resumable: %s",
            len(stream_ids),
            _short(exc),
        )
        for stream_id in stream_ids:
            if self._produced.pop(stream_id, None) is not None:
                self._lost.add(stream_id)

    # -- reading (any replica) --------------------------------------------------------------

    async def find(self, stream_id: str, owner: str) -> StreamInfo | None:
        """The stream if ``owner`` started it and it is live or done (within its window)."""
        meta = self._meta(stream_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(meta, "owner", "route", "state")
        pipe.xrevrange(meta + ":ev", count=1)
        try:
            (stored, route, state), newest = await self._call(pipe.execute)
        except Exception as exc:
            logger.warning("resume buffer unavailable for a resume: %s", _short(exc))
            raise BufferUnavailable(stream_id) from None
        if stored is None or state not in (b"live", b"done"):
            return None
        if not secrets.compare_digest(stored, owner.encode()):
            return None
        last = 0
        if newest:
            entry_id, fields = newest[0]
            last = int(entry_id.split(b"-", 1)[1]) - (1 if fields.get(b"f") == b"" else 0)
        return StreamInfo(route=route.decode(), finished=state == b"done", last=last)

    async def follow(
        self, stream_id: str, after: int, *, idle: float
    ) -> AsyncIterator[tuple[int, bytes]]:
        """Replay then follow with ``XREAD BLOCK``; a silent stream's producer is checked."""
        events = self._meta(stream_id) + ":ev"
        cursor = after
        block = max(1, int(idle * 1000))
        while True:
            reply = await self.client.xread({events: f"0-{cursor}"}, count=_BATCH, block=block)
            if not reply:
                await self._check_producer(stream_id)
                yield cursor, b""
                continue
            frames = []
            ended = False
            for entry_id, fields in reply[0][1]:
                number = int(entry_id.split(b"-", 1)[1])
                if number != cursor + 1:
                    raise ResumeGap(stream_id)  # trimmed before this reader got there
                cursor = number
                frames.append(fields[b"f"])
                ended = ended or b"e" in fields
            yield cursor, b"".join(frames)
            if ended:
                return

    async def _check_producer(self, stream_id: str) -> None:
        meta = self._meta(stream_id)
        state, replica = await self._call(lambda: self.client.hmget(meta, "state", "replica"))
        if state is None:
            raise StreamGone(stream_id)
        if state == b"lost":
            raise StreamLost(stream_id)
        if state in (b"live", b"cancelled") and replica is not None:
            alive = await self._call(
                lambda: self.client.exists(f"{self.prefix}resume:replica:{replica.decode()}")
            )
            if not alive:
                raise StreamLost(stream_id)

    # -- presence and cancelling ------------------------------------------------------------

    async def hold(self, stream_id: str) -> None:
        """Someone reads the stream (or just left): it is attended for the window from now."""
        key = self._meta(stream_id) + ":seen"
        with contextlib.suppress(Exception):  # presence is best effort; the window is lenient
            await self._call(lambda: self.client.set(key, b"1", px=int(self.window * 1000)))

    async def unattended(self, stream_ids: Iterable[str]) -> set[str]:
        """Streams whose readers all left a window ago (none when Redis does not answer:
        an answer is never cancelled for want of a store)."""
        ids = list(stream_ids)
        if not ids:
            return set()
        pipe = self.client.pipeline(transaction=False)
        for stream_id in ids:
            pipe.exists(self._meta(stream_id) + ":seen")
        try:
            seen = await self._call(pipe.execute)
        except Exception:
            return set()
        return {stream_id for stream_id, here in zip(ids, seen, strict=True) if not here}

    async def cancel(self, stream_id: str) -> None:
        """Mark the stream cancelled (404 from now) and tell every replica."""
        await self._call(
            lambda: self.client.eval(_CANCEL, 1, self._meta(stream_id), self._channel, stream_id)
        )

    async def cancelled(self, stream_ids: Iterable[str]) -> set[str]:
        """Streams whose state says cancelled (covers a missed pub/sub message)."""
        ids = list(stream_ids)
        if not ids:
            return set()
        pipe = self.client.pipeline(transaction=False)
        for stream_id in ids:
            pipe.hget(self._meta(stream_id), "state")
        try:
            states = await self._call(pipe.execute)
        except Exception:
            return set()
        return {i for i, state in zip(ids, states, strict=True) if state == b"cancelled"}

    def on_cancel(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(stream_id)`` for each id published on the cancel channel."""
        self._callbacks.append(callback)

    def _listen(self) -> None:
        if self._callbacks and self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._listen_loop())

    async def _listen_loop(self) -> None:
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None and message.get("type") == "message":
                        for callback in self._callbacks:
                            callback(message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect after a pause; the tick's check covers the gap
                logger.warning("resume cancel channel failed, reconnecting: %s", _short(exc))
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def keep_alive(self, stream_ids: Iterable[str]) -> None:
        """Refresh this replica's liveness key and the expiry of its live streams."""
        now = time.monotonic()
        pipe = self.client.pipeline(transaction=False)
        pipe.set(
            f"{self.prefix}resume:replica:{self.replica}", b"1", px=int(self.replica_ttl * 1000)
        )
        live_ms = int(self.live_ttl * 1000)
        for stream_id in stream_ids:
            produced = self._produced.get(stream_id)
            if produced is not None and now - produced.refreshed > self.live_ttl / 3:
                produced.refreshed = now
                meta = self._meta(stream_id)
                pipe.pexpire(meta, live_ms)
                pipe.pexpire(meta + ":ev", live_ms)
        lost, self._lost = self._lost, set()
        for stream_id in lost:
            self._command(pipe, "lost", stream_id, None)
        try:
            await self._call(pipe.execute)
        except Exception:
            self._lost |= lost  # say so next tick

    async def aclose(self) -> None:
        """Write what is queued, stop listening, close the connection pool."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._writer), self.timeout)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        with contextlib.suppress(Exception):
            await self.client.aclose()


def _short(exc: BaseException) -> str:
    # redis-py's messages name host and port, never the password; still cut them short.
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__
