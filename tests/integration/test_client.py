"""GlooClient and AsyncGlooClient against the simulator over real loopback sockets.

Every behaviour both twins share runs against both: the ``twin`` fixture builds either
client behind one blocking surface (the async one runs on its own event loop), so a test
reads the same for both and a twin that drifts fails by name (``[sync]`` / ``[async]``).
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gloo_stream import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncChatStream,
    AsyncGlooClient,
    AuthenticationError,
    BadRequestError,
    ChatCompletionChunk,
    ChatStream,
    ContentFilterError,
    GlooClient,
    GlooSettings,
    MalformedChunkError,
    MissingCredentialsError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    StreamDisconnectedError,
    StreamResult,
    StreamTimeoutError,
    TruncatedStreamError,
    UpstreamStreamError,
)
from gloo_stream.client.auth import ClientCredentialsAuth
from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer

FAST = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_max=0.05)
PROMPT = "Explain streaming in one paragraph."
MESSAGES = [{"role": "user", "content": PROMPT}]
TOKENS = expected_answer(MESSAGES)
ANSWER = "".join(TOKENS)
MODEL = "gloo-anthropic-claude-sonnet-4.5"


def settings(**values: Any) -> GlooSettings:
    return GlooSettings(_env_file=None, **values)  # type: ignore[call-arg]


def key_kwargs(sim: SimulatorServer, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("retry_policy", FAST)
    kwargs.setdefault("settings", settings())
    return {"api_url": sim.api_url, "api_key": "sim-key", **kwargs}


def oauth_kwargs(sim: SimulatorServer, **kwargs: Any) -> dict[str, Any]:
    return {
        "api_url": sim.api_url,
        "token_url": sim.token_url,
        "client_id": "sim-client",
        "client_secret": "sim-secret",
        "settings": settings(),
        "retry_policy": FAST,
        **kwargs,
    }


def closed(sim: SimulatorServer, timeout: float = 2.0) -> bool:
    return sim.wait_until(lambda stats: stats["streams_open"] == 0, timeout=timeout)


# -- both twins behind one surface --------------------------------------------------------


class Twin:
    """A client twin as a test drives it: ``complete`` and ``read`` (a streamed answer).

    ``read`` opens ``stream()`` (or ``stream_body()``) as a context manager and collects the
    text pieces in ``texts``, kept when the read raises; ``take`` stops after that many,
    ``fail_after`` makes the consumer raise ``KeyError`` after that many. ``stream`` is the
    last stream read.
    """

    client: GlooClient | AsyncGlooClient

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.stream: ChatStream | AsyncChatStream | None = None

    def complete(self, prompt: Any, **params: Any) -> StreamResult:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def read(
        self,
        prompt: Any = PROMPT,
        *,
        body: dict[str, Any] | None = None,
        take: int | None = None,
        fail_after: int | None = None,
        **params: Any,
    ) -> list[str]:
        self.texts = []
        client = self.client
        self.stream = client.stream_body(body) if body else client.stream(prompt, **params)

        def stop_at(chunk: ChatCompletionChunk) -> bool:
            if chunk.content:
                self.texts.append(chunk.content)
            if fail_after is not None and len(self.texts) >= fail_after:
                raise KeyError("consumer failed")
            return take is not None and len(self.texts) >= take

        self._consume(stop_at)
        return self.texts

    def _consume(self, stop_at: Callable[[ChatCompletionChunk], bool]) -> None:
        raise NotImplementedError


class SyncTwin(Twin):
    client: GlooClient

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.client = GlooClient(**kwargs)

    def complete(self, prompt: Any, **params: Any) -> StreamResult:
        return self.client.complete(prompt, **params)

    def close(self) -> None:
        self.client.close()

    def _consume(self, stop_at: Callable[[ChatCompletionChunk], bool]) -> None:
        stream = self.stream
        assert isinstance(stream, ChatStream)
        with stream:
            for chunk in stream:
                if stop_at(chunk):
                    break


class AsyncTwin(Twin):
    client: AsyncGlooClient

    def __init__(self, runner: asyncio.Runner, **kwargs: Any) -> None:
        super().__init__()
        self.runner = runner
        self.client = AsyncGlooClient(**kwargs)

    def complete(self, prompt: Any, **params: Any) -> StreamResult:
        return self.runner.run(self.client.complete(prompt, **params))

    def close(self) -> None:
        self.runner.run(self.client.aclose())

    def _consume(self, stop_at: Callable[[ChatCompletionChunk], bool]) -> None:
        stream = self.stream
        assert isinstance(stream, AsyncChatStream)

        async def consume() -> None:
            async with stream:
                async for chunk in stream:
                    if stop_at(chunk):
                        break

        self.runner.run(consume())


MakeTwin = Callable[..., Twin]


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest) -> Iterator[MakeTwin]:
    """Builds the twin under test from client keyword arguments; closes all it built."""
    made: list[Twin] = []
    with asyncio.Runner() as runner:

        def make(**kwargs: Any) -> Twin:
            built = SyncTwin(**kwargs) if request.param == "sync" else AsyncTwin(runner, **kwargs)
            made.append(built)
            return built

        yield make
        for built in made:
            built.close()


@pytest.fixture(autouse=True)
def sim(simulator: SimulatorServer) -> Iterator[SimulatorServer]:
    """conftest's fast simulator; after every test, no stream may be left open."""
    yield simulator
    assert closed(simulator), "a stream was left open"


# -- happy paths -----------------------------------------------------------------------


def test_complete_returns_the_exact_answer(sim: SimulatorServer, twin: MakeTwin) -> None:
    seen: list[str] = []
    result = twin(**key_kwargs(sim)).complete(PROMPT, on_token=seen.append)
    assert result.text == ANSWER
    assert "".join(seen) == ANSWER
    assert result.token_count == len(TOKENS)
    assert result.finish_reason == "stop"
    assert result.complete and result.attempts == 1
    assert result.ttft_ms is not None and result.ttft_ms <= result.duration_ms
    assert result.usage is not None and result.usage.completion_tokens == result.token_count
    assert result.model and result.provider == "Gloo AI"
    assert result.routing.get("routing_mechanism") == "auto_routing"
    request = sim.stats()["last_request"]
    assert request["stream"] is True and request["auto_routing"] is True


def test_stream_reads_the_whole_answer(sim: SimulatorServer, twin: MakeTwin) -> None:
    client = twin(**key_kwargs(sim))
    assert client.read() == TOKENS
    assert client.stream is not None and client.stream.result is not None
    assert client.stream.result.text == ANSWER
    assert client.stream.result.finish_reason == "stop"


def test_stream_hands_on_tokens_before_the_answer_ends(
    sim: SimulatorServer, twin: MakeTwin
) -> None:
    # The server sends three tokens, then holds the stream open: they must arrive anyway.
    sim.push_fault({"kind": "stall", "after": 3, "duration": 30})
    client = twin(**key_kwargs(sim))
    assert client.read(take=3) == TOKENS[:3]
    assert client.stream is not None and client.stream.result is None  # not ended yet


def test_model_and_params_reach_the_server(sim: SimulatorServer, twin: MakeTwin) -> None:
    client = twin(**key_kwargs(sim))
    result = client.complete(MESSAGES, model=MODEL, temperature=0.3, max_tokens=5)
    request = sim.stats()["last_request"]
    assert request["model"] == MODEL
    assert "auto_routing" not in request
    assert request["temperature"] == 0.3
    assert result.finish_reason == "length"
    assert result.text == "".join(expected_answer(MESSAGES, max_tokens=5))
    assert result.model == MODEL


@pytest.mark.parametrize("kind", ["done", "multiline", "crlf"])
def test_wire_variants_decode_to_the_same_text(
    sim: SimulatorServer, twin: MakeTwin, kind: str
) -> None:
    sim.push_fault({"kind": kind})
    result = twin(**key_kwargs(sim)).complete(PROMPT)
    assert result.text == ANSWER
    assert result.complete


def test_tool_calls_are_assembled(sim: SimulatorServer, twin: MakeTwin) -> None:
    sim.push_fault({"kind": "tool_calls"})
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    result = twin(**key_kwargs(sim)).complete(PROMPT, tools=tools, tool_choice="auto")
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls
    assert result.tool_calls[0].name == "get_weather"
    assert isinstance(result.tool_calls[0].parsed_arguments(), dict)


def test_stream_body_is_sent_as_given(sim: SimulatorServer, twin: MakeTwin) -> None:
    client = twin(**key_kwargs(sim, settings=settings(gloo_model=MODEL)))
    body = {"messages": MESSAGES, "stream": True, "auto_routing": True, "max_tokens": 4}
    assert client.read(body=body) == TOKENS[:4]
    assert sim.stats()["last_request"] == body  # GLOO_MODEL filled nothing in
    client.read(PROMPT)
    assert sim.stats()["last_request"]["model"] == MODEL  # where stream() does


def test_an_unknown_keyword_is_refused(twin: MakeTwin) -> None:
    with pytest.raises(TypeError, match="api_ur"):
        twin(api_ur="http://typo.test", api_key="k", settings=settings())


# -- auth ------------------------------------------------------------------------------


def test_oauth_token_is_fetched_once_and_reused(sim: SimulatorServer, twin: MakeTwin) -> None:
    client = twin(**oauth_kwargs(sim))
    for _ in range(3):
        assert client.complete(PROMPT).text == ANSWER
    assert sim.stats()["token_requests"] == 1


def test_oauth_token_refreshes_after_expiry(sim: SimulatorServer, twin: MakeTwin) -> None:
    now = [1000.0]
    auth = ClientCredentialsAuth("sim-client", "sim-secret", sim.token_url, clock=lambda: now[0])
    client = twin(**key_kwargs(sim, auth=auth))
    client.complete(PROMPT)
    now[0] += 3600  # the simulator's tokens last an hour: this one is spent
    assert client.complete(PROMPT).text == ANSWER
    assert sim.stats()["token_requests"] == 2


def test_oauth_401_refreshes_once_and_succeeds(sim: SimulatorServer, twin: MakeTwin) -> None:
    client = twin(**oauth_kwargs(sim))
    client.complete(PROMPT)
    sim.push_fault({"kind": "status", "status": 401})
    assert client.complete(PROMPT).text == ANSWER
    assert sim.stats()["token_requests"] == 2


def test_api_key_401_is_final_and_secret_free(sim: SimulatorServer, twin: MakeTwin) -> None:
    client = twin(**key_kwargs(sim, api_key="not-a-key"))
    with pytest.raises(AuthenticationError) as caught:
        client.complete(PROMPT)
    assert str(caught.value) == "Authentication failed (401): Invalid or expired token"
    assert "not-a-key" not in repr(caught.value.__dict__)
    assert sim.stats()["requests"] == 1


def test_wrong_client_secret_names_the_variables(sim: SimulatorServer, twin: MakeTwin) -> None:
    client = twin(**oauth_kwargs(sim, client_secret="wrong-secret"))
    with pytest.raises(AuthenticationError) as caught:
        client.complete(PROMPT)
    assert "GLOO_CLIENT_SECRET" in str(caught.value)
    assert "wrong-secret" not in str(caught.value)


def test_missing_credentials_name_the_variables(twin: MakeTwin) -> None:
    with pytest.raises(MissingCredentialsError, match=r"GLOO_API_KEY.*GLOO_CLIENT_ID"):
        twin(settings=settings())


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


def test_429_is_retried_after_the_requested_wait(sim: SimulatorServer, twin: MakeTwin) -> None:
    sim.push_fault({"kind": "status", "status": 429, "retry_after": "0.05"})
    waits: list[float] = []
    result = twin(**key_kwargs(sim)).complete(PROMPT, on_retry=lambda e, d: waits.append(d))
    assert result.text == ANSWER
    assert result.attempts == 2
    assert waits == [0.05]


def test_429_with_a_long_wait_raises_with_retry_after(sim: SimulatorServer, twin: MakeTwin) -> None:
    sim.push_fault({"kind": "status", "status": 429, "ratelimit_reset": "3600"})
    with pytest.raises(RateLimitError) as caught:
        twin(**key_kwargs(sim)).complete(PROMPT)
    assert caught.value.retry_after == 3600
    assert sim.stats()["requests"] == 1


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_server_errors_are_retried(sim: SimulatorServer, twin: MakeTwin, status: int) -> None:
    sim.push_fault({"kind": "status", "status": status})
    assert twin(**key_kwargs(sim)).complete(PROMPT).attempts == 2


def test_persistent_server_error_gives_up_after_the_budget(
    sim: SimulatorServer, twin: MakeTwin
) -> None:
    sim.push_fault({"kind": "status", "status": 503, "times": 5})
    with pytest.raises(ServerError, match=r"API error \(503\)"):
        twin(**key_kwargs(sim)).complete(PROMPT)
    assert sim.stats()["requests"] == 3


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_client_errors_are_not_retried(sim: SimulatorServer, twin: MakeTwin, status: int) -> None:
    sim.push_fault({"kind": "status", "status": status})
    with pytest.raises(APIStatusError) as caught:
        twin(**key_kwargs(sim)).complete(PROMPT)
    assert caught.value.status_code == status
    assert sim.stats()["requests"] == 1


def test_422_carries_the_servers_detail(sim: SimulatorServer, twin: MakeTwin) -> None:
    sim.push_fault({"kind": "status", "status": 422})
    with pytest.raises(BadRequestError) as caught:
        twin(**key_kwargs(sim)).complete(PROMPT)
    assert caught.value.detail


def test_slow_headers_time_out_as_first_byte(sim: SimulatorServer, twin: MakeTwin) -> None:
    sim.push_fault({"kind": "slow_headers", "delay": 2.0})
    client = twin(
        **key_kwargs(sim, first_byte_timeout=0.2, retry_policy=RetryPolicy(max_retries=0))
    )
    with pytest.raises(APITimeoutError):
        client.complete(PROMPT)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_is_a_connection_error(twin: MakeTwin) -> None:
    url = f"http://127.0.0.1:{unused_port()}/ai/v2/chat/completions"
    client = twin(api_url=url, api_key="k", settings=settings(), retry_policy=FAST)
    with pytest.raises(APIConnectionError, match="Could not reach"):
        client.complete(PROMPT)


def test_unreachable_token_endpoint_is_named(sim: SimulatorServer, twin: MakeTwin) -> None:
    token_url = f"http://127.0.0.1:{unused_port()}/oauth2/token"
    with pytest.raises(APIConnectionError) as caught:
        twin(**oauth_kwargs(sim, token_url=token_url)).complete(PROMPT)
    assert token_url in str(caught.value)
    assert sim.stats()["requests"] == 0


# -- failures mid-stream ------------------------------------------------------------------


def test_disconnect_mid_stream_is_continued_in_complete(
    sim: SimulatorServer, twin: MakeTwin
) -> None:
    sim.push_fault({"kind": "disconnect", "after": 3})
    retries: list[Exception] = []
    seen: list[str] = []
    result = twin(**key_kwargs(sim)).complete(
        PROMPT, on_token=seen.append, on_retry=lambda e, d: retries.append(e)
    )
    assert result.text == ANSWER and result.outcome == "continued"
    assert result.attempts == 2 and result.continuations == 1
    assert retries == []  # continued at once, not retried from the start
    assert "".join(seen) == ANSWER  # every character once


def test_disconnect_mid_stream_restarts_in_complete_without_continuations(
    sim: SimulatorServer, twin: MakeTwin
) -> None:
    sim.push_fault({"kind": "disconnect", "after": 3})
    retries: list[Exception] = []
    seen: list[str] = []
    result = twin(**key_kwargs(sim)).complete(
        PROMPT,
        on_token=seen.append,
        on_retry=lambda e, d: retries.append(e),
        max_continuations=0,
    )
    assert result.text == ANSWER
    assert result.attempts == 2 and result.continuations == 0
    assert isinstance(retries[0], StreamDisconnectedError)
    assert "".join(seen) == "".join(TOKENS[:3]) + ANSWER  # the new answer from its start


def test_disconnect_in_stream_raises_after_yielding_what_arrived(
    sim: SimulatorServer, twin: MakeTwin
) -> None:
    sim.push_fault({"kind": "disconnect", "after": 3})
    client = twin(**key_kwargs(sim, max_continuations=0))
    with pytest.raises(StreamDisconnectedError) as caught:
        client.read()
    partial = caught.value.partial
    assert partial.text == "".join(TOKENS[:3]) == "".join(client.texts)
    assert partial.interrupted
    assert client.stream is not None and client.stream.result is partial


def test_budget_spent_keeps_the_partial_answer(sim: SimulatorServer, twin: MakeTwin) -> None:
    sim.push_fault({"kind": "disconnect", "after": 2, "times": 3})
    with pytest.raises(StreamDisconnectedError) as caught:
        twin(**key_kwargs(sim, max_continuations=0)).complete(PROMPT)
    assert caught.value.partial.attempts == 3
    assert caught.value.partial.text == "".join(TOKENS[:2])
    assert sim.stats()["requests"] == 3


def test_stall_fails_fast_on_the_idle_timeout(sim: SimulatorServer, twin: MakeTwin) -> None:
    sim.push_fault({"kind": "stall", "after": 2, "duration": 30})
    client = twin(
        **key_kwargs(
            sim, max_continuations=0, read_timeout=0.3, retry_policy=RetryPolicy(max_retries=0)
        )
    )
    started = time.monotonic()
    with pytest.raises(StreamTimeoutError) as caught:
        client.complete(PROMPT)
    assert time.monotonic() - started < 10  # not the 30 s stall
    assert caught.value.partial.text == "".join(TOKENS[:2])


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
    sim: SimulatorServer, twin: MakeTwin, fault: dict[str, Any], kind: type[Exception]
) -> None:
    client = twin(**key_kwargs(sim, max_continuations=0))
    sim.push_fault(fault)
    with pytest.raises(kind) as caught:
        client.read()
    assert caught.value.partial.text == "".join(TOKENS[:4])  # type: ignore[attr-defined]
    sim.push_fault(fault)
    assert client.complete(PROMPT).attempts == 2


def test_upstream_error_object_is_kept(sim: SimulatorServer, twin: MakeTwin) -> None:
    sim.push_fault({"kind": "error", "after": 1, "code": 2001, "name": "PROVIDER_TIMEOUT"})
    with pytest.raises(UpstreamStreamError) as caught:
        twin(**key_kwargs(sim, max_continuations=0, max_retries=0, retry_policy=None)).complete(
            PROMPT
        )
    assert caught.value.code == 2001
    assert caught.value.name == "PROVIDER_TIMEOUT"


def test_content_filter_is_terminal(sim: SimulatorServer, twin: MakeTwin) -> None:
    sim.push_fault({"kind": "content_filter", "after": 2})
    with pytest.raises(ContentFilterError) as caught:
        twin(**key_kwargs(sim)).complete(PROMPT)
    assert caught.value.partial.text == "".join(TOKENS[:2])
    assert sim.stats()["requests"] == 1


def test_a_stream_is_read_once(sim: SimulatorServer, twin: MakeTwin) -> None:
    client = twin(**key_kwargs(sim))
    client.read()
    stream = client.stream
    with pytest.raises(RuntimeError, match="already read"):
        if isinstance(stream, ChatStream):
            next(iter(stream))
        else:
            assert stream is not None
            aiter(stream)


# -- every path closes the stream -----------------------------------------------------------


@pytest.fixture
def paced() -> Iterator[SimulatorServer]:
    """A simulator slow enough (20 tokens/s) that a stream is still open when a test acts."""
    with SimulatorServer(SimulatorConfig(tokens_per_second=20, first_token_delay=0)) as server:
        yield server
        assert closed(server, 1.0), "a stream was left open"


def test_break_closes_the_connection(paced: SimulatorServer, twin: MakeTwin) -> None:
    client = twin(**key_kwargs(paced))
    assert client.read(take=1) == TOKENS[:1]
    assert closed(paced, 1.0)


def test_exception_in_the_consumer_closes_the_connection(
    paced: SimulatorServer, twin: MakeTwin
) -> None:
    client = twin(**key_kwargs(paced))
    with pytest.raises(KeyError):
        client.read(fail_after=1)
    assert closed(paced, 1.0)


def test_abandoned_stream_is_closed_by_garbage_collection(paced: SimulatorServer) -> None:
    with GlooClient(**key_kwargs(paced)) as client:
        stream = client.stream(PROMPT)
        iterator = iter(stream)
        next(iterator)
        del iterator, stream
        gc.collect()
        assert closed(paced, 1.0)


def test_async_cancellation_closes_the_connection(paced: SimulatorServer) -> None:
    async def run() -> None:
        async with AsyncGlooClient(**key_kwargs(paced)) as client:
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

    asyncio.run(run())
    assert closed(paced, 1.0)


# -- the proxy's way in: a body built already, opened before it is read ------------------------


async def test_stream_body_opens_then_reads(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "status", "status": 503})
    body = {"messages": MESSAGES, "stream": True, "auto_routing": True}
    async with AsyncGlooClient(**key_kwargs(sim)) as client:
        stream = client.stream_body(body)
        await stream.open()  # the refusal was retried before a byte was read
        assert stream.attempts == 2
        texts = [chunk.content async for chunk in stream if chunk.content]
    assert texts == TOKENS
    assert stream.result is not None and stream.result.attempts == 2


async def test_stream_body_open_raises_the_refusal(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "status", "status": 400})
    body = {"messages": MESSAGES, "stream": True, "auto_routing": True}
    async with AsyncGlooClient(**key_kwargs(sim)) as client:
        stream = client.stream_body(body)
        with pytest.raises(BadRequestError):
            await stream.open()
        await stream.aclose()
    assert sim.stats()["requests"] == 1
