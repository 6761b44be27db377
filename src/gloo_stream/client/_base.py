"""Every decision the two clients share, so ``_sync`` and ``_async`` only move bytes and sleep.

Here: what each keyword defaults to, which credential is sent, the timeouts, the retry policy,
the request, and the course of one answer. That course is a sans-IO *flow*: a generator that
yields the I/O it needs next (a ``Step``: send, read, close, sleep) or the chunks it has ready
(a list, to hand on), and is sent what the I/O returned, or has its failure thrown in. Each
twin runs the same flows with its own runner: blocking calls in ``GlooClient``, awaits in
``AsyncGlooClient``; nothing else about a request or an answer is decided there.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import httpx
import msgspec

from gloo_stream.accumulate import StreamResult
from gloo_stream.client._steps import CLOSE, Drain, Flow, ReadAll, ReadSome, Send, Sleep
from gloo_stream.client.auth import BearerAuth, ClientCredentialsAuth, redactor_for
from gloo_stream.config import GlooSettings
from gloo_stream.errors import (
    APIConnectionError,
    APITimeoutError,
    GlooError,
    MissingCredentialsError,
    StreamDisconnectedError,
    StreamError,
    StreamTimeoutError,
    error_from_response,
)
from gloo_stream.protocol import CompletionProtocol
from gloo_stream.request import build_chat_request
from gloo_stream.retry import RetryPolicy, RetryState
from gloo_stream.wire import ChatCompletionChunk

__all__ = ["ClientBase", "Messages", "OnRetry", "OnToken", "StreamBase"]

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
    (the client then leaves closing it to you).
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
    ) -> None:
        s = settings if settings is not None else GlooSettings()
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
        self._owns_http = http_client is None
        self._http: HttpT = http_client if http_client is not None else self._new_pool()

    def _new_pool(self) -> HttpT:
        """The connection pool a client makes for itself when given none."""
        raise NotImplementedError

    def _body(self, prompt_or_messages: Messages, params: Mapping[str, Any]) -> dict[str, Any]:
        return build_chat_request(prompt_or_messages, defaults=self.request_defaults, **params)

    def _request(self, body: dict[str, Any]) -> httpx.Request:
        return self._http.build_request(
            "POST",
            self.api_url,
            content=msgspec.json.encode(body),
            headers=self.headers,
            timeout=self.timeout,
        )

    def _attempt(self, body: dict[str, Any]) -> Flow[httpx.Response]:
        """One try at sending ``body``: the response, once the server has accepted it.

        Anything else is raised as the matching ``GlooError``; the caller's retry state
        decides whether to try again.
        """
        try:
            response: httpx.Response = yield Send(body)
        except httpx.TransportError as exc:
            raise connection_error(exc, self.api_url) from None
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
                redactor=redactor_for(self.auth, response.request),
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
    with contextlib.suppress(RuntimeError):  # httpx raises when the error has no request
        url = str(exc.request.url)  # the token endpoint, when that is what failed
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"Timed out waiting for {url} ({what}); the server may be busy")
    return APIConnectionError(
        f"Could not reach {url} ({what}); check GLOO_API_URL, GLOO_TOKEN_URL and the network"
    )


# -- one answer: open (retrying), read, and in complete()'s mode start over ---------------

ClientT = TypeVar("ClientT", bound=ClientBase[Any])


class StreamBase(Generic[ClientT]):
    """What both stream twins share: one answer's request, retry budget, course and outcome."""

    def __init__(
        self,
        client: ClientT,
        body: dict[str, Any],
        *,
        on_retry: OnRetry | None = None,
        restart: bool = False,
    ) -> None:
        self._client = client
        self._body = body
        self._started_at = clock()
        self._retry = client.retry_policy.start(self._started_at)
        self._on_retry = on_retry
        self._restart = restart  # complete(): a failure mid-stream starts the answer over
        self._response: httpx.Response | None = None
        self._iterated = False
        self.result: StreamResult | None = None

    @property
    def attempts(self) -> int:
        """How many times the request has been sent so far (1 + retries)."""
        return self._retry.attempts

    def _claim(self) -> None:
        if self._iterated:
            raise RuntimeError("this stream was already read; start a new one with stream()")
        self._iterated = True

    def _opening(self) -> Flow[httpx.Response]:
        """Send until the server accepts, waiting between tries as the retry policy says."""
        while self._response is None:
            try:
                self._response = yield from self._client._attempt(self._body)
            except GlooError as exc:
                yield Sleep(retry_wait(self._retry, exc, self._on_retry))
        return self._response

    def _answer(self) -> Flow[None]:
        """Open, then read to the end; with ``restart``, a failed answer is started over."""
        while True:
            response = yield from self._opening()
            try:
                yield from self._read(response)
                return
            except StreamError as exc:
                if not self._restart:
                    raise
                yield Sleep(retry_wait(self._retry, exc, self._on_retry))

    def _read(self, response: httpx.Response) -> Flow[None]:
        """Hand on the chunks as they arrive; the response is closed before the outcome."""
        protocol = CompletionProtocol(started_at=self._started_at, attempts=self._retry.attempts)
        failure: StreamError | None = None
        try:
            if _is_json(response):
                body = yield ReadAll(response)
                yield protocol.feed_json(body, clock())
            else:
                more = ReadSome(response)
                while not protocol.stopped and (data := (yield more)) is not None:
                    if chunks := protocol.feed(data, clock()):
                        yield chunks
        except httpx.TransportError as exc:
            failure = self._broken(protocol, exc)
        except StreamError as exc:  # a whole JSON answer that does not decode
            failure = exc
        yield CLOSE
        if failure is not None:
            raise failure
        self._finish(protocol)

    def _broken(
        self, protocol: CompletionProtocol, exc: httpx.TransportError
    ) -> StreamError | None:
        """The error for a transport failure, or None when the answer had already ended."""
        if protocol.finished:  # after the end, a broken tail costs nothing
            return None
        error = _stream_error(protocol, exc)
        self.result = error.partial
        return error

    def _finish(self, protocol: CompletionProtocol) -> None:
        try:
            self.result = protocol.finish(clock())
        except StreamError as exc:
            self.result = exc.partial
            raise

    def _whole(self) -> StreamResult:
        """The result of an answer read to its end."""
        assert self.result is not None
        return self.result


def retry_wait(retry: RetryState, error: GlooError, on_retry: OnRetry | None) -> float:
    """How long to wait before the next attempt (raises ``error`` when none is left)."""
    delay = retry.after_failure(error, now=clock(), jitter=random.random())
    if on_retry is not None:
        on_retry(error, delay)  # told before the wait: a 429's wait can be long
    return delay


def tell(on_token: OnToken | None, chunk: ChatCompletionChunk) -> None:
    """Give ``on_token`` the chunk's text, if it has any."""
    if on_token is not None and (text := chunk.content):
        on_token(text)


def _stream_error(protocol: CompletionProtocol, exc: httpx.TransportError) -> StreamError:
    if isinstance(exc, httpx.TimeoutException):
        return protocol.fail(
            StreamTimeoutError,
            "The stream stalled (no data within the read timeout); the partial answer is kept",
            clock(),
        )
    return protocol.fail(
        StreamDisconnectedError,
        f"The connection dropped mid-stream ({type(exc).__name__}); the partial answer is kept",
        clock(),
    )


def _is_json(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("application/json")
