"""Auth flows in isolation: httpx.MockTransport stands in for the token and API endpoints.

``ClientCredentialsAuth`` holds its logic once (a sans-IO flow) and runs it two ways: on
threads (``sync_auth_flow``, ``get_token``) and on asyncio (``async_auth_flow``). The flow's
tests run through both httpx clients, via the ``http`` fixture.
"""

from __future__ import annotations

import asyncio
import base64
import urllib.parse
from collections.abc import Callable, Iterator

import httpx
import pytest

from gloo_stream.client.auth import BearerAuth, ClientCredentialsAuth, TokenCache
from gloo_stream.errors import APIConnectionError, AuthenticationError, ServerError

SECRET = "s3cret-value"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeGloo:
    """Issues numbered tokens; the API accepts only the newest one."""

    def __init__(self, *, accept_basic: bool = True) -> None:
        self.accept_basic = accept_basic
        self.token_calls: list[dict[str, str]] = []
        self.api_auth: list[str] = []
        self.valid = ""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            form = dict(urllib.parse.parse_qsl(request.content.decode()))
            basic = request.headers.get("authorization", "")
            self.token_calls.append({**form, "basic": basic})
            expected = "Basic " + base64.b64encode(f"cid:{SECRET}".encode()).decode()
            ok_basic = self.accept_basic and basic == expected
            ok_form = form.get("client_id") == "cid" and form.get("client_secret") == SECRET
            if form.get("grant_type") != "client_credentials" or not (ok_basic or ok_form):
                return httpx.Response(401, json={"error": "invalid_client"})
            self.valid = f"tok-{len(self.token_calls)}"
            return httpx.Response(200, json={"access_token": self.valid, "expires_in": 3600})
        self.api_auth.append(request.headers.get("authorization", ""))
        if request.headers.get("authorization") != f"Bearer {self.valid}":
            return httpx.Response(401, json={"error": "Invalid or expired token"})
        return httpx.Response(200, text="ok")


def oauth(clock: FakeClock, style: str = "auto", secret: str = SECRET) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        "cid",
        secret,
        "http://gloo.test/oauth2/token",
        style=style,  # type: ignore[arg-type]
        clock=clock,
    )


class Http:
    """One httpx client, sync or async, behind a blocking ``post`` (the flow's two runners)."""

    def __init__(self, kind: str, auth: httpx.Auth, handler: Handler) -> None:
        self.kind = kind
        transport = httpx.MockTransport(handler)
        self._runner = asyncio.Runner()
        self._sync = httpx.Client(transport=transport, auth=auth)
        self._async = httpx.AsyncClient(transport=transport, auth=auth)

    def post(self, url: str = "http://gloo.test/api") -> httpx.Response:
        if self.kind == "sync":
            return self._sync.post(url)
        return self._runner.run(self._async.post(url))

    def close(self) -> None:
        self._sync.close()
        self._runner.run(self._async.aclose())
        self._runner.close()


Handler = Callable[[httpx.Request], httpx.Response]
MakeHttp = Callable[[httpx.Auth, Handler], Http]


@pytest.fixture(params=["sync", "async"])
def http(request: pytest.FixtureRequest) -> Iterator[MakeHttp]:
    made: list[Http] = []

    def make(auth: httpx.Auth, handler: Handler) -> Http:
        made.append(Http(request.param, auth, handler))
        return made[-1]

    yield make
    for client in made:
        client.close()


def test_token_is_fetched_once_and_reused(http: MakeHttp) -> None:
    fake, clock = FakeGloo(), FakeClock()
    client = http(oauth(clock), fake)
    for _ in range(3):
        assert client.post().status_code == 200
    assert len(fake.token_calls) == 1
    assert fake.token_calls[0]["scope"] == "api/access"
    assert fake.api_auth == ["Bearer tok-1"] * 3


def test_token_is_refreshed_ahead_of_expiry(http: MakeHttp) -> None:
    fake, clock = FakeGloo(), FakeClock()
    client = http(oauth(clock), fake)
    client.post()
    clock.now += 3600 - 61  # a minute and a second before expiry: still fine
    client.post()
    assert len(fake.token_calls) == 1
    clock.now += 2  # inside the refresh margin
    client.post()
    assert len(fake.token_calls) == 2
    assert fake.api_auth[-1] == "Bearer tok-2"


def test_a_401_refreshes_once_and_resends(http: MakeHttp) -> None:
    fake, clock = FakeGloo(), FakeClock()
    client = http(oauth(clock), fake)
    client.post()
    fake.valid = "revoked-server-side"
    response = client.post()
    assert response.status_code == 200
    assert fake.api_auth == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


def test_a_second_401_is_returned_not_looped(http: MakeHttp) -> None:
    fake, clock = FakeGloo(), FakeClock()

    def always_401(request: httpx.Request) -> httpx.Response:
        return fake(request) if request.url.path == "/oauth2/token" else httpx.Response(401)

    assert http(oauth(clock), always_401).post().status_code == 401
    assert len(fake.token_calls) == 2


def test_basic_refused_falls_back_to_form_body_and_remembers_nothing_secret(
    http: MakeHttp,
) -> None:
    fake, clock = FakeGloo(accept_basic=False), FakeClock()
    assert http(oauth(clock), fake).post().status_code == 200
    assert fake.token_calls[0]["basic"].startswith("Basic ")
    assert fake.token_calls[1]["client_secret"] == SECRET
    assert "client_secret" not in fake.token_calls[0]


def test_form_only_style_never_sends_basic(http: MakeHttp) -> None:
    fake, clock = FakeGloo(), FakeClock()
    http(oauth(clock, style="form"), fake).post()
    assert [c["basic"] for c in fake.token_calls] == [""]


def test_bad_credentials_give_a_clear_error_without_the_secret(http: MakeHttp) -> None:
    fake, clock = FakeGloo(), FakeClock()
    auth = oauth(clock, secret="wrong")
    with pytest.raises(AuthenticationError) as caught:
        http(auth, fake).post()
    assert "GLOO_CLIENT_ID" in str(caught.value)
    assert "wrong" not in str(caught.value)
    assert "wrong" not in repr(auth)


def test_a_token_endpoint_error_is_typed_and_the_lock_released(http: MakeHttp) -> None:
    fake, clock = FakeGloo(), FakeClock()
    down = [True]

    def flaky(request: httpx.Request) -> httpx.Response:
        if down[0] and request.url.path == "/oauth2/token":
            return httpx.Response(503, text="maintenance")
        return fake(request)

    client = http(oauth(clock), flaky)
    with pytest.raises(ServerError, match="503"):
        client.post()
    down[0] = False
    assert client.post().status_code == 200  # a held lock would hang here


def test_a_dropped_token_request_releases_the_lock(http: MakeHttp) -> None:
    fake, clock = FakeGloo(), FakeClock()
    down = [True]

    def dropping(request: httpx.Request) -> httpx.Response:
        if down[0] and request.url.path == "/oauth2/token":
            raise httpx.ConnectError("refused", request=request)
        return fake(request)

    auth = oauth(clock)
    client = http(auth, dropping)
    with pytest.raises(httpx.ConnectError):
        client.post()
    assert not auth._sync_lock.locked()
    down[0] = False
    assert client.post().status_code == 200


async def test_concurrent_async_requests_share_one_token_request() -> None:
    fake, clock = FakeGloo(), FakeClock()

    async def slow_token(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            await asyncio.sleep(0)  # let every other request reach the lock meanwhile
        return fake(request)

    auth = oauth(clock)
    async with httpx.AsyncClient(transport=httpx.MockTransport(slow_token), auth=auth) as client:
        responses = await asyncio.gather(*(client.post("http://gloo.test/api") for _ in range(50)))
    assert [r.status_code for r in responses] == [200] * 50
    assert len(fake.token_calls) == 1
    assert auth.token_requests == 1


def test_bearer_auth_and_repr_hide_the_key() -> None:
    seen: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200)

    auth = BearerAuth("key-123")
    with httpx.Client(transport=httpx.MockTransport(api), auth=auth) as client:
        client.get("http://x.test/")
    assert seen == ["Bearer key-123"]
    assert "key-123" not in repr(auth)


def test_token_cache_invalidate_keeps_a_newer_token() -> None:
    cache = TokenCache()
    cache.store("new", 3600, now=0)
    cache.invalidate("old")
    assert cache.valid(1) == "new"
    cache.invalidate("new")
    assert cache.valid(1) is None


def test_get_token_for_the_tutorial_functions() -> None:
    fake, clock = FakeGloo(), FakeClock()
    auth = ClientCredentialsAuth("cid", SECRET, "http://gloo.test/oauth2/token", clock=clock)
    with httpx.Client(transport=httpx.MockTransport(fake)) as client:
        assert auth.get_token(client) == "tok-1"
        assert auth.get_token(client) == "tok-1"
    assert auth.token_requests == 1


def test_get_token_after_a_failed_send_does_not_deadlock() -> None:
    fake, clock = FakeGloo(), FakeClock()
    down = [True]

    def dropping(request: httpx.Request) -> httpx.Response:
        if down[0]:
            raise httpx.ConnectError("refused", request=request)
        return fake(request)

    auth = oauth(clock)
    with httpx.Client(transport=httpx.MockTransport(dropping)) as client:
        with pytest.raises(APIConnectionError, match="token endpoint") as caught:
            auth.get_token(client)
        assert not auth._sync_lock.locked()  # even while the error (and its frames) live on
        down[0] = False
        assert auth.get_token(client) == "tok-1"
    assert caught.value is not None


def test_the_old_import_paths_still_work_and_warn() -> None:
    import importlib
    import sys

    import gloo_stream.client.auth
    import gloo_stream.client.transport

    for name in ("gloo_stream.auth", "gloo_stream.transport"):
        sys.modules.pop(name, None)
        with pytest.warns(DeprecationWarning, match=r"gloo_stream\.client\."):
            importlib.import_module(name)
    old_auth, old_transport = sys.modules["gloo_stream.auth"], sys.modules["gloo_stream.transport"]
    assert old_auth.ClientCredentialsAuth is ClientCredentialsAuth
    assert old_auth.redactor_for is gloo_stream.client.auth.redactor_for
    assert old_transport.StreamingTransport is gloo_stream.client.transport.StreamingTransport
