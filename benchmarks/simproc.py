"""Run the simulator in its own process, so its CPU time never counts against the client's."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def simulator_process(**config: Any) -> Iterator[str]:
    """Yield the base URL of a simulator started with ``SimulatorConfig(**config)``."""
    port = free_port()
    code = (
        "import json, sys\n"
        "from gloo_stream.simulator import SimulatorConfig, run\n"
        f"run(port={port}, config=SimulatorConfig(**json.loads(sys.argv[1])))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/_sim/stats", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the simulator process did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
