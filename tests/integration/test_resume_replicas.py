"""Resumable answers across two proxy replicas sharing a real redis-server.

Each replica is its own app on its own event loop and port; they share nothing but Redis,
so a resume on the other replica reads what the first keeps generating, through Redis
Streams only. The simulator is paced: an answer takes about two seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from gloo_stream.proxy.resume import new_stream_id
from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from gloo_stream.testing import ProxyServer, settings_for
from kit import free_port, last_event_id, resume_stream, sse_events, sse_text, start_and_leave

TOKENS = 60
MESSAGES = [{"role": "user", "content": "Tell me a long story about harbours."}]
ANSWER = "".join(expected_answer(MESSAGES, answer_tokens=TOKENS))
A, B = {"authorization": "Bearer key-a"}, {"authorization": "Bearer key-b"}


@pytest.fixture(scope="module")
def paced() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(tokens_per_second=30, first_token_delay=0, answer_tokens=TOKENS)
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture
def sim(paced: SimulatorServer) -> Iterator[SimulatorServer]:
    paced.reset()
    yield paced
    assert paced.wait_until(lambda s: s["streams_open"] == 0, timeout=10), paced.stats()


def replicas(sim: SimulatorServer, redis_url: str, window: float) -> tuple[ProxyServer, ...]:
    prefix = f"t{new_stream_id()[:8]}:"  # each test its own keys in the shared Redis
    settings = settings_for(
        sim,
        proxy_resume_window=window,
        proxy_redis_url=redis_url,
        proxy_redis_prefix=prefix,
        proxy_api_keys="key-a,key-b",
        proxy_rate_limit="1000/minute",
        proxy_metrics_allow_loopback=True,
    )
    return ProxyServer(settings), ProxyServer(settings)


@pytest.fixture
def pair(sim: SimulatorServer, redis_url: str) -> Iterator[tuple[ProxyServer, ProxyServer]]:
    one, two = replicas(sim, redis_url, window=30)
    with one, two:
        yield one, two


def start(proxy: ProxyServer, events: int) -> tuple[str, bytes]:
    return start_and_leave(f"{proxy.url}/api/stream", {"messages": MESSAGES}, events, A)


def test_a_caller_resumes_on_the_other_replica_while_the_first_generates(
    pair: tuple[ProxyServer, ProxyServer], sim: SimulatorServer
) -> None:
    one, two = pair
    stream_id, first = start(one, 5)
    assert sim.stats()["streams_open"] == 1
    left = time.monotonic()
    with (
        httpx.Client(timeout=15) as client,
        client.stream(
            "GET",
            f"{two.url}/api/stream/{stream_id}",
            headers=A | {"last-event-id": last_event_id(first)},
        ) as rest,
    ):
        assert rest.status_code == 200
        pieces = rest.iter_raw()
        head = next(pieces)
        back = time.monotonic() - left
        body = head + b"".join(pieces)
    print(f"\nresume on the other replica: first bytes {back * 1000:.0f} ms after leaving")
    assert sse_text(first + body) == ANSWER
    assert sse_events(body)[0].id == str(int(last_event_id(first)) + 1)
    assert sim.stats()["requests"] == 1, "one upstream request, generated once"


def test_a_caller_resumes_on_the_same_replica_through_redis(
    pair: tuple[ProxyServer, ProxyServer],
) -> None:
    one, _ = pair
    stream_id, first = start(one, 3)
    rest = resume_stream(one.url, stream_id, last_event_id(first), A)
    assert sse_text(first + rest.content) == ANSWER


def test_a_finished_answer_replays_whole_on_either_replica(
    pair: tuple[ProxyServer, ProxyServer],
) -> None:
    one, two = pair
    whole = httpx.post(f"{one.url}/api/stream", json={"messages": MESSAGES}, headers=A, timeout=15)
    stream_id = whole.headers["x-stream-id"]
    for replica in pair:
        again = resume_stream(replica.url, stream_id, None, A)
        assert again.content == whole.content.replace(b": keep-alive\n", b"")
    assert resume_stream(two.url, stream_id, "5", B).status_code == 404


def test_another_key_gets_404_on_every_replica(pair: tuple[ProxyServer, ProxyServer]) -> None:
    one, two = pair
    stream_id, _ = start(one, 2)
    for replica in pair:
        refused = resume_stream(replica.url, stream_id, None, B)
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "stream_not_found"
        assert httpx.delete(f"{replica.url}/api/stream/{stream_id}", headers=B).status_code == 404
    assert resume_stream(two.url, stream_id, None, A).status_code == 200


def test_delete_on_the_other_replica_stops_the_upstream_within_a_second(
    pair: tuple[ProxyServer, ProxyServer], sim: SimulatorServer
) -> None:
    one, two = pair
    stream_id, _ = start(one, 3)
    started = time.monotonic()
    assert httpx.delete(f"{two.url}/api/stream/{stream_id}", headers=A).status_code == 204
    assert sim.wait_until(lambda s: s["streams_open"] == 0, timeout=1.0), sim.stats()
    print(f"\nDELETE on the other replica: upstream closed in {time.monotonic() - started:.3f} s")
    assert resume_stream(one.url, stream_id, None, A).status_code == 404


def test_an_answer_nobody_resumes_is_cancelled_once_the_window_passes(
    sim: SimulatorServer, redis_url: str
) -> None:
    one, two = replicas(sim, redis_url, window=0.6)
    with one, two:
        stream_id, _ = start(one, 2)
        left = time.monotonic()
        assert sim.wait_until(lambda s: s["streams_open"] == 0, timeout=5), sim.stats()
        assert time.monotonic() - left >= 0.5
        assert resume_stream(two.url, stream_id, None, A).status_code == 404
        metrics = httpx.get(f"{one.url}/metrics").text
        assert "gloo_proxy_resume_expired_total 1.0" in metrics


def test_a_reader_on_the_other_replica_keeps_the_answer_alive_past_the_window(
    sim: SimulatorServer, redis_url: str
) -> None:
    one, two = replicas(sim, redis_url, window=0.6)  # far shorter than the answer
    with one, two:
        stream_id, first = start(one, 2)
        rest = resume_stream(two.url, stream_id, last_event_id(first), A)
        assert sse_text(first + rest.content) == ANSWER
        assert sim.stats()["streams_closed"] == 1


def test_with_redis_down_answers_still_stream_only_not_resumable(sim: SimulatorServer) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = settings_for(sim, proxy_resume_window=30, proxy_redis_url=dead)
    with ProxyServer(settings) as proxy:
        answer = httpx.post(f"{proxy.url}/api/stream", json={"messages": MESSAGES}, timeout=15)
        assert answer.status_code == 200
        assert "x-stream-id" not in answer.headers
        assert sse_text(answer.content) == ANSWER
        asked = httpx.get(f"{proxy.url}/api/stream/{new_stream_id()}", timeout=5)
        assert asked.status_code == 503, "not a 404: the answer may exist, the store is down"
        assert asked.json()["error"]["code"] == "resume_unavailable"
