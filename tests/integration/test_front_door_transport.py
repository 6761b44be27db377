"""The proxy's front door against hostile clients, with raw sockets on loopback.

Oversized and over-numerous headers, slow and unfinished requests, idle connections, more
connections than the cap, and a request cut by SIGTERM: each is refused with a clear answer
(or closed when nothing was asked) against a real proxy. Timeouts are set short here (half a
second) so the module runs in seconds; the defaults are documented in the README.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from pydantic import SecretStr

from gloo_stream.proxy.edge.front_door_limits import HEALTH_RESERVE
from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from gloo_stream.sse import SSEDecoder
from gloo_stream.testing import ProxyServer, settings_for
from gloo_stream.wire import decode_chunk
from kit import environment_without_settings, free_port, wait_until

KEY = "front-door-key"
TIMEOUT = 0.5  # header, body and keep-alive timeouts of the proxy under test
MAX_HEADER_BYTES = 32 * 1024  # the default
MESSAGES = [{"role": "user", "content": "Tell me about front doors."}]
BODY = msgspec.json.encode({"messages": MESSAGES, "max_tokens": 40})


@pytest.fixture(scope="module")
def paced_simulator() -> Iterator[SimulatorServer]:
    """20 tokens a second: a 40-token answer streams for 2 s, four times every timeout."""
    with SimulatorServer(SimulatorConfig(tokens_per_second=20, first_token_delay=0)) as server:
        yield server


def front_door_settings(simulator: SimulatorServer, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "proxy_api_keys": SecretStr(KEY),
        "proxy_rate_limit": "",
        "proxy_header_timeout": TIMEOUT,
        "proxy_body_timeout": TIMEOUT,
        "proxy_keep_alive_timeout": TIMEOUT,
        **overrides,
    }
    return settings_for(simulator, **values)


@pytest.fixture(scope="module")
def proxy(paced_simulator: SimulatorServer) -> Iterator[ProxyServer]:
    with ProxyServer(front_door_settings(paced_simulator)) as server:
        yield server


# Raw HTTP over a socket


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset after an answer counts as closed)."""
    data = bytearray()
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return bytes(data)


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def error_code(body: bytes) -> str:
    return str(msgspec.json.decode(body)["error"]["code"])


def head(path: str = "/health", *extra: bytes, method: bytes = b"GET") -> bytes:
    lines = [method + b" " + path.encode() + b" HTTP/1.1", b"Host: 127.0.0.1", *extra]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def post_head(content_length: int) -> bytes:
    return head(
        "/api/stream",
        b"Authorization: Bearer " + KEY.encode(),
        b"Content-Type: application/json",
        b"Content-Length: " + str(content_length).encode(),
        method=b"POST",
    )


def send_ignoring_reset(sock: socket.socket, data: bytes) -> None:
    # The proxy may close before it has read all of an oversized request.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


# Header size and count


def head_of_size(size: int) -> bytes:
    prefix = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Filler: "
    return prefix + b"a" * (size - len(prefix) - 4) + b"\r\n\r\n"


@pytest.mark.parametrize(("size", "status"), [(MAX_HEADER_BYTES, 200), (MAX_HEADER_BYTES + 1, 431)])
def test_the_head_limit_is_its_size_as_sent(proxy: ProxyServer, size: int, status: int) -> None:
    request = head_of_size(size)
    assert len(request) == size
    with connect(proxy.port) as sock:
        send_ignoring_reset(sock, request)
        assert parse(read_to_close(sock))[0] == status


def test_a_one_mebibyte_header_gets_431_and_the_connection_closes(proxy: ProxyServer) -> None:
    with connect(proxy.port) as sock:
        send_ignoring_reset(sock, head("/health", b"X-Huge: " + b"a" * (1 << 20)))
        status, headers, body = parse(read_to_close(sock))
    assert status == 431
    assert headers["connection"] == "close"
    assert error_code(body) == "headers_too_large"
    assert str(MAX_HEADER_BYTES) in msgspec.json.decode(body)["error"]["message"]


def test_ten_thousand_headers_are_refused(proxy: ProxyServer) -> None:
    fields = [b"X-Field-%d: v" % n for n in range(10_000)]
    with connect(proxy.port) as sock:
        send_ignoring_reset(sock, head("/health", *fields))
        status, _, body = parse(read_to_close(sock))
    assert status == 431
    assert error_code(body) == "headers_too_large"


def test_a_hundred_headers_are_still_answered(proxy: ProxyServer) -> None:
    fields = [b"X-Field-%d: v" % n for n in range(97)]  # with Host and Connection: 99
    with connect(proxy.port) as sock:
        sock.sendall(head("/health", *fields, b"Connection: close"))
        status, _, _ = parse(read_to_close(sock))
    assert status == 200


# Deadlines


def test_a_silent_connection_is_closed_after_the_header_timeout(proxy: ProxyServer) -> None:
    with connect(proxy.port) as sock:
        started = time.monotonic()
        assert read_to_close(sock) == b""  # nothing asked, nothing answered
        assert time.monotonic() - started >= TIMEOUT * 0.9


def test_slowloris_heads_get_408_after_the_header_timeout(proxy: ProxyServer) -> None:
    async def trickle() -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        started = time.monotonic()
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        answer = b""
        with contextlib.suppress(ConnectionError):
            while not reader.at_eof() and time.monotonic() - started < 10:
                writer.write(b"a")  # one byte at a time, never the end of the head
                with contextlib.suppress(TimeoutError):
                    answer += await asyncio.wait_for(reader.read(65536), 0.05)
        writer.close()
        return answer, time.monotonic() - started

    async def many() -> list[tuple[bytes, float]]:
        return await asyncio.gather(*(trickle() for _ in range(20)))

    for answer, seconds in asyncio.run(many()):
        status, headers, body = parse(answer)
        assert (status, error_code(body)) == (408, "request_timeout")
        assert headers["connection"] == "close"
        assert TIMEOUT * 0.9 <= seconds < 10


def test_a_body_short_of_its_length_gets_408_after_the_body_timeout(proxy: ProxyServer) -> None:
    with connect(proxy.port) as sock:
        sock.sendall(post_head(len(BODY) + 100) + BODY)
        started = time.monotonic()
        status, headers, body = parse(read_to_close(sock))
        assert time.monotonic() - started >= TIMEOUT * 0.9
    assert (status, error_code(body)) == (408, "request_timeout")
    assert "body" in msgspec.json.decode(body)["error"]["message"]
    assert headers["connection"] == "close"


def test_an_idle_kept_alive_connection_is_closed(proxy: ProxyServer) -> None:
    with connect(proxy.port) as sock:
        sock.sendall(head())
        status, headers, _ = parse(sock.recv(65536))
        assert status == 200 and "connection" not in headers  # kept alive
        started = time.monotonic()
        assert read_to_close(sock) == b""
        assert time.monotonic() - started >= TIMEOUT * 0.9


def test_a_kept_alive_connection_trickling_blank_lines_is_closed(proxy: ProxyServer) -> None:
    # Blank lines before a request are allowed and start no request: the head's clock
    # must start with them anyway, or they would hold the connection forever.
    with connect(proxy.port) as sock:
        sock.sendall(head())
        assert parse(sock.recv(65536))[0] == 200
        started = time.monotonic()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while time.monotonic() - started < 10:
                sock.sendall(b"\r\n")
                sock.settimeout(0.1)
                with contextlib.suppress(TimeoutError):
                    if sock.recv(65536) == b"":
                        break
        assert time.monotonic() - started < 10


def test_a_long_stream_outlives_every_timeout_and_the_connection_is_reused(
    proxy: ProxyServer,
) -> None:
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    with httpx.Client(base_url=proxy.url, headers=headers, timeout=10) as client:
        for _ in range(2):  # the second request reuses the kept-alive connection
            started = time.monotonic()
            response = client.post("/api/stream", content=BODY)
            assert response.status_code == 200
            assert time.monotonic() - started > 3 * TIMEOUT  # longer than every deadline
            events = SSEDecoder().feed(response.content)
            text = "".join(decode_chunk(e.data).content for e in events)
            assert text == "".join(expected_answer(MESSAGES, max_tokens=40))
            assert decode_chunk(events[-1].data).finish_reason is not None


# The connection cap


def test_over_the_cap_callers_get_503_while_health_still_answers(
    paced_simulator: SimulatorServer,
) -> None:
    cap = 8
    settings = front_door_settings(
        paced_simulator,
        proxy_max_connections=cap,
        proxy_header_timeout=30.0,
        proxy_keep_alive_timeout=30.0,
    )
    with ProxyServer(settings) as server, contextlib.ExitStack() as held:
        idle = [held.enter_context(connect(server.port)) for _ in range(cap)]
        wait_until(lambda: server.open_connections == cap, "the idle connections")

        with connect(server.port) as sock:
            sock.sendall(post_head(len(BODY)) + BODY)
            status, headers, body = parse(read_to_close(sock))
        assert (status, error_code(body)) == (503, "too_many_connections")
        assert headers["connection"] == "close" and headers["retry-after"] == "1"

        with connect(server.port) as sock:
            sock.sendall(head())
            status, headers, body = parse(read_to_close(sock))
        assert status == 200 and headers["connection"] == "close"
        assert msgspec.json.decode(body)["status"] == "ok"

        # Past the reserve kept for /health, a connection is closed before it is read.
        wait_until(lambda: server.open_connections == cap, "the refused connections to close")
        reserve = [held.enter_context(connect(server.port)) for _ in range(HEALTH_RESERVE)]
        wait_until(lambda: server.open_connections == cap + HEALTH_RESERVE, "the reserve")
        with connect(server.port) as sock:
            send_ignoring_reset(sock, head())
            assert read_to_close(sock) == b""

        for sock in [*reserve, idle[0]]:
            sock.close()
        wait_until(lambda: server.open_connections == cap - 1, "connections to close")
        with connect(server.port) as sock:
            sock.sendall(post_head(len(BODY)) + BODY)
            status, _, _ = parse(sock.recv(65536))
        assert status == 200  # under the cap again: served as usual


# Shutdown


def half_sent_request(port: int) -> socket.socket:
    sock = connect(port, timeout=20)
    sock.sendall(post_head(len(BODY)) + BODY[: len(BODY) // 2])
    return sock


def test_shutdown_refuses_a_half_sent_request_before_the_streams_have_drained(
    paced_simulator: SimulatorServer,
) -> None:
    settings = front_door_settings(
        paced_simulator, proxy_shutdown_grace=10.0, proxy_body_timeout=60.0
    )
    server = ProxyServer(settings).start()
    ended: dict[str, Any] = {}
    try:
        stream = connect(server.port)
        stream.sendall(post_head(len(BODY)) + BODY)
        assert parse(stream.recv(65536))[0] == 200  # a 2 s answer is under way

        def finish_stream() -> None:
            ended["body"] = read_to_close(stream)
            ended["at"] = time.monotonic()

        reader = threading.Thread(target=finish_stream)
        reader.start()
        with half_sent_request(server.port) as half:
            time.sleep(0.3)  # the request is being read
            stopper = threading.Thread(target=server.stop)
            stopper.start()
            status, _, body = parse(read_to_close(half))
            refused_at = time.monotonic()
        assert (status, error_code(body)) == (503, "server_shutdown")
        reader.join(15)
        stopper.join(15)
        assert refused_at < ended["at"]  # refused at once, not after the drain
        # ...and the stream went on to its own end, not cut by the shutdown.
        assert b'"finish_reason":"length"' in ended["body"]
        assert b"server_shutdown" not in ended["body"]
    finally:
        server.stop()
        stream.close()


# Memory and shutdown, against `gloo-stream proxy` processes


class ProxyProcess:
    """``gloo-stream proxy`` in its own process, its output in a log file."""

    def __init__(self, tmp: Path, simulator: SimulatorServer, *args: str, **env: str) -> None:
        self.port = free_port()
        self.log = tmp / f"proxy-{self.port}.log"
        values = environment_without_settings() | {
            "GLOO_API_URL": simulator.api_url,
            "GLOO_TOKEN_URL": simulator.token_url,
            "GLOO_API_KEY": simulator.config.api_keys[0],
            "PROXY_PORT": str(self.port),
            "PROXY_API_KEYS": KEY,
            **env,
        }
        argv = [sys.executable, "-c", "from gloo_stream.cli import main; main()", "proxy", *args]
        with self.log.open("wb") as log:  # cwd: no developer's .env in the settings
            self.proc = subprocess.Popen(argv, env=values, cwd=tmp, stdout=log, stderr=log)
        wait_until(self._answers, "the proxy process to serve", timeout=30)

    def _answers(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).is_success
        return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def spawn(tmp_path: Path, paced_simulator: SimulatorServer) -> Iterator[Any]:
    started: list[ProxyProcess] = []

    def start(*args: str, **env: str) -> ProxyProcess:
        started.append(ProxyProcess(tmp_path, paced_simulator, *args, **env))
        return started[-1]

    yield start
    for process in started:
        process.stop()


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")


def send_unfinished_head(port: int, total: int, outcome: list[tuple[int, bytes]]) -> None:
    """Send an endless header field of up to ``total`` bytes; note what got through."""
    sent, chunk = 0, b"a" * 65536
    with connect(port) as sock:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
            while sent < total:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        with contextlib.suppress(OSError):
            answer = read_to_close(sock)
    outcome.append((sent, answer))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc for RSS")
def test_eight_unfinished_64_mib_heads_leave_memory_bounded(spawn: Any) -> None:
    proxy = spawn()
    pid = proxy.proc.pid
    before = memory_kib(pid, "VmRSS")
    with contextlib.suppress(OSError):  # resets VmHWM, the peak, to the RSS now
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    outcome: list[tuple[int, bytes]] = []
    threads = [
        threading.Thread(target=send_unfinished_head, args=(proxy.port, 64 << 20, outcome))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(outcome) == 8
    peak_growth_mib = (memory_kib(pid, "VmHWM") - before) / 1024
    assert peak_growth_mib < 64, f"the proxy grew {peak_growth_mib:.0f} MiB"
    for sent, answer in outcome:
        assert sent < 64 << 20  # cut off long before the end
        if answer:  # the 431 is read unless the reset overtook it
            assert parse(answer)[0] == 431
    assert httpx.get(f"http://127.0.0.1:{proxy.port}/health", timeout=5).status_code == 200


def test_sigterm_mid_body_answers_503_and_exits_promptly(spawn: Any) -> None:
    # A grace of 30 s: before, the half-sent request held shutdown for grace + 5 s and got 500.
    proxy = spawn(PROXY_SHUTDOWN_GRACE="30", PROXY_BODY_TIMEOUT="60")
    with half_sent_request(proxy.port) as sock:
        time.sleep(0.3)  # the request is being read
        proxy.proc.send_signal(signal.SIGTERM)
        status, headers, body = parse(read_to_close(sock))
    assert (status, error_code(body)) == (503, "server_shutdown")
    assert headers["connection"] == "close" and headers["retry-after"] == "1"
    assert proxy.proc.wait(15) in (0, -signal.SIGTERM)
    log = proxy.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI" not in log


def test_workers_enforce_the_same_limits(spawn: Any) -> None:
    proxy = spawn(
        "--workers",
        "2",
        PROXY_HEADER_TIMEOUT=str(TIMEOUT),
        PROXY_SHUTDOWN_GRACE="30",
        PROXY_BODY_TIMEOUT="60",
    )
    with connect(proxy.port) as sock:
        send_ignoring_reset(sock, head("/health", b"X-Huge: " + b"a" * (1 << 20)))
        assert parse(read_to_close(sock))[0] == 431
    with connect(proxy.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        assert parse(read_to_close(sock))[0] == 408
    with half_sent_request(proxy.port) as sock:
        time.sleep(0.3)
        proxy.proc.send_signal(signal.SIGTERM)
        status, _, body = parse(read_to_close(sock))
    assert (status, error_code(body)) == (503, "server_shutdown")
    assert proxy.proc.wait(15) in (0, -signal.SIGTERM)
    assert "Traceback" not in proxy.log.read_text()
