"""The proxy's pure parts, without sockets: guards, failures, CORS, limits, settings."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from pydantic import ValidationError

from gloo_stream.accumulate import StreamResult
from gloo_stream.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    InvalidRequestError,
    MissingCredentialsError,
    RateLimitError,
    ServerError,
    StreamDisconnectedError,
    UpstreamStreamError,
)
from gloo_stream.proxy.edge.server import is_loopback, warn_if_exposed
from gloo_stream.proxy.failures import (
    SHUTDOWN,
    RequestRefused,
    failure_from_exception,
    stream_failure,
)
from gloo_stream.proxy.policy.client_auth import ClientAuth
from gloo_stream.proxy.policy.cors import CorsPolicy
from gloo_stream.proxy.policy.limits import StreamSlots, rate_limit_store
from gloo_stream.proxy.routes.body_admission import read_json_body, upstream_body
from gloo_stream.proxy.routes.openai_dialect import completion_body, translate_request
from gloo_stream.sse import SSEDecoder
from kit import clean_proxy_settings

MESSAGES = [{"role": "user", "content": "hi"}]


def scope(headers: dict[str, str] | None = None, client: str = "10.0.0.7") -> dict[str, Any]:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return {"type": "http", "headers": raw, "client": (client, 5555)}


# -- settings --------------------------------------------------------------------------------


def test_settings_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    s = clean_proxy_settings()
    assert s.proxy_port == 3001
    assert s.proxy_heartbeat_interval == 15.0
    monkeypatch.setenv("PROXY_HEARTBEAT_INTERVAL", "2.5")
    monkeypatch.setenv("PROXY_ALLOWED_MODELS", "a, b")
    monkeypatch.setenv("PROXY_RATE_LIMIT", "off")
    s = clean_proxy_settings()
    assert s.proxy_heartbeat_interval == 2.5
    assert s.allowed_models == {"a", "b"}
    assert s.proxy_rate_limit == ""


def test_settings_refuse_a_bad_rate_limit() -> None:
    with pytest.raises(ValidationError, match="60/minute"):
        clean_proxy_settings(proxy_rate_limit="lots")


# -- guards ----------------------------------------------------------------------------------


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


def test_translate_request_maps_openai_names() -> None:
    body, wants_stream = translate_request(
        {
            "model": "auto",
            "messages": MESSAGES,
            "max_completion_tokens": 9,
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "u1",
        },
        clean_proxy_settings(),
    )
    assert wants_stream is True
    assert body == {
        "messages": MESSAGES,
        "auto_routing": True,
        "max_tokens": 9,
        "stream": True,
        # Kept, so the endpoint knows the caller asked for the usage chunk.
        "stream_options": {"include_usage": True},
    }
    body, wants_stream = translate_request(
        {"model": "m", "messages": MESSAGES}, clean_proxy_settings()
    )
    assert (body["model"], wants_stream) == ("m", False)


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


# -- failures --------------------------------------------------------------------------------


def partial() -> StreamResult:
    return StreamResult(text="He", interrupted=True)


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (InvalidRequestError("bad", field="x"), 400, "invalid_request"),
        (MissingCredentialsError(), 503, "upstream_not_configured"),
        (RateLimitError("r", retry_after=3.2, status_code=429), 429, "upstream_rate_limited"),
        (AuthenticationError("a", status_code=401), 502, "upstream_auth_failed"),
        (ServerError("s", status_code=503), 502, "upstream_error"),
        (ServerError("s", status_code=408), 504, "upstream_timeout"),
        (APITimeoutError("t"), 504, "upstream_timeout"),
        (APIConnectionError("c"), 502, "upstream_unreachable"),
        (RuntimeError("secret internals"), 500, "internal_error"),
    ],
)
def test_failures_before_the_stream(exc: Exception, status: int, code: str) -> None:
    failure = failure_from_exception(exc)
    assert (failure.status, failure.code) == (status, code)
    body = msgspec.json.decode(failure.body())
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    assert "secret internals" not in failure.body().decode()


def test_rate_limit_failure_rounds_retry_after_up() -> None:
    failure = failure_from_exception(RateLimitError("r", retry_after=3.2, status_code=429))
    assert (b"retry-after", b"4") in failure.headers()


def test_stream_failure_event_is_one_valid_sse_error_event() -> None:
    error = {"code": 2001, "name": 'PROVIDER "TIMEOUT"\n\ndata: injected', "message": "x"}
    failure = stream_failure(UpstreamStreamError("m", partial=partial(), error=error))
    events = SSEDecoder().feed(failure.event())
    assert len(events) == 1
    assert events[0].event == "error"
    decoded = msgspec.json.decode(events[0].data)["error"]
    # A name that is not a short token (here one trying to inject an event) is not relayed.
    assert decoded["code"] == "upstream_error"
    assert "injected" not in events[0].data
    assert decoded["upstream_code"] == 2001
    named = stream_failure(
        UpstreamStreamError("m", partial=partial(), error={"name": "PROVIDER_TIMEOUT"})
    )
    assert named.code == "PROVIDER_TIMEOUT"
    disconnected = stream_failure(StreamDisconnectedError("m", partial=partial()))
    assert disconnected.code == "upstream_disconnected"
    assert SSEDecoder().feed(SHUTDOWN.event())[0].event == "error"


def test_completion_body_is_an_openai_completion() -> None:
    result = StreamResult(text="Hello", finish_reason="stop", id="gen-1", model="m")
    completion = msgspec.json.decode(completion_body(result, created=5))
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": "Hello"}
    assert completion["created"] == 5


# -- CORS and limits -------------------------------------------------------------------------


def test_cors_policy_exact_match_only() -> None:
    policy = CorsPolicy(["http://a.test", "*"])
    assert (b"access-control-allow-origin", b"http://a.test") in policy.headers(
        scope({"origin": "http://a.test"})
    )
    for origin in ("http://b.test", "*", "http://a.test.evil"):
        assert policy.headers(scope({"origin": origin})) == [(b"vary", b"Origin")]
    assert policy.headers(scope()) == [(b"vary", b"Origin")]


def test_stream_slots_per_client_and_total() -> None:
    slots = StreamSlots(per_client=2, total=3)
    slots.acquire("a")
    slots.acquire("a")
    with pytest.raises(RequestRefused) as refused:
        slots.acquire("a")
    assert refused.value.failure.status == 429
    assert refused.value.limit == "too_many_streams"
    slots.acquire("b")
    with pytest.raises(RequestRefused) as full:
        slots.acquire("c")
    assert full.value.failure.status == 503
    slots.release("a")
    slots.acquire("c")
    assert slots.open == 3
    unlimited = StreamSlots(per_client=0, total=0)
    for _ in range(100):
        unlimited.acquire("x")
    assert unlimited.open == 100


def test_rate_limit_store() -> None:
    async def run() -> list[bool]:
        store = rate_limit_store("2/minute")
        decisions = [await store.hit("a") for _ in range(3)] + [await store.hit("b")]
        assert decisions[2].retry_after >= 1
        return [d.allowed for d in decisions]

    assert asyncio.run(run()) == [True, True, False, True]

    async def unlimited() -> bool:
        return all([(await rate_limit_store("").hit("a")).allowed for _ in range(1000)])

    assert asyncio.run(unlimited())


# -- exposure warning ------------------------------------------------------------------------


def test_non_loopback_bind_without_keys_warns_loudly(capsys: pytest.CaptureFixture[str]) -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert warn_if_exposed(clean_proxy_settings(proxy_host="0.0.0.0")) is True
    assert "PROXY_API_KEYS" in capsys.readouterr().err
    assert warn_if_exposed(clean_proxy_settings(proxy_host="0.0.0.0", proxy_api_keys="k")) is False
    assert warn_if_exposed(clean_proxy_settings(proxy_host="127.0.0.1")) is False


# -- the stream watcher ----------------------------------------------------------------------


def test_watcher_sends_heartbeats_only_when_idle_and_never_spins() -> None:
    from gloo_stream.proxy.relay import HEARTBEAT, StreamControl

    async def scenario() -> list[Any]:
        sent: list[Any] = []
        never = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await never.wait()
            return {}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message["body"])

        control = StreamControl(heartbeat=0.05)
        control.watch_caller(receive, send)
        control.headers_sent = True
        control.last_send = asyncio.get_running_loop().time()
        control.sending = True  # a blocked send: no heartbeat, and no busy loop either
        await asyncio.sleep(0.2)
        assert sent == []
        control.sending = False
        await asyncio.sleep(0.2)
        control.finish()
        await asyncio.sleep(0)
        return sent

    sent = asyncio.run(scenario())
    assert len(sent) >= 2
    assert set(sent) == {HEARTBEAT}


def test_watcher_turns_a_disconnect_into_a_stop() -> None:
    from gloo_stream.proxy.relay import StreamControl

    async def scenario() -> str:
        gone = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            raise AssertionError("nothing is sent before the headers")

        control = StreamControl(heartbeat=10)
        control.watch_caller(receive, send)
        asyncio.get_running_loop().call_later(0.05, gone.set)
        try:
            await asyncio.sleep(5)  # the upstream "thinking"
        except asyncio.CancelledError:
            return control.stopped().reason
        finally:
            control.finish()
        return "not stopped"

    assert asyncio.run(scenario()) == "disconnect"
