"""Authentication as httpx auth flows: a static bearer key, or OAuth2 client credentials.

The OAuth token is cached and refreshed ahead of expiry. Concurrent callers that find it
missing or stale share one refresh (double-checked under a lock: ``threading.Lock`` for the
sync client, ``asyncio.Lock`` for the async one). A 401 answered to an OAuth token drops
that token and retries the request once with a fresh one; with a static key a 401 is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Literal, TypeVar

import httpx
import msgspec

from gloo_stream.errors import APIConnectionError, AuthenticationError, error_from_response
from gloo_stream.redaction import Redactor, basic_credential

__all__ = ["BearerAuth", "ClientCredentialsAuth", "TokenCache", "redactor_for"]

TokenAuthStyle = Literal["auto", "basic", "form"]
_T = TypeVar("_T")


_TOKEN_TIMEOUT = httpx.Timeout(10.0).as_dict()


class BearerAuth(httpx.Auth):
    """A static bearer credential: a Gloo API key, or any OpenAI-compatible server's key."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach the key."""
        self.sign(request)
        yield request

    def sign(self, request: httpx.Request) -> None:
        """Attach the key to ``request`` (the whole flow: no response is ever looked at)."""
        request.headers["Authorization"] = self._header

    def __repr__(self) -> str:
        return "BearerAuth(token=***)"

    def secrets(self) -> tuple[str, ...]:
        """The secrets this credential sends (to redact from anything echoed back)."""
        return (self._header.removeprefix("Bearer "),)


class _Lock(enum.Enum):
    """What a flow asks of its runner's refresh lock."""

    TAKE = "take"
    RELEASE = "release"


@dataclasses.dataclass(frozen=True, slots=True)
class _Fetch:
    """A token request: the runner sends it and reads its whole answer before replying."""

    request: httpx.Request


_Step = _Lock | _Fetch | httpx.Request  # a bare request is the caller's: sent, body unread
_Flow = Generator[_Step, Any, _T]


class _Token(msgspec.Struct):
    access_token: str
    expires_in: float = 3600.0
    token_type: str = "Bearer"


class TokenCache:
    """One access token and when it stops being usable (sans-IO: callers pass the time)."""

    __slots__ = ("_expires_at", "_refresh_at", "_token")

    def __init__(self) -> None:
        self._token: str | None = None
        self._expires_at = 0.0
        self._refresh_at = 0.0

    def valid(self, now: float) -> str | None:
        """The token, unless missing or due for refresh."""
        return self._token if self._token is not None and now < self._refresh_at else None

    @property
    def expires_at(self) -> float:
        """When the cached token expires (clock of the ``now`` values given to ``store``)."""
        return self._expires_at

    def store(self, token: str, expires_in: float, now: float) -> None:
        """Keep a fresh token; it is refreshed a little before it expires."""
        # Refresh 10% early (at most a minute), so no request leaves with a dying token.
        margin = min(60.0, max(0.0, expires_in) * 0.1)
        self._token = token
        self._expires_at = now + expires_in
        self._refresh_at = now + expires_in - margin

    @property
    def current(self) -> str | None:
        """The cached token, fresh or not (None when there is none)."""
        return self._token

    def invalidate(self, token: str | None = None) -> None:
        """Drop the token (only if it is still ``token``, so a newer one survives)."""
        if token is None or token == self._token:
            self._token = None
            self._refresh_at = 0.0


class ClientCredentialsAuth(httpx.Auth):
    """OAuth2 client-credentials flow against Gloo's token endpoint."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        token_url: str,
        *,
        scope: str = "api/access",
        style: TokenAuthStyle = "auto",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self.token_url = token_url
        self._scope = scope
        self._styles: tuple[str, ...] = ("basic", "form") if style == "auto" else (style,)
        self._clock = clock
        self.cache = TokenCache()
        self.token_requests = 0
        self._sync_lock = threading.Lock()
        self._async_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(client_id={self._client_id!r}, client_secret=***)"

    def secrets(self) -> tuple[str, ...]:
        """The client secret, its Basic form and the cached token (to redact from echoes)."""
        held = (self._client_secret, basic_credential(self._client_id, self._client_secret))
        token = self.cache.current
        return (*held, token) if token else held

    # -- the flows httpx drives ---------------------------------------------------------
    # One flow (``_flow``) holds the logic; a runner for threads and one for asyncio do only
    # what differs: which lock, and ``read`` or ``aread``. The token request goes out
    # through the client sending the request, so it shares the connection pool.

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach a valid token, fetching one if needed; on 401, refresh once and resend."""
        yield from _run_on_thread(self._flow(request), self._sync_lock)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """The asyncio runner of the same flow (an ``asyncio.Lock``, ``aread``)."""
        flow = self._flow(request)
        reply: httpx.Response | None = None
        async with contextlib.AsyncExitStack() as held:
            while True:
                try:
                    step = flow.send(reply)
                except StopIteration:
                    return
                reply = None
                if step is _Lock.TAKE:
                    await held.enter_async_context(self._lock())
                elif step is _Lock.RELEASE:
                    await held.aclose()
                else:
                    reply = yield _request_of(step)
                    if isinstance(step, _Fetch):
                        await reply.aread()

    def _lock(self) -> asyncio.Lock:
        # Created on first use, inside the event loop that will use it.
        if self._async_lock is None:
            self._async_lock = asyncio.Lock()
        return self._async_lock

    def get_token(self, client: httpx.Client) -> str:
        """A valid access token, fetched with ``client`` when the cache has none."""
        run = _run_on_thread(self._token(), self._sync_lock)
        with contextlib.closing(run):  # a failed send must not leave the lock held
            try:
                request = next(run)
                while True:
                    request = run.send(_send_token_request(client, request))
            except StopIteration as done:
                return str(done.value)

    # -- the one copy of the logic (sans-IO: yields what to do, receives what came back) ----

    def _flow(self, request: httpx.Request) -> _Flow[None]:
        """Send ``request`` with a valid token; on a 401, drop that token and resend once."""
        stale: str | None = None
        for _ in range(2):
            token = yield from self._token(stale)
            request.headers["Authorization"] = f"Bearer {token}"
            response = yield request
            if response.status_code != 401:
                return
            stale = token

    def _token(self, stale: str | None = None) -> _Flow[str]:
        """A valid token: the cached one, else a fresh one fetched under the lock.

        Double-checked: callers that waited on the lock find the token the first one fetched.
        ``stale`` is a token the API just refused: it is dropped, unless already replaced.
        """
        token = None if stale else self.cache.valid(self._clock())
        if token is not None:
            return token
        yield _Lock.TAKE
        if stale:
            self.cache.invalidate(stale)
        token = self.cache.valid(self._clock())
        if token is None:  # nobody refreshed while we waited: we do
            token = yield from self._exchange()
        yield _Lock.RELEASE
        return token

    def _exchange(self) -> _Flow[str]:
        """Ask the token endpoint (Basic, then the form body when ``auto``); keep the token."""
        response: httpx.Response | None = None
        for style in self._styles:
            self.token_requests += 1
            response = yield _Fetch(self._token_request(style))
            if response.status_code == 200:
                return self._store(response)
            if response.status_code not in (400, 401):
                break
        assert response is not None
        raise self._token_error(response)

    def _token_request(self, style: str) -> httpx.Request:
        form = {"grant_type": "client_credentials", "scope": self._scope}
        auth: tuple[str, str] | None = None
        if style == "basic":
            auth = (self._client_id, self._client_secret)
        else:
            form |= {"client_id": self._client_id, "client_secret": self._client_secret}
        # Requests an auth flow yields do not inherit the client's timeouts: set our own, so
        # a silent token endpoint fails instead of hanging every stream waiting on the lock.
        request = httpx.Request(
            "POST", self.token_url, data=form, extensions={"timeout": _TOKEN_TIMEOUT}
        )
        if auth is not None:
            request = next(httpx.BasicAuth(*auth).auth_flow(request))
        return request

    def _store(self, response: httpx.Response) -> str:
        try:
            token = msgspec.json.decode(response.content, type=_Token)
        except msgspec.DecodeError:
            raise AuthenticationError(
                "Authentication failed: the token endpoint's answer had no access_token; "
                "check GLOO_TOKEN_URL",
                status_code=response.status_code,
            ) from None
        self.cache.store(token.access_token, token.expires_in, self._clock())
        return token.access_token

    def _token_error(self, response: httpx.Response) -> Exception:
        redactor = Redactor(self.secrets())
        if response.status_code in (400, 401):
            return AuthenticationError(
                f"Authentication failed ({response.status_code}): the token endpoint refused "
                "the client credentials; check GLOO_CLIENT_ID and GLOO_CLIENT_SECRET",
                status_code=response.status_code,
                body=redactor.text(response.text)[:200],
            )
        return error_from_response(
            response.status_code,
            response.content,
            response.headers,
            now=time.time(),
            redactor=redactor,
        )


def _request_of(step: _Fetch | httpx.Request) -> httpx.Request:
    return step.request if isinstance(step, _Fetch) else step


def _run_on_thread(
    flow: _Flow[_T], lock: threading.Lock
) -> Generator[httpx.Request, httpx.Response, _T]:
    """Run ``flow`` for a thread: a ``threading.Lock``, token answers read with ``read``."""
    reply: httpx.Response | None = None
    with contextlib.ExitStack() as held:
        while True:
            try:
                step = flow.send(reply)
            except StopIteration as done:
                result: _T = done.value
                return result
            reply = None
            if step is _Lock.TAKE:
                held.enter_context(lock)
            elif step is _Lock.RELEASE:
                held.close()
            else:
                reply = yield _request_of(step)
                if isinstance(step, _Fetch):
                    reply.read()


def _send_token_request(client: httpx.Client, request: httpx.Request) -> httpx.Response:
    try:
        return client.send(request)
    except httpx.TransportError as exc:
        raise _token_transport_error(str(request.url), exc) from None


def _token_transport_error(url: str, exc: httpx.TransportError) -> APIConnectionError:
    return APIConnectionError(
        f"Could not reach the token endpoint {url} ({type(exc).__name__}); "
        "check GLOO_TOKEN_URL and the network"
    )


def redactor_for(auth: httpx.Auth, request: httpx.Request | None = None) -> Redactor:
    """Every secret ``auth`` holds, and the credential ``request`` was sent with.

    The request's own ``Authorization`` header covers any auth, ours or a caller's.
    """
    held: list[str] = []
    secrets = getattr(auth, "secrets", None)
    if callable(secrets):
        held.extend(secrets())
    if request is not None:
        value = request.headers.get("authorization")
        if value:
            held.append(value)
            held.append(value.partition(" ")[2].strip())
    return Redactor(held)
