"""The front door's pure parts: caller addresses, the wrong-key limit, upstream reasons, CSP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import pytest
from pydantic import ValidationError

from gloo_stream.errors import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    ServerError,
    error_from_response,
)
from gloo_stream.proxy import create_app
from gloo_stream.proxy.failures import RequestRefused, failure_from_exception
from gloo_stream.proxy.observe.metrics import ProxyMetrics
from gloo_stream.proxy.policy.client_auth import ClientAuth, caller_address, is_loopback_address
from gloo_stream.proxy.policy.limits import rate_limit_store
from gloo_stream.proxy.policy.security_headers import FALLBACK_CSP, page_csp
from gloo_stream.proxy.routes.page import STATIC_DIR
from gloo_stream.redaction import REDACTED, Redactor
from kit import clean_proxy_settings


def scope(host: str | None, key: str | None = None) -> dict[str, Any]:
    headers = [(b"authorization", f"Bearer {key}".encode())] if key else []
    return {"client": (host, 5000) if host else None, "headers": headers}


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("10.1.2.3", "10.1.2.3"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("testclient", "testclient"),
        (None, "unknown"),
    ],
)
def test_failures_count_against_an_ipv4_address_or_an_ipv6_64(
    host: str | None, address: str
) -> None:
    assert caller_address(scope(host)) == address


def test_loopback_callers() -> None:
    assert is_loopback_address(scope("127.0.0.1"))
    assert is_loopback_address(scope("::1"))
    assert is_loopback_address(scope("::ffff:127.0.0.1"))
    assert not is_loopback_address(scope("10.0.0.1"))
    assert not is_loopback_address(scope(None))


def test_concurrent_wrong_keys_never_get_more_than_the_limit_of_401s() -> None:
    metrics = ProxyMetrics()
    auth = ClientAuth(frozenset({"right"}), failures=rate_limit_store("10/minute"), metrics=metrics)

    async def attempt(key: str) -> int:
        try:
            await auth.admit(scope("10.0.0.9", key))
        except RequestRefused as refused:
            return refused.failure.status
        return 200

    async def burst() -> list[int]:
        return await asyncio.gather(*(attempt(f"guess-{i}") for i in range(40)))

    statuses = asyncio.run(burst())
    assert statuses.count(401) == 10
    assert statuses.count(429) == 30
    assert asyncio.run(attempt("right")) == 429  # not even checked
    assert asyncio.run(auth.admit(scope("10.0.0.10", "right"))).startswith("key:")
    counted = {
        sample.labels["reason"]: sample.value
        for family in metrics.registry.collect()
        if family.name == "gloo_proxy_auth_failures"
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    assert counted["blocked"] == 31  # every 429 once
    assert 10 <= counted["invalid_api_key"] <= 40  # the checked ones, and those refused late


def test_metrics_keys_and_loopback() -> None:
    auth = ClientAuth(frozenset(), metrics_keys=frozenset({"m"}), metrics_from_loopback=True)
    assert auth.identify(scope("10.0.0.1")) == "ip:10.0.0.1"  # a metrics key asks no client key
    assert auth.metrics_need_key
    assert auth.metrics_open_to(scope("127.0.0.1"))
    assert not auth.metrics_open_to(scope("10.0.0.1"))
    asyncio.run(auth.admit_metrics(scope("10.0.0.1", "m")))
    with pytest.raises(RequestRefused) as caught:
        asyncio.run(auth.admit_metrics(scope("10.0.0.1", "client")))
    assert caught.value.failure.status == 401
    assert not ClientAuth(frozenset()).metrics_need_key


def test_settings_of_the_front_door() -> None:
    settings = clean_proxy_settings()
    assert settings.proxy_auth_failure_limit == "10/minute"
    assert settings.proxy_metrics_allow_loopback is False
    assert settings.metrics_keys == frozenset()
    off = clean_proxy_settings(proxy_auth_failure_limit="off", proxy_metrics_key=" ")
    assert off.proxy_auth_failure_limit == ""
    assert off.proxy_metrics_key is None
    with pytest.raises(ValidationError, match="60/minute"):
        clean_proxy_settings(proxy_auth_failure_limit="ten")


def _message(failure_body: bytes) -> str:
    return str(msgspec.json.decode(failure_body)["error"]["message"])


def test_upstream_4xx_reasons_reach_the_caller_redacted() -> None:
    redactor = Redactor(["client-key-1", "up-key"])
    bad = error_from_response(
        422, '{"detail": [{"loc": ["body", "model"], "msg": "Field required up-key"}]}', {}, now=0
    )
    failure = failure_from_exception(bad, redactor)
    assert failure.status == 400
    assert failure.param == "model"
    assert _message(failure.body()) == (
        f"The upstream API rejected the request as invalid (422): body.model: Field required "
        f"{REDACTED}"
    )
    missing = NotFoundError("x", status_code=404, body='{"error": {"message": "no model m"}}')
    assert _message(failure_from_exception(missing).body()).endswith(": no model m")
    refused = error_from_response(413, "too big for client-key-1", {}, now=0)
    failure = failure_from_exception(refused, redactor)
    assert (failure.status, failure.code) == (502, "upstream_refused")
    assert _message(failure.body()).endswith(f"(413): too big for {REDACTED}")


@pytest.mark.parametrize(
    "exc",
    [
        AuthenticationError("a", status_code=401, body='{"error": "key up-key revoked"}'),
        ServerError("s", status_code=500, body="Traceback: up-key at line 3"),
        BadRequestError("b", status_code=400, body="", detail=None),
    ],
)
def test_no_upstream_text_where_it_does_not_belong(exc: Exception) -> None:
    body = failure_from_exception(exc, Redactor(["up-key"])).body().decode()
    assert "up-key" not in body
    assert "revoked" not in body
    assert "Traceback" not in body


def test_page_csp_is_the_pages_own_plus_frame_ancestors(tmp_path: Path) -> None:
    policy = page_csp(STATIC_DIR / "index.html")
    assert policy.startswith("default-src 'self'; script-src 'self'")
    assert policy.endswith("; frame-ancestors 'none'")
    assert page_csp(tmp_path / "missing.html") == f"{FALLBACK_CSP}; frame-ancestors 'none'"


def test_the_proxy_redacts_its_settings_secrets_and_the_live_token() -> None:
    settings = clean_proxy_settings(
        gloo_client_id="cid",
        gloo_client_secret="csecret",
        proxy_api_keys="k1,k2",
        proxy_metrics_key="mk",
        proxy_redis_url="redis://:redispass@127.0.0.1:1/0",
    )
    app = create_app(settings)
    state = app.proxy
    text = "k1 k2 mk csecret redispass Y2lkOmNzZWNyZXQ= tok-1"
    assert state.redactor().text(text) == " ".join([REDACTED] * 6) + " tok-1"
    assert state.client is not None
    state.client.auth.cache.store("tok-1", 3600, 0.0)  # type: ignore[attr-defined]
    first = state.redactor()
    assert first.text("tok-1") == REDACTED
    assert state.redactor() is first  # memoised until the token changes
