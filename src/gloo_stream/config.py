"""Every setting, its environment variable, its default and its validation.

Settings come from the environment and from a ``.env`` file in the working directory
(the environment wins). Secrets are ``SecretStr``: they never show in a repr or a log.
"""

from __future__ import annotations

from typing import Any, Literal, Self, TypeVar, get_args

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gloo_stream.continuation import DEFAULT_INSTRUCTION
from gloo_stream.errors import ConfigurationError
from gloo_stream.request import MODEL_FAMILIES, TRADITIONS

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_GROUNDED_URL",
    "DEFAULT_TOKEN_URL",
    "GlooSettings",
    "blank_secret",
    "grounded_url_for",
    "load_settings",
    "settings_error",
]

DEFAULT_API_URL = "https://platform.ai.gloo.com/ai/v2/chat/completions"
DEFAULT_TOKEN_URL = "https://platform.ai.gloo.com/oauth2/token"
DEFAULT_GROUNDED_URL = "https://platform.ai.gloo.com/ai/v2/chat/completions/grounded"

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
    gloo_grounded_url: str | None = Field(
        default=None,
        description="Gloo's grounded (RAG) completions URL; unset: Gloo's, or derived from a "
        "changed GLOO_API_URL (see grounded_url).",
    )
    gloo_rag_publisher: str | None = Field(
        default=None,
        description="Publisher to ground every call in that does not say otherwise.",
    )
    gloo_sources_limit: int | None = Field(
        default=None, ge=1, le=10, description="Sources per grounded answer (1-10)."
    )

    @field_validator("gloo_api_url", "gloo_token_url", "gloo_fallback_api_url", "gloo_grounded_url")
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
        "gloo_grounded_url",
        "gloo_rag_publisher",
        "gloo_sources_limit",
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
    def grounding_defaults(self) -> dict[str, Any]:
        """``GLOO_RAG_PUBLISHER`` / ``GLOO_SOURCES_LIMIT``: calls that do not say otherwise
        are grounded with these (see ``request.with_grounding``)."""
        defaults = {
            "rag_publisher": self.gloo_rag_publisher,
            "sources_limit": self.gloo_sources_limit,
        }
        return {name: value for name, value in defaults.items() if value is not None}

    @property
    def grounded_url(self) -> str:
        """Where grounded calls go (``grounded_url_source`` says why there)."""
        return self.grounded_url_source[0]

    @property
    def grounded_url_source(self) -> tuple[str, str]:
        """The grounded URL and where it came from, in words (``gloo-stream auth`` says it).

        A changed ``GLOO_API_URL`` (a simulator, a gateway) with no ``GLOO_GROUNDED_URL``:
        ``/grounded`` appended to its ``.../chat/completions``, as Gloo's own paths are.
        """
        return grounded_url_for(self.gloo_api_url, self.gloo_grounded_url)

    @property
    def auth_mode(self) -> Literal["api_key", "client_credentials", "none"]:
        """Which credentials are configured (an API key wins over client credentials)."""
        if self.gloo_api_key is not None:
            return "api_key"
        if self.gloo_client_id and self.gloo_client_secret is not None:
            return "client_credentials"
        return "none"


def grounded_url_for(api_url: str, grounded_url: str | None = None) -> tuple[str, str]:
    """The grounded URL for ``api_url`` (unless ``grounded_url`` is given), and its source.

    Gloo-shaped ``.../chat/completions`` URLs (a simulator, a Gloo lookalike) get ``/grounded``
    appended, as Gloo's own paths are. Anything else (a gloo-stream proxy's ``/api/stream`` or
    ``/v1/chat/completions``, which route grounded bodies themselves) is used as it is.
    """
    if grounded_url is not None:
        return grounded_url, "GLOO_GROUNDED_URL"
    if api_url == DEFAULT_API_URL:
        return DEFAULT_GROUNDED_URL, "Gloo's grounded endpoint"
    base = api_url.rstrip("/")
    if base.endswith("/chat/completions") and not base.endswith("/v1/chat/completions"):
        return f"{base}/grounded", "derived from GLOO_API_URL (+ /grounded)"
    return api_url, "GLOO_API_URL itself (not a Gloo-shaped URL; set GLOO_GROUNDED_URL to change)"


def _one_of(value: str | None, options: frozenset[str]) -> str | None:
    if value is not None and value not in options:
        raise ValueError(f"must be one of {', '.join(sorted(options))}, got {value!r}")
    return value


def _csv(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(settings_cls: type[SettingsT], **overrides: Any) -> SettingsT:
    """``settings_cls`` from the environment and ``.env``, ``overrides`` (not None) winning.

    A bad value raises ``ConfigurationError`` naming the variable and echoing the value
    (never a secret's), instead of pydantic's ``ValidationError``.
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return settings_cls(**given)
    except ValidationError as error:
        raise settings_error(error, settings_cls) from None


def settings_error(error: ValidationError, settings_cls: type[BaseSettings]) -> ConfigurationError:
    """One ``ConfigurationError`` for every problem ``error`` lists, each naming its variable."""
    problems = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"])
        # "Value error, " is pydantic's prefix for our validators' own words.
        msg = problem["msg"].removeprefix("Value error, ")
        echo = repr(problem.get("input"))
        if field and not _is_secret(settings_cls, field) and echo not in msg:
            msg = f"{msg}, got {echo}"
        problems.append(f"{field.upper()}: {msg}" if field else msg)
    return ConfigurationError("Invalid setting: " + "; ".join(problems))


def _is_secret(settings_cls: type[BaseSettings], field: str) -> bool:
    """A ``SecretStr`` field, or one not declared (unknown: treated as secret, never echoed)."""
    info = settings_cls.model_fields.get(field)
    if info is None:
        return True
    annotation = info.annotation
    return annotation is SecretStr or SecretStr in get_args(annotation)
