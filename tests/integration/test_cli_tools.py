"""``gloo-stream demo``'s tool round and ``chat --tools PATH``: subprocesses and a terminal."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer
from kit import environment_without_settings

SCRIPT = Path(sys.executable).with_name("gloo-stream")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "gloo_stream.cli"]
TOOLS = '''
from typing import Annotated


def get_weather(city: Annotated[str, "The city"]) -> str:
    """The weather in a city."""
    with open("ran.txt", "a") as ran:
        ran.write(city + "\\n")
    return f"rainy in {city}"


def _private(x: int) -> int:
    return x
'''
WEATHER = "What is the weather in Paris?"
ANSWER = "Thanks for waiting: get_weather said rainy in Paris."


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(tokens_per_second=200, first_token_delay=0.01)
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture
def tools_file(tmp_path: Path, sim: SimulatorServer) -> Path:
    sim.reset()
    path = tmp_path / "my_tools.py"
    path.write_text(TOOLS)
    return path


def env_for(sim: SimulatorServer, home: Path) -> dict[str, str]:
    env = environment_without_settings()
    env.update({"HOME": str(home), "GLOO_API_URL": sim.api_url, "GLOO_API_KEY": "sim-key"})
    return env


def run(args: list[str], sim: SimulatorServer, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        env=env_for(sim, home),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def ran(home: Path) -> list[str]:
    path = home / "ran.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_demo_shows_a_tool_round(tmp_path: Path) -> None:
    env = environment_without_settings()
    env["HOME"] = str(tmp_path)
    proc = subprocess.run(
        [*COMMAND, "demo", "--offline"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    part = out[out.index("── 3. Tool use") :]
    assert '⚙ get_weather({"city":"Paris"})' in part
    assert '✓ get_weather, arguments complete:\n  {\n    "city": "Paris"\n  }' in part
    assert "↳ get_weather → 13 °C and clear in Paris" in part
    assert "Response: Thanks for waiting: get_weather said 13 °C and clear in Paris." in part
    assert "[1 tool call(s) run," in part


def test_chat_tools_yes_runs_the_call_and_stdout_is_only_the_answer(
    sim: SimulatorServer, tools_file: Path, tmp_path: Path
) -> None:
    proc = run(["chat", "--tools", str(tools_file), "--yes", WEATHER], sim, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ANSWER + "\n"
    assert '⚙ get_weather({"city":"Paris"})' in proc.stderr
    assert "↳ get_weather → rainy in Paris" in proc.stderr
    assert ran(tmp_path) == ["Paris"]
    sent = sim.stats()["last_request"]
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]  # not _private


def test_chat_tools_json_emits_call_deltas_the_whole_call_and_the_result(
    sim: SimulatorServer, tools_file: Path, tmp_path: Path
) -> None:
    proc = run(["chat", "--tools", str(tools_file), "--yes", "--json", WEATHER], sim, tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    deltas = [x for x in lines if x["type"] == "tool_call" and "arguments_delta" in x]
    assert len(deltas) > 2
    assert {(d["index"], d["name"]) for d in deltas} == {(0, "get_weather")}
    assert "".join(d["arguments_delta"] for d in deltas) == '{"city":"Paris"}'
    [whole] = [x for x in lines if x["type"] == "tool_call" and "arguments" in x]
    assert whole == {
        "type": "tool_call",
        "index": 0,
        "id": deltas[0]["id"],
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
        "complete": True,
        "valid": True,
        "error": None,
    }
    [result_line] = [x for x in lines if x["type"] == "tool_result"]
    assert result_line["content"] == "rainy in Paris"
    assert lines[-1]["type"] == "result"
    assert lines[-1]["text"] == ANSWER
    assert lines[-1]["tool_results"][0]["arguments"] == {"city": "Paris"}


def test_chat_tools_reports_a_call_whose_arguments_are_not_json(
    sim: SimulatorServer, tools_file: Path, tmp_path: Path
) -> None:
    sim.push_fault({"kind": "tool_calls", "function": "get_weather", "arguments": '{"city": "Pa'})
    proc = run(["chat", "--tools", str(tools_file), "--yes", "hello"], sim, tmp_path)
    assert "✗ get_weather: arguments are not valid JSON" in proc.stderr
    assert "not run" in proc.stderr
    assert ran(tmp_path) == []


def test_chat_tools_without_a_terminal_needs_yes(
    sim: SimulatorServer, tools_file: Path, tmp_path: Path
) -> None:
    proc = run(["chat", "--tools", str(tools_file), WEATHER], sim, tmp_path)
    assert proc.returncode == 2
    assert "stdin is not a terminal to ask on" in proc.stderr
    assert "Add --yes" in proc.stderr
    assert sim.stats()["requests"] == 0


def test_chat_tools_file_problems_are_usage_errors(sim: SimulatorServer, tmp_path: Path) -> None:
    missing = run(["chat", "--tools", "nope.py", "--yes", "hi"], sim, tmp_path)
    assert missing.returncode == 2
    assert "nope.py: no such file" in missing.stderr
    (tmp_path / "empty.py").write_text("X = 1\n")
    empty = run(["chat", "--tools", "empty.py", "--yes", "hi"], sim, tmp_path)
    assert empty.returncode == 2
    assert "defines no public function" in empty.stderr
    (tmp_path / "star.py").write_text("def f(*args: int) -> int:\n    return 1\n")
    star = run(["chat", "--tools", "star.py", "--yes", "hi"], sim, tmp_path)
    assert star.returncode == 2
    assert "*args cannot be described" in star.stderr
    assert "Traceback" not in missing.stderr + empty.stderr + star.stderr
    assert sim.stats()["requests"] == 0


def spawn(sim: SimulatorServer, args: list[str], home: Path) -> pexpect.spawn[str]:
    env = env_for(sim, home)
    env["TERM"] = "xterm-256color"
    return pexpect.spawn(
        COMMAND[0],
        [*COMMAND[1:], *args],
        env=env,
        cwd=str(home),
        dimensions=(30, 100),
        encoding="utf-8",
        timeout=15,
    )


def test_terminal_asks_before_running_and_the_answer_goes_on(
    sim: SimulatorServer, tools_file: Path, tmp_path: Path
) -> None:
    child = spawn(sim, ["chat", "--tools", str(tools_file), WEATHER], tmp_path)
    child.expect_exact('Run get_weather({"city": "Paris"})? [y/N]')
    assert ran(tmp_path) == []  # nothing runs before the answer
    child.sendline("y")
    child.expect_exact("rainy in Paris")
    child.expect("finish_reason=stop")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert ran(tmp_path) == ["Paris"]


def test_terminal_no_declines_and_the_model_is_told(
    sim: SimulatorServer, tools_file: Path, tmp_path: Path
) -> None:
    child = spawn(sim, ["chat", "--tools", str(tools_file), WEATHER], tmp_path)
    child.expect_exact("[y/N]")
    child.sendline("n")
    child.expect_exact("declined")
    child.expect(pexpect.EOF)
    child.close()
    assert ran(tmp_path) == []
    assert sim.stats()["last_request"]["messages"][-1]["content"] == (
        "The user declined to run this tool call."
    )
