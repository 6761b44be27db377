"""policy/cors.py: exact-origin CORS."""

from __future__ import annotations

from typing import Any

from gloo_stream.proxy.policy.cors import CorsPolicy


def scope(headers: dict[str, str] | None = None, client: str = "10.0.0.7") -> dict[str, Any]:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return {"type": "http", "headers": raw, "client": (client, 5555)}


def test_cors_policy_exact_match_only() -> None:
    policy = CorsPolicy(["http://a.test", "*"])
    assert (b"access-control-allow-origin", b"http://a.test") in policy.headers(
        scope({"origin": "http://a.test"})
    )
    for origin in ("http://b.test", "*", "http://a.test.evil"):
        assert policy.headers(scope({"origin": origin})) == [(b"vary", b"Origin")]
    assert policy.headers(scope()) == [(b"vary", b"Origin")]
