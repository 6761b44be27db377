"""``/metrics`` rendered on the event loop in short slices, byte for byte ``generate_latest``.

Why: ``generate_latest`` is pure Python. With thousands of series it holds the GIL for
100 ms and more, so rendering it in a thread stalls every relayed stream nearly as much as
rendering it on the event loop (``docs/PERFORMANCE.md``, "A /metrics scrape beside relayed
streams"). Here the registry is walked one labelled child at a time, each piece formatted by
``generate_latest`` itself (over a family holding just that piece's samples, its header cut
off), and the loop is given back whenever a slice has run for ``slice_seconds``.

The walk reads three private attributes of ``prometheus_client``'s labelled metrics (their
children, lock and label names: there is no public way to collect one child); any other
collector is collected whole. ``tests/unit/test_exposition.py`` holds the output to
``generate_latest``'s, so a release that changes them fails there, not in production.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

__all__ = ["SharedRender", "render_sliced", "text_pieces"]

SLICE_SECONDS = 0.0005
"""How long one slice of a render may hold the event loop (a little more: one piece).

Why so short: a relayed event crosses the loop a few times (socket read, task wake-up,
write), and each crossing may wait out one slice. Measured with 6,000 series and scrapes
back to back (``benchmarks/metrics_scrape.py``), 1 ms slices put p99 per event at 4-11 ms,
0.25-0.5 ms slices at 2-6 ms, beside 2-3 ms with no scrape; the render's total time hardly moves.
"""
_BATCH = 16  # samples formatted per piece: about 0.2 ms of generate_latest's time
# Samples generate_latest moves out of a family into gauges after it (OpenMetrics-only ones).
_TRAILER_SUFFIXES = ("_created", "_gsum", "_gcount")


def text_pieces(registry: CollectorRegistry) -> Iterator[bytes]:
    """The Prometheus text format (0.0.4) of ``registry`` in small pieces, lazily collected.

    ``b"".join`` of the pieces is what ``generate_latest(registry)`` returns for the same
    values; each piece costs at most one labelled child's collection or ``_BATCH`` samples.
    """
    for collector in _collectors(registry):
        if isinstance(collector, Metric):  # the registry's target_info
            yield from _family_pieces(collector, [collector.samples])
        elif _is_labelled_parent(collector):
            for family in collector.describe():
                yield from _family_pieces(family, _child_samples(collector))
        else:
            for family in collector.collect():
                yield from _family_pieces(family, [family.samples])


async def render_sliced(registry: CollectorRegistry, slice_seconds: float = SLICE_SECONDS) -> bytes:
    """``generate_latest(registry)``, giving the event loop back every ``slice_seconds``."""
    parts: list[bytes] = []
    until = time.perf_counter() + slice_seconds
    for piece in text_pieces(registry):
        parts.append(piece)
        if time.perf_counter() >= until:
            await asyncio.sleep(0)
            until = time.perf_counter() + slice_seconds
    return b"".join(parts)


class SharedRender:
    """Scrapes that arrive while a render runs share it rather than start their own.

    Why: each render costs CPU the relayed streams need; several scrapers (replicated
    Prometheis, a dashboard) hitting one worker at once would multiply it. A scrape never
    gets values older than the render it joined began.
    """

    __slots__ = ("_loop", "_pending", "_registry", "_slice")

    def __init__(self, registry: CollectorRegistry, slice_seconds: float = SLICE_SECONDS) -> None:
        self._registry = registry
        self._slice = slice_seconds
        self._pending: asyncio.Task[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def render(self) -> bytes:
        """The registry's text, from the render under way or a new one."""
        loop = asyncio.get_running_loop()
        pending = self._pending
        # A render left on another loop (tests run apps on several) is never joined.
        if pending is None or pending.done() or self._loop is not loop:
            pending = loop.create_task(render_sliced(self._registry, self._slice))
            self._pending, self._loop = pending, loop
        # Shielded: a scraper that hangs up does not cancel the render others wait on.
        return await asyncio.shield(pending)


def _collectors(registry: CollectorRegistry) -> Iterator[Any]:
    """What ``registry.collect`` walks, in its order: its target_info family, its collectors."""
    with registry._lock:
        collectors = list(registry._collector_to_names)
        info = registry._target_info
        target_info = registry._target_info_metric() if info else None  # type: ignore[no-untyped-call]
    if target_info is not None:
        yield target_info
    yield from collectors


def _is_labelled_parent(collector: object) -> bool:
    """A labelled metric (``Counter(..., ["route"])``): its children can be collected one by one."""
    return (
        isinstance(collector, MetricWrapperBase)
        and bool(collector._labelnames)
        and not collector._labelvalues  # what its _is_parent() says
        and isinstance(getattr(collector, "_metrics", None), dict)
    )


def _child_samples(parent: MetricWrapperBase) -> Iterator[list[Sample]]:
    """Each child's samples with the parent's labels, as the parent's ``collect`` makes them."""
    with parent._lock:
        children = parent._metrics.copy()
    names = parent._labelnames
    for values, child in children.items():
        series = list(zip(names, values, strict=True))
        for family in child.collect():
            yield [s._replace(labels=dict(series + list(s.labels.items()))) for s in family.samples]


def _family_pieces(family: Metric, batches: Iterable[Sequence[Sample]]) -> Iterator[bytes]:
    """One family: its header, its samples a batch at a time, then its trailing gauges."""
    yield generate_latest(_Families(_with_samples(family, [])))
    trailers: dict[str, list[Sample]] = {}
    for batch in batches:
        plain = []
        for sample in batch:
            suffix = _trailer_suffix(family.name, sample.name)
            if suffix is None:
                plain.append(sample)
            else:
                trailers.setdefault(suffix, []).append(sample)
        for start in range(0, len(plain), _BATCH):
            yield _lines(family, plain[start : start + _BATCH], header_lines=2)
    for suffix in sorted(trailers):
        samples = trailers[suffix]
        for start in range(0, len(samples), _BATCH):
            # The first piece keeps the trailing gauge's own HELP and TYPE.
            header = 2 if start == 0 else 4
            yield _lines(family, samples[start : start + _BATCH], header_lines=header)


def _trailer_suffix(family_name: str, sample_name: str) -> str | None:
    for suffix in _TRAILER_SUFFIXES:
        if sample_name == family_name + suffix:
            return suffix
    return None


def _lines(family: Metric, samples: list[Sample], header_lines: int) -> bytes:
    """``generate_latest``'s lines for ``samples`` of ``family``, its first lines cut off."""
    text = generate_latest(_Families(_with_samples(family, samples)))
    cut = 0
    for _ in range(header_lines):  # HELP and TYPE are one line each: newlines are escaped
        cut = text.index(b"\n", cut) + 1
    return text[cut:]


def _with_samples(family: Metric, samples: list[Sample]) -> Metric:
    piece = copy.copy(family)
    piece.samples = samples
    return piece


class _Families:
    """A collector of given families: what ``generate_latest`` formats a piece from."""

    __slots__ = ("_families",)

    def __init__(self, *families: Metric) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families
