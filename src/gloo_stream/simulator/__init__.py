"""An offline, deterministic, scriptable simulator of the Gloo AI completions API.

Start one in a test with ``with SimulatorServer(SimulatorConfig(...)) as sim:`` and point clients
at ``sim.api_url`` / ``sim.token_url``; script failures with ``sim.push_fault({...})`` or an
``X-Sim-Fault`` request header; check for leaks with ``sim.stats()["streams_open"]``.
"""

from gloo_stream.simulator.answers import expected_answer
from gloo_stream.simulator.app import create_app
from gloo_stream.simulator.config import SimulatorConfig
from gloo_stream.simulator.faults import Fault
from gloo_stream.simulator.server import SimulatorServer, run
from gloo_stream.simulator.state import SimulatorState
from gloo_stream.simulator.streaming import SimulatedDisconnect

__all__ = [
    "Fault",
    "SimulatedDisconnect",
    "SimulatorConfig",
    "SimulatorServer",
    "SimulatorState",
    "create_app",
    "expected_answer",
    "run",
]
