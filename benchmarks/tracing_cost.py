"""The proxy's CPU per relayed event with tracing off and on, in the same run.

Three processes on loopback: the simulator (unpaced, ``ANSWER_TOKENS`` tokens an answer),
the proxy (``gloo-stream proxy``), and this load generator. The same load (``STREAMS``
streams, ``CONCURRENCY`` at a time, through ``/v1/chat/completions``) runs through a proxy
with no ``OTEL_*`` set, then through one exporting OTLP/HTTP to a sink on loopback that
accepts and discards what it is sent, alternating ``ROUNDS`` times. CPU per event is the
proxy process's CPU time (user + system, from ``/proc``) over the load, divided by the
events it relayed; medians over the rounds are reported. ``--baseline-src DIR`` adds a third
proxy in each round, run from another checkout's ``src`` (e.g. the main branch before
tracing existed), so "off" can be compared with no tracing code at all.

Run: ``.venv/bin/python -m benchmarks.tracing_cost [--streams N] [--tokens M]
[--baseline-src DIR]`` (prints JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from benchmarks.simproc import free_port, simulator_process

STREAMS = 400
ANSWER_TOKENS = 100
CONCURRENCY = 20
ROUNDS = 3
_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) process ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@contextlib.contextmanager
def otlp_sink() -> Iterator[tuple[str, list[int]]]:
    """An OTLP/HTTP endpoint that answers 200 to every export; yields (url, sizes seen)."""
    sizes: list[int] = []

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            sizes.append(len(self.rfile.read(int(self.headers.get("content-length") or 0))))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", sizes
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def proxy_process(upstream: str, otel: dict[str, str]) -> Iterator[tuple[str, int]]:
    """``gloo-stream proxy`` against ``upstream`` with ``otel`` added to its environment."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLOO_", "PROXY_", "OTEL_"))}
    env |= {
        "GLOO_API_URL": f"{upstream}/ai/v2/chat/completions",
        "GLOO_API_KEY": "sim-key",
        "PROXY_PORT": str(port),
        "PROXY_RATE_LIMIT": "off",
        "PROXY_MAX_STREAMS_PER_CLIENT": "0",
        **otel,
    }
    argv = [sys.executable, "-c", "from gloo_stream.cli import main; main()", "proxy"]
    with tempfile.TemporaryDirectory() as folder:  # no developer's .env
        proc = subprocess.Popen(
            argv, env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the proxy did not start")
                time.sleep(0.05)
            yield url, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _load(url: str, streams: int) -> int:
    """Run ``streams`` streamed requests, ``CONCURRENCY`` at a time; the events received."""
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one() -> int:
            async with gate, client.stream("POST", "/v1/chat/completions", json=body) as r:
                r.raise_for_status()
                # Counted on the whole body: a read may split "data: " in two.
                return b"".join([piece async for piece in r.aiter_raw()]).count(b"data: ")

        return sum(await asyncio.gather(*(one() for _ in range(streams))))


def measure(url: str, pid: int, streams: int) -> dict[str, float]:
    """CPU per relayed event for one load through the proxy at ``url`` (process ``pid``)."""
    asyncio.run(_load(url, 20))  # warm up: imports, pools, first spans
    before = process_cpu(pid)
    events = asyncio.run(_load(url, streams))
    used = process_cpu(pid) - before
    return {"events": events, "cpu_s": used, "cpu_us_per_event": used / events * 1e6}


def run(
    streams: int = STREAMS,
    tokens: int = ANSWER_TOKENS,
    rounds: int = ROUNDS,
    baseline_src: str | None = None,
) -> dict[str, Any]:
    """Alternate tracing off and on (and the baseline) ``rounds`` times; medians per event."""
    modes = ("off", "on", "baseline") if baseline_src else ("off", "on")
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    sim_config = {"tokens_per_second": 0, "first_token_delay": 0, "answer_tokens": tokens}
    with simulator_process(**sim_config) as upstream, otlp_sink() as (sink, exports):
        otel = {
            "off": {},
            "on": {"OTEL_EXPORTER_OTLP_ENDPOINT": sink, "OTEL_SERVICE_NAME": "bench-proxy"},
            "baseline": {"PYTHONPATH": baseline_src or ""},
        }
        for _ in range(rounds):
            for mode in modes:
                with proxy_process(upstream, otel[mode]) as (url, pid):
                    runs[mode].append(measure(url, pid, streams))
        exported = sum(exports)
    median = {
        mode: statistics.median(r["cpu_us_per_event"] for r in results)
        for mode, results in runs.items()
    }
    return {
        "streams": streams,
        "answer_tokens": tokens,
        "concurrency": CONCURRENCY,
        "rounds": rounds,
        "runs": runs,
        "median_cpu_us_per_event": median,
        "tracing_overhead_pct": (median["on"] / median["off"] - 1) * 100,
        "otlp_bytes_exported": exported,
    }


def report(data: dict[str, Any]) -> str:
    """A Markdown section for docs/PERFORMANCE.md."""
    median = data["median_cpu_us_per_event"]
    per_stream = data["runs"]["off"][0]["events"] / data["streams"]
    per_request_ms = (median["on"] - median["off"]) * per_stream / 1000
    rows = [
        f"| off (no `OTEL_*`) | {median['off']:.1f} µs |",
        f"| on (OTLP/HTTP to a loopback sink) | {median['on']:.1f} µs |",
    ]
    if "baseline" in median:
        rows.append(f"| before tracing existed (main) | {median['baseline']:.1f} µs |")
    return (
        "## Tracing cost\n\n"
        f"{data['streams']} streams of {data['answer_tokens']} tokens, {data['concurrency']} "
        f"at a time, through `gloo-stream proxy`; medians of {data['rounds']} rounds.\n\n"
        "| tracing | proxy CPU per relayed event |\n|---|---|\n"
        + "\n".join(rows)
        + f"\n\nTracing adds {data['tracing_overhead_pct']:.1f}%: "
        f"{per_request_ms:.2f} ms of CPU per request of {per_stream:.0f} events, for its two "
        "spans (none per event), their export included (a thread in the same process). With "
        "no `OTEL_*`, OpenTelemetry is not imported and the relay is the same as before.\n"
    )


def main() -> None:
    """Command-line entry: print the measurement as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=STREAMS)
    parser.add_argument("--tokens", type=int, default=ANSWER_TOKENS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--baseline-src", default=None)
    args = parser.parse_args()
    data = run(args.streams, args.tokens, args.rounds, args.baseline_src)
    print(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
