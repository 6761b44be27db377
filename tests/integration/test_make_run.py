"""``make run`` on a fresh clone installs only what the demo needs (issue 22 item 8).

``make -n`` prints what a target would run without running it; a venv path that does not
exist stands for the fresh clone.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def planned(target: str, venv: Path) -> str:
    proc = subprocess.run(
        ["make", "--no-print-directory", "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout


def test_make_run_installs_the_runtime_only_with_progress(tmp_path: Path) -> None:
    plan = planned("run", tmp_path / "fresh-venv")
    installs = [line for line in plan.splitlines() if "pip install" in line]
    assert installs, plan
    assert all("[dev]" not in line for line in installs), installs  # no mypy, Playwright...
    assert all(" -q" not in line for line in installs), installs  # progress is shown
    assert "-e ." in installs[0]
    assert plan.rstrip().endswith("gloo-stream demo")


def test_the_test_targets_still_install_the_dev_toolchain(tmp_path: Path) -> None:
    plan = planned("lint", tmp_path / "fresh-venv")
    assert "-e '.[dev]'" in plan
