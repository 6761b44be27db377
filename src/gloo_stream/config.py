"""Every setting, its environment variable, its default and its validation.

Settings come from the environment and from a ``.env`` file in the working directory
(the environment wins). Secrets are ``SecretStr``: they never show in a repr or a log.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gloo_stream.continuation import DEFAULT_INSTRUCTION
from gloo_stream.request import MODEL_FAMILIES, TRADITIONS

__all__ = ["DEFAULT_API_URL", "DEFAULT_TOKEN_URL", "GlooSettings", "blank_secret"]

DEFAULT_API_URL = "https://platform.ai.gloo.com/ai/v2/chat/completions"
DEFAULT_TOKEN_URL = "https://platform.ai.gloo.com/oauth2/token"

_ENV = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")


def blank_secret(value: object) -> object:
    """A secret set to blanks (``GLOO_API_KEY=`` in a .env) is no secret: unset, not empty.

    Not stripped otherwise: a secret is compared byte for byte.
    """
    return None if isinstance(value, str) and not value.strip() else value


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
    gloo_max_continuations: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Times an answer cut after text arrived (dropped, stalled, ended early, "
        "finish_reason error) is continued where it stopped; 0: raise with the partial.",
    )
    gloo_continue_instruction: str = Field(
        default=DEFAULT_INSTRUCTION,
        description="The user message sent after the text so far when continuing a cut "
        "answer; empty for servers that take an assistant prefill.",
    )
    gloo_model: str | None = Field(
        default=None,
        description="Exact model for calls that name no routing (servers such as vLLM or "
        "Ollama require one); unset: Gloo's auto_routing.",
    )
    gloo_model_family: str | None = Field(
        default=None, description="Model family for calls that name no routing."
    )
    gloo_tradition: str | None = Field(
        default=None, description="Tradition for calls that name none, whatever their routing."
    )
    gloo_fallback_api_url: str | None = Field(
        default=None,
        description="An OpenAI-compatible chat completions URL to use when the primary fails "
        "before answering (5xx, 429 past the retry budget, unreachable, no first byte).",
    )
    gloo_fallback_api_key: SecretStr | None = Field(
        default=None, description="Bearer key for the fallback (unset: none is sent)."
    )
    gloo_fallback_model: str | None = Field(
        default=None,
        description="The model the fallback is asked for (unset: the call's own model, if any).",
    )
    gloo_breaker_failures: int = Field(
        default=5,
        ge=1,
        description="Primary failures in a row after which calls skip it for the fallback.",
    )
    gloo_breaker_seconds: float = Field(
        default=30.0, gt=0, description="How long the primary is skipped before one probe."
    )

    @field_validator("gloo_api_url", "gloo_token_url", "gloo_fallback_api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value.rstrip("/") if value.endswith("/") and value.count("/") > 3 else value

    _blank_secret_is_unset = field_validator(
        "gloo_api_key", "gloo_client_secret", "gloo_fallback_api_key", mode="before"
    )(blank_secret)

    @field_validator(
        "gloo_client_id",
        "gloo_model",
        "gloo_model_family",
        "gloo_tradition",
        "gloo_fallback_api_url",
        "gloo_fallback_model",
        mode="before",
    )
    @classmethod
    def _blank_id_is_unset(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("gloo_model_family")
    @classmethod
    def _known_family(cls, value: str | None) -> str | None:
        return _one_of(value, MODEL_FAMILIES)

    @field_validator("gloo_tradition")
    @classmethod
    def _known_tradition(cls, value: str | None) -> str | None:
        return _one_of(value, TRADITIONS)

    @model_validator(mode="after")
    def _one_default_routing(self) -> Self:
        if self.gloo_model and self.gloo_model_family:
            # Two defaults would send two routing mechanisms; the API wants exactly one.
            raise ValueError("set GLOO_MODEL or GLOO_MODEL_FAMILY, not both")
        return self

    @property
    def request_defaults(self) -> dict[str, Any]:
        """What a call leaves out and these settings fill in (see ``request.with_defaults``)."""
        defaults = {
            "model": self.gloo_model,
            "model_family": self.gloo_model_family,
            "tradition": self.gloo_tradition,
        }
        return {name: value for name, value in defaults.items() if value is not None}

    @property
    def auth_mode(self) -> Literal["api_key", "client_credentials", "none"]:
        """Which credentials are configured (an API key wins over client credentials)."""
        if self.gloo_api_key is not None:
            return "api_key"
        if self.gloo_client_id and self.gloo_client_secret is not None:
            return "client_credentials"
        return "none"


def _one_of(value: str | None, options: frozenset[str]) -> str | None:
    if value is not None and value not in options:
        raise ValueError(f"must be one of {', '.join(sorted(options))}, got {value!r}")
    return value


def _csv(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())
