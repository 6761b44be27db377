"""Against a server that requires ``model`` (the simulator's vLLM/Ollama-like mode), over loopback.

With GLOO_MODEL set, every face works unchanged: both client twins, the tutorial's functions,
the proxy's /api/stream and /v1/chat/completions. A caller's own routing still wins, and the
proxy's allow-lists still hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import openai
import pytest

from gloo_stream import AsyncGlooClient, BadRequestError, GlooClient, compat
from gloo_stream.errors import MISSING_MODEL_HINT
from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from gloo_stream.testing import ProxyServer, settings_for

PROMPT = "Which model answers this?"
MESSAGES = [{"role": "user", "content": PROMPT}]
ANSWER = "".join(expected_answer(MESSAGES))
MODEL = "llama-3.1-8b-instruct"
MISSING = {"type": "missing", "loc": ["body", "model"], "msg": "Field required", "input": None}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(tokens_per_second=0, first_token_delay=0, require_model=True)
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture(autouse=True)
def env(sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """The user's setup for such a server: its URL, a key, and GLOO_MODEL (no stray .env)."""
    sim.reset()
    monkeypatch.chdir(str(tmp_path))
    # The conftest already cleared the developer's GLOO_* variables.
    monkeypatch.setenv("GLOO_API_URL", sim.api_url)
    monkeypatch.setenv("GLOO_API_KEY", "sim-key")
    monkeypatch.setenv("GLOO_MODEL", MODEL)


def sent(sim: SimulatorServer) -> dict[str, object]:
    request = sim.stats()["last_request"]
    assert isinstance(request, dict)
    return request


# -- the simulator's mode ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "routing",
    [{}, {"auto_routing": True}, {"model_family": "openai"}, {"tradition": "catholic"}],
)
def test_simulator_refuses_requests_without_a_model_naming_the_field(
    sim: SimulatorServer, routing: dict[str, object]
) -> None:
    body = {"messages": MESSAGES, "stream": True, **routing}
    headers = {"authorization": "Bearer sim-key"}
    response = httpx.post(sim.api_url, json=body, headers=headers, timeout=5)
    assert response.status_code == 422
    assert response.json() == {"detail": [MISSING]}
    assert sim.stats()["streams_open"] == 0


def test_simulator_serves_a_request_that_names_a_model(sim: SimulatorServer) -> None:
    body = {"messages": MESSAGES, "stream": False, "model": MODEL}
    headers = {"authorization": "Bearer sim-key"}
    response = httpx.post(sim.api_url, json=body, headers=headers, timeout=5)
    assert response.status_code == 200
    assert response.json()["model"] == MODEL


# -- the library ------------------------------------------------------------------------------


def test_sync_client_sends_gloo_model(sim: SimulatorServer) -> None:
    with GlooClient() as client:
        result = client.complete(PROMPT)
    assert result.text == ANSWER
    assert result.model == MODEL
    assert sent(sim)["model"] == MODEL
    assert "auto_routing" not in sent(sim)


def test_async_client_sends_gloo_model(sim: SimulatorServer) -> None:
    async def run() -> tuple[str, str]:
        async with AsyncGlooClient() as client:
            async with client.stream(PROMPT) as stream:
                text = "".join([chunk.content async for chunk in stream])
            assert stream.result is not None
            return text, stream.result.model or ""

    assert asyncio.run(run()) == (ANSWER, MODEL)
    assert sent(sim)["model"] == MODEL


def test_a_callers_model_wins_over_gloo_model(sim: SimulatorServer) -> None:
    with GlooClient() as client:
        assert client.complete(PROMPT, model="qwen2.5").model == "qwen2.5"
    assert sent(sim)["model"] == "qwen2.5"


def test_without_gloo_model_the_error_says_what_to_set(
    sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GLOO_MODEL")
    with GlooClient(max_retries=0) as client, pytest.raises(BadRequestError) as caught:
        client.complete(PROMPT)
    assert caught.value.status_code == 422
    assert caught.value.missing_model is True
    assert MISSING_MODEL_HINT in str(caught.value)
    assert sent(sim)["auto_routing"] is True  # Gloo's default when nothing is set


def test_tutorial_functions_send_gloo_model(sim: SimulatorServer) -> None:
    result = compat.stream_completion(PROMPT, compat.ensure_valid_token())
    assert result["text"] == ANSWER
    assert result["finish_reason"] == "stop"
    assert sent(sim)["model"] == MODEL
    sim.reset()
    with compat.make_streaming_request(PROMPT, "sim-key") as response:
        lines = [compat.parse_sse_line(line) for line in response.iter_lines()]
    text = "".join(
        compat.extract_token_content(chunk) for chunk in lines if isinstance(chunk, dict)
    )
    assert text == ANSWER
    assert sent(sim)["model"] == MODEL


# -- the proxy --------------------------------------------------------------------------------


@pytest.fixture
def proxy(sim: SimulatorServer) -> Iterator[ProxyServer]:
    settings = settings_for(
        sim, gloo_model=MODEL, proxy_rate_limit="", proxy_allowed_models=f"{MODEL},qwen2.5"
    )
    with ProxyServer(settings) as server:
        yield server


def test_proxy_api_stream_sends_the_default_model(sim: SimulatorServer, proxy: ProxyServer) -> None:
    response = httpx.post(f"{proxy.url}/api/stream", json={"messages": MESSAGES}, timeout=10)
    assert response.status_code == 200, response.text
    assert sent(sim)["model"] == MODEL
    assert "auto_routing" not in sent(sim)


def test_proxy_keeps_the_callers_routing_and_its_allow_list(
    sim: SimulatorServer, proxy: ProxyServer
) -> None:
    own = {"messages": MESSAGES, "model": "qwen2.5"}
    response = httpx.post(f"{proxy.url}/api/stream", json=own, timeout=10)
    assert response.status_code == 200, response.text
    assert sent(sim)["model"] == "qwen2.5"
    refused = httpx.post(
        f"{proxy.url}/api/stream", json={"messages": MESSAGES, "model": "other"}, timeout=10
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "model_not_allowed"
    # Explicit auto-routing wins over the default too: this server then refuses it.
    auto = httpx.post(
        f"{proxy.url}/api/stream", json={"messages": MESSAGES, "auto_routing": True}, timeout=10
    )
    assert auto.status_code == 400
    assert sent(sim)["auto_routing"] is True


def test_proxy_v1_with_the_openai_sdk_uses_the_default(
    sim: SimulatorServer, proxy: ProxyServer
) -> None:
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="x", max_retries=0)
    completion = client.chat.completions.create(model="default", messages=MESSAGES)
    assert completion.choices[0].message.content == ANSWER
    assert completion.model == MODEL
    assert sent(sim)["model"] == MODEL
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == (
        ANSWER
    )
    assert [m.id for m in client.models.list()][:2] == ["auto", MODEL]
