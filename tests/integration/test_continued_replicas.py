"""A continued answer across two proxy replicas sharing a real redis-server (issue 24).

The upstream cuts the answer mid-way; the first replica continues it inside the same
resumable stream. A caller who left before the seam resumes on the OTHER replica and reads,
through Redis only, the rest across the seam: the whole text equals the uninterrupted
answer, the event ids go on without a gap, and the seam is marked where it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from gloo_stream.proxy.resume import new_stream_id
from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from gloo_stream.testing import ProxyServer, settings_for
from kit import last_event_id, resume_stream, sse_events, sse_text, start_and_leave

TOKENS = 40
MESSAGES = [{"role": "user", "content": "Tell me a long story about harbours."}]
ANSWER = "".join(expected_answer(MESSAGES, answer_tokens=TOKENS))
CUT_AFTER = 20
A = {"authorization": "Bearer key-a"}


@pytest.fixture(scope="module")
def paced() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(
        tokens_per_second=30, first_token_delay=0, answer_tokens=TOKENS, continue_repeat_chars=16
    )
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture
def sim(paced: SimulatorServer) -> Iterator[SimulatorServer]:
    paced.reset()
    yield paced
    assert paced.wait_until(lambda s: s["streams_open"] == 0, timeout=10), paced.stats()


@pytest.fixture
def pair(sim: SimulatorServer, redis_url: str) -> Iterator[tuple[ProxyServer, ProxyServer]]:
    settings = settings_for(
        sim,
        proxy_resume_window=30,
        proxy_redis_url=redis_url,
        proxy_redis_prefix=f"c{new_stream_id()[:8]}:",  # this test's own keys
        proxy_api_keys="key-a",
        proxy_rate_limit="1000/minute",
        gloo_read_timeout=0.3,  # a stall is noticed quickly
        gloo_max_retries=1,
    )
    with ProxyServer(settings) as one, ProxyServer(settings) as two:
        yield one, two


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"kind": "disconnect", "after": CUT_AFTER}, "disconnected"),
        ({"kind": "stall", "after": CUT_AFTER, "duration": 5}, "timeout"),
    ],
)
def test_a_reader_resumes_on_the_other_replica_across_the_seam(
    pair: tuple[ProxyServer, ProxyServer], sim: SimulatorServer, fault: dict, reason: str
) -> None:
    one, two = pair
    sim.push_fault(fault)
    stream_id, first = start_and_leave(f"{one.url}/api/stream", {"messages": MESSAGES}, 5, A)
    assert b"gloo_continuation" not in first  # left before the seam
    rest = resume_stream(two.url, stream_id, last_event_id(first), A)
    assert rest.status_code == 200
    assert sse_text(first + rest.content) == ANSWER  # every character once, none lost
    events = [e for e in sse_events(first + rest.content) if e.id]
    ids = [int(e.id) for e in events]
    assert ids == list(range(1, len(ids) + 1))  # numbering goes on across the seam
    marked = [json.loads(e.data) for e in events if "gloo_continuation" in e.data]
    assert [m["gloo_continuation"]["reason"] for m in marked] == [reason]
    offset = marked[0]["gloo_continuation"]["offset"]
    assert offset == len("".join(expected_answer(MESSAGES, answer_tokens=TOKENS)[:CUT_AFTER]))
    assert b"error" not in rest.content.replace(b'"error":null', b"")
    assert sim.stats()["requests"] == 2  # the answer and its one continuation, no restart
