"""Prometheus metrics, one registry per app so many apps can live in one process (tests).

Per-chunk counts are summed by each stream and added once when it ends: a counter update
takes a lock, and thousands of streams times dozens of chunks a second would pay it often.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from gloo_stream.breaker import CircuitBreaker
from gloo_stream.proxy.observe.exposition import SharedRender
from gloo_stream.proxy.observe.usage_metrics import UsageMetrics

__all__ = ["CONTENT_TYPE_LATEST", "ProxyMetrics"]

_BREAKER_STATES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
_DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class ProxyMetrics:
    """The proxy's counters, gauges and histograms, in their own ``CollectorRegistry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "gloo_proxy_requests",
            "Requests answered, by route and status",
            ["route", "status"],
            registry=r,
        )
        self.active_streams = Gauge(
            "gloo_proxy_active_streams", "Answers being relayed right now", registry=r
        )
        self.ttft = Histogram(
            "gloo_proxy_time_to_first_token_seconds",
            "From the request arriving to the first content token relayed",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "gloo_proxy_stream_duration_seconds",
            "From the request arriving to the stream's end",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.chunks = Counter("gloo_proxy_chunks_relayed", "SSE events relayed", registry=r)
        self.bytes = Counter("gloo_proxy_bytes_relayed", "Body bytes relayed", registry=r)
        self.disconnects = Counter(
            "gloo_proxy_client_disconnects",
            "Callers that left before their answer ended",
            registry=r,
        )
        self.retries = Counter(
            "gloo_proxy_upstream_retries", "Upstream requests sent again", registry=r
        )
        self.limited = Counter(
            "gloo_proxy_limited", "Requests refused by a limit", ["limit"], registry=r
        )
        self.auth_failures = Counter(
            "gloo_proxy_auth_failures",
            "Requests refused for their client key: missing_api_key, invalid_api_key, or "
            "blocked (the address sent too many wrong keys)",
            ["reason"],
            registry=r,
        )
        self.usage = UsageMetrics(r)
        """Tokens per client and model, budgets, and the GenAI conventions' histograms."""
        self._upstreams(r)
        self._scrapes = SharedRender(r)

    def _upstreams(self, r: CollectorRegistry) -> None:
        """Which upstream served (``GLOO_FALLBACK_*``), and the primary's breaker."""
        self.upstream_answers = Counter(
            "gloo_proxy_upstream_answers",
            "Answers started, by the upstream that served them: primary, or fallback "
            "(GLOO_FALLBACK_API_URL)",
            ["upstream"],
            registry=r,
        )
        self.continuations = Counter(
            "gloo_proxy_continuations",
            "Seams of answers cut mid-stream and continued (GLOO_MAX_CONTINUATIONS), by why it "
            "was cut, the upstream that continued it, and how the answer ended (complete, "
            "continued, cut, filtered, cancelled, length)",
            ["reason", "upstream", "outcome"],
            registry=r,
        )
        self.breaker = Gauge(
            "gloo_proxy_primary_breaker_state",
            "The primary's circuit breaker: 0 closed, 1 half-open (probing), 2 open (calls go "
            "to the fallback); always 0 without a fallback",
            registry=r,
        )

    def watch_breaker(self, breaker: CircuitBreaker) -> None:
        """Report ``breaker``'s state whenever the metrics are read."""
        self.breaker.set_function(lambda: _BREAKER_STATES[breaker.state])

    def render(self) -> bytes:
        """The registry in Prometheus' text format, at once (for tests and tools off the loop)."""
        return generate_latest(self.registry)

    async def scrape(self) -> bytes:
        """What ``render`` returns, made on the event loop in slices of half a millisecond.

        Why: rendering thousands of series holds the GIL for 100 ms and more, on the loop or
        in a thread alike, and every relayed stream would wait that long. Concurrent scrapes
        share one render.
        """
        return await self._scrapes.render()
