"""The interactive chat's advice, where it is read (issue 22 item 7): on a pseudo-terminal."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer

SCRIPT = Path(sys.executable).with_name("gloo-stream")
COMMAND, BASE_ARGS = (
    (str(SCRIPT), []) if SCRIPT.exists() else (sys.executable, ["-m", "gloo_stream.cli"])
)
PROMPT = "› "  # noqa: RUF001  (the interactive prompt's glyph)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def needs_model() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(tokens_per_second=200, first_token_delay=0.01, require_model=True)
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture(scope="module")
def silent() -> Iterator[SimulatorServer]:
    """Headers at once, the first token only after a minute: Ctrl-C lands before it."""
    with SimulatorServer(SimulatorConfig(first_token_delay=60)) as server:
        yield server


def spawn(sim: SimulatorServer, args: list[str], home: Path, **env: str) -> pexpect.spawn[str]:
    return pexpect.spawn(
        COMMAND,
        [*BASE_ARGS, *args],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "TERM": "xterm-256color",
            "GLOO_API_URL": sim.api_url,
            "GLOO_API_KEY": "sim-key",
            **env,
        },
        cwd=str(home),
        dimensions=(24, 100),
        encoding="utf-8",
        timeout=15,
    )


def leave(child: pexpect.spawn[str]) -> None:
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_after_model_auto_the_hint_is_a_chat_command(
    needs_model: SimulatorServer, tmp_path: Path
) -> None:
    child = spawn(needs_model, ["chat"], tmp_path, GLOO_MODEL="llama3.1")
    child.expect(PROMPT)
    child.sendline("/model auto")
    child.expect("Routing: auto")
    child.expect(PROMPT)
    child.sendline("hello")
    child.expect(PROMPT)
    refused = str(child.before)
    assert "requires a model" in refused
    assert "/model NAME" in refused
    assert "/model default (llama3.1)" in refused
    assert "--model" not in refused  # an option of a command already running
    leave(child)


def test_without_gloo_model_the_hint_says_model_name(
    needs_model: SimulatorServer, tmp_path: Path
) -> None:
    child = spawn(needs_model, ["chat"], tmp_path)
    child.expect(PROMPT)
    child.sendline("hello")
    child.expect(PROMPT)
    refused = str(child.before)
    assert "type /model NAME" in refused
    assert "add --model" not in refused
    leave(child)


def test_model_default_means_gloo_model_as_on_the_proxy(
    needs_model: SimulatorServer, tmp_path: Path
) -> None:
    needs_model.reset()
    child = spawn(needs_model, ["chat", "--model", "qwen2.5"], tmp_path, GLOO_MODEL="llama3.1")
    child.expect(PROMPT)
    child.sendline("/model default")
    child.expect(r"Routing: model llama3\.1 \(GLOO_MODEL\)")
    child.expect(PROMPT)
    child.sendline("hello")
    child.expect("tokens")  # the summary: the answer came
    child.expect(PROMPT)
    assert needs_model.stats()["last_request"]["model"] == "llama3.1"  # not "default"
    leave(child)


def test_ctrl_c_before_the_first_token_does_not_claim_a_partial(
    silent: SimulatorServer, tmp_path: Path
) -> None:
    child = spawn(silent, ["chat", "hello"], tmp_path)
    assert silent.wait_until(lambda stats: stats["streams_open"] == 1, timeout=10)
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    said = ANSI.sub("", str(child.before))
    assert "Stopped (Ctrl-C) before the first token: nothing arrived." in said
    assert "partial answer is kept" not in said
    assert child.exitstatus == 130


@pytest.fixture(scope="module")
def brisk() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(tokens_per_second=400, first_token_delay=0.01)) as server:
        yield server


def screen_lines(text: str) -> list[str]:
    return [line.rstrip() for line in ANSI.sub("", text).replace("\r", "").split("\n")]


def test_the_banner_and_summary_wrap_between_words_at_100_columns(
    brisk: SimulatorServer, tmp_path: Path
) -> None:
    model = "gloo-anthropic-claude-sonnet-with-a-name-long-enough-to-need-a-second-line"
    child = spawn(brisk, ["chat", "--model", model], tmp_path)
    child.expect(PROMPT)
    banner = screen_lines(str(child.before))
    child.sendline("hello")
    child.expect(PROMPT)
    summary = [line for line in screen_lines(str(child.before)) if line]
    leave(child)
    # Each line fits the 100 columns: the terminal never has to cut a word in two.
    assert banner and all(len(line) <= 100 for line in banner), banner
    assert (
        " ".join(banner).split()
        == (
            f"gloo-stream chat · routing: model {model} · /help for commands · "
            "Ctrl-C stops an answer · Ctrl-D leaves"
        ).split()
    )
    tail = summary[-3:]
    assert all(len(line) <= 100 for line in tail), tail
    assert model in " ".join(tail).split()  # the model name whole, not cut
