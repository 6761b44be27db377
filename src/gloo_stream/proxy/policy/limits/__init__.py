"""Abuse limits: request rates, wrong keys per address, concurrent streams, token budgets.

Laid out like ``resume/``: ``interfaces`` says what each limit is, ``memory`` keeps this
process's counts (the default, and the fallback), ``redis_limits`` the ones every worker and
replica share through Redis (``PROXY_REDIS_URL``, over ``redis_link``), ``budget`` the token
budget rule over either store, and ``build`` is the one place that chooses between them.
``redis_limits`` is imported only when a Redis URL is set, so redis is loaded only then.
"""

from gloo_stream.proxy.policy.limits.build import ProxyLimits, build_limits, rate_limit_store
from gloo_stream.proxy.policy.limits.interfaces import (
    BudgetDecision,
    BudgetStore,
    FailureCounter,
    RateDecision,
    RateLimitStore,
    SharedQuota,
    admit_request,
)
from gloo_stream.proxy.policy.limits.memory import (
    LimitsRateLimitStore,
    MemoryBudgetStore,
    StreamSlots,
    Unlimited,
)

__all__ = [
    "BudgetDecision",
    "BudgetStore",
    "FailureCounter",
    "LimitsRateLimitStore",
    "MemoryBudgetStore",
    "ProxyLimits",
    "RateDecision",
    "RateLimitStore",
    "SharedQuota",
    "StreamSlots",
    "Unlimited",
    "admit_request",
    "build_limits",
    "rate_limit_store",
]
