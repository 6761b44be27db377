"""Proxy load: added latency per chunk through the proxy versus direct, memory per stream.

Three processes on loopback: a stamping upstream (Gloo-format SSE whose every token is the
wall-clock nanosecond it was written, on a fixed schedule per stream), the proxy (uvicorn,
as ``gloo-stream proxy`` runs it), and this load generator (asyncio protocols, no HTTP
library, so the generator itself stays cheap). Each chunk's latency is its arrival time
minus its stamp. The same load runs direct to the upstream and through the proxy; the added
latency is the difference of the two distributions' percentiles (p50, p99) over the window
in which every stream is open. Memory per stream is the RSS growth of a fresh proxy process
with all streams open, divided by their number.

Why a stamping upstream rather than the simulator: the simulator paces with relative sleeps
and stamps nothing finer than a second, so only a stamp taken at the write tells how late a
chunk arrives. Both paths use the very same upstream, so its own cost cancels out.

Bounded: each level runs ~10-25 s per path, the search stops at the first level whose p99
added latency reaches 10 ms, near the file-descriptor limit, or when the budget is spent.

Run: ``.venv/bin/python -m benchmarks.proxy_load [--tps 10 --levels 100,1000 --search 200]``
(prints JSON). ``make bench`` runs it through ``benchmarks/__main__.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Each pace: tokens/s per stream, the fixed levels, then the levels searched upward.
PACES: tuple[tuple[float, tuple[int, ...], tuple[int, ...]], ...] = (
    (10.0, (100, 1000), (200, 300, 400, 500, 600, 800)),  # a typical model's pace
    (1.0, (1000,), (2000, 3000, 4000, 5000, 6000)),  # slow or mostly idle streams
)
WINDOW = 4.0  # seconds of steady state (every stream open) that are measured
BUDGET = 600.0  # seconds for the whole benchmark
TARGET_P99_MS = 10.0
STAMP = re.compile(rb'"content":"(\d+)"')

# -- the stamping upstream (runs in its own process) ------------------------------------------

UPSTREAM_CODE = r"""
import asyncio, sys, time
import re
TPS = float(sys.argv[2])
MAX_TOKENS = re.compile(rb'"max_tokens":\s*(\d+)')
HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        b"connection: close\r\n\r\n")
ROLE = (b'data: {"id":"b","object":"chat.completion.chunk","choices":[{"index":0,'
        b'"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n')
TOKEN = (b'data: {"id":"b","object":"chat.completion.chunk","choices":[{"index":0,'
         b'"delta":{"content":"%d"},"finish_reason":null}]}\n\n')
LAST = (b'data: {"id":"b","object":"chat.completion.chunk","choices":[{"index":0,'
        b'"delta":{},"finish_reason":"stop"}]}\n\n')

class Stream(asyncio.Protocol):
    def connection_made(self, transport):
        self.t, self.buf, self.sent = transport, b"", False
    def data_received(self, data):
        self.buf += data
        head, sep, body = self.buf.partition(b"\r\n\r\n")
        if self.sent or not sep:
            return
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if len(body) >= length:
            self.sent = True
            self.tokens = int(MAX_TOKENS.search(body).group(1))
            self.t.write(HEAD + ROLE)
            loop = asyncio.get_running_loop()
            self.start, self.i = loop.time(), 0
            loop.call_at(self.start + 1 / TPS, self.tick)
    def tick(self):
        if self.t.is_closing():
            return
        self.i += 1
        if self.i > self.tokens:
            self.t.write(LAST)
            self.t.close()
            return
        self.t.write(TOKEN % time.time_ns())
        asyncio.get_running_loop().call_at(self.start + (self.i + 1) / TPS, self.tick)

async def main():
    server = await asyncio.get_running_loop().create_server(
        Stream, "127.0.0.1", int(sys.argv[1]), backlog=8192)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def proxy_env(upstream_port: int, proxy_port: int) -> dict[str, str]:
    """The proxy's settings: pointed at the upstream, limits off (the load is one client)."""
    return {
        **os.environ,
        "GLOO_API_URL": f"http://127.0.0.1:{upstream_port}/ai/v2/chat/completions",
        "GLOO_API_KEY": "bench-key",
        "PROXY_PORT": str(proxy_port),
        "PROXY_RATE_LIMIT": "",
        "PROXY_MAX_STREAMS_PER_CLIENT": "0",
        "PROXY_MAX_UPSTREAM_STREAMS": "0",
        "PROXY_SHUTDOWN_GRACE": "0",
    }


def rss_bytes(pid: int) -> int:
    """Resident memory of a process."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# -- the load generator ---------------------------------------------------------------------


class StreamClient(asyncio.Protocol):
    """One stream: sends the request, records (arrival, latency) per stamped token."""

    def __init__(self, request: bytes, samples: list[tuple[int, int]], done: asyncio.Future[Any]):
        self.request, self.samples, self.done = request, samples, done
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        data = self.tail + data
        end = data.rfind(b"\n\n")
        self.tail = data[end + 2 :] if end >= 0 else data
        for match in STAMP.finditer(data, 0, end if end >= 0 else 0):
            self.samples.append((now, now - int(match.group(1))))
        if b'"finish_reason":"stop"' in data and not self.done.done():
            self.done.set_result(True)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(False)


def ramp_for(streams: int) -> float:
    """Seconds over which to open the streams (connection setup is the costly part)."""
    return max(2.0, streams / 400)


def http_request(port: int, path: str, tokens: int) -> bytes:
    body = json.dumps({"messages": [{"role": "user", "content": "load"}], "max_tokens": tokens})
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer bench-key\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body.encode()


async def load(port: int, path: str, streams: int, tps: float, pid: int | None) -> dict[str, Any]:
    """Open ``streams`` streams over the ramp; measure the window when all are open."""
    loop = asyncio.get_running_loop()
    ramp = ramp_for(streams)
    request = http_request(port, path, int((ramp + WINDOW + 2) * tps) + 1)
    samples: list[tuple[int, int]] = []
    baseline = rss_bytes(pid) if pid else 0
    started = time.time_ns()
    # Measure from 1 s after the last stream opened, while every stream is still open.
    window = (started + int((ramp + 1) * 1e9), started + int((ramp + 1 + WINDOW) * 1e9))

    async def one(delay: float) -> bool:
        await asyncio.sleep(delay)
        done: asyncio.Future[bool] = loop.create_future()
        transport, _ = await loop.create_connection(
            lambda: StreamClient(request, samples, done), "127.0.0.1", port
        )
        try:
            return await asyncio.wait_for(done, ramp + WINDOW + 30)
        finally:
            transport.close()

    async def memory() -> int:
        await asyncio.sleep(ramp + 1 + WINDOW / 2)
        return rss_bytes(pid) if pid else 0

    probe = asyncio.create_task(memory())
    ok = await asyncio.gather(
        *(one(ramp * i / streams) for i in range(streams)), return_exceptions=True
    )
    peak = await probe
    lat = sorted(lat for at, lat in samples if window[0] <= at < window[1])
    return {
        "streams": streams,
        "completed": sum(1 for r in ok if r is True),
        "chunks_measured": len(lat),
        "p50_ms": percentile(lat, 50) / 1e6,
        "p99_ms": percentile(lat, 99) / 1e6,
        "rss_delta_bytes": peak - baseline if pid else None,
    }


def percentile(values: list[int], q: float) -> float:
    """The q-th percentile of sorted values (nearest rank)."""
    if not values:
        return float("nan")
    rank = max(0, min(len(values) - 1, round(q / 100 * len(values)) - 1))
    return float(values[rank])


def measure(level: int, tps: float, upstream_port: int) -> dict[str, Any]:
    """One level: direct, then through a fresh proxy process, under identical load.

    A fresh proxy per level keeps levels independent and makes its RSS growth mean
    something (a process that already held more streams reuses that memory).
    """
    direct = asyncio.run(load(upstream_port, "/ai/v2/chat/completions", level, tps, None))
    px = free_port()
    proxy = [
        sys.executable,
        "-c",
        "from gloo_stream.config import ProxySettings as S; "
        "from gloo_stream.proxy import run_proxy; run_proxy(S())",
    ]
    with process(proxy, px, proxy_env(upstream_port, px)) as pid:
        asyncio.run(load(px, "/api/stream", 20, tps, None))  # warm up imports and pools
        proxied = asyncio.run(load(px, "/api/stream", level, tps, pid))
    rss = proxied.pop("rss_delta_bytes")
    direct.pop("rss_delta_bytes")
    return {
        "streams": level,
        "direct": direct,
        "proxied": proxied,
        "added_p50_ms": proxied["p50_ms"] - direct["p50_ms"],
        "added_p99_ms": proxied["p99_ms"] - direct["p99_ms"],
        "proxy_kib_per_stream": rss / level / 1024 if rss else None,
        "all_completed": direct["completed"] == level and proxied["completed"] == level,
    }


def run_pace(
    tps: float, levels: tuple[int, ...], search: tuple[int, ...], deadline: float, fd_limit: int
) -> dict[str, Any]:
    """Fixed levels, then upward until p99 added latency reaches the target."""
    up = free_port()
    results: list[dict[str, Any]] = []
    best = 0
    upstream = [sys.executable, "-c", UPSTREAM_CODE, str(up), str(tps)]
    with process(upstream, up):
        for level in (*levels, *search):
            searching = level in search and level not in levels
            if searching and (time.monotonic() > deadline or 4 * level + 200 > fd_limit):
                break
            result = measure(level, tps, up)
            results.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
            if result["added_p99_ms"] < TARGET_P99_MS and result["all_completed"]:
                best = max(best, level)
            elif searching:
                break
    return {"tps_per_stream": tps, "levels": results, "max_streams_p99_under_10ms": best}


def run(
    paces: tuple[tuple[float, tuple[int, ...], tuple[int, ...]], ...] = PACES,
) -> dict[str, Any]:
    """Every pace in turn; bounded by BUDGET seconds and the file-descriptor limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    deadline = time.monotonic() + BUDGET
    return {"paces": [run_pace(tps, lv, se, deadline, hard) for tps, lv, se in paces]}


def report(results: dict[str, Any]) -> str:
    """The figures as a Markdown section."""
    lines = [
        "## Proxy under load",
        "",
        "Every token is stamped with its send time by a stamping upstream; latency = arrival -",
        "stamp, over the window in which all streams are open; added = proxied - direct.",
        "Upstream, proxy (one uvicorn worker) and load generator are three processes sharing",
        "the machine's cores.",
        "",
    ]
    for pace in results["paces"]:
        lines += [
            f"### {pace['tps_per_stream']:g} tokens/s per stream",
            "",
            "| streams | direct p50 / p99 | proxied p50 / p99 | added p50 / p99 "
            "| proxy RSS per stream |",
            "|---:|---:|---:|---:|---:|",
        ]
        for r in pace["levels"]:
            d, p = r["direct"], r["proxied"]
            lines.append(
                f"| {r['streams']:,} | {d['p50_ms']:.2f} / {d['p99_ms']:.2f} ms "
                f"| {p['p50_ms']:.2f} / {p['p99_ms']:.2f} ms "
                f"| {r['added_p50_ms']:.2f} / {r['added_p99_ms']:.2f} ms "
                f"| {r['proxy_kib_per_stream'] or 0:.0f} KiB |"
            )
        lines += [
            "",
            f"Most concurrent streams with p99 added latency under {TARGET_P99_MS:g} ms: "
            f"**{pace['max_streams_p99_under_10ms']:,}**.",
            "",
        ]
    lines += ["Reproduce: `.venv/bin/python -m benchmarks.proxy_load`", ""]
    return "\n".join(lines)


def main() -> None:
    """Command line: one pace and its levels, or every default pace; prints JSON."""
    parser = argparse.ArgumentParser(description="Proxy load benchmark (loopback only).")
    parser.add_argument("--tps", type=float, help="tokens/s per stream (default: every pace)")
    parser.add_argument("--levels", default="100,1000")
    parser.add_argument("--search", default="")
    args = parser.parse_args()
    paces = PACES
    if args.tps is not None:
        levels = tuple(int(x) for x in args.levels.split(",") if x)
        search = tuple(int(x) for x in args.search.split(",") if x)
        paces = ((args.tps, levels, search),)
    json.dump(run(paces), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
