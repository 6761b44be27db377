"""AsyncGlooClient over the lean StreamingTransport (the proxy's upstream reader), as documented."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from gloo_stream import (
    AsyncGlooClient,
    GlooSettings,
    RetryPolicy,
    StreamDisconnectedError,
    StreamTimeoutError,
)
from gloo_stream.client.transport import StreamingTransport
from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer

PROMPT = "Explain streaming in one paragraph."
ANSWER = expected_answer([{"role": "user", "content": PROMPT}])


@pytest.fixture
def sim(simulator: SimulatorServer) -> SimulatorServer:
    """conftest's fast simulator, reset for each test."""
    return simulator


def client(sim: SimulatorServer, http: httpx.AsyncClient, **kwargs: object) -> AsyncGlooClient:
    return AsyncGlooClient(
        api_url=sim.api_url,
        api_key="sim-key",
        settings=GlooSettings(_env_file=None),  # type: ignore[call-arg]
        http_client=http,
        **kwargs,  # type: ignore[arg-type]
    )


def lean() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=StreamingTransport())


async def test_answers_and_reuses_the_connection(sim: SimulatorServer) -> None:
    async with lean() as http:
        gloo = client(sim, http)
        results = [await gloo.complete(PROMPT) for _ in range(3)]
    assert [r.text for r in results] == ["".join(ANSWER)] * 3
    assert all(r.token_count == len(ANSWER) for r in results)


async def test_mid_stream_failures_are_typed_and_retried(sim: SimulatorServer) -> None:
    async with lean() as http:
        gloo = client(
            sim,
            http,
            retry_policy=RetryPolicy(max_retries=1, backoff_base=0.01),
            max_continuations=0,
        )
        sim.push_fault({"kind": "disconnect", "after": 3})
        assert (await gloo.complete(PROMPT)).attempts == 2
        sim.push_fault({"kind": "disconnect", "after": 3, "times": 2})
        with pytest.raises(StreamDisconnectedError) as caught:
            await gloo.complete(PROMPT)
    assert caught.value.partial.text == "".join(ANSWER[:3])


async def test_idle_timeout_applies_once_the_stream_started(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "stall", "after": 2, "duration": 30})
    started = time.monotonic()
    async with lean() as http:
        gloo = client(
            sim,
            http,
            read_timeout=0.3,
            retry_policy=RetryPolicy(max_retries=0),
            max_continuations=0,
        )
        with pytest.raises(StreamTimeoutError):
            await gloo.complete(PROMPT)
    assert time.monotonic() - started < 10


async def test_cancellation_closes_the_upstream_stream() -> None:
    config = SimulatorConfig(tokens_per_second=20, first_token_delay=0)
    with SimulatorServer(config) as slow:
        http = lean()
        gloo = client(slow, http)
        started = asyncio.Event()

        async def consume() -> None:
            async with gloo.stream(PROMPT) as stream:
                async for _ in stream:
                    started.set()

        task = asyncio.create_task(consume())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        closed = await asyncio.to_thread(
            slow.wait_until, lambda stats: stats["streams_open"] == 0, 1.0
        )
        await http.aclose()
        assert closed


async def test_idle_limit_counts_from_the_last_read_however_long_tokens_flowed() -> None:
    # One idle timer per connection is re-armed from the last read: tokens every 50 ms for
    # longer than the limit must not time out, and a stall after them must, about on time.
    config = SimulatorConfig(tokens_per_second=20, first_token_delay=0)
    with SimulatorServer(config) as paced:
        paced.push_fault({"kind": "stall", "after": 12, "duration": 30})
        async with lean() as http:
            gloo = client(
                paced,
                http,
                read_timeout=0.3,
                retry_policy=RetryPolicy(max_retries=0),
                max_continuations=0,
            )
            started = time.monotonic()
            with pytest.raises(StreamTimeoutError) as caught:
                await gloo.complete(PROMPT)
            elapsed = time.monotonic() - started
    assert caught.value.partial.text == "".join(ANSWER[:12])  # ~0.6 s of tokens, no timeout
    assert elapsed < 0.6 + 0.3 + 1.5
