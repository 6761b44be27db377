"""The Gloo simulator over real loopback sockets, driven with plain httpx."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gloo_stream.simulator import (
    Fault,
    SimulatorConfig,
    SimulatorServer,
    create_app,
    expected_answer,
)
from gloo_stream.simulator.answers import tokenize
from gloo_stream.simulator.chunks import sse_data
from gloo_stream.sse import encode_event
from kit import wait_streams_closed

AUTH = {"Authorization": "Bearer sim-key"}
MESSAGES = [{"role": "user", "content": "How does streaming work?"}]
CHUNK_KEYS = ["id", "choices", "created", "model", "object", "provider", "usage"]
# One pooled client: building a client per request costs tens of milliseconds (TLS context).
HTTP = httpx.Client(timeout=10)


# -- helpers ------------------------------------------------------------------------------


def data_fields(raw: bytes) -> list[str]:
    """The data of each SSE event in a body (a deliberately tiny decoder: fields, comments)."""
    out = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        lines = [
            line[5:].removeprefix(" ") for line in block.split("\n") if line.startswith("data:")
        ]
        if lines:
            out.append("\n".join(lines))
    return out


def chunks_of(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(data) for data in data_fields(raw) if data != "[DONE]"]


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)


def stream(
    sim: SimulatorServer,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    url: str | None = None,
) -> tuple[httpx.Response, bytes]:
    payload = {"messages": MESSAGES, "stream": True, **(body or {})}
    with HTTP.stream("POST", url or sim.api_url, json=payload, headers=headers or AUTH) as response:
        return response, response.read()


def post(sim: SimulatorServer, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return HTTP.post(sim.api_url, json=body, headers=AUTH if headers is None else headers)


@pytest.fixture(scope="module", autouse=True)
def _close_http_client() -> Iterator[None]:
    yield
    HTTP.close()


@pytest.fixture(scope="module")
def paced() -> Iterator[SimulatorServer]:
    """A simulator with real pacing, for timing and disconnect tests."""
    config = SimulatorConfig(tokens_per_second=20, first_token_delay=0.2, answer_tokens=8)
    with SimulatorServer(config) as server:
        yield server


# -- server and admin ---------------------------------------------------------------------


def test_port_zero_reports_the_real_port(simulator: SimulatorServer) -> None:
    assert not simulator.url.endswith(":0")
    assert simulator.api_url == f"{simulator.url}/ai/v2/chat/completions"
    assert simulator.token_url == f"{simulator.url}/oauth2/token"
    assert simulator.openai_base_url == f"{simulator.url}/ai/v2"
    assert HTTP.get(simulator.url + "/platform/v2/").json()["data"]


def test_create_app_keeps_state_on_the_app() -> None:
    app = create_app(SimulatorConfig(seed=3))
    assert app.state.simulator.stats()["requests"] == 0


def test_stats_record_requests_and_redact_credentials(simulator: SimulatorServer) -> None:
    stream(simulator, {"temperature": 0.5}, {**AUTH, "X-Trace": "abc"})
    # The server closes its books just after its last byte: wait for that, don't race it.
    assert simulator.wait_until(lambda s: s["streams_closed"] == 1, timeout=2.0)
    stats = HTTP.get(simulator.url + "/_sim/stats").json()
    assert stats["requests"] == 1
    assert stats["streams_started"] == stats["streams_closed"] == 1
    assert stats["streams_open"] == 0
    assert stats["last_request"]["temperature"] == 0.5
    assert stats["last_headers"]["authorization"] == "Bearer ***"
    assert stats["last_headers"]["x-trace"] == "abc"
    assert "sim-key" not in json.dumps(stats)


def test_admin_reset_and_faults_over_http(simulator: SimulatorServer) -> None:
    post(simulator, {"messages": MESSAGES})
    reply = HTTP.post(simulator.url + "/_sim/faults", json={"faults": [{"kind": "status"}]})
    assert reply.status_code == 200
    pending = HTTP.get(simulator.url + "/_sim/faults").json()["faults"]
    assert pending == [{"kind": "status", "times": 1}]
    assert HTTP.post(simulator.url + "/_sim/reset").status_code == 200
    assert simulator.stats()["requests"] == 0
    assert post(simulator, {"messages": MESSAGES}).status_code == 200


@pytest.mark.parametrize(
    "faults", [{"faults": [{"kind": "nope"}]}, {"faults": [{"kind": "stall", "afterr": 1}]}]
)
def test_admin_rejects_bad_faults(simulator: SimulatorServer, faults: Any) -> None:
    reply = HTTP.post(simulator.url + "/_sim/faults", json=faults)
    assert reply.status_code == 422
    assert simulator.stats()["faults_pending"] == []


def test_stop_does_not_wait_for_open_streams() -> None:
    server = SimulatorServer(SimulatorConfig(tokens_per_second=1, answer_tokens=100)).start()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            stream(server)
        except httpx.HTTPError as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    assert server.wait_until(lambda s: s["streams_open"] == 1)
    started = time.monotonic()
    server.stop()
    reader.join(5)
    assert time.monotonic() - started < 3
    assert errors, "the client should see its stream broken"
    assert server.stats()["streams_open"] == 0


# -- OAuth token endpoint -----------------------------------------------------------------


def test_token_with_basic_auth_and_with_form_fields(simulator: SimulatorServer) -> None:
    grant = {"grant_type": "client_credentials", "scope": "api/access"}
    basic = HTTP.post(simulator.token_url, data=grant, auth=("sim-client", "sim-secret"))
    form = HTTP.post(
        simulator.token_url,
        data={**grant, "client_id": "sim-client", "client_secret": "sim-secret"},
    )
    tokens = [basic.json(), form.json()]
    for token in tokens:
        assert token["token_type"] == "Bearer"
        assert token["expires_in"] == 3600
    assert tokens[0]["access_token"] != tokens[1]["access_token"]
    bearer = {"Authorization": f"Bearer {tokens[0]['access_token']}"}
    assert post(simulator, {"messages": MESSAGES}, bearer).status_code == 200
    assert simulator.stats()["token_requests"] == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"auth": ("sim-client", "wrong")},
        {"data": {"client_id": "sim-client", "client_secret": "wrong"}},
        {},
    ],
)
def test_token_rejects_wrong_credentials(simulator: SimulatorServer, kwargs: Any) -> None:
    data = {"grant_type": "client_credentials", **kwargs.pop("data", {})}
    reply = HTTP.post(simulator.token_url, data=data, **kwargs)
    assert reply.status_code == 401
    assert reply.json() == {"error": "invalid_client"}


def test_token_rejects_other_grants(simulator: SimulatorServer) -> None:
    reply = HTTP.post(
        simulator.token_url, data={"grant_type": "password"}, auth=("sim-client", "sim-secret")
    )
    assert reply.status_code == 400
    assert reply.json() == {"error": "unsupported_grant_type"}


def test_tokens_expire() -> None:
    with SimulatorServer(SimulatorConfig(token_lifetime=0.5, tokens_per_second=0)) as sim:
        grant = {"grant_type": "client_credentials"}
        token = HTTP.post(sim.token_url, data=grant, auth=("sim-client", "sim-secret")).json()
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        assert post(sim, {"messages": MESSAGES}, bearer).status_code == 200
        # A fixed wait, kept on purpose: the simulator reads time.monotonic() itself (no
        # clock can be handed to it), so only real time can expire the token. A shorter
        # lifetime would race the first request, which must land before it expires.
        time.sleep(0.6)
        reply = post(sim, {"messages": MESSAGES}, bearer)
        assert reply.status_code == 401
        assert reply.json()["code"] == "unauthorized_invalid_token"


# -- completions auth and validation ------------------------------------------------------


def test_missing_and_invalid_authorization(simulator: SimulatorServer) -> None:
    missing = post(simulator, {"messages": MESSAGES}, headers={})
    assert missing.status_code == 401
    assert missing.json() == {
        "error": "Missing Authorization",
        "code": "unauthorized_missing_authorization",
    }
    for value in ("Bearer nope", "Basic c2ltLWtleQ==", "Bearer"):
        invalid = post(simulator, {"messages": MESSAGES}, headers={"Authorization": value})
        assert invalid.status_code == 401
        assert invalid.json() == {
            "error": "Invalid or expired token",
            "code": "unauthorized_invalid_token",
        }


def test_auth_can_be_switched_off() -> None:
    with SimulatorServer(SimulatorConfig(require_auth=False, tokens_per_second=0)) as sim:
        assert post(sim, {"messages": MESSAGES}, headers={}).status_code == 200


def test_missing_messages_is_the_documented_422(simulator: SimulatorServer) -> None:
    reply = post(simulator, {"stream": True})
    assert reply.status_code == 422
    assert reply.json() == {
        "detail": [
            {"type": "missing", "loc": ["body", "messages"], "msg": "Field required", "input": None}
        ]
    }


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        ({"messages": "hi"}, ["body", "messages"], "list_type"),
        ({"messages": []}, ["body", "messages"], "too_short"),
        ({"messages": ["hi"]}, ["body", "messages", 0], "model_attributes_type"),
        (
            {"messages": [{"role": "bot", "content": "x"}]},
            ["body", "messages", 0, "role"],
            "literal_error",
        ),
        (
            {"messages": [{"role": "user", "content": 3}]},
            ["body", "messages", 0, "content"],
            "string_type",
        ),
        ({"messages": [{"role": "user"}]}, ["body", "messages", 0, "content"], "missing"),
        ({"temperature": 2.5}, ["body", "temperature"], "less_than_equal"),
        ({"temperature": -1}, ["body", "temperature"], "greater_than_equal"),
        ({"temperature": "hot"}, ["body", "temperature"], "float_type"),
        ({"max_tokens": 0}, ["body", "max_tokens"], "greater_than_equal"),
        ({"max_tokens": "ten"}, ["body", "max_tokens"], "int_type"),
        ({"tool_choice": "sometimes"}, ["body", "tool_choice"], "literal_error"),
        ({"model_family": "closed"}, ["body", "model_family"], "literal_error"),
        ({"tradition": "orthodox"}, ["body", "tradition"], "literal_error"),
        ({"stream": "yes"}, ["body", "stream"], "bool_type"),
    ],
)
def test_bad_fields_get_fastapi_style_details(
    simulator: SimulatorServer, body: dict[str, Any], loc: list[Any], kind: str
) -> None:
    reply = post(simulator, {"messages": MESSAGES, **body})
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert [(d["loc"], d["type"]) for d in detail] == [(loc, kind)]
    assert {"msg", "input"} <= set(detail[0])


def test_body_must_be_a_json_object(simulator: SimulatorServer) -> None:
    reply = HTTP.post(simulator.api_url, content=b'{"messages": [', headers=AUTH)
    assert reply.status_code == 422
    detail = reply.json()["detail"][0]
    assert (detail["type"], detail["loc"][0], detail["msg"]) == (
        "json_invalid",
        "body",
        "JSON decode error",
    )
    assert post(simulator, [MESSAGES]).json()["detail"][0]["type"] == "model_attributes_type"


def test_grounded_fields_are_checked_and_extras_accepted(simulator: SimulatorServer) -> None:
    grounded = f"{simulator.url}/ai/v2/grounded/chat/completions"
    bad = HTTP.post(grounded, json={"messages": MESSAGES, "sources_limit": 11}, headers=AUTH)
    assert bad.json()["detail"][0]["loc"] == ["body", "sources_limit"]
    good = {"messages": MESSAGES, "sources_limit": 3, "rag_publisher": "GlooGrounded", "x": 1}
    assert HTTP.post(grounded, json=good, headers=AUTH).status_code == 200


# -- the stream ---------------------------------------------------------------------------


def test_stream_has_gloos_exact_chunk_shape(simulator: SimulatorServer) -> None:
    response, raw = stream(simulator)
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert b"[DONE]" not in raw
    chunks = chunks_of(raw)
    first, content, last = chunks[0], chunks[1:-1], chunks[-1]
    assert first["choices"][0]["delta"] == {"content": "", "role": "assistant", "tool_calls": None}
    assert first["routing_mechanism"] == "auto_routing"
    for chunk in content:
        assert list(chunk) == CHUNK_KEYS
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["provider"] == "Gloo AI"
        assert chunk["id"] == first["id"] and chunk["id"].startswith("gen-")
        choice = chunk["choices"][0]
        assert list(choice["delta"]) == ["content", "role", "tool_calls"]
        assert choice["finish_reason"] is None and choice["delta"]["content"]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["choices"][0]["native_finish_reason"] == "stop"
    assert last["choices"][0]["delta"] == {}
    usage = last["usage"]
    assert usage["completion_tokens"] == len(content)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert text_of(chunks) == "".join(expected_answer(MESSAGES))


def test_every_completions_path_streams(simulator: SimulatorServer) -> None:
    for path in (
        "/ai/v2/guarded/chat/completions",
        "/ai/v2/chat/completions/grounded",
        "/ai/v2/grounded/chat/completions",
    ):
        _, raw = stream(simulator, url=simulator.url + path)
        assert text_of(chunks_of(raw)) == "".join(expected_answer(MESSAGES))


@pytest.mark.parametrize(
    ("body", "model", "mechanism"),
    [
        ({"model": "gloo-google-gemini-2.5-flash"}, "gloo-google-gemini-2.5-flash", None),
        (
            {"model_family": "anthropic", "auto_routing": False},
            "gloo-anthropic-claude-sonnet-4.5",
            "model_family",
        ),
        ({"auto_routing": True}, "gloo-openai-gpt-5-mini", "auto_routing"),
    ],
)
def test_reported_model_follows_routing(
    simulator: SimulatorServer, body: dict[str, Any], model: str, mechanism: str | None
) -> None:
    chunks = chunks_of(stream(simulator, body)[1])
    assert {c["model"] for c in chunks} == {model}
    assert chunks[-1].get("routing_mechanism") == mechanism


def test_non_streamed_completion(simulator: SimulatorServer) -> None:
    body = post(simulator, {"messages": MESSAGES, "stream": False}).json()
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["message"]["content"] == "".join(expected_answer(MESSAGES))
    assert choice["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == len(expected_answer(MESSAGES))
    assert simulator.stats()["streams_started"] == 0


def test_answers_are_deterministic_and_prompt_dependent(simulator: SimulatorServer) -> None:
    other = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Something else"},
    ]
    first = text_of(chunks_of(stream(simulator)[1]))
    assert first == text_of(chunks_of(stream(simulator)[1]))
    different = text_of(chunks_of(stream(simulator, {"messages": other})[1]))
    assert different != first
    assert different == "".join(expected_answer(other))
    assert expected_answer(MESSAGES, seed=1) != expected_answer(MESSAGES)
    for feature in ("## ", "**", "\n- ", "```python", "](https://", "—", "→", "café", "naïve"):
        assert feature in first


def test_max_tokens_cuts_the_answer_with_length(simulator: SimulatorServer) -> None:
    chunks = chunks_of(stream(simulator, {"max_tokens": 5})[1])
    assert text_of(chunks) == "".join(expected_answer(MESSAGES, max_tokens=5))
    assert len(chunks) == 1 + 5 + 1
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 5


def test_answer_tokens_and_send_done_config() -> None:
    config = SimulatorConfig(tokens_per_second=0, answer_tokens=300, send_done=True, seed=7)
    with SimulatorServer(config) as sim:
        raw = stream(sim)[1]
    assert data_fields(raw)[-1] == "[DONE]"
    tokens = expected_answer(MESSAGES, seed=7, answer_tokens=300)
    assert len(tokens) == 300
    assert text_of(chunks_of(raw)) == "".join(tokens)


@given(st.text())
def test_tokens_always_join_back_to_the_text(text: str) -> None:
    assert "".join(tokenize(text)) == text


@given(st.text(min_size=1, max_size=200), st.integers(0, 5))
def test_default_answers_are_40_to_150_tokens(prompt: str, seed: int) -> None:
    tokens = expected_answer([{"role": "user", "content": prompt}], seed=seed)
    assert 40 <= len(tokens) <= 150
    assert all(tokens)


def test_fast_frames_match_the_shared_encoder() -> None:
    payload = json.dumps({"a": "café → 你好", "b": [1, None]}).encode()
    assert sse_data(payload) == encode_event(payload)


# -- pacing and disconnects ---------------------------------------------------------------


def timed_content(
    sim: SimulatorServer, headers: dict[str, str] | None = None
) -> tuple[float, list[float]]:
    """Seconds from request to headers, and from headers to each content chunk."""
    payload = {"messages": MESSAGES, "stream": True}
    arrivals: list[float] = []
    started = time.monotonic()
    with HTTP.stream("POST", sim.api_url, json=payload, headers=headers or AUTH) as response:
        headers_at = time.monotonic()
        buffer = b""
        for piece in response.iter_raw():
            buffer += piece
            for chunk in chunks_of(buffer.rpartition(b"\n\n")[0] + b"\n\n")[1 + len(arrivals) :]:
                if chunk["choices"][0]["delta"].get("content"):
                    arrivals.append(time.monotonic() - headers_at)
    return headers_at - started, arrivals


def test_pacing_lower_bounds(paced: SimulatorServer) -> None:
    _, arrivals = timed_content(paced)
    assert len(arrivals) == 8
    assert arrivals[0] >= 0.19
    assert arrivals[-1] - arrivals[0] >= 7 * 0.05 * 0.9


def test_slow_headers_and_slow_first_token(paced: SimulatorServer) -> None:
    slow_headers = {**AUTH, "X-Sim-Fault": json.dumps({"kind": "slow_headers", "delay": 0.3})}
    headers_after, _ = timed_content(paced, slow_headers)
    assert headers_after >= 0.29
    slow_first = {**AUTH, "X-Sim-Fault": json.dumps({"kind": "slow_first_token", "delay": 0.4})}
    headers_after, arrivals = timed_content(paced, slow_first)
    assert headers_after < 0.3
    assert arrivals[0] >= 0.39


def test_stall_pauses_then_finishes(paced: SimulatorServer) -> None:
    paced.push_fault({"kind": "stall", "after": 2, "duration": 0.4})
    _, arrivals = timed_content(paced)
    assert len(arrivals) == 8
    assert arrivals[2] - arrivals[1] >= 0.39


def test_client_disconnect_mid_stream_closes_the_stream(paced: SimulatorServer) -> None:
    payload = {"messages": MESSAGES, "stream": True}
    closed_before = paced.stats()["streams_closed"]
    with HTTP.stream("POST", paced.api_url, json=payload, headers=AUTH) as response:
        pieces = response.iter_raw()  # held, so breaking the loop does not close it early
        received = b""
        for piece in pieces:
            received += piece
            if len(data_fields(received)) >= 3:
                break
        time.sleep(0.1)
        assert paced.stats()["streams_open"] == 1
    wait_streams_closed(paced)
    assert paced.stats()["streams_closed"] == closed_before + 1


@pytest.mark.parametrize("kind", ["slow_headers", "slow_first_token"])
def test_client_disconnect_while_waiting_closes_the_stream(
    paced: SimulatorServer, kind: str
) -> None:
    fault = json.dumps({"kind": kind, "delay": 30})
    started = time.monotonic()
    with (
        pytest.raises(httpx.ReadTimeout),
        HTTP.stream(
            "POST",
            paced.api_url,
            json={"messages": MESSAGES, "stream": True},
            headers={**AUTH, "X-Sim-Fault": fault},
            timeout=httpx.Timeout(5, read=0.3),
        ) as response,
    ):
        response.read()
    assert paced.wait_until(lambda s: s["streams_started"] > 0)
    wait_streams_closed(paced)
    assert time.monotonic() - started < 3


# -- faults -------------------------------------------------------------------------------


def test_status_fault_with_documented_body_and_headers(simulator: SimulatorServer) -> None:
    simulator.push_fault(Fault(kind="status", status=429, retry_after=2, ratelimit_reset="1"))
    reply = post(simulator, {"messages": MESSAGES})
    assert reply.status_code == 429
    assert reply.json() == {"error": "Rate limit exceeded", "code": "too_many_requests"}
    assert reply.headers["retry-after"] == "2"
    assert reply.headers["x-ratelimit-reset"] == "1"
    simulator.push_faults([{"kind": "status", "status": 503, "body": "down", "retry_after_ms": 50}])
    reply = post(simulator, {"messages": MESSAGES, "stream": True})
    assert (reply.status_code, reply.text, reply.headers["retry-after-ms"]) == (503, "down", "50")
    assert post(simulator, {"messages": MESSAGES}).status_code == 200


def test_fault_times_and_header_precedence(simulator: SimulatorServer) -> None:
    simulator.push_fault({"kind": "status", "status": 500, "times": 2})
    header = {**AUTH, "X-Sim-Fault": json.dumps({"kind": "status", "status": 403})}
    forbidden = post(simulator, {"messages": MESSAGES}, header)
    assert forbidden.json() == {
        "error": "Forbidden - insufficient permissions",
        "code": "forbidden",
    }
    assert [post(simulator, {"messages": MESSAGES}).status_code for _ in range(3)] == [
        500,
        500,
        200,
    ]
    bad = post(simulator, {"messages": MESSAGES}, {**AUTH, "X-Sim-Fault": "{nope"})
    assert bad.status_code == 400


def test_disconnect_fault_breaks_the_connection(simulator: SimulatorServer) -> None:
    simulator.push_fault({"kind": "disconnect", "after": 3})
    received = b""
    with (
        pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)),
        HTTP.stream(
            "POST", simulator.api_url, json={"messages": MESSAGES, "stream": True}, headers=AUTH
        ) as r,
    ):
        for piece in r.iter_raw():
            received += piece
    assert len(chunks_of(received)) == 1 + 3
    wait_streams_closed(simulator)
    simulator.push_fault({"kind": "disconnect", "after": 3})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        post(simulator, {"messages": MESSAGES})


def test_truncate_ends_cleanly_without_a_finish_chunk(simulator: SimulatorServer) -> None:
    simulator.push_fault({"kind": "truncate", "after": 4})
    chunks = chunks_of(stream(simulator)[1])
    assert len(chunks) == 1 + 4
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)


@pytest.mark.parametrize("end", [False, True])
def test_malformed_line(simulator: SimulatorServer, end: bool) -> None:
    simulator.push_fault({"kind": "malformed", "after": 2, "end": end})
    datas = data_fields(stream(simulator)[1])
    bad = [d for d in datas if not d.endswith("}")]
    assert len(bad) == 1
    assert datas.index(bad[0]) == 1 + 2
    good = [json.loads(d) for d in datas if d is not bad[0]]
    if end:
        assert datas[-1] is bad[0]
    else:
        assert text_of(good) == "".join(expected_answer(MESSAGES))


def test_error_and_content_filter_finishes(simulator: SimulatorServer) -> None:
    simulator.push_fault({"kind": "error", "after": 3, "message": "slow provider"})
    last = chunks_of(stream(simulator)[1])[-1]
    assert last["choices"][0]["finish_reason"] == "error"
    assert last["error"] == {"code": 2001, "name": "PROVIDER_TIMEOUT", "message": "slow provider"}
    simulator.push_fault({"kind": "content_filter", "after": 3})
    chunks = chunks_of(stream(simulator)[1])
    assert len(chunks) == 1 + 3 + 1
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"


def assemble_tool_calls(chunks: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk["choices"][0]["delta"].get("tool_calls") or []:
            call = calls.setdefault(delta["index"], {"name": "", "arguments": ""})
            call["name"] += delta.get("function", {}).get("name", "")
            call["arguments"] += delta.get("function", {}).get("arguments", "")
    return calls


def test_tool_calls_fault_streams_openai_deltas(simulator: SimulatorServer) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    simulator.push_fault({"kind": "tool_calls", "parallel": True})
    chunks = chunks_of(stream(simulator, {"tools": tools})[1])
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    indices = [c["choices"][0]["delta"]["tool_calls"][0]["index"] for c in chunks[1:-1]]
    assert indices[:4] == [0, 1, 0, 1]
    calls = assemble_tool_calls(chunks)
    assert {call["name"] for call in calls.values()} == {"lookup"}
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert json.loads(calls[1]["arguments"])["city"] == "Zürich"


def test_required_tool_choice_answers_with_a_call(simulator: SimulatorServer) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "q": {"type": "string"}}}
    tools = [{"type": "function", "function": {"name": "search", "parameters": schema}}]
    body = post(simulator, {"messages": MESSAGES, "tools": tools, "tool_choice": "required"}).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "search"
    assert json.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {
        "n": 3,
        "q": "café",
    }


def test_done_multiline_and_crlf_keep_the_text(simulator: SimulatorServer) -> None:
    expected = "".join(expected_answer(MESSAGES))
    simulator.push_faults([{"kind": "done"}, {"kind": "multiline"}, {"kind": "crlf"}])
    done, multiline, crlf = (stream(simulator)[1] for _ in range(3))
    assert data_fields(done)[-1] == "[DONE]"
    assert b"event: message\n" in multiline and b"\nid: " in multiline and b"\n: " in multiline
    assert b"\nretry: 3000\n" in multiline
    assert b"\r\n\r\n" in crlf and b"\n" not in crlf.replace(b"\r\n", b"")
    for raw in (done, multiline, crlf):
        assert text_of(chunks_of(raw)) == expected


def test_answer_fault_streams_the_given_text(simulator: SimulatorServer) -> None:
    simulator.push_fault({"kind": "answer", "text": "<b>hi</b> there"})
    assert text_of(chunks_of(stream(simulator)[1])) == "<b>hi</b> there"


def test_oversized_body_is_413(simulator: SimulatorServer) -> None:
    huge = {"messages": [{"role": "user", "content": "x" * (9 * 1024 * 1024)}]}
    assert post(simulator, huge).status_code == 413


def test_fault_round_trips_as_a_dict() -> None:
    fault = Fault.from_dict({"kind": "error", "after": 1, "times": 2})
    assert fault == Fault(kind="error", after=1, times=2)
    assert fault.to_dict() == {"kind": "error", "times": 2, "after": 1}
    with pytest.raises(ValueError, match="invalid fault"):
        Fault.from_dict({"kind": "stall", "after": -1})


async def test_many_concurrent_streams_half_abandoned(paced: SimulatorServer) -> None:
    expected = "".join(expected_answer(MESSAGES, answer_tokens=8))
    payload = {"messages": MESSAGES, "stream": True}
    limits = httpx.Limits(max_connections=None)

    async def one(client: httpx.AsyncClient, abandon: bool) -> str | None:
        async with client.stream("POST", paced.api_url, json=payload, headers=AUTH) as response:
            received = b""
            async for piece in response.aiter_raw():
                received += piece
                if abandon and len(data_fields(received)) >= 3:
                    return None
            return text_of(chunks_of(received))

    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        results = await asyncio.gather(*(one(client, n % 2 == 0) for n in range(200)))
    assert [r for r in results if r is not None] == [expected] * 100
    wait_streams_closed(paced)
