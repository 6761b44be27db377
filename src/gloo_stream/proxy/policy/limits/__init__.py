"""Abuse limits: request rates, wrong keys per address, concurrent streams per client.

``memory`` holds this process's own (the default, and the fallback); ``shared`` the ones
every worker and replica share through Redis (``PROXY_REDIS_URL``), over ``redis_link``.
``shared`` is imported only when a Redis URL is set, so redis is loaded only then.
"""

from gloo_stream.proxy.policy.limits.memory import (
    FailureCounter,
    LimitsRateLimitStore,
    RateDecision,
    RateLimitStore,
    SharedQuota,
    StreamSlots,
    rate_limit_store,
)

__all__ = [
    "FailureCounter",
    "LimitsRateLimitStore",
    "RateDecision",
    "RateLimitStore",
    "SharedQuota",
    "StreamSlots",
    "rate_limit_store",
]
