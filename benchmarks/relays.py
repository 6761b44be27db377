"""The processes of the relay benchmark: a stamping upstream and the relays under test.

Each runs in its own process on loopback and is stopped when its block ends:
- the stamping upstream (``benchmarks/stamping_upstream.py``: Gloo-format SSE whose every
  token is the wall-clock nanosecond it was written, on a fixed schedule per stream);
- ``proxy``: gloo-stream's proxy, one uvicorn worker, as ``gloo-stream proxy`` runs it
  (``benchmarks/proxy_relay.py``); ``proxy-2w``: the same with two workers
  (``--workers auto`` on this machine); ``proxy-before``: the proxy's code as it was at
  ``BEFORE`` (issue 13's starting point, extracted from git), so today's and the new
  figures come from the same run; ``proxy-asyncio``: the stdlib event loop and h11;
- ``nginx``: Debian's nginx, one worker, ``proxy_buffering off``: the near-physical limit;
- ``tutorial``: Flask + ``requests``, one thread per stream (``benchmarks/tutorial_relay.py``).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.simproc import free_port

PATH = "/api/stream"
BEFORE = "d73203b"  # main when issue 27 began (continuation, redaction, bounds all landed)
# Open files for the benchmark and everything it starts (inherited): room for levels above
# 9,000 streams, where a relay holds two descriptors per stream.
OPEN_FILES = 65536
UPSTREAM_PATH = "/ai/v2/chat/completions"
TICK = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent  # where ``python -m benchmarks.*`` resolves
RELAY_NAMES = {
    "proxy": "gloo-stream proxy",
    "proxy-2w": "gloo-stream proxy, 2 workers",
    "proxy-before": "gloo-stream proxy before issue 27",
    "proxy-asyncio": "gloo-stream proxy (asyncio + h11)",
    "nginx": "nginx",
    "tutorial": "tutorial relay",
}

NGINX_CONF = """
user root;
worker_processes 1;
worker_rlimit_nofile {files};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections {connections}; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location {path} {{
            proxy_pass http://127.0.0.1:{upstream}{upstream_path};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Block until something accepts connections on ``port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port}") from None
            time.sleep(0.05)


@contextmanager
def process(args: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[int]:
    """Run a server process until the block ends; yields its pid."""
    proc = subprocess.Popen(
        args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port, proc)
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def upstream(tps: float) -> Iterator[int]:
    """A stamping upstream at ``tps`` tokens/s per stream; yields its port."""
    port = free_port()
    args = [sys.executable, "-m", "benchmarks.stamping_upstream", str(port), str(tps)]
    with process(args, port):
        yield port


def proxy_env(upstream_port: int, proxy_port: int) -> dict[str, str]:
    """The proxy's settings: pointed at the upstream, limits off (the load is one client)."""
    return {
        **os.environ,
        "GLOO_API_URL": f"http://127.0.0.1:{upstream_port}{UPSTREAM_PATH}",
        "GLOO_API_KEY": "bench-key",
        "PROXY_PORT": str(proxy_port),
        "PROXY_RATE_LIMIT": "",
        "PROXY_MAX_STREAMS_PER_CLIENT": "0",
        "PROXY_MAX_UPSTREAM_STREAMS": "0",
        "PROXY_SHUTDOWN_GRACE": "0",
    }


@contextmanager
def relay(kind: str, upstream_port: int) -> Iterator[tuple[int, int]]:
    """Start one relay in front of the upstream; yields (port, pid)."""
    port = free_port()
    if kind.startswith("proxy"):
        loop = "asyncio" if kind == "proxy-asyncio" else "auto"
        workers = "2" if kind == "proxy-2w" else "1"
        args = [sys.executable, "-m", "benchmarks.proxy_relay", loop, workers]
        env = proxy_env(upstream_port, port)
        if kind == "proxy-before":
            env["PYTHONPATH"] = str(source_before() / "src")
        with process(args, port, env) as pid:
            yield port, pid
    elif kind == "tutorial":
        target = f"http://127.0.0.1:{upstream_port}{UPSTREAM_PATH}"
        args = [sys.executable, "-m", "benchmarks.tutorial_relay", str(port), target]
        with process(args, port) as pid:
            yield port, pid
    elif kind == "nginx":
        with nginx(port, upstream_port) as pid:
            yield port, pid
    else:
        raise ValueError(f"unknown relay {kind!r}")


def source_before() -> Path:
    """The tree's ``src/`` at ``BEFORE``, extracted once per run into a temp directory."""
    target = Path(tempfile.gettempdir()) / f"gloo-stream-src-{BEFORE}"
    if not (target / "src" / "gloo_stream").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", BEFORE, "src"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def raise_open_files() -> int:
    """Raise this process's open-files limit (soft and hard) as far as allowed; the soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (OPEN_FILES, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(limit, soft), max(limit, hard)))
            break
        except (ValueError, OSError):
            continue  # raising the hard limit needs root (CAP_SYS_RESOURCE)
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@contextmanager
def nginx(port: int, upstream_port: int) -> Iterator[int]:
    """nginx in the foreground, its config in a temp dir; yields the master's pid."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as tmp:
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                dir=tmp,
                port=port,
                path=PATH,
                upstream=upstream_port,
                upstream_path=UPSTREAM_PATH,
                files=OPEN_FILES,
                connections=OPEN_FILES - 100,
            )
        )
        args = [binary, "-p", tmp, "-c", str(conf), "-g", "daemon off;"]
        with process(args, port) as pid:
            yield pid


def family(pid: int) -> list[int]:
    """The process and its direct children (nginx's workers, for one)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                pids.append(int(entry))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def rss_bytes(pids: list[int]) -> int:
    """Resident memory of these processes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total
