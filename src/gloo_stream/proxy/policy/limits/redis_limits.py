"""Limits shared by every worker and replica through Redis (``PROXY_REDIS_URL``).

The Redis implementations of ``interfaces``; ``build`` imports this module only when a
Redis URL is set. Token budgets: see ``budget`` for the rule, ``RedisBudgetStore`` here.

- Request rates: the ``limits`` library's moving window in its async Redis storage (on
  redis-py, through the same connection pool as the quota).
- Failed client keys per address: a moving window of our own (a sorted set per rule) whose
  check and count are one Lua script, so a burst of guesses gets exactly the limit.
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

from gloo_stream.proxy.failures import (
    LIMITS_UNAVAILABLE,
    RequestRefused,
    too_many_streams,
)
from gloo_stream.proxy.policy.limits.interfaces import (
    FailureCounter,
    RateDecision,
    RateLimitStore,
)
from gloo_stream.proxy.policy.limits.memory import LimitsRateLimitStore, MemoryBudgetStore
from gloo_stream.proxy.policy.limits.redis_link import RedisLink, RedisUnavailable
from gloo_stream.usage import TokenBudgetRule

__all__ = [
    "RedisBudgetStore",
    "SharedFailureCounter",
    "SharedLimits",
    "SharedRateLimitStore",
    "SharedStreamQuota",
    "limits_uri",
]

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

# KEYS[1] the client's key prefix; ARGV: period seconds, tokens to add (0: only read).
# Returns {tokens used in the window, milliseconds until the window ends}.
_COUNT = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period_ms = tonumber(ARGV[1]) * 1000
local window = math.floor(now_ms / period_ms)
local key = KEYS[1] .. ':' .. window
local used
if tonumber(ARGV[2]) ~= 0 then
  used = redis.call('INCRBY', key, ARGV[2])
  if used < 0 then
    used = 0
    redis.call('SET', key, 0)
  end
  redis.call('PEXPIRE', key, period_ms + 60000)
else
  used = tonumber(redis.call('GET', key) or '0')
end
return {used, (window + 1) * period_ms - now_ms}
"""

# KEYS[1] the client's key prefix; ARGV: period seconds, tokens to reserve, the rule's limit.
# Check and add in one script, so replicas' concurrent requests cannot both take the last
# tokens. Returns {1 added or 0 refused, tokens used, milliseconds until the window ends}.
_RESERVE = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period_ms = tonumber(ARGV[1]) * 1000
local window = math.floor(now_ms / period_ms)
local key = KEYS[1] .. ':' .. window
local used = tonumber(redis.call('GET', key) or '0')
local left = (window + 1) * period_ms - now_ms
if used + tonumber(ARGV[2]) > tonumber(ARGV[3]) then
  return {0, used, left}
end
used = redis.call('INCRBY', key, ARGV[2])
redis.call('PEXPIRE', key, period_ms + 60000)
return {1, used, left}
"""


# KEYS: one sorted set per rule (members: failures, scored by when, Redis' clock).
# ARGV: 1 to count a failure (0: only check), the failure's member, then per rule its
# amount and its window in ms. Prune, check every rule, and only when all have room count
# the failure: one script, so simultaneous attempts are checked one after another.
# Returns {1 allowed or 0 refused, ms until the fullest window frees a place}.
_ATTEMPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do
  local amount = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZCARD', KEYS[i]) >= amount then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    local frees = window
    if oldest[2] then frees = tonumber(oldest[2]) + window - now end
    return {0, frees}
  end
end
if ARGV[1] == '1' then
  for i = 1, #KEYS do
    redis.call('ZADD', KEYS[i], now, ARGV[2])
    redis.call('PEXPIRE', KEYS[i], ARGV[2 + 2 * i])
  end
end
return {1, 0}
"""


class SharedFailureCounter:
    """Failed client keys per address, counted in Redis: check and count in one Lua script.

    ``limits``' own peek-then-hit would be two round trips, and a burst would be compared
    before its failures land; this is one, so every replica holds exactly the rule.
    """

    def __init__(self, rule: str, link: RedisLink) -> None:
        self._rules = parse_many(rule)
        self._link = link
        self._script = link.client.register_script(_ATTEMPT)
        self._local = LimitsRateLimitStore(self._rules)  # the fallback for fail-open
        self._replica = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._ids = itertools.count()

    def keys(self, client: str) -> list[str]:
        """The Redis keys of ``client``'s failures, one per rule."""
        return [
            f"{self._link.prefix}auth:{client}:{rule.amount}/{rule.get_expiry()}"
            for rule in self._rules
        ]

    async def attempt(self, client: str, failed: bool) -> RateDecision:
        """Check every rule and, when all have room and ``failed``, count one failure."""
        args: list[object] = [1 if failed else 0, f"{self._replica}:{next(self._ids)}"]
        for rule in self._rules:
            args += [rule.amount, rule.get_expiry() * 1000]
        try:
            allowed, frees_ms = await self._link.call(
                "auth", lambda: self._script(keys=self.keys(client), args=args)
            )
        except RedisUnavailable:
            if self._link.fail_open:
                return await self._local.attempt(client, failed)
            raise RequestRefused(LIMITS_UNAVAILABLE) from None
        if allowed:
            return RateDecision(True)
        return RateDecision(False, max(1.0, int(frees_ms) / 1000))


class SharedRateLimitStore:
    """Request rates counted in Redis; by the fail policy while Redis is unavailable.

    ``name`` keeps counters apart (``rate`` for requests).
    """

    def __init__(self, rule: str, link: RedisLink, name: str = "rate") -> None:
        rules = parse_many(rule)
        storage = RedisStorage(
            limits_uri(link.url),
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

    async def acquire(self, client: str) -> None:
        """Take a lease for one stream of ``client``; raises ``RequestRefused`` if it cannot."""
        lease = f"{self._replica}:{next(self._ids)}"
        args = [self._cap, self._lease_ms, lease]
        try:
            taken = await self._link.call(
                "quota", lambda: self._acquire(keys=[self.key(client)], args=args)
            )
        except RedisUnavailable:
            # A call that timed out may still have added the lease: it lapses unrenewed.
            if not self._link.fail_open:
                raise RequestRefused(LIMITS_UNAVAILABLE) from None
            self._unleased[client] = self._unleased.get(client, 0) + 1
            return
        if not taken:
            raise RequestRefused(too_many_streams(self._cap))
        self._held.setdefault(client, []).append(lease)
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_while_held())

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


class RedisBudgetStore:
    """Counts in Redis for every worker and replica; by the fail policy when it is down."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._script = link.client.register_script(_COUNT)
        self._reserve = link.client.register_script(_RESERVE)
        self._local = MemoryBudgetStore()

    def key(self, client: str) -> str:
        """The Redis key prefix of ``client``'s windows."""
        return f"{self._link.prefix}tokens:{client}"

    async def count(self, client: str, rule: TokenBudgetRule, add: int) -> tuple[int, float]:
        """Add ``add`` tokens in Redis; while it is down, here (open) or refuse (closed)."""
        args = [rule.period_seconds, add]
        try:
            used, left_ms = await self._link.call(
                "tokens", lambda: self._script(keys=[self.key(client)], args=args)
            )
        except RedisUnavailable:
            if self._link.fail_open or add:  # a debit is never refused: the answer is sent
                return await self._local.count(client, rule, add)
            raise RequestRefused(LIMITS_UNAVAILABLE) from None
        return int(used), int(left_ms) / 1000

    async def reserve(
        self, client: str, rule: TokenBudgetRule, tokens: int
    ) -> tuple[bool, int, float]:
        """Add ``tokens`` if they fit, in one Lua script round trip; by the fail policy when
        Redis is down."""
        args = [rule.period_seconds, tokens, rule.tokens]
        try:
            added, used, left_ms = await self._link.call(
                "tokens", lambda: self._reserve(keys=[self.key(client)], args=args)
            )
        except RedisUnavailable:
            if self._link.fail_open:
                return await self._local.reserve(client, rule, tokens)
            raise RequestRefused(LIMITS_UNAVAILABLE) from None
        return bool(added), int(used), int(left_ms) / 1000


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


def limits_uri(url: str) -> str:
    """The ``limits`` library's storage URI for a Redis ``url``."""
    # ``limits`` picks its async storage by scheme; unix sockets are spelled redis+unix.
    if url.startswith("unix://"):
        url = "redis+unix://" + url.removeprefix("unix://")
    return f"async+{url}"
