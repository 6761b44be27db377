"""A cut answer continued, through the real ``gloo-stream`` command (issue 24, item 4).

Through a pipe, stdout is the whole answer once, with no mark in it; the seam's dim mark is
on stderr and the summary names the outcome. ``--json`` has a ``continued`` line. On a
terminal (pexpect, replayed through pyte when installed) the mark follows the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from test_cli import COMMAND, run, sim_env

from gloo_stream.simulator import SimulatorConfig, SimulatorServer, expected_answer

PROMPT = "Explain streaming in one paragraph"
TOKENS = expected_answer([{"role": "user", "content": PROMPT}])
ANSWER = "".join(TOKENS)
CUTS = {
    "upstream_error": {"kind": "error", "after": 5},
    "disconnected": {"kind": "disconnect", "after": 5},
    "timeout": {"kind": "stall", "after": 5, "duration": 5},
    "truncated": {"kind": "truncate", "after": 5},
}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    """Continuations repeat their last 16+ characters, as models do: the seam removes it."""
    config = SimulatorConfig(
        tokens_per_second=400, first_token_delay=0.01, continue_repeat_chars=16
    )
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(sim: SimulatorServer) -> None:
    sim.reset()


def env(sim: SimulatorServer, home: Path) -> dict[str, str]:
    # A short read timeout, so the stall style is noticed quickly.
    return sim_env(sim, home, GLOO_READ_TIMEOUT="0.4", GLOO_RETRY_BACKOFF_BASE="0.01")


@pytest.mark.parametrize("reason", list(CUTS))
def test_a_piped_answer_comes_out_whole_with_the_mark_on_stderr(
    sim: SimulatorServer, tmp_path: Path, reason: str
) -> None:
    sim.push_fault(CUTS[reason])
    proc = run(["chat", PROMPT], env(sim, tmp_path), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ANSWER + "\n"  # one answer, every character once, no mark in it
    assert f"↻ continued ({reason})" in proc.stderr
    summary = proc.stderr.strip().splitlines()[-1]
    assert summary.startswith("continued (1 seam) · ") and "finish_reason=stop" in summary


def test_json_lines_have_the_seam_and_the_outcome(sim: SimulatorServer, tmp_path: Path) -> None:
    sim.push_fault(CUTS["truncated"])
    proc = run(["chat", "--json", PROMPT], env(sim, tmp_path), tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    offset = len("".join(TOKENS[:5]))
    seams = [line for line in lines if line["type"] == "continued"]
    assert seams == [
        {
            "type": "continued",
            "n": 1,
            "reason": "truncated",
            "upstream": "primary",
            "offset": offset,
        }
    ]
    deltas = [line for line in lines if line["type"] in ("delta", "continued")]
    at = deltas.index(seams[0])
    assert "".join(d["content"] for d in deltas[:at]) == ANSWER[:offset]  # the mark at the seam
    assert "".join(d["content"] for d in deltas if d["type"] == "delta") == ANSWER
    result = lines[-1]
    assert result["type"] == "result" and result["outcome"] == "continued"
    assert result["text"] == ANSWER and result["continuations"] == 1


def test_the_bound_reached_keeps_the_partial_and_says_cut(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    sim.push_fault({"kind": "disconnect", "after": 9, "times": 3})  # the answer and both tries
    proc = run(["chat", PROMPT], env(sim, tmp_path), tmp_path)
    assert proc.returncode == 5
    partial = proc.stdout.removesuffix("\n")
    assert ANSWER.startswith(partial) and len(partial) > len("".join(TOKENS[:9]))
    assert proc.stderr.count("↻ continued (disconnected)") == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("cut (2 seams) · ")


def test_on_a_terminal_the_mark_follows_the_answer(sim: SimulatorServer, tmp_path: Path) -> None:
    sim.push_fault(CUTS["disconnected"])
    child = pexpect.spawn(
        COMMAND[0],
        [*COMMAND[1:], "chat", PROMPT],
        env={**env(sim, tmp_path), "TERM": "xterm-256color"},
        cwd=str(tmp_path),
        dimensions=(60, 100),
        encoding="utf-8",
        timeout=15,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    output = str(child.before)
    pyte = pytest.importorskip("pyte")
    screen = pyte.HistoryScreen(100, 60, history=500)
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed(output)
    history = ["".join(ch.data for ch in line.values()) for line in screen.history.top]
    lines = [line.rstrip() for line in [*history, *screen.display] if line.strip()]
    marks = [i for i, line in enumerate(lines) if "↻ continued (disconnected)" in line]
    assert len(marks) == 1, lines  # once, for good (the live region's copy is gone)
    assert lines[marks[0]].strip() == "↻ continued (disconnected)"  # a line of its own
    last_word = re.findall(r"\w+", ANSWER)[-1]
    assert any(last_word in line for line in lines[: marks[0]])  # after the whole answer
    summary = [i for i, line in enumerate(lines) if line.startswith("continued (1 seam) · ")]
    assert summary and summary[0] > marks[0]  # the summary (it may wrap) names the outcome
