"""``RedisLink``: one process's connection to the Redis that replicas share for their limits.

Every call gets a hard deadline (``PROXY_REDIS_TIMEOUT``, 250 ms by default) on top of the
client's own socket timeouts, and redis-py's own retries are off: a limit check that waits
on a dead Redis would stall every request behind it. After a failure the link calls Redis
"down" for a short pause, so an outage costs each request nothing rather than a timeout;
the way down logs one warning (URL password redacted) and the way back one line, and both
show in the metrics (``gloo_proxy_redis_up``, ``gloo_proxy_redis_errors_total``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["RedisLink", "RedisUnavailable", "redact_url"]

logger = logging.getLogger("gloo_stream.proxy")
T = TypeVar("T")

# Once Redis failed, skip it this long before trying again: a check against a Redis that
# black-holes packets would otherwise add a full timeout to every request.
_DOWN_PAUSE = 1.0


class RedisUnavailable(Exception):  # noqa: N818 - names the condition, as httpx does
    """Redis did not answer in time, refused the connection, or answered with an error."""


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for a log line."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable Redis URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisLink:
    """A redis-py asyncio client with deadlines, a down/up state, a log line and metrics."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        fail_open: bool,
        registry: CollectorRegistry,
        prefix: str = "gloo-proxy:",
    ) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.fail_open = fail_open
        self.client: Any = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # our deadline is the whole budget: no hidden retries
            health_check_interval=0,
        )
        self._down_until = 0.0
        self._up = True
        self._errors = Counter(
            "gloo_proxy_redis_errors",
            "Redis calls that failed or timed out, by operation (limits then follow "
            "PROXY_REDIS_FAIL)",
            ["op"],
            registry=registry,
        )
        self._skipped = Counter(
            "gloo_proxy_redis_skipped",
            "Limit checks decided without Redis because it was down, by operation",
            ["op"],
            registry=registry,
        )
        self._up_gauge = Gauge(
            "gloo_proxy_redis_up", "1 while the shared limits store answers", registry=registry
        )
        self._up_gauge.set(1)

    @property
    def up(self) -> bool:
        """False from a failure until the next successful call."""
        return self._up

    async def call(self, op: str, make: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis operation within the deadline; raises ``RedisUnavailable``."""
        if not self._up and time.monotonic() < self._down_until:
            self._skipped.labels(op).inc()
            raise RedisUnavailable(op)
        try:
            result = await asyncio.wait_for(make(), self.timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any client error: connection, timeout, protocol, script
            self._failed(op, exc)
            raise RedisUnavailable(op) from exc
        if not self._up:
            self._up = True
            self._up_gauge.set(1)
            logger.warning("shared limits store %s answers again", redact_url(self.url))
        return result

    def _failed(self, op: str, exc: Exception) -> None:
        self._errors.labels(op).inc()
        self._down_until = time.monotonic() + _DOWN_PAUSE
        if self._up:
            self._up = False
            self._up_gauge.set(0)
            policy = (
                "falling back to per-process limits (PROXY_REDIS_FAIL=open)"
                if self.fail_open
                else "refusing new requests with 503 (PROXY_REDIS_FAIL=closed)"
            )
            reason = type(exc).__name__ if isinstance(exc, TimeoutError) else _short(exc)
            logger.warning(
                "shared limits store %s unavailable during %s (%s): %s",
                redact_url(self.url),
                op,
                reason,
                policy,
            )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


def _short(exc: Exception) -> str:
    # redis-py's messages name host and port, never the password; still cut them short.
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__
