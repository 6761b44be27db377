"""Shared integration fixtures: a running Gloo simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer


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
