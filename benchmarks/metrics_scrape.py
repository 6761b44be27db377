"""Does a ``/metrics`` scrape stall relayed streams? Latency per event with and without one.

Four processes on loopback: a stamping upstream (``benchmarks/stamping_upstream.py``, every
token its send time), the proxy (one uvicorn worker, as ``gloo-stream proxy`` runs it), this
load generator (``STREAMS`` streams at ``TPS`` events/s, the relay benchmark's client) and a
scraper process that GETs ``/metrics`` back to back. Before measuring, the registry is given
about ``SERIES`` series the way a deployment gets them: ``MODELS`` allowed models
(``PROXY_ALLOWED_MODELS``, so ``ModelLabels`` keeps each name as its label) each answered
once. Each event's latency is its arrival time minus its stamp, over a window in which every
stream is open.

Four conditions, interleaved ``REPEATS`` times (side by side in the same run, medians
quoted): no scrape; scrapes rendered in slices on the event loop (the proxy as it is,
``observe/exposition.py``); and, each in a proxy process of its own whose ``/metrics`` is put
back as it was, scrapes rendered by ``generate_latest`` in a thread (before issue 23's fix)
and right on the event loop (before that).

Run: ``.venv/bin/python -m benchmarks.metrics_scrape`` (prints the section).
Internal: ``--proxy sliced|thread|loop`` runs a proxy; ``--scrape URL DELAY SECONDS`` a
scraper.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx

from benchmarks import proxy_load as pl
from benchmarks import relays as rl
from benchmarks.simproc import free_port

STREAMS = 200
TPS = 10.0
MODELS = 100  # each answered once: about 60 series apiece (histogram buckets and counters)
SERIES = 6000
RAMP = 2.0  # seconds over which the streams open
WINDOW = 4.0  # seconds measured, every stream open
REPEATS = 3
SLICED, THREAD, LOOP = "scrape in slices", "before: in a thread", "before: on the event loop"
CONDITIONS = ("no scrape", SLICED, THREAD, LOOP)


def _model(i: int) -> str:
    return f"bench-model-{i:03d}"


# --- the processes -------------------------------------------------------------------------


def serve_proxy(where: str) -> None:
    """Run the proxy as ``benchmarks.proxy_relay`` does; ``thread``/``loop``: /metrics as before."""
    from gloo_stream.proxy.app import create_app
    from gloo_stream.proxy.edge.server import DrainingServer, tune_gc, uvicorn_config
    from gloo_stream.proxy.observe.metrics import ProxyMetrics
    from gloo_stream.proxy.settings import ProxySettings
    from gloo_stream.serving import bind_tcp

    # The /metrics of before: ``generate_latest`` whole, in a thread or right on the loop.
    async def in_thread(metrics: ProxyMetrics) -> bytes:
        return await asyncio.to_thread(metrics.render)

    async def on_loop(metrics: ProxyMetrics) -> bytes:
        return metrics.render()

    before = {"thread": in_thread, "loop": on_loop}
    if where in before:
        setattr(ProxyMetrics, "scrape", before[where])  # noqa: B010
    settings = ProxySettings()
    sock = bind_tcp(settings.proxy_host, settings.proxy_port)
    app = create_app(settings)
    tune_gc()
    DrainingServer(uvicorn_config(app, settings)).run(sockets=[sock])


def scrape(url: str, delay: float, seconds: float) -> None:
    """GET ``url`` back to back for ``seconds`` after ``delay``; print times and sizes (JSON)."""
    time.sleep(delay)
    times, sizes = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:
            sizes.append(len(response.read()))
        times.append((time.perf_counter() - started) * 1000)
    print(json.dumps({"times_ms": times, "sizes": sizes}))


@contextlib.contextmanager
def proxy(where: str, upstream_port: int) -> Iterator[int]:
    """A proxy process in front of the upstream; yields its port."""
    port = free_port()
    env = rl.proxy_env(upstream_port, port)
    env["PROXY_ALLOWED_MODELS"] = ",".join(_model(i) for i in range(MODELS))
    env["PROXY_METRICS_MAX_MODELS"] = "16"
    args = [sys.executable, "-m", "benchmarks.metrics_scrape", "--proxy", where]
    with rl.process(args, port, env):
        yield port


def populate(port: int) -> tuple[int, int]:
    """Answer one request per allowed model; (series in /metrics, its bytes)."""
    return pl.run_async(_populate(f"http://127.0.0.1:{port}"))


async def _populate(url: str) -> tuple[int, int]:
    async with httpx.AsyncClient(timeout=30) as http:

        async def one(model: str) -> None:
            body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
            async with http.stream("POST", f"{url}{rl.PATH}", json={**body, "model": model}) as r:
                if r.status_code != 200:
                    raise RuntimeError(f"populating: {r.status_code} {(await r.aread())[:200]!r}")
                await r.aread()

        await asyncio.gather(*(one(_model(i)) for i in range(MODELS)))
        text = (await http.get(f"{url}/metrics")).text
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    return series, len(text.encode())


# --- the measurement -----------------------------------------------------------------------


async def _load(port: int) -> list[int]:
    """Latencies (ns) of every event that arrived in the window, all streams open."""
    loop = asyncio.get_running_loop()
    end_at = RAMP + 1 + WINDOW
    samples: list[tuple[int, int]] = []
    started = time.time_ns()
    window = (started + int((RAMP + 1) * 1e9), started + int(end_at * 1e9))

    async def one(delay: float) -> bool:
        await asyncio.sleep(delay)
        done: asyncio.Future[bool] = loop.create_future()
        request = pl.http_request(port, int((end_at - delay + 1) * TPS) + 1)
        transport, _ = await loop.create_connection(
            lambda: pl.StreamClient(request, samples, done), "127.0.0.1", port
        )
        try:
            return await asyncio.wait_for(done, end_at - delay + 20)
        finally:
            transport.close()

    ok = await asyncio.gather(*(one(RAMP * i / STREAMS) for i in range(STREAMS)))
    if not all(ok):
        raise RuntimeError(f"{ok.count(False)} of {STREAMS} streams ended early")
    return sorted(lat for at, lat in samples if window[0] <= at < window[1])


def measure(port: int, scraping: bool) -> dict[str, Any]:
    """One run: the streams, and the scraper across the window when ``scraping``."""
    scraper = None
    if scraping:
        args = [sys.executable, "-m", "benchmarks.metrics_scrape", "--scrape"]
        args += [f"http://127.0.0.1:{port}/metrics", str(RAMP + 0.5), str(WINDOW + 1)]
        scraper = subprocess.Popen(args, cwd=rl.ROOT, stdout=subprocess.PIPE)
    try:
        lat = pl.run_async(_load(port))
    finally:
        out = scraper.communicate(timeout=60)[0] if scraper else b""
    result: dict[str, Any] = {
        "events": len(lat),
        "p50_ms": pl.percentile(lat, 50) / 1e6,
        "p99_ms": pl.percentile(lat, 99) / 1e6,
        "max_ms": lat[-1] / 1e6,
    }
    if scraper:
        scrapes = json.loads(out)
        result["scrapes"] = len(scrapes["times_ms"])
        result["scrape_ms"] = statistics.median(scrapes["times_ms"])
        result["scrape_bytes"] = statistics.median(scrapes["sizes"])
    return result


def run() -> dict[str, Any]:
    """Populate three proxies alike, then measure the four conditions in turn, repeatedly."""
    rl.raise_open_files()
    with contextlib.ExitStack() as stack:
        up = stack.enter_context(rl.upstream(TPS))
        ports = {
            where: stack.enter_context(proxy(where, up)) for where in ("sliced", "thread", "loop")
        }
        series, size = populate(ports["sliced"])
        for port in ports.values():
            if port != ports["sliced"]:
                populate(port)
            pl.run_async(_warm(port))  # warm up imports, pools and threads
        plan = {
            "no scrape": (ports["sliced"], False),
            SLICED: (ports["sliced"], True),
            THREAD: (ports["thread"], True),
            LOOP: (ports["loop"], True),
        }
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CONDITIONS}
        for _ in range(REPEATS):
            for condition in CONDITIONS:
                runs[condition].append(measure(*plan[condition]))
                print(f"  {condition}: {json.dumps(runs[condition][-1])}", file=sys.stderr)
    medians = {c: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for c, rs in runs.items()}
    return {"series": series, "bytes": size, "runs": runs, "medians": medians}


async def _warm(port: int) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bool] = loop.create_future()
    request = pl.http_request(port, 3)
    transport, _ = await loop.create_connection(
        lambda: pl.StreamClient(request, [], done), "127.0.0.1", port
    )
    try:
        await asyncio.wait_for(done, 10)
    finally:
        transport.close()


def report(results: dict[str, Any]) -> str:
    """The Markdown section."""
    m = results["medians"]
    lines = [
        "## A /metrics scrape beside relayed streams",
        "",
        f"{STREAMS} streams at {TPS:g} events/s through one proxy worker, each event's latency "
        f"from the upstream's stamp to its arrival, over {WINDOW:g} s with every stream open; "
        f"meanwhile a scraper GETs `/metrics` back to back. The registry holds "
        f"{results['series']:,} series ({MODELS} allowed models answered once each; "
        f"{results['bytes'] / 1024:,.0f} KiB per scrape). Medians of {REPEATS} interleaved runs "
        "(`benchmarks/metrics_scrape.py`). *In slices* is the proxy as it is: `/metrics` "
        "rendered on the event loop half a millisecond at a time (`observe/exposition.py`); the "
        "*before* rows are proxies whose `/metrics` runs `generate_latest` whole, in a thread "
        "or on the event loop.",
        "",
        "| condition | p50 ms | p99 ms | max ms | scrapes | ms per scrape |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for condition in CONDITIONS:
        r = m[condition]
        scrapes = f"{r['scrapes']:.0f} | {r['scrape_ms']:.0f}" if "scrapes" in r else " | "
        lines.append(
            f"| {condition} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} "
            f"| {scrapes} |"
        )
    none, sliced, thread = m["no scrape"], m[SLICED], m[THREAD]
    lines += [
        "",
        "`generate_latest` is pure Python and holds the GIL for the whole render, so in a "
        "thread it stalls the event loop nearly as much as on it: with scrapes back to back "
        "(the worst case; Prometheus scrapes every 15 s or more) p99 grows from "
        f"{none['p99_ms']:.1f} ms to {thread['p99_ms']:.0f} ms in a thread and "
        f"{m[LOOP]['p99_ms']:.0f} ms on the loop. Rendered in slices, the same scrapes leave "
        f"p99 at {sliced['p99_ms']:.1f} ms; a scrape takes {sliced['scrape_ms']:.0f} ms instead "
        f"of {thread['scrape_ms']:.0f} ms, as the loop shares its time with the streams.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """The benchmark, or one of its processes."""
    if sys.argv[1:2] == ["--proxy"]:
        serve_proxy(sys.argv[2])
    elif sys.argv[1:2] == ["--scrape"]:
        scrape(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    else:
        print(report(run()))


if __name__ == "__main__":
    main()
