"""The one place that turns the settings into limits: in this process, or in Redis.

Like ``resume/build.py``: the rest of the proxy asks ``build_limits`` and never chooses
between ``memory`` and ``redis_limits`` itself. ``redis_limits`` (and so redis) is imported
only when ``PROXY_REDIS_URL`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from limits import parse_many
from limits.aio.storage import Storage
from limits.storage import storage_from_string
from prometheus_client import CollectorRegistry

from gloo_stream.proxy.observe.metrics import ProxyMetrics
from gloo_stream.proxy.observe.usage_metrics import UsageMetrics
from gloo_stream.proxy.policy.limits.budget import TokenBudgets
from gloo_stream.proxy.policy.limits.interfaces import BudgetStore, FailureCounter, RateLimitStore
from gloo_stream.proxy.policy.limits.memory import (
    LimitsRateLimitStore,
    MemoryBudgetStore,
    StreamSlots,
    Unlimited,
)
from gloo_stream.proxy.settings import ProxySettings

if TYPE_CHECKING:
    from gloo_stream.proxy.policy.limits.redis_limits import SharedLimits

__all__ = ["ProxyLimits", "build_limits", "rate_limit_store", "shared_limits", "token_budgets"]


@dataclass(eq=False)
class ProxyLimits:
    """Every limit one app applies, built together so they agree on where counts live."""

    rate: RateLimitStore
    auth_failures: FailureCounter
    slots: StreamSlots
    budgets: TokenBudgets | None
    shared: SharedLimits | None
    """The Redis-backed limits, when ``PROXY_REDIS_URL`` is set (closed with the app)."""


def build_limits(settings: ProxySettings, metrics: ProxyMetrics) -> ProxyLimits:
    """Request rates, wrong-key counts, stream slots and token budgets for ``settings``:
    in Redis when ``PROXY_REDIS_URL`` is set, else in this process."""
    shared: SharedLimits | None = None
    if settings.proxy_redis_url is not None:
        shared = shared_limits(settings, metrics.registry)
        rate, auth_failures = shared.rate, shared.auth_failures
    else:
        storage = settings.proxy_rate_limit_storage
        rate = rate_limit_store(settings.proxy_rate_limit, storage)
        auth_failures = rate_limit_store(settings.proxy_auth_failure_limit, storage)
    slots = StreamSlots(
        settings.proxy_max_streams_per_client,
        settings.proxy_max_upstream_streams,
        shared=shared.quota if shared is not None else None,
    )
    return ProxyLimits(
        rate=rate,
        auth_failures=auth_failures,
        slots=slots,
        budgets=token_budgets(settings, metrics.usage, shared),
        shared=shared,
    )


def rate_limit_store(rule: str, storage_uri: str = "memory://") -> LimitsRateLimitStore | Unlimited:
    """The store for a ``limits`` rule such as ``"60/minute"`` ("" means no limit).

    It is both a ``RateLimitStore`` and a ``FailureCounter``.
    """
    if not rule:
        return Unlimited()
    uri = storage_uri if storage_uri.startswith("async+") else f"async+{storage_uri}"
    storage = storage_from_string(uri)
    if not isinstance(storage, Storage):
        raise ValueError(f"PROXY_RATE_LIMIT_STORAGE {storage_uri!r} has no asyncio backend")
    return LimitsRateLimitStore(parse_many(rule), storage)


def shared_limits(settings: ProxySettings, registry: CollectorRegistry) -> SharedLimits:
    """The Redis-backed limits for ``settings`` (which must have ``proxy_redis_url``)."""
    from gloo_stream.proxy.policy.limits.redis_limits import (  # redis only when used
        SharedFailureCounter,
        SharedLimits,
        SharedRateLimitStore,
        SharedStreamQuota,
    )
    from gloo_stream.proxy.policy.limits.redis_link import RedisLink

    assert settings.proxy_redis_url is not None
    link = RedisLink(
        settings.proxy_redis_url.get_secret_value(),
        timeout=settings.proxy_redis_timeout,
        fail_open=settings.proxy_redis_fail == "open",
        registry=registry,
        prefix=settings.proxy_redis_prefix,
    )
    rule = settings.proxy_rate_limit
    rate = SharedRateLimitStore(rule, link) if rule else Unlimited()
    per_client = settings.proxy_max_streams_per_client
    quota = (
        SharedStreamQuota(link, per_client, settings.proxy_redis_lease_seconds)
        if per_client
        else None
    )
    failure_rule = settings.proxy_auth_failure_limit
    failures = SharedFailureCounter(failure_rule, link) if failure_rule else Unlimited()
    return SharedLimits(link, rate, quota, failures)


def token_budgets(
    settings: ProxySettings, metrics: UsageMetrics, shared: SharedLimits | None
) -> TokenBudgets | None:
    """The budgets ``PROXY_TOKEN_BUDGET`` asks for: in Redis when limits are shared there."""
    rule = settings.token_budget
    if rule is None:
        return None
    store: BudgetStore
    if shared is not None:
        from gloo_stream.proxy.policy.limits.redis_limits import RedisBudgetStore

        store = RedisBudgetStore(shared.link)
    else:
        store = MemoryBudgetStore()
    return TokenBudgets(rule, store, on_remaining=metrics.set_remaining)
