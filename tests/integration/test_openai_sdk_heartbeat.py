"""The OpenAI SDK reads a resumable ``/v1`` stream through the proxy's heartbeats.

The SDK's SSE decoder keeps the last ``id:`` (as the spec says) and so, on a stream whose
events are numbered, turns a lone comment block (``: keep-alive`` then a blank line) into an
empty event, which it then fails to parse as JSON. The heartbeat must stay a comment for
every reader without ever being a block of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer
from gloo_stream.simulator.answers import expected_answer
from gloo_stream.sse import SSEDecoder
from gloo_stream.testing import ProxyServer, settings_for

MESSAGES = [{"role": "user", "content": "Explain streaming in one paragraph"}]
ANSWER = "".join(expected_answer(MESSAGES))
HEARTBEAT = 0.05  # seconds of upstream silence before the proxy sends a heartbeat


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(tokens_per_second=0, first_token_delay=0)) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(sim: SimulatorServer) -> None:
    sim.reset()


@pytest.fixture(scope="module", params=[300.0, 0.0], ids=["resumable", "plain"])
def proxy(sim: SimulatorServer, request: pytest.FixtureRequest) -> Iterator[ProxyServer]:
    settings = settings_for(
        sim,
        proxy_resume_window=request.param,
        proxy_heartbeat_interval=HEARTBEAT,
        gloo_read_timeout=5.0,
    )
    with ProxyServer(settings) as server:
        yield server


# Silence before the first token, and silence in the middle (after numbered events).
SILENCES = {
    "before_first_token": {"kind": "slow_first_token", "delay": 0.3},
    "mid_answer": {"kind": "stall", "after": 4, "duration": 0.3},
}


@pytest.mark.parametrize("silence", list(SILENCES))
def test_the_openai_sdk_reads_through_heartbeats(
    proxy: ProxyServer, sim: SimulatorServer, silence: str
) -> None:
    sim.push_fault(SILENCES[silence])
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="unused", max_retries=0)
    text = ""
    with client.chat.completions.create(model="auto", messages=MESSAGES, stream=True) as stream:  # type: ignore[arg-type]
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    assert text == ANSWER


def test_the_heartbeats_were_sent_and_are_comments(
    proxy: ProxyServer, sim: SimulatorServer
) -> None:
    """The test above is only worth something if heartbeats really went out mid-answer; and
    a spec reader (ours, like EventSource) sees only the answer's events in them."""
    sim.push_fault(SILENCES["mid_answer"])
    body = {"model": "auto", "messages": MESSAGES, "stream": True}
    raw = httpx.post(f"{proxy.url}/v1/chat/completions", json=body, timeout=10).content
    assert raw.count(b": keep-alive") >= 2
    first_data = raw.index(b"data:")
    assert raw.index(b": keep-alive") > first_data  # sent after events had begun
    events = SSEDecoder().feed(raw)
    assert all(event.data for event in events)  # no empty event anywhere
    assert events[-1].data == "[DONE]"
