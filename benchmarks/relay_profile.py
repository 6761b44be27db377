"""Where the proxy's time and memory per stream go, once every stream is open.

CPU: py-spy samples the proxy (one worker) at 1,000 streams x 10 tokens/s over the
measured window only (not the ramp), and each sample is put in the layer of its innermost
frame that this table knows (uvicorn's response writes, the upstream transport, decoding,
the relay, the stream's runner, the event loop itself). py-spy sees Python frames: time in a
system call shows under the Python frame that made it, time in uvloop's C code under the
loop's own frame.

The request path: the same sampling over short answers (two events each) back to back, so
that what the proxy does once per request is most of what it does.

Memory: tracemalloc in the proxy process (started from a ``sitecustomize`` the benchmark
writes), a snapshot before the load and one with 2,000 streams at 1 token/s open; the
difference per stream, by the package or module that allocated it.

Run: ``.venv/bin/python -m benchmarks.relay_profile`` (prints JSON).
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

from benchmarks import proxy_load as pl
from benchmarks import relays as rl
from benchmarks.simproc import free_port

CPU_STREAMS, CPU_TPS, SAMPLE_RATE = 1000, 10.0, 200
# The request path: short answers back to back (two events each), so that what the proxy
# does once per request is most of what it does.
REQUEST_STREAMS, REQUEST_EVENTS = 300, 2
MEM_STREAMS, MEM_TPS = 2000, 1.0

# Innermost-frame rules, first match wins: (layer, a piece of the frame: its function and
# file path, as py-spy writes them).
LAYERS = [
    (
        "the caller's writes, one per upstream read (the send system call within)",
        "CallbackRelay._write (",
    ),
    ("the upstream transport: connect, request write", "StreamingTransport._connect ("),
    ("the upstream transport: connect, request write", "_Connection.begin ("),
    ("uvicorn: connections, request parsing, the response head", "uvicorn/"),
    ("prometheus_client (metrics)", "prometheus_client/"),
    ("the upstream transport: socket reads, HTTP parsing, the idle timer", "client/transport.py"),
    ("SSE + chunk decoding, accumulation", "gloo_stream/sse.py"),
    ("SSE + chunk decoding, accumulation", "gloo_stream/wire.py"),
    ("SSE + chunk decoding, accumulation", "gloo_stream/protocol.py"),
    ("SSE + chunk decoding, accumulation", "gloo_stream/accumulate.py"),
    ("secret redaction of relayed events (StreamScrubber)", "gloo_stream/redaction.py"),
    ("the relay: framing, send, heartbeats", "gloo_stream/proxy/callback_relay.py"),
    ("the relay: framing, send, heartbeats", "gloo_stream/proxy/relay.py"),
    ("the endpoint: admission, body, accounting, log line", "gloo_stream/proxy/"),
    ("the stream's runner (flow steps, answer course)", "gloo_stream/client/"),
    ("httpx (request and response objects)", "httpx/"),
    ("asyncio's Python code (futures, tasks, locks)", "asyncio/"),
]
LOOP = "the event loop itself (uvloop's C code: polling, callbacks, socket reads)"
OTHER = "everything else"

SITECUSTOMIZE = """
import gc, os, signal, tracemalloc
tracemalloc.start(1)
_taken = [0]
def _snapshot(*_):
    gc.collect()
    _taken[0] += 1
    tracemalloc.take_snapshot().dump(os.path.join({out!r}, f"snap-{{_taken[0]}}.bin"))
signal.signal(signal.SIGUSR1, _snapshot)
"""


def layer_of(stack: list[str]) -> str:
    """The layer of one sampled stack (outermost frame first)."""
    for frame in reversed(stack):
        if "runners.py" in frame or "uvloop" in frame or "_compat.py" in frame:
            return LOOP  # reached the loop's own frame: the sample was in its C code
        for name, piece in LAYERS:
            if piece in frame:
                return name
    return OTHER


def cpu_profile(
    streams: int = CPU_STREAMS, events: int | None = None, tps: float = CPU_TPS
) -> dict[str, Any]:
    """Samples per layer over the window of one run through the proxy: ``streams`` x
    ``tps``, each stream lasting the window (``events=None``) or runs of ``events``."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.access(spy, os.X_OK):
        raise SystemExit("relay_profile needs py-spy: run `make bench` (installs the bench extras)")
    with tempfile.TemporaryDirectory(prefix="bench-spy-") as tmp, rl.upstream(tps) as up:
        out = Path(tmp) / "raw.txt"
        with rl.relay("proxy", up) as (port, pid):
            pl.run_async(pl.load(port, 20, tps, None))  # warm up, as the load test does
            start_in = pl.ramp_for(streams) + 1
            args = [spy, "record", "-r", str(SAMPLE_RATE), "-d", str(int(pl.WINDOW))]
            args += ["-p", str(pid), "-f", "raw", "-o", str(out), "--nonblocking"]
            timer = threading.Timer(start_in, subprocess.run, [args], {"capture_output": True})
            timer.start()
            result = pl.run_async(pl.load(port, streams, tps, pid, events))
            timer.join()
        counts: collections.Counter[str] = collections.Counter()
        for line in out.read_text().splitlines() if out.exists() else []:
            stack, _, n = line.rpartition(" ")
            counts[layer_of(stack.split(";"))] += int(n)
    possible = SAMPLE_RATE * pl.WINDOW
    return {
        "streams": streams,
        "events_per_stream": events,
        "requests": result["requests_measured"],
        "chunks": result["chunks_measured"],
        "cpu_seconds": result["cpu_seconds"],
        "tps": tps,
        "samples": sum(counts.values()),
        "possible_samples": possible,
        "layers": dict(counts.most_common()),
        "cpu_us_per_chunk": result["cpu_us_per_chunk"],
    }


def owner_of(filename: str) -> str:
    """Who allocated: a gloo_stream module, or a package (uvicorn, httpx, asyncio, ...)."""
    if "gloo_stream/" in filename:
        return "gloo_stream/" + filename.split("gloo_stream/", 1)[1]
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    return Path(filename).parent.name + "/" if "python3." in filename else filename


def memory_profile() -> dict[str, Any]:
    """Bytes per open stream by owner, at 2,000 streams x 1/s (tracemalloc in the proxy)."""
    with tempfile.TemporaryDirectory(prefix="bench-tm-") as tmp, rl.upstream(MEM_TPS) as up:
        (Path(tmp) / "sitecustomize.py").write_text(SITECUSTOMIZE.format(out=tmp))
        env = rl.proxy_env(up, port := free_port())
        env["PYTHONPATH"] = tmp
        args = [sys.executable, "-m", "benchmarks.proxy_relay", "auto", "1"]
        with rl.process(args, port, env) as pid:
            pl.run_async(pl.load(port, 20, MEM_TPS, None))
            os.kill(pid, signal.SIGUSR1)
            time.sleep(2)
            at = pl.ramp_for(MEM_STREAMS) + 2
            timer = threading.Timer(at, os.kill, [pid, signal.SIGUSR1])
            timer.start()
            pl.run_async(pl.load(port, MEM_STREAMS, MEM_TPS, pid))
            timer.join()
            time.sleep(1)
        before = tracemalloc.Snapshot.load(str(Path(tmp) / "snap-1.bin"))
        during = tracemalloc.Snapshot.load(str(Path(tmp) / "snap-2.bin"))
    owners: collections.Counter[str] = collections.Counter()
    objects: collections.Counter[str] = collections.Counter()
    for diff in during.compare_to(before, "filename"):
        owner = owner_of(diff.traceback[0].filename)
        owners[owner] += diff.size_diff
        objects[owner] += diff.count_diff
    return {
        "streams": MEM_STREAMS,
        "bytes_per_stream": sum(owners.values()) / MEM_STREAMS,
        "owners": {
            owner: {"bytes": size / MEM_STREAMS, "objects": objects[owner] / MEM_STREAMS}
            for owner, size in owners.most_common()
            if abs(size) >= MEM_STREAMS  # at least a byte per stream
        },
    }


def run() -> dict[str, Any]:
    """Both profiles."""
    rl.raise_open_files()
    return {
        "cpu": cpu_profile(),
        "requests": cpu_profile(REQUEST_STREAMS, REQUEST_EVENTS),
        "memory": memory_profile(),
    }


def report(results: dict[str, Any]) -> str:
    """Both profiles as a Markdown section."""
    cpu, mem = results["cpu"], results["memory"]
    total = cpu["samples"] or 1
    busy = cpu["samples"] / cpu["possible_samples"]
    lines = [
        "## Where the proxy's time and memory go",
        "",
        f"CPU: py-spy at {SAMPLE_RATE} Hz on the proxy over the measured window of "
        f"{cpu['streams']:,} streams x {cpu['tps']:g} tokens/s ({cpu['samples']:,} samples, "
        f"the process busy {busy:.0%} of the time; {pl._fig(cpu['cpu_us_per_chunk'], 'µs')} "
        "of CPU per relayed chunk in that run). Each sample counts in the layer of its "
        "innermost frame; a system call counts under the Python frame that made it. py-spy "
        "samples time in any state but waiting, so a send that wakes its reader on the same "
        "two cores (or a moment the process is preempted in it) counts there: the µs columns "
        "split the measured process CPU by these shares.",
        "",
        "| layer | share of samples | µs per relayed chunk |",
        "|---|---:|---:|",
    ]
    per_chunk = cpu["cpu_us_per_chunk"] or 0.0
    for name, n in cpu["layers"].items():
        lines.append(f"| {name} | {n / total:.0%} | {per_chunk * n / total:.0f} |")
    req = results.get("requests")
    if req and req["requests"]:
        req_total = req["samples"] or 1
        per_request = (req["cpu_seconds"] or 0.0) / req["requests"] * 1e6
        lines += [
            "",
            f"The request path: the same sampling over runs of {req['events_per_stream']}-event "
            f"answers back to back on {req['streams']:,} connections ({req['requests']:,} "
            f"requests and {req['chunks']:,} events in the window, "
            f"{pl._fig(per_request, 'µs')} of CPU per request, events included):",
            "",
            "| layer | share of samples | µs per request |",
            "|---|---:|---:|",
        ]
        for name, n in req["layers"].items():
            lines.append(f"| {name} | {n / req_total:.0%} | {per_request * n / req_total:.0f} |")
    lines += [
        "",
        f"Memory: tracemalloc in the proxy, {mem['streams']:,} streams at 1 token/s open, "
        f"{mem['bytes_per_stream'] / 1024:.1f} KiB of Python allocations per stream "
        "(the RSS figures above add the allocator's own overhead):",
        "",
        "| allocated by | bytes per stream | objects per stream |",
        "|---|---:|---:|",
    ]
    shown = [(o, v) for o, v in mem["owners"].items() if v["bytes"] >= 64][:16]
    for owner, v in shown:
        lines.append(f"| `{owner}` | {v['bytes']:,.0f} | {v['objects']:.1f} |")
    lines += ["", "Reproduce: `.venv/bin/python -m benchmarks.relay_profile`", ""]
    return "\n".join(lines)


def main() -> None:
    import json

    json.dump(run(), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
