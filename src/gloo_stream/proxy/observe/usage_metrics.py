"""Token usage and GenAI metrics, beside the proxy's own Prometheus ones (same registry).

Under the OpenTelemetry GenAI conventions' names, dots turned to underscores as Prometheus
needs (units: tokens and seconds, as the conventions define them):

- ``gen_ai_client_token_usage``: tokens per upstream call, by ``gen_ai_token_type``
  (``input``/``output``); only counts the upstream reported.
- ``gen_ai_client_operation_duration``: seconds per upstream call (``error_type`` on failures).
- ``gen_ai_server_time_to_first_token``: from the request to its first content chunk.
- ``gen_ai_server_time_per_output_token``: after the first chunk, seconds per further token.

And what billing needs: ``gloo_proxy_tokens_total`` by client, model, token type and
whether the count is ``estimated``; ``gloo_proxy_token_budget_remaining`` by client. The
client label is the hashed key (``key:...``) when client keys are configured; callers known
only by address are one label, ``anonymous``, so addresses never explode the series.
A model label a caller could choose is only ever a name the deployment knows
(``ModelLabels``): the allow-lists, ``GLOO_MODEL``, ``auto``, or one of the first
``PROXY_METRICS_MAX_MODELS`` names an upstream answered with; anything else is ``other``,
and requests the upstream refused record nothing. So a caller cannot invent label values.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gloo_stream.genai import AUTO_MODEL
from gloo_stream.proxy.settings import ProxySettings

__all__ = ["LABEL_LIMIT", "ModelLabels", "UsageMetrics", "client_label"]

LABEL_LIMIT = 128
"""The longest label value a request can lead to; longer names are ``other``."""
OTHER = "other"

_GENAI = ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"]
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
# The conventions' advised buckets, stretched to the minutes a long answer can take.
_DURATION_BUCKETS = (
    *(0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48),
    *(40.96, 81.92, 163.84, 327.68),
)
_TTFT_BUCKETS = (
    *(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5),
    *(5.0, 7.5, 10.0, 30.0),
)
_TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)


class ModelLabels:
    """The model names metrics may carry: known ones, and a bounded few learnt from answers.

    Why: every distinct label value is a new series kept for the process's life, so a name
    taken from a request would let any caller grow ``/metrics`` (and its scrape) at will.
    """

    __slots__ = ("_known", "_learnt", "_most")

    def __init__(self, known: Iterable[str | None] = (), most_learnt: int = 16) -> None:
        self._known = frozenset(m for m in known if m and len(m) <= LABEL_LIMIT)
        self._learnt: set[str] = set()
        self._most = most_learnt

    @classmethod
    def from_settings(cls, settings: ProxySettings) -> ModelLabels:
        """The names ``settings`` know: allow-lists, ``GLOO_MODEL``, its family, ``auto``."""
        known = {
            AUTO_MODEL,
            settings.gloo_model,
            settings.gloo_model_family,
            *settings.allowed_models,
            *settings.allowed_families,
        }
        return cls(known, settings.proxy_metrics_max_models)

    def learn(self, answered: str) -> str:
        """The label of a model an upstream answered with (learnt while there is room)."""
        if not answered:
            return ""
        if answered in self._known or answered in self._learnt:
            return answered
        if len(answered) <= LABEL_LIMIT and len(self._learnt) < self._most:
            self._learnt.add(answered)
            return answered
        return OTHER

    def label(self, requested: str) -> str:
        """The label of a model a request named: itself if known or learnt, else ``other``."""
        if requested in self._known or requested in self._learnt:
            return requested
        return OTHER


def client_label(client: str) -> str:
    """The metric label of a client id: its key hash, or ``anonymous`` for an address."""
    return client if client.startswith("key:") else "anonymous"


class UsageMetrics:
    """The GenAI histograms and the per-client token counters, in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per upstream call as the upstream reported them, by gen_ai_token_type",
            [*_GENAI, "gen_ai_response_model", "gen_ai_token_type"],
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.operation_duration = Histogram(
            "gen_ai_client_operation_duration",
            "Seconds per upstream call, from sending the request to the answer's end",
            [*_GENAI, "gen_ai_response_model", "error_type"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.time_to_first_token = Histogram(
            "gen_ai_server_time_to_first_token",
            "Seconds from the request to its first content chunk relayed",
            [*_GENAI, "gen_ai_response_model"],
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.time_per_output_token = Histogram(
            "gen_ai_server_time_per_output_token",
            "Seconds per output token after the first one, per answer",
            [*_GENAI, "gen_ai_response_model"],
            buckets=_TPOT_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "gloo_proxy_tokens",
            "Tokens used, by client (key hash or anonymous), model, type (input or output) "
            "and estimated (true when counted from what arrived, the upstream's count missing)",
            ["client", "model", "type", "estimated"],
            registry=r,
        )
        self.budget_remaining = Gauge(
            "gloo_proxy_token_budget_remaining",
            "Tokens a client has left in its PROXY_TOKEN_BUDGET window (as last seen here)",
            ["client"],
            registry=r,
        )

    def set_remaining(self, client: str, remaining: int) -> None:
        """Show a client's budget left (clients known by their key only)."""
        if client.startswith("key:"):
            self.budget_remaining.labels(client).set(remaining)
