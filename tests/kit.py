"""The test kit: the few helpers every test module shares (``from kit import ...``).

Fixtures live beside it in ``tests/conftest.py``; this module holds plain functions, so a
test can call them wherever it needs to (inside a thread, a helper class, a fixture).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from gloo_stream.config import GlooSettings, ProxySettings
from gloo_stream.simulator import SimulatorServer

# Every setting is read from a variable with one of these prefixes (see config.py).
SETTINGS_PREFIXES = ("GLOO_", "PROXY_")


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
