"""The real ``gloo-stream`` command on a pseudo-terminal (pexpect), against the simulator.

These check what only a terminal shows: tokens drawn while the stream is still open, the
spinner before the first token, Ctrl-C closing the upstream connection at once, and the
interactive session keeping its history across turns.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer
from kit import wait_streams_closed

SCRIPT = Path(sys.executable).with_name("gloo-stream")
COMMAND, BASE_ARGS = (
    (str(SCRIPT), []) if SCRIPT.exists() else (sys.executable, ["-m", "gloo_stream.cli"])
)
PROMPT = "› "  # noqa: RUF001  (the interactive prompt's glyph)


@pytest.fixture(scope="module")
def slow() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(tokens_per_second=20, first_token_delay=0.05)) as server:
        yield server


@pytest.fixture(scope="module")
def brisk() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(tokens_per_second=150, first_token_delay=0.01)) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(slow: SimulatorServer, brisk: SimulatorServer) -> None:
    slow.reset()
    brisk.reset()


def spawn(sim: SimulatorServer, args: list[str], home: Path, rows: int = 24) -> pexpect.spawn[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TERM": "xterm-256color",
        "GLOO_API_URL": sim.api_url,
        "GLOO_API_KEY": "sim-key",
    }
    return pexpect.spawn(
        COMMAND,
        [*BASE_ARGS, *args],
        env=env,
        cwd=str(home),
        dimensions=(rows, 80),
        encoding="utf-8",
        timeout=15,
    )


def title_word(prompt: str) -> str:
    """A word of the answer's heading (tokens 0 and 1 are the '#' marks)."""
    tokens = expected_answer([{"role": "user", "content": prompt}])
    return tokens[2].strip()


def test_tokens_are_drawn_while_the_stream_is_open(slow: SimulatorServer, tmp_path: Path) -> None:
    slow.push_fault({"kind": "slow_first_token", "delay": 0.8})
    child = spawn(slow, ["chat", "--max-tokens", "25", "live tokens"], tmp_path)
    child.expect("waiting for the first token")  # the spinner
    child.expect(re.escape(title_word("live tokens")))
    # The word is on screen and the server is still streaming the rest of the answer.
    assert slow.stats()["streams_open"] == 1
    child.expect("finish_reason=length")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_c_stops_the_answer_and_closes_the_stream(
    slow: SimulatorServer, tmp_path: Path
) -> None:
    child = spawn(slow, ["chat", "stop me"], tmp_path)
    child.expect(re.escape(title_word("stop me")))
    assert slow.stats()["streams_open"] == 1
    child.sendintr()
    wait_streams_closed(slow, timeout=1.0)
    child.expect("Stopped")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert slow.stats()["streams_closed"] == 1


def test_interactive_session_keeps_history(brisk: SimulatorServer, tmp_path: Path) -> None:
    child = spawn(brisk, ["chat", "--max-tokens", "12"], tmp_path)
    child.expect(PROMPT)
    child.sendline("/system Answer briefly.")
    child.expect("System prompt set")
    child.expect(PROMPT)
    child.sendline("first question")
    child.expect("finish_reason=length")
    child.expect(PROMPT)
    child.sendintr()  # Ctrl-C at the prompt clears the line; the session goes on
    child.expect(PROMPT)
    child.sendline("second question")
    child.expect("finish_reason=length")
    child.expect(PROMPT)
    first = "".join(expected_answer([{"role": "user", "content": "first question"}])[:12])
    assert brisk.stats()["last_request"]["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": first},
        {"role": "user", "content": "second question"},
    ]
    child.sendline("/reset")
    child.expect("Conversation cleared")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_interactive_ctrl_c_keeps_the_partial_marked_as_cut(
    slow: SimulatorServer, tmp_path: Path
) -> None:
    child = spawn(slow, ["chat"], tmp_path)
    child.expect(PROMPT)
    child.sendline("cut me off")
    child.expect(re.escape(title_word("cut me off")))
    child.sendintr()
    child.expect("Stopped")
    child.expect(PROMPT)  # still in the session
    wait_streams_closed(slow, timeout=1.0)
    child.sendline("/model gloo-openai-gpt-5-mini")
    child.expect("Routing: model gloo-openai-gpt-5-mini")
    child.expect(PROMPT)
    slow.push_fault({"kind": "status", "status": 401})  # answers at once; history is sent
    child.sendline("go on")
    child.expect("Authentication failed")
    child.expect(PROMPT)
    request = slow.stats()["last_request"]
    assert request["model"] == "gloo-openai-gpt-5-mini"
    cut = request["messages"][1]
    assert cut["role"] == "assistant"
    assert cut["content"].startswith("## ")
    assert cut["content"].endswith("[answer cut off: stopped by the user]")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def run_to_end(sim: SimulatorServer, args: list[str], home: Path, rows: int) -> str:
    child = spawn(sim, args, home, rows=rows)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    return str(child.before)


def test_long_answer_is_never_cropped(brisk: SimulatorServer, tmp_path: Path) -> None:
    """The newest text stays visible: finished blocks settle above the live region.

    Without that, a live region taller than the screen is cut to its top rows and rich draws
    a centred "..." where the new tokens should be.
    """
    output = run_to_end(brisk, ["chat", "no repeats"], tmp_path, rows=8)
    assert not re.search(r" {20}\.\.\. {20}", output)
    assert "finish_reason=stop" in output


def test_long_answer_lines_are_not_repeated(brisk: SimulatorServer, tmp_path: Path) -> None:
    """Replays the bytes through a terminal emulator (pyte, when installed)."""
    pyte = pytest.importorskip("pyte")
    rows = 8
    output = run_to_end(brisk, ["chat", "no repeats"], tmp_path, rows=rows)
    screen = pyte.HistoryScreen(80, rows, history=500)
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed(output)
    history = ["".join(ch.data for ch in line.values()) for line in screen.history.top]
    lines = [line.strip() for line in [*history, *screen.display] if line.strip()]
    assert len(lines) == len(set(lines)), lines
    assert lines[0].startswith(title_word("no repeats"))
    assert any("finish_reason=stop" in line for line in lines)


def test_grounded_sources_follow_the_answer_and_reasoning_is_shown_apart(
    brisk: SimulatorServer, tmp_path: Path
) -> None:
    """Issue 25 on a terminal: the thinking drawn apart (a dim count line once the answer
    starts), the numbered sources below the answer with their URLs."""
    child = spawn(
        brisk,
        ["chat", "--grounded", "--sources", "2", "--model", "sim-reasoning", "What is hope?"],
        tmp_path,
    )
    child.expect(r"thought for \d+ tokens")
    child.expect("Sources:")
    child.expect(r"\[1\] \S")
    child.expect(re.escape("https://example.org/gloo/"))
    child.expect(r"\[2\] ")
    child.expect("finish_reason=stop")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert brisk.stats()["last_request"]["include_citations"] is True
