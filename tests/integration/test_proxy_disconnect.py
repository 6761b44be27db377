"""Callers that leave: the upstream request is cancelled at once, thinking or streaming.

Also shutdown: open streams may finish within the grace period, the rest end with an error.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import httpx
import msgspec
import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer
from gloo_stream.sse import SSEDecoder
from gloo_stream.testing import ProxyServer, settings_for
from kit import wait_streams_closed, wait_until

CLIENTS = 200
REQUEST_BODY = msgspec.json.encode({"messages": [{"role": "user", "content": "Stay a while"}]})


@pytest.fixture(scope="module")
def paced() -> Iterator[SimulatorServer]:
    """A simulator slow enough that every stream is still going when its caller leaves."""
    config = SimulatorConfig(tokens_per_second=10, first_token_delay=0, answer_tokens=200)
    with SimulatorServer(config) as sim:
        yield sim


@pytest.fixture
def proxy(paced: SimulatorServer) -> Iterator[ProxyServer]:
    paced.reset()
    settings = settings_for(
        paced, proxy_rate_limit="", proxy_max_streams_per_client=0, gloo_first_byte_timeout=60
    )
    with ProxyServer(settings) as server:
        yield server
    paced.reset()


def request_bytes(port: int) -> bytes:
    head = (
        f"POST /api/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(REQUEST_BODY)}\r\n\r\n"
    )
    return head.encode() + REQUEST_BODY


async def open_streams(
    port: int, count: int
) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    async def one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request_bytes(port))
        await writer.drain()
        return reader, writer

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def read_until_content(reader: asyncio.StreamReader) -> None:
    seen = b""
    while b'"content":"' not in seen.replace(b'"content":""', b""):
        data = await asyncio.wait_for(reader.read(65536), 20)
        assert data, "the stream ended before any content"
        seen += data


def test_callers_leaving_mid_stream_cancel_their_upstream_streams(
    proxy: ProxyServer, paced: SimulatorServer
) -> None:
    async def run() -> None:
        streams = await open_streams(proxy.port, CLIENTS)
        await asyncio.gather(*(read_until_content(reader) for reader, _ in streams))
        assert paced.stats()["streams_open"] == CLIENTS
        for _, writer in streams:
            writer.transport.abort()

    asyncio.run(run())
    wait_streams_closed(paced, timeout=1.0)
    assert proxy.app is not None
    state = proxy.app.proxy
    wait_until(
        lambda: len(state.streams) == 0 and not state.slots.open,
        "the proxy to stop tracking streams",
        timeout=1.0,
    )
    metrics = httpx.get(f"{proxy.url}/metrics").text
    assert f"gloo_proxy_client_disconnects_total {float(CLIENTS)}" in metrics


def test_callers_leaving_before_the_upstream_answers_cancel_it(
    proxy: ProxyServer, paced: SimulatorServer
) -> None:
    paced.push_fault({"kind": "slow_headers", "delay": 30, "times": CLIENTS})

    async def run() -> None:
        streams = await open_streams(proxy.port, CLIENTS)
        # Polled from a thread: the streams' connections live on this loop.
        await asyncio.to_thread(
            wait_until,
            lambda: paced.stats()["streams_open"] >= CLIENTS,
            "requests to reach the upstream",
            timeout=20,
        )
        for _, writer in streams:
            writer.transport.abort()

    asyncio.run(run())
    wait_streams_closed(paced, timeout=1.0)
    assert proxy.app is not None
    slots = proxy.app.proxy.slots
    wait_until(lambda: not slots.open, "the proxy to give its slots back", timeout=1.0)


def test_a_caller_leaving_while_retries_wait_stops_them(paced: SimulatorServer) -> None:
    paced.reset()
    paced.push_fault({"kind": "status", "status": 503, "retry_after": "2", "times": 5})
    settings = settings_for(paced, gloo_max_retries=5, gloo_max_retry_wait=5)
    with ProxyServer(settings) as server:
        assert server.app is not None
        state = server.app.proxy

        async def run() -> None:
            ((_, writer),) = await open_streams(server.port, 1)
            reached = await asyncio.to_thread(paced.wait_until, lambda s: s["requests"] >= 1, 10)
            assert reached, "the request never reached the upstream"
            await asyncio.sleep(0.2)  # the 503 reaches the proxy, which begins its 2 s wait
            writer.transport.abort()

        asyncio.run(run())
        # Once the request's handler is gone, nothing is left to send a retry; it must go
        # well before the first retry is due (2 s), or the retries were not stopped.
        wait_until(
            lambda: not state.slots.open and not len(state.streams),
            "the proxy to end the request whose caller left",
            timeout=1.5,
        )
        assert paced.stats()["requests"] == 1  # no retry was sent for a caller who left
    paced.reset()


def shutdown_in_background(server: ProxyServer) -> threading.Thread:
    thread = threading.Thread(target=server.stop)
    thread.start()
    return thread


def test_shutdown_ends_open_streams_with_an_error_event_after_the_grace(
    paced: SimulatorServer,
) -> None:
    paced.reset()
    settings = settings_for(paced, proxy_shutdown_grace=0.3)
    server = ProxyServer(settings).start()
    with httpx.stream(
        "POST",
        f"{server.url}/api/stream",
        content=REQUEST_BODY,
        headers={"content-type": "application/json"},
        timeout=10,
    ) as response:
        chunks = response.iter_raw()
        first = next(chunks)
        started = time.monotonic()
        stopper = shutdown_in_background(server)
        rest = b"".join(chunks)
    stopper.join(10)
    assert not stopper.is_alive()
    assert time.monotonic() - started < 5
    last = SSEDecoder().feed(first + rest)[-1]
    assert last.event == "error"
    assert msgspec.json.decode(last.data)["error"]["code"] == "server_shutdown"
    wait_streams_closed(paced, timeout=1.0)


def test_shutdown_lets_a_stream_finish_within_the_grace() -> None:
    config = SimulatorConfig(tokens_per_second=20, first_token_delay=0, answer_tokens=10)
    with SimulatorServer(config) as sim:
        server = ProxyServer(settings_for(sim, proxy_shutdown_grace=5)).start()
        with httpx.stream(
            "POST",
            f"{server.url}/api/stream",
            content=REQUEST_BODY,
            headers={"content-type": "application/json"},
            timeout=10,
        ) as response:
            chunks = response.iter_raw()
            first = next(chunks)
            stopper = shutdown_in_background(server)
            rest = b"".join(chunks)
        stopper.join(10)
    events = SSEDecoder().feed(first + rest)
    assert all(e.event == "message" for e in events)
    assert msgspec.json.decode(events[-1].data)["choices"][0]["finish_reason"] == "stop"


def test_draining_refuses_new_requests_and_health_says_so(paced: SimulatorServer) -> None:
    with ProxyServer(settings_for(paced)) as server:
        assert server.app is not None
        server.app.proxy.streams.draining = True
        response = httpx.post(
            f"{server.url}/api/stream",
            content=REQUEST_BODY,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"]["code"] == "server_shutdown"
        health = httpx.get(f"{server.url}/health")
        assert health.status_code == 503
        assert health.json()["status"] == "draining"
