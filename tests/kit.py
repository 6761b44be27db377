"""The test kit: the few helpers every test module shares (``from kit import ...``).

Fixtures live beside it in ``tests/conftest.py``; this module holds plain functions, so a
test can call them wherever it needs to (inside a thread, a helper class, a fixture).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gloo_stream.config import GlooSettings
from gloo_stream.proxy.settings import ProxySettings
from gloo_stream.simulator import SimulatorServer
from gloo_stream.sse import ServerSentEvent, SSEDecoder
from gloo_stream.wire import decode_chunk

# Every setting is read from a variable with one of these prefixes (see config.py).
SETTINGS_PREFIXES = ("GLOO_", "PROXY_", "OTEL_")  # OTEL_*: a developer's traces stay theirs


def clean_settings(**overrides: Any) -> GlooSettings:
    """``GlooSettings`` from ``overrides``, the defaults and the environment, never a ``.env``.

    The conftest clears every GLOO_*/PROXY_* variable for the run (the live tests excepted),
    so the environment holds only what the test itself set: the developer's own settings
    cannot change a result.
    """
    return GlooSettings(_env_file=None, **overrides)  # type: ignore[call-arg]


def clean_proxy_settings(**overrides: Any) -> ProxySettings:
    """``ProxySettings`` from ``overrides`` and the defaults, never from a ``.env`` file."""
    return ProxySettings(_env_file=None, **overrides)  # type: ignore[call-arg]


def environment_without_settings() -> dict[str, str]:
    """This process's environment minus every setting: the base for a child process's own."""
    return {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}


def wait_until(
    predicate: Callable[[], object],
    what: str = "the condition",
    *,
    timeout: float = 10.0,
    interval: float = 0.01,
) -> float:
    """Poll ``predicate()`` until it is true; return the seconds it took.

    Fails the test, naming ``what``, once ``timeout`` seconds have passed. For a condition
    on a simulator's counters, ``SimulatorServer.wait_until`` (or ``wait_streams_closed``)
    reads them directly.
    """
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start


def wait_streams_closed(simulator: SimulatorServer, timeout: float = 2.0) -> None:
    """Fail unless every stream the simulator served is closed within ``timeout``.

    The server's bookkeeping runs just after its last byte went out: poll, don't race it.
    """
    closed = simulator.wait_until(lambda stats: stats["streams_open"] == 0, timeout=timeout)
    assert closed, f"streams left open: {simulator.stats()}"


def free_port() -> int:
    """A loopback port nobody listens on right now (for a child process to bind)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
needs_redis = pytest.mark.skipif(
    not os.access(REDIS_SERVER, os.X_OK),
    reason="needs Debian's redis-server (`make test` installs it)",
)


@contextlib.contextmanager
def running_redis(folder: Path) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port (nothing saved); yields its URL."""
    port = free_port()
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [REDIS_SERVER, *options, "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def accepts() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return True
            return False

        wait_until(accepts, "redis-server to listen")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


# -- SSE bodies and resumable answers (PROXY_RESUME_WINDOW) --------------------------------


def sse_events(body: bytes) -> list[ServerSentEvent]:
    """Every event in a whole SSE body."""
    decoder = SSEDecoder()
    return [*decoder.feed(body), *decoder.close()]


def sse_text(body: bytes) -> str:
    """The answer's text in an SSE body of completion chunks (``[DONE]`` and errors skipped)."""
    return "".join(
        decode_chunk(e.data).content
        for e in sse_events(body)
        if e.event == "message" and e.data != "[DONE]"
    )


def last_event_id(body: bytes) -> str:
    """The id of the last whole event in ``body`` (what a resume sends as Last-Event-ID)."""
    decoder = SSEDecoder()
    decoder.feed(body)
    return decoder.last_event_id


def start_and_leave(
    url: str, body: dict[str, Any], events: int, headers: dict[str, str] | None = None
) -> tuple[str, bytes]:
    """POST an answer, read its first ``events`` events and drop the connection.

    Returns the answer's ``X-Stream-Id`` and the whole events read (a partial one cut off).
    """
    got = b""
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", url, json=body, headers=headers or {}) as response,
    ):
        assert response.status_code == 200, response.read()
        stream_id = response.headers["x-stream-id"]
        for piece in response.iter_raw():
            got += piece
            if got.count(b"\n\n") >= events:
                break
    return stream_id, got[: got.rindex(b"\n\n") + 2]


def resume_stream(
    base: str, stream_id: str, last: str | None, headers: dict[str, str] | None = None
) -> httpx.Response:
    """``GET /api/stream/{id}`` (with ``Last-Event-ID: last`` unless None), read whole."""
    sent = dict(headers or {}) | ({"last-event-id": last} if last is not None else {})
    return httpx.get(f"{base}/api/stream/{stream_id}", headers=sent, timeout=15)


class TcpRelay:
    """A loopback TCP relay to ``target``, for cutting connections as a dropped network does.

    ``cut()`` drops every connection open now (and refuses new ones for ``refuse_for``
    seconds); ``cut_after`` drops the first connection once that many response bytes went
    through. Later connections go to ``then`` when given (another server), else ``target``.
    """

    def __init__(
        self,
        target: tuple[str, int],
        *,
        cut_after: int | None = None,
        then: tuple[str, int] | None = None,
    ) -> None:
        self.target = target
        self.then = then or target
        self.cut_after = cut_after
        self.connections = 0
        self._open: set[socket.socket] = set()
        self._refuse_until = 0.0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, refuse_for: float = 0.0) -> None:
        """Drop every open connection; refuse new ones for ``refuse_for`` seconds."""
        with self._lock:
            self._refuse_until = time.monotonic() + refuse_for
            for sock in list(self._open):
                _drop(sock)

    def close(self) -> None:
        """Stop accepting and drop what is open."""
        self._listener.close()
        self.cut()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                if time.monotonic() < self._refuse_until:
                    _drop(client)
                    continue
                self.connections += 1
                first = self.connections == 1
                upstream = socket.create_connection(self.target if first else self.then)
                with self._lock:
                    self._open |= {client, upstream}
                limit = self.cut_after if first else None
                for src, dst, cap in ((client, upstream, None), (upstream, client, limit)):
                    threading.Thread(
                        target=self._pipe, args=(src, dst, cap, (client, upstream)), daemon=True
                    ).start()

    def _pipe(
        self,
        src: socket.socket,
        dst: socket.socket,
        limit: int | None,
        pair: tuple[socket.socket, socket.socket],
    ) -> None:
        sent = 0
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    break
                dst.sendall(data)
                sent += len(data)
        with self._lock:  # one side ended, or the cut came: both go, as a dropped network does
            for sock in pair:
                self._open.discard(sock)
                _drop(sock)


def _drop(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
