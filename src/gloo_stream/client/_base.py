"""Every decision the two clients share, so ``_sync`` and ``_async`` only move bytes and sleep.

Here: what each keyword defaults to, which credential is sent (to the primary or the
fallback), the timeouts, the retry policy and the request; the course of one answer is in
``_answer``. That course is a sans-IO *flow*: a generator that
yields the I/O it needs next (a ``Step``: send, read, close, sleep) or the chunks it has ready
(a list, to hand on), and is sent what the I/O returned, or has its failure thrown in. Each
twin runs the same flows with its own runner: blocking calls in ``GlooClient``, awaits in
``AsyncGlooClient``; nothing else about a request or an answer is decided there.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import httpx
import msgspec

from gloo_stream.client._steps import Drain, Flow, Send
from gloo_stream.client.auth import BearerAuth, ClientCredentialsAuth, redactor_for
from gloo_stream.client.fallback import breaker_for, fallback_from
from gloo_stream.config import GlooSettings, load_settings
from gloo_stream.errors import (
    APIConnectionError,
    APITimeoutError,
    MissingCredentialsError,
    error_from_response,
)
from gloo_stream.failover import Upstream, UpstreamRoute, fallback_body
from gloo_stream.redaction import NO_SECRETS
from gloo_stream.request import build_chat_request
from gloo_stream.retry import RetryPolicy

__all__ = ["POOL_LIMITS", "ClientBase", "Messages", "OnRetry", "OnToken", "clock"]

Messages = str | Sequence[Mapping[str, Any]]
OnToken = Callable[[str], None]
OnRetry = Callable[[Exception, float], None]
clock = time.perf_counter
POOL_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=100)

# -- the client: settings, credentials, timeouts, retries, the request --------------------

T = TypeVar("T")
HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)


class ClientBase(Generic[HttpT]):
    """What both twins share; every keyword defaults from ``settings`` (environment, ``.env``).

    ``api_url``: the chat completions endpoint (``GLOO_API_URL``). Credentials, first found
    wins: ``api_key``; ``client_id`` with ``client_secret`` (OAuth2 client credentials at
    ``token_url``); then the same from settings; or pass any ``httpx.Auth`` as ``auth``.
    ``timeout``: connect (and write, pool); ``first_byte_timeout``: until the response
    starts; ``read_timeout``: idle between bytes once it has. ``max_retries`` (or a whole
    ``retry_policy``); ``headers`` added to every request; ``http_client``: a pool to use
    (the client then leaves closing it to you). ``fallback_api_url``, ``fallback_api_key``
    and ``fallback_model`` (``GLOO_FALLBACK_*``): an OpenAI-compatible server for calls the
    primary fails before answering (``gloo_stream.failover`` says which), skipped to while
    the primary's circuit breaker is open (``GLOO_BREAKER_*``). ``tracer_provider``: an
    OpenTelemetry tracer provider for the per-attempt client spans (default: the global one,
    when the application configured one; else no spans and nothing imported).
    """

    def __init__(
        self,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_url: str | None = None,
        timeout: float | None = None,
        read_timeout: float | None = None,
        first_byte_timeout: float | None = None,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        auth: httpx.Auth | None = None,
        settings: GlooSettings | None = None,
        headers: Mapping[str, str] | None = None,
        http_client: HttpT | None = None,
        fallback_api_url: str | None = None,
        fallback_api_key: str | None = None,
        fallback_model: str | None = None,
        tracer_provider: Any | None = None,
    ) -> None:
        # ConfigurationError naming the variable, not pydantic's ValidationError.
        s = settings if settings is not None else load_settings(GlooSettings)
        self.api_url = api_url or s.gloo_api_url
        self.auth = auth or _make_auth(s, api_key, client_id, client_secret, token_url)
        connect = _given(timeout, s.gloo_connect_timeout)
        first_byte = _given(first_byte_timeout, s.gloo_first_byte_timeout)
        self.read_timeout = _given(read_timeout, s.gloo_read_timeout)
        # Until the response starts, reads wait up to first_byte; after, the idle limit applies.
        self.timeout = httpx.Timeout(connect=connect, read=first_byte, write=connect, pool=connect)
        self.retry_policy = retry_policy or RetryPolicy(
            max_retries=_given(max_retries, s.gloo_max_retries),
            max_wait=s.gloo_max_retry_wait,
            deadline=s.gloo_retry_deadline,
        )
        self.headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        self.headers.update(headers or {})
        # GLOO_MODEL, GLOO_MODEL_FAMILY, GLOO_TRADITION: filled in where a call names none.
        self.request_defaults = s.request_defaults
        self.fallback = fallback_from(s, fallback_api_url, fallback_api_key, fallback_model)
        # One breaker per client: every call through it tells it how the primary is doing.
        self.breaker = breaker_for(s, self.fallback)
        self.tracer_provider = tracer_provider
        self._owns_http = http_client is None
        self._http: HttpT = http_client if http_client is not None else self._new_pool()

    def _new_pool(self) -> HttpT:
        """The connection pool a client makes for itself when given none."""
        raise NotImplementedError

    def _body(self, prompt_or_messages: Messages, params: Mapping[str, Any]) -> dict[str, Any]:
        return build_chat_request(prompt_or_messages, defaults=self.request_defaults, **params)

    def route(self, now: float) -> UpstreamRoute:
        """The course of one call's attempts: the primary and its retries, then the fallback."""
        return UpstreamRoute(
            self.retry_policy, now=now, breaker=self.breaker, fallback=self.fallback is not None
        )

    def _request(
        self,
        body: dict[str, Any],
        upstream: Upstream = "primary",
        headers: dict[str, str] | None = None,
    ) -> tuple[httpx.Request, httpx.Auth | None]:
        """The request for ``upstream`` (the fallback's own body, URL and credential);
        ``headers`` are added to the client's own (an attempt span's ``traceparent``)."""
        url: str = self.api_url
        auth: httpx.Auth | None = self.auth
        fallback = self.fallback
        if upstream == "fallback" and fallback is not None:
            body = fallback_body(body, fallback.model)
            url, auth = fallback.url, fallback.auth
        request = self._http.build_request(
            "POST",
            url,
            content=msgspec.json.encode(body),
            headers={**self.headers, **headers} if headers else self.headers,
            timeout=self.timeout,
        )
        return request, auth

    def _resume_request(self, url: str, last_event_id: str) -> httpx.Request:
        """``GET`` the rest of a resumable answer after event ``last_event_id``."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        return self._http.build_request("GET", url, headers=headers, timeout=self.timeout)

    def _attempt(
        self,
        body: dict[str, Any],
        upstream: Upstream = "primary",
        headers: dict[str, str] | None = None,
    ) -> Flow[httpx.Response]:
        """One try at sending ``body`` to ``upstream``: the response, once it was accepted.

        Anything else is raised as the matching ``GlooError``; the call's route decides
        whether to try again, and where.
        """
        request, auth = self._request(body, upstream, headers)
        response = yield from self._exchange(request, auth)
        return response

    def _exchange(self, request: httpx.Request, auth: httpx.Auth | None) -> Flow[httpx.Response]:
        """Send ``request``; an error status or a transport failure is raised as a GlooError."""
        try:
            response: httpx.Response = yield Send(request, auth)
        except httpx.TransportError as exc:
            raise connection_error(exc, str(request.url)) from None
        if response.status_code >= 300:
            try:
                content: bytes = yield Drain(response)
            except httpx.TransportError:
                content = b""
            raise error_from_response(
                response.status_code,
                content,
                response.headers,
                now=time.time(),
                redactor=redactor_for(auth, response.request) if auth else NO_SECRETS,
            )
        # httpcore reads the read timeout from this dict when body reading starts, so from
        # here on a silent stream fails after read_timeout instead of first_byte_timeout.
        timeouts = response.request.extensions.get("timeout")
        if isinstance(timeouts, dict):
            timeouts["read"] = self.read_timeout
        return response


def _given(value: T | None, default: T) -> T:
    return value if value is not None else default


def _make_auth(
    s: GlooSettings,
    api_key: str | None,
    client_id: str | None,
    client_secret: str | None,
    token_url: str | None,
) -> httpx.Auth:
    if api_key:
        return BearerAuth(api_key)
    if client_id and client_secret:
        return _oauth(s, client_id, client_secret, token_url)
    if s.gloo_api_key is not None:
        return BearerAuth(s.gloo_api_key.get_secret_value())
    if s.gloo_client_id and s.gloo_client_secret is not None:
        return _oauth(s, s.gloo_client_id, s.gloo_client_secret.get_secret_value(), token_url)
    raise MissingCredentialsError()


def _oauth(s: GlooSettings, cid: str, secret: str, token_url: str | None) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        cid,
        secret,
        token_url or s.gloo_token_url,
        scope=s.gloo_token_scope,
        style=s.gloo_token_auth,
    )


def connection_error(exc: httpx.TransportError, url: str) -> APIConnectionError:
    """The error for a request that never got an answer (``url`` unless the token's failed)."""
    what = type(exc).__name__
    requested = url
    with contextlib.suppress(RuntimeError):  # httpx raises when the error has no request
        url = str(exc.request.url)  # the token endpoint, when that is what failed
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"Timed out waiting for {url} ({what}); the server may be busy")
    # Name only the setting of the URL that failed: an API-key user has no token endpoint.
    setting = "GLOO_API_URL" if url == requested else "GLOO_TOKEN_URL"
    return APIConnectionError(f"Could not reach {url} ({what}); check {setting} and the network")
