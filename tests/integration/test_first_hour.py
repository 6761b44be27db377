"""What a newcomer hits in the first hour (issue 22), through the real ``gloo-stream`` command.

Each run gets a clean environment and a temporary working directory, as in ``test_cli``.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

SCRIPT = Path(sys.executable).with_name("gloo-stream")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "gloo_stream.cli"]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """Only what a test chooses: the developer's own settings cannot change the result."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **extra}


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        env=env,
        cwd=cwd,
        input="",
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port some other program is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.fixture
def without_opentelemetry(tmp_path: Path) -> str:
    """A PYTHONPATH on which ``import opentelemetry`` fails, as if it were not installed."""
    shadow = tmp_path / "shadow" / "opentelemetry"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('opentelemetry is not installed')\n")
    return str(shadow.parent)


def test_traces_without_opentelemetry_are_refused_before_any_announcement(
    tmp_path: Path, without_opentelemetry: str
) -> None:
    env = clean_env(
        tmp_path,
        PYTHONPATH=without_opentelemetry,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318",
    )
    proc = run(["proxy", "--offline", "--port", "0"], env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""  # no "open http://..." nor "traces OTLP/HTTP to ..."
    assert "OpenTelemetry is not installed" in proc.stderr
    assert "pip install 'gloo-stream[otel]'" in proc.stderr
    assert "Unexpected error" not in proc.stderr
    assert "bug" not in proc.stderr


@pytest.mark.parametrize("command", [["proxy", "--offline"], ["simulate"]])
def test_a_port_in_use_is_a_usage_error(tmp_path: Path, busy_port: int, command: list[str]) -> None:
    proc = run([*command, "--port", str(busy_port)], clean_env(tmp_path), tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"127.0.0.1:{busy_port}" in proc.stderr
    assert "already in use" in proc.stderr
    assert "--port" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_bad_timeout_is_refused_echoing_the_value(tmp_path: Path) -> None:
    env = clean_env(tmp_path, GLOO_API_KEY="k", GLOO_READ_TIMEOUT="abc")
    proc = run(["chat", "hi"], env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "GLOO_READ_TIMEOUT" in proc.stderr
    assert "'abc'" in proc.stderr


def test_a_bad_secret_is_named_but_not_echoed(tmp_path: Path) -> None:
    env = clean_env(tmp_path, PROXY_REDIS_URL="http://me:hunter2@cache")
    proc = run(["proxy", "--port", "0"], env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "PROXY_REDIS_URL" in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_upstream_in_api_key_mode_names_only_gloo_api_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/ai/v2/chat/completions"
    env = clean_env(tmp_path, GLOO_API_URL=url, GLOO_API_KEY="k", GLOO_MAX_RETRIES="0")
    proc = run(["chat", "hi"], env, tmp_path)
    assert proc.returncode == 5, proc.stderr
    assert f"Could not reach {url}" in proc.stderr
    assert "check GLOO_API_URL and the network" in proc.stderr
    assert "GLOO_TOKEN_URL" not in proc.stderr  # no token endpoint is used with an API key


@pytest.mark.parametrize("command", [[], ["chat"], ["demo"], ["auth"], ["proxy"], ["simulate"]])
def test_help_at_80_columns_wraps_paragraphs_evenly(tmp_path: Path, command: list[str]) -> None:
    proc = run([*command, "--help"], clean_env(tmp_path, COLUMNS="80"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [line.rstrip() for line in proc.stdout.splitlines()]
    assert all(len(line) <= 80 for line in lines)
    prose = [
        line if line.strip() and not line.startswith("   ") and line[:1] not in "│╭╰" else ""
        for line in lines
    ]
    for line, following in itertools.pairwise(prose):
        # A line continued by more of its paragraph is full: no hard break mid-paragraph.
        if line and following:
            assert len(line) >= 60, f"ragged: {line!r} then {following!r}"


def test_ctrl_c_on_an_offline_proxy_says_its_shutdown_lines_once(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*COMMAND, "proxy", "--offline", "--port", "0"],
        env=clean_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:  # serving once uvicorn says so
            if "Application startup complete" in line:
                break
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rest.count("Shutting down") == 1, rest
    assert rest.count("Finished server process") == 1, rest


def test_sigterm_with_open_streams_and_workers_logs_no_cancellation_tracebacks(
    tmp_path: Path,
) -> None:
    port = closed_port()
    proc = subprocess.Popen(
        [*COMMAND, "proxy", "--offline", "--port", str(port), "--workers", "2"],
        env=clean_env(tmp_path, PROXY_SHUTDOWN_GRACE="0.2"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
    )
    assert proc.stdout is not None
    lines: list[str] = []
    both_up = threading.Event()

    def read_log() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if sum("Application startup complete" in seen for seen in lines) == 2:
                both_up.set()

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    streams = 4
    bodies = [b""] * streams
    all_open = threading.Barrier(streams + 1, timeout=30)

    def stream(index: int) -> None:
        body = {"messages": [{"role": "user", "content": f"a long answer {index}"}]}
        with (
            httpx.Client(timeout=30) as client,
            client.stream("POST", f"http://127.0.0.1:{port}/api/stream", json=body) as response,
        ):
            pieces = response.iter_raw()
            bodies[index] += next(pieces)  # the answer has begun
            all_open.wait()
            for piece in pieces:
                bodies[index] += piece

    try:
        assert both_up.wait(60), "".join(lines)
        clients = [threading.Thread(target=stream, args=(i,)) for i in range(streams)]
        for client in clients:
            client.start()
        all_open.wait()
        proc.send_signal(signal.SIGTERM)
        for client in clients:
            client.join(30)
        proc.wait(30)
        reader.join(5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = "".join(lines)
    assert proc.returncode == 0, log
    assert all(b"server_shutdown" in body for body in bodies), bodies  # each ended cleanly
    assert "Exception in ASGI application" not in log, log
    assert "CancelledError" not in log, log
