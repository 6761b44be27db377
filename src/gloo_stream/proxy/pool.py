"""The upstream connection pool, split into shards so thousands of streams stay cheap.

httpcore's pool looks at every connection it holds each time a request starts or a
response closes, so with one connection per open stream its cost grows with the square of
the number of streams (measured: over a quarter of the proxy's CPU at 1,000 streams).
Spreading requests over a few dozen independent pools divides that scan by as much, while
the app keeps one client (one ``AsyncGlooClient``, one token cache) as before.
"""

from __future__ import annotations

import itertools

import httpx

__all__ = ["ShardedTransport"]


class ShardedTransport(httpx.AsyncBaseTransport):
    """Round-robins requests over ``shards`` independent HTTP transports."""

    def __init__(self, shards: int = 32, keepalive_per_shard: int = 32) -> None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=keepalive_per_shard)
        self._shards = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(max(1, shards))]
        self._next = itertools.cycle(self._shards)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send through the next shard."""
        return await next(self._next).handle_async_request(request)

    async def aclose(self) -> None:
        """Close every shard's connections."""
        for shard in self._shards:
            await shard.aclose()
