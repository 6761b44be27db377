"""A caller that reads slowly: the relay waits for its socket, and loses or reorders nothing.

The proxy writes each upstream read straight to the caller's transport from the upstream
connection's callbacks (``proxy/callback_relay.py``). When the caller's socket is full the
relay pauses the upstream's reading and its task waits for the socket to drain; these tests
make that happen with a small receive buffer and a caller that stops reading for a while.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer
from gloo_stream.testing import ProxyServer, settings_for

TOKENS = 40000  # ~12 MiB of events: more than the kernel buffers hold (tcp_wmem up to 4 MiB)
BODY = {"messages": [{"role": "user", "content": "Tell me everything"}]}


@pytest.fixture(scope="module")
def long_answers() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(tokens_per_second=0, first_token_delay=0, answer_tokens=TOKENS)
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture
def proxy(long_answers: SimulatorServer) -> Iterator[ProxyServer]:
    settings = settings_for(
        long_answers, proxy_rate_limit="", proxy_max_streams_per_client=0, proxy_max_tokens=None
    )
    with ProxyServer(settings) as server:
        yield server


def contents(sse: bytes) -> str:
    """The answer's text: every event's delta content, in order."""
    text = []
    for event in sse.split(b"\n\n"):
        for line in event.split(b"\n"):
            if line.startswith(b"data: {"):
                choices = json.loads(line[6:]).get("choices") or [{}]
                text.append(choices[0].get("delta", {}).get("content") or "")
    return "".join(text)


def read_slowly(proxy: ProxyServer, pause: float) -> bytes:
    """The whole chunked response, read through a small buffer after ``pause`` seconds
    of reading nothing at all."""
    payload = json.dumps(BODY).encode()
    head = (
        f"POST /api/stream HTTP/1.1\r\nHost: {proxy.host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(30)
        sock.connect((proxy.host, proxy.port))
        sock.sendall(head + payload)
        time.sleep(pause)  # the proxy's writes fill both socket buffers meanwhile
        received = bytearray()
        while data := sock.recv(4096):
            received += data
    head_end = received.index(b"\r\n\r\n")
    assert received[:head_end].startswith(b"HTTP/1.1 200")
    return dechunk(bytes(received[head_end + 4 :]))


def dechunk(body: bytes) -> bytes:
    """A chunked body's payload (and a check that it ends with the last chunk)."""
    out, at = bytearray(), 0
    while True:
        line_end = body.index(b"\r\n", at)
        size = int(body[at:line_end], 16)
        if size == 0:
            return bytes(out)
        out += body[line_end + 2 : line_end + 2 + size]
        at = line_end + 2 + size + 2


def test_a_slow_caller_gets_the_whole_answer_in_order(proxy: ProxyServer) -> None:
    fast = httpx.post(f"{proxy.url}/api/stream", json=BODY, timeout=30).content
    slow = read_slowly(proxy, pause=0.3)
    assert len(fast) > 8 * 1024 * 1024  # the answer is far bigger than the buffers
    assert contents(slow) == contents(fast)
    assert slow.count(b'"finish_reason":"stop"') == 1


def test_a_caller_who_reads_nothing_then_everything_ends_with_its_stream_closed(
    proxy: ProxyServer,
) -> None:
    slow = read_slowly(proxy, pause=0.1)
    assert slow.rstrip().endswith(b"}")  # the last event whole, nothing cut
    deadline = time.monotonic() + 5
    while proxy.app is not None and len(proxy.app.proxy.streams) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proxy.app is not None and len(proxy.app.proxy.streams) == 0
