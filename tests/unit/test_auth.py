"""Auth flows in isolation: httpx.MockTransport stands in for the token and API endpoints."""

from __future__ import annotations

import base64
import urllib.parse

import httpx
import pytest

from gloo_stream.client.auth import BearerAuth, ClientCredentialsAuth, TokenCache
from gloo_stream.errors import AuthenticationError

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


def make(fake: FakeGloo, clock: FakeClock, style: str = "auto") -> httpx.Client:
    auth = ClientCredentialsAuth(
        "cid",
        SECRET,
        "http://gloo.test/oauth2/token",
        style=style,
        clock=clock,  # type: ignore[arg-type]
    )
    return httpx.Client(transport=httpx.MockTransport(fake), auth=auth)


def test_token_is_fetched_once_and_reused() -> None:
    fake, clock = FakeGloo(), FakeClock()
    with make(fake, clock) as client:
        for _ in range(3):
            assert client.post("http://gloo.test/api").status_code == 200
    assert len(fake.token_calls) == 1
    assert fake.token_calls[0]["scope"] == "api/access"
    assert fake.api_auth == ["Bearer tok-1"] * 3


def test_token_is_refreshed_ahead_of_expiry() -> None:
    fake, clock = FakeGloo(), FakeClock()
    with make(fake, clock) as client:
        client.post("http://gloo.test/api")
        clock.now += 3600 - 61  # a minute and a second before expiry: still fine
        client.post("http://gloo.test/api")
        assert len(fake.token_calls) == 1
        clock.now += 2  # inside the refresh margin
        client.post("http://gloo.test/api")
    assert len(fake.token_calls) == 2
    assert fake.api_auth[-1] == "Bearer tok-2"


def test_a_401_refreshes_once_and_resends() -> None:
    fake, clock = FakeGloo(), FakeClock()
    with make(fake, clock) as client:
        client.post("http://gloo.test/api")
        fake.valid = "revoked-server-side"
        response = client.post("http://gloo.test/api")
    assert response.status_code == 200
    assert fake.api_auth == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


def test_a_second_401_is_returned_not_looped() -> None:
    fake, clock = FakeGloo(), FakeClock()

    def always_401(request: httpx.Request) -> httpx.Response:
        return fake(request) if request.url.path == "/oauth2/token" else httpx.Response(401)

    auth = ClientCredentialsAuth("cid", SECRET, "http://gloo.test/oauth2/token", clock=clock)
    with httpx.Client(transport=httpx.MockTransport(always_401), auth=auth) as client:
        assert client.post("http://gloo.test/api").status_code == 401
    assert len(fake.token_calls) == 2


def test_basic_refused_falls_back_to_form_body_and_remembers_nothing_secret() -> None:
    fake, clock = FakeGloo(accept_basic=False), FakeClock()
    with make(fake, clock) as client:
        assert client.post("http://gloo.test/api").status_code == 200
    assert fake.token_calls[0]["basic"].startswith("Basic ")
    assert fake.token_calls[1]["client_secret"] == SECRET
    assert "client_secret" not in fake.token_calls[0]


def test_form_only_style_never_sends_basic() -> None:
    fake, clock = FakeGloo(), FakeClock()
    with make(fake, clock, style="form") as client:
        client.post("http://gloo.test/api")
    assert [c["basic"] for c in fake.token_calls] == [""]


def test_bad_credentials_give_a_clear_error_without_the_secret() -> None:
    fake, clock = FakeGloo(), FakeClock()
    auth = ClientCredentialsAuth("cid", "wrong", "http://gloo.test/oauth2/token", clock=clock)
    with (
        httpx.Client(transport=httpx.MockTransport(fake), auth=auth) as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.post("http://gloo.test/api")
    assert "GLOO_CLIENT_ID" in str(caught.value)
    assert "wrong" not in str(caught.value)
    assert "wrong" not in repr(auth)


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
