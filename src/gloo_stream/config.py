"""Every setting, its environment variable, its default and its validation.

Settings come from the environment and from a ``.env`` file in the working directory
(the environment wins). Secrets are ``SecretStr``: they never show in a repr or a log.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_API_URL", "DEFAULT_TOKEN_URL", "GlooSettings", "ProxySettings"]

DEFAULT_API_URL = "https://platform.ai.gloo.com/ai/v2/chat/completions"
DEFAULT_TOKEN_URL = "https://platform.ai.gloo.com/oauth2/token"

_ENV = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")


class GlooSettings(BaseSettings):
    """How to reach and authenticate with the Gloo API (or any OpenAI-compatible server)."""

    model_config = _ENV

    gloo_api_key: SecretStr | None = None
    gloo_client_id: str | None = None
    gloo_client_secret: SecretStr | None = None
    gloo_api_url: str = DEFAULT_API_URL
    gloo_token_url: str = DEFAULT_TOKEN_URL
    gloo_token_scope: str = "api/access"
    gloo_token_auth: Literal["auto", "basic", "form"] = Field(
        default="auto",
        description="How client credentials reach the token endpoint: HTTP Basic, form body, "
        "or auto (Basic, falling back to the form body when Basic is refused).",
    )
    gloo_connect_timeout: float = Field(default=10.0, gt=0)
    gloo_first_byte_timeout: float = Field(default=60.0, gt=0)
    gloo_read_timeout: float = Field(default=30.0, gt=0)
    gloo_max_retries: int = Field(default=2, ge=0, le=10)
    gloo_retry_deadline: float = Field(default=300.0, gt=0)
    gloo_max_retry_wait: float = Field(default=60.0, ge=0)

    @field_validator("gloo_api_url", "gloo_token_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value.rstrip("/") if value.endswith("/") and value.count("/") > 3 else value

    @field_validator("gloo_api_key", "gloo_client_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("gloo_client_id", mode="before")
    @classmethod
    def _blank_id_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def auth_mode(self) -> Literal["api_key", "client_credentials", "none"]:
        """Which credentials are configured (an API key wins over client credentials)."""
        if self.gloo_api_key is not None:
            return "api_key"
        if self.gloo_client_id and self.gloo_client_secret is not None:
            return "client_credentials"
        return "none"


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
    proxy_heartbeat_interval: float = Field(default=15.0, gt=0)
    proxy_rate_limit: str = Field(
        default="120/minute",
        description="Requests per client (API key, else IP) in the `limits` notation, "
        "e.g. '60/minute' or '10/second;500/hour'; empty: no rate limit.",
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
        default=False, description="Log prompts and answers (never on by default: privacy)."
    )
    proxy_node_modules: str | None = Field(
        default=None,
        description="A node_modules folder holding marked and dompurify for the chat page; "
        "unset: the copies shipped inside the package.",
    )

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

    @field_validator("proxy_rate_limit")
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
    def allowed_models(self) -> frozenset[str]:
        """The models callers may name (empty: any)."""
        return _csv(self.proxy_allowed_models)

    @property
    def allowed_families(self) -> frozenset[str]:
        """The model families callers may name (empty: any)."""
        return _csv(self.proxy_allowed_families)


def _csv(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())
