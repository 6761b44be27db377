"""GlooClient and AsyncGlooClient resume a dropped answer from the proxy instead of asking again.

Between the client and the proxy sits a loopback TCP relay (``kit.TcpRelay``) that cuts the
first connection after some bytes of the answer (a phone changing networks): the client comes
back with ``Last-Event-ID`` through the relay, and the proxy, which kept generating, sends the
rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from gloo_stream import AsyncGlooClient, GlooClient, RetryPolicy, StreamResult
from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from gloo_stream.testing import ProxyServer, settings_for
from kit import TcpRelay, clean_settings

TOKENS = 50
MESSAGES = [{"role": "user", "content": "Tell me about tides, at length."}]
ANSWER = "".join(expected_answer(MESSAGES, answer_tokens=TOKENS))
FAST = RetryPolicy(max_retries=2, backoff_base=0.05, backoff_max=0.2)


@pytest.fixture(scope="module")
def paced() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(tokens_per_second=40, first_token_delay=0, answer_tokens=TOKENS)
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture
def proxy(paced: SimulatorServer) -> Iterator[ProxyServer]:
    paced.reset()
    settings = settings_for(paced, proxy_resume_window=30, proxy_api_keys="key-a")
    with ProxyServer(settings) as server:
        yield server
    assert paced.wait_until(lambda s: s["streams_open"] == 0, timeout=10)


@pytest.fixture
def relay(proxy: ProxyServer) -> Iterator[TcpRelay]:
    cutter = TcpRelay(("127.0.0.1", proxy.port), cut_after=2500)
    yield cutter
    cutter.close()


def client_kwargs(relay: TcpRelay) -> dict[str, object]:
    return {
        "api_url": f"http://127.0.0.1:{relay.port}/api/stream",
        "api_key": "key-a",
        "retry_policy": FAST,
        "settings": clean_settings(),
    }


def check(result: StreamResult, relay: TcpRelay, sim: SimulatorServer) -> None:
    assert result.text == ANSWER
    assert result.finish_reason == "stop" and result.complete
    assert (result.resumes, result.attempts) == (1, 1), "resumed, not asked again"
    assert relay.connections == 2
    assert sim.stats()["requests"] == 1, "the answer was generated once"


def test_the_sync_client_resumes_with_identical_text(
    relay: TcpRelay, paced: SimulatorServer
) -> None:
    seen: list[str] = []
    with GlooClient(**client_kwargs(relay)) as client:  # type: ignore[arg-type]
        result = client.complete(MESSAGES, on_token=seen.append)
    check(result, relay, paced)
    assert "".join(seen) == ANSWER, "no token handed on twice"


def test_the_async_client_resumes_a_stream_it_reads_chunk_by_chunk(
    relay: TcpRelay, paced: SimulatorServer
) -> None:
    async def read() -> tuple[list[str], StreamResult | None, int]:
        async with (
            AsyncGlooClient(**client_kwargs(relay)) as client,  # type: ignore[arg-type]
            client.stream(MESSAGES) as stream,
        ):
            texts = [text async for text in stream.text_stream]
            return texts, stream.result, stream.resumes

    texts, result, resumes = asyncio.run(read())
    assert "".join(texts) == ANSWER
    assert result is not None and resumes == 1
    check(result, relay, paced)


def test_a_stream_the_proxy_does_not_have_is_asked_for_again(
    proxy: ProxyServer, paced: SimulatorServer
) -> None:
    # Without Redis, another replica does not know the answer (404): it is asked for anew.
    settings = settings_for(paced, proxy_resume_window=30, proxy_api_keys="key-a")
    with ProxyServer(settings) as other:
        cutter = TcpRelay(("127.0.0.1", proxy.port), cut_after=2500, then=("127.0.0.1", other.port))
        try:
            with GlooClient(**client_kwargs(cutter)) as client:  # type: ignore[arg-type]
                result = client.complete(MESSAGES)
        finally:
            cutter.close()
    assert result.text == ANSWER
    assert (result.attempts, result.resumes) == (2, 0)
    assert paced.stats()["requests"] == 2
