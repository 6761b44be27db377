"""Resumable answers through one proxy (events kept in memory): drop, come back, stop, expire.

The simulator is paced (an answer takes about two seconds), so a test can leave mid-answer
and the upstream is still generating when it comes back.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from gloo_stream.testing import ProxyServer, settings_for
from kit import (
    last_event_id,
    resume_stream,
    sse_events,
    sse_text,
    start_and_leave,
    wait_until,
)

TOKENS = 60
MESSAGES = [{"role": "user", "content": "Tell me a long story about rivers."}]
ANSWER = "".join(expected_answer(MESSAGES, answer_tokens=TOKENS))
KEYS = "key-a,key-b"


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


@pytest.fixture
def proxy(sim: SimulatorServer) -> Iterator[ProxyServer]:
    settings = settings_for(
        sim, proxy_resume_window=30, proxy_api_keys=KEYS, proxy_metrics_allow_loopback=True
    )
    with ProxyServer(settings) as server:
        yield server


def auth(key: str = "key-a") -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def start_and_drop(base: str, n: int, route: str = "/api/stream") -> tuple[str, bytes]:
    """Start an answer, read its first ``n`` events, and leave: (stream id, bytes read)."""
    body: dict[str, Any] = {"messages": MESSAGES}
    if route.startswith("/v1"):
        body |= {"model": "auto", "stream": True}
    return start_and_leave(f"{base}{route}", body, n, auth())


def resume(base: str, stream_id: str, last: str | None, key: str = "key-a") -> httpx.Response:
    return resume_stream(base, stream_id, last, auth(key))


def test_without_a_window_nothing_changes(sim: SimulatorServer) -> None:
    with ProxyServer(settings_for(sim)) as server:
        response = httpx.post(f"{server.url}/api/stream", json={"messages": MESSAGES}, timeout=15)
        assert "x-stream-id" not in response.headers
        assert b"id:" not in response.content
        assert sse_text(response.content) == ANSWER
        assert httpx.get(f"{server.url}/api/stream/{'a' * 32}").status_code == 404


def test_every_event_carries_its_id_and_the_answer_its_stream_id(proxy: ProxyServer) -> None:
    response = httpx.post(
        f"{proxy.url}/api/stream", json={"messages": MESSAGES}, headers=auth(), timeout=15
    )
    stream_id = response.headers["x-stream-id"]
    assert len(stream_id) >= 22  # at least 128 bits, URL-safe
    ids = [e.id for e in sse_events(response.content)]
    assert ids == [str(n) for n in range(1, len(ids) + 1)]
    assert sse_text(response.content) == ANSWER


def test_a_dropped_caller_resumes_the_same_answer_without_a_second_upstream_request(
    proxy: ProxyServer, sim: SimulatorServer
) -> None:
    stream_id, first = start_and_drop(proxy.url, 5)
    seen = last_event_id(first)
    assert seen and int(seen) >= 5
    assert sim.stats()["streams_open"] == 1, "the upstream goes on without its caller"
    rest = resume(proxy.url, stream_id, seen)
    assert rest.status_code == 200
    assert rest.headers["content-type"].startswith("text/event-stream")
    assert sse_events(rest.content)[0].id == str(int(seen) + 1)
    whole = first + rest.content
    assert sse_text(whole) == ANSWER
    assert sim.stats()["requests"] == 1, "nothing was generated twice"


def test_without_last_event_id_the_whole_answer_is_replayed_as_first_framed(
    proxy: ProxyServer,
) -> None:
    original = httpx.post(
        f"{proxy.url}/api/stream", json={"messages": MESSAGES}, headers=auth(), timeout=15
    )
    again = resume(proxy.url, original.headers["x-stream-id"], None)
    assert again.status_code == 200
    assert again.content == original.content.replace(b": keep-alive\n", b"")
    past_the_end = resume(proxy.url, original.headers["x-stream-id"], "100000")
    assert past_the_end.status_code == 409  # an event never sent: said at once
    assert past_the_end.json()["error"]["code"] == "last_event_id_ahead"


def test_the_openai_route_resumes_framed_as_openai_with_its_done(proxy: ProxyServer) -> None:
    stream_id, first = start_and_drop(proxy.url, 4, route="/v1/chat/completions")
    rest = resume(proxy.url, stream_id, last_event_id(first))
    assert rest.status_code == 200
    tail = sse_events(rest.content)[-1]
    assert tail.data == "[DONE]" and tail.id
    whole = first + rest.content
    assert sse_text(whole) == ANSWER


def test_another_client_an_unknown_id_and_a_bad_last_event_id_are_refused(
    proxy: ProxyServer,
) -> None:
    stream_id, _ = start_and_drop(proxy.url, 2)
    other = resume(proxy.url, stream_id, None, key="key-b")
    unknown = resume(proxy.url, "x" * 32, None)
    assert other.status_code == unknown.status_code == 404
    assert other.json() == unknown.json(), "another client's id reveals nothing"
    assert other.json()["error"]["code"] == "stream_not_found"
    assert httpx.delete(f"{proxy.url}/api/stream/{stream_id}", headers=auth("key-b")).status_code
    assert resume(proxy.url, stream_id, "two").status_code == 400
    assert httpx.get(f"{proxy.url}/api/stream/{stream_id}").status_code == 401
    # The owner still may: another client's DELETE changed nothing.
    assert resume(proxy.url, stream_id, None).status_code == 200


def test_a_last_event_id_ahead_of_a_live_stream_is_answered_at_once(
    proxy: ProxyServer, sim: SimulatorServer
) -> None:
    stream_id, _ = start_and_drop(proxy.url, 3)
    started = time.monotonic()
    ahead = resume(proxy.url, stream_id, "500")
    took = time.monotonic() - started
    live = sim.stats()["streams_open"]
    print(f"FIGURE row11 ahead_status={ahead.status_code} answered_after_s={took:.2f}")
    assert ahead.status_code == 409
    assert ahead.json()["error"]["code"] == "last_event_id_ahead"
    assert live == 1, "answered while the answer was still being generated, not at its end"
    # The stream itself is untouched: the right id still resumes it.
    assert resume(proxy.url, stream_id, "3").status_code == 200


def test_a_single_process_shutdown_tells_a_resume_reader_server_shutdown(
    sim: SimulatorServer,
) -> None:
    settings = settings_for(sim, proxy_resume_window=30, proxy_api_keys=KEYS)
    server = ProxyServer(settings).start()
    body = b""
    reading = threading.Event()

    def read_resumed() -> None:
        nonlocal body
        with (
            httpx.Client(timeout=15) as client,
            client.stream(
                "GET",
                f"{server.url}/api/stream/{stream_id}",
                headers=auth() | {"last-event-id": "2"},
            ) as response,
        ):
            for piece in response.iter_raw():
                body += piece
                reading.set()

    try:
        stream_id, _ = start_and_drop(server.url, 2)
        reader = threading.Thread(target=read_resumed)
        reader.start()
        assert reading.wait(10), "the resumed answer never began"
    finally:
        server.stop()
    reader.join(15)
    codes = [json.loads(e.data)["error"]["code"] for e in sse_events(body) if e.event == "error"]
    print(f"FIGURE row11 single_process_shutdown_tells_reader={codes}")
    assert codes == ["server_shutdown"]


def test_delete_stops_the_upstream_at_once(proxy: ProxyServer, sim: SimulatorServer) -> None:
    stream_id, _ = start_and_drop(proxy.url, 3)
    assert sim.stats()["streams_open"] == 1
    started = time.monotonic()
    deleted = httpx.delete(f"{proxy.url}/api/stream/{stream_id}", headers=auth(), timeout=5)
    assert deleted.status_code == 204
    assert sim.wait_until(lambda s: s["streams_open"] == 0, timeout=1.0)
    assert time.monotonic() - started < 2.0
    assert resume(proxy.url, stream_id, None).status_code == 404
    metrics = httpx.get(f"{proxy.url}/metrics").text
    assert "gloo_proxy_resume_cancelled_total 1.0" in metrics


def test_a_reader_who_deletes_is_told_the_answer_was_stopped(proxy: ProxyServer) -> None:
    stream_id, _ = start_and_drop(proxy.url, 2)
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", f"{proxy.url}/api/stream/{stream_id}", headers=auth()) as reader,
    ):
        assert reader.status_code == 200
        httpx.delete(f"{proxy.url}/api/stream/{stream_id}", headers=auth(), timeout=5)
        body = reader.read()
    last = sse_events(body)[-1]
    assert last.event == "error" and "stream_cancelled" in last.data


def test_an_abandoned_answer_is_cancelled_upstream_once_the_window_passes(
    sim: SimulatorServer,
) -> None:
    settings = settings_for(sim, proxy_resume_window=0.5, proxy_metrics_allow_loopback=True)
    with ProxyServer(settings) as server:
        with (
            httpx.Client(timeout=10) as client,
            client.stream("POST", f"{server.url}/api/stream", json={"messages": MESSAGES}) as r,
        ):
            stream_id = r.headers["x-stream-id"]
            next(r.iter_raw())
        left = time.monotonic()
        assert sim.wait_until(lambda s: s["streams_open"] == 0, timeout=5)
        waited = time.monotonic() - left
        assert waited >= 0.4, "not before the window"
        assert sim.stats()["streams_closed"] == 1
        assert httpx.get(f"{server.url}/api/stream/{stream_id}").status_code == 404
        assert "gloo_proxy_resume_expired_total 1.0" in httpx.get(f"{server.url}/metrics").text


def test_a_finished_answer_stays_resumable_for_the_window(sim: SimulatorServer) -> None:
    settings = settings_for(sim, proxy_resume_window=0.6)
    with ProxyServer(settings) as server:
        done = httpx.post(f"{server.url}/api/stream", json={"messages": MESSAGES}, timeout=15)
        url = f"{server.url}/api/stream/{done.headers['x-stream-id']}"
        assert sse_text(httpx.get(url).content) == ANSWER
        wait_until(lambda: httpx.get(url).status_code == 404, "the window to pass", timeout=5)


def test_metrics_count_resumes_and_replays(proxy: ProxyServer) -> None:
    stream_id, first = start_and_drop(proxy.url, 3)
    time.sleep(0.3)  # more of the answer is buffered by now
    assert resume(proxy.url, stream_id, last_event_id(first)).status_code == 200
    resume(proxy.url, "y" * 32, None)
    metrics = httpx.get(f"{proxy.url}/metrics").text
    assert 'gloo_proxy_resumes_total{outcome="resumed"} 1.0' in metrics
    assert 'gloo_proxy_resumes_total{outcome="not_found"} 1.0' in metrics
    replayed = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("gloo_proxy_resume_replayed_events_total")
    )
    assert replayed >= 1
    assert 'gloo_proxy_upstream_answers_total{upstream="primary"} 1.0' in metrics
