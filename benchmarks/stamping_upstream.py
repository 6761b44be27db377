"""The relay benchmark's upstream: Gloo-format SSE whose every token is a wall-clock stamp.

Each stream's tokens are written on a fixed schedule (``TPS`` per second, from the first
byte), and each token's content is ``time.time_ns()`` at the moment it was written, so the
load generator reads a chunk's latency off the chunk itself. A measuring instrument: the
collector is off and nothing but the stdlib (and uvloop, when installed) is imported.

Run: ``python -m benchmarks.stamping_upstream PORT TPS``
"""

from __future__ import annotations

import asyncio
import gc
import re
import sys
import time
from typing import Any, cast

HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"connection: close\r\n\r\n"
)
ROLE = (
    b'data: {"id":"b","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
)
TOKEN = (
    b'data: {"id":"b","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{"content":"%d"},"finish_reason":null}]}\n\n'
)
LAST = (
    b'data: {"id":"b","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{},"finish_reason":"stop"}]}\n\n'
)
MAX_TOKENS = re.compile(rb'"max_tokens":\s*(\d+)')


def body_length(head: bytes) -> int:
    """The request's Content-Length (0 when it has none)."""
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


class StampedStream(asyncio.Protocol):
    """One connection: read one request, then stream ``max_tokens`` stamped tokens."""

    def __init__(self, tps: float) -> None:
        self.tps = tps
        self.buffer = b""
        self.answering = False
        self.tokens = self.sent = 0
        self.start = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head, separator, body = self.buffer.partition(b"\r\n\r\n")
        if self.answering or not separator or len(body) < body_length(head):
            return
        self.answering = True
        match = MAX_TOKENS.search(body)
        if match is None:
            raise ValueError("the load generator always sends max_tokens")
        self.tokens = int(match.group(1))
        self.transport.write(HEAD + ROLE)
        loop = asyncio.get_running_loop()
        self.start = loop.time()
        loop.call_at(self.start + 1 / self.tps, self.tick)

    def tick(self) -> None:
        """Write the next token on schedule (the schedule, not the last write, sets the pace)."""
        if self.transport.is_closing():
            return
        self.sent += 1
        if self.sent > self.tokens:
            self.transport.write(LAST)
            self.transport.close()
            return
        self.transport.write(TOKEN % time.time_ns())
        asyncio.get_running_loop().call_at(self.start + (self.sent + 1) / self.tps, self.tick)


async def serve(port: int, tps: float) -> None:
    """Accept streams on 127.0.0.1:``port`` until killed."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: StampedStream(tps), "127.0.0.1", port, backlog=8192)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Command line: ``PORT TPS``."""
    gc.disable()  # a measuring instrument: no collector pauses in the stamps
    port, tps = int(sys.argv[1]), float(sys.argv[2])
    runner: Any = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        pass
    runner(serve(port, tps))


if __name__ == "__main__":
    main()
