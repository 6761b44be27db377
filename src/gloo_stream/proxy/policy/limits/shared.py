"""Limits shared by every worker and replica through Redis (``PROXY_REDIS_URL``).

- Request rates, and failed client keys per address: the ``limits`` library's moving window
  in its async Redis storage (on redis-py, through the same connection pool as the quota).
- Concurrent streams per client: a sorted set per client whose members are stream leases
  scored by their expiry (Redis' own clock, so replicas' clocks may disagree). Taking one is
  a Lua script (prune the expired, count, add) so two replicas cannot both take the last
  slot; a heartbeat renews this process's leases every third of the lease; a stream's end
  removes its lease. A replica that dies stops renewing, and its leases stop counting within
  ``PROXY_REDIS_LEASE_SECONDS``.

Redis unavailable (see ``RedisLink``): with ``PROXY_REDIS_FAIL=open`` each process falls
back to its own limits (the in-process per-client cap still holds, per process); with
``closed`` the request is refused with 503. The global upstream cap is per process always.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any

from limits import parse_many
from limits.aio.storage import RedisStorage
from prometheus_client import CollectorRegistry

from gloo_stream.proxy.failures import (
    LIMITS_UNAVAILABLE,
    ProxyFailure,
    RequestRefused,
    too_many_streams,
)
from gloo_stream.proxy.policy.limits.memory import (
    FailureCounter,
    LimitsRateLimitStore,
    RateDecision,
    RateLimitStore,
    rate_limit_store,
)
from gloo_stream.proxy.policy.limits.redis_link import RedisLink, RedisUnavailable
from gloo_stream.proxy.settings import ProxySettings

__all__ = ["SharedLimits", "SharedRateLimitStore", "SharedStreamQuota", "shared_limits"]

# KEYS[1] the client's set; ARGV: cap, lease ms, lease id. 1 taken, 0 refused.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS[1] the client's set; ARGV: lease ms, lease ids. XX: a lease removed meanwhile (its
# stream ended between the snapshot and this call) must stay removed, not come back.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = now + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""


class SharedRateLimitStore:
    """Request rates counted in Redis; by the fail policy while Redis is unavailable.

    ``name`` keeps counters apart (``rate`` for requests, ``auth`` for failed keys).
    """

    def __init__(self, rule: str, link: RedisLink, name: str = "rate") -> None:
        rules = parse_many(rule)
        storage = RedisStorage(
            _limits_uri(link.url),
            implementation="redispy",
            connection_pool=link.client.connection_pool,
            key_prefix=f"{link.prefix}{name}",
        )
        self._link = link
        self._name = name
        self._shared = LimitsRateLimitStore(rules, storage)
        self._local = LimitsRateLimitStore(rules)  # the fallback for fail-open

    async def hit(self, client: str) -> RateDecision:
        """Record one request; refused when any rule's window is full on any replica."""
        try:
            return await self._link.call(self._name, lambda: self._shared.hit(client))
        except RedisUnavailable:
            if self._link.fail_open:
                return await self._local.hit(client)
            raise RequestRefused(LIMITS_UNAVAILABLE) from None

    async def peek(self, client: str) -> RateDecision:
        """Whether one more would be allowed on every replica now; records nothing."""
        try:
            return await self._link.call(self._name, lambda: self._shared.peek(client))
        except RedisUnavailable:
            if self._link.fail_open:
                return await self._local.peek(client)
            raise RequestRefused(LIMITS_UNAVAILABLE) from None


class SharedStreamQuota:
    """Concurrent streams per client, counted across replicas as renewed leases in Redis.

    ``acquire``/``release`` pair up per stream like ``StreamSlots``'; a client's leases
    in one process are interchangeable, so ``release`` gives back any one of them.
    """

    def __init__(self, link: RedisLink, per_client: int, lease_seconds: float) -> None:
        self._link = link
        self._cap = per_client
        self._lease_ms = max(1, round(lease_seconds * 1000))
        self._renew_every = lease_seconds / 3
        self._acquire = link.client.register_script(_ACQUIRE)
        self._renew = link.client.register_script(_RENEW)
        self._replica = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._ids = itertools.count()
        self._held: dict[str, list[str]] = {}  # client -> this process's lease ids
        self._unleased: dict[str, int] = {}  # streams admitted while Redis was down
        self._renewer: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()

    def key(self, client: str) -> str:
        """The Redis key of ``client``'s lease set."""
        return f"{self._link.prefix}streams:{client}"

    async def acquire(self, client: str) -> ProxyFailure | None:
        """Take a lease for one stream of ``client``, or say why not."""
        lease = f"{self._replica}:{next(self._ids)}"
        args = [self._cap, self._lease_ms, lease]
        try:
            taken = await self._link.call(
                "quota", lambda: self._acquire(keys=[self.key(client)], args=args)
            )
        except RedisUnavailable:
            # A call that timed out may still have added the lease: it lapses unrenewed.
            if not self._link.fail_open:
                return LIMITS_UNAVAILABLE
            self._unleased[client] = self._unleased.get(client, 0) + 1
            return None
        if not taken:
            return too_many_streams(self._cap)
        self._held.setdefault(client, []).append(lease)
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_while_held())
        return None

    def release(self, client: str) -> None:
        """Give back one of ``client``'s streams (its lease is removed in the background)."""
        unleased = self._unleased.get(client, 0)
        if unleased:
            if unleased == 1:
                del self._unleased[client]
            else:
                self._unleased[client] = unleased - 1
            return
        ids = self._held.get(client)
        if not ids:
            return
        lease = ids.pop()
        if not ids:
            del self._held[client]
        # Not awaited: the stream's end must not wait on Redis. If this fails, the lease
        # is no longer renewed and lapses on its own.
        task = asyncio.get_running_loop().create_task(self._remove(client, [lease]))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _remove(self, client: str, leases: list[str]) -> None:
        with contextlib.suppress(RedisUnavailable):
            await self._link.call(
                "release", lambda: self._link.client.zrem(self.key(client), *leases)
            )

    async def _renew_while_held(self) -> None:
        while self._held:
            await asyncio.sleep(self._renew_every)
            await self.renew()

    async def renew(self) -> None:
        """Push every lease this process holds a full lease into the future (one round trip)."""
        held = {client: list(ids) for client, ids in self._held.items() if ids}
        if not held:
            return

        async def renew_all() -> Any:
            async with self._link.client.pipeline(transaction=False) as pipe:
                for client, ids in held.items():
                    await self._renew(
                        keys=[self.key(client)], args=[self._lease_ms, *ids], client=pipe
                    )
                return await pipe.execute()

        with contextlib.suppress(RedisUnavailable):  # next tick tries again
            await self._link.call("renew", renew_all)

    async def aclose(self) -> None:
        """Stop renewing and hand back every lease still held (a clean exit frees quota now)."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        held, self._held = self._held, {}
        for client, ids in held.items():
            await self._remove(client, ids)
        if self._pending:
            await asyncio.wait(self._pending, timeout=self._link.timeout * 2)


@dataclass(eq=False)
class SharedLimits:
    """What ``PROXY_REDIS_URL`` brings: a shared rate store, a shared stream quota, the link."""

    link: RedisLink
    rate: RateLimitStore
    quota: SharedStreamQuota | None
    auth_failures: FailureCounter

    async def aclose(self) -> None:
        """Free this process's leases, then close the connection pool."""
        if self.quota is not None:
            await self.quota.aclose()
        await self.link.aclose()


def shared_limits(settings: ProxySettings, registry: CollectorRegistry) -> SharedLimits:
    """The Redis-backed limits for ``settings`` (which must have ``proxy_redis_url``)."""
    assert settings.proxy_redis_url is not None
    link = RedisLink(
        settings.proxy_redis_url.get_secret_value(),
        timeout=settings.proxy_redis_timeout,
        fail_open=settings.proxy_redis_fail == "open",
        registry=registry,
        prefix=settings.proxy_redis_prefix,
    )
    rule = settings.proxy_rate_limit
    rate = SharedRateLimitStore(rule, link) if rule else rate_limit_store("")
    per_client = settings.proxy_max_streams_per_client
    quota = (
        SharedStreamQuota(link, per_client, settings.proxy_redis_lease_seconds)
        if per_client
        else None
    )
    failure_rule = settings.proxy_auth_failure_limit
    failures = (
        SharedRateLimitStore(failure_rule, link, "auth") if failure_rule else rate_limit_store("")
    )
    return SharedLimits(link, rate, quota, failures)


def _limits_uri(url: str) -> str:
    # ``limits`` picks its async storage by scheme; unix sockets are spelled redis+unix.
    if url.startswith("unix://"):
        url = "redis+unix://" + url.removeprefix("unix://")
    return f"async+{url}"
