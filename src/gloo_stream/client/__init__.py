"""``GlooClient`` and ``AsyncGlooClient``: thin httpx twins over the sans-IO core.

Every decision (request body, error mapping, SSE and chunk decoding, what counts as the end,
what is retried and when) lives in the core; these classes move bytes and sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import msgspec

from gloo_stream.accumulate import StreamResult
from gloo_stream.client.auth import BearerAuth, ClientCredentialsAuth, redactor_for
from gloo_stream.config import GlooSettings
from gloo_stream.errors import (
    APIConnectionError,
    APITimeoutError,
    MissingCredentialsError,
    StreamError,
    error_from_response,
)
from gloo_stream.request import build_chat_request
from gloo_stream.retry import RetryPolicy
from gloo_stream.streams import AsyncChatStream, ChatStream, OnRetry, clock, retry_wait

__all__ = ["AsyncChatStream", "AsyncGlooClient", "ChatStream", "GlooClient"]

Messages = str | Sequence[Mapping[str, Any]]
OnToken = Callable[[str], None]


class _ClientBase:
    """What both twins share: settings, auth, timeouts, retry policy, request building."""

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
    ) -> None:
        s = settings if settings is not None else GlooSettings()
        self.api_url = api_url or s.gloo_api_url
        self.auth = auth or _make_auth(s, api_key, client_id, client_secret, token_url)
        connect = timeout if timeout is not None else s.gloo_connect_timeout
        first_byte = (
            first_byte_timeout if first_byte_timeout is not None else s.gloo_first_byte_timeout
        )
        self.read_timeout = read_timeout if read_timeout is not None else s.gloo_read_timeout
        # Until the response starts, reads wait up to first_byte; after, the idle limit applies.
        self.timeout = httpx.Timeout(connect=connect, read=first_byte, write=connect, pool=connect)
        self.retry_policy = retry_policy or RetryPolicy(
            max_retries=max_retries if max_retries is not None else s.gloo_max_retries,
            max_wait=s.gloo_max_retry_wait,
            deadline=s.gloo_retry_deadline,
        )
        self.headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        self.headers.update(headers or {})
        # GLOO_MODEL, GLOO_MODEL_FAMILY, GLOO_TRADITION: filled in where a call names none.
        self.request_defaults = s.request_defaults

    def _body(self, prompt_or_messages: Messages, params: Mapping[str, Any]) -> dict[str, Any]:
        return build_chat_request(prompt_or_messages, defaults=self.request_defaults, **params)

    def _request(
        self, http: httpx.Client | httpx.AsyncClient, body: dict[str, Any]
    ) -> httpx.Request:
        return http.build_request(
            "POST",
            self.api_url,
            content=msgspec.json.encode(body),
            headers=self.headers,
            timeout=self.timeout,
        )

    def _started(self, response: httpx.Response) -> None:
        # httpcore reads the read timeout from this dict when body reading starts, so from
        # here on a silent stream fails after read_timeout instead of first_byte_timeout.
        timeouts = response.request.extensions.get("timeout")
        if isinstance(timeouts, dict):
            timeouts["read"] = self.read_timeout


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


def _connection_error(exc: httpx.TransportError, url: str) -> APIConnectionError:
    what = type(exc).__name__
    with contextlib.suppress(RuntimeError):  # httpx raises when the error has no request
        url = str(exc.request.url)  # the token endpoint, when that is what failed
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"Timed out waiting for {url} ({what}); the server may be busy")
    return APIConnectionError(
        f"Could not reach {url} ({what}); check GLOO_API_URL, GLOO_TOKEN_URL and the network"
    )


class GlooClient(_ClientBase):
    """Streams chat completions from Gloo AI (or any OpenAI-compatible server).

    Keyword arguments default from settings (environment and ``.env``): ``api_url``,
    ``api_key`` or ``client_id``/``client_secret`` (with ``token_url``), ``timeout``
    (connect), ``first_byte_timeout``, ``read_timeout`` (idle between bytes), ``max_retries``.
    A call that names no routing uses ``GLOO_MODEL`` (or ``GLOO_MODEL_FAMILY``) when set,
    else Gloo's ``auto_routing``; ``GLOO_TRADITION`` fills in a missing ``tradition``.
    """

    def __init__(self, *, http_client: httpx.Client | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=100)
        )

    def __enter__(self) -> GlooClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (only if this client created it)."""
        if self._owns_http:
            self._http.close()

    def stream(self, prompt_or_messages: Messages, **params: Any) -> ChatStream:
        """Start one answer; use as ``with client.stream(...) as s: for chunk in s: ...``."""
        body = self._body(prompt_or_messages, params)
        started = clock()
        return ChatStream(self, body, retry=self.retry_policy.start(started), started_at=started)

    def complete(
        self,
        prompt_or_messages: Messages,
        *,
        on_token: OnToken | None = None,
        on_retry: OnRetry | None = None,
        **params: Any,
    ) -> StreamResult:
        """Stream one whole answer and return it, retrying per the policy.

        A failure mid-stream restarts the request (``on_retry`` is told, and ``on_token``
        sees the new answer from its start); when the budget is spent, the error raised
        carries the partial answer. ``on_retry`` is also told before waiting to retry a
        request that failed before streaming (a 429's wait can be long).
        """
        body = self._body(prompt_or_messages, params)
        started = clock()
        retry = self.retry_policy.start(started)
        while True:
            stream = ChatStream(self, body, retry=retry, started_at=started, on_retry=on_retry)
            try:
                with stream:
                    for chunk in stream:
                        if on_token is not None and (text := chunk.content):
                            on_token(text)
            except StreamError as exc:
                time.sleep(retry_wait(retry, exc, on_retry))
                continue
            assert stream.result is not None
            return stream.result

    def _open(self, body: dict[str, Any]) -> httpx.Response:
        request = self._request(self._http, body)
        try:
            response = self._http.send(request, stream=True, auth=self.auth)
        except httpx.TransportError as exc:
            raise _connection_error(exc, self.api_url) from None
        if response.status_code >= 300:
            try:
                content = response.read()
            except httpx.TransportError:
                content = b""
            finally:
                response.close()
            raise error_from_response(
                response.status_code,
                content,
                response.headers,
                now=time.time(),
                redactor=redactor_for(self.auth, response.request),
            )
        self._started(response)
        return response


class AsyncGlooClient(_ClientBase):
    """The asyncio twin of ``GlooClient``: same arguments, ``await``-able methods."""

    def __init__(self, *, http_client: httpx.AsyncClient | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=100)
        )

    async def __aenter__(self) -> AsyncGlooClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (only if this client created it)."""
        if self._owns_http:
            await self._http.aclose()

    def stream(self, prompt_or_messages: Messages, **params: Any) -> AsyncChatStream:
        """Start one answer; use as ``async with client.stream(...) as s: async for c in s``."""
        body = self._body(prompt_or_messages, params)
        started = clock()
        return AsyncChatStream(
            self, body, retry=self.retry_policy.start(started), started_at=started
        )

    async def complete(
        self,
        prompt_or_messages: Messages,
        *,
        on_token: OnToken | None = None,
        on_retry: OnRetry | None = None,
        **params: Any,
    ) -> StreamResult:
        """Stream one whole answer and return it; see ``GlooClient.complete``."""
        body = self._body(prompt_or_messages, params)
        started = clock()
        retry = self.retry_policy.start(started)
        while True:
            stream = AsyncChatStream(self, body, retry=retry, started_at=started, on_retry=on_retry)
            try:
                async with stream:
                    async for chunk in stream:
                        if on_token is not None and (text := chunk.content):
                            on_token(text)
            except StreamError as exc:
                await asyncio.sleep(retry_wait(retry, exc, on_retry))
                continue
            assert stream.result is not None
            return stream.result

    async def _open(self, body: dict[str, Any]) -> httpx.Response:
        request = self._request(self._http, body)
        try:
            response = await self._http.send(request, stream=True, auth=self.auth)
        except httpx.TransportError as exc:
            raise _connection_error(exc, self.api_url) from None
        if response.status_code >= 300:
            try:
                content = await response.aread()
            except httpx.TransportError:
                content = b""
            finally:
                await response.aclose()
            raise error_from_response(
                response.status_code,
                content,
                response.headers,
                now=time.time(),
                redactor=redactor_for(self.auth, response.request),
            )
        self._started(response)
        return response
