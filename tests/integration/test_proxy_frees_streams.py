"""A finished stream's objects are freed when it ends, not by a later full collection.

The proxy's collector thresholds (``tune_gc``) keep full collections rare, which is only
safe if streams leave no reference cycles: otherwise every finished stream's objects (its
task, uvicorn's cycle, the upstream response) would wait in memory for one. Each test
runs streams through a real proxy with the collector saving what it finds unreachable,
then looks for the proxy's per-stream objects among it.
"""

from __future__ import annotations

import collections
import gc
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from gloo_stream.simulator import SimulatorServer
from gloo_stream.testing import ProxyServer, settings_for
from kit import wait_streams_closed

BODY = {"messages": [{"role": "user", "content": "Free me"}]}
STREAMS = 12
# Objects every relayed stream makes, on the proxy's side only (the test's own client is
# httpx, whose Response objects are its own business).
PER_STREAM = {"StreamControl", "RequestResponseCycle", "_ResponseBody", "_Connection"}


@pytest.fixture
def proxy(simulator: SimulatorServer) -> Iterator[ProxyServer]:
    settings = settings_for(
        simulator,
        proxy_rate_limit="",
        proxy_max_streams_per_client=0,
        proxy_heartbeat_interval=0.05,
        gloo_max_continuations=0,  # a cut answer ends in its error event, not continued
    )
    with ProxyServer(settings) as server:
        yield server


def cyclic_leftovers(run: Callable[[], None]) -> collections.Counter[str]:
    """The proxy's per-stream objects that only the collector could free, by type name."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        run()
        time.sleep(0.3)  # the proxy's tasks end just after the caller sees the last byte
        gc.collect()
        found = collections.Counter(type(o).__name__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    return collections.Counter({name: n for name, n in found.items() if name in PER_STREAM})


def stream_once(proxy: ProxyServer) -> bytes:
    response = httpx.post(f"{proxy.url}/api/stream", json=BODY, timeout=10)
    assert response.status_code == 200
    return response.content


def test_completed_streams_leave_no_cycles(proxy: ProxyServer) -> None:
    bodies: list[bytes] = []
    leftovers = cyclic_leftovers(lambda: bodies.extend(stream_once(proxy) for _ in range(STREAMS)))
    assert all(b'"finish_reason":"stop"' in body for body in bodies)
    assert leftovers == {}


def test_failed_streams_leave_no_cycles(proxy: ProxyServer, simulator: SimulatorServer) -> None:
    bodies: list[bytes] = []

    def run() -> None:
        for _ in range(STREAMS):
            simulator.push_fault({"kind": "disconnect", "after": 2})
            bodies.append(stream_once(proxy))

    leftovers = cyclic_leftovers(run)
    assert all(b"upstream_disconnected" in body for body in bodies)  # one error event each
    assert leftovers == {}


def test_streams_whose_caller_left_leave_no_cycles(
    proxy: ProxyServer, simulator: SimulatorServer
) -> None:
    def leave_mid_stream() -> None:
        simulator.push_fault({"kind": "stall", "after": 2, "duration": 5})
        payload = httpx.Request("POST", f"{proxy.url}/api/stream", json=BODY)
        head = f"POST /api/stream HTTP/1.1\r\nHost: {proxy.host}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in payload.headers.items() if k != "host")
        with socket.create_connection((proxy.host, proxy.port), timeout=10) as sock:
            sock.sendall(head.encode() + b"\r\n" + payload.read())
            seen = b""
            while seen.count(b'"content":"') < 2 or b": keep-alive" not in seen:
                data = sock.recv(65536)
                assert data, "the stream ended before it stalled"
                seen += data

    def run() -> None:
        for _ in range(STREAMS):
            leave_mid_stream()
        wait_streams_closed(simulator)  # every upstream stream was cancelled

    assert cyclic_leftovers(run) == {}
