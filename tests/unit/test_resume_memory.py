"""Resumable answers in memory: the buffer, the numbering send, expiry and DELETE."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gloo_stream.proxy.resume import (
    MemoryBuffer,
    ResumableStreams,
    ResumeGap,
    ResumeMetrics,
    StreamGone,
    new_stream_id,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def frame(n: int, text: str = "x") -> bytes:
    return b"id: %d\ndata: %s\n\n" % (n, text.encode())


async def collect(buffer: MemoryBuffer, stream_id: str, after: int) -> list[bytes]:
    pieces = []
    async for _, piece in buffer.follow(stream_id, after, idle=5):
        pieces.append(piece)
    return pieces


async def test_a_finished_stream_replays_everything_after_the_last_event_seen() -> None:
    buffer = MemoryBuffer(window=10, max_bytes=10_000)
    await buffer.create("s", "me", "/api/stream")
    for n in range(1, 6):
        buffer.append("s", n, frame(n))
    buffer.finish("s", None, b"")
    assert b"".join(await collect(buffer, "s", 2)) == frame(3) + frame(4) + frame(5)
    assert b"".join(await collect(buffer, "s", 0)).count(b"id: ") == 5
    assert await collect(buffer, "s", 5) == []


async def test_a_reader_follows_live_events_as_they_come_and_stops_at_the_end() -> None:
    buffer = MemoryBuffer(window=10, max_bytes=10_000)
    await buffer.create("s", "me", "/v1/chat/completions")
    buffer.append("s", 1, frame(1))
    reader = asyncio.create_task(collect(buffer, "s", 0))
    await asyncio.sleep(0.01)
    buffer.append("s", 2, frame(2))
    await asyncio.sleep(0.01)
    buffer.finish("s", 3, b"id: 3\ndata: [DONE]\n\n")
    pieces = await asyncio.wait_for(reader, 2)
    assert pieces == [frame(1), frame(2), b"id: 3\ndata: [DONE]\n\n"]


async def test_a_silent_stream_yields_idle_ticks() -> None:
    buffer = MemoryBuffer(window=10, max_bytes=10_000)
    await buffer.create("s", "me", "/api/stream")
    follow = buffer.follow("s", 0, idle=0.01)
    assert await asyncio.wait_for(anext(follow), 1) == (0, b"")
    await follow.aclose()


async def test_the_oldest_events_go_when_a_stream_outgrows_its_bytes() -> None:
    buffer = MemoryBuffer(window=10, max_bytes=105)
    await buffer.create("s", "me", "/api/stream")
    for n in range(1, 11):
        buffer.append("s", n, frame(n, "a" * 20))  # 34 bytes each (35 for the tenth)
    buffer.finish("s", None, b"")
    stream = buffer._streams["s"]
    assert stream.size <= 105
    assert stream.first == 8
    with pytest.raises(ResumeGap):
        await collect(buffer, "s", 0)
    assert b"".join(await collect(buffer, "s", 7)) == b"".join(
        frame(n, "a" * 20) for n in (8, 9, 10)
    )


async def test_only_the_owner_finds_a_stream_and_only_within_its_window() -> None:
    clock = Clock()
    buffer = MemoryBuffer(window=10, max_bytes=10_000, clock=clock)
    await buffer.create("s", "key:aaa", "/api/stream")
    assert await buffer.find("s", "key:bbb") is None
    assert await buffer.find("nope", "key:aaa") is None
    info = await buffer.find("s", "key:aaa")
    assert info is not None
    assert (info.route, info.finished, info.last) == ("/api/stream", False, 0)
    buffer.append("s", 1, frame(1))
    buffer.finish("s", None, b"")
    clock.now += 9.9
    assert await buffer.find("s", "key:aaa") is not None, "finished answers stay for the window"
    clock.now += 0.2
    assert await buffer.find("s", "key:aaa") is None
    await buffer.keep_alive([])
    assert len(buffer) == 0
    with pytest.raises(StreamGone):
        await collect(buffer, "s", 0)


async def test_presence_lasts_a_window_from_the_last_hold() -> None:
    clock = Clock()
    buffer = MemoryBuffer(window=10, max_bytes=10_000, clock=clock)
    await buffer.create("s", "me", "/api/stream")
    await buffer.hold("s")
    clock.now += 9
    assert await buffer.unattended(["s"]) == set()
    clock.now += 2
    assert await buffer.unattended(["s", "gone"]) == {"s", "gone"}


class Upstream:
    """A stand-in for the relay: records sends and cancels."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.cancels: list[str] = []

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def cancel(self, reason: str) -> None:
        self.cancels.append(reason)

    def bodies(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent)


def body(data: bytes, more: bool = True) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


async def resumable(window: float = 10, clock: Clock | None = None) -> Any:
    buffer = MemoryBuffer(window=window, max_bytes=10_000, clock=clock or Clock())
    metrics = ResumeMetrics(CollectorRegistry())
    return ResumableStreams(buffer, window=window, metrics=metrics, tick=3600), buffer, metrics


async def test_each_event_gets_its_id_and_the_caller_and_buffer_get_the_same_bytes() -> None:
    streams, buffer, _ = await resumable()
    upstream = Upstream()
    answer = await streams.keep("me", "/v1/chat/completions", upstream.send, upstream.cancel)
    assert answer is not None
    await answer({"type": "http.response.start", "status": 200, "headers": []})
    await answer(body(b"data: {}\n\n"))
    await answer(body(b": keep-alive\n\n"))
    await answer(body(b"data: {}\n\ndata: {}\n\n"))  # two events in one message
    await answer(body(b"data: [DONE]\n\n", more=False))
    assert upstream.sent[0]["type"] == "http.response.start"
    expected = b"id: 1\ndata: {}\n\n: keep-alive\n\nid: 2\ndata: {}\n\nid: 3\ndata: {}\n\n"
    assert upstream.bodies() == expected + b"id: 4\ndata: [DONE]\n\n"
    replayed = b"".join(await collect(buffer, answer.stream_id, 0))
    assert replayed == expected.replace(b": keep-alive\n\n", b"") + b"id: 4\ndata: [DONE]\n\n"
    answer.close()
    assert len(streams) == 0


async def test_a_stream_with_no_closing_event_still_ends() -> None:
    streams, buffer, _ = await resumable()
    upstream = Upstream()
    answer = await streams.keep("me", "/api/stream", upstream.send, upstream.cancel)
    assert answer is not None
    await answer(body(b"data: {}\n\n"))
    await answer(body(b"", more=False))
    assert buffer._streams[answer.stream_id].ended
    assert upstream.sent[-1] == body(b"", more=False)


async def test_after_the_caller_leaves_events_go_to_the_buffer_only() -> None:
    streams, buffer, _ = await resumable()
    upstream = Upstream()
    answer = await streams.keep("me", "/api/stream", upstream.send, upstream.cancel)
    assert answer is not None
    await answer({"type": "http.response.start", "status": 200, "headers": []})
    await answer(body(b"data: 1\n\n"))
    answer.caller_left()
    await answer(body(b"data: 2\n\n"))
    assert upstream.bodies() == b"id: 1\ndata: 1\n\n"
    assert len(upstream.sent) == 2, "the start and the first event, then nothing"
    assert await collect_some(buffer, answer.stream_id) == b"id: 1\ndata: 1\n\nid: 2\ndata: 2\n\n"
    assert upstream.cancels == []


async def collect_some(buffer: MemoryBuffer, stream_id: str) -> bytes:
    follow = buffer.follow(stream_id, 0, idle=5)
    _, piece = await anext(follow)
    await follow.aclose()
    return piece


async def test_nobody_back_within_the_window_cancels_the_upstream() -> None:
    clock = Clock()
    streams, _, metrics = await resumable(window=5, clock=clock)
    upstream = Upstream()
    answer = await streams.keep("me", "/api/stream", upstream.send, upstream.cancel)
    assert answer is not None
    await answer({"type": "http.response.start", "status": 200, "headers": []})
    await streams.run_tick()
    assert upstream.cancels == [], "a caller still there is never expired"
    answer.caller_left()
    await asyncio.sleep(0)  # the hold runs
    clock.now += 4
    await streams.run_tick()
    assert upstream.cancels == []
    clock.now += 2
    await streams.run_tick()
    assert upstream.cancels == ["abandoned"]
    assert metrics.expired._value.get() == 1
    assert await streams.find(answer.stream_id, "me") is None


async def test_a_reader_holding_the_stream_keeps_it_going() -> None:
    clock = Clock()
    streams, buffer, _ = await resumable(window=5, clock=clock)
    upstream = Upstream()
    answer = await streams.keep("me", "/api/stream", upstream.send, upstream.cancel)
    assert answer is not None
    await answer({"type": "http.response.start", "status": 200, "headers": []})
    answer.caller_left()
    for _ in range(4):
        clock.now += 3
        await buffer.hold(answer.stream_id)  # what a resumed reader does while it reads
        await streams.run_tick()
    assert upstream.cancels == []


async def test_delete_cancels_at_once_for_the_owner_only() -> None:
    streams, _, metrics = await resumable()
    upstream = Upstream()
    answer = await streams.keep("key:me", "/api/stream", upstream.send, upstream.cancel)
    assert answer is not None
    assert not await streams.stop(answer.stream_id, "key:other")
    assert not await streams.stop(new_stream_id(), "key:me")
    assert not await streams.stop("../../etc", "key:me")
    assert upstream.cancels == []
    assert await streams.stop(answer.stream_id, "key:me")
    assert upstream.cancels == ["cancel"]
    assert metrics.cancelled._value.get() == 1
    assert await streams.find(answer.stream_id, "key:me") is None


async def test_a_buffer_that_cannot_take_the_stream_means_no_resuming() -> None:
    class Refusing(MemoryBuffer):
        async def create(self, stream_id: str, owner: str, route: str) -> bool:
            return False

    streams = ResumableStreams(Refusing(window=5, max_bytes=100), window=5)
    upstream = Upstream()
    assert await streams.keep("me", "/api/stream", upstream.send, upstream.cancel) is None


async def test_a_caller_gone_before_the_answer_began_stops_it_as_without_resuming() -> None:
    streams, _, _ = await resumable()
    upstream = Upstream()
    answer = await streams.keep("me", "/api/stream", upstream.send, upstream.cancel)
    assert answer is not None
    answer.caller_left()  # it never got the X-Stream-Id: nobody can come back
    assert upstream.cancels == ["disconnect"]


def test_stream_ids_carry_at_least_128_random_bits() -> None:
    ids = {new_stream_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 for i in ids)  # 24 bytes = 192 bits, URL-safe base64
