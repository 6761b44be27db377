"""Listening sockets for the servers gloo-stream runs (simulator, proxy)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

__all__ = ["ThreadedServer", "bind_tcp"]


def bind_tcp(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn, whose connections get ``TCP_NODELAY``.

    asyncio sets ``TCP_NODELAY`` on accepted connections only when the listening socket's
    protocol is ``IPPROTO_TCP``; ``socket.socket()`` (and uvicorn's own ``bind_socket``)
    leave it 0, and then Nagle's algorithm meets the peer's delayed ACK: every response
    on a kept-alive connection stalls ~40 ms (measured here: 43 ms -> 0.5 ms per request).
    Binding first is also what lets port 0 report the real port.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class ThreadedServer:
    """A uvicorn server run from a daemon thread on a pre-bound socket (tests, ``--offline``)."""

    def __init__(self, server: uvicorn.Server, sock: socket.socket, *, name: str) -> None:
        self.server = server
        self.sock = sock
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True
        )

    def start(self, timeout: float = 10.0) -> None:
        """Serve, and return once connections are accepted; raises if that does not happen."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start ({self._thread.name})")
            time.sleep(0.005)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit; past ``timeout``, force it (never hangs on open streams)."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            self.server.force_exit = True
            self._thread.join(2.0)
        self.sock.close()
