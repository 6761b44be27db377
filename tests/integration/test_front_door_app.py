"""The proxy's front door, application side, over raw sockets against a real proxy on loopback.

Raw sockets, so nothing between the test and the proxy fixes up a request or hides a
header: odd JSON types, an upstream echoing secrets, a burst of wrong keys, security
headers, ``/metrics`` behind a key, no redirect built from ``Host``, ``OPTIONS`` only where
a route exists, ``Allow`` on 405 and ``WWW-Authenticate`` on 401.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from gloo_stream.proxy.routes.page import STATIC_DIR
from gloo_stream.redaction import REDACTED, basic_credential
from gloo_stream.simulator import SimulatorConfig, SimulatorServer
from gloo_stream.testing import ProxyServer, settings_for

CLIENT_KEY = "client-key-5d1e8f"
OTHER_KEY = "client-key-two-77aa"
METRICS_KEY = "metrics-key-c0ffee"
MESSAGES = [{"role": "user", "content": "hello"}]


@dataclass
class Raw:
    """One HTTP/1.1 response as it came off the socket."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


def request_bytes(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    host: str = "127.0.0.1",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def exchange(proxy: ProxyServer, request: bytes, *, source: str = "127.0.0.1") -> Raw:
    """Send ``request`` on a fresh connection from ``source``; read until the proxy closes."""
    with socket.create_connection(
        (proxy.host, proxy.port), timeout=10, source_address=(source, 0)
    ) as sock:
        sock.sendall(request)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    return parse(bytes(received))


def parse(raw: bytes) -> Raw:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(k.strip().lower(), v.strip()) for k, _, v in (x.partition(":") for x in lines)]
    if ("transfer-encoding", "chunked") in headers:
        body = dechunk(body)
    return Raw(int(status_line.split()[1]), headers, body, raw)


def dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += body[:size]
        body = body[size + 2 :]
    return bytes(out)


def post_json(
    proxy: ProxyServer,
    path: str,
    data: Any,
    *,
    key: str | None = CLIENT_KEY,
    source: str = "127.0.0.1",
) -> Raw:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    body = msgspec.json.encode(data)
    return exchange(proxy, request_bytes("POST", path, headers=headers, body=body), source=source)


def get(proxy: ProxyServer, path: str, *, key: str | None = None, host: str = "127.0.0.1") -> Raw:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return exchange(proxy, request_bytes("GET", path, headers=headers, host=host))


class Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)


@pytest.fixture
def tracebacks() -> Iterator[Tracebacks]:
    handler = Tracebacks()
    loggers = [logging.getLogger(name) for name in ("", "gloo_stream.proxy", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture(scope="module")
def proxy(simulator_session: SimulatorServer) -> Iterator[ProxyServer]:
    """Client keys and a metrics key, allow-lists on, the default wrong-key limit."""
    settings = settings_for(
        simulator_session,
        proxy_api_keys=f"{CLIENT_KEY},{OTHER_KEY}",
        proxy_metrics_key=METRICS_KEY,
        proxy_rate_limit="",
        proxy_allowed_models="gloo-openai-gpt-5-mini",
        proxy_allowed_families="openai",
        gloo_max_retries=0,
    )
    with ProxyServer(settings) as server:
        yield server


# -- odd JSON types --------------------------------------------------------------------------

ODD = [
    ("tradition", ["catholic"]),
    ("tradition", {"name": "catholic"}),
    ("model_family", ["openai"]),
    ("model_family", {"a": 1}),
    ("tool_choice", ["auto"]),
    ("tool_choice", {"type": "function", "function": ["f"]}),
    ("model", ["gloo-openai-gpt-5-mini"]),
    ("model", {"name": "x"}),
    ("temperature", "0.5"),
    ("temperature", [1]),
    ("max_tokens", {"n": 5}),
    ("max_tokens", 2.5),
    ("stream", "yes"),
    ("auto_routing", [True]),
    ("tools", [{"type": "function", "function": {"name": ["f"]}}]),
    ("tools", ["get_weather"]),
    ("messages", [{"role": ["user"], "content": "hi"}]),
    ("messages", [{"role": {"x": 1}, "content": "hi"}]),
    ("messages", [{"role": "user", "content": {"text": "hi"}}]),
    ("messages", [{"role": "user", "content": [{"type": "text", "text": 5}]}]),
    ("messages", [{"role": "assistant", "content": None, "tool_calls": {"a": 1}}]),
    ("messages", {"role": "user"}),
]


@pytest.mark.parametrize("path", ["/api/stream", "/v1/chat/completions"])
@pytest.mark.parametrize(("field", "value"), ODD, ids=[f"{f}={v!r}" for f, v in ODD])
def test_a_value_of_the_wrong_type_is_a_400_naming_the_field(
    proxy: ProxyServer,
    simulator: SimulatorServer,
    tracebacks: Tracebacks,
    path: str,
    field: str,
    value: Any,
) -> None:
    data: dict[str, Any] = {"messages": MESSAGES, field: value}
    if path.startswith("/v1"):
        data.setdefault("model", "auto")
    answer = post_json(proxy, path, data)
    assert answer.status == 400, answer.body
    error = answer.json()["error"]
    assert error["param"] == field
    assert error["message"].startswith(field)
    assert answer.header("x-content-type-options") == "nosniff"
    assert simulator.stats()["requests"] == 0
    assert not tracebacks.records


# -- upstream reasons, secrets redacted ------------------------------------------------------


def test_an_upstream_422_reaches_the_caller_with_its_reason(
    proxy: ProxyServer, simulator: SimulatorServer
) -> None:
    simulator.push_fault({"kind": "status", "status": 422})  # Gloo's "Field required" body
    answer = post_json(proxy, "/api/stream", {"messages": MESSAGES})
    assert answer.status == 400
    error = answer.json()["error"]
    assert error["code"] == "upstream_bad_request"
    assert error["message"] == (
        "The upstream API rejected the request as invalid (422): body: Field required"
    )
    assert error["upstream_status"] == 422
    assert "detail" not in error  # the body itself is never relayed


def test_secrets_the_upstream_echoes_back_are_redacted() -> None:
    """OAuth upstream: its token (echoed from Authorization), secret and every key."""
    secret = "sim-client-secret-9f2b"
    config = SimulatorConfig(tokens_per_second=0, first_token_delay=0, client_secret=secret)
    with SimulatorServer(config) as sim:
        settings = settings_for(
            sim,
            gloo_api_key=None,
            gloo_client_id="sim-client",
            gloo_client_secret=secret,
            proxy_api_keys=f"{CLIENT_KEY},{OTHER_KEY}",
            proxy_metrics_key=METRICS_KEY,
            gloo_max_retries=0,
        )
        with ProxyServer(settings) as server:
            sim.push_fault({"kind": "status", "status": 422, "echo": True})
            echoed = post_json(server, "/api/stream", {"messages": MESSAGES})
            held = [OTHER_KEY, METRICS_KEY, secret, basic_credential("sim-client", secret)]
            sim.push_fault(
                {
                    "kind": "status",
                    "status": 400,
                    "body": {"error": {"message": "saw " + " and ".join(held) + "\x1b[2J\x07"}},
                }
            )
            quoted = post_json(server, "/v1/chat/completions", {"model": "auto", **_msgs()})
            tokens = list(sim.state._tokens)
    assert tokens  # the proxy did use an OAuth token, which the echo quoted back
    message = echoed.json()["error"]["message"]
    assert message == (
        "The upstream API rejected the request as invalid (422): header.authorization: "
        f"Value error, credential not accepted: Authorization: {REDACTED}"
    )
    assert quoted.status == 400
    assert quoted.json()["error"]["message"] == (
        "The upstream API rejected the request as invalid (400): saw "
        + " and ".join([REDACTED] * len(held))
        + "[2J"
    )
    for answer in (echoed, quoted):
        for value in (*tokens, *held, CLIENT_KEY, "Bearer ey"):
            assert value.encode() not in answer.raw


def _msgs() -> dict[str, Any]:
    return {"messages": MESSAGES}


def test_a_long_upstream_reason_is_bounded(proxy: ProxyServer, simulator: SimulatorServer) -> None:
    simulator.push_fault({"kind": "status", "status": 422, "body": {"detail": "why " * 5000}})
    answer = post_json(proxy, "/api/stream", {"messages": MESSAGES})
    message = answer.json()["error"]["message"]
    reason = message.split("(422): ", 1)[1]
    assert len(reason) == 300
    assert reason.endswith("…")
    assert len(answer.body) < 1000


# -- wrong keys from one address -------------------------------------------------------------


def test_a_burst_of_wrong_keys_is_refused_429_before_any_key_is_checked(
    simulator_session: SimulatorServer,
) -> None:
    settings = settings_for(
        simulator_session,
        proxy_api_keys=CLIENT_KEY,
        proxy_rate_limit="",
        proxy_metrics_allow_client_keys=True,  # this test scrapes with the client's key
    )
    assert settings.proxy_auth_failure_limit == "10/minute"  # the default
    with ProxyServer(settings) as server:
        statuses = []
        for i in range(15):
            answer = post_json(server, "/api/stream", _msgs(), key=f"guess-{i}")
            statuses.append(answer.status)
            if answer.status == 401:
                assert answer.header("www-authenticate") == (
                    'Bearer realm="gloo-stream", error="invalid_token"'
                )
            else:
                blocked = answer
        # The right key, from the same address, is not even checked while it is blocked.
        right = post_json(server, "/api/stream", _msgs(), key=CLIENT_KEY)
        scrape = get(server, "/metrics", key=CLIENT_KEY)
        # Another address is not affected, and a missing key is never counted.
        elsewhere = post_json(server, "/api/stream", _msgs(), key=CLIENT_KEY, source="127.0.0.2")
        for _ in range(12):
            assert (
                post_json(server, "/api/stream", _msgs(), key=None, source="127.0.0.3").status
                == 401
            )
        metrics = exchange(
            server,
            request_bytes("GET", "/metrics", headers={"Authorization": f"Bearer {CLIENT_KEY}"}),
            source="127.0.0.2",
        ).body.decode()
    assert statuses == [401] * 10 + [429] * 5
    assert blocked.json()["error"]["code"] == "too_many_auth_failures"
    assert 1 <= int(blocked.header("retry-after") or 0) <= 60
    assert right.status == 429
    assert scrape.status == 429
    assert elsewhere.status == 200
    assert 'gloo_proxy_auth_failures_total{reason="invalid_api_key"} 10.0' in metrics
    assert 'gloo_proxy_auth_failures_total{reason="missing_api_key"} 12.0' in metrics
    assert 'gloo_proxy_auth_failures_total{reason="blocked"} 7.0' in metrics
    assert 'gloo_proxy_limited_total{limit="auth_failures"} 7.0' in metrics


# -- security headers ------------------------------------------------------------------------


def meta_csp() -> list[str]:
    page = (STATIC_DIR / "index.html").read_text()
    found = re.search(r'http-equiv="Content-Security-Policy"\s+content="([^"]+)"', page)
    assert found
    return [d.strip() for d in found.group(1).split(";") if d.strip()]


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/style.css"])
def test_page_and_static_files_carry_security_headers(proxy: ProxyServer, path: str) -> None:
    answer = get(proxy, path)
    assert answer.status == 200
    assert answer.header("x-content-type-options") == "nosniff"
    assert answer.header("referrer-policy") == "no-referrer"
    assert answer.header("x-frame-options") == "DENY"
    csp = [d.strip() for d in (answer.header("content-security-policy") or "").split(";")]
    assert "frame-ancestors 'none'" in csp
    assert set(meta_csp()) <= set(csp)  # everything the page's own meta policy says


@pytest.mark.parametrize(
    ("method", "path", "key", "body"),
    [
        ("GET", "/health", None, None),
        ("GET", "/v1/models", None, None),
        ("GET", "/nowhere", None, None),
        ("POST", "/api/stream", CLIENT_KEY, b"{}"),
        ("POST", "/api/stream", None, b"{}"),
        ("POST", "/v1/chat/completions", CLIENT_KEY, b"[1]"),
    ],
)
def test_json_answers_are_nosniff(
    proxy: ProxyServer, method: str, path: str, key: str | None, body: bytes | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    answer = exchange(proxy, request_bytes(method, path, headers=headers, body=body))
    assert (answer.header("content-type") or "").startswith("application/json")
    assert answer.header("x-content-type-options") == "nosniff"


# -- /metrics and /health --------------------------------------------------------------------


def test_metrics_need_a_key_and_health_stays_open(proxy: ProxyServer) -> None:
    without = get(proxy, "/metrics")
    assert without.status == 401
    assert without.header("www-authenticate") == 'Bearer realm="gloo-stream"'
    assert b"gloo_proxy" not in without.body
    assert get(proxy, "/metrics", key="not-a-key").status == 401
    scrape = get(proxy, "/metrics", key=METRICS_KEY)
    assert scrape.status == 200
    assert b"gloo_proxy_requests_total" in scrape.body
    # A tenant's key does not read every tenant's usage (PROXY_METRICS_ALLOW_CLIENT_KEYS).
    for key in (CLIENT_KEY, OTHER_KEY):
        assert get(proxy, "/metrics", key=key).status == 401
    health = get(proxy, "/health")
    assert health.status == 200
    assert health.json() == {
        "status": "ok",
        "service": "completions-streaming-proxy",
        "ready": True,
    }
    detailed = get(proxy, "/health", key=METRICS_KEY).json()
    assert detailed["upstream"]["configured"] is True
    assert detailed["limits"]["shared"] is False


def test_loopback_scrapes_may_be_let_in_by_a_setting(simulator_session: SimulatorServer) -> None:
    settings = settings_for(
        simulator_session, proxy_api_keys=CLIENT_KEY, proxy_metrics_allow_loopback=True
    )
    with ProxyServer(settings) as server:
        assert get(server, "/metrics").status == 200
        assert "upstream" in get(server, "/health").json()


# -- Host, OPTIONS, 405, 401 -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health/", "/metrics/", "/v1/models/", "/static", "//health"])
def test_no_redirect_is_built_from_the_host_header(proxy: ProxyServer, path: str) -> None:
    answer = get(proxy, path, host="evil.example")
    assert answer.status == 404
    assert answer.header("location") is None
    assert b"evil.example" not in answer.raw


def test_options_answers_only_where_a_route_exists(proxy: ProxyServer) -> None:
    preflight = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
    for path in ("/api/stream", "/v1/chat/completions", "/health", "/static/app.js"):
        answer = exchange(proxy, request_bytes("OPTIONS", path, headers=preflight))
        assert answer.status == 204, path
    stream = exchange(proxy, request_bytes("OPTIONS", "/api/stream", headers=preflight))
    assert stream.header("access-control-allow-origin") == "http://localhost:3000"
    for path in ("/nowhere", "/api/streams", "/api/stream/abc", "/v2/chat/completions"):
        answer = exchange(proxy, request_bytes("OPTIONS", path, headers=preflight))
        assert answer.status == 404, path
        assert answer.json()["error"]["code"] == "not_found"
        assert answer.header("access-control-allow-origin") is None


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/api/stream", "POST, OPTIONS"),
        ("PUT", "/v1/chat/completions", "POST, OPTIONS"),
        ("POST", "/health", "GET, HEAD"),
        ("DELETE", "/metrics", "GET, HEAD"),
        ("POST", "/", "GET, HEAD"),
        ("POST", "/static/app.js", "GET, HEAD"),
    ],
)
def test_405_says_which_methods_are_allowed(
    proxy: ProxyServer, method: str, path: str, allow: str
) -> None:
    answer = exchange(proxy, request_bytes(method, path, body=b""))
    assert answer.status == 405
    assert set((answer.header("allow") or "").split(", ")) == set(allow.split(", "))
    assert answer.json()["error"]["code"] == "method_not_allowed"


def test_401_carries_a_bearer_challenge(proxy: ProxyServer) -> None:
    missing = post_json(proxy, "/api/stream", _msgs(), key=None, source="127.0.0.4")
    assert missing.status == 401
    assert missing.header("www-authenticate") == 'Bearer realm="gloo-stream"'
    wrong = post_json(proxy, "/v1/chat/completions", _msgs(), key="nope", source="127.0.0.4")
    assert wrong.status == 401
    assert wrong.header("www-authenticate") == 'Bearer realm="gloo-stream", error="invalid_token"'
