"""Everything one proxy app shares between its requests (``app.proxy``)."""

from __future__ import annotations

import asyncio
import os
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from gloo_stream.client import AsyncGlooClient
from gloo_stream.client.transport import StreamingTransport
from gloo_stream.proxy.observe.metrics import ProxyMetrics
from gloo_stream.proxy.observe.telemetry import ProxyTracing
from gloo_stream.proxy.observe.usage_metrics import ModelLabels
from gloo_stream.proxy.policy.accounting import UsageAccountant
from gloo_stream.proxy.policy.client_auth import ClientAuth
from gloo_stream.proxy.policy.cors import CorsPolicy
from gloo_stream.proxy.policy.limits import (
    RateLimitStore,
    StreamSlots,
    build_limits,
)
from gloo_stream.proxy.policy.limits.budget import TokenBudgets
from gloo_stream.proxy.relay import ActiveStreams
from gloo_stream.proxy.resume import ResumableStreams
from gloo_stream.proxy.resume.build import resumable_streams
from gloo_stream.proxy.settings import ProxySettings
from gloo_stream.redaction import NO_SECRETS, Redactor, basic_credential

if TYPE_CHECKING:
    from gloo_stream.proxy.policy.limits.redis_limits import SharedLimits

__all__ = ["ProxyState", "make_upstream_client", "settings_secrets"]


@dataclass(eq=False)
class ProxyState:
    """The app's settings, its one upstream client (pool and token cache), limits, metrics."""

    settings: ProxySettings
    client: AsyncGlooClient | None
    owns_client: bool
    auth: ClientAuth
    rate: RateLimitStore
    slots: StreamSlots
    cors: CorsPolicy
    metrics: ProxyMetrics = field(default_factory=ProxyMetrics)
    streams: ActiveStreams = field(default_factory=ActiveStreams)
    last_upstream_error: str | None = None
    http: httpx.AsyncClient | None = None
    shared: SharedLimits | None = None
    """The Redis-backed limits, when ``PROXY_REDIS_URL`` is set."""
    held: Redactor = NO_SECRETS
    """Every secret in the settings (upstream key, client secret, client and metrics keys)."""
    tracing: ProxyTracing | None = None
    """This app's traces, when the ``OTEL_*`` environment asks for them."""
    budgets: TokenBudgets | None = None
    """``PROXY_TOKEN_BUDGET``, counted here or (with ``PROXY_REDIS_URL``) in Redis."""
    accountant: UsageAccountant | None = None
    """Counts each answer's tokens and debits the budget."""
    resume: ResumableStreams | None = None
    """The answers callers may come back to, when ``PROXY_RESUME_WINDOW`` is set."""
    _live: tuple[tuple[str, ...], Redactor] = ((), NO_SECRETS)

    @classmethod
    def build(
        cls,
        settings: ProxySettings,
        client: AsyncGlooClient | None,
        tracing: ProxyTracing | None = None,
    ) -> ProxyState:
        """State for a new app; creates the upstream client unless one is given.

        ``tracing``: by default what the ``OTEL_*`` environment asks for (none unless it does).
        """
        if tracing is None:
            tracing = ProxyTracing.from_environ(
                os.environ, record_content=settings.proxy_log_content
            )
        owns, http = client is None, None
        if client is None:
            provider = tracing.provider if tracing is not None else None
            client, http = make_upstream_client(settings, tracer_provider=provider)
        metrics = ProxyMetrics()
        if client is not None and client.breaker is not None:
            metrics.watch_breaker(client.breaker)
        limits = build_limits(settings, metrics)
        state = cls(
            http=http,
            settings=settings,
            client=client,
            owns_client=owns,
            auth=ClientAuth.from_settings(settings, limits.auth_failures, metrics),
            rate=limits.rate,
            slots=limits.slots,
            cors=CorsPolicy(settings.cors_origins),
            metrics=metrics,
            shared=limits.shared,
            held=Redactor(settings_secrets(settings)),
            tracing=tracing,
            budgets=limits.budgets,
            accountant=UsageAccountant(
                metrics.usage, limits.budgets, ModelLabels.from_settings(settings)
            ),
            resume=resumable_streams(settings, metrics.registry),
        )
        if tracing is not None:
            tracing.redactor = state.redactor  # spans redact what log lines redact
        return state

    def redactor(self) -> Redactor:
        """Every secret the proxy holds now: the settings' and the upstream client's token.

        Memoised on the client's secrets, so it is rebuilt only when the token changes.
        """
        auth = self.client.auth if self.client is not None else None
        secrets = getattr(auth, "secrets", None)
        live: tuple[str, ...] = tuple(secrets()) if callable(secrets) else ()
        if live != self._live[0]:
            self._live = (live, self.held.with_secrets(live))
        return self._live[1] if live else self.held

    async def aclose(self) -> None:
        """Close the upstream client and its pool if this app created them."""
        if self.owns_client and self.client is not None:
            await self.client.aclose()
        if self.http is not None:
            await self.http.aclose()
        if self.shared is not None:
            await self.shared.aclose()
        if self.resume is not None:
            await self.resume.aclose()
        if self.tracing is not None:
            # In a thread: exporting what is queued may wait on the collector's timeout.
            await asyncio.to_thread(self.tracing.shutdown)


def make_upstream_client(
    settings: ProxySettings, *, tracer_provider: Any | None = None
) -> tuple[AsyncGlooClient | None, httpx.AsyncClient | None]:
    """One client for every request, and the pool it uses (None without credentials).

    The pool has no cap of its own: ``StreamSlots`` caps upstream streams, and a second,
    silent cap in the pool would queue requests instead of refusing them.
    """
    if settings.auth_mode == "none":
        return None, None
    # A lean HTTP/1.1 transport: reading the upstream is most of a relay's work.
    http = httpx.AsyncClient(
        transport=StreamingTransport(
            max_event_bytes=settings.proxy_max_event_bytes,
            max_decoded_bytes=settings.proxy_max_decoded_bytes,
        )
    )
    client = AsyncGlooClient(settings=settings, http_client=http, tracer_provider=tracer_provider)
    return client, http


def settings_secrets(settings: ProxySettings) -> list[str]:
    """The secret values in ``settings``, in every form they are sent in."""
    held = [*settings.api_keys, *settings.metrics_keys]
    for secret in (
        settings.gloo_api_key,
        settings.gloo_client_secret,
        settings.gloo_fallback_api_key,
        settings.proxy_redis_url,
    ):
        if secret is not None:
            held.append(secret.get_secret_value())
    if settings.gloo_client_id and settings.gloo_client_secret is not None:
        client_secret = settings.gloo_client_secret.get_secret_value()
        held.append(basic_credential(settings.gloo_client_id, client_secret))
    password = _redis_password(settings)
    if password:
        held.append(password)
    return held


def _redis_password(settings: ProxySettings) -> str | None:
    if settings.proxy_redis_url is None:
        return None
    return urllib.parse.urlsplit(settings.proxy_redis_url.get_secret_value()).password
