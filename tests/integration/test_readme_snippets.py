"""Every Python block of the README runs, as written, so a snippet cannot rot (issue 22).

Library blocks read their settings from the environment, which points them at the simulator.
A block that talks to the proxy at its default address (127.0.0.1:3001) gets a proxy the test
starts on a free port, the address swapped in; its upstream requires a model (as vLLM, Ollama
or LLMock do), so a block that only works against Gloo fails here. A block that truly cannot
run here is marked in the README, on the line before it, with
``<!-- readme-snippet: skip REASON -->``; such marks must say why, and stay rare.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gloo_stream.simulator import SimulatorConfig, SimulatorServer
from gloo_stream.testing import ProxyServer, settings_for

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(
    r"(?:<!-- readme-snippet: (?P<mark>[^\n]*?) -->\n)?```python\n(?P<code>.*?)^```", re.S | re.M
)
PROXY_DEFAULT = "127.0.0.1:3001"
MOST_SKIPS = 1


def readme_blocks() -> list[tuple[int, str | None, str]]:
    """Each Python block: its line in the README, its mark (None when unmarked), its code."""
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("code"))
        blocks.append((line, match.group("mark"), match.group("code")))
    return blocks


BLOCKS = readme_blocks()


def test_the_readme_has_its_blocks_and_few_skips() -> None:
    # The library (sync, async), the OpenAI SDK through the proxy, gloo_stream.testing.
    assert len(BLOCKS) >= 4, "the pattern no longer finds the README's Python blocks"
    skips = [mark for _, mark, _ in BLOCKS if mark is not None]
    assert len(skips) <= MOST_SKIPS, skips
    for mark in skips:
        assert re.fullmatch(r"skip \S.{10,}", mark), f"a skip must say why: {mark!r}"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(tokens_per_second=0, first_token_delay=0)) as server:
        yield server


@pytest.fixture(scope="module")
def needs_model() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(tokens_per_second=0, first_token_delay=0, require_model=True)
    with SimulatorServer(config) as server:
        yield server


@pytest.mark.parametrize(
    ("line", "mark", "code"), BLOCKS, ids=[f"README.md:{line}" for line, _, _ in BLOCKS]
)
def test_a_readme_block_runs(
    sim: SimulatorServer,
    needs_model: SimulatorServer,
    tmp_path: Path,
    line: int,
    mark: str | None,
    code: str,
) -> None:
    if mark is not None:
        assert mark.startswith("skip "), f"unknown mark {mark!r} at README.md:{line}"
        pytest.skip(f"README.md:{line} is marked: {mark}")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "GLOO_API_URL": sim.api_url,
        "GLOO_TOKEN_URL": sim.token_url,
        "GLOO_API_KEY": "sim-key",
    }
    upstream = needs_model if PROXY_DEFAULT in code else sim
    before = upstream.stats()["requests"]
    if PROXY_DEFAULT in code:
        with ProxyServer(settings_for(needs_model, gloo_model="llama3.1")) as proxy:
            proc = _run(code.replace(PROXY_DEFAULT, f"{proxy.host}:{proxy.port}"), env, tmp_path)
    else:
        proc = _run(code, env, tmp_path)
    assert proc.returncode == 0, f"README.md:{line} failed:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    assert proc.stdout.strip(), f"README.md:{line} printed nothing"
    if "gloo_stream.testing" not in code:  # that block brings its own simulator
        reached = upstream.stats()["requests"] > before
        assert reached, f"README.md:{line} never reached the simulator"


def _run(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
