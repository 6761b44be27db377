"""The tool loop and structured output end to end, both twins, against the simulator."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from gloo_stream import (
    AsyncGlooClient,
    ChatStream,
    GlooClient,
    RetryPolicy,
    StreamError,
    TruncatedStreamError,
)
from gloo_stream.accumulate import OutputParseError
from gloo_stream.client.tool_loop import AsyncToolLoopStream, ToolLoopStream
from gloo_stream.events import CallComplete, CallDelta, TextDelta, ToolRan
from gloo_stream.simulator import SimulatorServer
from gloo_stream.tools import ToolRoundsExceededError
from kit import clean_settings, wait_streams_closed

FAST = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_max=0.05)
WEATHER = "What is the weather in Paris?"
RAN: list[dict[str, Any]] = []


def get_weather(city: str) -> str:
    """The weather in a city right now."""
    RAN.append({"city": city})
    return f"sunny in {city}, 21 °C"


def broken_weather(city: str) -> str:
    """The weather, from a station that is down."""
    raise ConnectionError(f"station for {city} is down")


class Verse(BaseModel):
    book: str
    chapter: int


@pytest.fixture(autouse=True)
def sim(simulator: SimulatorServer) -> Iterator[SimulatorServer]:
    RAN.clear()
    yield simulator
    wait_streams_closed(simulator)


def client(sim: SimulatorServer) -> GlooClient:
    return GlooClient(
        api_url=sim.api_url, api_key="sim-key", retry_policy=FAST, settings=clean_settings()
    )


def aclient(sim: SimulatorServer) -> AsyncGlooClient:
    return AsyncGlooClient(
        api_url=sim.api_url, api_key="sim-key", retry_policy=FAST, settings=clean_settings()
    )


def test_sync_loop_streams_the_call_runs_it_and_the_answer_goes_on(sim: SimulatorServer) -> None:
    with client(sim) as c, c.stream(WEATHER, tools=[get_weather]) as stream:
        assert isinstance(stream, ToolLoopStream)
        events = list(stream.events)
    deltas = [e for e in events if isinstance(e, CallDelta)]
    assert len(deltas) > 2  # the arguments arrived in pieces, each shown as it came
    assert {d.name for d in deltas} == {"get_weather"}
    assert "".join(d.arguments_delta for d in deltas) == '{"city":"Paris"}'
    kinds = [type(e).__name__ for e in events]
    # Call pieces, then the whole call, then the result, then the answer's text.
    assert kinds.index("CallComplete") > kinds.index("CallDelta")
    assert kinds.index("ToolRan") > kinds.index("CallComplete")
    assert kinds.index("TextDelta") > kinds.index("ToolRan")
    [ran] = [e for e in events if isinstance(e, ToolRan)]
    assert ran.result.content == "sunny in Paris, 21 °C"
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Thanks for waiting: get_weather said sunny in Paris, 21 °C."
    result = stream.result
    assert result is not None
    assert result.text == text
    assert result.finish_reason == "stop"
    assert [(r.name, r.arguments, r.result, r.error) for r in result.tool_results] == [
        ("get_weather", {"city": "Paris"}, "sunny in Paris, 21 °C", None)
    ]
    assert RAN == [{"city": "Paris"}]
    # What the second round sent: the assistant's call, then the tool's result.
    sent = sim.stats()["last_request"]["messages"]
    assert sent[-2]["role"] == "assistant"
    assert sent[-2]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    }
    assert sent[-1] == {
        "role": "tool",
        "tool_call_id": sent[-2]["tool_calls"][0]["id"],
        "content": "sunny in Paris, 21 °C",
    }
    tools = sim.stats()["last_request"]["tools"]
    assert tools[0]["function"]["name"] == "get_weather"
    assert tools[0]["function"]["parameters"]["required"] == ["city"]


def test_text_stream_is_one_stream_across_rounds(sim: SimulatorServer) -> None:
    with client(sim) as c, c.stream(WEATHER, tools=[get_weather]) as stream:
        pieces = list(stream.text_stream)
    assert "".join(pieces) == "Thanks for waiting: get_weather said sunny in Paris, 21 °C."
    assert RAN == [{"city": "Paris"}]


def test_complete_runs_the_loop_and_tells_every_token(sim: SimulatorServer) -> None:
    seen: list[str] = []
    with client(sim) as c:
        result = c.complete(WEATHER, tools=[get_weather], on_token=seen.append)
    assert "".join(seen) == result.text
    assert "sunny in Paris" in result.text
    assert len(result.tool_results) == 1


def test_a_tool_that_raises_is_reported_to_the_model(sim: SimulatorServer) -> None:
    with client(sim) as c:
        result = c.complete(WEATHER, tools=[broken_weather])
    [outcome] = result.tool_results
    assert outcome.error == "ConnectionError: station for Paris is down"
    assert sim.stats()["last_request"]["messages"][-1]["content"] == (
        "Error: ConnectionError: station for Paris is down"
    )
    assert "Error: ConnectionError" in result.text


def test_raise_tool_errors_propagates_the_tools_own_exception(sim: SimulatorServer) -> None:
    with client(sim) as c, pytest.raises(ConnectionError, match="station for Paris"):
        c.complete(WEATHER, tools=[broken_weather], raise_tool_errors=True)


def test_max_tool_rounds_ends_with_a_clear_error_and_the_partial(sim: SimulatorServer) -> None:
    # tool_choice=required: the simulated model asks for the tool every round.
    with client(sim) as c, pytest.raises(ToolRoundsExceededError) as caught:
        c.complete(WEATHER, tools=[get_weather], tool_choice="required", max_tool_rounds=2)
    assert "max_tool_rounds=2" in str(caught.value)
    assert len(caught.value.partial.tool_results) == 2
    assert len(RAN) == 2
    assert caught.value.partial.tool_calls[0].name == "get_weather"


def test_a_call_cut_mid_stream_is_never_run(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "truncate", "after": 2})
    with (
        client(sim) as c,
        c.stream(WEATHER, tools=[get_weather]) as stream,
        pytest.raises(TruncatedStreamError) as caught,
    ):
        for _ in stream:
            pass
    assert RAN == []
    assert caught.value.partial.tool_calls[0].arguments_error is not None


def test_a_cut_call_is_never_run_nor_continued(sim: SimulatorServer) -> None:
    # A call cut while its arguments stream is not continued (issue 24: its JSON may be cut,
    # and a tool must not run twice): the answer fails with its partial and says why.
    sim.push_fault({"kind": "truncate", "after": 2})
    with client(sim) as c, pytest.raises(StreamError) as caught:
        c.complete(WEATHER, tools=[get_weather])
    assert RAN == []
    assert "tool call was being streamed" in str(caught.value)
    assert caught.value.partial.tool_results == []


def test_a_restarted_answer_runs_its_call_once(sim: SimulatorServer) -> None:
    # With continuation off, complete() starts a cut answer over: the call of the cut
    # attempt never ran, the whole one ran once.
    sim.push_fault({"kind": "truncate", "after": 2})
    with client(sim) as c:
        result = c.complete(WEATHER, tools=[get_weather], max_continuations=0)
    assert RAN == [{"city": "Paris"}]
    assert len(result.tool_results) == 1


def test_invalid_json_arguments_are_reported_and_not_run(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "tool_calls", "function": "get_weather", "arguments": '{"city": "Par'})
    with client(sim) as c, c.stream("hello", tools=[get_weather]) as stream:
        events = list(stream.events)
    [done] = [e for e in events if isinstance(e, CallComplete)]
    assert done.call.arguments_error is not None
    assert RAN == []
    assert stream.result is not None
    assert "not valid JSON" in (stream.result.error or "")


def test_dict_tools_keep_todays_behaviour(sim: SimulatorServer) -> None:
    spec = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    with client(sim) as c:
        stream = c.stream(WEATHER, tools=[spec])
        assert isinstance(stream, ChatStream)
        with stream:
            for _ in stream:
                pass
    assert stream.result is not None
    assert stream.result.finish_reason == "tool_calls"
    assert stream.result.tool_calls[0].name == "get_weather"
    assert stream.result.tool_results == []
    assert RAN == []


def test_async_twin_runs_parallel_calls_concurrently(sim: SimulatorServer) -> None:
    # Each tool waits for the other to have started: they can only both finish if the
    # two calls of the round run at the same time.
    async def main() -> tuple[list[Any], Any]:
        ping_started = threading.Event()
        lookup_started = asyncio.Event()

        async def ping(host: str) -> str:
            """Ping a host."""
            ping_started.set()
            await asyncio.wait_for(lookup_started.wait(), 5)
            return f"{host} answers"

        def lookup(name: str) -> str:
            """Look a name up (a blocking function: run in a worker thread)."""
            loop.call_soon_threadsafe(lookup_started.set)
            if not ping_started.wait(5):
                raise TimeoutError("ping never started alongside")
            return f"{name} found"

        loop = asyncio.get_running_loop()
        async with aclient(sim) as c:
            stream = c.stream("Please ping and lookup", tools=[ping, lookup])
            assert isinstance(stream, AsyncToolLoopStream)
            async with stream:
                events = [e async for e in stream.events]
        return events, stream.result

    events, result = asyncio.run(main())
    ran = [e.result for e in events if isinstance(e, ToolRan)]
    assert [(r.name, r.content) for r in ran] == [
        ("ping", "café answers"),
        ("lookup", "café found"),
    ]
    indexes = {e.index for e in events if isinstance(e, CallDelta)}
    assert indexes == {0, 1}
    assert result.text == (
        "Thanks for waiting: ping said café answers; and lookup said café found."
    )


def test_async_twin_complete_and_errors(sim: SimulatorServer) -> None:
    async def main() -> Any:
        async with aclient(sim) as c:
            good = await c.complete(WEATHER, tools=[get_weather])
            bad = await c.complete(WEATHER, tools=[broken_weather])
            with pytest.raises(ConnectionError):
                await c.complete(WEATHER, tools=[broken_weather], raise_tool_errors=True)
            return good, bad

    good, bad = asyncio.run(main())
    assert "sunny in Paris" in good.text
    assert bad.tool_results[0].error == "ConnectionError: station for Paris is down"


# -- structured output ---------------------------------------------------------------------


def test_json_stream_grows_and_parsed_is_the_model(sim: SimulatorServer) -> None:
    with client(sim) as c, c.stream("A verse, please", response_format=Verse) as stream:
        seen = list(stream.json_stream)
    assert len(seen) > 3
    assert seen[-1] == {"book": "book from the simulator, café", "chapter": 3}
    # Ever more complete: the book's text grows before the chapter appears.
    books = [s.get("book", "") for s in seen]
    assert books == sorted(books, key=len)
    assert stream.result is not None
    assert stream.result.parsed == Verse(book="book from the simulator, café", chapter=3)
    sent = sim.stats()["last_request"]["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["schema"]["required"] == ["book", "chapter"]


def test_async_json_stream_and_a_cut_answers_clear_error(sim: SimulatorServer) -> None:
    async def main() -> tuple[list[Any], Any, Any]:
        async with aclient(sim) as c:
            stream = c.stream("JSON please", response_format={"type": "json_object"})
            assert isinstance(stream, AsyncToolLoopStream)
            async with stream:
                seen = [v async for v in stream.json_stream]
            cut = await c.complete("JSON please", response_format=Verse, max_tokens=4)
            return seen, stream.result, cut

    seen, whole, cut = asyncio.run(main())
    assert seen[-1] == {"answer": "JSON please", "confidence": 0.9, "tags": ["sim"]}
    assert whole.parsed == seen[-1]
    assert cut.finish_reason == "length"
    with pytest.raises(OutputParseError, match="not valid JSON"):
        _ = cut.parsed


def test_an_answer_that_does_not_match_the_model_is_a_clear_error(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "answer", "text": '{"book": "John", "chapter": "three"}'})
    with client(sim) as c:
        result = c.complete("verse", response_format=Verse)
    with pytest.raises(OutputParseError, match="does not match Verse: chapter"):
        _ = result.parsed


def test_a_failed_round_keeps_the_tool_results_before_it(sim: SimulatorServer) -> None:
    # Continuation off, so the second round's cut is a failure (with it on, it is continued).
    with (
        client(sim) as c,
        c.stream(WEATHER, tools=[get_weather], max_continuations=0) as stream,
    ):
        chunks = iter(stream)
        # Round one ends; the function runs; round two is cut.
        for chunk in chunks:
            if chunk.finish_reason == "tool_calls":
                break
        sim.push_fault({"kind": "truncate", "after": 1})
        with pytest.raises(StreamError) as caught:
            for _ in chunks:
                pass
    assert [r.content for r in caught.value.partial.tool_results] == ["sunny in Paris, 21 °C"]
