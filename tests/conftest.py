"""Fixtures every test shares: hermetic settings and a running Gloo simulator.

The functions tests call (``wait_until``, ``clean_settings``, ``free_port``...) are in
``tests/kit.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer
from kit import REDIS_SERVER, SETTINGS_PREFIXES, running_redis


@pytest.fixture(scope="session", autouse=True)
def developer_settings() -> Iterator[dict[str, str]]:
    """Clear every GLOO_*/PROXY_* variable for the whole run; yields what was removed.

    Session-wide, so fixtures of every scope (a module's proxy, the browser's stacks) are
    built without the developer's GLOO_MODEL, PROXY_RATE_LIMIT or credentials too.
    """
    removed = {k: v for k, v in os.environ.items() if k.startswith(SETTINGS_PREFIXES)}
    with pytest.MonkeyPatch.context() as patch:
        for name in removed:
            patch.delenv(name)
        yield removed


@pytest.fixture(autouse=True)
def _live_tests_keep_the_developer_settings(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    developer_settings: dict[str, str],
) -> None:
    # The live tests talk to the real API with the developer's own credentials.
    if request.node.get_closest_marker("live"):
        for name, value in developer_settings.items():
            monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def simulator_session() -> Iterator[SimulatorServer]:
    """One fast simulator for the whole session (no pacing, so tests do not wait on it)."""
    with SimulatorServer(SimulatorConfig(tokens_per_second=0, first_token_delay=0)) as server:
        yield server


@pytest.fixture
def simulator(simulator_session: SimulatorServer) -> Iterator[SimulatorServer]:
    """A started simulator with zeroed counters and no queued faults."""
    simulator_session.reset()
    yield simulator_session
    simulator_session.reset()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real redis-server for the session (Debian's); tests keep apart by key prefix."""
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.skip("needs Debian's redis-server (`make test` installs it)")
    with running_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url
