"""The real ``gloo-stream`` command in a subprocess, through pipes, against the simulator.

Each run gets a clean environment (PATH and HOME, plus what the test sets) and a temporary
working directory, so a developer's ``.env`` or exported credentials never leak in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer

SCRIPT = Path(sys.executable).with_name("gloo-stream")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "gloo_stream.cli"]
SECRET = "sim-secret"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    # Fast enough to keep the suite quick, paced enough that tokens really stream.
    with SimulatorServer(SimulatorConfig(tokens_per_second=400, first_token_delay=0.01)) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(sim: SimulatorServer) -> None:
    sim.reset()


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """Only what a test chooses, so the developer's own settings cannot change the result."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **extra}


def sim_env(sim: SimulatorServer, home: Path, **extra: str) -> dict[str, str]:
    settings = {"GLOO_API_URL": sim.api_url, "GLOO_TOKEN_URL": sim.token_url}
    return clean_env(home, **{**settings, "GLOO_API_KEY": "sim-key", **extra})


def run(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        env=env,
        cwd=cwd,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )


def answer(prompt: str, **kwargs: Any) -> str:
    return "".join(expected_answer([{"role": "user", "content": prompt}], **kwargs))


def test_plain_output_is_exactly_the_answer(sim: SimulatorServer, tmp_path: Path) -> None:
    proc = run(["chat", "What is streaming?"], sim_env(sim, tmp_path), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == answer("What is streaming?") + "\n"
    assert "finish_reason=stop" in proc.stderr  # the summary goes to stderr, not stdout
    assert "tokens/s" in proc.stderr


def test_json_lines_parse_and_end_with_the_result(sim: SimulatorServer, tmp_path: Path) -> None:
    proc = run(["chat", "--json", "hello json"], sim_env(sim, tmp_path), tmp_path)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    deltas = [e["content"] for e in events if e["type"] == "delta"]
    result = events[-1]
    assert result["type"] == "result"
    assert result["text"] == "".join(deltas) == answer("hello json")
    assert result["finish_reason"] == "stop"
    assert result["complete"] is True


def test_piped_stdin_is_the_prompt(sim: SimulatorServer, tmp_path: Path) -> None:
    proc = run(["chat", "--max-tokens", "7"], sim_env(sim, tmp_path), tmp_path, "piped words\n")
    assert proc.returncode == 0, proc.stderr
    request = sim.stats()["last_request"]
    assert request["messages"] == [{"role": "user", "content": "piped words"}]
    assert proc.stdout == answer("piped words", max_tokens=7) + "\n"
    assert "finish_reason=length" in proc.stderr


def test_options_reach_the_request(sim: SimulatorServer, tmp_path: Path) -> None:
    args = ["chat", "-s", "Be brief.", "-f", "anthropic", "--tradition", "catholic", "-t", "0.5"]
    proc = run([*args, "hi"], sim_env(sim, tmp_path), tmp_path)
    assert proc.returncode == 0, proc.stderr
    request = sim.stats()["last_request"]
    assert request["messages"][0] == {"role": "system", "content": "Be brief."}
    assert request["model_family"] == "anthropic"
    assert request["tradition"] == "catholic"
    assert request["temperature"] == 0.5


def test_401_exits_3_without_printing_the_key(sim: SimulatorServer, tmp_path: Path) -> None:
    env = sim_env(sim, tmp_path, GLOO_API_KEY="wrong-key-12345")
    proc = run(["chat", "hi"], env, tmp_path)
    assert proc.returncode == 3
    assert "Authentication failed (401): Invalid or expired token" in proc.stderr
    assert "GLOO_API_KEY" in proc.stderr
    assert "wrong-key-12345" not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2


def test_429_exits_4_with_the_wait_hint(sim: SimulatorServer, tmp_path: Path) -> None:
    sim.push_fault({"kind": "status", "status": 429, "retry_after": "7"})
    proc = run(["chat", "hi"], sim_env(sim, tmp_path, GLOO_MAX_RETRIES="0"), tmp_path)
    assert proc.returncode == 4
    assert "Rate limit exceeded (429): Too many requests" in proc.stderr
    assert "wait 7 s" in proc.stderr


def test_429_within_the_retry_budget_is_announced_then_retried(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    sim.push_fault({"kind": "status", "status": 429, "retry_after": "1"})
    proc = run(["chat", "--max-tokens", "4", "hi"], sim_env(sim, tmp_path), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == answer("hi", max_tokens=4) + "\n"
    assert "Rate limit exceeded (429): Too many requests; retrying in 1.0 s" in proc.stderr


def test_disconnect_is_retried_and_the_answer_restarts(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    sim.push_fault({"kind": "disconnect", "after": 3})
    # Today's restart (a cut answer is continued by default: test_cli_continued.py).
    proc = run(["chat", "retry me"], sim_env(sim, tmp_path, GLOO_MAX_CONTINUATIONS="0"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    full = answer("retry me")
    partial = "".join(expected_answer([{"role": "user", "content": "retry me"}])[:3])
    # On a pipe the partial cannot be taken back: it ends its line, the full answer follows.
    assert proc.stdout == f"{partial}\n{full}\n"
    assert "dropped mid-stream" in proc.stderr
    assert "retrying" in proc.stderr
    assert "attempt 2 of 3" in proc.stderr
    assert sim.stats()["requests"] == 2


def test_failure_after_retries_keeps_the_partial(sim: SimulatorServer, tmp_path: Path) -> None:
    sim.push_fault({"kind": "disconnect", "after": 4, "times": 2})
    proc = run(
        ["chat", "--json", "fail me"],
        sim_env(sim, tmp_path, GLOO_MAX_RETRIES="1", GLOO_MAX_CONTINUATIONS="0"),
        tmp_path,
    )
    assert proc.returncode == 5
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["type"] for e in events].count("retry") == 1
    error = events[-1]
    assert error["type"] == "error"
    assert error["error"] == "StreamDisconnectedError"
    tokens = expected_answer([{"role": "user", "content": "fail me"}])
    assert error["partial"]["text"] == "".join(tokens[:4])
    assert error["partial"]["interrupted"] is True


def test_mid_stream_error_keeps_partial_in_plain_mode(sim: SimulatorServer, tmp_path: Path) -> None:
    sim.push_fault({"kind": "error", "after": 3, "code": 2001, "name": "PROVIDER_TIMEOUT"})
    env = sim_env(sim, tmp_path, GLOO_MAX_RETRIES="0", GLOO_MAX_CONTINUATIONS="0")
    proc = run(["chat", "err"], env, tmp_path)
    assert proc.returncode == 5
    assert proc.stdout == "".join(expected_answer([{"role": "user", "content": "err"}])[:3]) + "\n"
    assert "PROVIDER_TIMEOUT" in proc.stderr
    assert "partial answer is kept" in proc.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--temperature", "3"], "--temperature"),
        (["--max-tokens", "0"], "--max-tokens"),
        (["--model-family", "klingon"], "--model-family"),
        (["--timeout", "0"], "--timeout"),
        (["--api-url", "ftp://example.org"], "GLOO_API_URL"),
    ],
)
def test_bad_values_exit_2_before_any_request(
    sim: SimulatorServer, tmp_path: Path, args: list[str], needle: str
) -> None:
    proc = run(["chat", *args, "hi"], sim_env(sim, tmp_path), tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sim.stats()["requests"] == 0


def test_empty_piped_prompt_is_a_usage_error(sim: SimulatorServer, tmp_path: Path) -> None:
    proc = run(["chat"], sim_env(sim, tmp_path), tmp_path, "   \n")
    assert proc.returncode == 2
    assert "prompt is empty" in proc.stderr
    assert sim.stats()["requests"] == 0


def test_no_credentials_says_what_to_set(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    proc = run(["chat", "hi"], clean_env(tmp_path), tmp_path / "elsewhere")
    assert proc.returncode == 3
    assert "GLOO_API_KEY" in proc.stderr
    assert "--offline" in proc.stderr


def test_offline_chat_needs_no_credentials(tmp_path: Path) -> None:
    proc = run(["chat", "--offline", "--max-tokens", "5", "hi"], clean_env(tmp_path), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == answer("hi", max_tokens=5) + "\n"


def test_demo_without_credentials_uses_the_simulator(tmp_path: Path) -> None:
    proc = run(["demo"], clean_env(tmp_path), tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.splitlines()[0].startswith("No Gloo credentials found")
    assert "simulator" in out.splitlines()[0]
    assert "Received " in out and " tokens in " in out and " ms" in out
    assert "Finish reason: stop" in out
    assert "Prompt: " in out and "Response: " in out
    assert "finish_reason=stop]" in out
    # The typed-out answer is the simulator's answer for the demo prompt, token for token.
    from gloo_stream.cli.demo import STREAM_PROMPT

    tokens = expected_answer([{"role": "user", "content": STREAM_PROMPT}])
    assert f"Response: {''.join(tokens)}\n\n[{len(tokens)} tokens, finish_reason=stop]" in out


def test_auth_passes_with_client_credentials(sim: SimulatorServer, tmp_path: Path) -> None:
    env = clean_env(
        tmp_path,
        GLOO_API_URL=sim.api_url,
        GLOO_TOKEN_URL=sim.token_url,
        GLOO_CLIENT_ID="sim-client",
        GLOO_CLIENT_SECRET=SECRET,
    )
    proc = run(["auth"], env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("✓") for line in lines) == 4
    assert "client credentials" in lines[0]
    assert "expires in 60 min" in proc.stdout
    assert "Cached token reused" in proc.stdout
    assert "200 text/event-stream" in proc.stdout
    assert SECRET not in proc.stdout + proc.stderr
    assert sim.stats()["token_requests"] == 1


def test_auth_fails_with_a_wrong_secret(sim: SimulatorServer, tmp_path: Path) -> None:
    env = clean_env(
        tmp_path,
        GLOO_API_URL=sim.api_url,
        GLOO_TOKEN_URL=sim.token_url,
        GLOO_CLIENT_ID="sim-client",
        GLOO_CLIENT_SECRET="not-the-secret-42",
    )
    proc = run(["auth"], env, tmp_path)
    assert proc.returncode == 3
    assert "✗" in proc.stdout
    assert "GLOO_CLIENT_SECRET" in proc.stdout
    assert "not-the-secret-42" not in proc.stdout + proc.stderr
    assert sim.stats()["requests"] == 0  # the endpoint step is skipped after a failure


def test_auth_fails_with_a_wrong_api_key(sim: SimulatorServer, tmp_path: Path) -> None:
    proc = run(["auth"], sim_env(sim, tmp_path, GLOO_API_KEY="bad-key-999"), tmp_path)
    assert proc.returncode == 3
    assert "✓ Credentials found: API key" in proc.stdout
    assert "✗ Authentication failed (401)" in proc.stdout
    assert "bad-key-999" not in proc.stdout + proc.stderr


# -- a server that requires a model (vLLM, Ollama, LLMock): GLOO_MODEL, --model, the hint -----


@pytest.fixture(scope="module")
def model_sim() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(tokens_per_second=400, first_token_delay=0.01, require_model=True)
    with SimulatorServer(config) as server:
        yield server


def test_chat_works_against_a_model_requiring_server_with_only_gloo_model(
    model_sim: SimulatorServer, tmp_path: Path
) -> None:
    model_sim.reset()
    proc = run(["chat", "hi"], sim_env(model_sim, tmp_path, GLOO_MODEL="llama3.1:8b"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == answer("hi") + "\n"
    assert "llama3.1:8b" in proc.stderr  # the summary names the model that answered
    request = model_sim.stats()["last_request"]
    assert request["model"] == "llama3.1:8b"
    assert "auto_routing" not in request


def test_chat_without_gloo_model_gets_the_hint(model_sim: SimulatorServer, tmp_path: Path) -> None:
    proc = run(["chat", "hi"], sim_env(model_sim, tmp_path), tmp_path)
    assert proc.returncode == 5
    assert "API error (422)" in proc.stderr
    assert "--model NAME, or set GLOO_MODEL=NAME" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_chat_model_option_wins_over_gloo_model(model_sim: SimulatorServer, tmp_path: Path) -> None:
    model_sim.reset()
    env = sim_env(model_sim, tmp_path, GLOO_MODEL="llama3.1:8b")
    proc = run(["chat", "--model", "qwen2.5", "hi"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert model_sim.stats()["last_request"]["model"] == "qwen2.5"


def test_demo_works_against_a_model_requiring_server_with_only_gloo_model(
    model_sim: SimulatorServer, tmp_path: Path
) -> None:
    from gloo_stream.cli.demo import STREAM_PROMPT

    model_sim.reset()
    proc = run(["demo"], sim_env(model_sim, tmp_path, GLOO_MODEL="llama3.1:8b"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    # Not Gloo: the banner names the server's host, not "the Gloo API" (issue 22).
    expected = f"Using the server at 127.0.0.1 (GLOO_API_URL={model_sim.api_url})"
    assert first == f"{expected}, model llama3.1:8b (GLOO_MODEL)."
    assert "Finish reason: stop" in proc.stdout
    tokens = expected_answer([{"role": "user", "content": STREAM_PROMPT}])
    assert f"{''.join(tokens)}\n\n[{len(tokens)} tokens, finish_reason=stop]" in proc.stdout
    assert model_sim.stats()["requests"] == 2
    assert model_sim.stats()["last_request"]["model"] == "llama3.1:8b"


def test_demo_without_gloo_model_gets_the_hint_and_model_option_fixes_it(
    model_sim: SimulatorServer, tmp_path: Path
) -> None:
    proc = run(["demo"], sim_env(model_sim, tmp_path), tmp_path)
    assert proc.returncode == 5
    assert "--model NAME, or set GLOO_MODEL=NAME" in proc.stderr
    assert "Traceback" not in proc.stderr
    model_sim.reset()
    proc = run(["demo", "--model", "qwen2.5"], sim_env(model_sim, tmp_path), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].endswith(", model qwen2.5.")
    assert model_sim.stats()["last_request"]["model"] == "qwen2.5"


def test_a_bad_default_routing_setting_exits_2_naming_it(
    model_sim: SimulatorServer, tmp_path: Path
) -> None:
    env = sim_env(model_sim, tmp_path, GLOO_MODEL="m", GLOO_MODEL_FAMILY="openai")
    proc = run(["chat", "hi"], env, tmp_path)
    assert proc.returncode == 2
    assert "set GLOO_MODEL or GLOO_MODEL_FAMILY, not both" in proc.stderr
    proc = run(["demo"], sim_env(model_sim, tmp_path, GLOO_TRADITION="jedi"), tmp_path)
    assert proc.returncode == 2
    assert "GLOO_TRADITION: must be one of" in proc.stderr


def test_proxy_refuses_a_worker_count_that_is_not_one(tmp_path: Path) -> None:
    proc = run(["proxy", "--workers", "zero"], clean_env(tmp_path), tmp_path)
    assert proc.returncode == 2
    assert "--workers must be a whole number from 1 or auto, not 'zero'" in proc.stderr
    assert "Traceback" not in proc.stderr
