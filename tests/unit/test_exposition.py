"""The sliced /metrics renderer: byte for byte ``generate_latest``, and it yields the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.metrics_core import (
    GaugeHistogramMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.parser import text_string_to_metric_families

from gloo_stream.proxy.observe.exposition import SharedRender, render_sliced, text_pieces
from gloo_stream.proxy.observe.metrics import ProxyMetrics

# Label values the text format must escape: quotes, backslashes, newlines; and UTF-8.
HOSTILE = ['say "hi"', "back\\slash", "two\nlines", "naïve ☃", "", "a,b=c}{"]


class _Custom:
    """A collector of its own families: collected whole, like any non-labelled one."""

    def collect(self) -> Iterable[Metric]:
        gauge_histogram = GaugeHistogramMetricFamily("queue_wait", "Waits\nnow", labels=["queue"])
        gauge_histogram.add_metric(["q1"], [("1.0", 4.0), ("+Inf", 5.0)], gsum_value=7.5)
        gauge_histogram.add_metric(["q2"], [("1.0", 0.0), ("+Inf", 2.0)], gsum_value=9.0)
        unknown = UnknownMetricFamily("mystery", "Not typed", labels=["kind"])
        unknown.add_metric(['x"y'], 1.5, timestamp=12.5)
        # Trailing samples out of generate_latest's (sorted) order: it sorts them.
        pool = Metric("pool", "Pool", "gaugehistogram")
        pool.add_sample("pool_gsum", {}, 3.0)
        pool.add_sample("pool_bucket", {"le": "+Inf"}, 2.0)
        pool.add_sample("pool_gcount", {}, 2.0)
        return [gauge_histogram, unknown, pool]


def hostile_registry(children: int = 40) -> CollectorRegistry:
    """Every kind of family, labels needing escapes, and more samples than one piece holds."""
    registry = CollectorRegistry(target_info={"service": 'proxy "one"'})
    requests = Counter(
        "requests", "Requests by\\route\nand status", ["route", "status"], registry=registry
    )
    for i, value in enumerate(HOSTILE):
        requests.labels(value, str(200 + i)).inc(i + 0.5)
    Counter("unlabelled", "No labels at all", registry=registry).inc(3)
    Counter("never_seen", "A labelled counter with no child yet", ["x"], registry=registry)
    latency = Histogram(
        "latency_seconds", "Latency", ["model"], buckets=(0.1, 1.0, 10.0), registry=registry
    )
    for i in range(children):  # 40 children: trailers (_created) span two pieces
        latency.labels(f"model-{i}").observe(i / 7)
    Histogram("plain_seconds", "Unlabelled histogram", registry=registry).observe(0.3)
    gauge = Gauge("temperature", "Gauge", ["room"], registry=registry)
    gauge.labels(HOSTILE[0]).set(-1.25)
    gauge.labels(HOSTILE[2]).set(float("inf"))
    Gauge("nan_gauge", "Not a number", registry=registry).set(float("nan"))
    summary = Summary("sizes_bytes", "Summary", ["kind"], registry=registry)
    summary.labels("a").observe(1e21)
    summary.labels("b").observe(1e-7)
    Info("build", "Build info", ["env"], registry=registry).labels("prod").info({"v": '1"2'})
    Enum("mode", "Mode", states=["on", "off"], registry=registry).state("off")
    registry.register(_Custom())
    return registry


def test_the_pieces_join_to_exactly_what_generate_latest_renders() -> None:
    registry = hostile_registry()
    pieces = list(text_pieces(registry))
    assert b"".join(pieces) == generate_latest(registry)
    assert len(pieces) > 40  # one labelled child per piece at most: the walk is sliced
    text = b"".join(pieces).decode()
    assert 'route="say \\"hi\\""' in text and 'route="two\\nlines"' in text
    assert "# HELP requests_created Requests by\\\\route\\nand status" in text
    assert "queue_wait_gsum" in text and "target_info{" in text


def test_the_output_parses_as_the_same_series() -> None:
    registry = hostile_registry(children=3)
    ours = b"".join(text_pieces(registry)).decode()
    theirs = generate_latest(registry).decode()
    parsed = {
        (s.name, tuple(sorted(s.labels.items())))
        for family in text_string_to_metric_families(ours)
        for s in family.samples
    }
    expected = {
        (s.name, tuple(sorted(s.labels.items())))
        for family in text_string_to_metric_families(theirs)
        for s in family.samples
    }
    assert parsed == expected
    assert ("requests_total", (("route", "two\nlines"), ("status", "202"))) in parsed


def test_the_proxys_own_registry_renders_identically() -> None:
    metrics = ProxyMetrics()
    usage = metrics.usage
    for i in range(50):
        model = f"model-{i}"
        usage.token_usage.labels("chat", "gloo", model, model, "input").observe(12)
        usage.operation_duration.labels("chat", "gloo", model, model, "").observe(0.4)
        usage.tokens.labels("anonymous", model, "output", "false").inc(7)
    metrics.requests.labels("/api/stream", "200").inc()
    assert b"".join(text_pieces(metrics.registry)) == metrics.render()


def test_a_render_gives_the_loop_back_between_slices() -> None:
    registry = hostile_registry()
    ticks = 0

    async def main() -> bytes:
        nonlocal ticks
        done = asyncio.Event()

        async def other_work() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        worker = asyncio.create_task(other_work())
        body = await render_sliced(registry, slice_seconds=0)  # yield after every piece
        done.set()
        await worker
        return body

    assert asyncio.run(main()) == generate_latest(registry)
    assert ticks >= len(list(text_pieces(registry))) - 1


def test_concurrent_scrapes_share_one_render_and_later_ones_see_new_values() -> None:
    registry = CollectorRegistry()
    counter = Counter("hits", "Hits", ["n"], registry=registry)
    for i in range(100):
        counter.labels(str(i)).inc()
    shared = SharedRender(registry, slice_seconds=0)

    async def main() -> tuple[bytes, bytes, bytes]:
        first, second = await asyncio.gather(shared.render(), shared.render())
        counter.labels("new").inc()
        return first, second, await shared.render()

    first, second, later = asyncio.run(main())
    assert first is second  # one render served both
    assert b'hits_total{n="new"}' not in first
    assert later == generate_latest(registry)
    assert b'hits_total{n="new"} 1.0' in later


def test_a_scraper_that_leaves_does_not_cancel_the_shared_render() -> None:
    registry = hostile_registry()
    shared = SharedRender(registry, slice_seconds=0)

    async def main() -> bytes:
        leaver = asyncio.create_task(shared.render())
        stayer = asyncio.create_task(shared.render())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        leaver.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaver
        return await stayer

    assert asyncio.run(main()) == generate_latest(registry)
