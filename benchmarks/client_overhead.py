"""Client overhead: CPU per 1,000 tokens and time-to-first-token, GlooClient vs raw httpx.

The simulator runs in its own process; the same pooled connection serves both paths, and the
raw path reads the identical response bytes without decoding them.

Run: ``.venv/bin/python -m benchmarks.client_overhead`` (prints JSON).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from benchmarks.simproc import simulator_process
from gloo_stream import GlooClient, GlooSettings

TOKENS = 2000
CPU_RUNS = 30
TTFT_RUNS = 200
BODY = {"messages": [{"role": "user", "content": "bench"}], "auto_routing": True, "stream": True}
FIRST_CONTENT = re.compile(rb'"content":"[^"]')  # a non-empty token, not the role chunk
HEADERS = {"Authorization": "Bearer sim-key", "Accept": "text/event-stream"}


@contextmanager
def clients(url: str) -> Iterator[tuple[str, httpx.Client, GlooClient]]:
    """The completions URL, a raw httpx client and a GlooClient, both kept alive per run."""
    api = f"{url}/ai/v2/chat/completions"
    settings = GlooSettings(_env_file=None)  # type: ignore[call-arg]
    with (
        httpx.Client() as http,
        GlooClient(api_url=api, api_key="sim-key", settings=settings) as gc,
    ):
        yield api, http, gc


def compare(raw: list[float], ours: list[float], *, scale: float = 1.0) -> dict[str, float]:
    """Medians of both paths in milliseconds, and what gloo-stream adds."""
    raw_ms = statistics.median(raw) * scale * 1000
    ours_ms = statistics.median(ours) * scale * 1000
    return {"raw_httpx_ms": raw_ms, "gloo_stream_ms": ours_ms, "overhead_ms": ours_ms - raw_ms}


def cpu_per_thousand(url: str) -> dict[str, float]:
    """Median process CPU seconds per 1,000 tokens for each path."""
    raw_cpu: list[float] = []
    ours_cpu: list[float] = []
    with clients(url) as (api, http, gc):
        for _ in range(CPU_RUNS):
            started = time.process_time()
            with http.stream("POST", api, json=BODY, headers=HEADERS) as response:
                for _data in response.iter_bytes():
                    pass
            raw_cpu.append(time.process_time() - started)
            started = time.process_time()
            with gc.stream("bench") as stream:
                count = sum(1 for chunk in stream if chunk.content)
            ours_cpu.append(time.process_time() - started)
            assert count == TOKENS, count
    return compare(raw_cpu, ours_cpu, scale=1000 / TOKENS)


def ttft(url: str) -> dict[str, float]:
    """Median wall time to the first content token, and the difference (the overhead)."""
    raw_t: list[float] = []
    ours_t: list[float] = []
    with clients(url) as (api, http, gc):
        for _ in range(TTFT_RUNS):
            started = time.perf_counter()
            with http.stream("POST", api, json=BODY, headers=HEADERS) as response:
                for data in response.iter_bytes():
                    if FIRST_CONTENT.search(data):
                        raw_t.append(time.perf_counter() - started)
                        break
            started = time.perf_counter()
            with gc.stream("bench") as stream:
                for chunk in stream:
                    if chunk.content:
                        ours_t.append(time.perf_counter() - started)
                        break
    return compare(raw_t, ours_t)


def run() -> dict[str, Any]:
    """Every figure of this benchmark."""
    with simulator_process(tokens_per_second=0, first_token_delay=0, answer_tokens=TOKENS) as url:
        cpu = cpu_per_thousand(url)
    with simulator_process(tokens_per_second=0, first_token_delay=0.005, answer_tokens=5) as url:
        first = ttft(url)
    return {"cpu_per_1000_tokens": cpu, "ttft": first}


def report(results: dict[str, Any]) -> str:
    """The figures as a Markdown section."""
    cpu, first = results["cpu_per_1000_tokens"], results["ttft"]
    return "\n".join(
        [
            "## Client overhead",
            "",
            f"`GlooClient.stream()` versus reading the same response raw with httpx (no decoding), "
            f"simulator in its own process. CPU: median of {CPU_RUNS} answers of {TOKENS} tokens; "
            f"TTFT: median of {TTFT_RUNS} requests (5 ms simulated first-token delay).",
            "",
            "| figure | raw httpx | GlooClient.stream() | overhead | target |",
            "|---|---:|---:|---:|---|",
            _row("CPU per 1,000 tokens", cpu, ""),
            _row("time to first token", first, "< 1 ms"),
            "",
            "Reproduce: `.venv/bin/python -m benchmarks.client_overhead`",
            "",
        ]
    )


def _row(name: str, figures: dict[str, float], target: str) -> str:
    return (
        f"| {name} | {figures['raw_httpx_ms']:.2f} ms | {figures['gloo_stream_ms']:.2f} ms "
        f"| {figures['overhead_ms']:.3f} ms | {target} |"
    )


if __name__ == "__main__":
    json.dump(run(), sys.stdout, indent=2)
    print()
