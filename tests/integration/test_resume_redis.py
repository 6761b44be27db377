"""``RedisBuffer`` against a real redis-server: two buffers on one Redis act as two replicas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gloo_stream.proxy.resume import (
    BufferUnavailable,
    ResumeGap,
    StreamGone,
    StreamLost,
    new_stream_id,
)
from gloo_stream.proxy.resume.redis_streams import RedisBuffer
from kit import free_port


def client(url: str) -> Redis:
    return Redis.from_url(url, socket_timeout=5, socket_connect_timeout=1)


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[tuple[RedisBuffer, RedisBuffer]]:
    prefix = f"t{new_stream_id()[:6]}:"
    a = RedisBuffer(client(redis_url), window=2, max_bytes=10_000, prefix=prefix)
    b = RedisBuffer(client(redis_url), window=2, max_bytes=10_000, prefix=prefix)
    yield a, b
    await a.aclose()
    await b.aclose()


def frame(n: int, text: str = "x") -> bytes:
    return b"id: %d\ndata: %s\n\n" % (n, text.encode())


async def drain(buffer: RedisBuffer) -> None:
    writer = buffer._writer
    if writer is not None:
        await writer


async def read_all(buffer: RedisBuffer, stream_id: str, after: int) -> bytes:
    out = b""
    async for _, piece in buffer.follow(stream_id, after, idle=1):
        out += piece
    return out


async def test_another_replica_replays_a_finished_answer_from_any_point(
    replicas: tuple[RedisBuffer, RedisBuffer],
) -> None:
    a, b = replicas
    sid = new_stream_id()
    assert await a.create(sid, "key:me", "/api/stream")
    for n in range(1, 6):
        a.append(sid, n, frame(n))
    a.finish(sid, None, b"")
    await drain(a)
    info = await b.find(sid, "key:me")
    assert info is not None
    assert (info.route, info.finished, info.last) == ("/api/stream", True, 5)
    assert await read_all(b, sid, 3) == frame(4) + frame(5)
    assert await read_all(b, sid, 0) == b"".join(frame(n) for n in range(1, 6))
    assert await read_all(b, sid, 5) == b""
    ttl = await a.client.pttl(f"{a.prefix}resume:{sid}:ev")
    assert 0 < ttl <= 2000, "a finished answer lives for the window"


async def test_a_reader_on_another_replica_follows_live_to_the_end(
    replicas: tuple[RedisBuffer, RedisBuffer],
) -> None:
    a, b = replicas
    sid = new_stream_id()
    assert await a.create(sid, "me", "/v1/chat/completions")
    a.append(sid, 1, frame(1))
    await drain(a)
    reader = asyncio.create_task(read_all(b, sid, 0))
    for n in range(2, 5):
        await asyncio.sleep(0.02)
        a.append(sid, n, frame(n))
    a.finish(sid, 5, b"id: 5\ndata: [DONE]\n\n")
    got = await asyncio.wait_for(reader, 5)
    assert got == b"".join(frame(n) for n in range(1, 5)) + b"id: 5\ndata: [DONE]\n\n"


async def test_events_beyond_the_bytes_bound_are_trimmed_and_a_late_reader_told(
    redis_url: str,
) -> None:
    buffer = RedisBuffer(client(redis_url), window=2, max_bytes=105, prefix="trim:")
    try:
        sid = new_stream_id()
        assert await buffer.create(sid, "me", "/api/stream")
        for n in range(1, 11):
            buffer.append(sid, n, frame(n, "a" * 20))
        buffer.finish(sid, None, b"")
        await drain(buffer)
        assert await buffer.client.xlen(f"trim:resume:{sid}:ev") == 4  # 8, 9, 10 and the end
        with pytest.raises(ResumeGap):
            await read_all(buffer, sid, 0)
        assert (await read_all(buffer, sid, 7)).count(b"id: ") == 3
    finally:
        await buffer.aclose()


async def test_only_the_owner_finds_it_and_a_cancel_reaches_the_producing_replica(
    replicas: tuple[RedisBuffer, RedisBuffer],
) -> None:
    a, b = replicas
    heard: list[str] = []
    told = asyncio.Event()
    a.on_cancel(lambda stream_id: (heard.append(stream_id), told.set()))
    sid = new_stream_id()
    assert await a.create(sid, "key:me", "/api/stream")
    assert await b.find(sid, "key:other") is None
    assert await b.find(new_stream_id(), "key:me") is None
    await asyncio.sleep(0.2)  # the producer's cancel listener subscribes
    await b.cancel(sid)
    await asyncio.wait_for(told.wait(), 3)
    assert heard == [sid]
    assert await b.find(sid, "key:me") is None
    assert await a.cancelled([sid, new_stream_id()]) == {sid}


async def test_cancelling_an_expired_stream_leaves_nothing_behind(
    replicas: tuple[RedisBuffer, RedisBuffer],
) -> None:
    a, _ = replicas
    sid = new_stream_id()
    await a.cancel(sid)
    assert await a.client.exists(f"{a.prefix}resume:{sid}") == 0


async def test_presence_lasts_a_window_from_the_last_hold(
    redis_url: str,
) -> None:
    buffer = RedisBuffer(client(redis_url), window=0.3, max_bytes=1000, prefix="seen:")
    try:
        sid = new_stream_id()
        assert await buffer.create(sid, "me", "/api/stream")
        assert await buffer.unattended([sid]) == {sid}
        await buffer.hold(sid)
        assert await buffer.unattended([sid]) == set()
        await asyncio.sleep(0.4)
        assert await buffer.unattended([sid]) == {sid}
    finally:
        await buffer.aclose()


async def test_a_reader_learns_when_the_producing_replica_is_gone(
    replicas: tuple[RedisBuffer, RedisBuffer],
) -> None:
    a, b = replicas
    a.replica_ttl = 0.3
    sid = new_stream_id()
    assert await a.create(sid, "me", "/api/stream")
    a.append(sid, 1, frame(1))
    await a.keep_alive([sid])
    follow = b.follow(sid, 0, idle=0.1)
    assert (await anext(follow))[1] == frame(1)
    assert await anext(follow) == (1, b""), "alive and silent: an idle tick"
    await asyncio.sleep(0.4)  # the producer stopped refreshing: it is gone
    with pytest.raises(StreamLost):
        await anext(follow)


async def test_an_expired_stream_is_gone_for_its_reader(
    replicas: tuple[RedisBuffer, RedisBuffer],
) -> None:
    _, b = replicas
    with pytest.raises(StreamGone):
        await anext(b.follow(new_stream_id(), 0, idle=0.05))


async def test_an_unreachable_redis_makes_the_answer_not_resumable_quickly() -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    buffer = RedisBuffer(dead, window=2, max_bytes=1000, timeout=0.5)
    try:
        started = time.monotonic()
        assert not await buffer.create(new_stream_id(), "me", "/api/stream")
        assert time.monotonic() - started < 2
        with pytest.raises(BufferUnavailable):  # not "no such stream": it may well exist
            await buffer.find(new_stream_id(), "me")
        assert await buffer.unattended(["x"]) == set(), "never expire an answer for want of Redis"
    finally:
        await buffer.aclose()
