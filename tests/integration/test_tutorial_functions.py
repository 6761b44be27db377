"""The tutorial's functions against the simulator, configured the tutorial's way (env vars)."""

from __future__ import annotations

import io

import pytest

from gloo_stream import compat
from gloo_stream.errors import AuthenticationError, StreamDisconnectedError
from gloo_stream.simulator import SimulatorServer, expected_answer
from kit import wait_streams_closed

PROMPT = "What is a server-sent event?"
ANSWER = "".join(expected_answer([{"role": "user", "content": PROMPT}]))


@pytest.fixture(autouse=True)
def env(simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    # The conftest already cleared the developer's GLOO_* variables.
    monkeypatch.chdir(str(tmp_path))  # no stray .env
    monkeypatch.setenv("GLOO_API_URL", simulator.api_url)
    monkeypatch.setenv("GLOO_TOKEN_URL", simulator.token_url)
    monkeypatch.setenv("GLOO_CLIENT_ID", "sim-client")
    monkeypatch.setenv("GLOO_CLIENT_SECRET", "sim-secret")


def test_tutorial_flow_with_oauth(simulator: SimulatorServer) -> None:
    token = compat.ensure_valid_token()
    assert compat.ensure_valid_token() == token  # cached
    result = compat.stream_completion(PROMPT, token)
    assert result["text"] == ANSWER
    assert result["finish_reason"] == "stop"
    assert result["token_count"] == len(expected_answer([{"role": "user", "content": PROMPT}]))
    assert result["duration_ms"] > 0
    assert result["interrupted"] is False


def test_get_access_token_returns_the_token_document(simulator: SimulatorServer) -> None:
    data = compat.get_access_token()
    assert set(data) == {"access_token", "expires_in", "token_type"}
    assert data["expires_in"] > 3000
    assert compat.ensure_valid_token() == data["access_token"]


def test_make_streaming_request_lines_parse_like_the_tutorial(simulator: SimulatorServer) -> None:
    token = compat.ensure_valid_token()
    texts = []
    with compat.make_streaming_request(PROMPT, token) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            chunk = compat.parse_sse_line(line)
            if chunk is None or chunk == "[DONE]":
                continue
            assert isinstance(chunk, dict)
            texts.append(compat.extract_token_content(chunk))
    assert "".join(texts) == ANSWER
    wait_streams_closed(simulator)


def test_make_streaming_request_raises_with_tutorial_wording(simulator: SimulatorServer) -> None:
    with pytest.raises(AuthenticationError, match=r"Authentication failed \(401\)"):
        compat.make_streaming_request(PROMPT, "bad-token")


def test_render_stream_to_terminal_prints_the_tutorial_lines(simulator: SimulatorServer) -> None:
    out = io.StringIO()
    result = compat.render_stream_to_terminal(PROMPT, compat.ensure_valid_token(), out=out)
    printed = out.getvalue()
    assert printed.startswith(f"Prompt: {PROMPT}\n\nResponse: {ANSWER}")
    assert printed.endswith(f"[{result['token_count']} tokens, finish_reason=stop]\n")


def test_partial_answer_is_flagged_not_returned_as_whole(simulator: SimulatorServer) -> None:
    simulator.push_fault({"kind": "disconnect", "after": 2, "times": 3})
    with pytest.raises(StreamDisconnectedError) as caught:
        compat.stream_completion(PROMPT, compat.ensure_valid_token())
    assert caught.value.partial.interrupted
    assert caught.value.partial.text


def test_api_key_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLOO_API_KEY", "sim-key")
    assert compat.ensure_valid_token() == "sim-key"
    assert compat.stream_completion(PROMPT, compat.ensure_valid_token())["text"] == ANSWER
