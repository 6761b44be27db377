"""Memory per buffered resumable answer: in this process (MemoryBuffer) and in Redis.

An answer is 82 events of Gloo's real chunk shape (a role chunk, 80 tokens, the finish
chunk), framed with ``id: N`` as the proxy keeps them. 1000 such answers are buffered and
the growth is divided by 1000: Python's heap via ``tracemalloc``, Redis' ``used_memory``
(a throwaway redis-server on a loopback port).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import tracemalloc
from typing import Any

from gloo_stream.proxy.resume import MemoryBuffer, new_stream_id
from gloo_stream.proxy.resume.redis_streams import RedisBuffer

STREAMS = 1000
TOKENS = 80
_CHUNK = (
    '{"id":"gen-abc123","choices":[{"delta":{"content":"%s","role":"assistant",'
    '"tool_calls":null},"finish_reason":null,"index":0}],"created":1774527271,'
    '"model":"google/gemini-2.5-flash","object":"chat.completion.chunk",'
    '"provider":"Gloo AI","usage":null}'
)


def answer_frames() -> list[bytes]:
    """One typical answer's events as the buffer keeps them."""
    data = [_CHUNK % ""] + [_CHUNK % f" word{i}" for i in range(TOKENS)]
    data.append(_CHUNK.replace('"finish_reason":null', '"finish_reason":"stop"') % "")
    return [b"id: %d\ndata: %s\n\n" % (n, d.encode()) for n, d in enumerate(data, 1)]


async def _fill(buffer: Any, frames: list[bytes]) -> None:
    for _ in range(STREAMS):
        stream_id = new_stream_id()
        await buffer.create(stream_id, "key:0123456789ab", "/api/stream")
        # Fresh bytes per answer, as the relay makes them (shared objects would hide the cost).
        for n, frame in enumerate(frames[:-1], 1):
            buffer.append(stream_id, n, bytes(bytearray(frame)))
        buffer.finish(stream_id, len(frames), bytes(bytearray(frames[-1])))
        if getattr(buffer, "_writer", None) is not None:
            await buffer._writer


def measure_memory(frames: list[bytes]) -> float:
    """Bytes of Python heap per buffered answer."""
    buffer = MemoryBuffer(window=300, max_bytes=256 * 1024)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    asyncio.run(_fill(buffer, frames))
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / STREAMS


def measure_redis(frames: list[bytes]) -> float | None:
    """Bytes of Redis ``used_memory`` per buffered answer (None without redis-server)."""
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        try:
            proc = subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder],
                stdout=subprocess.DEVNULL,
            )
        except OSError:
            return None
        try:
            return asyncio.run(_redis_growth(port, frames))
        finally:
            proc.terminate()
            proc.wait(5)


async def _redis_growth(port: int, frames: list[bytes]) -> float:
    from redis.asyncio import Redis

    for _ in range(100):
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        await asyncio.sleep(0.05)
    client = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    used = int((await client.info("memory"))["used_memory"])
    buffer = RedisBuffer(
        Redis.from_url(f"redis://127.0.0.1:{port}/0"), window=300, max_bytes=1 << 18
    )
    await _fill(buffer, frames)
    grown = int((await client.info("memory"))["used_memory"]) - used
    await buffer.aclose()
    await client.aclose()
    return grown / STREAMS


def run() -> dict[str, Any]:
    """Measure both buffers."""
    frames = answer_frames()
    return {
        "events": len(frames),
        "event_bytes": sum(len(f) for f in frames),
        "memory_bytes": measure_memory(frames),
        "redis_bytes": measure_redis(frames),
    }


def report(results: dict[str, Any]) -> str:
    """The Markdown section."""
    redis = results["redis_bytes"]
    shown = f"{redis / 1024:.1f} KiB" if redis is not None else "not measured (no redis-server)"
    return (
        "## Resumable answers: memory per buffered answer\n\n"
        f"One answer of {results['events']} events ({results['event_bytes'] / 1024:.1f} KiB "
        "of framed events), averaged over 1000 buffered answers.\n\n"
        "| buffer | memory per answer |\n|---|---|\n"
        f"| in memory (one process) | {results['memory_bytes'] / 1024:.1f} KiB |\n"
        f"| Redis Streams | {shown} |\n"
    )


if __name__ == "__main__":
    print(report(run()))
