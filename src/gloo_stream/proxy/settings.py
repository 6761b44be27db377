"""The proxy's own settings (``PROXY_*``), on top of how it reaches Gloo (``GLOO_*``).

They live with the proxy, not in the core's ``gloo_stream.config``: the library and the command
line never read a ``PROXY_*`` variable. Each field reads the environment variable of its
upper-cased name, from the environment or a ``.env`` file (the environment wins).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from gloo_stream.config import GlooSettings, blank_secret
from gloo_stream.usage import TokenBudgetRule, parse_token_budget

__all__ = ["ProxySettings"]


class ProxySettings(GlooSettings):
    """The proxy server's own settings, on top of how it reaches Gloo.

    Every field reads the environment variable of its upper-cased name (``PROXY_PORT``...).
    Limits are per worker process unless ``PROXY_REDIS_URL`` is set: then request rates and
    per-client concurrent streams are counted in Redis, across every worker and replica.
    """

    proxy_host: str = "127.0.0.1"
    proxy_port: int = Field(default=3001, ge=0, le=65535)
    proxy_cors_origin: str = "http://localhost:3000"
    proxy_api_keys: SecretStr | None = None
    proxy_max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    proxy_max_tokens: int | None = Field(
        default=4096,
        ge=1,
        description="Largest max_tokens a caller may ask for; sent upstream when the caller "
        "gives none. Unset: no cap.",
    )
    proxy_allowed_models: str = Field(
        default="", description="Comma-separated exact model names callers may pick; empty: any."
    )
    proxy_allowed_families: str = Field(
        default="", description="Comma-separated model families callers may pick; empty: any."
    )
    proxy_allowed_publishers: str = Field(
        default="",
        description="Comma-separated rag_publisher names grounded answers may use; empty: any.",
    )
    proxy_heartbeat_interval: float = Field(default=15.0, gt=0)
    proxy_max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Largest request line plus headers, in bytes; larger gets 431 and the "
        "connection closed.",
    )
    proxy_max_headers: int = Field(
        default=100, ge=8, le=10_000, description="Most header fields in one request; more: 431."
    )
    proxy_header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a connection has to deliver a request's complete headers (from "
        "connecting, or from its first byte on a kept-alive connection); then 408 and closed.",
    )
    proxy_body_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a request has to deliver its complete body once its headers are "
        "in; then 408 and closed. Answers (streams) are not limited by it.",
    )
    proxy_keep_alive_timeout: float = Field(
        default=5.0, gt=0, description="Seconds an idle kept-alive connection stays open."
    )
    proxy_max_connections: int = Field(
        default=10_000,
        ge=1,
        description="Open client connections per process; more get 503 (GET /health is still "
        "answered on a small reserve). Lowered at start-up to what the open-files limit allows.",
    )
    proxy_rate_limit: str = Field(
        default="120/minute",
        description="Requests per client (API key, else IP) in the `limits` notation, "
        "e.g. '60/minute' or '10/second;500/hour'; empty: no rate limit.",
    )
    proxy_auth_failure_limit: str = Field(
        default="10/minute",
        description="Wrong client keys allowed per caller address (an IPv6 /64) in the "
        "`limits` notation; past it, 429 with Retry-After before any key is checked. "
        "Empty or off: no limit.",
    )
    proxy_metrics_key: SecretStr | None = Field(
        default=None,
        description="Bearer key for GET /metrics (client keys work too). /metrics needs a key "
        "whenever this or PROXY_API_KEYS is set.",
    )
    proxy_metrics_allow_loopback: bool = Field(
        default=False,
        description="Let scrapes from this machine (127.0.0.1, ::1) read /metrics without a key.",
    )
    proxy_rate_limit_storage: str = Field(
        default="memory://", description="Where rate-limit counters live (a `limits` URI)."
    )
    proxy_max_streams_per_client: int = Field(
        default=32, ge=0, description="Concurrent answers per client; 0: no limit."
    )
    proxy_max_upstream_streams: int = Field(
        default=10_000, ge=0, description="Concurrent upstream requests in all; 0: no limit."
    )
    proxy_redis_url: SecretStr | None = Field(
        default=None,
        description="redis:// URL shared by every replica for rate limits and stream quotas; "
        "unset: limits are per process.",
    )
    proxy_redis_fail: Literal["open", "closed"] = Field(
        default="open",
        description="Redis unreachable: 'open' falls back to per-process limits, 'closed' "
        "refuses with 503.",
    )
    proxy_redis_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A stream's quota lease in Redis; a crashed replica's streams stop "
        "counting within this time.",
    )
    proxy_redis_timeout: float = Field(
        default=0.25, gt=0, description="Seconds one Redis call may take before it counts as down."
    )
    proxy_redis_prefix: str = Field(
        default="gloo-proxy:", description="Key prefix, so deployments can share one Redis."
    )
    proxy_shutdown_grace: float = Field(
        default=10.0, ge=0, description="Seconds open streams may go on after shutdown starts."
    )
    proxy_log_content: bool = Field(
        default=False,
        description="Log prompts and answers, and record them on traces (never on by default: "
        "privacy).",
    )
    proxy_token_budget: str = Field(
        default="",
        description="Tokens (input + output) each client (API key, else address) may use per "
        "window, e.g. '200000/day'; shared across replicas with PROXY_REDIS_URL. Empty or off: "
        "no budget.",
    )
    proxy_budget_reserve_tokens: int = Field(
        default=256,
        ge=0,
        description="Completion tokens reserved from a token budget for a request that gives "
        "no max_tokens, on top of its prompt's estimate, until its real usage is known.",
    )
    proxy_max_event_bytes: int = Field(
        default=1024 * 1024,
        ge=4096,
        description="Largest SSE event (or line) taken from the upstream; a larger one, or "
        "one that never ends, ends the caller's stream with one error event.",
    )
    proxy_max_decoded_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024 * 1024,
        description="Most bytes an upstream's compressed answer may expand to (the proxy asks "
        "for none; this bounds one sent anyway).",
    )
    proxy_metrics_max_models: int = Field(
        default=16,
        ge=0,
        description="Distinct model names learnt from upstream answers that metrics label by "
        "(besides the allow-lists and GLOO_MODEL); others are labelled 'other'.",
    )
    proxy_metrics_allow_client_keys: bool = Field(
        default=False,
        description="Let client keys read /metrics too (by default only PROXY_METRICS_KEY).",
    )
    proxy_client_label_secret: SecretStr | None = Field(
        default=None,
        description="Secret keying the hash that names a client key in metrics, logs and "
        "limits (the same on every replica); unset: derived from the keys and credentials.",
    )
    proxy_upstream_usage: bool = Field(
        default=True,
        description="Ask the upstream for usage on every streamed request "
        "(stream_options.include_usage); off for an upstream that refuses the field.",
    )
    proxy_resume_window: float = Field(
        default=0.0,
        ge=0,
        description="Seconds a caller who lost its connection may resume the answer (GET "
        "/api/stream/{id}); its upstream goes on that long without it. 0: off, the upstream "
        "is cancelled when the caller leaves.",
    )
    proxy_resume_buffer_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description="Most bytes of events kept per resumable answer; older ones are dropped.",
    )
    proxy_node_modules: str | None = Field(
        default=None,
        description="A node_modules folder holding marked and dompurify for the chat page; "
        "unset: the copies shipped inside the package.",
    )

    @model_validator(mode="after")
    def _default_routing_allowed(self) -> Self:
        # Refused at start rather than on every request that names no routing.
        if self.gloo_model and self.allowed_models and self.gloo_model not in self.allowed_models:
            raise ValueError(
                f"GLOO_MODEL {self.gloo_model!r} is not in PROXY_ALLOWED_MODELS; "
                "add it there or pick one of them"
            )
        family, families = self.gloo_model_family, self.allowed_families
        if family and families and family not in families:
            raise ValueError(
                f"GLOO_MODEL_FAMILY {family!r} is not in PROXY_ALLOWED_FAMILIES; "
                "add it there or pick one of them"
            )
        return self

    @field_validator("proxy_redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        # After parsing, so a bad value shows masked in the error: it may hold a password.
        url = value.get_secret_value().strip() if value is not None else ""
        if not url:
            return None
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return SecretStr(url)

    _blank_metrics_key_is_unset = field_validator(
        "proxy_metrics_key", "proxy_client_label_secret", mode="before"
    )(blank_secret)

    @field_validator("proxy_token_budget")
    @classmethod
    def _token_budget(cls, value: str) -> str:
        rule = parse_token_budget(value)  # its ValueError says what shape it wants
        return str(rule) if rule is not None else ""

    @property
    def token_budget(self) -> TokenBudgetRule | None:
        """The per-client token budget (None: no budget)."""
        return parse_token_budget(self.proxy_token_budget)

    @field_validator("proxy_rate_limit", "proxy_auth_failure_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        value = value.strip()
        if value and value not in ("0", "off", "none"):
            from limits import parse_many  # imported here: only the proxy needs `limits`

            try:
                parse_many(value)
            except ValueError:
                raise ValueError(
                    f"must look like '60/minute' or '10/second;500/hour', got {value!r}"
                ) from None
            return value
        return ""

    @property
    def cors_origins(self) -> list[str]:
        """The exact origins allowed to call the proxy from a browser."""
        return [o.strip().rstrip("/") for o in self.proxy_cors_origin.split(",") if o.strip()]

    @property
    def api_keys(self) -> frozenset[str]:
        """The keys a client must present (empty: no client auth)."""
        if self.proxy_api_keys is None:
            return frozenset()
        raw = self.proxy_api_keys.get_secret_value()
        return frozenset(k.strip() for k in raw.split(",") if k.strip())

    @property
    def metrics_keys(self) -> frozenset[str]:
        """The keys that may read /metrics besides the client keys."""
        if self.proxy_metrics_key is None:
            return frozenset()
        return frozenset({self.proxy_metrics_key.get_secret_value().strip()})

    @property
    def allowed_models(self) -> frozenset[str]:
        """The models callers may name (empty: any)."""
        return _csv(self.proxy_allowed_models)

    @property
    def allowed_publishers(self) -> frozenset[str]:
        """``PROXY_ALLOWED_PUBLISHERS`` as a set (empty: any publisher)."""
        return _csv(self.proxy_allowed_publishers)

    @property
    def allowed_families(self) -> frozenset[str]:
        """The model families callers may name (empty: any)."""
        return _csv(self.proxy_allowed_families)


def _csv(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())
