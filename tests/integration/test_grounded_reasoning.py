"""Grounded answers and reasoning (issue 25) through every face, against the simulator.

Library twins (each citations variant the simulator can script, both reasoning spellings),
the grounded URL choice, the proxy's two routes (the contract's one citations form), the
OpenAI SDK's README loop over a grounded answer, and the CLI's pipe and --json output.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import openai
import pytest

from gloo_stream import AsyncGlooClient, GlooClient, GlooSettings, InvalidRequestError, RetryPolicy
from gloo_stream.events import CitationsReceived, ReasoningDelta, TextDelta
from gloo_stream.grounding import Citation
from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from gloo_stream.simulator.grounded import CORPUS, citations_for, reasoning_tokens
from gloo_stream.sse import SSEDecoder
from gloo_stream.testing import ProxyServer, settings_for
from kit import TcpRelay, clean_settings

PROMPT = "What is hope?"
MESSAGES = [{"role": "user", "content": PROMPT}]
ANSWER = "".join(expected_answer(MESSAGES))
VARIANTS = ["chunk", "bare", "sources", "proxy"]
GROUNDED_PATH = "/ai/v2/chat/completions/grounded"


def settings(sim: SimulatorServer, **values: Any) -> GlooSettings:
    return GlooSettings(_env_file=None, **{**sim.upstream_settings(), **values})  # type: ignore[call-arg]


def expected_citations(**body: Any) -> list[dict[str, Any]]:
    return citations_for({"rag_publisher": "GlooGrounded", **body}, PROMPT)


def complete(sim: SimulatorServer, twin: str, prompt: Any = PROMPT, **params: Any) -> Any:
    """One whole answer from the sync or the async client, with its events."""
    events: list[Any] = []
    if twin == "sync":
        with GlooClient(settings=settings(sim)) as client:
            result = client.complete(prompt, on_event=events.append, **params)
        return result, events

    async def run() -> Any:
        async with AsyncGlooClient(settings=settings(sim)) as client:
            return await client.complete(prompt, on_event=events.append, **params)

    return asyncio.run(run()), events


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- library ---------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_citations_variant_is_read_and_never_counts_as_text(
    simulator: SimulatorServer, twin: str, variant: str
) -> None:
    simulator.push_fault({"kind": "citations", "variant": variant})
    result, events = complete(simulator, twin, grounded=True)
    wanted = expected_citations()
    assert [c.raw for c in result.citations] == wanted  # every field kept, score included
    assert [c.title for c in result.citations] == [item["title"] for item in wanted]
    assert [c.url for c in result.citations] == [item["url"] for item in wanted]
    assert result.citations[0].snippet == wanted[0]["snippet"]
    assert result.citations[0].publisher == "GlooGrounded"
    assert result.sources_returned is True
    assert result.text == ANSWER  # the citations event added nothing to the text
    assert result.token_count == len(expected_answer(MESSAGES))
    assert isinstance(events[0], CitationsReceived)  # event 1, before any text
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == ANSWER
    assert simulator.stats()["last_path"] == GROUNDED_PATH


def test_grounded_call_asks_the_grounded_endpoint_with_its_fields(
    simulator: SimulatorServer, twin: str
) -> None:
    result, _ = complete(
        simulator, twin, rag_publisher="Acme Press", sources_limit=2, include_citations=True
    )
    sent = simulator.stats()["last_request"]
    assert simulator.stats()["last_path"] == GROUNDED_PATH
    assert sent["rag_publisher"] == "Acme Press"
    assert sent["sources_limit"] == 2
    assert sent["include_citations"] is True
    assert [c.publisher for c in result.citations] == ["Acme Press", "Acme Press"]
    assert result.citations[0].url.startswith("https://example.org/acme-press/")


def test_include_citations_is_sent_only_when_asked(simulator: SimulatorServer) -> None:
    with GlooClient(settings=settings(simulator)) as client:
        result = client.complete(PROMPT, grounded=True)
    sent = simulator.stats()["last_request"]
    assert "include_citations" not in sent
    assert sent["rag_publisher"] == "GlooGrounded"
    assert result.citations == []  # not asked: no citations event
    assert result.sources_returned is True  # still said on the chunks


def test_plain_call_stays_on_the_plain_endpoint(simulator: SimulatorServer) -> None:
    with GlooClient(settings=settings(simulator)) as client:
        result = client.complete(PROMPT)
    assert simulator.stats()["last_path"] == "/ai/v2/chat/completions"
    assert "rag_publisher" not in simulator.stats()["last_request"]
    assert result.citations == [] and result.sources_returned is None


def test_settings_make_every_call_grounded_unless_it_says_otherwise(
    simulator: SimulatorServer,
) -> None:
    s = settings(simulator, gloo_rag_publisher="Acme Press", gloo_sources_limit=4)
    with GlooClient(settings=s) as client:
        client.complete(PROMPT)
        sent = simulator.stats()["last_request"]
        assert (sent["rag_publisher"], sent["sources_limit"]) == ("Acme Press", 4)
        assert simulator.stats()["last_path"] == GROUNDED_PATH
        client.complete(PROMPT, grounded=False)
        assert "rag_publisher" not in simulator.stats()["last_request"]
        assert simulator.stats()["last_path"] == "/ai/v2/chat/completions"


@pytest.mark.parametrize("value", [0, 11, 2.5, "3", True])
def test_sources_limit_out_of_range_is_a_clear_error(
    simulator: SimulatorServer, value: Any
) -> None:
    with (
        GlooClient(settings=settings(simulator)) as client,
        pytest.raises(
            InvalidRequestError, match="sources_limit must be a whole number from 1 to 10"
        ),
    ):
        client.complete(PROMPT, sources_limit=value)
    assert simulator.stats()["requests"] == 0


def test_grounded_url_is_derived_from_a_changed_api_url() -> None:
    derived = GlooSettings(_env_file=None, gloo_api_url="http://h:1/ai/v2/chat/completions")  # type: ignore[call-arg]
    assert derived.grounded_url_source == (
        "http://h:1/ai/v2/chat/completions/grounded",
        "derived from GLOO_API_URL (+ /grounded)",
    )
    default = GlooSettings(_env_file=None)  # type: ignore[call-arg]
    assert default.grounded_url == "https://platform.ai.gloo.com/ai/v2/chat/completions/grounded"
    proxy = GlooSettings(_env_file=None, gloo_api_url="http://p:3/v1/chat/completions")  # type: ignore[call-arg]
    assert proxy.grounded_url == "http://p:3/v1/chat/completions"  # the proxy routes by body
    own = GlooSettings(_env_file=None, gloo_grounded_url="http://g:2/x")  # type: ignore[call-arg]
    assert own.grounded_url_source == ("http://g:2/x", "GLOO_GROUNDED_URL")


@pytest.mark.parametrize("spelling", ["reasoning_content", "reasoning"])
def test_reasoning_is_kept_apart_from_the_answer(
    simulator: SimulatorServer, twin: str, spelling: str
) -> None:
    simulator.push_fault({"kind": "reasoning", "spelling": spelling})
    result, events = complete(simulator, twin)
    assert result.reasoning.startswith("The user asks: What is hope?")
    assert result.text == ANSWER  # not one word of the reasoning in the answer
    assert "The user asks" not in result.text
    assert result.reasoning_token_count == len(result.reasoning.split(" "))
    assert result.reasoning_ttft_ms is not None and result.ttft_ms is not None
    assert result.reasoning_ttft_ms < result.ttft_ms  # ttft is the first ANSWER token
    kinds = [type(e) for e in events]
    assert kinds.index(TextDelta) > kinds.index(ReasoningDelta)
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == result.reasoning


def test_text_stream_and_events_on_a_reasoning_model(simulator: SimulatorServer) -> None:
    with GlooClient(settings=settings(simulator)) as client:
        with client.stream(PROMPT, model="sim-reasoning") as stream:
            text = "".join(stream.text_stream)
        with client.stream(PROMPT, model="sim-reasoning-alt") as stream:
            events = list(stream.events)
    assert text == ANSWER
    thinking = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert thinking.startswith("The user asks")
    assert stream.result is not None and stream.result.reasoning == thinking


def test_async_events_iterate_live(simulator: SimulatorServer) -> None:
    simulator.push_fault({"kind": "citations", "variant": "bare"})

    async def run() -> list[Any]:
        async with (
            AsyncGlooClient(settings=settings(simulator)) as client,
            client.stream(PROMPT, grounded=True, model="sim-reasoning") as stream,
        ):
            return [event async for event in stream.events]

    events = asyncio.run(run())
    assert isinstance(events[0], CitationsReceived)
    assert events[0].citations[0] == Citation.from_raw(expected_citations()[0])
    assert any(isinstance(e, ReasoningDelta) for e in events)


def test_citations_survive_a_resume(tmp_path: Path) -> None:
    """The connection to a resumable proxy is cut after the citations event: the rest is
    picked up after the last event received, event 1 is not sent again, and the result
    keeps the sources it carried."""
    config = SimulatorConfig(tokens_per_second=40, first_token_delay=0, answer_tokens=30)
    with SimulatorServer(config) as sim:
        s = settings_for(sim, proxy_resume_window=30, proxy_api_keys="key-a")
        with ProxyServer(s) as proxy:
            relay = TcpRelay(("127.0.0.1", proxy.port), cut_after=2500)
            try:
                with GlooClient(
                    api_url=f"http://127.0.0.1:{relay.port}/api/stream",
                    api_key="key-a",
                    retry_policy=RetryPolicy(max_retries=2, backoff_base=0.05, backoff_max=0.2),
                    settings=clean_settings(),
                ) as client:
                    result = client.complete(PROMPT, include_citations=True)
            finally:
                relay.close()
        assert (result.resumes, result.attempts) == (1, 1)
        assert relay.connections == 2
        assert sim.stats()["requests"] == 1
    wanted = citations_for({"rag_publisher": "GlooGrounded"}, PROMPT)
    assert [c.raw for c in result.citations] == wanted
    assert result.text == "".join(expected_answer(MESSAGES, answer_tokens=30))


# -- proxy -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy(simulator_session: SimulatorServer) -> Iterator[ProxyServer]:
    s = settings_for(
        simulator_session, proxy_rate_limit="", proxy_allowed_publishers="GlooGrounded,Acme Press"
    )
    with ProxyServer(s) as server:
        yield server


def data_events(body: bytes) -> list[Any]:
    return [
        msgspec.json.decode(e.data)
        for e in SSEDecoder().feed(body)
        if e.data and e.data != "[DONE]"
    ]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("route", ["/api/stream", "/v1/chat/completions"])
def test_proxy_relays_every_variant_in_the_contract_form(
    proxy: ProxyServer, simulator: SimulatorServer, variant: str, route: str
) -> None:
    simulator.push_fault({"kind": "citations", "variant": variant})
    body: dict[str, Any] = {"messages": MESSAGES, "rag_publisher": "GlooGrounded", "stream": True}
    if route.startswith("/v1"):
        body["model"] = "auto"
    response = httpx.post(f"{proxy.url}{route}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    assert simulator.stats()["last_path"] == GROUNDED_PATH
    events = data_events(response.content)
    first = events[0]
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    ]
    assert first["citations"] == expected_citations()
    assert first["sources_returned"] is True
    assert "sources" not in first
    assert all("citations" not in e for e in events[1:])  # one event, the first
    text = "".join(
        (e["choices"][0]["delta"].get("content") or "") for e in events if e.get("choices")
    )
    assert text == ANSWER


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("sources_limit", 11, "sources_limit must be a whole number from 1 to 10"),
        ("rag_publisher", "", "rag_publisher must be a publisher name"),
        ("include_citations", "yes", "include_citations must be true or false"),
        ("parallel_tool_calls", 1, "parallel_tool_calls must be true or false"),
        ("rag_publisher", "Elsewhere", "Publisher 'Elsewhere' is not allowed here"),
    ],
)
def test_proxy_validates_the_grounded_fields(
    proxy: ProxyServer, simulator: SimulatorServer, field: str, value: Any, words: str
) -> None:
    body = {"messages": MESSAGES, field: value}
    response = httpx.post(f"{proxy.url}/api/stream", json=body, timeout=10)
    assert response.status_code == 400
    assert words in response.text
    assert simulator.stats()["requests"] == 0


def test_openai_sdk_readme_loop_survives_a_grounded_answer(
    proxy: ProxyServer, simulator: SimulatorServer
) -> None:
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="x", max_retries=0)
    printed: list[str] = []
    citations: list[Any] = []
    for chunk in client.chat.completions.create(
        model="auto",
        stream=True,
        messages=MESSAGES,
        extra_body={"rag_publisher": "Acme Press", "sources_limit": 2, "include_citations": True},
    ):
        printed.append(chunk.choices[0].delta.content or "")  # the README's loop, unchanged
        citations.extend((chunk.model_extra or {}).get("citations") or [])
    assert "".join(printed) == ANSWER
    assert [c["publisher"] for c in citations] == ["Acme Press", "Acme Press"]
    sent = simulator.stats()["last_request"]
    assert (sent["rag_publisher"], sent["sources_limit"]) == ("Acme Press", 2)


def test_openai_sdk_whole_answer_carries_the_citations(
    proxy: ProxyServer, simulator: SimulatorServer
) -> None:
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="x", max_retries=0)
    completion = client.chat.completions.create(
        model="auto", messages=MESSAGES, extra_body={"include_citations": True}
    )
    assert completion.choices[0].message.content == ANSWER
    assert (completion.model_extra or {})["citations"] == expected_citations()


def test_proxy_relays_reasoning_as_sent(proxy: ProxyServer, simulator: SimulatorServer) -> None:
    simulator.push_fault({"kind": "reasoning", "spelling": "reasoning"})
    response = httpx.post(f"{proxy.url}/api/stream", json={"messages": MESSAGES}, timeout=10)
    deltas = [e["choices"][0]["delta"] for e in data_events(response.content) if e.get("choices")]
    thinking = "".join(d.get("reasoning") or "" for d in deltas)
    assert thinking.startswith("The user asks")
    assert "".join(d.get("content") or "" for d in deltas) == ANSWER


# -- simulator -------------------------------------------------------------------------------


def test_simulator_grounded_validation(simulator: SimulatorServer) -> None:
    url = f"{simulator.url}{GROUNDED_PATH}"
    headers = {"authorization": "Bearer sim-key"}
    empty = httpx.post(url, json={"messages": [], "stream": False}, headers=headers)
    assert empty.status_code == 400
    omitted = httpx.post(url, json={"stream": False, "include_citations": True}, headers=headers)
    assert omitted.status_code == 200
    assert omitted.json()["citations"] == citations_for({}, "Hello world!")
    too_many = httpx.post(url, json={"messages": MESSAGES, "sources_limit": 11}, headers=headers)
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["body", "sources_limit"]
    assert len(CORPUS["GlooGrounded"]) >= 3


# -- CLI -------------------------------------------------------------------------------------

SCRIPT = Path(sys.executable).with_name("gloo-stream")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "gloo_stream.cli"]


def run_cli(sim: SimulatorServer, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GLOO_API_URL": sim.api_url,
        "GLOO_API_KEY": "sim-key",
    }
    return subprocess.run(
        [*COMMAND, *args], env=env, cwd=home, input="", capture_output=True, text=True, timeout=60
    )


def test_cli_pipe_keeps_stdout_the_answer_and_lists_sources_on_stderr(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    proc = run_cli(
        simulator,
        tmp_path,
        "chat",
        "--grounded",
        "--sources",
        "2",
        "--model",
        "sim-reasoning",
        PROMPT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ANSWER + "\n"  # no sources, no reasoning in the answer
    wanted = expected_citations(sources_limit=2)
    assert f"[1] {wanted[0]['title']} <{wanted[0]['url']}>" in proc.stderr
    assert f"[2] {wanted[1]['title']} <{wanted[1]['url']}>" in proc.stderr
    assert f"thought {len(reasoning_tokens(PROMPT))} tokens" in proc.stderr
    assert simulator.stats()["last_request"]["include_citations"] is True


def test_cli_json_has_citations_and_reasoning_lines(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    proc = run_cli(
        simulator,
        tmp_path,
        "chat",
        "--json",
        "--publisher",
        "Acme Press",
        "--model",
        "sim-reasoning",
        PROMPT,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0]["type"] == "citations"
    assert lines[0]["citations"][0]["publisher"] == "Acme Press"
    wanted = citations_for({"rag_publisher": "Acme Press"}, PROMPT)
    assert [c["raw"] for c in lines[0]["citations"]] == wanted  # every field, score too
    reasoning = "".join(line["content"] for line in lines if line["type"] == "reasoning")
    assert reasoning.startswith("The user asks")
    text = "".join(line["content"] for line in lines if line["type"] == "delta")
    assert text == ANSWER
    assert lines[-1]["type"] == "result" and lines[-1]["reasoning"] == reasoning


def test_cli_refuses_a_bad_sources_value_before_any_request(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    proc = run_cli(simulator, tmp_path, "chat", "--sources", "0", PROMPT)
    assert proc.returncode == 2
    assert "--sources: sources_limit must be a whole number from 1 to 10" in proc.stderr
    assert simulator.stats()["requests"] == 0
