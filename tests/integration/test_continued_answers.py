"""A cut answer comes out whole: through the library (sync and async) and through the proxy
(both routes, the OpenAI SDK, resumable on and off), for each cut style (issue 24)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from gloo_stream import AsyncGlooClient, GlooClient
from gloo_stream.config import GlooSettings
from gloo_stream.errors import ContentFilterError, StreamDisconnectedError
from gloo_stream.retry import RetryPolicy
from gloo_stream.simulator import SimulatorConfig, SimulatorServer
from gloo_stream.simulator.answers import expected_answer
from gloo_stream.testing import ProxyServer, settings_for
from kit import sse_events

PROMPT = "Explain streaming in one paragraph"
MESSAGES = [{"role": "user", "content": PROMPT}]
ANSWER = "".join(expected_answer(MESSAGES))
FAST = RetryPolicy(max_retries=1, backoff_base=0.01, backoff_max=0.02)
# Each cut style once, after 5 tokens: Signal A, a drop, a stall, an end without a finish.
CUTS = {
    "upstream_error": {"kind": "error", "after": 5},
    "disconnected": {"kind": "disconnect", "after": 5},
    "timeout": {"kind": "stall", "after": 5, "duration": 5},
    "truncated": {"kind": "truncate", "after": 5},
}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    """Continuations repeat the last 16+ characters, as models do: the seam must remove it."""
    config = SimulatorConfig(tokens_per_second=0, first_token_delay=0, continue_repeat_chars=16)
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(sim: SimulatorServer) -> None:
    sim.reset()


def client_kwargs(sim: SimulatorServer, **kwargs: Any) -> dict[str, Any]:
    return {
        "api_url": sim.api_url,
        "api_key": "sim-key",
        "settings": GlooSettings(_env_file=None),  # type: ignore[call-arg]
        "retry_policy": FAST,
        "read_timeout": 0.3,
        **kwargs,
    }


def read_sync(sim: SimulatorServer, **kwargs: Any) -> tuple[list[str], Any]:
    with GlooClient(**client_kwargs(sim, **kwargs)) as client, client.stream(PROMPT) as stream:
        texts = list(stream.text_stream)
    return texts, stream.result


def read_async(sim: SimulatorServer, **kwargs: Any) -> tuple[list[str], Any]:
    async def run() -> tuple[list[str], Any]:
        async with AsyncGlooClient(**client_kwargs(sim, **kwargs)) as client:  # noqa: SIM117
            async with client.stream(PROMPT) as stream:
                texts = [text async for text in stream.text_stream]
        return texts, stream.result

    return asyncio.run(run())


@pytest.mark.parametrize("read", [read_sync, read_async], ids=["sync", "async"])
@pytest.mark.parametrize("reason", list(CUTS))
def test_the_library_continues_each_cut_style_into_the_whole_answer(
    sim: SimulatorServer, read: Any, reason: str
) -> None:
    sim.push_fault(CUTS[reason])
    texts, result = read(sim)
    assert "".join(texts) == ANSWER  # every character once, none lost
    assert result.text == ANSWER and result.outcome == "continued"
    assert result.continuations == 1 and result.attempts == 2
    (seam,) = result.seams
    assert seam.reason == reason and seam.upstream == "primary"
    assert seam.offset == len("".join(expected_answer(MESSAGES)[:5]))
    sent = sim.stats()["last_request"]["messages"]
    assert sent[-2] == {"role": "assistant", "content": ANSWER[: seam.offset]}
    assert sent[-1]["role"] == "user"  # the instruction to go on


def test_complete_continues_and_tells_every_character_once(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "disconnect", "after": 7})
    seen: list[str] = []
    with GlooClient(**client_kwargs(sim)) as client:
        result = client.complete(PROMPT, on_token=seen.append)
    assert "".join(seen) == result.text == ANSWER and result.continuations == 1


def test_an_empty_instruction_sends_the_text_as_a_prefill(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "truncate", "after": 4})
    texts, _ = read_sync(sim, continue_instruction="")
    assert "".join(texts) == ANSWER
    assert sim.stats()["last_request"]["messages"][-1]["role"] == "assistant"


def test_the_bound_reached_carries_every_part_once(sim: SimulatorServer) -> None:
    # Cut the answer and both continuations: three parts, then the error.
    sim.push_fault({"kind": "disconnect", "after": 9, "times": 3})
    texts: list[str] = []
    with GlooClient(**client_kwargs(sim)) as client, client.stream(PROMPT) as stream:  # noqa: SIM117
        with pytest.raises(StreamDisconnectedError) as caught:
            texts.extend(stream.text_stream)
    partial = caught.value.partial
    assert partial.text == "".join(texts)
    first = "".join(expected_answer(MESSAGES)[:9])
    assert ANSWER.startswith(partial.text) and len(partial.text) > len(first)  # parts 2, 3 too
    assert partial.continuations == 2 and partial.outcome == "cut"


def test_max_continuations_zero_keeps_todays_error(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "disconnect", "after": 3})
    with GlooClient(**client_kwargs(sim, max_continuations=0)) as client:  # noqa: SIM117
        with client.stream(PROMPT) as stream, pytest.raises(StreamDisconnectedError) as caught:
            list(stream)
    assert caught.value.partial.text == "".join(expected_answer(MESSAGES)[:3])
    assert sim.stats()["requests"] == 1


def test_a_content_filter_is_never_continued(sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "content_filter", "after": 3})
    with GlooClient(**client_kwargs(sim)) as client, pytest.raises(ContentFilterError):
        client.complete(PROMPT)
    assert sim.stats()["requests"] == 1


def test_a_cut_tool_call_is_never_continued_and_says_why(sim: SimulatorServer) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    sim.push_fault({"kind": "disconnect", "after": 2})
    with GlooClient(**client_kwargs(sim)) as client:  # noqa: SIM117
        with pytest.raises(StreamDisconnectedError, match="not continued: a tool call"):
            client.complete(PROMPT, tools=tools, tool_choice="required")
    assert sim.stats()["requests"] == 1


def test_the_fallback_continues_when_the_primary_is_down_mid_answer(sim: SimulatorServer) -> None:
    config = SimulatorConfig(tokens_per_second=0, first_token_delay=0)
    with SimulatorServer(config) as fallback:
        # The primary drops the answer, then refuses the continuation (503 past its retries).
        sim.push_faults(
            [{"kind": "disconnect", "after": 6}, {"kind": "status", "status": 503, "times": 5}]
        )
        texts, result = read_sync(
            sim,
            fallback_api_url=fallback.api_url,
            fallback_api_key="sim-key",
            fallback_model="fallback-model",
        )
        assert fallback.stats()["last_request"]["model"] == "fallback-model"
    assert "".join(texts) == ANSWER and result.text == ANSWER
    (seam,) = result.seams
    assert seam.upstream == "fallback" and seam.reason == "disconnected"
    assert result.upstream == "primary"  # where the answer began


# -- through the proxy ------------------------------------------------------------------


@pytest.fixture(scope="module", params=[0, 30], ids=["plain", "resumable"])
def proxy(sim: SimulatorServer, request: pytest.FixtureRequest) -> Iterator[ProxyServer]:
    settings = settings_for(
        sim, proxy_resume_window=request.param, gloo_read_timeout=0.3, gloo_max_retries=1
    )
    with ProxyServer(settings) as server:
        yield server


@pytest.mark.parametrize("reason", list(CUTS))
def test_the_proxy_relays_a_cut_answer_as_one(
    proxy: ProxyServer, sim: SimulatorServer, reason: str
) -> None:
    sim.push_fault(CUTS[reason])
    body = {"messages": MESSAGES}
    response = httpx.post(f"{proxy.url}/api/stream", json=body, timeout=10)
    raw = response.content
    events = sse_events(raw)
    chunks = [json.loads(e.data) for e in events if e.data and e.data != "[DONE]"]
    text = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
    )
    assert text == ANSWER
    assert not any(e.event == "error" for e in events)
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c.get("choices")]
    assert [f for f in finishes if f] == ["stop"]  # one finish
    marked = [c["gloo_continuation"] for c in chunks if "gloo_continuation" in c]
    assert marked == [
        {"n": 1, "reason": reason, "upstream": "primary", "offset": marked[0]["offset"]}
    ]
    assert f": continued n=1 reason={reason}\n".encode() in raw
    comment_at = raw.index(b": continued n=1")
    assert raw.index(b'"gloo_continuation"') > comment_at  # right before that chunk
    if "x-stream-id" in response.headers:  # resumable: numbered events
        ids = [int(e.id) for e in events if e.id]
        assert ids == list(range(1, len(ids) + 1))  # the numbering goes on across the seam


def test_the_openai_sdk_sees_one_uninterrupted_answer(
    proxy: ProxyServer, sim: SimulatorServer
) -> None:
    sim.push_fault({"kind": "disconnect", "after": 4})
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="unused")
    text = ""
    for chunk in client.chat.completions.create(model="auto", messages=MESSAGES, stream=True):  # type: ignore[arg-type]
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
    assert text == ANSWER


def test_a_whole_v1_answer_is_continued_too(proxy: ProxyServer, sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "error", "after": 4})
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="unused")
    completion = client.chat.completions.create(model="auto", messages=MESSAGES)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == ANSWER


def test_the_proxy_counts_the_seam(proxy: ProxyServer, sim: SimulatorServer) -> None:
    sim.push_fault({"kind": "truncate", "after": 3})
    httpx.post(f"{proxy.url}/api/stream", json={"messages": MESSAGES}, timeout=10)
    metrics = httpx.get(f"{proxy.url}/metrics", timeout=5).text
    line = (
        'gloo_proxy_continuations_total{outcome="continued",reason="truncated",upstream="primary"}'
    )
    assert line in metrics


def test_a_resume_across_the_seam_gets_the_rest(sim: SimulatorServer) -> None:
    settings = settings_for(sim, proxy_resume_window=30, gloo_read_timeout=0.3)
    with ProxyServer(settings) as server:
        sim.push_fault({"kind": "disconnect", "after": 4})
        whole = httpx.post(f"{server.url}/api/stream", json={"messages": MESSAGES}, timeout=10)
        stream_id = whole.headers["x-stream-id"]
        events = sse_events(whole.content)
        seam_id = next(e.id for e in events if e.data and "gloo_continuation" in e.data)
        before = str(int(seam_id) - 2)
        rest = httpx.get(
            f"{server.url}/api/stream/{stream_id}", headers={"Last-Event-ID": before}, timeout=10
        )
    got = [e for e in sse_events(rest.content) if e.data and e.data != "[DONE]"]
    assert got[0].id == str(int(before) + 1)
    tail = [e.data for e in events if e.id and int(e.id) > int(before)]
    assert [e.data for e in got] == tail
