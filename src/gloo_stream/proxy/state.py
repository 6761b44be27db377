"""Everything one proxy app shares between its requests (``app.state.proxy``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from gloo_stream.client import AsyncGlooClient
from gloo_stream.config import ProxySettings
from gloo_stream.proxy.cors import CorsPolicy
from gloo_stream.proxy.guards import ClientAuth
from gloo_stream.proxy.limits import RateLimitStore, StreamSlots, rate_limit_store
from gloo_stream.proxy.metrics import ProxyMetrics
from gloo_stream.proxy.relay import ActiveStreams
from gloo_stream.transport import StreamingTransport

if TYPE_CHECKING:
    from gloo_stream.proxy.redis_limits import SharedLimits

__all__ = ["ProxyState", "make_upstream_client"]


@dataclass(eq=False)
class ProxyState:
    """The app's settings, its one upstream client (pool and token cache), limits, metrics."""

    settings: ProxySettings
    client: AsyncGlooClient | None
    owns_client: bool
    auth: ClientAuth
    rate: RateLimitStore
    slots: StreamSlots
    cors: CorsPolicy
    metrics: ProxyMetrics = field(default_factory=ProxyMetrics)
    streams: ActiveStreams = field(default_factory=ActiveStreams)
    last_upstream_error: str | None = None
    http: httpx.AsyncClient | None = None
    shared: SharedLimits | None = None
    """The Redis-backed limits, when ``PROXY_REDIS_URL`` is set."""

    @classmethod
    def build(cls, settings: ProxySettings, client: AsyncGlooClient | None) -> ProxyState:
        """State for a new app; creates the upstream client unless one is given."""
        owns = client is None
        http = None
        if client is None:
            client, http = make_upstream_client(settings)
        metrics = ProxyMetrics()
        shared = None
        if settings.proxy_redis_url is not None:
            from gloo_stream.proxy.redis_limits import shared_limits  # redis only when used

            shared = shared_limits(settings, metrics.registry)
            rate = shared.rate
        else:
            rate = rate_limit_store(settings.proxy_rate_limit, settings.proxy_rate_limit_storage)
        return cls(
            http=http,
            settings=settings,
            client=client,
            owns_client=owns,
            auth=ClientAuth(settings.api_keys),
            rate=rate,
            slots=StreamSlots(
                settings.proxy_max_streams_per_client,
                settings.proxy_max_upstream_streams,
                shared=shared.quota if shared is not None else None,
            ),
            cors=CorsPolicy(settings.cors_origins),
            metrics=metrics,
            shared=shared,
        )

    async def aclose(self) -> None:
        """Close the upstream client and its pool if this app created them."""
        if self.owns_client and self.client is not None:
            await self.client.aclose()
        if self.http is not None:
            await self.http.aclose()
        if self.shared is not None:
            await self.shared.aclose()


def make_upstream_client(
    settings: ProxySettings,
) -> tuple[AsyncGlooClient | None, httpx.AsyncClient | None]:
    """One client for every request, and the pool it uses (None without credentials).

    The pool has no cap of its own: ``StreamSlots`` caps upstream streams, and a second,
    silent cap in the pool would queue requests instead of refusing them.
    """
    if settings.auth_mode == "none":
        return None, None
    # A lean HTTP/1.1 transport: reading the upstream is most of a relay's work.
    http = httpx.AsyncClient(transport=StreamingTransport())
    return AsyncGlooClient(settings=settings, http_client=http), http
