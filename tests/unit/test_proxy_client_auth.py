"""policy/client_auth.py: who the caller is, by key hash or address."""

from __future__ import annotations

from typing import Any

import pytest

from gloo_stream.proxy.failures import (
    RequestRefused,
)
from gloo_stream.proxy.policy.client_auth import ClientAuth


def scope(headers: dict[str, str] | None = None, client: str = "10.0.0.7") -> dict[str, Any]:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return {"type": "http", "headers": raw, "client": (client, 5555)}


def test_client_auth_identifies_by_key_hash_or_ip() -> None:
    assert ClientAuth(frozenset()).identify(scope()) == "ip:10.0.0.7"
    auth = ClientAuth(frozenset({"k1", "k2"}))
    identity = auth.identify(scope({"authorization": "Bearer k2"}))
    assert identity.startswith("key:")
    assert "k2" not in identity
    for headers in ({}, {"authorization": "Bearer k3"}, {"authorization": "Basic k1"}):
        with pytest.raises(RequestRefused) as caught:
            auth.identify(scope(headers))
        assert caught.value.failure.status == 401
