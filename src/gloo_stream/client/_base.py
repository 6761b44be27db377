"""The client's settings, shared by ``GlooClient`` and ``AsyncGlooClient``: one copy of each rule.

Here: what each keyword defaults to, which credential is sent (to the primary or the
fallback), the timeouts, the retry policy, the clock the retries and the breaker read, and
the requests themselves. The course of one answer (send, retry, move to the fallback, read,
reconnect) is not here but in ``_answer``, as a sans-IO flow (``_steps`` says how one is run);
it uses only the names ``_answer.AnswerClient`` lists, which ``ClientBase`` provides.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import httpx
import msgspec

from gloo_stream.client.auth import BearerAuth, ClientCredentialsAuth
from gloo_stream.client.fallback import breaker_for, fallback_from
from gloo_stream.config import GlooSettings, grounded_url_for, load_settings
from gloo_stream.errors import MissingCredentialsError
from gloo_stream.failover import Upstream, UpstreamRoute, fallback_body
from gloo_stream.grounding import is_grounded
from gloo_stream.request import build_chat_request, with_grounding
from gloo_stream.retry import RetryPolicy

__all__ = ["POOL_LIMITS", "ClientBase", "Clock", "Messages", "OnRetry", "OnToken", "clock"]

Messages = str | Sequence[Mapping[str, Any]]
OnToken = Callable[[str], None]
OnRetry = Callable[[Exception, float], None]
Clock = Callable[[], float]
# An answer's own timings (time to first token, how long it took) are measured on this one
# always; the client's ``clock=`` is for the retries' deadline and the breaker's cool-down.
clock: Clock = time.perf_counter
POOL_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=100)

# -- the client: settings, credentials, timeouts, retries, the request --------------------

T = TypeVar("T")
HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)


class ClientBase(Generic[HttpT]):
    """What both twins share; every keyword defaults from ``settings`` (environment, ``.env``).

    ``api_url``: the chat completions endpoint (``GLOO_API_URL``); ``grounded_url``: where
    grounded calls go (``GLOO_GROUNDED_URL``, else derived from ``api_url``). Credentials,
    first found wins: ``api_key``; ``client_id`` with ``client_secret`` (OAuth2 client
    credentials at ``token_url``); then the same from settings; or pass any ``httpx.Auth``
    as ``auth``.
    ``timeout``: connect (and write, pool); ``first_byte_timeout``: until the response
    starts; ``read_timeout``: idle between bytes once it has. ``max_retries`` (or a whole
    ``retry_policy``); ``headers`` added to every request; ``http_client``: a pool to use
    (the client then leaves closing it to you). ``fallback_api_url``, ``fallback_api_key``
    and ``fallback_model`` (``GLOO_FALLBACK_*``): an OpenAI-compatible server for calls the
    primary fails before answering (``gloo_stream.failover`` says which), skipped to while
    the primary's circuit breaker is open (``GLOO_BREAKER_*``). ``tracer_provider``: an
    OpenTelemetry tracer provider for the per-attempt client spans (default: the global one,
    when the application configured one; else no spans and nothing imported).
    ``clock``: monotonic seconds, read for the retries' deadline and the breaker's cool-down
    (default ``time.perf_counter``); ``sleep``: how to wait between attempts (default
    ``time.sleep``, or ``asyncio.sleep`` for the async twin). Tests give both, to pass a
    cool-down without waiting for it. ``max_continuations`` (``GLOO_MAX_CONTINUATIONS``,
    default 2): times an answer cut after text arrived is continued where it stopped, with
    ``continue_instruction`` (``GLOO_CONTINUE_INSTRUCTION``) after the text so far.
    """

    def __init__(
        self,
        *,
        api_url: str | None = None,
        grounded_url: str | None = None,
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
        clock: Clock | None = None,
        sleep: Callable[[float], Any] | None = None,
        max_continuations: int | None = None,
        continue_instruction: str | None = None,
    ) -> None:
        # ConfigurationError naming the variable, not pydantic's ValidationError.
        s = settings if settings is not None else load_settings(GlooSettings)
        self.api_url = api_url or s.gloo_api_url
        # Grounded calls (rag_publisher, sources_limit) go here: GLOO_GROUNDED_URL, else
        # Gloo's, else derived from a changed api_url, as ``config.grounded_url_for`` says.
        self.grounded_url = grounded_url or grounded_url_for(self.api_url, s.gloo_grounded_url)[0]
        self.grounding_defaults = s.grounding_defaults  # GLOO_RAG_PUBLISHER, GLOO_SOURCES_LIMIT
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
        # A cut answer is continued where it stopped (``gloo_stream.continuation``).
        self.max_continuations = _given(max_continuations, s.gloo_max_continuations)
        if self.max_continuations < 0:
            raise ValueError("max_continuations must be 0 or more")
        self.continue_instruction = _given(continue_instruction, s.gloo_continue_instruction)
        self.headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        self.headers.update(headers or {})
        # GLOO_MODEL, GLOO_MODEL_FAMILY, GLOO_TRADITION: filled in where a call names none.
        self.request_defaults = s.request_defaults
        self.fallback = fallback_from(s, fallback_api_url, fallback_api_key, fallback_model)
        # One breaker per client: every call through it tells it how the primary is doing.
        self.breaker = breaker_for(s, self.fallback)
        self.tracer_provider = tracer_provider
        self.clock: Clock = clock if clock is not None else time.perf_counter
        self._sleep = sleep  # None: the twin's own (time.sleep, asyncio.sleep)
        self._owns_http = http_client is None
        # Parsed URLs by text: httpx parses a URL given as text on every request (about
        # half of building one), and a client sends to the same two or three URLs.
        self._urls: dict[str, httpx.URL] = {}
        self._http: HttpT = http_client if http_client is not None else self._new_pool()

    def _new_pool(self) -> HttpT:
        """The connection pool a client makes for itself when given none."""
        raise NotImplementedError

    def _body(self, prompt_or_messages: Messages, params: Mapping[str, Any]) -> dict[str, Any]:
        params = dict(params)
        grounded = params.pop("grounded", None)
        params = with_grounding(params, grounded=grounded, defaults=self.grounding_defaults)
        return build_chat_request(prompt_or_messages, defaults=self.request_defaults, **params)

    # -- what an answer's course asks of its client (``_answer.AnswerClient``) --------------

    def route(self, now: float) -> UpstreamRoute:
        """The course of one call's attempts: the primary and its retries, then the fallback."""
        return UpstreamRoute(
            self.retry_policy, now=now, breaker=self.breaker, fallback=self.fallback is not None
        )

    def upstream_url(self, upstream: Upstream, body: Mapping[str, Any] | None = None) -> str:
        """Where an attempt on ``upstream`` (sending ``body``) goes."""
        fallback = self.fallback
        if upstream == "fallback" and fallback:
            return fallback.url
        return self.primary_url(body) if body is not None else self.api_url

    def primary_url(self, body: Mapping[str, Any]) -> str:
        """The primary's URL for ``body``: the grounded endpoint for a grounded request."""
        return self.grounded_url if is_grounded(body) else self.api_url

    def request_for(
        self,
        body: dict[str, Any],
        upstream: Upstream = "primary",
        headers: dict[str, str] | None = None,
    ) -> tuple[httpx.Request, httpx.Auth | None]:
        """The request for ``upstream`` (the fallback's own body, URL and credential);
        ``headers`` are added to the client's own (an attempt span's ``traceparent``)."""
        url: str = self.primary_url(body)
        auth: httpx.Auth | None = self.auth
        fallback = self.fallback
        if upstream == "fallback" and fallback is not None:
            body = fallback_body(body, fallback.model)
            url, auth = fallback.url, fallback.auth
        request = self._http.build_request(
            "POST",
            self._parsed(url),
            content=msgspec.json.encode(body),
            headers={**self.headers, **headers} if headers else self.headers,
            timeout=self.timeout,
        )
        return request, auth

    def _parsed(self, url: str) -> httpx.URL:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= 16:  # the configured URLs: a handful, never unbounded
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    def reconnect_request(
        self, url: str, last_event_id: str
    ) -> tuple[httpx.Request, httpx.Auth | None]:
        """``GET`` the rest of a resumable proxy answer after event ``last_event_id``."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        request = self._http.build_request("GET", url, headers=headers, timeout=self.timeout)
        return request, self.auth


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
