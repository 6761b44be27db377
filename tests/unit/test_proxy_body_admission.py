"""routes/body_admission.py: reading the body with a limit, the upstream body and its refusals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gloo_stream.proxy.failures import (
    RequestRefused,
)
from gloo_stream.proxy.routes.body_admission import read_json_body, upstream_body
from kit import clean_proxy_settings

MESSAGES = [{"role": "user", "content": "hi"}]


def scope(headers: dict[str, str] | None = None, client: str = "10.0.0.7") -> dict[str, Any]:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return {"type": "http", "headers": raw, "client": (client, 5555)}


def test_upstream_body_forces_stream_defaults_routing_and_caps_tokens() -> None:
    body = upstream_body(
        {"messages": MESSAGES, "stream": False}, clean_proxy_settings(proxy_max_tokens=50)
    )
    assert body == {"messages": MESSAGES, "max_tokens": 50, "auto_routing": True, "stream": True}


def test_upstream_body_without_a_cap_sends_no_max_tokens() -> None:
    assert "max_tokens" not in upstream_body(
        {"messages": MESSAGES}, clean_proxy_settings(proxy_max_tokens=None)
    )


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"messages": MESSAGES, "zzz": 1, "aaa": 2}, "aaa"),
        ({"messages": "hi"}, "messages"),
        ({"messages": MESSAGES, "max_tokens": 51}, "max_tokens"),
        ({"messages": MESSAGES, "model": "other"}, "model"),
        ({"messages": MESSAGES, "model_family": "google"}, "model_family"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "messages"),
    ],
)
def test_upstream_body_refusals_name_the_field(data: dict[str, Any], param: str) -> None:
    s = clean_proxy_settings(
        proxy_max_tokens=50, proxy_allowed_models="m1", proxy_allowed_families="openai"
    )
    with pytest.raises(RequestRefused) as caught:
        upstream_body(data, s)
    assert caught.value.failure.status == 400
    assert caught.value.failure.param == param


def test_read_json_body_streams_with_a_limit() -> None:
    async def run(parts: list[bytes], limit: int, headers: dict[str, str]) -> Any:
        messages = iter(
            [
                {"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
                for i, p in enumerate(parts)
            ]
        )

        async def receive() -> dict[str, Any]:
            return next(messages)

        return await read_json_body(scope(headers), receive, limit)

    json_type = {"content-type": "application/json; charset=utf-8"}
    assert asyncio.run(run([b'{"a":', b" 1}"], 100, json_type)) == {"a": 1}
    with pytest.raises(RequestRefused) as caught:
        asyncio.run(run([b"x" * 60, b"x" * 60], 100, json_type))
    assert caught.value.failure.status == 413
    with pytest.raises(RequestRefused) as caught:
        asyncio.run(run([b"{}"], 100, {**json_type, "content-length": "101"}))
    assert caught.value.failure.status == 413
    with pytest.raises(RequestRefused) as caught:
        asyncio.run(run([b"{}"], 100, {"content-type": "text/json"}))
    assert caught.value.failure.status == 415
