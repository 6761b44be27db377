"""The fallback upstream a client turns to when the primary fails before answering.

Any OpenAI-compatible server, with its own URL, credential and model
(``GLOO_FALLBACK_API_URL``, ``GLOO_FALLBACK_API_KEY``, ``GLOO_FALLBACK_MODEL``). When and
why a call moves to it is decided in the core (``gloo_stream.failover``).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from gloo_stream.breaker import CircuitBreaker
from gloo_stream.client.auth import BearerAuth
from gloo_stream.config import GlooSettings

__all__ = ["Fallback", "breaker_for", "fallback_from"]


@dataclass(frozen=True, slots=True)
class Fallback:
    """Where the fallback is, the credential it gets (None: none), and the model it is asked."""

    url: str
    auth: httpx.Auth | None
    model: str | None


def fallback_from(
    settings: GlooSettings,
    url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
) -> Fallback | None:
    """The fallback the keywords (else the settings) describe; None when no URL is set."""
    url = url or settings.gloo_fallback_api_url
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"fallback_api_url must be an http:// or https:// URL, got {url!r}")
    key = api_key
    if key is None and settings.gloo_fallback_api_key is not None:
        key = settings.gloo_fallback_api_key.get_secret_value()
    return Fallback(
        url=url,
        auth=BearerAuth(key) if key else None,
        model=model or settings.gloo_fallback_model,
    )


def breaker_for(settings: GlooSettings, fallback: Fallback | None) -> CircuitBreaker | None:
    """The primary's breaker (``GLOO_BREAKER_*``): only with a fallback to send calls to."""
    if fallback is None:
        return None
    return CircuitBreaker(
        threshold=settings.gloo_breaker_failures, cooldown=settings.gloo_breaker_seconds
    )
