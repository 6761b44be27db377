"""GlooClient and AsyncGlooClient against the simulator over real loopback sockets."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gloo_stream import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncGlooClient,
    AuthenticationError,
    BadRequestError,
    ContentFilterError,
    GlooClient,
    GlooSettings,
    MalformedChunkError,
    MissingCredentialsError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    StreamDisconnectedError,
    StreamTimeoutError,
    TruncatedStreamError,
    UpstreamStreamError,
)
from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer

FAST = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_max=0.05)
PROMPT = "Explain streaming in one paragraph."
MESSAGES = [{"role": "user", "content": PROMPT}]
ANSWER = "".join(expected_answer(MESSAGES))


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(tokens_per_second=0, first_token_delay=0)
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(sim: SimulatorServer) -> Iterator[None]:
    sim.reset()
    yield
    wait_closed(sim)


def wait_closed(sim: SimulatorServer, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while sim.stats()["streams_open"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sim.stats()["streams_open"] == 0, "a stream was left open"


def settings() -> GlooSettings:
    return GlooSettings(_env_file=None)  # type: ignore[call-arg]


def key_client(sim: SimulatorServer, **kwargs: Any) -> GlooClient:
    kwargs.setdefault("retry_policy", FAST)
    return GlooClient(api_url=sim.api_url, api_key="sim-key", settings=settings(), **kwargs)


def oauth_kwargs(sim: SimulatorServer) -> dict[str, Any]:
    return {
        "api_url": sim.api_url,
        "token_url": sim.token_url,
        "client_id": "sim-client",
        "client_secret": "sim-secret",
        "settings": settings(),
        "retry_policy": FAST,
    }


# -- happy paths -----------------------------------------------------------------------


def test_complete_returns_the_exact_answer(sim: SimulatorServer) -> None:
    seen: list[str] = []
    with key_client(sim) as client:
        result = client.complete(PROMPT, on_token=seen.append)
    assert result.text == ANSWER
    assert "".join(seen) == ANSWER
    assert result.token_count == len(expected_answer(MESSAGES))
    assert result.finish_reason == "stop"
    assert result.complete and result.attempts == 1
    assert result.ttft_ms is not None and result.ttft_ms <= result.duration_ms
    assert result.usage is not None and result.usage.completion_tokens == result.token_count
    assert result.model and result.provider == "Gloo AI"
    assert result.routing.get("routing_mechanism") == "auto_routing"
    request = sim.stats()["last_request"]
    assert request["stream"] is True and request["auto_routing"] is True


def test_stream_yields_chunks_before_the_answer_ends() -> None:
    config = SimulatorConfig(tokens_per_second=40, first_token_delay=0)
    with SimulatorServer(config) as slow, key_client(slow) as client:
        arrivals: list[float] = []
        with client.stream(PROMPT) as stream:
            for text in stream.text_stream:
                arrivals.append(time.monotonic())
                assert text
        ended = time.monotonic()
        assert stream.result is not None and stream.result.text == ANSWER
        # Tokens were handed on as they came, not held back until the end.
        assert ended - arrivals[0] > 0.5
        assert len(arrivals) == stream.result.token_count


def test_model_and_params_reach_the_server(sim: SimulatorServer) -> None:
    with key_client(sim) as client:
        result = client.complete(
            MESSAGES, model="gloo-anthropic-claude-sonnet-4.5", temperature=0.3, max_tokens=5
        )
    request = sim.stats()["last_request"]
    assert request["model"] == "gloo-anthropic-claude-sonnet-4.5"
    assert "auto_routing" not in request
    assert request["temperature"] == 0.3
    assert result.finish_reason == "length"
    assert result.text == "".join(expected_answer(MESSAGES, max_tokens=5))
    assert result.model == "gloo-anthropic-claude-sonnet-4.5"


@pytest.mark.parametrize("kind", ["done", "multiline", "crlf"])
def test_wire_variants_decode_to_the_same_text(sim: SimulatorServer, kind: str) -> None:
    sim.push_fault({"kind": kind})
    with key_client(sim) as client:
        result = client.complete(PROMPT)
    assert result.text == ANSWER
    assert result.complete


def test_tool_calls_are_assembled(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "tool_calls"})
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    with key_client(sim) as client:
        result = client.complete(PROMPT, tools=tools, tool_choice="auto")
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls
    assert result.tool_calls[0].name == "get_weather"
    assert isinstance(result.tool_calls[0].parsed_arguments(), dict)


# -- auth ------------------------------------------------------------------------------


def test_oauth_token_is_fetched_once_and_reused(sim: SimulatorServer) -> None:
    with GlooClient(**oauth_kwargs(sim)) as client:
        for _ in range(3):
            assert client.complete(PROMPT).text == ANSWER
    assert sim.stats()["token_requests"] == 1


def test_oauth_token_refreshes_after_expiry() -> None:
    config = SimulatorConfig(tokens_per_second=0, first_token_delay=0, token_lifetime=0.3)
    with SimulatorServer(config) as short, GlooClient(**oauth_kwargs(short)) as client:
        client.complete(PROMPT)
        time.sleep(0.35)
        assert client.complete(PROMPT).text == ANSWER
        assert short.stats()["token_requests"] == 2


def test_oauth_401_refreshes_once_and_succeeds(sim: SimulatorServer) -> None:
    with GlooClient(**oauth_kwargs(sim)) as client:
        client.complete(PROMPT)
        sim.push_fault({"kind": "status", "status": 401})
        result = client.complete(PROMPT)
    assert result.text == ANSWER
    assert sim.stats()["token_requests"] == 2


def test_api_key_401_is_final_and_secret_free(sim: SimulatorServer) -> None:
    with (
        GlooClient(api_url=sim.api_url, api_key="not-a-key", settings=settings()) as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.complete(PROMPT)
    assert str(caught.value) == "Authentication failed (401): Invalid or expired token"
    assert "not-a-key" not in repr(caught.value.__dict__)
    assert sim.stats()["requests"] == 1


def test_wrong_client_secret_names_the_variables(sim: SimulatorServer) -> None:
    kwargs = oauth_kwargs(sim) | {"client_secret": "wrong-secret"}
    with GlooClient(**kwargs) as client, pytest.raises(AuthenticationError) as caught:
        client.complete(PROMPT)
    assert "GLOO_CLIENT_SECRET" in str(caught.value)
    assert "wrong-secret" not in str(caught.value)


def test_missing_credentials_name_the_variables() -> None:
    with pytest.raises(MissingCredentialsError, match=r"GLOO_API_KEY.*GLOO_CLIENT_ID"):
        GlooClient(settings=settings())


def test_thousand_async_streams_on_an_expired_token_share_one_refresh() -> None:
    config = SimulatorConfig(tokens_per_second=0, first_token_delay=0, answer_tokens=3)

    async def run(sim: SimulatorServer) -> list[str]:
        async with AsyncGlooClient(**oauth_kwargs(sim)) as client:
            results = await asyncio.gather(*(client.complete(PROMPT) for _ in range(1000)))
        return [r.text for r in results]

    with SimulatorServer(config) as server:
        texts = asyncio.run(run(server))
        assert server.stats()["token_requests"] == 1
    assert len(texts) == 1000
    assert len(set(texts)) == 1


def test_thousand_threads_on_an_expired_token_share_one_refresh() -> None:
    config = SimulatorConfig(tokens_per_second=0, first_token_delay=0, answer_tokens=3)
    with SimulatorServer(config) as server, GlooClient(**oauth_kwargs(server)) as client:
        start = threading.Barrier(1000)
        texts: list[str] = []

        def one() -> None:
            start.wait()
            texts.append(client.complete(PROMPT).text)

        threads = [threading.Thread(target=one) for _ in range(1000)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert server.stats()["token_requests"] == 1
    assert len(texts) == 1000


# -- errors before the stream ------------------------------------------------------------


def test_429_is_retried_after_the_requested_wait(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "status", "status": 429, "retry_after": "0.05"})
    with key_client(sim) as client:
        result = client.complete(PROMPT)
    assert result.text == ANSWER
    assert result.attempts == 2


def test_429_with_a_long_wait_raises_with_retry_after(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "status", "status": 429, "ratelimit_reset": "3600"})
    with key_client(sim) as client, pytest.raises(RateLimitError) as caught:
        client.complete(PROMPT)
    assert caught.value.retry_after == 3600
    assert sim.stats()["requests"] == 1


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_server_errors_are_retried(sim: SimulatorServer, status: int) -> None:
    sim.push_fault({"kind": "status", "status": status})
    with key_client(sim) as client:
        assert client.complete(PROMPT).attempts == 2


def test_persistent_server_error_gives_up_after_the_budget(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "status", "status": 503, "times": 5})
    with key_client(sim) as client, pytest.raises(ServerError, match=r"API error \(503\)"):
        client.complete(PROMPT)
    assert sim.stats()["requests"] == 3


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_client_errors_are_not_retried(sim: SimulatorServer, status: int) -> None:
    sim.push_fault({"kind": "status", "status": status})
    with key_client(sim) as client, pytest.raises(APIStatusError) as caught:
        client.complete(PROMPT)
    assert caught.value.status_code == status
    assert sim.stats()["requests"] == 1


def test_422_carries_the_servers_detail(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "status", "status": 422})
    with key_client(sim) as client, pytest.raises(BadRequestError) as caught:
        client.complete(PROMPT)
    assert caught.value.detail


def test_slow_headers_time_out_as_first_byte(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "slow_headers", "delay": 2.0})
    with (
        key_client(sim, first_byte_timeout=0.2, retry_policy=RetryPolicy(max_retries=0)) as client,
        pytest.raises(APITimeoutError),
    ):
        client.complete(PROMPT)


def test_unreachable_server_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ai/v2/chat/completions"
    with (
        GlooClient(api_url=url, api_key="k", settings=settings(), retry_policy=FAST) as client,
        pytest.raises(APIConnectionError, match="Could not reach"),
    ):
        client.complete(PROMPT)


def test_unreachable_token_endpoint_is_named(sim: SimulatorServer) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token_url = f"http://127.0.0.1:{port}/oauth2/token"
    kwargs = oauth_kwargs(sim) | {"token_url": token_url}
    with GlooClient(**kwargs) as client, pytest.raises(APIConnectionError) as caught:
        client.complete(PROMPT)
    assert token_url in str(caught.value)
    assert sim.stats()["requests"] == 0


# -- failures mid-stream ------------------------------------------------------------------


def test_disconnect_mid_stream_is_retried_in_complete(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "disconnect", "after": 3})
    retries: list[Exception] = []
    with key_client(sim) as client:
        result = client.complete(PROMPT, on_retry=lambda e, d: retries.append(e))
    assert result.text == ANSWER
    assert result.attempts == 2
    assert isinstance(retries[0], StreamDisconnectedError)


def test_disconnect_in_stream_raises_after_yielding_what_arrived(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "disconnect", "after": 3})
    got: list[str] = []
    with (
        key_client(sim) as client,
        pytest.raises(StreamDisconnectedError) as caught,
        client.stream(PROMPT) as stream,
    ):
        got.extend(stream.text_stream)
    partial = caught.value.partial
    assert partial.text == "".join(expected_answer(MESSAGES)[:3]) == "".join(got)
    assert partial.interrupted
    assert stream.result is partial


def test_budget_spent_keeps_the_partial_answer(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "disconnect", "after": 2, "times": 3})
    with key_client(sim) as client, pytest.raises(StreamDisconnectedError) as caught:
        client.complete(PROMPT)
    assert caught.value.partial.attempts == 3
    assert caught.value.partial.text == "".join(expected_answer(MESSAGES)[:2])
    assert sim.stats()["requests"] == 3


def test_stall_fails_fast_on_the_idle_timeout(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "stall", "after": 2, "duration": 30})
    started = time.monotonic()
    with (
        key_client(sim, read_timeout=0.3, retry_policy=RetryPolicy(max_retries=0)) as client,
        pytest.raises(StreamTimeoutError) as caught,
    ):
        client.complete(PROMPT)
    assert time.monotonic() - started < 10  # not the 30 s stall
    assert caught.value.partial.text == "".join(expected_answer(MESSAGES)[:2])


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ({"kind": "truncate", "after": 4}, TruncatedStreamError),
        ({"kind": "malformed", "after": 4}, MalformedChunkError),
        (
            {"kind": "error", "after": 4, "code": 2001, "name": "PROVIDER_TIMEOUT"},
            UpstreamStreamError,
        ),
    ],
)
def test_transient_stream_failures_are_typed_then_retried(
    sim: SimulatorServer, fault: dict[str, Any], kind: type[Exception]
) -> None:
    sim.push_fault(fault)
    with key_client(sim) as client, pytest.raises(kind) as caught, client.stream(PROMPT) as stream:
        list(stream)
    assert caught.value.partial.text == "".join(expected_answer(MESSAGES)[:4])  # type: ignore[attr-defined]
    sim.push_fault(fault)
    with key_client(sim) as client:
        assert client.complete(PROMPT).attempts == 2


def test_upstream_error_object_is_kept(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "error", "after": 1, "code": 2001, "name": "PROVIDER_TIMEOUT"})
    with (
        key_client(sim, max_retries=0, retry_policy=None) as client,
        pytest.raises(UpstreamStreamError) as caught,
    ):
        client.complete(PROMPT)
    assert caught.value.code == 2001
    assert caught.value.name == "PROVIDER_TIMEOUT"


def test_content_filter_is_terminal(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "content_filter", "after": 2})
    with key_client(sim) as client, pytest.raises(ContentFilterError) as caught:
        client.complete(PROMPT)
    assert caught.value.partial.text == "".join(expected_answer(MESSAGES)[:2])
    assert sim.stats()["requests"] == 1


# -- every path closes the stream -----------------------------------------------------------


def slow_sim() -> SimulatorServer:
    return SimulatorServer(SimulatorConfig(tokens_per_second=20, first_token_delay=0))


def test_break_closes_the_connection() -> None:
    with slow_sim() as server, key_client(server) as client:
        with client.stream(PROMPT) as stream:
            for _ in stream:
                assert server.stats()["streams_open"] == 1
                break
        wait_closed(server, 1.0)


def test_exception_in_the_consumer_closes_the_connection() -> None:
    with slow_sim() as server, key_client(server) as client:
        with pytest.raises(KeyError), client.stream(PROMPT) as stream:
            for _ in stream:
                raise KeyError("consumer failed")
        wait_closed(server, 1.0)


def test_abandoned_stream_is_closed_by_garbage_collection() -> None:
    with slow_sim() as server, key_client(server) as client:
        stream = client.stream(PROMPT)
        iterator = iter(stream)
        next(iterator)
        del iterator, stream
        gc.collect()
        wait_closed(server, 1.0)


def test_async_cancellation_closes_the_connection() -> None:
    async def run(server: SimulatorServer) -> None:
        async with AsyncGlooClient(
            api_url=server.api_url, api_key="sim-key", settings=settings()
        ) as client:
            started = asyncio.Event()

            async def consume() -> None:
                async with client.stream(PROMPT) as stream:
                    async for _ in stream:
                        started.set()

            task = asyncio.create_task(consume())
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    with slow_sim() as server:
        asyncio.run(run(server))
        wait_closed(server, 1.0)


# -- the async twin ---------------------------------------------------------------------------


async def test_async_client_matches_the_sync_one(sim: SimulatorServer) -> None:
    async with AsyncGlooClient(**oauth_kwargs(sim)) as client:
        result = await client.complete(PROMPT)
        texts: list[str] = []
        async with client.stream(PROMPT) as stream:
            async for chunk in stream:
                texts.append(chunk.content)
    assert result.text == ANSWER
    assert "".join(texts) == ANSWER
    assert stream.result is not None and stream.result.finish_reason == "stop"


async def test_async_mid_stream_failure_is_retried_and_typed(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "disconnect", "after": 3})
    async with AsyncGlooClient(
        api_url=sim.api_url, api_key="sim-key", settings=settings(), retry_policy=FAST
    ) as client:
        assert (await client.complete(PROMPT)).attempts == 2
        sim.push_fault({"kind": "truncate", "after": 3})
        with pytest.raises(TruncatedStreamError) as caught:
            async with client.stream(PROMPT) as stream:
                async for _ in stream:
                    pass
    assert caught.value.partial.text == "".join(expected_answer(MESSAGES)[:3])
