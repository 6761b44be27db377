"""GlooClient and AsyncGlooClient resume a dropped answer from the proxy instead of asking again.

Between the client and the proxy sits a loopback TCP relay that cuts the first connection
after some bytes of the answer (a phone changing networks): the client comes back with
``Last-Event-ID`` through the relay, and the proxy, which kept generating, sends the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from gloo_stream import AsyncGlooClient, GlooClient, RetryPolicy, StreamResult
from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from gloo_stream.testing import ProxyServer, settings_for
from kit import clean_settings

TOKENS = 50
MESSAGES = [{"role": "user", "content": "Tell me about tides, at length."}]
ANSWER = "".join(expected_answer(MESSAGES, answer_tokens=TOKENS))
FAST = RetryPolicy(max_retries=2, backoff_base=0.05, backoff_max=0.2)


class CuttingRelay:
    """A TCP relay to ``target`` that cuts its first connection after ``cut_after`` bytes of
    response; later connections pass whole (to ``then``, when given: another server)."""

    def __init__(
        self, target: tuple[str, int], cut_after: int, then: tuple[str, int] | None = None
    ) -> None:
        self.target = target
        self.then = then or target
        self.cut_after = cut_after
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                self.connections += 1
                limit = self.cut_after if self.connections == 1 else None
                upstream = socket.create_connection(
                    self.target if self.connections == 1 else self.then
                )
                for args in ((client, upstream, None), (upstream, client, limit)):
                    thread = threading.Thread(target=_pipe, args=(*args, client, upstream))
                    thread.daemon = True
                    thread.start()

    def close(self) -> None:
        self._listener.close()


def _pipe(src: socket.socket, dst: socket.socket, limit: int | None, *both: socket.socket) -> None:
    sent = 0
    with contextlib.suppress(OSError):
        while data := src.recv(4096):
            if limit is not None and sent + len(data) >= limit:
                dst.sendall(data[: max(0, limit - sent)])
                break
            dst.sendall(data)
            sent += len(data)
    for sock in both:  # one side ended or the cut came: both go, as a dropped network does
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


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
def relay(proxy: ProxyServer) -> Iterator[CuttingRelay]:
    cutter = CuttingRelay(("127.0.0.1", proxy.port), cut_after=2500)
    yield cutter
    cutter.close()


def client_kwargs(relay: CuttingRelay) -> dict[str, object]:
    return {
        "api_url": f"http://127.0.0.1:{relay.port}/api/stream",
        "api_key": "key-a",
        "retry_policy": FAST,
        "settings": clean_settings(),
    }


def check(result: StreamResult, relay: CuttingRelay, sim: SimulatorServer) -> None:
    assert result.text == ANSWER
    assert result.finish_reason == "stop" and result.complete
    assert (result.resumes, result.attempts) == (1, 1), "resumed, not asked again"
    assert relay.connections == 2
    assert sim.stats()["requests"] == 1, "the answer was generated once"


def test_the_sync_client_resumes_with_identical_text(
    relay: CuttingRelay, paced: SimulatorServer
) -> None:
    seen: list[str] = []
    with GlooClient(**client_kwargs(relay)) as client:  # type: ignore[arg-type]
        result = client.complete(MESSAGES, on_token=seen.append)
    check(result, relay, paced)
    assert "".join(seen) == ANSWER, "no token handed on twice"


def test_the_async_client_resumes_a_stream_it_reads_chunk_by_chunk(
    relay: CuttingRelay, paced: SimulatorServer
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
        cutter = CuttingRelay(
            ("127.0.0.1", proxy.port), cut_after=2500, then=("127.0.0.1", other.port)
        )
        try:
            with GlooClient(**client_kwargs(cutter)) as client:  # type: ignore[arg-type]
                result = client.complete(MESSAGES)
        finally:
            cutter.close()
    assert result.text == ANSWER
    assert (result.attempts, result.resumes) == (2, 0)
    assert paced.stats()["requests"] == 2
