"""What a user installs works: the sdist and wheel are built as a release would build them
(``python -m build``: the wheel from the sdist), the wheel goes into a clean virtual
environment (no system site-packages, dependencies from the index), and from a folder
outside the checkout the installed ``gloo-stream proxy --offline`` serves a page that
renders markdown in Chromium, and the installed ``gloo-stream chat --offline`` answers.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import venv
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gloo_stream.proxy.routes.vendor import LIBRARIES, SHIPPED_DIR
from gloo_stream.simulator import expected_answer

pytestmark = [pytest.mark.browser, pytest.mark.installed]

ROOT = Path(__file__).resolve().parents[2]
VENDORED = [
    f"gloo_stream/proxy/static/vendor/{relative}"
    for library in LIBRARIES
    for relative in library.shipped_files
]


@dataclass
class Installed:
    """The built distributions and a clean environment with the wheel installed."""

    sdist: Path
    wheel: Path
    build_log: str
    venv: Path
    outside: Path
    """A working folder outside the checkout, with nothing in it."""

    def command(self, name: str) -> str:
        """A console script of the installed package."""
        return str(self.venv / "bin" / name)

    def env(self) -> dict[str, str]:
        """A user's environment: no credentials, no PYTHONPATH, no checkout on any path."""
        return {"PATH": f"{self.venv / 'bin'}:/usr/bin:/bin", "HOME": os.environ["HOME"]}


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the sdist and the wheel, and install the wheel into a new, clean venv."""
    base = tmp_path_factory.mktemp("installed")
    dist = base / "dist"
    # As a release build runs: byte-compiling on (this machine's PYTHONDONTWRITEBYTECODE
    # only adds a "byte-compiling is disabled" warning the project does not control).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    build = _run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], env=env)
    assert build.returncode == 0, build.stdout + build.stderr
    environment = base / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(environment)
    (wheel,) = dist.glob("*.whl")
    install = _run([str(environment / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)])
    assert install.returncode == 0, install.stderr
    outside = base / "elsewhere"
    outside.mkdir()
    (sdist,) = dist.glob("*.tar.gz")
    return Installed(sdist, wheel, build.stdout + build.stderr, environment, outside)


def test_the_build_warns_about_nothing(installed: Installed) -> None:
    warnings = [
        line for line in installed.build_log.splitlines() if re.search(r"warn|deprecat", line, re.I)
    ]
    assert warnings == []


def test_wheel_and_sdist_carry_the_page_libraries_and_their_licences(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        for name in VENDORED:
            assert name in names
            relative = name.removeprefix("gloo_stream/proxy/static/vendor/")
            assert wheel.read(name) == (SHIPPED_DIR / relative).read_bytes()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = wheel.read(metadata).decode()
    assert "License-Expression: MIT AND (Apache-2.0 OR MPL-2.0)" in meta
    assert "fastapi" not in meta.lower()
    assert "License-File: LICENSE" in meta
    with tarfile.open(installed.sdist) as sdist:
        members = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for name in VENDORED:
        assert f"src/{name}" in members


def test_the_installed_package_is_the_one_that_runs(installed: Installed) -> None:
    where = _run(
        [installed.command("python"), "-c", "import gloo_stream; print(gloo_stream.__file__)"],
        cwd=installed.outside,
        env=installed.env(),
    )
    assert Path(where.stdout.strip()).is_relative_to(installed.venv)


def test_installed_chat_answers_offline(installed: Installed) -> None:
    chat = _run(
        [installed.command("gloo-stream"), "chat", "--offline", "hi"],
        cwd=installed.outside,
        env=installed.env(),
    )
    assert chat.returncode == 0, chat.stderr
    assert "".join(expected_answer([{"role": "user", "content": "hi"}])) in chat.stdout
    assert "finish_reason=stop" in chat.stderr


@dataclass
class RunningProxy:
    """The installed proxy in a subprocess, and what it said at start."""

    process: subprocess.Popen[bytes]
    url: str
    startup: list[str]


def _startup_lines(log: Path, process: subprocess.Popen[bytes]) -> list[str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = log.read_text(errors="replace").splitlines()
        if any(line.startswith("  page ") for line in lines):
            return lines
        assert process.poll() is None, log.read_text()
        time.sleep(0.05)
    raise AssertionError(f"no start-up lines in 30 s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def installed_proxy(installed: Installed) -> Iterator[RunningProxy]:
    """``gloo-stream proxy --offline --port 0 --workers 2``, run from outside the checkout."""
    log = installed.outside / "proxy.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                installed.command("gloo-stream"),
                "proxy",
                "--offline",
                "--port",
                "0",
                "--workers",
                "2",
            ],
            cwd=installed.outside,
            env=installed.env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        lines = _startup_lines(log, process)
        url = re.search(r"open (http://\S+)", "\n".join(lines))
        assert url is not None, lines
        yield RunningProxy(process, url.group(1), lines)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_installed_proxy_says_where_it_is_once(installed_proxy: RunningProxy) -> None:
    health = httpx.get(installed_proxy.url + "health", timeout=10)
    assert health.status_code == 200
    text = "\n".join(installed_proxy.startup)
    assert text.count("gloo-stream proxy: open http://127.0.0.1:") == 1
    assert "offline   yes" in text
    assert "workers   2" in text
    assert re.search(
        r"page      marked [\d.]+, DOMPurify [\d.]+ \(shipped with the package\)", text
    )
    assert "chat page:" not in text  # no missing-library warning


def test_the_installed_page_renders_markdown(
    installed_proxy: RunningProxy, context: Any, started: Callable[[Any], None]
) -> None:
    served = httpx.get(installed_proxy.url + "vendor/marked.js", timeout=10)
    assert served.content == (SHIPPED_DIR / "marked/lib/marked.umd.js").read_bytes()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(installed_proxy.url)
    started(page)
    assert page.locator("#markdown-off").is_hidden()
    page.locator("#prompt").fill("Show me markdown")
    page.locator("#prompt").press("Enter")
    turn = page.locator(".turn.assistant").first
    page.wait_for_function(
        "() => document.querySelector('.turn.assistant')?.dataset.state === 'done'",
        timeout=20_000,
    )
    answer = turn.locator(".answer")
    assert answer.locator("strong").count() >= 1
    assert answer.locator("pre > code.language-python").count() == 1
    assert answer.locator("ul > li").count() >= 1
    assert "**" not in answer.text_content()
    assert errors == []
